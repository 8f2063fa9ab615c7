//! How the WebSocket reaches the server: the same trust (platform roots plus `ca_bundle_file`) and
//! the same proxy variables (`HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY`, `NO_PROXY`, upper or lower
//! case) as the HTTP client, so that one configuration serves every connection. A proxy is used
//! through an HTTP `CONNECT` tunnel, as for HTTPS requests.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The platform's trust: its certificate store, as rustls-native-certs reads it (with
/// `SSL_CERT_FILE` and `SSL_CERT_DIR`, which it honours). A certificate rustls cannot use is
/// skipped, as the HTTP client skips it.
#[cfg(not(target_os = "macos"))]
fn platform_roots(roots: &mut rustls::RootCertStore) {
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
}

/// On macOS, whose certificate store only Apple's frameworks read: Mozilla's roots (webpki-roots,
/// as the HTTP client has them) and those of the PEM file `SSL_CERT_FILE` names.
#[cfg(target_os = "macos")]
fn platform_roots(roots: &mut rustls::RootCertStore) {
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in ssl_cert_file() {
        let _ = roots.add(cert);
    }
}

/// The certificates of the PEM file `SSL_CERT_FILE` names, which the macOS build adds to its roots
/// (elsewhere, the platform's store is read with it).
#[cfg(target_os = "macos")]
pub fn ssl_cert_file() -> Vec<rustls::pki_types::CertificateDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    let Some(pem) = std::env::var_os("SSL_CERT_FILE").and_then(|p| std::fs::read(p).ok()) else {
        return Vec::new();
    };
    rustls::pki_types::CertificateDer::pem_slice_iter(&pem).filter_map(Result::ok).collect()
}

/// The TLS client settings every WebSocket uses: the platform's roots and the extra CA bundle.
pub fn tls_config(ca_bundle_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    platform_roots(&mut roots);
    if let Some(pem) = ca_bundle_pem {
        let mut added = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| format!("the CA bundle is not valid PEM: {e}"))?;
            roots.add(cert).map_err(|e| {
                format!("the CA bundle holds a certificate that cannot be used: {e}")
            })?;
            added += 1;
        }
        if added == 0 {
            return Err("the CA bundle holds no certificate".into());
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
}

/// A proxy to tunnel through.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proxy {
    /// `host:port` of the proxy.
    pub address: String,
    /// `Proxy-Authorization` value, when the proxy URL carries a user.
    pub authorization: Option<String>,
}

/// The proxy for `url` (an `http(s)://` or `ws(s)://` URL) under the environment `var`, following
/// the conventions curl and the HTTP client follow, for the HTTP client and the WebSocket alike. A
/// loopback server is never reached through a proxy: the token would leave the machine (in clear
/// text, for `http://`). A proxy URL that cannot be used is an error, its credentials masked.
pub fn proxy_for(
    url: &url::Url,
    var: impl Fn(&str) -> Option<String>,
) -> Result<Option<Proxy>, String> {
    let get = |name: &str| {
        var(&name.to_ascii_lowercase())
            .or_else(|| var(&name.to_ascii_uppercase()))
            .filter(|v| !v.trim().is_empty())
    };
    let host = url
        .host_str()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase();
    let loopback =
        host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if loopback || get("no_proxy").is_some_and(|no_proxy| bypasses(&no_proxy, &host)) {
        return Ok(None);
    }
    let secure = matches!(url.scheme(), "https" | "wss");
    let Some(raw) =
        (if secure { get("https_proxy") } else { get("http_proxy") }).or_else(|| get("all_proxy"))
    else {
        return Ok(None);
    };
    let with_scheme = if raw.contains("://") { raw.clone() } else { format!("http://{raw}") };
    let shown = mask_credentials(&raw);
    let parsed = url::Url::parse(&with_scheme)
        .map_err(|e| format!("the proxy URL {shown:?} is not valid: {e}"))?;
    if parsed.scheme() != "http" {
        return Err(format!(
            "the proxy {shown:?} uses {}://; only http:// proxies (HTTP CONNECT) are supported",
            parsed.scheme()
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("the proxy URL {shown:?} names no host"));
    }
    let address = format!(
        "{}:{}",
        parsed.host_str().unwrap_or_default(),
        parsed.port_or_known_default().unwrap_or(80)
    );
    let authorization = (!parsed.username().is_empty()).then(|| {
        let user = percent_decode(parsed.username());
        let password = percent_decode(parsed.password().unwrap_or_default());
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
        )
    });
    Ok(Some(Proxy { address, authorization }))
}

/// `text` (a URL, or what was meant to be one) with the credentials of its authority
/// (`user:password@`) replaced by `***`, for messages.
pub fn mask_credentials(text: &str) -> String {
    let start = text.find("://").map_or(0, |i| i + 3);
    let end = text[start..].find(['/', '?', '#']).map_or(text.len(), |i| start + i);
    match text[start..end].rfind('@') {
        Some(at) => format!("{}***{}", &text[..start], &text[start + at..]),
        None => text.to_string(),
    }
}

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// Whether `NO_PROXY` exempts `host`: `*`, an exact host, a domain suffix (`.example.com` or
/// `example.com`), or an IP address.
fn bypasses(no_proxy: &str, host: &str) -> bool {
    no_proxy.split(',').map(|e| e.trim().to_ascii_lowercase()).filter(|e| !e.is_empty()).any(
        |entry| {
            if entry == "*" {
                return true;
            }
            let entry = entry.split(':').next().unwrap_or_default().trim_start_matches('*');
            let bare = entry.trim_start_matches('.');
            host == bare || host.ends_with(&format!(".{bare}"))
        },
    )
}

/// Opens the TCP connection for `url`: directly, or through `proxy`'s `CONNECT` tunnel.
pub async fn open(
    url: &url::Url,
    proxy: Option<&Proxy>,
    timeout: Duration,
) -> Result<TcpStream, String> {
    let host = url.host_str().ok_or("the URL has no host")?;
    let port = url.port_or_known_default().ok_or("the URL has no port")?;
    let target = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let work = async {
        match proxy {
            None => TcpStream::connect(&target).await.map_err(|e| connect_error(&target, &e)),
            Some(p) => {
                let mut stream = TcpStream::connect(&p.address).await.map_err(|e| {
                    format!("proxy {}: {}", p.address, connect_error(&p.address, &e))
                })?;
                stream.set_nodelay(true).ok();
                let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
                if let Some(auth) = &p.authorization {
                    request.push_str(&format!("Proxy-Authorization: {auth}\r\n"));
                }
                request.push_str("\r\n");
                let at_proxy = |e: String| format!("proxy {}: {e}", p.address);
                stream.write_all(request.as_bytes()).await.map_err(|e| at_proxy(e.to_string()))?;
                let head = read_head(&mut stream).await.map_err(at_proxy)?;
                let status = head.split_whitespace().nth(1).unwrap_or_default();
                if status != "200" {
                    let line = head.lines().next().unwrap_or_default();
                    return Err(format!(
                        "proxy {} refused the tunnel to {target}: {line}",
                        p.address
                    ));
                }
                Ok(stream)
            }
        }
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("connecting to {target} timed out after {} s", timeout.as_secs()))?
}

fn connect_error(target: &str, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::ConnectionRefused => format!("connection refused by {target}"),
        _ => format!("cannot connect to {target}: {e}"),
    }
}

/// Reads an HTTP response head (up to the blank line), byte by byte so nothing after it is
/// consumed.
async fn read_head(stream: &mut TcpStream) -> Result<String, String> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return Err("answer head too long".into());
        }
        match stream.read(&mut byte).await {
            Ok(0) => return Err("closed the connection".into()),
            Ok(_) => head.push(byte[0]),
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `proxy_for` the URL `url`, with only the variables `vars` set.
    fn proxy(url: &str, vars: &[(&str, &str)]) -> Result<Option<Proxy>, String> {
        let url = url::Url::parse(url).unwrap();
        proxy_for(&url, |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()))
    }

    #[test]
    fn proxies_follow_the_usual_variables() {
        let (https, plain) = ("wss://cloud.coiled.io/ws/", "ws://coiled.internal:8000/ws/");
        assert_eq!(proxy(https, &[]).unwrap(), None);
        let p = proxy(https, &[("HTTPS_PROXY", "http://proxy:3128")]).unwrap().unwrap();
        assert_eq!(p, Proxy { address: "proxy:3128".into(), authorization: None });
        assert_eq!(
            proxy(plain, &[("HTTPS_PROXY", "http://proxy:3128")]).unwrap(),
            None,
            "https proxy is not for ws://"
        );
        let p = proxy(plain, &[("http_proxy", "proxy:8080")]).unwrap().unwrap();
        assert_eq!(p.address, "proxy:8080");
        let p = proxy(https, &[("ALL_PROXY", "http://u%40x:p%3Aw@proxy")]).unwrap().unwrap();
        assert_eq!(p.address, "proxy:80");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(p.authorization.unwrap().trim_start_matches("Basic "))
            .unwrap();
        assert_eq!(String::from_utf8(decoded).unwrap(), "u@x:p:w");
        let https_proxy = ("HTTPS_PROXY", "http://p:1");
        for no in ["*", "coiled.io", ".coiled.io", "cloud.coiled.io", "other, coiled.io:443"] {
            assert_eq!(proxy(https, &[https_proxy, ("NO_PROXY", no)]).unwrap(), None, "{no}");
        }
        assert!(proxy(https, &[https_proxy, ("NO_PROXY", "oiled.io")]).unwrap().is_some());
        let e = proxy(https, &[("HTTPS_PROXY", "socks5://p:1")]).unwrap_err();
        assert!(e.contains("only http://"));
        // Loopback is never proxied.
        let both = [("HTTP_PROXY", "http://p:1"), ("ALL_PROXY", "http://p:1")];
        for local in [
            "http://127.0.0.1:8000/",
            "http://localhost:8000/",
            "http://[::1]:8000/",
            "ws://127.0.0.2/ws/",
        ] {
            assert_eq!(proxy(local, &both).unwrap(), None, "{local}");
        }
        // A proxy URL that cannot be used is refused, its password never shown.
        for bad in [
            "http://user:s3cret@",
            "http://user:s3cret@proxy:notaport",
            "socks5://user:s3cret@p:1",
            "http://user:s3cret@[::1",
        ] {
            let e = proxy(https, &[("HTTPS_PROXY", bad)]).unwrap_err();
            assert!(!e.contains("s3cret") && e.contains("***"), "{bad}: {e}");
        }
    }

    #[test]
    fn credentials_are_masked_in_what_is_shown() {
        assert_eq!(mask_credentials("http://u:p@host:1/x?y"), "http://***@host:1/x?y");
        assert_eq!(mask_credentials("u:p@host"), "***@host");
        assert_eq!(
            mask_credentials("https://host/a@b"),
            "https://host/a@b",
            "an @ in the path is no credential"
        );
        assert_eq!(mask_credentials("https://cloud.coiled.io"), "https://cloud.coiled.io");
    }
}
