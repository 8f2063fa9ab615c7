//! Reliability and security: the plugin channel accepts only Terraform, bad input never reaches the API,
//! faults and a restart mid-apply leave state matching the server, secrets never show, Ctrl-C is prompt.

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Cli, LocalServer, Scenario, clis};

fn openssl_p521_ca(dir: &Path, name: &str) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-521",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=localhost",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
        ])
        .arg("-keyout")
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(dir.join(format!("{name}.pem")))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A gRPC `GetMetadata` call over the plugin's unix socket, made as Terraform makes it: TLS trusting
/// only the certificate of the handshake (`server_cert`, DER), the client certificate `cert` (the
/// files [`openssl_p521_ca`] wrote) when given, HTTP/2. Returns the HTTP status, or 0 when the plugin
/// refused the connection.
fn grpc_call(socket: &str, server_cert: &[u8], dir: &Path, cert: Option<&str>) -> u16 {
    use http_body_util::Full;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    let config = plugin_tls::client_config(
        server_cert.to_vec(),
        cert.map(|c| {
            plugin_tls::p521_identity(&dir.join(format!("{c}.pem")), &dir.join(format!("{c}.key")))
        }),
    );
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let call = async {
            let stream = tokio::net::UnixStream::connect(socket).await.ok()?;
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
                .connect(name, stream)
                .await
                .ok()?;
            let (mut send, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
                    .await
                    .ok()?;
            tokio::spawn(connection);
            let request = http::Request::post("https://localhost/tfplugin6.Provider/GetMetadata")
                .header("content-type", "application/grpc")
                .header("te", "trailers")
                .body(Full::new(bytes::Bytes::from_static(&[0u8; 5])))
                .unwrap();
            Some(send.send_request(request).await.ok()?.status().as_u16())
        };
        tokio::time::timeout(Duration::from_secs(5), call).await.ok().flatten().unwrap_or(0)
    })
}

/// The client side of the plugin's TLS, as go-plugin's client sets it up for Terraform.
mod plugin_tls {
    use std::path::Path;
    use std::sync::Arc;

    use p521::ecdsa::signature::Signer as _;
    use p521::pkcs8::DecodePrivateKey as _;
    use rustls::client::ResolvesClientCert;
    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::CryptoProvider;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::sign::{CertifiedKey, Signer, SigningKey};
    use rustls::{DigitallySignedStruct, SignatureAlgorithm, SignatureScheme};

    /// A client configuration that trusts `server_cert` alone and presents `identity` when given.
    pub fn client_config(
        server_cert: Vec<u8>,
        identity: Option<Arc<CertifiedKey>>,
    ) -> rustls::ClientConfig {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Pinned { der: server_cert, provider }));
        let mut config = match identity {
            Some(identity) => builder.with_client_cert_resolver(Arc::new(Identity(identity))),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = vec![b"h2".to_vec()];
        config
    }

    /// A P-521 certificate and its PKCS#8 key, from PEM files (ring cannot sign with P-521).
    pub fn p521_identity(cert: &Path, key: &Path) -> Arc<CertifiedKey> {
        let der = |path: &Path| -> Vec<u8> {
            use base64::Engine as _;
            let text = std::fs::read_to_string(path).unwrap();
            let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
            base64::engine::general_purpose::STANDARD.decode(body).unwrap()
        };
        let secret = p521::SecretKey::from_pkcs8_der(&der(key)).unwrap();
        let key =
            P521Key(Arc::new(p521::ecdsa::SigningKey::from_bytes(&secret.to_bytes()).unwrap()));
        Arc::new(CertifiedKey::new(vec![CertificateDer::from(der(cert))], Arc::new(key)))
    }

    struct P521Key(Arc<p521::ecdsa::SigningKey>);

    impl std::fmt::Debug for P521Key {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("P521Key")
        }
    }

    impl SigningKey for P521Key {
        fn choose_scheme(&self, offered: &[SignatureScheme]) -> Option<Box<dyn Signer>> {
            offered
                .contains(&SignatureScheme::ECDSA_NISTP521_SHA512)
                .then(|| Box::new(P521Key(self.0.clone())) as Box<dyn Signer>)
        }

        fn algorithm(&self) -> SignatureAlgorithm {
            SignatureAlgorithm::ECDSA
        }
    }

    impl Signer for P521Key {
        fn sign(&self, message: &[u8]) -> Result<Vec<u8>, rustls::Error> {
            let signature: p521::ecdsa::Signature = self.0.sign(message);
            Ok(signature.to_der().as_bytes().to_vec())
        }

        fn scheme(&self) -> SignatureScheme {
            SignatureScheme::ECDSA_NISTP521_SHA512
        }
    }

    #[derive(Debug)]
    struct Identity(Arc<CertifiedKey>);

    impl ResolvesClientCert for Identity {
        fn resolve(&self, _: &[&[u8]], _: &[SignatureScheme]) -> Option<Arc<CertifiedKey>> {
            Some(self.0.clone())
        }

        fn has_certs(&self) -> bool {
            true
        }
    }

    /// Trusts the one certificate the handshake line named.
    #[derive(Debug)]
    struct Pinned {
        der: Vec<u8>,
        provider: Arc<CryptoProvider>,
    }

    impl ServerCertVerifier for Pinned {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            _: &[CertificateDer<'_>],
            _: &ServerName<'_>,
            _: &[u8],
            _: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            if end_entity.as_ref() == self.der.as_slice() {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(rustls::Error::General("not the certificate of the handshake".into()))
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
}

#[test]
fn the_plugin_channel_accepts_only_the_certificate_terraform_names() {
    let dir = tempfile::tempdir().unwrap();
    openssl_p521_ca(dir.path(), "terraform");
    openssl_p521_ca(dir.path(), "intruder");
    let client_cert = std::fs::read_to_string(dir.path().join("terraform.pem")).unwrap();
    let (mut child, line) = crate::common::start_plugin(&[
        ("PLUGIN_PROTOCOL_VERSIONS", "6"),
        ("PLUGIN_CLIENT_CERT", client_cert.as_str()),
        ("TMPDIR", dir.path().to_str().unwrap()),
    ]);
    let parts: Vec<&str> = line.trim().split('|').collect();
    assert_eq!(&parts[..3], ["1", "6", "unix"], "{line}");
    assert_eq!(parts[4], "grpc");
    let socket = parts[3].to_string();
    let server_cert = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD_NO_PAD.decode(parts[5]).unwrap()
    };
    let socket_dir = Path::new(&socket).parent().unwrap().to_path_buf();
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&socket_dir).unwrap().permissions(),
    ) & 0o777;
    assert_eq!(mode, 0o700, "socket directory mode");

    assert_eq!(
        grpc_call(&socket, &server_cert, dir.path(), None),
        0,
        "a client without a certificate must be refused"
    );
    assert_eq!(
        grpc_call(&socket, &server_cert, dir.path(), Some("intruder")),
        0,
        "a client with another certificate must be refused"
    );
    assert_eq!(
        grpc_call(&socket, &server_cert, dir.path(), Some("terraform")),
        200,
        "Terraform's certificate must be accepted"
    );

    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit on SIGTERM");
    assert!(!socket_dir.exists(), "the socket directory is removed on exit");
}

const TEAM: &str = r#"
resource "coiled_backend_options" "team" {
  backend               = "aws"
  aws_access_key_id     = "AKIAEXAMPLE"
  aws_secret_access_key = "example-secret"
  ingress {
    ports = [8786, 8787]
    cidr  = "10.1.0.0/16"
  }
}
"#;

const ETL: &str = r#"
resource "coiled_cluster" "etl" {
  software  = "dask"
  name      = "etl"
  n_workers = 2
  backend_options {
    ingress {
      ports = [8786]
      cidr  = "10.1.0.0/16"
    }
  }
}
"#;

/// At least 40 invalid configurations across the provider and both resources: each fails with an error
/// diagnostic about the attribute, no panic, and no API request.
#[test]
fn forty_invalid_configurations_make_no_api_request() {
    let team = |from: &str, to: &str| TEAM.replace(from, to);
    let etl = |from: &str, to: &str| ETL.replace(from, to);
    let add_team = |extra: &str| TEAM.replace("  backend ", &format!("  {extra}\n  backend "));
    let add_etl = |extra: &str| ETL.replace("  n_workers", &format!("  {extra}\n  n_workers"));
    let cases: Vec<(&str, String, &str)> = vec![
        ("cidr octet", team("10.1.0.0/16", "10.1.0.256/16"), "Invalid CIDR Block"),
        ("cidr prefix", team("10.1.0.0/16", "10.1.0.0/33"), "prefix length longer"),
        ("cidr v6 prefix", team("10.1.0.0/16", "2001:db8::/200"), "Invalid CIDR Block"),
        ("cidr letters", team("10.1.0.0/16", "ten.one/16"), "is not a CIDR block"),
        ("cidr spaces", team("10.1.0.0/16", " 10.1.0.0/16"), "is not a CIDR block"),
        ("cidr missing prefix", team("10.1.0.0/16", "10.1.0.0"), "has no prefix length"),
        ("cidr empty", team("10.1.0.0/16", ""), "a CIDR block is required"),
        ("cidr negative prefix", team("10.1.0.0/16", "10.1.0.0/-8"), "is not a CIDR block"),
        ("cidr wrong type", team("\"10.1.0.0/16\"", "[\"10.1.0.0/16\"]"), "Incorrect attribute value type"),
        ("port 0", team("[8786, 8787]", "[0]"), "Invalid Port"),
        ("port 65536", team("[8786, 8787]", "[65536]"), "Invalid Port"),
        ("port negative", team("[8786, 8787]", "[-22]"), "Invalid Port"),
        ("port fraction", team("[8786, 8787]", "[22.5]"), "Invalid Port"),
        ("port huge", team("[8786, 8787]", "[1e12]"), "Invalid Port"),
        ("ports empty", team("[8786, 8787]", "[]"), "No Ports"),
        ("ports string", team("[8786, 8787]", "\"8786\""), "Incorrect attribute value type"),
        ("ports missing", team("    ports = [8786, 8787]\n", ""), "Missing required argument"),
        ("backend unknown", team("\"aws\"", "\"azure\""), "Invalid Backend"),
        ("backend missing", team("  backend               = \"aws\"\n", ""), "Missing required argument"),
        ("aws key missing", team("  aws_access_key_id     = \"AKIAEXAMPLE\"\n", ""), "Missing AWS Credentials"),
        ("gcp with aws keys", team("\"aws\"", "\"gcp\""), "Conflicting Cloud Settings"),
        ("gcp json invalid", TEAM.replace("\"aws\"", "\"gcp\"").replace("  aws_access_key_id     = \"AKIAEXAMPLE\"\n  aws_secret_access_key = \"example-secret\"\n", "  gcp_service_account_json = \"{not json\"\n"), "Invalid GCP Credentials"),
        ("gcp json no project", TEAM.replace("\"aws\"", "\"gcp\"").replace("  aws_access_key_id     = \"AKIAEXAMPLE\"\n  aws_secret_access_key = \"example-secret\"\n", "  gcp_service_account_json = \"{}\"\n"), "Invalid GCP Credentials"),
        ("workspace slash", add_team("workspace = \"a/b\""), "Invalid Workspace"),
        ("version without wo", add_team("aws_secret_access_key_wo_version = 2"), "Version Without Value"),
        ("unknown argument", add_team("colour = \"blue\""), "Unsupported argument"),
        ("network empty id", add_team("network {\n    firewall_id = \" \"\n  }"), "Empty Network Identifier"),
        ("two network blocks", add_team("network {\n  }\n  network {\n  }"), "Duplicate network block"),
        ("absurd ingress count (10 000 blocks)", TEAM.replace("  ingress {\n    ports = [8786, 8787]\n    cidr  = \"10.1.0.0/16\"\n  }", "  dynamic \"ingress\" {\n    for_each = setproduct(range(100), range(100))\n    content {\n      ports = [1 + (ingress.value[0] * 100 + ingress.value[1]) % 65535]\n      cidr  = \"10.0.0.0/8\"\n    }\n  }"), "Too Many Ingress Rules"),
        ("cluster name space", etl("name      = \"etl\"", "name = \"etl 1\""), "Invalid Cluster Name"),
        ("cluster name unicode", etl("name      = \"etl\"", "name = \"étl\""), "Invalid Cluster Name"),
        ("cluster name too long", etl("name      = \"etl\"", &format!("name = \"{}\"", "x".repeat(200))), "Invalid Cluster Name"),
        ("workers negative", etl("n_workers = 2", "n_workers = -3"), "Invalid Worker Count"),
        ("workers absurd", etl("n_workers = 2", "n_workers = 1000000"), "Invalid Worker Count"),
        ("workers fraction", etl("n_workers = 2", "n_workers = 2.5"), "Invalid Worker Count"),
        ("workers string", etl("n_workers = 2", "n_workers = \"two\""), "Incorrect attribute value type"),
        ("wait fraction > 1", add_etl("wait_for_workers = 2"), "Invalid Wait Fraction"),
        ("wait fraction < 0", add_etl("wait_for_workers = -0.1"), "Invalid Wait Fraction"),
        ("vm types empty", add_etl("worker_vm_types = []"), "Empty VM Type List"),
        ("vm type blank", add_etl("scheduler_vm_types = [\"\"]"), "Empty VM Type"),
        ("timeout garbage", add_etl("timeouts {\n    delete = \"whenever\"\n  }"), "Invalid Timeout"),
        ("timeout too long", add_etl("timeouts {\n    create = \"30days\"\n  }"), "Invalid Timeout"),
        ("tag key too long", add_etl(&format!("tags = {{ \"{}\" = \"x\" }}", "k".repeat(200))), "Invalid Tag"),
        ("environ bad name", add_etl("environ = { \"A=B\" = \"1\" }"), "Invalid Environment Variable"),
        ("empty zone", etl("  backend_options {", "  backend_options {\n    zone = \"\""), "Empty Value"),
        ("cluster cidr", etl("10.1.0.0/16", "300.1.0.0/16"), "Invalid CIDR Block"),
        ("cluster port", etl("[8786]", "[99999]"), "Invalid Port"),
        ("public ip string", add_etl("use_scheduler_public_ip = \"maybe\""), "Incorrect attribute value type"),
        ("workspace empty", add_etl("workspace = \"\""), "Invalid Workspace"),
        ("software blank", etl("software  = \"dask\"", "software = \"  \""), "Invalid Software Environment Name"),
        ("container blank", etl("software  = \"dask\"", "container = \"\""), "Invalid Container Image"),
    ];
    assert!(cases.len() >= 40, "{} cases", cases.len());
    for cli in clis() {
        Scenario::new(cli, &[], "").assert_refused(&cases);
    }
}

fn fifty(n: usize) -> String {
    format!(
        "resource \"coiled_cluster\" \"c\" {{\n  software = \"dask\"\n  count     = {n}\n  name      = \"fm-${{count.index}}\"\n  n_workers = 1\n}}\n"
    )
}

/// Apply and destroy 50 clusters while the server answers 429 and 503 a fifth of the time, drops
/// connections, answers slowly, loses create answers, and is restarted in the middle of the apply.
#[test]
fn fault_matrix_fifty_clusters_survive_and_converge() {
    for cli in clis() {
        fault_matrix(cli);
    }
}

fn fault_matrix(cli: &Cli) {
    let faults = json!({"seed": 7, "rate_429": 0.1, "rate_503": 0.1, "retry_after": 0, "rate_drop": 0.03, "latency_ms": 15, "lose_create_responses": 3});
    let faults_arg = faults.to_string();
    let args =
        ["--provision-delay", "300ms", "--stop-delay", "100ms", "--faults", faults_arg.as_str()];
    let mut s = Scenario::new(cli, &args, &fifty(50));
    let log = s.tf.path().join("provider.log");
    let log_env = [("TF_LOG_PROVIDER", "info"), ("TF_LOG_PATH", log.to_str().unwrap())];

    // Apply, restarting the server once the apply is under way.
    let started = Instant::now();
    let child = s.tf.spawn(&["apply", "-auto-approve", "-no-color"], &log_env);
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.server.get("/_local/stats").1["clusters_created"].as_u64().unwrap_or(0) < 10
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let port = s.server.port();
    let data = s.server.data_dir.clone();
    assert!(s.server.stop().success());
    std::thread::sleep(Duration::from_millis(500));
    let listen = format!("127.0.0.1:{port}");
    let restarted = LocalServer::start_in(
        &data,
        &[
            "--listen",
            &listen,
            "--provision-delay",
            "300ms",
            "--stop-delay",
            "100ms",
            "--faults",
            &faults_arg,
        ],
    );
    let before_restart = std::mem::replace(&mut s.server, restarted);
    drop(before_restart);
    let (status, out) = crate::common::finish(child);
    assert!(status.success(), "apply under faults failed ({}):\n{out}", cli.version);
    let apply_time = started.elapsed();

    // State matches the server exactly: 50 distinct running clusters, no duplicates, no orphans.
    s.server.put("/_local/faults", &json!({}));
    let listed = s.tf.terraform(&["state", "list"]).ok().stdout;
    assert_eq!(listed.lines().filter(|l| l.starts_with("coiled_cluster.c[")).count(), 50);
    let state: serde_json::Value = serde_json::from_str(&s.state_text()).unwrap();
    let mut state_ids: Vec<String> = state["resources"][0]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["attributes"]["id"].as_str().unwrap().to_string())
        .collect();
    state_ids.sort();
    let all = s.server.get("/api/v2/clusters/account/alice/?limit=1000").1;
    let running: Vec<&serde_json::Value> = all
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["current_state"]["state"] != "stopped")
        .collect();
    let mut server_ids: Vec<String> = running.iter().map(|c| c["id"].to_string()).collect();
    server_ids.sort();
    assert_eq!(state_ids, server_ids, "state and server disagree");
    let mut names: Vec<&str> = running.iter().map(|c| c["name"].as_str().unwrap()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 50, "duplicate clusters");
    assert_eq!(all.as_array().unwrap().len(), 50, "a cluster was created twice");
    s.assert_no_changes();

    // Destroy under faults too.
    s.server.put(
        "/_local/faults",
        &json!({"seed": 8, "rate_429": 0.1, "rate_503": 0.1, "rate_drop": 0.03, "latency_ms": 15}),
    );
    let destroyed = s.tf.terraform_env(&["destroy", "-auto-approve", "-no-color"], &log_env).ok();
    assert!(destroyed.stdout.contains("50 destroyed"), "{}", destroyed.all());
    let (_, stats) = s.server.get("/_local/stats");
    s.server.put("/_local/faults", &json!({}));
    let left = s.server.get("/api/v2/clusters/account/alice/?limit=1000").1;
    assert!(
        left.as_array().unwrap().iter().all(|c| c["current_state"]["state"] == "stopped"),
        "orphans: {left}"
    );
    let retries = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .matches("retrying coiled api request")
        .count();
    eprintln!(
        "fault matrix (Terraform {}): 100 operations (50 creates, 50 destroys), 0 failed; apply {:.1?} with a server restart; provider retried {retries} requests; server after restart saw {} requests and injected {}",
        cli.version, apply_time, stats["requests"], stats["faults"]
    );
    assert!(retries > 0, "no retry was needed: the faults did not bite");
}

/// The whole lifecycle with sentinel secrets and TF_LOG=trace: no secret appears anywhere.
#[test]
fn secrets_never_appear_in_logs_output_state_or_errors() {
    for cli in clis() {
        let wo = cli.at_least(1, 11);
        let secret_line = if wo {
            "aws_secret_access_key_wo = \"WO-SENTINEL-7\"\n  aws_secret_access_key_wo_version = 1"
        } else {
            "aws_secret_access_key = \"SK-SENTINEL-7\""
        };
        let config = format!(
            "resource \"coiled_backend_options\" \"team\" {{\n  backend = \"aws\"\n  aws_access_key_id = \"AKIASENTINEL7\"\n  {secret_line}\n  ingress {{\n    ports = [8786]\n    cidr = \"10.1.0.0/16\"\n  }}\n}}\n{ETL}"
        );
        let s = Scenario::new(
            cli,
            &["--provision-delay", "0s", "--token", "tok-SENTINEL-7", "--stop-delay", "0s"],
            &config,
        );
        let log = s.tf.path().join("trace.log");
        let env = [("TF_LOG", "trace"), ("TF_LOG_PATH", log.to_str().unwrap())];
        let mut outputs = Vec::new();
        for args in [
            &["apply", "-auto-approve", "-no-color"][..],
            &["plan", "-no-color"],
            &["refresh", "-no-color"],
            &["show", "-no-color"],
            &["destroy", "-auto-approve", "-no-color"],
        ] {
            let out = s.tf.terraform_env(args, &env).ok();
            outputs.push(out.all());
        }
        // An error path: the token rejected.
        s.tf.write(
            "main.tf",
            &Scenario::config(&s.server, &config).replace("tok-SENTINEL-7", "bad-SENTINEL-8"),
        );
        let out = s.tf.terraform_env(&["apply", "-auto-approve", "-no-color"], &env);
        assert_ne!(out.code, 0);
        outputs.push(out.all());
        let mut haystack = outputs.join("\n");
        haystack.push_str(&std::fs::read_to_string(&log).unwrap_or_default());
        for entry in std::fs::read_dir(s.tf.path()).unwrap().filter_map(Result::ok) {
            let p = entry.path();
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            if p.is_file() && name != "main.tf" && (wo || !name.starts_with("terraform.tfstate")) {
                haystack.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
            }
        }
        assert!(haystack.len() > 10_000, "trace logs were written");
        for sentinel in ["tok-SENTINEL-7", "bad-SENTINEL-8", "WO-SENTINEL-7", "SK-SENTINEL-7"] {
            assert!(!haystack.contains(sentinel), "{sentinel} leaked ({})", cli.version);
        }
        if !wo {
            // Sensitive (not write-only) arguments are stored in state by Terraform itself, never elsewhere.
            assert!(
                !std::fs::read_to_string(s.tf.path().join("terraform.tfstate"))
                    .unwrap_or_default()
                    .contains("tok-SENTINEL-7"),
                "the token reached state"
            );
        }
    }
}

#[test]
fn the_token_is_not_sent_over_plain_http_to_a_remote_host() {
    let cli = &clis()[0];
    let config = format!(
        "{}provider \"coiled\" {{\n  server = \"http://coiled.invalid\"\n  token  = \"abc-123\"\n}}\n{ETL}",
        crate::common::HEADER
    );
    let w = crate::common::Workdir::new(cli, &config);
    let out = w.terraform(&["plan", "-no-color"]);
    assert_ne!(out.code, 0);
    let flat = out.all().split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        flat.contains("refusing to send the API token over plain HTTP to coiled.invalid"),
        "{flat}"
    );
    assert!(flat.contains("allow_insecure_http"), "{flat}");
}

#[test]
fn a_custom_ca_bundle_is_trusted_over_tls() {
    let dir = tempfile::tempdir().unwrap();
    crate::common::write_private_ca_certificate(dir.path());
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    let server = LocalServer::start(&[
        "--provision-delay",
        "0s",
        "--tls-cert",
        cert_path.to_str().unwrap(),
        "--tls-key",
        key_path.to_str().unwrap(),
    ]);
    assert!(server.url.starts_with("https://"));
    let data = "data \"coiled_backend_options\" \"current\" {}\noutput \"backend\" { value = data.coiled_backend_options.current.backend }\n";
    for cli in clis() {
        let config = |extra: &str| {
            format!(
                "{}provider \"coiled\" {{\n  server = \"{}\"\n  token  = \"{}\"\n{extra}}}\n{data}",
                crate::common::HEADER,
                server.url,
                server.token
            )
        };
        let w = crate::common::Workdir::new(cli, &config(""));
        let out = w.terraform(&["plan", "-no-color"]);
        assert_ne!(out.code, 0, "an unknown CA must be refused");
        assert!(
            out.all().to_lowercase().contains("certificate")
                || out.all().contains("UnknownIssuer")
                || out.all().contains("cannot reach"),
            "{}",
            out.all()
        );
        w.write(
            "main.tf",
            &config(&format!("  ca_bundle_file = \"{}\"\n", dir.path().join("ca.pem").display())),
        );
        let out = w.terraform(&["apply", "-auto-approve", "-no-color"]).ok();
        assert!(out.stdout.contains("backend = \"aws\""), "{}", out.all());
    }
}

#[test]
fn ctrl_c_during_a_destroy_wait_returns_promptly_and_converges() {
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "6s"], ETL);
        s.apply();
        let child = s.tf.spawn(&["destroy", "-auto-approve", "-no-color"], &[]);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let all = s.server.get("/api/v2/clusters/account/alice/?limit=10").1;
            if all[0]["current_state"]["state"] == "stopping" || Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        std::thread::sleep(Duration::from_millis(300));
        let interrupted = Instant::now();
        crate::common::interrupt(&child);
        let (status, out) = crate::common::finish(child);
        assert!(
            interrupted.elapsed() < Duration::from_secs(3),
            "took {:?}:\n{out}",
            interrupted.elapsed()
        );
        assert!(!status.success(), "{out}");
        // The cluster is still stopping: state keeps it until a refresh sees it stopped.
        assert!(
            s.tf.terraform(&["state", "list"]).ok().stdout.contains("coiled_cluster.etl"),
            "{out}"
        );
        let again = s.tf.terraform(&["destroy", "-auto-approve", "-no-color"]).ok();
        assert!(
            !s.tf.terraform(&["state", "list"]).ok().stdout.contains("coiled_cluster.etl"),
            "{}",
            again.all()
        );
    }
}
