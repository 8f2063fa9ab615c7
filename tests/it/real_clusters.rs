//! `coiled-local --clusters dask`: real Dask clusters in network namespaces, their ingress enforced by
//! nftables, reached from the seed's networks (`{prefix}-vpn`, `-office`, `-internet`). These tests
//! need root, Debian's `iproute2` and `nftables`, and the Python environments the test-tool installer
//! makes; in CI they fail, never skip, when one is missing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::http::Http;
use crate::common::{Scenario, clis, flat};

pub(crate) fn tool(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Whether this machine can run the tests; outside CI a machine without root skips them.
pub(crate) fn can_run() -> bool {
    let root = crate::common::is_root();
    let tools = tool(".tools/dask-venv/bin/python").exists()
        && tool(".tools/coiled-venv/bin/python").exists();
    let nft = Command::new("nft").arg("--version").output().is_ok_and(|o| o.status.success());
    if root && tools && nft {
        return true;
    }
    assert!(
        std::env::var("CI").is_err(),
        "real clusters need root, nft and scripts/install-test-tools.sh (root {root}, tools {tools}, nft {nft})"
    );
    eprintln!("skipping: real clusters need root, nft and the test tools");
    false
}

pub(crate) fn server_args(prefix: &str) -> Vec<String> {
    let py = tool(".tools/dask-venv/bin/python").display().to_string();
    [
        "--clusters",
        "dask",
        "--python",
        &py,
        "--lab",
        prefix,
        "--provision-delay",
        "0s",
        "--stop-delay",
        "0s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn scenario(prefix: &str, config: &str) -> Scenario {
    scenario_with(prefix, config, &[])
}

fn scenario_with(prefix: &str, config: &str, extra: &[&str]) -> Scenario {
    let args = server_args(prefix);
    let args: Vec<&str> = args.iter().map(String::as_str).chain(extra.iter().copied()).collect();
    Scenario::new(clis().last().unwrap(), &args, config)
}

/// A process in a cluster's network namespace.
pub(crate) struct InCluster {
    pub(crate) pid: String,
    /// Its real user id.
    pub(crate) uid: u32,
    /// Its command line, arguments separated by spaces.
    pub(crate) cmdline: String,
}

impl InCluster {
    /// Whether it is a Dask process (of the `--python` environment), not a root-owned step containing one.
    pub(crate) fn is_dask(&self) -> bool {
        self.cmdline.starts_with(&tool(".tools/dask-venv/bin/python").display().to_string())
    }
}

/// Every process in network namespace `ns`.
pub(crate) fn in_namespace(ns: &str) -> Vec<InCluster> {
    let pids = Command::new("ip").args(["netns", "pids", ns]).output().unwrap().stdout;
    String::from_utf8_lossy(&pids)
        .split_whitespace()
        .filter_map(|pid| {
            let cmdline =
                std::fs::read_to_string(format!("/proc/{pid}/cmdline")).ok()?.replace('\0', " ");
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            Some(InCluster { pid: pid.to_string(), uid, cmdline })
        })
        .collect()
}

/// Whether process `pid` runs: it exists and has not ended (a zombie waits only to be reaped).
pub(crate) fn alive(pid: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
}

/// The namespaces named `{prefix}-…`.
pub(crate) fn namespaces(prefix: &str) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("{prefix}-")))
        .map(str::to_string)
        .collect()
}

/// Connects from lab host `host` to cluster `id` at `address` as a Dask client: `Ok(workers)` after
/// computing the right sum, `Err(output)` when refused; and how long it took.
fn connect(
    s: &Scenario,
    prefix: &str,
    host: &str,
    id: &str,
    address: &str,
    timeout: u32,
    workers: u32,
) -> (Result<u64, String>, Duration) {
    let (_, details) = s.server.get(&format!("/api/v2/clusters/account/alice/id/{id}"));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), details.to_string()).unwrap();
    let started = Instant::now();
    let out = Command::new("ip")
        .args(["netns", "exec", &format!("{prefix}-{host}")])
        .arg(tool(".tools/coiled-venv/bin/python"))
        .arg(tool("tests/python/dask_connect.py"))
        .args([file.path().to_str().unwrap(), address, &timeout.to_string(), &workers.to_string()])
        .output()
        .unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let result = match text.lines().find_map(|l| l.strip_prefix("SUM 499500 WORKERS ")) {
        Some(n) if out.status.success() => Ok(n.trim().parse().unwrap()),
        _ => Err(text),
    };
    (result, started.elapsed())
}

/// Whether `url` answered (below 400, not followed) a request from lab host `host` within three seconds.
fn http_from(prefix: &str, host: &str, url: &str) -> bool {
    let request = Http::get(url).in_netns(&format!("{prefix}-{host}")).any_certificate();
    // As `curl -f` would judge it: any answer below 400.
    (1..400).contains(&request.timeout(Duration::from_secs(3)).status())
}

const SEED: &str = r#"
resource "coiled_cluster" "seed" {
  name                    = "seed"
  software                = "dask"
  n_workers               = 2
  use_scheduler_public_ip = false
  backend_options {
    ingress {
      ports = [8786]
      cidr  = "10.1.0.0/16"
    }
    ingress {
      ports = [8787]
      cidr  = "10.32.0.0/16"
    }
  }
}
# The other address, which `use_scheduler_public_ip = false` does not choose.
data "coiled_cluster" "seed_public" {
  id = coiled_cluster.seed.id
}
output "c" {
  value = {
    id                = coiled_cluster.seed.id
    scheduler_address = coiled_cluster.seed.scheduler_address
    public_address    = data.coiled_cluster.seed_public.scheduler_address
  }
}
"#;

/// The seed's cluster: computes from the VPN, refuses the internet within seconds, shows its dashboard
/// to the office only; scales to four connected workers; a replacement for new ingress enforces the
/// new rules; destroy and the server's exit leave no process or namespace.
#[test]
fn the_seed_cluster_computes_from_the_vpn_and_refuses_the_internet() {
    if !can_run() {
        return;
    }
    let p = "t14seed";
    // The seed's rules are for a scheduler on 8786, the port of older Coiled releases: the workspace's
    // Dask configuration says so, as an account would set it for the seed's rules to work today.
    let overrides = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(overrides.path(), r#"{"coiled.scheduler-options": {"port": 8786}}"#).unwrap();
    let s =
        scenario_with(p, SEED, &["--dask-config-overrides", overrides.path().to_str().unwrap()]);
    let plan = flat(&s.tf.terraform(&["plan", "-no-color"]).ok().all());
    assert!(
        !plan.contains("Scheduler Port Not Open"),
        "the workspace's port is the one the rules open: {plan}"
    );
    s.apply();
    let c = s.output("c");
    let (id, private, public) = (
        c["id"].as_str().unwrap().to_string(),
        c["scheduler_address"].as_str().unwrap(),
        c["public_address"].as_str().unwrap(),
    );
    assert!(private.starts_with("tls://172.31.") && public.starts_with("tls://198.18."), "{c}");
    assert_eq!(
        connect(&s, p, "vpn", &id, private, 10, 2).0,
        Ok(2),
        "the VPN computes on both workers"
    );
    let (refused, took) = connect(&s, p, "internet", &id, public, 3, 1);
    assert!(
        refused.is_err() && took < Duration::from_secs(15),
        "the internet is refused within seconds ({took:?}): {refused:?}"
    );
    let ruleset = s.server.get(&format!("/_local/clusters/{id}/firewall")).1["ruleset"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        ruleset.contains("tcp dport 8786 ip saddr 10.1.0.0/16 accept")
            && ruleset.contains("tcp dport 8787 ip saddr 10.32.0.0/16 accept"),
        "{ruleset}"
    );
    assert!(ruleset.contains("policy drop"), "{ruleset}");
    let page = s.server.get("/").1;
    let page = page.as_str().unwrap_or_default();
    assert!(
        page.contains("Enforced in the cluster&#x27;s network namespace")
            || page.contains("Enforced in the cluster's network namespace"),
        "the page shows the ruleset"
    );
    assert!(page.contains("tcp dport 8786 ip saddr 10.1.0.0/16 accept"), "{page}");

    // The dashboard is Dask's, over HTTPS with the cluster's certificate (as the provider asks, like
    // the client), on the public address the cluster has; reached here on the private one.
    let (_, details) = s.server.get(&format!("/api/v2/clusters/account/alice/id/{id}"));
    let public_host = c["public_address"]
        .as_str()
        .unwrap()
        .trim_start_matches("tls://")
        .split(':')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        details["scheduler"]["dashboard_address"],
        format!("https://{public_host}:8787/status"),
        "{details}"
    );
    let host = private.trim_start_matches("tls://").split(':').next().unwrap();
    let dashboard = format!("https://{host}:8787/status");
    dashboard_in_chromium(p, "office", &dashboard);
    assert!(!http_from(p, "vpn", &dashboard), "the VPN has no rule for 8787");

    s.set(&SEED.replace("n_workers               = 2", "n_workers               = 4"));
    s.apply();
    assert_eq!(
        connect(&s, p, "vpn", &id, private, 10, 4).0,
        Ok(4),
        "four connected workers after scaling"
    );

    // New ingress replaces the cluster, and the new rules are the ones enforced.
    s.set(&SEED.replace("10.1.0.0/16", "10.32.0.0/16"));
    s.apply();
    let c = s.output("c");
    let new_id = c["id"].as_str().unwrap().to_string();
    assert_ne!(new_id, id);
    let private = c["scheduler_address"].as_str().unwrap();
    assert!(connect(&s, p, "vpn", &new_id, private, 3, 1).0.is_err(), "the VPN lost its rule");
    assert_eq!(connect(&s, p, "office", &new_id, private, 10, 2).0, Ok(2), "the office gained it");

    let ns = format!("{p}-c{new_id}");
    let pids = String::from_utf8_lossy(
        &Command::new("ip").args(["netns", "pids", &ns]).output().unwrap().stdout,
    )
    .into_owned();
    assert!(!pids.trim().is_empty(), "the cluster's processes run in its namespace");
    s.tf.terraform(&["destroy", "-auto-approve", "-no-color"]).ok();
    assert!(!namespaces(p).contains(&ns), "destroy removes the cluster's namespace");
    for pid in pids.split_whitespace() {
        assert!(!alive(pid), "process {pid} outlived the destroy");
    }
    drop(s);
    assert!(
        namespaces(p).is_empty(),
        "the server's exit removes every namespace: {:?}",
        namespaces(p)
    );
}

fn dashboard_in_chromium(prefix: &str, host: &str, url: &str) {
    let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let Some(chromium) = chromium else {
        assert!(
            std::env::var("CI").is_err(),
            "chromium is missing: run scripts/install-test-tools.sh as root"
        );
        assert!(http_from(prefix, host, url), "the dashboard answers from {host}");
        return;
    };
    let profile = tempfile::tempdir().unwrap();
    let shot = profile.path().join("dashboard.png");
    let out = Command::new("ip")
        .args(["netns", "exec", &format!("{prefix}-{host}")])
        .arg(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            // The cluster's certificate is its own.
            "--ignore-certificate-errors",
            "--window-size=1200,800",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--virtual-time-budget=5000")
        .arg(url)
        .output()
        .unwrap();
    let png = std::fs::read(&shot)
        .unwrap_or_else(|_| panic!("no screenshot: {}", String::from_utf8_lossy(&out.stderr)));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "dashboard screenshot is {} bytes",
        png.len()
    );
    assert!(http_from(prefix, host, url), "the dashboard answers from {host}");
}

/// A public scheduler address with private-only ingress: the plan warns, and the VPN's traffic, NATed
/// on its way to the public address, is refused. A cluster with no ingress of its own (running a
/// software environment built by the same apply, with coiled-local's Python) enforces the account
/// default in force at its creation, and keeps it when the default changes.
#[test]
fn public_addresses_and_the_account_default_are_enforced_as_planned() {
    if !can_run() {
        return;
    }
    let p = "t14pub";
    let config = r#"
resource "coiled_backend_options" "team" {
  backend               = "aws"
  aws_access_key_id     = "AKIAEXAMPLE"
  aws_secret_access_key = "SECRET-SENTINEL-1"
  ingress {
    ports = [443]
    cidr  = "10.32.0.0/16"
  }
}
resource "coiled_cluster" "pub" {
  name      = "pub"
  software  = "dask"
  n_workers = 1
  backend_options {
    ingress {
      ports = [443]
      cidr  = "10.1.0.0/16"
    }
  }
}
resource "coiled_software_environment" "pkgs" {
  name = "lab-pkgs"
  conda {
    dependencies = ["python=3.11", "dask"]
  }
}
resource "coiled_cluster" "inherits" {
  name                    = "inherits"
  software                = coiled_software_environment.pkgs.name
  n_workers               = 1
  use_scheduler_public_ip = false
  depends_on              = [coiled_backend_options.team]
}
# The private address, which the public choice does not hold.
data "coiled_cluster" "pub_private" {
  id                      = coiled_cluster.pub.id
  use_scheduler_public_ip = false
}
output "pub" {
  value = {
    id                = coiled_cluster.pub.id
    scheduler_address = coiled_cluster.pub.scheduler_address
    private_address   = data.coiled_cluster.pub_private.scheduler_address
  }
}
output "inherits" { value = { for k in ["id", "scheduler_address"] : k => coiled_cluster.inherits[k] } }
"#;
    let s = scenario(p, config);
    let plan = flat(&s.tf.terraform(&["plan", "-no-color"]).ok().all());
    assert!(plan.contains("Private Ingress on a Public Address"), "{plan}");
    s.apply();
    let public = s.output("pub");
    let id = public["id"].as_str().unwrap().to_string();
    assert!(public["scheduler_address"].as_str().unwrap().starts_with("tls://198.18."), "{public}");
    let (refused, _) =
        connect(&s, p, "vpn", &id, public["scheduler_address"].as_str().unwrap(), 3, 1);
    assert!(
        refused.is_err(),
        "the VPN reaches the public address NATed, which 10.1.0.0/16 does not admit"
    );
    assert_eq!(
        connect(&s, p, "vpn", &id, public["private_address"].as_str().unwrap(), 10, 1).0,
        Ok(1),
        "the private address works"
    );

    let inherits = s.output("inherits");
    let (iid, address) = (
        inherits["id"].as_str().unwrap().to_string(),
        inherits["scheduler_address"].as_str().unwrap().to_string(),
    );
    assert_eq!(
        connect(&s, p, "office", &iid, &address, 10, 1).0,
        Ok(1),
        "the account default admits the office"
    );
    assert!(connect(&s, p, "vpn", &iid, &address, 3, 1).0.is_err());
    s.set(&config.replacen("10.32.0.0/16", "10.1.0.0/16", 1));
    s.apply();
    assert_eq!(s.output("inherits")["id"], iid.as_str(), "the cluster is not touched");
    let ruleset = s.server.get(&format!("/_local/clusters/{iid}/firewall")).1["ruleset"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        ruleset.contains("10.32.0.0/16") && !ruleset.contains("10.1.0.0/16"),
        "the rules of its creation stay: {ruleset}"
    );
    assert_eq!(connect(&s, p, "office", &iid, &address, 10, 1).0, Ok(1));
}

/// The public `coiled` client, run inside the VPN network against the lab's API: creates a real
/// cluster, computes on it, scales it to three workers and closes it.
#[test]
fn the_coiled_client_runs_real_clusters_from_the_vpn() {
    if !can_run() {
        return;
    }
    let p = "t14py";
    let s = scenario(p, "");
    let home = tempfile::tempdir().unwrap();
    let out = Command::new("ip")
        .args(["netns", "exec", &format!("{p}-vpn")])
        .arg(tool(".tools/coiled-venv/bin/python"))
        .arg(tool("tests/python/coiled_in_lab.py"))
        .arg("py")
        .env("HOME", home.path())
        .env("DASK_COILED__SERVER", format!("http://10.1.0.1:{}", s.server.port()))
        .env("DASK_COILED__TOKEN", &s.server.token)
        .env_remove("DASK_COILED__WORKSPACE")
        .output()
        .unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("SUM 499500") && text.contains("WORKERS 3") && text.contains("CLOSED"),
        "{text}"
    );
    let clusters: Vec<Value> = s.server.clusters();
    assert!(
        clusters.iter().all(|c| c["current_state"]["state"] == "stopped"),
        "closed: {clusters:?}"
    );
}

/// Beyond the caps a two-core machine can hold, a create is refused with a clear 400.
#[test]
fn real_clusters_are_capped() {
    if !can_run() {
        return;
    }
    let s = scenario("t14cap", "");
    let (code, body) = s.server.post(
        "/api/v2/clusters/account/alice/",
        &crate::common::client_body(&serde_json::json!({"name": "big", "workers": 9})),
    );
    assert_eq!(code, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("at most 8 workers"), "{body}");
}

/// `--clusters dask` without what it needs stops at once with one line naming it; it never falls
/// back to simulated clusters, and leaves nothing behind.
#[test]
fn dask_mode_refuses_to_start_without_what_it_needs() {
    if !can_run() {
        return;
    }
    let bin = crate::common::local_bin();
    let data = tempfile::tempdir().unwrap();
    let py = tool(".tools/dask-venv/bin/python").display().to_string();
    let only_ip = tempfile::tempdir().unwrap();
    for t in ["ip", "setpriv"] {
        let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(t))
            .find(|p| p.exists())
            .unwrap();
        std::os::unix::fs::symlink(found, only_ip.path().join(t)).unwrap();
    }
    let cases: [(&str, Vec<&str>, Option<&str>, &str); 3] = [
        (
            "not root",
            vec!["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"],
            None,
            "needs root",
        ),
        ("no nft", vec![], Some(only_ip.path().to_str().unwrap()), "apt-get install nftables"),
        ("python without distributed", vec![], None, "`import distributed` fails"),
    ];
    for (name, wrapper, path, expect) in cases {
        let python =
            if name == "python without distributed" { "/usr/bin/python3" } else { py.as_str() };
        let mut cmd = Command::new(wrapper.first().copied().unwrap_or(bin.to_str().unwrap()));
        if !wrapper.is_empty() {
            cmd.args(&wrapper[1..]).arg(&bin);
        }
        cmd.args([
            "serve",
            "--data-dir",
            data.path().to_str().unwrap(),
            "--clusters",
            "dask",
            "--python",
            python,
            "--lab",
            "t14no",
        ]);
        if let Some(p) = path {
            cmd.env("PATH", p);
        }
        let started = Instant::now();
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
        assert!(
            !out.status.success() && started.elapsed() < Duration::from_secs(20),
            "{name}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{name}: one line: {err}");
        assert!(err.contains(expect), "{name}: {err}");
        assert!(out.stdout.is_empty(), "{name}: no URL is printed");
        assert!(namespaces("t14no").is_empty(), "{name}: nothing left behind");
    }
}

/// Processes run as the cluster's user; a worker whose process dies is `error` with a reason; `coiled-local`
/// killed outright leaves no process behind, and the next start with the same prefix removes the
/// namespaces it left.
#[test]
fn processes_are_unprivileged_watched_and_never_outlive_the_server() {
    if !can_run() {
        return;
    }
    let p = "t14kill";
    let args = server_args(p);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut server = crate::common::LocalServer::start(&args);
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let id = rt.block_on(async {
        crate::common::create_cluster_raw(
            &server.client(),
            &serde_json::json!({"name": "k", "workers": 2}),
        )
        .await
        .unwrap()
        .id
    });
    assert_eq!(server.wait_for("alice", id, &["ready"], 60)["current_state"]["state"], "ready");
    // The Dask processes (each under its two containing steps, root's) run as the cluster's own user.
    let all = in_namespace(&format!("{p}-c{id}"));
    let dask: Vec<&InCluster> = all.iter().filter(|c| c.is_dask()).collect();
    assert_eq!(
        (dask.len(), all.len()),
        (3, 9),
        "a scheduler and two workers: {:?}",
        all.iter().map(|c| &c.cmdline).collect::<Vec<_>>()
    );
    for c in &dask {
        assert!(
            c.uid >= 1_900_000_000,
            "process {} runs as the cluster's user, not {}",
            c.pid,
            c.uid
        );
    }
    // A worker dies: it is reported, with why.
    let worker =
        dask.iter().find(|c| c.cmdline.contains("k-worker-1")).expect("worker 1").pid.clone();
    Command::new("kill").args(["-KILL", &worker]).status().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let failed = loop {
        let (_, d) = server.get(&format!("/api/v2/clusters/account/alice/id/{id}"));
        let w = d["workers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == "k-worker-1")
            .cloned()
            .unwrap();
        if w["current_state"]["state"] == "error" || Instant::now() > deadline {
            break w;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(failed["current_state"]["state"], "error", "{failed}");
    assert_eq!(
        failed["current_state"]["reason"], "the process was killed by signal 9 (SIGKILL)",
        "{failed}"
    );

    // Killed outright: the processes die with it; the namespaces go at the next start.
    Command::new("kill").args(["-KILL", &server.child.id().to_string()]).status().unwrap();
    let _ = server.child.wait();
    let deadline = Instant::now() + Duration::from_secs(10);
    while all.iter().any(|c| alive(&c.pid)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!all.iter().any(|c| alive(&c.pid)), "processes outlived a killed server");
    assert!(
        namespaces(p).contains(&format!("{p}-c{id}")),
        "a killed server cannot remove its namespaces"
    );
    let again = crate::common::LocalServer::start_in(&server.data_dir, &args);
    assert!(
        !namespaces(p).contains(&format!("{p}-c{id}")),
        "the next start removes what was left: {:?}",
        namespaces(p)
    );
    drop(again);
    assert!(namespaces(p).is_empty(), "{:?}", namespaces(p));
}

/// The migration guide's way to connect a Dask client without Coiled's, as written: its configuration
/// (a cluster, `coiled_cluster_connection` and a provisioner running its `dask_job.py`, from the lab's
/// VPN network) computes on the cluster, and the key reaches neither state nor Terraform's output.
#[test]
fn the_guides_dask_job_connects_through_the_cluster_connection() {
    if !can_run() {
        return;
    }
    let p = "t14eph";
    let guide = std::fs::read_to_string(tool("docs/guides/migrating-from-python.md")).unwrap();
    let blocks = |lang: &str| crate::docs_examples::code_blocks(&guide, lang);
    let config = blocks("terraform")
        .into_iter()
        .find(|b| b.contains("terraform_data"))
        .expect("the guide's connection example");
    let job = blocks("python")
        .into_iter()
        .find(|b| b.starts_with("# dask_job.py"))
        .expect("the guide's dask_job.py");
    // Run from the VPN, with a Python that has `distributed`, writing what it prints to a file.
    let command = format!(
        "ip netns exec {p}-vpn {} dask_job.py > result.txt",
        tool(".tools/coiled-venv/bin/python").display()
    );
    let config = config.replace("python3 dask_job.py", &command);
    assert!(config.contains(&command), "the guide runs `python3 dask_job.py`: {config}");
    let s = scenario_with(p, &config, &["--software-env", "etl-env"]);
    s.tf.write("dask_job.py", &job);
    let out = s.apply().all();
    assert_eq!(std::fs::read_to_string(s.tf.path().join("result.txt")).unwrap().trim(), "499500");
    assert!(
        !s.state_text().contains("PRIVATE KEY") && !out.contains("PRIVATE KEY"),
        "the key is in neither state nor output"
    );
}

/// Terraform run inside the lab's VPN, from where the scheduler can be reached: a scale-down 6 → 2
/// asks the scheduler to retire the four workers first, as Coiled's client does, and a computation
/// holding data on all six keeps all of it.
#[test]
fn a_scale_down_from_the_vpn_retires_workers_and_keeps_their_data() {
    if !can_run() {
        return;
    }
    let p = "t14ret";
    let s = scenario(p, "");
    let cluster = |n: u32| {
        format!(
            "{}provider \"coiled\" {{\n  server = \"http://10.1.0.1:{}\"\n  token  = \"{}\"\n  allow_insecure_http = true\n}}\nresource \"coiled_cluster\" \"r\" {{\n  name                    = \"retire\"\n  software                = \"dask\"\n  n_workers               = {n}\n  wait_for_workers        = 1\n  use_scheduler_public_ip = false\n  backend_options {{\n    ingress {{\n      ports = [443, 8786, 8787]\n      cidr  = \"10.1.0.0/16\"\n    }}\n  }}\n}}\noutput \"address\" {{ value = coiled_cluster.r.scheduler_address }}\noutput \"id\" {{ value = coiled_cluster.r.id }}\n",
            crate::common::HEADER,
            s.server.port(),
            s.server.token
        )
    };
    let terraform = |args: &[&str]| {
        let out = Command::new("ip")
            .args(["netns", "exec", &format!("{p}-vpn")])
            .arg(&s.tf.cli.path)
            .args(args)
            .current_dir(s.tf.path())
            .envs(s.tf.env_pairs())
            .output()
            .unwrap();
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    s.tf.write("main.tf", &cluster(6));
    let (ok, text) = terraform(&["apply", "-auto-approve", "-no-color"]);
    assert!(ok, "{text}");
    let (address, id) = (s.output("address"), s.output("id"));
    let (address, id) = (address.as_str().unwrap(), id.as_str().unwrap());
    let (_, details) = s.server.get(&format!("/api/v2/clusters/account/alice/id/{id}"));
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), details.to_string()).unwrap();
    let mut holder = Command::new("ip")
        .args(["netns", "exec", &format!("{p}-vpn")])
        .arg(tool(".tools/coiled-venv/bin/python"))
        .arg(tool("tests/python/dask_hold.py"))
        .args([file.path().to_str().unwrap(), address, "6"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(holder.stdout.take().unwrap());
    let mut line = String::new();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    assert_eq!(line.trim(), "READY ON 6", "the data is spread over all six workers");
    s.tf.write("main.tf", &cluster(2));
    let (ok, text) = terraform(&["apply", "-auto-approve", "-no-color"]);
    let flat_text = flat(&text);
    assert!(ok && !flat_text.contains("Without Retiring"), "{text}");
    std::io::Write::write_all(holder.stdin.as_mut().unwrap(), b"go\n").unwrap();
    line.clear();
    std::io::BufRead::read_line(&mut out, &mut line).unwrap();
    let _ = holder.wait();
    assert_eq!(
        line.trim(),
        "SUM 179700 WORKERS 2",
        "the computation kept the data of the four workers removed"
    );
    let (_, details) = s.server.get(&format!("/api/v2/clusters/account/alice/id/{id}"));
    assert_eq!(details["desired_workers"], 2);
    let (ok, text) = terraform(&["destroy", "-auto-approve", "-no-color"]);
    assert!(ok, "{text}");
}
