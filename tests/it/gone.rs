//! What a 404 means: a resource is gone only when Coiled's API says so. A server (or a proxy) that
//! answers 404 to every path makes no refresh, plan or destroy forget what Terraform manages.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use crate::common::{Scenario, clis, flat};

const MANAGED: &str = r#"
resource "coiled_cluster" "c" {
  name      = "kept"
  software  = "dask"
  n_workers = 1
}
resource "coiled_software_environment" "e" {
  name      = "kept-env"
  container = "ghcr.io/dask/dask:latest"
}
"#;

/// A server on loopback that answers every request 404 with `body` (as `content_type`), until dropped.
struct AlwaysNotFound {
    url: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl AlwaysNotFound {
    /// With `identity`, `GET /api/v2/user/me` (and its memberships) answers as Coiled's API does, as a
    /// proxy that routes only some paths to Coiled would.
    fn start(content_type: &'static str, body: &'static str, identity: bool) -> AlwaysNotFound {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        listener.set_nonblocking(true).unwrap();
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok((stream, _)) = listener.accept() else {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    continue;
                };
                stream.set_nonblocking(false).unwrap();
                let mut reader = BufReader::new(stream);
                let mut line = String::new();
                let _ = reader.read_line(&mut line);
                let request = line.clone();
                // The request's head, up to its blank line; bodies are not read (the answer closes).
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let (status, content_type, body) = match request.split_whitespace().nth(1) {
                    Some("/api/v2/user/me") if identity => {
                        ("200 OK", "application/json", r#"{"username": "alice"}"#)
                    }
                    Some("/api/v2/user/me/memberships") if identity => (
                        "200 OK",
                        "application/json",
                        r#"[{"account": {"slug": "alice"}, "is_default_account": true}]"#,
                    ),
                    _ => ("404 Not Found", content_type, body),
                };
                let answer = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = reader.get_mut().write_all(answer.as_bytes());
            }
        });
        AlwaysNotFound { url, stop }
    }
}

impl Drop for AlwaysNotFound {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

#[test]
fn a_server_that_answers_404_to_everything_forgets_nothing() {
    // An HTML 404 for everything; Coiled's JSON 404 for everything; and Coiled's JSON 404 for all but
    // the user's identity, as a proxy that routes only some paths to Coiled would answer.
    let servers = [
        ("text/html", "<html><body><h1>Not Found</h1></body></html>", false),
        ("application/json", r#"{"detail": "Not found."}"#, false),
        ("application/json", r#"{"detail": "Not found."}"#, true),
    ];
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], MANAGED);
        s.apply();
        let state = s.state_text();
        for (content_type, body, identity) in servers {
            let fake = AlwaysNotFound::start(content_type, body, identity);
            s.tf.write(
                "main.tf",
                &Scenario::config(&s.server, MANAGED).replace(&s.server.url, &fake.url),
            );
            for args in [
                &["plan", "-no-color"][..],
                &["apply", "-refresh-only", "-auto-approve", "-no-color"],
                &["destroy", "-auto-approve", "-no-color"],
            ] {
                let out = s.tf.terraform(args);
                let text = flat(&out.all());
                assert_ne!(
                    out.code, 0,
                    "{} {args:?} against a {content_type} 404 server: {text}",
                    cli.version
                );
                assert!(text.contains(&fake.url), "the error names the URL: {text}");
                assert!(
                    !text.contains("will be created")
                        && !text.contains("No Longer")
                        && !text.contains("<html>"),
                    "{text}"
                );
                assert_eq!(s.state_text(), state, "{} {args:?}: state unchanged", cli.version);
            }
        }
        // Back on the real server, nothing was lost.
        s.set(MANAGED);
        s.assert_no_changes();
        assert_eq!(s.server.running_named("kept").len(), 1);
    }
}
