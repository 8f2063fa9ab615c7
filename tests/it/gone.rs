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
    fn start(content_type: &'static str, body: &'static str) -> AlwaysNotFound {
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
                // The request's head, up to its blank line; bodies are not read (the answer closes).
                while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                    line.clear();
                }
                let answer = format!(
                    "HTTP/1.1 404 Not Found\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
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
    let servers = [("text/html", "<html><body><h1>Not Found</h1></body></html>"), ("application/json", r#"{"detail": "Not found."}"#)];
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], MANAGED);
        s.apply();
        let state = s.state_text();
        for (content_type, body) in servers {
            let fake = AlwaysNotFound::start(content_type, body);
            s.tf.write("main.tf", &Scenario::config(&s.server, MANAGED).replace(&s.server.url, &fake.url));
            for args in [
                &["plan", "-no-color"][..],
                &["apply", "-refresh-only", "-auto-approve", "-no-color"],
                &["destroy", "-auto-approve", "-no-color"],
            ] {
                let out = s.tf.terraform(args);
                let text = flat(&out.all());
                assert_ne!(out.code, 0, "{} {args:?} against a {content_type} 404 server: {text}", cli.version);
                assert!(text.contains(&fake.url), "the error names the URL: {text}");
                assert!(!text.contains("will be created") && !text.contains("No Longer"), "{text}");
                assert_eq!(s.state_text(), state, "{} {args:?}: state unchanged", cli.version);
            }
        }
        // Back on the real server, nothing was lost.
        s.set(MANAGED);
        s.assert_no_changes();
        assert_eq!(s.server.running_named("kept").len(), 1);
    }
}
