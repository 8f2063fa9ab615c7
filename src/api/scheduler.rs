//! The Dask scheduler's own protocol, as far as Coiled's client uses it when it scales down:
//! `Cluster.scale_down` asks the scheduler to `retire_workers(names=…, remove=True,
//! close_workers=True)`, so that their data moves to the workers that stay, before it deletes them.
//!
//! The connection is TLS with the cluster's certificate and key as Coiled's `GatewaySecurity` makes
//! it: the certificate is the client's own and the authority the scheduler's is checked against,
//! and the scheduler's name is not checked (it is reached by IP). Messages are Dask's: a handshake
//! each way, then one request and its reply, each a msgpack frame behind Dask's framing (a
//! little-endian `u64` byte count, the frame count and each frame's length, then the frames).

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, Error as TlsError, SignatureScheme};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// How long a connection to the scheduler may take to open: one that cannot be reached does not
/// hold a scale-down for its whole timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest reply read (a retirement answers one small record per worker).
const MAX_REPLY: u64 = 64 << 20;

/// Asks the scheduler at `address` (`tls://HOST:PORT`) to retire the workers `names`, as Coiled's
/// client does, within `timeout`; returns the names of the workers it retired. An error says why it
/// could not be asked or what it answered.
pub async fn retire_workers(
    address: &str,
    cert_pem: &str,
    key_pem: &str,
    names: &[String],
    timeout: Duration,
) -> Result<Vec<String>, String> {
    let exchange = async {
        let mut stream = connect(address, cert_pem, key_pem).await?;
        write_message(&mut stream, &handshake()).await?;
        read_message(&mut stream).await?;
        write_message(&mut stream, &retire_request(names)).await?;
        let reply = read_message(&mut stream).await?;
        let _ = stream.shutdown().await;
        retired_names(&reply)
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("the scheduler did not answer within {} s", timeout.as_secs()))?
}

/// Whether a TCP connection to the scheduler at `address` opens within `timeout`: whether this
/// machine can reach it at all.
pub async fn reachable(address: &str, timeout: Duration) -> bool {
    let Ok(target) = host_port(address) else { return false };
    matches!(tokio::time::timeout(timeout, tokio::net::TcpStream::connect(target)).await, Ok(Ok(_)))
}

/// `HOST:PORT` of a `tls://HOST:PORT` address (IPv6 in brackets).
fn host_port(address: &str) -> Result<String, String> {
    let rest = address.strip_prefix("tls://").map(str::to_string);
    rest.ok_or_else(|| format!("{address:?} is not a tls:// address"))
}

async fn connect(
    address: &str,
    cert_pem: &str,
    key_pem: &str,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    let target = host_port(address)?;
    let host = target
        .rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or_default();
    let ip: std::net::IpAddr =
        host.parse().map_err(|_| format!("{address:?} does not name the scheduler by IP"))?;
    let config = tls_config(cert_pem, key_pem)?;
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(&target))
        .await
    {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return Err(format!("cannot connect to {address}: {e}")),
        Err(_) => {
            return Err(format!(
                "cannot connect to {address} within {} s",
                CONNECT_TIMEOUT.as_secs()
            ));
        }
    };
    let _ = tcp.set_nodelay(true);
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::IpAddress(ip.into()), tcp)
        .await
        .map_err(|e| format!("the TLS handshake with {address} failed: {e}"))
}

/// The client side of `GatewaySecurity`: the cluster's certificate as client certificate and as the
/// authority for the scheduler's, no name check.
fn tls_config(cert_pem: &str, key_pem: &str) -> Result<rustls::ClientConfig, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("the cluster's certificate is not PEM: {e}"))?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
        .map_err(|e| format!("the cluster's key is not PEM: {e}"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in &certs {
        let _ = roots.add(cert.clone());
    }
    let webpki = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .ok();
    let verifier = ClusterAuthority { certs: certs.clone(), webpki, provider: provider.clone() };
    rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(certs, key)
        .map_err(|e| format!("the cluster's certificate and key do not go together: {e}"))
}

/// Checks the scheduler's certificate as Python's `ssl` does with the cluster's certificate as its
/// only authority and `check_hostname = False`: the certificate itself, or one it issued.
#[derive(Debug)]
struct ClusterAuthority {
    certs: Vec<CertificateDer<'static>>,
    webpki: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for ClusterAuthority {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        if self.certs.iter().any(|c| c.as_ref() == end_entity.as_ref()) {
            return Ok(ServerCertVerified::assertion());
        }
        let webpki = self
            .webpki
            .as_ref()
            .ok_or(TlsError::InvalidCertificate(CertificateError::UnknownIssuer))?;
        match webpki.verify_server_cert(end_entity, intermediates, server_name, ocsp, now) {
            Err(TlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// The handshake a Dask comm sends first (`Comm.handshake_info`): no compression.
fn handshake() -> Vec<u8> {
    let mut m = Vec::new();
    map(&mut m, 3);
    text(&mut m, "compression");
    let _ = rmp::encode::write_nil(&mut m);
    text(&mut m, "python");
    let _ = rmp::encode::write_array_len(&mut m, 3);
    for part in [3u64, 11, 0] {
        let _ = rmp::encode::write_uint(&mut m, part);
    }
    text(&mut m, "pickle-protocol");
    let _ = rmp::encode::write_uint(&mut m, 5);
    m
}

/// `rpc.retire_workers(names=…, remove=True, close_workers=True)`, as the rpc sends it (with
/// `reply`).
fn retire_request(names: &[String]) -> Vec<u8> {
    let mut m = Vec::new();
    map(&mut m, 5);
    text(&mut m, "op");
    text(&mut m, "retire_workers");
    text(&mut m, "names");
    let _ = rmp::encode::write_array_len(&mut m, names.len() as u32);
    for name in names {
        text(&mut m, name);
    }
    for key in ["remove", "close_workers", "reply"] {
        text(&mut m, key);
        let _ = rmp::encode::write_bool(&mut m, true);
    }
    m
}

fn map(m: &mut Vec<u8>, len: u32) {
    let _ = rmp::encode::write_map_len(m, len);
}

fn text(m: &mut Vec<u8>, s: &str) {
    let _ = rmp::encode::write_str(m, s);
}

/// The workers a `retire_workers` reply names: `{address: {name, …}}`, or the scheduler's error.
fn retired_names(reply: &Value) -> Result<Vec<String>, String> {
    let Some(workers) = reply.as_object() else {
        return Err(format!("the scheduler answered {reply}"));
    };
    if workers.get("status").and_then(Value::as_str).is_some_and(|s| s != "OK") {
        let text = workers.get("text").and_then(Value::as_str).unwrap_or("no reason given");
        return Err(format!("the scheduler refused: {text}"));
    }
    Ok(workers
        .values()
        .filter_map(|w| w.get("name"))
        .map(|n| n.as_str().map_or_else(|| n.to_string(), str::to_string))
        .collect())
}

/// Writes one message as Dask frames it: one msgpack frame.
async fn write_message<S: AsyncWriteExt + Unpin>(
    stream: &mut S,
    frame: &[u8],
) -> Result<(), String> {
    let mut out = Vec::with_capacity(frame.len() + 24);
    // The byte count of what follows the count: the prelude (frame count, each frame's length) and
    // the frames.
    out.extend_from_slice(&(16 + frame.len() as u64).to_le_bytes());
    out.extend_from_slice(&1u64.to_le_bytes());
    out.extend_from_slice(&(frame.len() as u64).to_le_bytes());
    out.extend_from_slice(frame);
    stream.write_all(&out).await.map_err(|e| format!("writing to the scheduler failed: {e}"))?;
    stream.flush().await.map_err(|e| format!("writing to the scheduler failed: {e}"))
}

/// Reads one message and decodes its first frame (the message; later frames carry serialized
/// objects, which a retirement's reply needs none of).
async fn read_message<S: AsyncReadExt + Unpin>(stream: &mut S) -> Result<Value, String> {
    let gone = |e: std::io::Error| format!("the scheduler closed the connection: {e}");
    let total = stream.read_u64_le().await.map_err(gone)?;
    if total > MAX_REPLY {
        return Err(format!("the scheduler's answer is {total} bytes, more than expected"));
    }
    let mut buf = vec![0u8; total as usize];
    stream.read_exact(&mut buf).await.map_err(gone)?;
    let word = |at: usize| {
        buf.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()))
    };
    let frames = word(0).ok_or("the scheduler's answer is cut short")?;
    let first =
        word(8).filter(|_| frames > 0).ok_or("the scheduler's answer has no frame")? as usize;
    let start = 8 * (1 + frames as usize);
    let frame = buf.get(start..start + first).ok_or("the scheduler's answer is cut short")?;
    // Frames past this buffer (large buffers Dask sends apart) are read and dropped.
    let lengths: u64 = (0..frames as usize).filter_map(|i| word(8 * (1 + i))).sum();
    let in_buffer = lengths.min(total - start as u64);
    let rest = lengths - in_buffer;
    let value = decode(&mut &frame[..], 0)?;
    if rest > 0 {
        tokio::io::copy(&mut stream.take(rest), &mut tokio::io::sink()).await.map_err(gone)?;
    }
    Ok(value)
}

/// A msgpack value as JSON: extensions (Dask's serialized objects) read as null.
fn decode(r: &mut &[u8], depth: u32) -> Result<Value, String> {
    use rmp::Marker;
    if depth > 32 {
        return Err("the scheduler's answer nests too deep".into());
    }
    let marker = rmp::decode::read_marker(r).map_err(|_| bad())?;
    Ok(match marker {
        Marker::Null => Value::Null,
        Marker::True => Value::Bool(true),
        Marker::False => Value::Bool(false),
        Marker::FixPos(n) => Value::from(n),
        Marker::FixNeg(n) => Value::from(n),
        Marker::U8 => Value::from(be(r, 1)?),
        Marker::U16 => Value::from(be(r, 2)?),
        Marker::U32 => Value::from(be(r, 4)?),
        Marker::U64 => Value::from(be(r, 8)?),
        Marker::I8 => Value::from(be(r, 1)? as u8 as i8),
        Marker::I16 => Value::from(be(r, 2)? as u16 as i16),
        Marker::I32 => Value::from(be(r, 4)? as u32 as i32),
        Marker::I64 => Value::from(be(r, 8)? as i64),
        Marker::F32 => Value::from(f64::from(f32::from_bits(be(r, 4)? as u32))),
        Marker::F64 => Value::from(f64::from_bits(be(r, 8)?)),
        Marker::FixStr(n) => lossy_text(take(r, n as usize)?),
        Marker::Str8 | Marker::Str16 | Marker::Str32 => {
            let n = be(r, width(marker))? as usize;
            lossy_text(take(r, n)?)
        }
        Marker::Bin8 | Marker::Bin16 | Marker::Bin32 => {
            let n = be(r, width(marker))? as usize;
            take(r, n)?;
            Value::Null
        }
        Marker::FixArray(n) => array(r, n as u64, depth)?,
        Marker::Array16 | Marker::Array32 => {
            let n = be(r, width(marker))?;
            array(r, n, depth)?
        }
        Marker::FixMap(n) => object(r, n as u64, depth)?,
        Marker::Map16 | Marker::Map32 => {
            let n = be(r, width(marker))?;
            object(r, n, depth)?
        }
        // FixExt1 (0xd4) to FixExt16 (0xd8): a type byte, then 1, 2, 4, 8 or 16 bytes.
        Marker::FixExt1
        | Marker::FixExt2
        | Marker::FixExt4
        | Marker::FixExt8
        | Marker::FixExt16 => {
            take(r, 1 + (1 << (marker.to_u8() - 0xd4)))?;
            Value::Null
        }
        Marker::Ext8 | Marker::Ext16 | Marker::Ext32 => {
            let n = be(r, width(marker))? as usize;
            take(r, 1 + n)?;
            Value::Null
        }
        Marker::Reserved => return Err(bad()),
    })
}

fn bad() -> String {
    "the scheduler's answer is not msgpack".to_string()
}

/// The next `n` bytes.
fn take(r: &mut &[u8], n: usize) -> Result<Vec<u8>, String> {
    if r.len() < n {
        return Err(bad());
    }
    let (head, tail) = r.split_at(n);
    *r = tail;
    Ok(head.to_vec())
}

/// The next `n` bytes as a big-endian number.
fn be(r: &mut &[u8], n: usize) -> Result<u64, String> {
    Ok(take(r, n)?.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// The width of the length after a marker of a string, binary, array, map or extension.
fn width(marker: rmp::Marker) -> usize {
    use rmp::Marker as M;
    match marker {
        M::Str8 | M::Bin8 | M::Ext8 => 1,
        M::Str16 | M::Bin16 | M::Array16 | M::Map16 | M::Ext16 => 2,
        _ => 4,
    }
}

fn lossy_text(bytes: Vec<u8>) -> Value {
    Value::String(String::from_utf8_lossy(&bytes).into_owned())
}

fn array(r: &mut &[u8], n: u64, depth: u32) -> Result<Value, String> {
    if n > r.len() as u64 {
        return Err("the scheduler's answer is cut short".into());
    }
    (0..n).map(|_| decode(r, depth + 1)).collect::<Result<Vec<_>, _>>().map(Value::Array)
}

fn object(r: &mut &[u8], n: u64, depth: u32) -> Result<Value, String> {
    if n > r.len() as u64 {
        return Err("the scheduler's answer is cut short".into());
    }
    let mut out = serde_json::Map::new();
    for _ in 0..n {
        let key = match decode(r, depth + 1)? {
            Value::String(s) => s,
            other => other.to_string(),
        };
        out.insert(key, decode(r, depth + 1)?);
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_are_framed_as_dask_frames_them() {
        let mut wire = Vec::new();
        write_message(&mut wire, &retire_request(&["etl-worker-1".into()])).await.unwrap();
        // count of what follows, one frame, its length, then the frame
        let len = u64::from_le_bytes(wire[0..8].try_into().unwrap()) as usize;
        assert_eq!(len, wire.len() - 8);
        assert_eq!(u64::from_le_bytes(wire[8..16].try_into().unwrap()), 1);
        let back = read_message(&mut &wire[..]).await.unwrap();
        assert_eq!(back["op"], "retire_workers");
        assert_eq!(back["names"], serde_json::json!(["etl-worker-1"]));
        assert_eq!(
            (back["remove"].clone(), back["close_workers"].clone(), back["reply"].clone()),
            (true.into(), true.into(), true.into())
        );
        let mut wire = Vec::new();
        write_message(&mut wire, &handshake()).await.unwrap();
        let hello = read_message(&mut &wire[..]).await.unwrap();
        assert_eq!(hello["pickle-protocol"], 5);
        assert!(hello["compression"].is_null());
    }

    #[test]
    fn replies_name_the_retired_workers_or_say_why_not() {
        let reply =
            serde_json::json!({"tls://10.0.0.5:40000": {"name": "etl-worker-3", "type": "Worker"}});
        assert_eq!(retired_names(&reply).unwrap(), vec!["etl-worker-3"]);
        let error = serde_json::json!({"status": "uncaught-error", "text": "no such worker"});
        assert!(retired_names(&error).unwrap_err().contains("no such worker"));
        assert!(retired_names(&serde_json::json!({})).unwrap().is_empty());
    }

    #[test]
    fn hostile_msgpack_is_an_error() {
        for bytes in
            [&[0xdc, 0xff, 0xff][..], &[0xdf, 0xff, 0xff, 0xff, 0xff], &[0xd9, 0x10, 0x41], &[0xc1]]
        {
            assert!(decode(&mut &bytes[..], 0).is_err(), "{bytes:?}");
        }
        let mut nested = vec![0x91u8; 100];
        nested.push(0xc0);
        assert!(decode(&mut &nested[..], 0).is_err());
    }
}
