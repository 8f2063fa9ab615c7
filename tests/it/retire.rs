//! The provider's side of Dask's own protocol, against a real scheduler on loopback: it asks the
//! scheduler to retire workers as Coiled's client does before a scale-down, with TLS from the
//! cluster's certificate, and the data those workers held moves to the ones that stay.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use terraform_provider_coiled::api::scheduler;

fn python() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/dask-venv/bin/python");
    if p.exists() {
        return Some(p);
    }
    assert!(
        std::env::var("CI").is_err(),
        "the Dask environment is missing: run scripts/install-test-tools.sh"
    );
    None
}

/// A process killed (with its group) when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.0.id())]).status();
        let _ = self.0.wait();
    }
}

fn spawn(py: &Path, args: &[&str]) -> Proc {
    let mut cmd = Command::new(py);
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::null());
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    Proc(cmd.spawn().unwrap())
}

#[test]
fn retiring_workers_moves_their_data_before_they_go() {
    let Some(py) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The cluster's certificate, its own authority, as Coiled's (and coiled-local's) are.
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["dask".to_string(), "127.0.0.1".to_string()]).unwrap();
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let (cert, key) = (params.self_signed(&key).unwrap().pem(), key.serialize_pem());
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, &cert).unwrap();
    std::fs::write(&key_path, &key).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let address = format!("tls://127.0.0.1:{port}");
    let (c, k) = (cert_path.to_str().unwrap(), key_path.to_str().unwrap());
    let tls = ["--tls-ca-file", c, "--tls-cert", c, "--tls-key", k];
    let mut args = vec![
        "-m",
        "distributed.cli.dask_scheduler",
        "--protocol",
        "tls",
        "--host",
        "127.0.0.1",
        "--dashboard-address",
        ":0",
    ];
    let port_text = port.to_string();
    args.extend(["--port", &port_text]);
    args.extend(tls);
    let _scheduler = spawn(&py, &args);
    let workers: Vec<Proc> = (1..=3)
        .map(|i| {
            let name = format!("etl-worker-{i}");
            let mut args = vec![
                "-m",
                "distributed.cli.dask_worker",
                "--nthreads",
                "1",
                "--no-dashboard",
                "--no-nanny",
                "--host",
                "127.0.0.1",
            ];
            args.extend([address.as_str(), "--name", &name]);
            args.extend(tls);
            spawn(&py, &args)
        })
        .collect();
    // A client scatters data across all three workers and keeps it; it prints where it went.
    let security = format!(
        "Security(tls_ca_file={c:?}, tls_client_cert={c:?}, tls_client_key={k:?}, require_encryption=True)"
    );
    let holder = format!(
        "import sys, time\nfrom distributed import Client\nfrom distributed.security import Security\nc = Client({address:?}, security={security}, timeout=30)\nc.wait_for_workers(3, timeout=60)\nf = c.scatter(list(range(300)))\nprint('READY', flush=True)\nsys.stdin.readline()\nprint('SUM', sum(c.gather(f)), 'WORKERS', len(c.scheduler_info()['workers']), flush=True)\n"
    );
    let mut client = Command::new(&py)
        .args(["-c", &holder])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(client.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "READY", "{}", {
        let _ = client.kill();
        let mut e = String::new();
        let _ = std::io::Read::read_to_string(&mut client.stderr.take().unwrap(), &mut e);
        e
    });
    let started = Instant::now();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let names = vec!["etl-worker-2".to_string(), "etl-worker-3".to_string()];
    assert!(rt.block_on(scheduler::reachable(&address, Duration::from_secs(2))));
    let mut retired = rt
        .block_on(scheduler::retire_workers(&address, &cert, &key, &names, Duration::from_secs(60)))
        .unwrap();
    retired.sort();
    assert_eq!(retired, names, "the scheduler retired both");
    assert!(started.elapsed() < Duration::from_secs(60));
    // The data they held moved: the client still gathers all of it from the one worker left.
    std::io::Write::write_all(client.stdin.as_mut().unwrap(), b"go\n").unwrap();
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let _ = client.wait();
    assert_eq!(line.trim(), "SUM 44850 WORKERS 1", "after retiring two of three workers");
    // A wrong certificate is refused, and an address nobody listens on is unreachable.
    let other = rcgen::KeyPair::generate().unwrap();
    let stranger = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .self_signed(&other)
        .unwrap()
        .pem();
    let refused = rt.block_on(scheduler::retire_workers(
        &address,
        &stranger,
        &other.serialize_pem(),
        &names,
        Duration::from_secs(10),
    ));
    assert!(refused.is_err(), "{refused:?}");
    let closed = format!(
        "tls://127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    );
    assert!(!rt.block_on(scheduler::reachable(&closed, Duration::from_secs(1))));
    drop(workers);
}
