//! Every authenticated API request the server received, oldest first, for tests that compare what a
//! client sends with what the real `coiled` client sends (`GET /_local/requests`; `DELETE` clears).
//! Each text message on the `update_options` WebSocket is recorded too, with method `WS`. Secrets are
//! never kept: credentials, keys, tokens and passwords, and the values of `environ`, are recorded as
//! `***`, and the credentials of URLs (a `pip` index's) as pip shows them; and the log is bounded by
//! bytes as well as by count.

use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

/// At most this many requests are kept; older ones are dropped first.
const KEEP: usize = 20_000;
/// At most this many bytes of bodies are kept; older requests are dropped first, and a body larger
/// than a quarter of it is recorded by its size alone.
const KEEP_BYTES: usize = 16 << 20;

/// Keys whose values are secrets, by a part of their name (`aws_secret_access_key`, `..._wo`, a
/// service account's `private_key`, `token`, `password`, `gcp_service_creds_dict`).
const SECRET_KEY_PARTS: &[&str] =
    &["secret", "password", "token", "private_key", "creds", "credential"];

/// `value` with every secret replaced by `"***"`.
pub fn redact(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                let k = key.to_ascii_lowercase();
                if SECRET_KEY_PARTS.iter().any(|part| k.contains(part))
                    && !v.is_null()
                    && !v.is_object()
                {
                    *v = Value::String("***".into());
                } else if k == "environ" {
                    if let Value::Object(vars) = v {
                        vars.values_mut().for_each(|x| *x = Value::String("***".into()));
                    }
                } else {
                    redact(v);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact),
        Value::String(text) if text.contains('@') => *text = hide_url_credentials(text),
        _ => {}
    }
}

/// `text` with the credentials of its URLs hidden, as pip and conda hide them in their output
/// (`https://user:****@host`, a user alone as `****`): build logs and recorded requests show no
/// index password.
pub(crate) fn hide_url_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| "/?#\"'`,;()<>[]{}".contains(c) || c.is_whitespace())
            .unwrap_or(tail.len());
        match tail[..end].rsplit_once('@') {
            Some((user, host)) => match user.split_once(':') {
                Some((name, _)) => out.push_str(&format!("{name}:****@{host}")),
                None => out.push_str(&format!("****@{host}")),
            },
            None => out.push_str(&tail[..end]),
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// One recorded request.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recorded {
    /// `GET`, `POST`, … or `WS` for a WebSocket message.
    pub method: String,
    /// The path.
    pub path: String,
    /// The raw query string, `null` when there is none.
    pub query: Option<String>,
    /// The body parsed as JSON (Python's bare `NaN` / `Infinity` read as `null`), `null` when empty or
    /// not JSON.
    pub body: Value,
    /// When it arrived (Unix seconds).
    pub at: f64,
}

/// The log.
#[derive(Default)]
pub struct Requests {
    /// The requests, and the bytes their bodies take.
    inner: Mutex<(std::collections::VecDeque<Recorded>, usize)>,
}

impl Requests {
    /// Records one request.
    pub fn record(&self, method: &str, path: &str, query: Option<&str>, body: &[u8]) {
        let body = if body.is_empty() {
            Value::Null
        } else if body.len() > KEEP_BYTES / 4 {
            serde_json::json!({"omitted": format!("{} bytes", body.len())})
        } else {
            let mut parsed = crate::wire::parse_lenient(body).unwrap_or(Value::Null);
            redact(&mut parsed);
            parsed
        };
        let size = body.to_string().len();
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (log, bytes) = &mut *g;
        while log.len() >= KEEP || (*bytes + size > KEEP_BYTES && !log.is_empty()) {
            if let Some(old) = log.pop_front() {
                *bytes -= old.body.to_string().len();
            }
        }
        *bytes += size;
        log.push_back(Recorded {
            method: method.to_string(),
            path: path.to_string(),
            query: query.map(str::to_string),
            body,
            at: crate::unix_now(),
        });
    }
    /// Everything recorded, oldest first.
    pub fn snapshot(&self) -> Vec<Recorded> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0.iter().cloned().collect()
    }
    /// Forgets everything.
    pub fn clear(&self) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = Default::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_parsed_and_the_log_is_bounded() {
        let r = Requests::default();
        r.record("POST", "/api/x", Some("a=1"), br#"{"n": NaN}"#);
        r.record("GET", "/api/y", None, b"");
        let all = r.snapshot();
        assert_eq!(all[0].body, serde_json::json!({"n": null}));
        assert_eq!(all[1].body, Value::Null);
        assert_eq!(all[1].query, None);
        for _ in 0..KEEP {
            r.record("GET", "/", None, b"");
        }
        assert_eq!(r.snapshot().len(), KEEP);
        r.clear();
        assert!(r.snapshot().is_empty());
    }

    #[test]
    fn secrets_are_never_recorded_and_bodies_are_bounded_by_bytes() {
        let r = Requests::default();
        let body = br#"{"credentials": {"aws_access_key_id": "AKIA1", "aws_secret_access_key": "S3CRET"}, "token": "t0k",
            "options": {"environ": {"DB_PASSWORD": "hunter2"}}, "gcp_service_creds_dict": {"private_key": "KEY"}, "name": "kept"}"#;
        r.record("POST", "/api/x", None, body);
        let text = serde_json::to_string(&r.snapshot()).unwrap();
        for secret in ["S3CRET", "t0k", "hunter2", "KEY"] {
            assert!(!text.contains(secret), "{secret} recorded: {text}");
        }
        assert!(
            text.contains("kept") && text.contains("AKIA1") && text.contains("DB_PASSWORD"),
            "{text}"
        );
        // Large bodies are recorded by size, and the log drops old ones past its bytes.
        r.record("POST", "/api/big", None, &vec![b' '; KEEP_BYTES / 2]);
        assert!(serde_json::to_string(&r.snapshot()).unwrap().contains("omitted"));
        let chunk = format!("{{\"s\": \"{}\"}}", "x".repeat(KEEP_BYTES / 8));
        for _ in 0..20 {
            r.record("POST", "/api/x", None, chunk.as_bytes());
        }
        let kept: usize = r.snapshot().iter().map(|x| x.body.to_string().len()).sum();
        assert!(kept <= KEEP_BYTES, "{kept}");
    }
}
