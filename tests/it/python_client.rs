//! The public `coiled` Python client (from PyPI) against `coiled-local`: it must authenticate, list
//! clusters (API and CLI), look one up by name, stop one, and set and read account backend options.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

use crate::common::LocalServer;

pub(crate) fn venv() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/coiled-venv/bin");
    if p.join("python").exists() {
        return Some(p);
    }
    assert!(
        std::env::var("CI").is_err(),
        "the coiled client is missing: run scripts/install-test-tools.sh"
    );
    eprintln!("skipping: no .tools/coiled-venv");
    None
}

/// Runs `bin` (a program of the client's environment) against `server`: whether it succeeded, and its output.
pub(crate) fn run(
    bin: &Path,
    server: &LocalServer,
    args: &[&str],
    extra: &[(&str, &str)],
) -> (bool, String) {
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("DASK_COILED__SERVER", &server.url)
        .env("DASK_COILED__TOKEN", &server.token)
        .env("HOME", home.path())
        .env_remove("DASK_COILED__WORKSPACE")
        .env_remove("DASK_COILED__ACCOUNT");
    for (k, v) in extra {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)),
    )
}

fn step(bin: &Path, server: &LocalServer, name: &str, extra: &[(&str, &str)]) -> Value {
    let script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/coiled_client_check.py");
    let result = tempfile::NamedTempFile::new().unwrap();
    let (ok, out) = run(
        &bin.join("python"),
        server,
        &[script.to_str().unwrap(), name, result.path().to_str().unwrap()],
        extra,
    );
    assert!(ok, "step {name} failed:\n{out}");
    let text = std::fs::read_to_string(result.path()).unwrap();
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("step {name} wrote no result ({e}):\n{out}"))
}

#[test]
fn the_python_client_works_against_coiled_local() {
    let Some(bin) = venv() else { return };
    let s = LocalServer::start(&["--provision-delay", "0s", "--stop-delay", "0s"]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let id = rt.block_on(async {
        crate::common::create_cluster_raw(&s.client(), &json!({"name": "existing", "workers": 1}))
            .await
            .unwrap()
            .id
    });

    assert_eq!(step(&bin, &s, "list", &[])["names"], json!(["existing"]));
    let (ok, table) = run(&bin.join("coiled"), &s, &["cluster", "list"], &[("COLUMNS", "200")]);
    assert!(
        ok && table.contains("existing") && table.contains("ready"),
        "coiled cluster list:\n{table}"
    );
    assert_eq!(step(&bin, &s, "by-name", &[])["id"], id);
    assert_eq!(step(&bin, &s, "missing-name", &[])["raised"], "DoesNotExist");

    step(&bin, &s, "set-gcp", &[]);
    let read = step(&bin, &s, "read", &[]);
    assert_eq!(read["options"]["options"]["provider_name"], "gcp");
    assert_eq!(
        read["options"]["options"]["firewall_spec"]["ingress"],
        json!([{"cidr": "10.1.0.0/16", "ports": [8786, 8787]}])
    );

    // AWS: the client checks the keys with STS first; coiled-local answers that too.
    step(
        &bin,
        &s,
        "set-aws",
        &[("AWS_ENDPOINT_URL_STS", &s.url), ("AWS_DEFAULT_REGION", "us-east-1")],
    );
    let read = step(&bin, &s, "read", &[]);
    assert_eq!(read["options"]["options"]["aws_region_name"], "us-west-2");
    assert!(!read.to_string().contains("SECRET-SENTINEL-PY"), "credentials were returned: {read}");

    let invalid = step(&bin, &s, "set-invalid", &[]);
    assert_eq!(invalid["raised"], "ServerError");
    assert!(invalid["message"].as_str().unwrap().contains("is not a CIDR block"), "{invalid}");

    assert_eq!(step(&bin, &s, "stop", &[])["stopped"], true);
    let (_, d) = s.get(&format!("/api/v2/clusters/account/alice/id/{id}"));
    assert!(matches!(d["current_state"]["state"].as_str(), Some("stopping" | "stopped")), "{d}");
}

#[test]
fn the_page_renders_in_a_real_browser() {
    let Some(chromium) = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
    else {
        assert!(
            std::env::var("CI").is_err(),
            "chromium is missing: run scripts/install-test-tools.sh as root"
        );
        eprintln!("skipping: no chromium");
        return;
    };
    let s = LocalServer::start(&["--provision-delay", "0s"]);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        crate::common::create_cluster_raw(
            &s.client(),
            &json!({"name": "shown", "options": {"firewall_spec": {"ingress": [{"ports": [8786], "cidr": "10.1.0.0/16"}]}}}),
        )
        .await
        .unwrap();
    });
    let profile = tempfile::tempdir().unwrap();
    let shot = profile.path().join("page.png");
    let flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ];
    let dom = Command::new(&chromium)
        .args(flags)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg("--dump-dom")
        .arg(format!("{}/?token={}", s.url, s.token))
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("<code>shown</code>") && dom.contains("10.1.0.0/16"),
        "rendered DOM:\n{dom}"
    );
    let out = Command::new(&chromium)
        .args(flags)
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1000,700")
        .arg(format!("{}/?token={}", s.url, s.token))
        .output()
        .unwrap();
    let png = std::fs::read(&shot)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(png.starts_with(b"\x89PNG") && png.len() > 5_000, "screenshot is {} bytes", png.len());
}
