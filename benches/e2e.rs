//! End-to-end benchmarks through the real Terraform CLI, the release provider and `coiled-local`,
//! measured side by side with Go's `terraform-provider-null` (empty, and with `triggers` holding as many
//! values as a cluster's state: the fair peer) and Terraform's built-in `terraform_data`.
//!
//! `scripts/bench.sh` runs this (`cargo bench --bench e2e`) after installing the tools. Environment:
//! `BENCH_SIZES` (default `1,200,1000`), `BENCH_RUNS` (default 5), `BENCH_SMOKE` (set: tiny sizes, no
//! report), `BENCH_OUT` (default `docs/benchmarks`), `BENCH_ONLY=step[,step]` (reruns those of
//! [`STEPS`] and merges them into the results; `report` alone renders the page again). Results go to
//! `BENCH_OUT/results.json`, `docs/benchmarks.md` and `BENCH_OUT/plan-refresh.svg`.

#[path = "../tests/it/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{Cli, LocalServer, Workdir, clis};
use serde_json::{Value, json};

const NULL_VERSION: &str = "2.1.2";

/// The steps, in the order they run.
const STEPS: [&str; 13] = [
    "rpc",
    "startup",
    "plan",
    "cpu",
    "profile",
    "tfprofile",
    "requests",
    "latency",
    "linearity",
    "perf",
    "real",
    "readiness",
    "report",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        return f64::NAN;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 }
}

/// Peak resident memory of processes whose command line contains `needle`, sampled every 5 ms while
/// `work` runs (VmHWM is each process's own high-water mark, so the last sample is its peak).
fn peak_rss_kib<T>(needle: &'static str, work: impl FnOnce() -> T) -> (T, u64) {
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(entries) = std::fs::read_dir("/proc") {
                    for e in entries.filter_map(Result::ok) {
                        let p = e.path();
                        let Ok(cmd) = std::fs::read(p.join("cmdline")) else { continue };
                        if !String::from_utf8_lossy(&cmd).contains(needle) {
                            continue;
                        }
                        if let Ok(status) = std::fs::read_to_string(p.join("status"))
                            && let Some(line) = status.lines().find(|l| l.starts_with("VmHWM:"))
                        {
                            let kib: u64 = line
                                .split_whitespace()
                                .nth(1)
                                .and_then(|n| n.parse().ok())
                                .unwrap_or(0);
                            peak.fetch_max(kib, Ordering::Relaxed);
                        }
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let out = work();
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    (out, peak.load(Ordering::Relaxed))
}

/// A Terraform directory with the coiled provider and the Go null provider in its mirror.
fn workdir(cli: &Cli, config: &str) -> Workdir {
    workdir_logging_cpu(cli, config, None)
}

/// A provider whose CPU a workdir logs: the one named by its mirror path.
type Logged<'a> = (&'a Path, &'static str);

/// The same, with one provider wrapped so that each of its processes appends the CPU it used to the
/// log. Only the measured provider is: Terraform starts the other too, to read its schema, and that
/// process idles for the whole plan.
fn workdir_logging_cpu(cli: &Cli, config: &str, logged: Option<Logged>) -> Workdir {
    let w = workdir_with_null(cli, config);
    if let Some((log, provider)) = logged {
        cpu::wrap_provider(&w.mirror().join(provider), log);
    }
    w.terraform(&["init", "-no-color"]).ok();
    w
}

/// The provider binaries' places in a workdir's mirror.
const NULL_IN_MIRROR: &str =
    "registry.terraform.io/hashicorp/null/2.1.2/linux_amd64/terraform-provider-null_v2.1.2_x4";
const COILED_IN_MIRROR: &str =
    "registry.terraform.io/coiled/coiled/0.1.0/linux_amd64/terraform-provider-coiled_v0.1.0";

/// A Terraform directory, not initialised yet, with the Go null provider in its mirror too.
fn workdir_with_null(cli: &Cli, config: &str) -> Workdir {
    let w = Workdir::new_uninitialised(cli, config);
    let null_bin = root().join(".tools/null/terraform-provider-null_v2.1.2_x4");
    let dir =
        w.mirror().join(format!("registry.terraform.io/hashicorp/null/{NULL_VERSION}/linux_amd64"));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(&null_bin, dir.join("terraform-provider-null_v2.1.2_x4")).unwrap();
    w.allow_mirror("registry.terraform.io/hashicorp/*");
    w
}

/// The handlers' own time per RPC, without the transport, as `benches/rpc.rs` measured it just before
/// (criterion's median estimates, which `scripts/bench.sh` produces first).
fn rpc_handlers(ctx: &mut Ctx) {
    let mut row = serde_json::Map::new();
    for (rpc, id) in [
        (
            "ReadResource (incl. the HTTP read)",
            "ReadResource, one applied cluster, with its HTTP read",
        ),
        ("PlanResourceChange", "PlanResourceChange, one applied cluster, no change"),
        ("UpgradeResourceState", "UpgradeResourceState, one applied cluster"),
    ] {
        let path = root().join("target/criterion").join(id).join("new/estimates.json");
        let Some(ns) = std::fs::read_to_string(&path)
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| v["median"]["point_estimate"].as_f64())
        else {
            eprintln!(
                "rpc: no measurement at {} (run `cargo bench --bench rpc` first)",
                path.display()
            );
            return;
        };
        eprintln!("rpc {rpc}: {:.1} µs", ns / 1000.0);
        row.insert(rpc.to_string(), json!({"median_us": ns / 1000.0}));
    }
    ctx.results.insert("rpc_handlers".into(), Value::Object(row));
}

/// Where the CPU of a plan with refresh of `n` applied resources goes, ours against the fair peer:
/// Terraform's own, the provider processes', and coiled-local's; runs interleaved, medians.
fn cpu_split(ctx: &mut Ctx, cli: &Cli, n: usize) {
    let (server, provider, triggers) = peer_setup(cli);
    let logs = tempfile::tempdir().unwrap();
    let dirs: Vec<(&str, Workdir, PathBuf)> = plan_kinds(cli, &provider, &triggers, n)
        .into_iter()
        .filter(|(kind, _)| against_peer(kind))
        .map(|(kind, body)| {
            let log = logs.path().join(kind.split(',').next().unwrap_or(kind));
            let provider =
                if kind.starts_with("coiled") { COILED_IN_MIRROR } else { NULL_IN_MIRROR };
            let w = workdir_logging_cpu(cli, &header(&body), Some((&log, provider)));
            w.terraform(&["apply", "-auto-approve", "-no-color", "-parallelism=20"]).ok();
            (kind, w, log)
        })
        .collect();
    let mut samples: BTreeMap<&str, Vec<[f64; 4]>> = BTreeMap::new();
    for _ in 0..ctx.runs {
        for (kind, w, log) in &dirs {
            let _ = std::fs::remove_file(log);
            let (all, local) = (cpu::children_cpu_s(), cpu::process_cpu_s(server.child.id()));
            let wall = timed(w, &["plan", "-no-color"]);
            let all = cpu::children_cpu_s() - all;
            let provider = cpu::logged_cpu_s(log);
            let local = if kind.starts_with("coiled") {
                cpu::process_cpu_s(server.child.id()) - local
            } else {
                0.0
            };
            samples.entry(kind).or_default().push([wall, all - provider, provider, local]);
        }
    }
    let mut row = serde_json::Map::new();
    for (kind, runs) in samples {
        let m = |i: usize| median(runs.iter().map(|r| r[i]).collect());
        let (wall, tf, prov, local) = (m(0), m(1), m(2), m(3));
        eprintln!(
            "cpu {} N={n} {kind}: {wall:.2}s wall; CPU terraform {tf:.3}s, providers {prov:.3}s, coiled-local {local:.3}s",
            cli.version
        );
        row.insert(kind.to_string(), json!({"wall_s": wall, "terraform_cpu_s": tf, "provider_cpu_s": prov, "server_cpu_s": local}));
    }
    ctx.results.remove(&format!("cpu_split_{}", cli.version)); // the key of runs at one size only
    ctx.results.insert(
        format!("cpu_split_{}_n{n}", cli.version),
        json!({"n": n, "results": row, "own_provider_only": true}),
    );
}

fn timed(w: &Workdir, args: &[&str]) -> f64 {
    let t = Instant::now();
    w.terraform(args).ok();
    t.elapsed().as_secs_f64()
}

struct Ctx {
    runs: usize,
    results: BTreeMap<String, Value>,
}

fn header(extra: &str) -> String {
    format!(
        "terraform {{\n  required_providers {{\n    coiled = {{ source = \"coiled/coiled\" }}\n    null = {{ source = \"hashicorp/null\" }}\n  }}\n}}\n{extra}"
    )
}

/// The `provider "coiled"` block that points at `server`.
fn provider_block(server: &LocalServer) -> String {
    format!(
        "provider \"coiled\" {{\n  server = \"{}\"\n  token  = \"{}\"\n}}\n",
        server.url, server.token
    )
}

/// A server with no provisioning delay, its provider block, and the fair peer's `triggers`, built from
/// a cluster of that server.
fn peer_setup(cli: &Cli) -> (LocalServer, String, BTreeMap<String, String>) {
    let server = LocalServer::start(&["--provision-delay", "0s", "--stop-delay", "0s"]);
    let provider = provider_block(&server);
    let triggers = cluster_state_values(cli, &provider);
    (server, provider, triggers)
}

/// Whether a kind of plan is one of the two compared: ours, or the fair peer.
fn against_peer(kind: &str) -> bool {
    kind.starts_with("coiled") || kind == PEER
}

/// The values of one applied `coiled_cluster`'s state, flattened to `key = "value"` pairs (nested
/// blocks and lists by index, nulls left out): what a fair peer's `triggers` map holds.
fn cluster_state_values(cli: &Cli, provider: &str) -> BTreeMap<String, String> {
    let w = workdir(
        cli,
        &header(&format!(
            "{provider}resource \"coiled_cluster\" \"one\" {{\n  software  = \"dask\"\n  name      = \"peer-model\"\n  n_workers = 0\n}}\n"
        )),
    );
    w.terraform(&["apply", "-auto-approve", "-no-color"]).ok();
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(w.path().join("terraform.tfstate")).unwrap())
            .unwrap();
    let mut out = BTreeMap::new();
    fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
        match v {
            Value::Null => {}
            Value::Object(m) => m.iter().for_each(|(k, v)| {
                flatten(
                    &if prefix.is_empty() { k.clone() } else { format!("{prefix}_{k}") },
                    v,
                    out,
                )
            }),
            Value::Array(a) => {
                a.iter().enumerate().for_each(|(i, v)| flatten(&format!("{prefix}_{i}"), v, out))
            }
            Value::String(s) => drop(out.insert(prefix.to_string(), s.clone())),
            other => drop(out.insert(prefix.to_string(), other.to_string())),
        }
    }
    flatten("", &state["resources"][0]["instances"][0]["attributes"], &mut out);
    w.terraform(&["destroy", "-auto-approve", "-no-color"]).ok();
    out
}

/// The kinds of resource a plan-refresh run compares, each with its configuration for `n` instances.
fn plan_kinds(
    cli: &Cli,
    provider: &str,
    triggers: &BTreeMap<String, String>,
    n: usize,
) -> Vec<(&'static str, String)> {
    let map: String = triggers
        .iter()
        .map(|(k, v)| format!("    {k} = {}\n", serde_json::to_string(v).unwrap()))
        .collect();
    let mut kinds = vec![
        (
            "coiled_cluster",
            format!(
                "{provider}resource \"coiled_cluster\" \"c\" {{\n  software  = \"dask\"\n  count     = {n}\n  name      = \"b{n}-${{count.index}}\"\n  n_workers = 0\n}}\n"
            ),
        ),
        (
            PEER,
            format!(
                "resource \"null_resource\" \"f\" {{\n  count = {n}\n  triggers = {{\n{map}  }}\n}}\n"
            ),
        ),
        (
            "null_resource, empty (Go)",
            format!("resource \"null_resource\" \"n\" {{\n  count = {n}\n}}\n"),
        ),
    ];
    if cli.at_least(1, 4) {
        kinds.push((
            "terraform_data (no plugin)",
            format!(
                "resource \"terraform_data\" \"d\" {{\n  count = {n}\n  input = count.index\n}}\n"
            ),
        ));
    }
    kinds
}

/// The fair peer: Go's `null_resource` with a `triggers` map of as many values as a cluster's state.
const PEER: &str = "null_resource, cluster-sized triggers (Go)";

/// Plan with refresh of N already-applied resources of each kind, at default parallelism and at 1, the
/// kinds' runs interleaved (one run of each in turn) so that the machine's drift hits all alike; and
/// the state's bytes per instance.
fn plan_refresh(ctx: &mut Ctx, cli: &Cli, sizes: &[usize]) {
    let (_server, provider, triggers) = peer_setup(cli);
    eprintln!(
        "plan-refresh {}: the fair peer's triggers hold {} values, as a cluster's state",
        cli.version,
        triggers.len()
    );
    let mut table = Vec::new();
    for &n in sizes {
        let runs = if n >= 1000 { ctx.runs.min(3) } else { ctx.runs };
        let dirs: Vec<(&str, Workdir)> = plan_kinds(cli, &provider, &triggers, n)
            .into_iter()
            .map(|(kind, body)| {
                let w = workdir(cli, &header(&body));
                w.terraform(&["apply", "-auto-approve", "-no-color", "-parallelism=20"]).ok();
                (kind, w)
            })
            .collect();
        let mut default: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        let mut serial: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
        for _ in 0..runs {
            for (kind, w) in &dirs {
                default.entry(kind).or_default().push(timed(w, &["plan", "-no-color"]));
                serial
                    .entry(kind)
                    .or_default()
                    .push(timed(w, &["plan", "-no-color", "-parallelism=1"]));
            }
        }
        let mut row = serde_json::Map::new();
        for (kind, w) in &dirs {
            let needle = if kind.starts_with("coiled") {
                "terraform-provider-coiled"
            } else {
                "terraform-provider-null"
            };
            let (_, rss) = if kind.starts_with("terraform_data") {
                ((), 0)
            } else {
                peak_rss_kib(needle, || {
                    w.terraform(&["plan", "-no-color"]).ok();
                })
            };
            let state_bytes = std::fs::metadata(w.path().join("terraform.tfstate"))
                .map(|m| m.len())
                .unwrap_or(0) as f64
                / n as f64;
            let (d, s) = (
                median(default.remove(kind).unwrap_or_default()),
                median(serial.remove(kind).unwrap_or_default()),
            );
            eprintln!(
                "plan-refresh {} N={n} {kind}: {d:.2}s default, {s:.2}s -parallelism=1, peak RSS {rss} KiB, {state_bytes:.0} state bytes per instance",
                cli.version
            );
            row.insert(
                kind.to_string(),
                json!({"default_s": d, "parallelism1_s": s, "peak_rss_kib": rss, "state_bytes_per_instance": state_bytes}),
            );
        }
        table.push(json!({"n": n, "peer_values": triggers.len(), "results": row}));
    }
    ctx.results.insert(format!("plan_refresh_{}", cli.version), Value::Array(table));
}

/// A configuration of `n` clusters named `{prefix}-0`, `{prefix}-1`, … of `workers` workers each, on `server`.
fn counted_clusters(server: &LocalServer, n: usize, prefix: &str, workers: u32) -> String {
    format!(
        "{}{}resource \"coiled_cluster\" \"c\" {{\n  software  = \"dask\"\n  count     = {n}\n  name      = \"{prefix}-${{count.index}}\"\n  n_workers = {workers}\n}}\n",
        header(""),
        provider_block(server)
    )
}

/// For clusters made with provisioning delay D: the polls each create makes, the time from the cluster
/// becoming ready in coiled-local to the provider's first poll after it (detection), and to `terraform
/// apply` returning; against what a fixed 1 s poll makes.
fn readiness(ctx: &mut Ctx, cli: &Cli, delay_s: f64) {
    let delay = format!("{}ms", (delay_s * 1000.0) as u64);
    let server = LocalServer::start(&["--provision-delay", &delay, "--stop-delay", "0s"]);
    let (mut detections, mut exits, mut polls) = (Vec::new(), Vec::new(), Vec::new());
    let runs = if delay_s >= 60.0 { ctx.runs.min(3) } else { ctx.runs };
    for run in 0..runs {
        let config = format!(
            "{}{}resource \"coiled_cluster\" \"r\" {{\n  software  = \"dask\"\n  name      = \"ready-{run}\"\n  n_workers = 1\n}}\n",
            header(""),
            provider_block(&server)
        );
        let w = workdir(cli, &config);
        server.delete("/_local/requests");
        w.terraform(&["apply", "-auto-approve", "-no-color"]).ok();
        let returned = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let id = w
            .terraform(&["state", "show", "-no-color", "coiled_cluster.r"])
            .ok()
            .stdout
            .lines()
            .find(|l| l.trim_start().starts_with("id "))
            .and_then(|l| l.split('"').nth(1))
            .unwrap()
            .to_string();
        let states = server.get(&format!("/api/v2/clusters/account/alice/id/{id}/states")).1;
        let ready_at = states["cluster"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["state"] == "ready")
            .and_then(|s| s["updated"].as_str())
            .unwrap()
            .replace("+00:00", "Z");
        let ready = humantime::parse_rfc3339(&ready_at)
            .unwrap()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let log = server.get("/_local/requests").1;
        let reads: Vec<f64> = log
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| {
                r["method"] == "GET"
                    && r["path"] == format!("/api/v2/clusters/account/alice/id/{id}")
            })
            .filter_map(|r| r["at"].as_f64())
            .collect();
        let seen = reads.iter().copied().filter(|t| *t >= ready).fold(f64::INFINITY, f64::min);
        detections.push(seen - ready);
        exits.push(returned - ready);
        // The polls of the wait: the reads up to the one that saw it ready (a refresh adds none here).
        polls.push(reads.iter().filter(|t| **t <= seen).count() as f64);
    }
    let fixed_1s_polls = delay_s.ceil() + 1.0;
    let (det, exit, p) = (median(detections.clone()), median(exits.clone()), median(polls.clone()));
    eprintln!(
        "readiness {} D={delay_s}s: detected {det:.3}s after ready (median), apply returned {exit:.3}s after; {p} polls (a fixed 1 s poll makes {fixed_1s_polls})",
        cli.version
    );
    ctx.results.insert(
        format!("readiness_{}_{delay_s}s", cli.version),
        json!({"provision_delay_s": delay_s, "median_detection_s": det, "detections_s": detections, "median_latency_s": exit, "latencies_s": exits, "median_polls": p, "fixed_1s_polls": fixed_1s_polls}),
    );
}

/// Real clusters (`coiled-local --clusters dask`, as root): time from `terraform apply` to a two-worker
/// cluster ready (both workers connected), and coiled-local's own peak memory with three such clusters.
fn real_clusters(ctx: &mut Ctx, cli: &Cli) {
    let python = root().join(".tools/dask-venv/bin/python");
    let root_user = common::is_root();
    if !root_user || !python.exists() {
        eprintln!(
            "real clusters: skipped (needs root and .tools/dask-venv from scripts/install-test-tools.sh)"
        );
        return;
    }
    let py = python.display().to_string();
    let server = LocalServer::start(&[
        "--clusters",
        "dask",
        "--python",
        &py,
        "--lab",
        "bench",
        "--provision-delay",
        "0s",
        "--stop-delay",
        "0s",
    ]);
    let provider = format!("{}{}", header(""), provider_block(&server));
    let mut times = Vec::new();
    for run in 0..ctx.runs.min(3) {
        let config = format!(
            "{provider}resource \"coiled_cluster\" \"r\" {{\n  software         = \"dask\"\n  name             = \"real-{run}\"\n  n_workers        = 2\n  wait_for_workers = 1\n}}\n"
        );
        let w = workdir(cli, &config);
        let t = Instant::now();
        w.terraform(&["apply", "-auto-approve", "-no-color"]).ok();
        times.push(t.elapsed().as_secs_f64());
        w.terraform(&["destroy", "-auto-approve", "-no-color"]).ok();
    }
    let three = format!(
        "{provider}resource \"coiled_cluster\" \"r\" {{\n  count            = 3\n  software         = \"dask\"\n  name             = \"three-${{count.index}}\"\n  n_workers        = 2\n  wait_for_workers = 1\n}}\n"
    );
    let w = workdir(cli, &three);
    w.terraform(&["apply", "-auto-approve", "-no-color"]).ok();
    let status =
        std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let (peak, now) = (kib("VmHWM:"), kib("VmRSS:"));
    w.terraform(&["destroy", "-auto-approve", "-no-color"]).ok();
    let m = median(times.clone());
    eprintln!(
        "real clusters {}: {m:.2}s from apply to two workers ready; coiled-local peak {peak} KiB with three clusters",
        cli.version
    );
    ctx.results.insert(
        format!("real_{}", cli.version),
        json!({"apply_to_ready_s": m, "runs_s": times, "coiled_local_peak_rss_kib": peak, "coiled_local_rss_kib": now}),
    );
}

/// Time from exec to the handshake line, for our provider and the Go null provider.
fn startup(ctx: &mut Ctx, runs: usize) {
    let ours = PathBuf::from(common::PROVIDER_BIN);
    let null = root().join(".tools/null/terraform-provider-null_v2.1.2_x4");
    let mut out = serde_json::Map::new();
    for (name, bin, versions) in [("coiled (Rust)", &ours, "6"), ("null (Go)", &null, "5")] {
        let tmp = tempfile::tempdir().unwrap();
        let times: Vec<f64> = (0..runs.max(10))
            .map(|_| {
                let t = Instant::now();
                let mut child = Command::new(bin)
                    .env(tfplugin::serve::MAGIC_COOKIE_KEY, tfplugin::serve::MAGIC_COOKIE_VALUE)
                    .env("PLUGIN_PROTOCOL_VERSIONS", versions)
                    .env("PLUGIN_MIN_PORT", "10000")
                    .env("PLUGIN_MAX_PORT", "25000")
                    .env("TMPDIR", tmp.path())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                let mut line = String::new();
                BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
                let d = t.elapsed().as_secs_f64();
                let _ = child.kill();
                let _ = child.wait();
                d
            })
            .collect();
        let size = std::fs::metadata(bin).map(|m| m.len()).unwrap_or(0);
        let m = median(times);
        eprintln!(
            "startup {name}: {:.1} ms to handshake, binary {:.1} MiB",
            m * 1000.0,
            size as f64 / 1048576.0
        );
        out.insert(name.to_string(), json!({"handshake_ms": m * 1000.0, "binary_bytes": size}));
    }
    ctx.results.insert("startup".into(), Value::Object(out));
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines().next().map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let rustc = Command::new("rustc")
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    json!({"cpu": cpu, "cores": cores, "memory_kib": mem, "rustc": rustc, "os": std::env::consts::OS})
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is taken from the command line.
    let smoke = std::env::var("BENCH_SMOKE").is_ok();
    let sizes: Vec<usize> = if smoke {
        vec![1, 5]
    } else {
        std::env::var("BENCH_SIZES")
            .unwrap_or_else(|_| "1,200,1000".into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect()
    };
    let runs: usize = if smoke {
        1
    } else {
        std::env::var("BENCH_RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(5)
    };
    assert!(
        root().join(".tools/null/terraform-provider-null_v2.1.2_x4").exists(),
        "the Go null provider is missing: run scripts/bench.sh"
    );
    // BENCH_ONLY=step[,step] reruns some steps and merges them into the existing results.
    let only: Option<Vec<String>> =
        std::env::var("BENCH_ONLY").ok().map(|v| v.split(',').map(str::to_string).collect());
    if let Some(unknown) = only.iter().flatten().find(|s| !STEPS.contains(&s.as_str())) {
        panic!("BENCH_ONLY: no step {unknown:?}; the steps are {}", STEPS.join(", "));
    }
    let wanted = |step: &str| {
        assert!(STEPS.contains(&step), "step {step:?} is not in STEPS");
        only.as_ref().is_none_or(|o| o.iter().any(|s| s == step))
    };
    let out_dir = std::env::var("BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root().join("docs/benchmarks"));
    let previous: BTreeMap<String, Value> = if only.is_some() {
        std::fs::read_to_string(out_dir.join("results.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            .and_then(|v| serde_json::from_value(v["results"].clone()).ok())
            .unwrap_or_default()
    } else {
        BTreeMap::new()
    };
    let mut ctx = Ctx { runs, results: previous };
    if wanted("rpc") {
        rpc_handlers(&mut ctx);
    }
    if wanted("startup") {
        startup(&mut ctx, if smoke { 3 } else { 20 });
    }
    for cli in clis() {
        if wanted("plan") {
            plan_refresh(&mut ctx, cli, &sizes);
        }
        if wanted("cpu") {
            // One instance shows the plan's fixed cost (start-up, schemas); 200 adds the per-instance work.
            for n in if smoke { vec![5] } else { vec![1, 200] } {
                cpu_split(&mut ctx, cli, n);
            }
        }
        if wanted("profile") {
            profile(&mut ctx, cli, if smoke { 5 } else { 1000 });
        }
        if wanted("tfprofile") {
            tf_profile(&mut ctx, cli, if smoke { 5 } else { 1000 });
        }
        if wanted("requests") {
            operations::requests_per_operation(&mut ctx, cli, if smoke { 5 } else { 100 });
        }
        if wanted("latency") {
            let (n, latencies) = if smoke { (5, vec![0, 50]) } else { (200, vec![0, 50, 150]) };
            operations::over_latency(&mut ctx, cli, n, &latencies);
        }
        if wanted("linearity") {
            let (sizes, seed_above) =
                if smoke { (vec![1, 5, 12], 5) } else { (vec![1, 200, 1000, 5000], 1000) };
            operations::linearity(&mut ctx, cli, &sizes, seed_above);
        }
        if wanted("perf") {
            let (sizes, seed_above) =
                if smoke { (vec![1, 5, 12], 5) } else { (vec![1, 200, 5000], 1000) };
            operations::linearity_profile(&mut ctx, cli, &sizes, seed_above);
        }
        if wanted("real") && !smoke && cli.version == clis().last().unwrap().version {
            real_clusters(&mut ctx, cli);
        }
        if wanted("readiness") {
            for delay in if smoke { vec![0.5] } else { vec![3.0, 3.5, 20.0, 90.0] } {
                readiness(&mut ctx, cli, delay);
            }
        }
    }
    if smoke {
        eprintln!("smoke run: no report written");
        return;
    }
    std::fs::create_dir_all(&out_dir).unwrap();
    // A page rendered again from the results (`BENCH_ONLY=report`) names the machine they were
    // measured on, and leaves them as they are: read and written back, floats could move in their
    // last digit.
    let rendering_only = only.as_ref().is_some_and(|o| o.iter().all(|s| s == "report"));
    let measured_on = rendering_only
        .then(|| std::fs::read_to_string(out_dir.join("results.json")).ok())
        .flatten()
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .map(|v| v["machine"].clone())
        .filter(|m| !m.is_null());
    let machine = measured_on.unwrap_or_else(machine);
    let doc = json!({"machine": machine, "runs": runs, "sizes": sizes, "results": ctx.results});
    if !rendering_only {
        std::fs::write(
            out_dir.join("results.json"),
            serde_json::to_string_pretty(&doc).unwrap() + "\n",
        )
        .unwrap();
    }
    report::write(&doc, &out_dir, &root().join("docs/benchmarks.md"));
}

mod support;
use support::profile::profile;
use support::tfprofile::tf_profile;
use support::{cpu, operations, report};
