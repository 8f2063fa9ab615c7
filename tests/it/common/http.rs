//! HTTP from tests, with the client library the provider itself uses (reqwest). A request is sent on
//! a thread and runtime of its own, so that plain and async tests call it alike, and that thread may
//! first enter a lab host's network namespace to send it from there.

use std::time::Duration;

/// One request, built up and then sent.
pub struct Http {
    method: reqwest::Method,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    ca_pem: Option<Vec<u8>>,
    any_certificate: bool,
    timeout: Duration,
    netns: Option<String>,
}

impl Http {
    /// A request of `method` (`GET`, `PUT`, …) to `url`.
    pub fn new(method: &str, url: &str) -> Http {
        Http {
            method: reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method"),
            url: url.to_string(),
            headers: Vec::new(),
            body: None,
            ca_pem: None,
            any_certificate: false,
            timeout: Duration::from_secs(30),
            netns: None,
        }
    }

    /// A `GET` of `url`.
    pub fn get(url: &str) -> Http {
        Http::new("GET", url)
    }

    /// With a header.
    pub fn header(mut self, name: &str, value: &str) -> Http {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// With a body (and `Content-Type: application/json` when it is JSON).
    pub fn json(mut self, body: &serde_json::Value) -> Http {
        self.headers.push(("Content-Type".into(), "application/json".into()));
        self.body = Some(body.to_string());
        self
    }

    /// With a raw body.
    pub fn body(mut self, body: &str) -> Http {
        self.body = Some(body.to_string());
        self
    }

    /// Trusting the certificate authority in `pem` (HTTPS).
    pub fn ca(mut self, pem: &[u8]) -> Http {
        self.ca_pem = Some(pem.to_vec());
        self
    }

    /// Accepting any server certificate (a lab host checks reachability, not identity).
    pub fn any_certificate(mut self) -> Http {
        self.any_certificate = true;
        self
    }

    /// Giving up after `timeout` (30 s unless set).
    pub fn timeout(mut self, timeout: Duration) -> Http {
        self.timeout = timeout;
        self
    }

    /// Sent from inside the network namespace `name` (as `ip netns exec` would).
    pub fn in_netns(mut self, name: &str) -> Http {
        self.netns = Some(name.to_string());
        self
    }

    /// The status and the body, or why there is no answer.
    pub fn send(self) -> Result<(u16, String), String> {
        std::thread::scope(|s| {
            s.spawn(move || self.send_here()).join().expect("the request thread")
        })
    }

    /// The status, or 0 when there is no answer.
    pub fn status(self) -> u16 {
        self.send().map_or(0, |(status, _)| status)
    }

    /// The status and the body as JSON (a string when it is not JSON); 0 when there is no answer.
    pub fn answer(self) -> (u16, serde_json::Value) {
        match self.send() {
            Ok((status, text)) => {
                (status, serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)))
            }
            Err(e) => (0, serde_json::Value::String(e)),
        }
    }

    fn send_here(self) -> Result<(u16, String), String> {
        if let Some(name) = &self.netns {
            let ns =
                std::fs::File::open(format!("/var/run/netns/{name}")).map_err(|e| e.to_string())?;
            nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| e.to_string())?;
        }
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async move {
            // Redirects are answers to look at, not to follow.
            let mut client = reqwest::Client::builder()
                .timeout(self.timeout)
                .redirect(reqwest::redirect::Policy::none());
            if let Some(pem) = &self.ca_pem {
                let ca = reqwest::Certificate::from_pem(pem).map_err(|e| e.to_string())?;
                client = client.add_root_certificate(ca);
            }
            if self.any_certificate {
                client = client.danger_accept_invalid_certs(true);
            }
            let client = client.build().map_err(|e| e.to_string())?;
            let mut request = client.request(self.method, &self.url);
            for (name, value) in &self.headers {
                request = request.header(name, value);
            }
            if let Some(body) = self.body {
                request = request.body(body);
            }
            let answer = request.send().await.map_err(|e| e.to_string())?;
            let status = answer.status().as_u16();
            Ok((status, answer.text().await.map_err(|e| e.to_string())?))
        })
    }
}
