//! What can go wrong talking to Coiled, and how Coiled's error bodies are read.

use serde::de::DeserializeOwned;

use super::client::is_certificate_rejection;

/// What went wrong talking to Coiled.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401, or 401/403 on the identity endpoints: the token is missing, wrong or revoked.
    #[error("the Coiled API rejected the token (HTTP {status}): {message}")]
    Unauthorized { status: u16, message: String },
    /// 403: the token is valid but may not do this (e.g. not a member of the workspace).
    #[error("permission denied (HTTP 403): {message}")]
    Forbidden { message: String },
    /// 404.
    #[error("not found: {message}")]
    NotFound { message: String },
    /// A 404 from a server that does not answer as Coiled's API does: nothing is taken to be gone.
    #[error(
        "HTTP 404 from {url}, and {identity} did not answer as Coiled's API does ({cause}): check \
            that the provider's `server` is Coiled's API (and any proxy in front of it); until it \
            answers as Coiled's API, nothing is taken to be gone or removed from state"
    )]
    NotCoiled {
        /// The URL that answered 404.
        url: String,
        /// The identity endpoint asked.
        identity: String,
        /// What it answered.
        cause: String,
    },
    /// Any other error status; the server's error body is kept.
    #[error("HTTP {status}: {message}")]
    Status {
        status: u16,
        /// The message extracted from the body (`message`, `non_field_errors`, `detail`, or the
        /// body).
        message: String,
        /// Coiled's error code, when the body has one (e.g. `NO_CLOUD_SETUP`).
        code: Option<String>,
    },
    /// The request never got an answer (connection refused or reset, TLS failure).
    #[error("cannot reach the Coiled API at {url}: {source}")]
    Transport {
        /// The URL requested (no secrets in it).
        url: String,
        #[source]
        source: reqwest::Error,
    },
    /// The answer was not the JSON expected.
    #[error("unexpected answer from {url}: {message}")]
    Decode {
        url: String,
        /// What did not parse.
        message: String,
    },
    /// The WebSocket exchange failed.
    #[error("WebSocket {url}: {message}")]
    WebSocket { url: String, message: String },
    /// Terraform asked the provider to stop (Ctrl-C).
    #[error("interrupted: Terraform asked the provider to stop")]
    Cancelled,
    /// The operation's deadline passed while retrying; the last error is kept.
    #[error("gave up after {attempts} attempts within the operation's timeout; last error: {last}")]
    Timeout { attempts: u32, last: Box<ApiError> },
    /// The server could not be reached at all (connection refused, name not resolved, no answer)
    /// for longer than the unreachable budget ([`RetryPolicy::unreachable`]).
    #[error("cannot reach the Coiled API at {url}: {reason} (gave up after {waited_s} s)")]
    Unreachable {
        /// The URL requested (no secrets in it).
        url: String,
        /// What happened, in words: `connection refused`, `timed out after 30 s`, …
        reason: String,
        /// How long the provider kept trying.
        waited_s: u64,
    },
    /// The server's TLS certificate was refused (untrusted issuer, wrong name, expired). Not
    /// retried.
    #[error(
        "the TLS certificate of {url} was refused: {message}; if the server uses a private \
            certificate authority, set `ca_bundle_file`"
    )]
    Certificate {
        url: String,
        /// What the TLS layer said.
        message: String,
    },
    /// The workspace to use could not be chosen (no membership, or several and no default).
    #[error("{message}")]
    Workspace {
        /// Why, with the choices.
        message: String,
    },
    /// The server refused what was sent over the WebSocket (a message flagged `is_error` /
    /// `raise`).
    #[error("Coiled refused the request: {message}")]
    Refused { message: String },
    /// A cluster did not reach `stopped` within the operation's timeout.
    #[error("cluster {id} did not stop within the timeout (it is {state})")]
    NotStopped {
        id: i64,
        /// Its last state.
        state: String,
    },
    /// A create got no answer, and looking the cluster up by name failed too.
    #[error(
        "the create of cluster {name:?} got no answer ({cause}), and looking it up by name failed \
            too ({lookup}); if it was created, it is not in state: check the workspace's clusters \
            and import it"
    )]
    CreateUnconfirmed {
        name: String,
        /// What happened to the create.
        cause: Box<ApiError>,
        /// What happened to the lookup.
        lookup: Box<ApiError>,
    },
    /// The provider's own settings cannot work (e.g. a server URL with a path).
    #[error("{message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The API token would go in clear text over the network.
    #[error(
        "refusing to send the API token over plain HTTP to {host}: use https://, or set \
            `allow_insecure_http = true` for a trusted network"
    )]
    Insecure {
        /// The non-loopback host.
        host: String,
    },
}

impl ApiError {
    /// Whether retrying the same request may succeed (rule `retry`).
    pub(crate) fn retryable(&self, idempotent: bool) -> bool {
        match self {
            // 502 and 504 come from a gateway that may have passed the request on: only an
            // idempotent request is sent again; a create is looked up by the caller instead.
            ApiError::Status { status, .. } => {
                matches!(status, 429 | 503) || (idempotent && matches!(status, 502 | 504))
            }
            // A refused certificate is not transient: retrying only delays the error.
            ApiError::Transport { source, .. } if is_certificate_rejection(source) => false,
            ApiError::Transport { source, .. } => idempotent || source.is_connect(),
            _ => false,
        }
    }
    /// Whether a request that is not idempotent may have taken effect although it failed: its
    /// answer was lost, or a gateway failed (502, 504) after it may have passed it on. A plain 500
    /// is the server refusing it (rule `lost-answers`).
    pub fn may_have_been_applied(&self) -> bool {
        match self {
            ApiError::Transport { .. } | ApiError::Status { status: 502 | 504, .. } => true,
            ApiError::Timeout { last, .. } => last.may_have_been_applied(),
            _ => false,
        }
    }
    /// Whether this is a 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::NotFound { .. })
    }
}

pub(crate) fn decode<T: DeserializeOwned>(url: &str, text: &str) -> Result<T, ApiError> {
    serde_json::from_str(text).map_err(|e| {
        // Not JSON at all (a web page, a proxy's text) is said so, not in the parser's words.
        let message = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(_) => e.to_string(),
            Err(_) if text.trim_start().starts_with('<') => "an HTML page, not JSON".to_string(),
            Err(_) => format!("not JSON ({e})"),
        };
        ApiError::Decode { url: url.to_string(), message }
    })
}

pub(crate) fn auth_failure(e: ApiError) -> ApiError {
    match e {
        ApiError::Forbidden { message } => ApiError::Unauthorized { status: 403, message },
        other => other,
    }
}

/// Builds the error for a failed answer, reading Coiled's error body shapes in the order its client
/// does: `message`, `non_field_errors[0]`, `detail`, then the whole body.
pub fn error_from_body(status: u16, body: &str, path: &str) -> ApiError {
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let text = |v: Option<&serde_json::Value>| v?.as_str().map(str::to_string);
    let field = |key: &str| text(json.as_ref()?.get(key));
    let code = field("code");
    let message = field("message")
        .or_else(|| text(json.as_ref()?.get("non_field_errors")?.get(0)))
        .or_else(|| field("detail"))
        .map(|m| super::hide_url_credentials(&m))
        .unwrap_or_else(|| {
            let t = body.trim();
            if t.is_empty() {
                format!("HTTP {status} from {path}")
            } else {
                super::hide_url_credentials(t).chars().take(500).collect()
            }
        });
    match status {
        401 => ApiError::Unauthorized { status, message },
        403 => ApiError::Forbidden { message },
        // Coiled's error shape (the keys `handle_api_exception` reads) says the API itself
        // answered; any other 404 body (an HTML page, a proxy's text, nothing) says nothing of what
        // was asked for.
        404 if json.as_ref().is_some_and(|j| {
            ["detail", "message", "non_field_errors"].iter().any(|k| j.get(k).is_some())
        }) =>
        {
            ApiError::NotFound { message }
        }
        // Not Coiled's answer: its body (an HTML page, a proxy's text) is not shown.
        404 => ApiError::Status {
            status,
            message: format!(
                "{path} answered 404 with a body that is not in Coiled's error shape (not a JSON \
                    error): check that the provider's `server` is Coiled's API (and any proxy in \
                    front of it); nothing is taken to be gone or removed from state"
            ),
            code,
        },
        _ => ApiError::Status { status, message, code },
    }
}
