//! The Coiled control-plane client: HTTP and WebSocket, JSON in and out, no Terraform.
//!
//! Calls made (paths from Coiled's public client):
//! - `GET /api/v2/user/me`, `GET /api/v2/user/me/memberships` (who am I, default workspace);
//! - `GET /api/v1/{ws}/backend_options/` and the WebSocket `/ws/api/v1/{ws}/cluster-info/`
//!   (`update_options`) for account backend options;
//! - `POST /api/v2/clusters/account/{ws}/`, `GET …/id/{id}`, `GET …/name/{name}`, `DELETE …/id/{id}`;
//! - `GET/POST/DELETE /api/v2/workers/account/{ws}/cluster/{id}/` for scaling.
//!
//! Every request retries 429, 502, 503 and 504 (and connection failures for idempotent requests) with
//! exponential backoff and full jitter, honouring `Retry-After`, until the operation's deadline or its
//! cancellation: there is no hidden timeout beyond the [`Op`] the caller passes.

mod connect;
pub mod types;

use std::fmt;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;

pub use types::*;

/// The Coiled client release whose wire behaviour this client follows; servers use the
/// `Client-Version` header for their minimum-version check.
pub const API_CLIENT_VERSION: &str = "1.135.6";

/// A secret string (API token, cloud key) that never shows in `Debug` or `Display` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// What went wrong talking to Coiled.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 401, or 401/403 on the identity endpoints: the token is missing, wrong or revoked.
    #[error("the Coiled API rejected the token (HTTP {status}): {message}")]
    Unauthorized {
        /// HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// 403: the token is valid but may not do this (e.g. not a member of the workspace).
    #[error("permission denied (HTTP 403): {message}")]
    Forbidden {
        /// The server's message.
        message: String,
    },
    /// 404.
    #[error("not found: {message}")]
    NotFound {
        /// The server's message.
        message: String,
    },
    /// Any other error status; the server's error body is kept.
    #[error("HTTP {status}: {message}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The message extracted from the body (`message`, `non_field_errors`, `detail`, or the body).
        message: String,
        /// Coiled's error code, when the body has one (e.g. `NO_CLOUD_SETUP`).
        code: Option<String>,
    },
    /// The request never got an answer (connection refused or reset, TLS failure).
    #[error("cannot reach the Coiled API at {url}: {source}")]
    Transport {
        /// The URL requested (no secrets in it).
        url: String,
        /// The underlying error.
        #[source]
        source: reqwest::Error,
    },
    /// The answer was not the JSON expected.
    #[error("unexpected answer from {url}: {message}")]
    Decode {
        /// The URL requested.
        url: String,
        /// What did not parse.
        message: String,
    },
    /// The WebSocket exchange failed.
    #[error("WebSocket {url}: {message}")]
    WebSocket {
        /// The URL.
        url: String,
        /// What happened.
        message: String,
    },
    /// Terraform asked the provider to stop (Ctrl-C).
    #[error("interrupted: Terraform asked the provider to stop")]
    Cancelled,
    /// The operation's deadline passed while retrying; the last error is kept.
    #[error("gave up after {attempts} attempts within the operation's timeout; last error: {last}")]
    Timeout {
        /// How many attempts were made.
        attempts: u32,
        /// The last error seen.
        last: Box<ApiError>,
    },
    /// The server could not be reached at all (connection refused, name not resolved, no answer) for
    /// longer than the unreachable budget ([`RetryPolicy::unreachable`]).
    #[error("cannot reach the Coiled API at {url}: {reason} (gave up after {waited_s} s)")]
    Unreachable {
        /// The URL requested (no secrets in it).
        url: String,
        /// What happened, in words: `connection refused`, `timed out after 30 s`, …
        reason: String,
        /// How long the provider kept trying.
        waited_s: u64,
    },
    /// The server's TLS certificate was refused (untrusted issuer, wrong name, expired). Not retried.
    #[error(
        "the TLS certificate of {url} was refused: {message}; if the server uses a private certificate authority, set `ca_bundle_file`"
    )]
    Certificate {
        /// The URL.
        url: String,
        /// What the TLS layer said.
        message: String,
    },
    /// The provider's own settings cannot work (e.g. a server URL with a path).
    #[error("{message}")]
    Config {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// The API token would go in clear text over the network.
    #[error(
        "refusing to send the API token over plain HTTP to {host}: use https://, or set `allow_insecure_http = true` for a trusted network"
    )]
    Insecure {
        /// The non-loopback host.
        host: String,
    },
}

impl ApiError {
    /// Whether retrying the same request may succeed.
    fn retryable(&self, idempotent: bool) -> bool {
        match self {
            // 502 and 504 come from a gateway that may have passed the request on: only an idempotent
            // request is sent again; a create is looked up by the caller instead.
            ApiError::Status { status, .. } => matches!(status, 429 | 503) || (idempotent && matches!(status, 502 | 504)),
            // A refused certificate is not transient: retrying only delays the error.
            ApiError::Transport { source, .. } if is_tls_rejection(source) => false,
            ApiError::Transport { source, .. } => idempotent || source.is_connect(),
            _ => false,
        }
    }
    /// Whether this is a 404.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::NotFound { .. })
    }
}

/// The limits of one operation: a deadline and the provider-wide stop signal.
#[derive(Clone, Debug)]
pub struct Op {
    /// No retry or wait goes past this.
    pub deadline: Instant,
    /// Cancelled on `StopProvider`.
    pub stop: CancellationToken,
}

impl Op {
    /// An operation allowed `timeout` from now.
    pub fn new(timeout: Duration, stop: CancellationToken) -> Op {
        Op { deadline: Instant::now() + timeout, stop }
    }
    /// Sleeps for `d`, or less when the deadline comes first; errors on cancellation.
    pub async fn sleep(&self, d: Duration) -> Result<(), ApiError> {
        let d = d.min(self.deadline.saturating_duration_since(Instant::now()));
        tokio::select! {
            () = tokio::time::sleep(d) => Ok(()),
            () = self.stop.cancelled() => Err(ApiError::Cancelled),
        }
    }
    /// Time left.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }
}

/// Backoff between retries: exponential from `base`, capped at `max`, with full jitter.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// First delay's upper bound.
    pub base: Duration,
    /// Largest delay.
    pub max: Duration,
    /// How long a server that cannot be reached at all (refused, unresolved, silent) is retried before
    /// the request fails with [`ApiError::Unreachable`]. Throttling and 5xx answers are not bounded by
    /// this: a server that answers is waited for until the operation's deadline.
    pub unreachable: Duration,
}

/// Default of [`RetryPolicy::unreachable`].
pub const DEFAULT_UNREACHABLE: Duration = Duration::from_secs(30);

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy { base: Duration::from_millis(200), max: Duration::from_secs(15), unreachable: DEFAULT_UNREACHABLE }
    }
}

impl RetryPolicy {
    /// The delay before attempt `attempt` (1-based retry count), given the server's `Retry-After`.
    pub fn delay(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(ra) = retry_after {
            return ra.min(self.max * 4);
        }
        let exp = self.base.saturating_mul(1u32 << attempt.min(16)).min(self.max);
        Duration::from_secs_f64(exp.as_secs_f64() * rand::random::<f64>()).max(Duration::from_millis(10))
    }
}

/// The kinds of call, each with its retry policy and per-attempt time limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Call {
    /// Safe to send again (GET, and DELETEs whose repetition changes nothing): retried on throttling,
    /// gateway errors and lost connections.
    Idempotent,
    /// A change that must not happen twice (adding workers): retried only where the answer proves it
    /// was not carried out (429, 503, a connection never made).
    Write,
    /// A cluster create: as [`Call::Write`], with the 300 s answer timeout of Coiled's client, since
    /// the server does real work before answering. The caller recovers lost answers by name.
    Create,
}

impl Call {
    /// How long one attempt waits for its answer.
    pub fn timeout(self) -> Duration {
        match self {
            Call::Idempotent | Call::Write => Duration::from_secs(60),
            Call::Create => Duration::from_secs(300),
        }
    }
}

/// Parses `Retry-After` in either of its forms (seconds, or an HTTP date).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    httpdate_parse(v).map(|t| t.duration_since(std::time::SystemTime::now()).unwrap_or_default())
}

fn httpdate_parse(v: &str) -> Option<std::time::SystemTime> {
    // IMF-fixdate, e.g. "Sun, 06 Nov 1994 08:49:37 GMT" — converted to RFC 3339 for humantime.
    let parts: Vec<&str> = v.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let month =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].iter().position(|m| *m == parts[2])? + 1;
    let rfc = format!("{}-{:02}-{:0>2}T{}Z", parts[3], month, parts[1], parts[4]);
    humantime::parse_rfc3339(&rfc).ok()
}

/// Client settings.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Base URL, e.g. `https://cloud.coiled.io`.
    pub server: String,
    /// API token.
    pub token: Secret,
    /// Allow sending the token over plain HTTP to a non-loopback host.
    pub allow_insecure_http: bool,
    /// Extra PEM CA bundle to trust, besides the platform's roots.
    pub ca_bundle_pem: Option<Vec<u8>>,
    /// Backoff policy.
    pub retry: RetryPolicy,
}

/// A connection to one Coiled control plane.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    config: ClientConfig,
    session_id: String,
    /// TLS settings for the WebSocket, the same trust as `http`.
    ws_tls: std::sync::Arc<rustls::ClientConfig>,
    /// Whether this server has answered anything yet (until it has, no attempt waits longer than the
    /// unreachable budget).
    answered: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

/// Counts of what a client did, for tests and benchmarks.
static REQUESTS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

impl Client {
    /// Builds a client; fails when the token would travel in clear text, or the CA bundle is unusable.
    pub fn new(config: ClientConfig) -> Result<Client, ApiError> {
        let url = url::Url::parse(&config.server).map_err(|e| ApiError::Config {
            message: format!("{:?} is not a valid server URL ({e}); use a base URL such as https://cloud.coiled.io", config.server),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ApiError::Config {
                message: format!("{:?} is not an http:// or https:// URL; use a base URL such as https://cloud.coiled.io", config.server),
            });
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(ApiError::Config {
                message: format!(
                    "{:?} has a path, query or fragment; the server is a base URL with none, such as https://cloud.coiled.io (the provider adds the API paths itself)",
                    config.server
                ),
            });
        }
        if url.scheme() == "http" && !config.allow_insecure_http && !is_loopback(&url) {
            return Err(ApiError::Insecure { host: url.host_str().unwrap_or_default().to_string() });
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("terraform-provider-coiled/", env!("CARGO_PKG_VERSION")))
            .tcp_nodelay(true)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(30));
        if let Some(pem) = &config.ca_bundle_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ApiError::Decode { url: "ca_bundle".into(), message: e.to_string() })?;
            for c in certs {
                builder = builder.add_root_certificate(c);
            }
        }
        let ws_tls = std::sync::Arc::new(
            connect::tls_config(config.ca_bundle_pem.as_deref())
                .map_err(|message| ApiError::Config { message: format!("ca_bundle_file: {message}") })?,
        );
        let http = builder.build().map_err(|e| ApiError::Transport { url: config.server.clone(), source: e })?;
        Ok(Client {
            http,
            config,
            session_id: format!("coiled-session-{:08x}", rand::random::<u32>()),
            answered: Default::default(),
            ws_tls,
        })
    }

    /// The base URL.
    pub fn server(&self) -> &str {
        &self.config.server
    }

    /// How many HTTP requests all clients in this process have sent.
    pub fn requests_sent() -> u64 {
        REQUESTS.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn auth_header(&self) -> String {
        let t = self.config.token.expose();
        // Coiled's scheme: long-lived API tokens contain a dash and use `ApiToken`; legacy ones `Token`.
        if t.contains('-') { format!("ApiToken {t}") } else { format!("Token {t}") }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.config.server, path)
    }

    async fn send_once(
        &self,
        method: &reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        timeout: Duration,
    ) -> Result<String, (ApiError, Option<Duration>)> {
        let url = self.url(path);
        let mut req = self
            .http
            .request(method.clone(), &url)
            .timeout(timeout)
            .header("Authorization", self.auth_header())
            .header("Client-Version", API_CLIENT_VERSION)
            .header("coiled-session-id", &self.session_id)
            .header("coiled-request-id", format!("{:08x}", rand::random::<u32>()));
        if !query.is_empty() {
            req = req.query(query);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tracing::debug!(method = %method, path, "coiled api request");
        let resp = req.send().await.map_err(|e| {
            if is_tls_rejection(&e) {
                (ApiError::Certificate { url: url.clone(), message: tls_reason(&e) }, None)
            } else {
                (ApiError::Transport { url: url.clone(), source: e.without_url() }, None)
            }
        })?;
        self.answered.store(true, std::sync::atomic::Ordering::Relaxed);
        let status = resp.status().as_u16();
        let retry_after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(parse_retry_after);
        let text = resp.text().await.map_err(|e| (ApiError::Transport { url: url.clone(), source: e.without_url() }, None))?;
        tracing::debug!(method = %method, path, status, "coiled api response");
        if status >= 400 {
            return Err((error_from_body(status, &text, path), retry_after));
        }
        Ok(text)
    }

    /// How long one attempt may wait for its answer: the call's own limit, but no longer than the
    /// unreachable budget while this server has never answered (a silent listener fails as promptly
    /// as a refused connection).
    fn attempt_timeout(&self, call: Call) -> Duration {
        let own = call.timeout();
        if self.answered.load(std::sync::atomic::Ordering::Relaxed) { own } else { own.min(self.config.retry.unreachable) }
    }

    /// Sends a request with the retry policy of its kind of call (see [`Call`]).
    pub async fn request(
        &self,
        op: &Op,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&serde_json::Value>,
        call: Call,
    ) -> Result<String, ApiError> {
        let idempotent = call == Call::Idempotent;
        let mut attempt = 0u32;
        let mut unreachable_since: Option<Instant> = None;
        loop {
            if op.stop.is_cancelled() {
                return Err(ApiError::Cancelled);
            }
            attempt += 1;
            let timeout = self.attempt_timeout(call);
            let started = Instant::now();
            let result = tokio::select! {
                r = self.send_once(&method, path, query, body, timeout) => r,
                () = op.stop.cancelled() => return Err(ApiError::Cancelled),
            };
            let (e, retry_after) = match result {
                Ok(body) => return Ok(body),
                Err(failure) => failure,
            };
            if let ApiError::Transport { url, source } = &e
                && let Some(reason) = unreachable_reason(source, idempotent && timeout < call.timeout(), timeout)
            {
                let since = *unreachable_since.get_or_insert(started);
                // Keep trying until the budget is spent: the last wait is cut short, not skipped.
                let left = self.config.retry.unreachable.saturating_sub(since.elapsed());
                let delay = self.config.retry.delay(attempt, None).min(left);
                if left.is_zero() || Instant::now() + delay >= op.deadline {
                    return Err(ApiError::Unreachable { url: url.clone(), reason, waited_s: since.elapsed().as_secs_f64().round() as u64 });
                }
                tracing::info!(path, attempt, delay_ms = delay.as_millis() as u64, error = %e, "coiled api unreachable; retrying");
                op.sleep(delay).await?;
                continue;
            }
            unreachable_since = None;
            if !e.retryable(idempotent) {
                return Err(e);
            }
            let delay = self.config.retry.delay(attempt, retry_after);
            if Instant::now() + delay >= op.deadline {
                return Err(ApiError::Timeout { attempts: attempt, last: Box::new(e) });
            }
            tracing::info!(path, attempt, delay_ms = delay.as_millis() as u64, error = %e, "retrying coiled api request");
            op.sleep(delay).await?;
        }
    }

    /// GET and decode JSON.
    pub async fn get_json<T: DeserializeOwned>(&self, op: &Op, path: &str, query: &[(&str, String)]) -> Result<T, ApiError> {
        let text = self.request(op, reqwest::Method::GET, path, query, None, Call::Idempotent).await?;
        decode(&self.url(path), &text)
    }

    /// `GET /api/v2/user/me`.
    pub async fn me(&self, op: &Op) -> Result<User, ApiError> {
        self.get_json(op, "/api/v2/user/me", &[]).await.map_err(auth_failure)
    }

    /// `GET /api/v2/user/me/memberships`.
    pub async fn memberships(&self, op: &Op) -> Result<Vec<Membership>, ApiError> {
        self.get_json(op, "/api/v2/user/me/memberships", &[]).await.map_err(auth_failure)
    }

    /// The workspace to use when none is configured: the default membership, else the only one.
    pub async fn default_workspace(&self, op: &Op) -> Result<String, ApiError> {
        let memberships = self.memberships(op).await?;
        if let Some(m) = memberships.iter().find(|m| m.is_default_account) {
            return Ok(m.account.slug.clone());
        }
        match memberships.as_slice() {
            [only] => Ok(only.account.slug.clone()),
            [] => Err(ApiError::Status { status: 400, message: "this token's user is a member of no workspace".into(), code: None }),
            many => Err(ApiError::Status {
                status: 400,
                message: format!(
                    "no default workspace; set `workspace` to one of: {}",
                    many.iter().map(|m| m.account.slug.as_str()).collect::<Vec<_>>().join(", ")
                ),
                code: None,
            }),
        }
    }

    /// `GET /api/v1/{ws}/backend_options/`.
    pub async fn get_backend_options(&self, op: &Op, workspace: &str) -> Result<BackendOptionsRead, ApiError> {
        self.get_json(op, &format!("/api/v1/{}/backend_options/", seg(workspace)), &[]).await
    }

    /// Writes account backend options over the `cluster-info` WebSocket (`update_options`), as Coiled's
    /// client does: read the greeting, send the options, follow progress until `FINISHED` or close.
    /// Returns the progress messages. Connection failures before the options are sent are retried.
    pub async fn set_backend_options(&self, op: &Op, workspace: &str, data: &serde_json::Value) -> Result<Vec<String>, ApiError> {
        let mut attempt = 0;
        let mut unreachable_since: Option<Instant> = None;
        loop {
            attempt += 1;
            let started = Instant::now();
            match self.set_backend_options_once(op, workspace, data).await {
                Err(WsFailure::Unreachable { url, reason }) => {
                    let since = *unreachable_since.get_or_insert(started);
                    let left = self.config.retry.unreachable.saturating_sub(since.elapsed());
                    let delay = self.config.retry.delay(attempt, None).min(left);
                    if left.is_zero() || Instant::now() + delay >= op.deadline {
                        return Err(ApiError::Unreachable { url, reason, waited_s: since.elapsed().as_secs_f64().round() as u64 });
                    }
                    tracing::info!(attempt, reason = %reason, "backend options WebSocket unreachable; retrying");
                    op.sleep(delay).await?;
                }
                Err(WsFailure::BeforeSend(e)) if e.retryable(true) || matches!(e, ApiError::WebSocket { .. }) => {
                    unreachable_since = None;
                    let delay = self.config.retry.delay(attempt, None);
                    if Instant::now() + delay >= op.deadline {
                        return Err(ApiError::Timeout { attempts: attempt, last: Box::new(e) });
                    }
                    tracing::info!(attempt, error = %e, "retrying backend options WebSocket");
                    op.sleep(delay).await?;
                }
                Err(WsFailure::BeforeSend(e) | WsFailure::AfterSend(e)) => return Err(e),
                Ok(progress) => return Ok(progress),
            }
        }
    }

    /// Connects the WebSocket: TCP (through the proxy the environment names, if any), then TLS with the
    /// same trust as the HTTP client, then the upgrade carrying the auth headers.
    async fn open_websocket(&self, op: &Op, ws_url: &str, workspace: &str) -> Result<WsStream, WsFailure> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let wse = |m: String| ApiError::WebSocket { url: ws_url.to_string(), message: m };
        let mut request = ws_url.into_client_request().map_err(|e| WsFailure::BeforeSend(wse(e.to_string())))?;
        let headers = request.headers_mut();
        let hv = |s: &str| http::HeaderValue::from_str(s).map_err(|e| WsFailure::BeforeSend(wse(e.to_string())));
        headers.insert("Authorization", hv(&self.auth_header())?);
        headers.insert("Client-Version", hv(API_CLIENT_VERSION)?);
        headers.insert("coiled-session-id", hv(&self.session_id)?);
        let url = url::Url::parse(ws_url).map_err(|e| WsFailure::BeforeSend(wse(e.to_string())))?;
        let proxy =
            connect::proxy_for(&url, |k| std::env::var(k).ok()).map_err(|message| WsFailure::BeforeSend(ApiError::Config { message }))?;
        REQUESTS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let timeout = CONNECT_TIMEOUT.min(op.remaining()).max(Duration::from_millis(100));
        let stream = tokio::select! {
            r = connect::open(&url, proxy.as_ref(), timeout) => r.map_err(|reason| WsFailure::Unreachable { url: ws_url.to_string(), reason })?,
            () = op.stop.cancelled() => return Err(WsFailure::BeforeSend(ApiError::Cancelled)),
        };
        stream.set_nodelay(true).ok();
        let connector = tokio_tungstenite::Connector::Rustls(self.ws_tls.clone());
        let handshake = tokio::time::timeout(
            Call::Idempotent.timeout().min(op.remaining()),
            tokio_tungstenite::client_async_tls_with_config(request, stream, None, Some(connector)),
        );
        let result = tokio::select! {
            r = handshake => r,
            () = op.stop.cancelled() => return Err(WsFailure::BeforeSend(ApiError::Cancelled)),
        };
        match result {
            Err(_) => Err(WsFailure::BeforeSend(wse("no answer to the WebSocket upgrade".into()))),
            Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) => {
                self.answered.store(true, std::sync::atomic::Ordering::Relaxed);
                let status = resp.status().as_u16();
                let body = resp.body().as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
                Err(WsFailure::BeforeSend(match status {
                    403 => ApiError::Forbidden {
                        message: format!(
                            "cannot edit backend options in workspace {workspace:?}; check that the token's user is an admin of it"
                        ),
                    },
                    404 => ApiError::NotFound { message: format!("workspace {workspace:?}") },
                    s => error_from_body(s, &body, ""),
                }))
            }
            Ok(Err(e)) => {
                let text = format!("{e:?}");
                if text.contains("InvalidCertificate") || text.contains("invalid peer certificate") {
                    // Not retried: a refused certificate does not fix itself.
                    Err(WsFailure::AfterSend(ApiError::Certificate { url: ws_url.to_string(), message: e.to_string() }))
                } else {
                    Err(WsFailure::BeforeSend(wse(e.to_string())))
                }
            }
            Ok(Ok((socket, _))) => {
                self.answered.store(true, std::sync::atomic::Ordering::Relaxed);
                Ok(socket)
            }
        }
    }

    async fn set_backend_options_once(&self, op: &Op, workspace: &str, data: &serde_json::Value) -> Result<Vec<String>, WsFailure> {
        use tokio_tungstenite::tungstenite::Message;
        let ws_url = format!("{}/ws/api/v1/{}/cluster-info/", self.config.server.replacen("http", "ws", 1), seg(workspace));
        let wse = |m: String| ApiError::WebSocket { url: ws_url.clone(), message: m };
        let mut socket = self.open_websocket(op, &ws_url, workspace).await?;
        // The server greets first; Coiled's client discards the greeting, but a close instead of a
        // greeting is the server refusing the connection.
        match next_message(op, &mut socket).await {
            Ok(Some(Ok(Message::Close(frame)))) => {
                let code = frame.as_ref().map(|f| u16::from(f.code)).unwrap_or(1005);
                return Err(WsFailure::AfterSend(refused_by_close(code, workspace, &ws_url)));
            }
            Ok(Some(Ok(Message::Text(text)))) => {
                if let Some(message) = error_message(&text) {
                    return Err(WsFailure::AfterSend(ApiError::Status { status: 400, message, code: None }));
                }
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => return Err(WsFailure::BeforeSend(wse(e.to_string()))),
            Ok(None) => return Err(WsFailure::BeforeSend(wse("closed before greeting".into()))),
            Err(e) => return Err(WsFailure::BeforeSend(e)),
        }
        let message = serde_json::json!({
            "type": "update_options",
            "logging_context": {},
            "data": data,
            "coiled-session-id": self.session_id,
            "coiled-request-id": format!("{:08x}", rand::random::<u32>()),
        });
        socket.send(Message::text(message.to_string())).await.map_err(|e| WsFailure::BeforeSend(wse(e.to_string())))?;
        let mut progress = Vec::new();
        let mut last_error: Option<String> = None;
        loop {
            let msg = match next_message(op, &mut socket).await {
                Ok(Some(Ok(m))) => m,
                Ok(Some(Err(e))) => return Err(WsFailure::AfterSend(wse(e.to_string()))),
                Ok(None) => break,
                Err(e) => return Err(WsFailure::AfterSend(e)),
            };
            match msg {
                Message::Text(text) => {
                    // As Coiled's client: an error flag counts on any message, whatever its type.
                    if let Some(message) = error_message(&text) {
                        last_error = Some(message);
                        continue;
                    }
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
                    if v.get("type").and_then(|t| t.as_str()) != Some("update_options") {
                        continue;
                    }
                    let text = v.get("message").and_then(|m| m.as_str()).unwrap_or_default().to_string();
                    match text.as_str() {
                        "FINISHED" => {
                            let _ = socket.close(None).await;
                            break;
                        }
                        "CONFIGURING_BACKEND" | "NOT_CONFIGURING_BACKEND" => {}
                        other => progress.push(other.to_string()),
                    }
                }
                Message::Close(frame) => {
                    if let Some(f) = frame {
                        let code = u16::from(f.code);
                        if code == 4403 || code == 4401 {
                            return Err(WsFailure::AfterSend(refused_by_close(code, workspace, &ws_url)));
                        }
                        if (1001..3000).contains(&code) {
                            return Err(WsFailure::AfterSend(wse(format!("connection closed with code {code}"))));
                        }
                    }
                    break;
                }
                _ => {}
            }
        }
        match last_error {
            Some(e) => Err(WsFailure::AfterSend(ApiError::Status { status: 400, message: e, code: None })),
            None => Ok(progress),
        }
    }

    fn cluster_path(workspace: &str) -> String {
        format!("/api/v2/clusters/account/{}/", seg(workspace))
    }

    /// `POST /api/v2/clusters/account/{ws}/`: not retried blindly (the caller recovers a lost answer by
    /// looking the name up), except on answers that prove nothing was created (429, 502, 503, 504).
    pub async fn create_cluster(&self, op: &Op, workspace: &str, body: &serde_json::Value) -> Result<CreatedCluster, ApiError> {
        let path = Self::cluster_path(workspace);
        let text = self.request(op, reqwest::Method::POST, &path, &[], Some(body), Call::Create).await?;
        decode(&self.url(&path), &text)
    }

    /// `GET /api/v2/clusters/account/{ws}/id/{id}`.
    pub async fn get_cluster(&self, op: &Op, workspace: &str, id: i64) -> Result<ClusterDetails, ApiError> {
        self.get_json(op, &format!("{}id/{id}", Self::cluster_path(workspace)), &[]).await
    }

    /// `GET /api/v2/clusters/account/{ws}/name/{name}`: the active cluster with this name, if any.
    pub async fn find_cluster_by_name(&self, op: &Op, workspace: &str, name: &str) -> Result<Option<ClusterRef>, ApiError> {
        match self
            .get_json(op, &format!("{}name/{}", Self::cluster_path(workspace), seg(name)), &[("include_paused", "0".to_string())])
            .await
        {
            Ok(c) => Ok(Some(c)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `DELETE /api/v2/clusters/account/{ws}/id/{id}`: asks the cluster to stop.
    pub async fn stop_cluster(&self, op: &Op, workspace: &str, id: i64, reason: &str) -> Result<(), ApiError> {
        self.request(
            op,
            reqwest::Method::DELETE,
            &format!("{}id/{id}", Self::cluster_path(workspace)),
            &[("reason", reason.to_string())],
            None,
            Call::Idempotent,
        )
        .await
        .map(|_| ())
    }

    fn workers_path(workspace: &str, id: i64) -> String {
        format!("/api/v2/workers/account/{}/cluster/{id}/", seg(workspace))
    }

    /// All workers of a cluster, paging with `limit`/`offset` until an empty page.
    pub async fn list_workers(&self, op: &Op, workspace: &str, id: i64) -> Result<Vec<Process>, ApiError> {
        let mut out = Vec::new();
        for page in 0..1000 {
            let batch: Vec<Process> = self
                .get_json(op, &Self::workers_path(workspace, id), &[("limit", "100".into()), ("offset", (page * 100).to_string())])
                .await?;
            if batch.is_empty() {
                break;
            }
            out.extend(batch);
        }
        Ok(out)
    }

    /// Adds `n` workers (`POST …/workers/…` with `n_workers`, which counts workers to add).
    pub async fn add_workers(&self, op: &Op, workspace: &str, id: i64, n: i64) -> Result<(), ApiError> {
        self.request(
            op,
            reqwest::Method::POST,
            &Self::workers_path(workspace, id),
            &[],
            Some(&serde_json::json!({"n_workers": n, "reason": "terraform"})),
            Call::Write,
        )
        .await
        .map(|_| ())
    }

    /// Removes the named workers (`DELETE …/workers/…?name=…`).
    pub async fn remove_workers(&self, op: &Op, workspace: &str, id: i64, names: &[String]) -> Result<(), ApiError> {
        for chunk in names.chunks(200) {
            let query: Vec<(&str, String)> = chunk.iter().map(|n| ("name", n.clone())).collect();
            self.request(op, reqwest::Method::DELETE, &Self::workers_path(workspace, id), &query, None, Call::Idempotent).await?;
        }
        Ok(())
    }
}

/// The next WebSocket message, bounded by the operation's deadline and stop signal.
async fn next_message<S>(
    op: &Op,
    socket: &mut S,
) -> Result<Option<Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>>, ApiError>
where
    S: futures_util::Stream<Item = Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    tokio::select! {
        r = tokio::time::timeout(op.remaining(), socket.next()) => r.map_err(|_| ApiError::WebSocket { url: String::new(), message: "no answer before the operation's timeout".into() }),
        () = op.stop.cancelled() => Err(ApiError::Cancelled),
    }
}

/// Whether a transport failure means the server was not reached, so that nothing can have been carried
/// out; and what happened, in words. A timeout counts only when `silence_counts` (an idempotent call
/// to a server that has never answered): an unanswered write may have been carried out, and a server
/// that answered before is waited for patiently.
fn unreachable_reason(e: &reqwest::Error, silence_counts: bool, timeout: Duration) -> Option<String> {
    if is_tls_rejection(e) {
        return None;
    }
    let text = format!("{e:?}");
    if e.is_connect() {
        let reason = if text.contains("ConnectionRefused") || text.contains("Connection refused") {
            "connection refused".to_string()
        } else if text.contains("dns error") || text.contains("failed to lookup address") {
            "the host name could not be resolved".to_string()
        } else if e.is_timeout() || text.contains("TimedOut") || text.contains("timed out") {
            format!("connecting timed out after {} s", CONNECT_TIMEOUT.as_secs())
        } else if text.contains("NetworkUnreachable") || text.contains("HostUnreachable") {
            "no route to the host".to_string()
        } else {
            format!("could not connect ({e})")
        };
        return Some(reason);
    }
    if silence_counts && e.is_timeout() {
        return Some(format!("no answer, timed out after {} s", timeout.as_secs()));
    }
    None
}

/// How long one TCP (and TLS) connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The certificate problem in words, from the TLS layer's error.
fn tls_reason(e: &reqwest::Error) -> String {
    let text = format!("{e:?}");
    for (needle, words) in [
        ("UnknownIssuer", "it was issued by an unknown certificate authority"),
        ("NotValidForName", "it is not valid for this host name"),
        ("Expired", "it has expired"),
        ("NotValidYet", "it is not valid yet"),
        ("Revoked", "it has been revoked"),
    ] {
        if text.contains(needle) {
            return words.to_string();
        }
    }
    "it is not trusted".to_string()
}

/// Whether a transport error is a TLS certificate rejection (untrusted issuer, wrong name, expired).
fn is_tls_rejection(e: &reqwest::Error) -> bool {
    // The rustls error sits inside an io::Error, which `source()` does not expose; its debug form does.
    let text = format!("{e:?}");
    text.contains("InvalidCertificate") || text.contains("invalid peer certificate")
}

enum WsFailure {
    /// The server was not reached (nothing sent): retried within the unreachable budget.
    Unreachable {
        url: String,
        reason: String,
    },
    BeforeSend(ApiError),
    AfterSend(ApiError),
}

type WsStream = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The error a WebSocket message carries, if it says it is one (`is_error` or `raise`, whatever its type).
fn error_message(text: &str) -> Option<String> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    let is_error = v.get("is_error").is_some_and(truthy) || v.get("raise").is_some_and(truthy);
    is_error.then(|| match v.get("message") {
        Some(serde_json::Value::String(m)) if !m.is_empty() => m.clone(),
        Some(other) if !other.is_null() => other.to_string(),
        _ => "the server reported an error without a message".to_string(),
    })
}

/// The error for a close frame that refuses the connection.
fn refused_by_close(code: u16, workspace: &str, url: &str) -> ApiError {
    match code {
        4401 | 4403 => ApiError::Forbidden {
            message: format!(
                "the server closed the backend options connection with code {code}: the token is not allowed to edit workspace {workspace:?} (check the token, and that its user is an admin of the workspace)"
            ),
        },
        _ => ApiError::WebSocket {
            url: url.to_string(),
            message: format!("the server closed the connection (code {code}) instead of greeting"),
        },
    }
}

fn truthy(v: &serde_json::Value) -> bool {
    match v {
        serde_json::Value::Bool(b) => *b,
        serde_json::Value::Null => false,
        serde_json::Value::Number(n) => n.as_f64() != Some(0.0),
        serde_json::Value::String(s) => !s.is_empty(),
        _ => true,
    }
}

/// Percent-encodes one path segment.
fn seg(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

fn decode<T: DeserializeOwned>(url: &str, text: &str) -> Result<T, ApiError> {
    serde_json::from_str(text).map_err(|e| ApiError::Decode { url: url.to_string(), message: e.to_string() })
}

fn auth_failure(e: ApiError) -> ApiError {
    match e {
        ApiError::Forbidden { message } => ApiError::Unauthorized { status: 403, message },
        other => other,
    }
}

/// Builds the error for a failed answer, reading Coiled's error body shapes in the order its client does:
/// `message`, `non_field_errors[0]`, `detail`, then the whole body.
pub fn error_from_body(status: u16, body: &str, path: &str) -> ApiError {
    let json: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let code = json.as_ref().and_then(|j| j.get("code")).and_then(|c| c.as_str()).map(str::to_string);
    let message = json
        .as_ref()
        .and_then(|j| {
            j.get("message")
                .and_then(|m| m.as_str().map(str::to_string))
                .or_else(|| j.get("non_field_errors").and_then(|n| n.get(0)).and_then(|m| m.as_str()).map(str::to_string))
                .or_else(|| j.get("detail").and_then(|m| m.as_str()).map(str::to_string))
        })
        .unwrap_or_else(|| {
            let t = body.trim();
            if t.is_empty() { format!("HTTP {status} from {path}") } else { t.chars().take(500).collect() }
        });
    match status {
        401 => ApiError::Unauthorized { status, message },
        403 => ApiError::Forbidden { message },
        404 => ApiError::NotFound { message },
        _ => ApiError::Status { status, message, code },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_read_like_the_coiled_client() {
        let e = error_from_body(400, r#"{"code":"NO_CLOUD_SETUP","message":"No cloud setup"}"#, "/x");
        assert!(
            matches!(e, ApiError::Status { status: 400, ref message, code: Some(ref c) } if message == "No cloud setup" && c == "NO_CLOUD_SETUP")
        );
        assert_eq!(error_from_body(400, r#"{"non_field_errors":["bad"]}"#, "/x").to_string(), "HTTP 400: bad");
        assert!(matches!(error_from_body(401, r#"{"detail":"Invalid token."}"#, "/x"), ApiError::Unauthorized { .. }));
        assert!(error_from_body(404, "", "/x").is_not_found());
        assert_eq!(error_from_body(500, "", "/x").to_string(), "HTTP 500: HTTP 500 from /x");
    }

    #[test]
    fn retry_after_both_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_is_bounded_and_honours_retry_after() {
        let p = RetryPolicy::default();
        for attempt in 1..40 {
            assert!(p.delay(attempt, None) <= p.max);
        }
        assert_eq!(p.delay(1, Some(Duration::from_secs(2))), Duration::from_secs(2));
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("abc-123")), "Secret(<redacted>)");
    }

    #[test]
    fn plain_http_only_to_loopback_unless_allowed() {
        let cfg = |server: &str, allow| ClientConfig {
            server: server.into(),
            token: Secret::new("t"),
            allow_insecure_http: allow,
            ca_bundle_pem: None,
            retry: RetryPolicy::default(),
        };
        assert!(Client::new(cfg("http://127.0.0.1:1", false)).is_ok());
        assert!(Client::new(cfg("http://localhost:1", false)).is_ok());
        assert!(matches!(Client::new(cfg("http://example.com", false)), Err(ApiError::Insecure { .. })));
        assert!(Client::new(cfg("http://example.com", true)).is_ok());
        assert!(Client::new(cfg("https://example.com", false)).is_ok());
    }

    #[test]
    fn auth_scheme_depends_on_the_token() {
        let cfg = |t: &str| ClientConfig {
            server: "https://x".into(),
            token: Secret::new(t),
            allow_insecure_http: false,
            ca_bundle_pem: None,
            retry: RetryPolicy::default(),
        };
        assert_eq!(Client::new(cfg("abc-123")).unwrap().auth_header(), "ApiToken abc-123");
        assert_eq!(Client::new(cfg("abc123")).unwrap().auth_header(), "Token abc123");
    }
}
