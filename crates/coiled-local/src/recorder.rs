//! Every API request the server received, oldest first, for tests that compare what a client sends
//! with what the real `coiled` client sends (`GET /_local/requests`; `DELETE` clears). Each text
//! message on the `update_options` WebSocket is recorded too, with method `WS`.

use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;

/// At most this many requests are kept; older ones are dropped first.
const KEEP: usize = 20_000;

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
    inner: Mutex<std::collections::VecDeque<Recorded>>,
}

impl Requests {
    /// Records one request.
    pub fn record(&self, method: &str, path: &str, query: Option<&str>, body: &[u8]) {
        let body = if body.is_empty() { Value::Null } else { crate::wire::parse_lenient(body).unwrap_or(Value::Null) };
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.len() == KEEP {
            g.pop_front();
        }
        g.push_back(Recorded {
            method: method.to_string(),
            path: path.to_string(),
            query: query.map(str::to_string),
            body,
            at: crate::unix_now(),
        });
    }
    /// Everything recorded, oldest first.
    pub fn snapshot(&self) -> Vec<Recorded> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).iter().cloned().collect()
    }
    /// Forgets everything.
    pub fn clear(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clear();
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
}
