//! The HTTP client: settings, authentication headers, one request attempt and its classification,
//! and the identity calls (`GET /api/v2/user/me`, `GET /api/v2/user/me/memberships`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::retry::{self, Call, FailedAttempt, Op, RetryPolicy, parse_retry_after};
use super::{
    API_CLIENT_VERSION, ApiError, Membership, Secret, User, auth_failure, connect, decode,
    error_from_body,
};

/// A request body: any of the typed bodies in [`super::requests`], serialised once per attempt.
pub mod erased {
    pub trait Body {
        fn to_json(&self) -> String;
    }

    impl<T: serde::Serialize> Body for T {
        fn to_json(&self) -> String {
            serde_json::to_string(self).unwrap_or_else(|_| "null".into())
        }
    }
}

#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Base URL, e.g. `https://cloud.coiled.io`.
    pub server: String,
    pub token: Secret,
    /// Allow sending the token over plain HTTP to a non-loopback host.
    pub allow_insecure_http: bool,
    /// Extra PEM CA bundle to trust, besides the platform's roots.
    pub ca_bundle_pem: Option<Vec<u8>>,
    pub retry: RetryPolicy,
}

/// The identity endpoint, which every Coiled API answers for a valid token.
const ME: &str = "/api/v2/user/me";

/// A connection to one Coiled control plane.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    pub(super) config: ClientConfig,
    /// This client's session id, sent with every request.
    pub(super) session_id: String,
    /// TLS settings for connections made outside the HTTP client (the WebSocket), the same trust
    /// as `http`.
    pub(super) ws_tls: Arc<rustls::ClientConfig>,
    /// Whether this server has answered anything yet (until it has, no attempt waits longer than
    /// the unreachable budget).
    answered: Arc<AtomicBool>,
    /// The collections (clusters, software environments of a workspace) this server has listed as
    /// Coiled's API does: until it has, a 404 for one of their members is not taken to mean that
    /// what was asked for is gone.
    identified: Arc<Mutex<HashMap<String, Arc<tokio::sync::OnceCell<()>>>>>,
}

impl Client {
    /// Builds a client; fails when the token would travel in clear text, or the CA bundle is
    /// unusable.
    pub fn new(config: ClientConfig) -> Result<Client, ApiError> {
        // What messages show of the URL: never its credentials.
        let shown = connect::mask_credentials(&config.server);
        let url = url::Url::parse(&config.server).map_err(|e| ApiError::Config {
            message: format!(
                "{shown:?} is not a valid server URL ({e}); use a base URL such as \
                https://cloud.coiled.io"
            ),
        })?;
        let problem = if !url.username().is_empty() || url.password().is_some() {
            Some(
                "carries credentials; the server is a base URL without them, such as \
                https://cloud.coiled.io (the API token is the credential)",
            )
        } else if !matches!(url.scheme(), "http" | "https") {
            Some(
                "is not an http:// or https:// URL; use a base URL such as https://cloud.coiled.io",
            )
        } else if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            Some(
                "has a path, query or fragment; the server is a base URL with none, such as \
                https://cloud.coiled.io (the provider adds the API paths itself)",
            )
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(ApiError::Config { message: format!("{shown:?} {problem}") });
        }
        if url.scheme() == "http" && !config.allow_insecure_http && !is_loopback(&url) {
            return Err(ApiError::Insecure {
                host: url.host_str().unwrap_or_default().to_string(),
            });
        }
        let mut builder = reqwest::Client::builder()
            .user_agent(concat!("terraform-provider-coiled/", env!("CARGO_PKG_VERSION")))
            .tcp_nodelay(true)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_idle_timeout(Duration::from_secs(30))
            .redirect(reqwest::redirect::Policy::custom(|attempt| {
                // Never from https:// down to http://, where the token would travel in clear text.
                let downgrade = attempt.previous().iter().any(|u| u.scheme() == "https")
                    && attempt.url().scheme() == "http";
                if downgrade {
                    attempt.error("a redirect from https:// to http:// was refused")
                } else if attempt.previous().len() > 5 {
                    attempt.error("too many redirects")
                } else {
                    attempt.follow()
                }
            }))
            // The one proxy decision the WebSocket follows too (`connect::proxy_for`).
            .no_proxy();
        let proxy = connect::proxy_for(&url, |k| std::env::var(k).ok())
            .map_err(|message| ApiError::Config { message })?;
        if let Some(p) = proxy {
            let unusable = |e: reqwest::Error| ApiError::Config {
                message: format!("the proxy {} cannot be used: {e}", p.address),
            };
            let mut through =
                reqwest::Proxy::all(format!("http://{}", p.address)).map_err(unusable)?;
            let auth = p.authorization.as_deref().map(reqwest::header::HeaderValue::from_str);
            if let Some(Ok(auth)) = auth {
                through = through.custom_http_auth(auth);
            }
            builder = builder.proxy(through);
        }
        builder = trust_extra_roots(builder, config.ca_bundle_pem.as_deref())?;
        let ws_tls =
            Arc::new(connect::tls_config(config.ca_bundle_pem.as_deref()).map_err(|message| {
                ApiError::Config { message: format!("ca_bundle_file: {message}") }
            })?);
        let http = builder
            .build()
            .map_err(|e| ApiError::Transport { url: config.server.clone(), source: e })?;
        Ok(Client {
            http,
            config,
            session_id: format!("coiled-session-{:08x}", rand::random::<u32>()),
            answered: Default::default(),
            identified: Default::default(),
            ws_tls,
        })
    }

    pub(crate) fn auth_header(&self) -> String {
        let t = self.config.token.expose();
        // Coiled's scheme: long-lived API tokens contain a dash and use `ApiToken`; legacy ones
        // `Token`.
        if t.contains('-') { format!("ApiToken {t}") } else { format!("Token {t}") }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{}", self.config.server, path)
    }

    /// One attempt of one request, its failure classified for [`retry::run`].
    pub(super) async fn send_once(
        &self,
        method: &reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&(dyn erased::Body + Sync)>,
        call: Call,
    ) -> Result<String, FailedAttempt> {
        let url = self.url(path);
        let timeout = self.attempt_timeout(call);
        let idempotent = call == Call::Idempotent;
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
            req = req.header("Content-Type", "application/json").body(b.to_json());
        }
        tracing::debug!(method = %method, path, "coiled api request");
        let transport = |e: reqwest::Error| {
            if is_certificate_rejection(&e) {
                return FailedAttempt::fatal(ApiError::Certificate {
                    url: url.clone(),
                    message: tls_reason(&e),
                });
            }
            if e.is_redirect() {
                // Why, from the error's causes (the policy's own words are the last of them).
                let mut why = e.to_string();
                let mut cause = std::error::Error::source(&e);
                while let Some(c) = cause {
                    why = format!("{why}: {c}");
                    cause = c.source();
                }
                return FailedAttempt::fatal(ApiError::Config {
                    message: format!(
                        "{url} answered with a redirect that was not followed ({why})"
                    ),
                });
            }
            // Silence counts as unreachable only while this server has never answered.
            let silence_counts = idempotent && timeout < call.timeout();
            let unreachable =
                unreachable_reason(&e, silence_counts, timeout).map(|reason| (url.clone(), reason));
            let error = ApiError::Transport { url: url.clone(), source: e.without_url() };
            let retryable = error.retryable(idempotent);
            FailedAttempt { error, retry_after: None, unreachable, retryable }
        };
        let resp = req.send().await.map_err(transport)?;
        self.mark_answered();
        let status = resp.status().as_u16();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let text = match read_bounded(resp).await {
            Ok(text) => text,
            Err(Bounded::Transport(e)) => return Err(transport(e)),
            Err(Bounded::TooLarge) => {
                return Err(FailedAttempt::fatal(ApiError::Decode {
                    url: url.clone(),
                    message: format!("the answer is larger than {} MiB", MAX_ANSWER >> 20),
                }));
            }
        };
        tracing::debug!(method = %method, path, status, "coiled api response");
        if status >= 400 {
            let error = error_from_body(status, &text, &url);
            let retryable = error.retryable(idempotent);
            return Err(FailedAttempt { error, retry_after, unreachable: None, retryable });
        }
        Ok(text)
    }

    /// How long one attempt may wait for its answer: the call's own limit, but no longer than the
    /// unreachable budget while this server has never answered (a silent listener fails as promptly
    /// as a refused connection).
    fn attempt_timeout(&self, call: Call) -> Duration {
        let own = call.timeout();
        if self.answered.load(Ordering::Relaxed) {
            own
        } else {
            own.min(self.config.retry.unreachable)
        }
    }

    /// Marks the server as having answered (a WebSocket upgrade answered, for instance).
    pub(crate) fn mark_answered(&self) {
        self.answered.store(true, Ordering::Relaxed);
    }

    /// Sends a request with the retry policy of its kind of call (see [`Call`]).
    pub async fn request(
        &self,
        op: &Op,
        method: reqwest::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&(dyn erased::Body + Sync)>,
        call: Call,
    ) -> Result<String, ApiError> {
        match retry::run(op, &self.config.retry, path, |_| {
            self.send_once(&method, path, query, body, call)
        })
        .await
        {
            Err(ApiError::NotFound { message }) if path != ME => {
                Err(self.confirm_not_found(op, path, message).await)
            }
            other => other,
        }
    }

    /// A 404 in Coiled's error shape, kept as "not found" only once the collection the path belongs
    /// to (a workspace's clusters, its software environments; else the user's identity) has
    /// answered as Coiled's API does (once per collection and client). Ours: Coiled's client takes
    /// any 404 of these endpoints as not-found, but a proxy or another server that answers 404 to
    /// every path, or routes only some, would then make a refresh forget resources; such a 404 is
    /// an error naming the URL (rule `gone`).
    async fn confirm_not_found(&self, op: &Op, path: &str, message: String) -> ApiError {
        let (probe, query) = collection_of(path);
        // Concurrent 404s of one collection wait for one probe; one that failed is not kept.
        let cell = {
            let mut cells = self.identified.lock().unwrap_or_else(|p| p.into_inner());
            cells.entry(probe.clone()).or_default().clone()
        };
        let identify = || async {
            let answer = retry::run(op, &self.config.retry, &probe, |_| {
                self.send_once(&reqwest::Method::GET, &probe, &query, None, Call::Idempotent)
            })
            .await
            .and_then(|text| decode::<serde_json::Value>(&self.url(&probe), &text));
            let cause = match answer {
                Ok(v) if v.is_array() || v.is_object() => return Ok(()),
                Ok(other) => format!("it answered {other}"),
                Err(e) => e.to_string(),
            };
            Err(ApiError::NotCoiled { url: self.url(path), identity: self.url(&probe), cause })
        };
        match cell.get_or_try_init(identify).await {
            Ok(()) => ApiError::NotFound { message },
            Err(e) => e,
        }
    }

    /// GET and decode JSON.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        op: &Op,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ApiError> {
        let text =
            self.request(op, reqwest::Method::GET, path, query, None, Call::Idempotent).await?;
        decode(&self.url(path), &text)
    }

    /// `DELETE` (idempotent), ignoring the answer's body.
    pub async fn delete(
        &self,
        op: &Op,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<(), ApiError> {
        let method = reqwest::Method::DELETE;
        self.request(op, method, path, query, None, Call::Idempotent).await.map(|_| ())
    }

    /// `GET /api/v2/user/me`.
    pub async fn me(&self, op: &Op) -> Result<User, ApiError> {
        self.get_json(op, ME, &[]).await.map_err(auth_failure)
    }

    /// `GET /api/v2/user/me/memberships`.
    pub async fn memberships(&self, op: &Op) -> Result<Vec<Membership>, ApiError> {
        self.get_json(op, "/api/v2/user/me/memberships", &[]).await.map_err(auth_failure)
    }

    /// The workspace to use when none is configured, from the user's `memberships`: the default
    /// membership, else the only one (rule `default-workspace`).
    pub async fn default_workspace(
        &self,
        op: &Op,
        memberships: &[Membership],
    ) -> Result<String, ApiError> {
        if let Some(m) = memberships.iter().find(|m| m.is_default_account) {
            return Ok(m.account.slug.clone());
        }
        let slugs: Vec<&str> = memberships.iter().map(|m| m.account.slug.as_str()).collect();
        let message = match slugs.as_slice() {
            [only] => return Ok(only.to_string()),
            [] => "this token's user is a member of no workspace".to_string(),
            _ => {
                // As `Cloud.default_workspace` in `coiled/core.py`: the workspace named as the
                // user, as it is or in lower case.
                let user = self.me(op).await?.username;
                let lower = user.to_lowercase();
                let named = [user.as_str(), lower.as_str()].into_iter().find(|u| slugs.contains(u));
                if let Some(found) = named {
                    return Ok(found.to_string());
                }
                format!("no default workspace; set `workspace` to one of: {}", slugs.join(", "))
            }
        };
        Err(ApiError::Workspace { message })
    }
}

/// The collection a path's resource belongs to, as a request that lists it (one item): a
/// workspace's clusters (`Cloud._list_clusters_page`), its software environments
/// (`Cloud._list_software_environments_page_v2`), else the user's identity.
fn collection_of(path: &str) -> (String, Vec<(&'static str, String)>) {
    let parts: Vec<&str> = path.split('/').collect();
    match parts.as_slice() {
        ["", "api", "v2", "clusters" | "workers", "account", ws, ..] => (
            format!("/api/v2/clusters/account/{ws}/"),
            vec![("limit", "1".into()), ("offset", "0".into()), ("just_mine", "0".into())],
        ),
        ["", "api", "v2", "software-environment", "account", ws, ..] => (
            format!("/api/v2/software-environment/account/{ws}/alias"),
            vec![("offset", "0".into())],
        ),
        _ => (ME.to_string(), Vec::new()),
    }
}

/// The largest answer read: Coiled's pages are far smaller, and a server that sends more is not
/// read into memory whole.
const MAX_ANSWER: usize = 32 << 20;

/// Why an answer was not read.
enum Bounded {
    Transport(reqwest::Error),
    TooLarge,
}

/// An answer's body as text, refused past [`MAX_ANSWER`] bytes (by its `Content-Length`, or as it
/// arrives).
async fn read_bounded(mut resp: reqwest::Response) -> Result<String, Bounded> {
    if resp.content_length().is_some_and(|n| n > MAX_ANSWER as u64) {
        return Err(Bounded::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(Bounded::Transport)? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(Bounded::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// Whether a transport failure means the server was not reached, so that nothing can have been
/// carried out; and what happened, in words. A timeout counts only when `silence_counts` (an
/// idempotent call to a server that has never answered): an unanswered write may have been carried
/// out, and a server that answered before is waited for patiently.
fn unreachable_reason(
    e: &reqwest::Error,
    silence_counts: bool,
    timeout: Duration,
) -> Option<String> {
    if is_certificate_rejection(e) {
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
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Whether an error (HTTP or WebSocket) is rustls refusing the peer's certificate. The rustls error
/// sits inside an io::Error, which `source()` does not expose; the debug form does.
pub(crate) fn is_certificate_rejection(e: &dyn std::fmt::Debug) -> bool {
    let text = format!("{e:?}");
    text.contains("InvalidCertificate") || text.contains("invalid peer certificate")
}

/// Characters escaped in a URL path segment: controls, space, and those with a meaning in a path
/// or URL (`/ ? # %` and the like), as the URL standard's path-segment set.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}')
    .add(b'/')
    .add(b'%');

/// Percent-encodes one path segment.
pub(crate) fn seg(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, PATH_SEGMENT).to_string()
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// The HTTP client's roots beyond the ones it is built with: `ca_bundle_file`'s, and on macOS
/// (whose build carries Mozilla's roots) those of `SSL_CERT_FILE`, which the platform store
/// elsewhere includes.
fn trust_extra_roots(
    mut builder: reqwest::ClientBuilder,
    ca_bundle_pem: Option<&[u8]>,
) -> Result<reqwest::ClientBuilder, ApiError> {
    if let Some(pem) = ca_bundle_pem {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| ApiError::Decode { url: "ca_bundle".into(), message: e.to_string() })?;
        for c in certs {
            builder = builder.add_root_certificate(c);
        }
    }
    #[cfg(target_os = "macos")]
    for der in connect::ssl_cert_file() {
        if let Ok(c) = reqwest::Certificate::from_der(&der) {
            builder = builder.add_root_certificate(c);
        }
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_segments_escape_what_would_change_the_path() {
        assert_eq!(seg("my-team_1"), "my-team_1");
        assert_eq!(seg("a b/c?d#e%"), "a%20b%2Fc%3Fd%23e%25");
        assert_eq!(seg("ä"), "%C3%A4");
    }
}
