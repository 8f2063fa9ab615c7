//! Installing the provider the way users do, through Terraform's provider registry protocol (service
//! discovery, versions, a download with its signing key) and its provider network mirror protocol,
//! from a local HTTPS server: `terraform init` installs a release and checks its signature, and
//! refuses an archive or a `SHA256SUMS` altered after signing. The signing key is made here.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};

use serde_json::json;

use crate::common::{Workdir, clis};

const VERSION: &str = "0.1.0";
const ZIP: &str = "terraform-provider-coiled_0.1.0_linux_amd64.zip";
const SUMS: &str = "terraform-provider-coiled_0.1.0_SHA256SUMS";

/// A static HTTPS server on 127.0.0.1 for `localhost`, its answers replaceable while it runs.
struct Server {
    port: u16,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    ca: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::tempdir().unwrap();
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, certified.cert.pem()).unwrap();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.key_pair.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
        let config = Arc::new(config);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let served = files.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (config, served) = (config.clone(), served.clone());
                std::thread::spawn(move || {
                    let conn = rustls::ServerConnection::new(config).unwrap();
                    let mut tls = rustls::StreamOwned::new(conn, stream);
                    let mut head = String::new();
                    let mut reader = BufReader::new(&mut tls);
                    if reader.read_line(&mut head).is_err() {
                        return;
                    }
                    let mut line = String::new();
                    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                        line.clear();
                    }
                    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let body = served.lock().unwrap().get(&path).cloned();
                    let (status, body) = match body {
                        Some(b) => ("200 OK", b),
                        None => ("404 Not Found", b"{}".to_vec()),
                    };
                    let kind = if body.starts_with(b"{") {
                        "application/json"
                    } else {
                        "application/octet-stream"
                    };
                    let head = format!(
                        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = tls
                        .write_all(head.as_bytes())
                        .and_then(|()| tls.write_all(&body))
                        .and_then(|()| tls.flush());
                    tls.conn.send_close_notify();
                    let _ = tls.flush();
                });
            }
        });
        Server { port, files, ca, _dir: dir }
    }

    fn put(&self, path: &str, body: impl Into<Vec<u8>>) {
        self.files.lock().unwrap().insert(path.to_string(), body.into());
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.port)
    }
}

/// The release of the built plugin, signed with a key made here: the archive, `SHA256SUMS`, its
/// signature, and the key's id and public half.
struct Release {
    zip: Vec<u8>,
    sums: Vec<u8>,
    sig: Vec<u8>,
    key_id: String,
    public_key: String,
    _home: tempfile::TempDir,
}

fn run(cmd: &mut Command) -> Vec<u8> {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn release() -> Release {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path();
    let zip = dir.join(ZIP);
    let script = "import sys, zipfile\nwith zipfile.ZipFile(sys.argv[2], 'w', zipfile.ZIP_DEFLATED) as z: z.write(sys.argv[1], 'terraform-provider-coiled_v0.1.0')";
    run(Command::new("python3").args([
        "-c",
        script,
        crate::common::PROVIDER_BIN,
        zip.to_str().unwrap(),
    ]));
    let sums = run(Command::new("sha256sum").arg(ZIP).current_dir(dir));
    std::fs::write(dir.join(SUMS), &sums).unwrap();
    let gpg = |args: &[&str]| {
        run(Command::new("gpg")
            .env("GNUPGHOME", dir)
            .args(["--batch", "--pinentry-mode", "loopback", "--passphrase", ""])
            .args(args)
            .current_dir(dir))
    };
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    gpg(&["--quick-gen-key", "Release Test <release@example.com>", "rsa3072", "sign", "never"]);
    let listing = String::from_utf8(gpg(&["--with-colons", "--list-keys"])).unwrap();
    let key_id = listing
        .lines()
        .find_map(|l| l.strip_prefix("pub:"))
        .and_then(|l| l.split(':').nth(3))
        .unwrap()
        .to_string();
    gpg(&["--detach-sign", SUMS]);
    let public_key = String::from_utf8(gpg(&["--armor", "--export", &key_id])).unwrap();
    Release {
        zip: std::fs::read(&zip).unwrap(),
        sums,
        sig: std::fs::read(dir.join(format!("{SUMS}.sig"))).unwrap(),
        key_id,
        public_key,
        _home: home,
    }
}

/// The registry protocol's answers for `release` (service discovery, versions, the download).
fn serve_registry(server: &Server, r: &Release) {
    server
        .put("/.well-known/terraform.json", json!({"providers.v1": "/v1/providers/"}).to_string());
    let platform = json!({"os": "linux", "arch": "amd64"});
    server.put(
        "/v1/providers/coiled/coiled/versions",
        json!({"versions": [{"version": VERSION, "protocols": ["6.0"], "platforms": [platform]}]})
            .to_string(),
    );
    let shasum = String::from_utf8_lossy(&r.sums).split_whitespace().next().unwrap().to_string();
    server.put(
        &format!("/v1/providers/coiled/coiled/{VERSION}/download/linux/amd64"),
        json!({
            "protocols": ["6.0"], "os": "linux", "arch": "amd64", "filename": ZIP,
            "download_url": server.url(&format!("/files/{ZIP}")),
            "shasums_url": server.url(&format!("/files/{SUMS}")),
            "shasums_signature_url": server.url(&format!("/files/{SUMS}.sig")),
            "shasum": shasum,
            "signing_keys": {"gpg_public_keys": [{"key_id": r.key_id, "ascii_armor": r.public_key}]},
        })
        .to_string(),
    );
    server.put(&format!("/files/{ZIP}"), r.zip.clone());
    server.put(&format!("/files/{SUMS}"), r.sums.clone());
    server.put(&format!("/files/{SUMS}.sig"), r.sig.clone());
}

/// A working directory that installs `source` through `installation` (a CLI configuration's
/// `provider_installation` body), trusting the server's certificate.
fn workdir(cli: &crate::common::Cli, server: &Server, source: &str, installation: &str) -> Workdir {
    let config = format!(
        "terraform {{\n  required_providers {{\n    coiled = {{\n      source = \"{source}\"\n    }}\n  }}\n}}\n"
    );
    let mut w = Workdir::new_uninitialised(cli, &config);
    w.set_cli_config(&format!("provider_installation {{\n{installation}\n}}\n"));
    w.set_env("SSL_CERT_FILE", &server.ca.display().to_string());
    w
}

fn init(w: &Workdir) -> crate::common::Run {
    w.terraform(&["init", "-no-color"])
}

#[test]
fn init_installs_a_signed_release_through_the_registry_protocol_and_refuses_an_altered_one() {
    let r = release();
    let server = Server::start();
    serve_registry(&server, &r);
    let source = format!("localhost:{}/coiled/coiled", server.port);
    for cli in clis() {
        let out = init(&workdir(cli, &server, &source, "  direct {}")).ok();
        let short = &r.key_id[r.key_id.len() - 8..];
        assert!(
            out.stdout.contains(&format!("Installed {source} v{VERSION}"))
                && out.all().contains(short),
            "{}: {}",
            cli.version,
            out.all()
        );

        // A file served altered after signing (`tail` appended): `init` fails, saying `why`; the
        // signed file is served again after.
        let refused = |file: &str, signed: &[u8], tail: &[u8], why: &str| {
            server.put(&format!("/files/{file}"), [signed, tail].concat());
            let out = init(&workdir(cli, &server, &source, "  direct {}"));
            assert_ne!(out.code, 0, "{}: {file} altered after signing was installed", cli.version);
            assert!(out.all().to_lowercase().contains(why), "{}", out.all());
            server.put(&format!("/files/{file}"), signed.to_vec());
        };
        // The archive: its checksum no longer matches the signed sums.
        refused(ZIP, &r.zip, b"tampered", "checksum");
        // The sums: the signature no longer verifies.
        refused(
            SUMS,
            &r.sums,
            b"0000000000000000000000000000000000000000000000000000000000000000  other.zip\n",
            "signature",
        );
    }
}

#[test]
fn init_installs_through_a_network_mirror_and_refuses_a_wrong_hash() {
    let r = release();
    let server = Server::start();
    let base = "/mirror/registry.terraform.io/coiled/coiled";
    server.put(&format!("{base}/index.json"), json!({"versions": {VERSION: {}}}).to_string());
    let zh = |zip: &[u8]| {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(ZIP), zip).unwrap();
        let sums = run(Command::new("sha256sum").arg(ZIP).current_dir(dir.path()));
        format!("zh:{}", String::from_utf8_lossy(&sums).split_whitespace().next().unwrap())
    };
    let archives = |hash: &str| {
        json!({"archives": {"linux_amd64": {"url": format!("../../../../files/{ZIP}"), "hashes": [hash]}}}).to_string()
    };
    server.put(&format!("/files/{ZIP}"), r.zip.clone());
    let mirror = format!("  network_mirror {{\n    url = \"{}\"\n  }}", server.url("/mirror/"));
    for cli in clis() {
        server.put(&format!("{base}/{VERSION}.json"), archives(&zh(&r.zip)));
        let out = init(&workdir(cli, &server, "coiled/coiled", &mirror)).ok();
        assert!(
            out.stdout.contains(&format!("Installed coiled/coiled v{VERSION}")),
            "{}: {}",
            cli.version,
            out.all()
        );

        server.put(&format!("{base}/{VERSION}.json"), archives(&zh(b"another archive")));
        let out = init(&workdir(cli, &server, "coiled/coiled", &mirror));
        assert_ne!(
            out.code, 0,
            "{}: an archive that does not match the mirror's hash was installed",
            cli.version
        );
    }
}
