//! The Coiled control-plane client: HTTP and WebSocket, JSON in and out, no Terraform.
//!
//! Calls made (paths from Coiled's public client):
//! - `GET /api/v2/user/me`, `GET /api/v2/user/me/memberships` (who am I, default workspace);
//! - `GET /api/v1/{ws}/backend_options/` and the WebSocket `/ws/api/v1/{ws}/cluster-info/`
//!   (`update_options`) for account backend options;
//! - `POST /api/v2/clusters/account/{ws}/`, `GET …/id/{id}`, `GET …/name/{name}`, `DELETE
//!   …/id/{id}`;
//! - `GET/POST/DELETE /api/v2/workers/account/{ws}/cluster/{id}/` for scaling;
//! - under `/api/v2/software-environment/account/{ws}`: create, alias by name (read, delete), a
//!   build's state and log; `GET /api/v2/user/workspace/{ws}/dask-config-overrides`.
//!
//! Files by concern: [`client`] (settings, one attempt, identity), [`retry`] (the one retry loop
//! and the kinds of call), [`error`], [`clusters`], [`backend_options`], `software`, [`requests`]
//! (typed request bodies), [`types`] (typed answers) and `connect` (proxy and TLS for the
//! WebSocket). There is no hidden timeout beyond the [`Op`] the caller passes.

mod backend_options;
pub mod client;
pub mod clusters;
mod connect;
pub mod error;
pub mod requests;
pub mod retry;
pub mod scheduler;
mod software;
pub mod types;

use std::fmt;

pub use client::{Client, ClientConfig};
pub use clusters::{ClusterList, Created, LIST_CEILING_PAGES};
pub use error::{ApiError, error_from_body};
pub(crate) use error::{auth_failure, decode};
pub use requests::{
    AwsKeys, AwsOptions, BackendOptionsData, CloudOptions, ClusterOptions, CreateCluster,
    CreateSoftwareEnv, EmptyAwsKeys, FirewallSpecOut, GcpOptions, IngressOut, JsonObject, Registry,
    ScaleUp, UpdateOptions,
};
pub use retry::{Call, DEFAULT_UNREACHABLE, Op, RetryPolicy, parse_retry_after};
pub use types::{
    AccountRef, AliasPage, BackendOptionsRead, BuildLogEvent, BuildLogPage, ClusterDetails,
    ClusterListItem, ClusterRef, CreatedCluster, CurrentState, FirewallSpec, IngressRule, Instance,
    ListedState, Membership, Process, SenvAlias, SoftwareAlias, SoftwareBuild, SoftwareSpec,
    SpecRead, User,
};

/// The Coiled client release whose wire behaviour this client follows; servers use the
/// `Client-Version` header for their minimum-version check.
pub const API_CLIENT_VERSION: &str = "1.135.6";

/// A secret string (API token, cloud key) that never shows in `Debug` or `Display` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
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

/// `text` with the credentials of every URL in it hidden, as pip hides them in its own output: a
/// user and password show as `user:****`, a user alone (often a token) as `****`. Text a server
/// returns (error messages, build logs) can quote the index URLs a `pip` argument carries.
pub fn hide_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| "/?#\"'`,;()<>[]{}".contains(c) || c.is_whitespace())
            .unwrap_or(tail.len());
        let authority = &tail[..end];
        if let Some((user, host)) = authority.rsplit_once('@') {
            match user.split_once(':') {
                Some((name, _)) => out.push_str(&format!("{name}:****@{host}")),
                None => out.push_str(&format!("****@{host}")),
            }
        } else {
            out.push_str(authority);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn config(server: &str, token: &str, allow_insecure_http: bool) -> ClientConfig {
        ClientConfig {
            server: server.into(),
            token: Secret::new(token),
            allow_insecure_http,
            ca_bundle_pem: None,
            retry: RetryPolicy::default(),
        }
    }

    #[test]
    fn url_credentials_are_hidden() {
        for (text, shown) in [
            (
                "pip: --extra-index-url https://bob:Pass1@pypi.example/simple x",
                "pip: --extra-index-url https://bob:****@pypi.example/simple x",
            ),
            (
                "https://TOKEN@host/a and http://u:p@h:8080?q",
                "https://****@host/a and http://u:****@h:8080?q",
            ),
            ("'git+https://t0k@github.com/o/r.git'", "'git+https://****@github.com/o/r.git'"),
            ("no url, a@b, http://host/a@b, ://", "no url, a@b, http://host/a@b, ://"),
            (
                "(https://h.io), https://example.com,bob@x.org",
                "(https://h.io), https://example.com,bob@x.org",
            ),
            ("--index-url=https://u:p@h/simple", "--index-url=https://u:****@h/simple"),
        ] {
            assert_eq!(hide_url_credentials(text), shown);
        }
        // As answers are read: reasons and log lines.
        let reason = r#"{"state": "error", "reason": "pip https://u:p@h/x failed"}"#;
        let state: CurrentState = serde_json::from_str(reason).unwrap();
        assert_eq!(state.reason(), Some("pip https://u:****@h/x failed"));
        let missing: SoftwareBuild =
            serde_json::from_str(r#"{"id": 1, "state": "built"}"#).unwrap();
        assert_eq!(missing.reason, None);
        let line: BuildLogEvent =
            serde_json::from_str(r#"{"eventId": 1, "message": "at https://t@h/"}"#).unwrap();
        assert_eq!(line.message, "at https://****@h/");
        let null: BuildLogEvent =
            serde_json::from_str(r#"{"eventId": 2, "message": null}"#).unwrap();
        assert_eq!(null.message, "");
    }

    #[test]
    fn error_bodies_are_read_like_the_coiled_client() {
        let e =
            error_from_body(400, r#"{"code":"NO_CLOUD_SETUP","message":"No cloud setup"}"#, "/x");
        assert!(
            matches!(e, ApiError::Status { status: 400, ref message, code: Some(ref c) } if message == "No cloud setup" && c == "NO_CLOUD_SETUP")
        );
        assert_eq!(
            error_from_body(400, r#"{"non_field_errors":["bad"]}"#, "/x").to_string(),
            "HTTP 400: bad"
        );
        assert!(matches!(
            error_from_body(401, r#"{"detail":"Invalid token."}"#, "/x"),
            ApiError::Unauthorized { .. }
        ));
        assert!(error_from_body(404, r#"{"detail":"Not found."}"#, "/x").is_not_found());
        for body in
            ["", "<html><body>Not Found</body></html>", "{}", r#"{"error":"no route"}"#, "[]"]
        {
            let e = error_from_body(404, body, "/api/v2/x");
            assert!(!e.is_not_found() && e.to_string().contains("/api/v2/x"), "{body:?}: {e}");
        }
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
        let cfg = |server, allow| config(server, "t", allow);
        assert!(Client::new(cfg("http://127.0.0.1:1", false)).is_ok());
        assert!(Client::new(cfg("http://localhost:1", false)).is_ok());
        assert!(matches!(
            Client::new(cfg("http://example.com", false)),
            Err(ApiError::Insecure { .. })
        ));
        assert!(Client::new(cfg("http://example.com", true)).is_ok());
        assert!(Client::new(cfg("https://example.com", false)).is_ok());
    }

    #[test]
    fn auth_scheme_depends_on_the_token() {
        let cfg = |t| config("https://x", t, false);
        assert_eq!(Client::new(cfg("abc-123")).unwrap().auth_header(), "ApiToken abc-123");
        assert_eq!(Client::new(cfg("abc123")).unwrap().auth_header(), "Token abc123");
    }
}
