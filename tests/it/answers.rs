//! What the provider takes from a server: answers up to 32 MiB, and no redirect from `https://` down to
//! `http://`, where the token would travel in clear text.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use terraform_provider_coiled::api::{Client, ClientConfig, Op, RetryPolicy, Secret};

fn client(server: &str, ca_bundle_pem: Option<Vec<u8>>) -> Client {
    Client::new(ClientConfig {
        server: server.to_string(),
        token: Secret::new("t-1".to_string()),
        allow_insecure_http: false,
        ca_bundle_pem,
        retry: RetryPolicy {
            base: Duration::from_millis(20),
            max: Duration::from_millis(100),
            ..Default::default()
        },
    })
    .unwrap()
}

/// Serves each connection on loopback with `answer` (given the request line), in a thread of its own;
/// counts the requests.
fn serve(
    answer: impl Fn(&str, &mut dyn Write) + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let (count, answer) = (seen.clone(), Arc::new(answer));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let (count, answer) = (count.clone(), answer.clone());
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                count.fetch_add(1, Ordering::SeqCst);
                answer(&first, reader.get_mut());
            });
        }
    });
    (url, seen)
}

#[test]
fn answers_larger_than_32_mib_are_not_read() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let op = || Op::new(Duration::from_secs(30), Default::default());
    // Said by its length, and sent without one (read until the connection closes).
    let (declared, _) = serve(|_, out| {
        let _ = out.write_all(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                40 << 20
            )
            .as_bytes(),
        );
    });
    let (streamed, _) = serve(|_, out| {
        let _ = out.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
        );
        let chunk = vec![b' '; 1 << 20];
        for _ in 0..40 {
            if out.write_all(&chunk).is_err() {
                return;
            }
        }
    });
    for server in [declared, streamed] {
        let e = rt.block_on(client(&server, None).me(&op())).unwrap_err();
        assert!(e.to_string().contains("larger than 32 MiB"), "{server}: {e}");
    }
}

#[test]
fn a_redirect_from_https_to_http_is_refused() {
    // The plain-HTTP server the redirect points at, which must see nothing.
    let (plain, reached) = serve(|_, out| {
        let _ = out.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 20\r\n\r\n{\"username\": \"eve\"}");
    });
    // An HTTPS server, with a certificate of a private CA, that redirects every request there.
    let dir = tempfile::tempdir().unwrap();
    crate::common::write_private_ca_certificate(dir.path());
    let certs: Vec<_> =
        rustls::pki_types::pem::PemObject::pem_file_iter(dir.path().join("cert.pem"))
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let key = rustls::pki_types::pem::PemObject::from_pem_file(dir.path().join("key.pem")).unwrap();
    let config = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let secure = format!("https://localhost:{}", listener.local_addr().unwrap().port());
    let target = plain.clone();
    std::thread::spawn(move || {
        for tcp in listener.incoming().flatten() {
            let (config, target) = (config.clone(), target.clone());
            std::thread::spawn(move || {
                let Ok(conn) = rustls::ServerConnection::new(config) else { return };
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if tls.read(&mut byte).unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let answer = format!(
                    "HTTP/1.1 302 Found\r\nLocation: {target}/api/v2/user/me\r\nContent-Length: 0\r\n\r\n"
                );
                let _ = tls.write_all(answer.as_bytes());
                let _ = tls.flush();
            });
        }
    });
    let ca = std::fs::read(dir.path().join("ca.pem")).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let started = std::time::Instant::now();
    let e = rt
        .block_on(
            client(&secure, Some(ca)).me(&Op::new(Duration::from_secs(20), Default::default())),
        )
        .unwrap_err();
    assert!(e.to_string().contains("https:// to http://"), "{e}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused at once, not retried: {:?}",
        started.elapsed()
    );
    assert_eq!(reached.load(Ordering::SeqCst), 0, "the token never went to the http:// server");
}
