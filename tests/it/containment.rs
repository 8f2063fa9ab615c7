//! Code on a real cluster is untrusted: hostile tasks on one cluster (a worker of workspace `bob`)
//! try to reach another cluster (of workspace `alice`), the server's data and root, to escape, and to
//! exhaust the machine. Each attempt must be refused, and nothing may be left behind. Needs root, as
//! `coiled-local --clusters dask` does.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::real_clusters::{can_run, namespaces, server_args, tool};

/// Waits until cluster `id` of `workspace` is ready; its details.
fn ready(server: &crate::common::LocalServer, workspace: &str, id: i64) -> Value {
    let d = server.wait_for(workspace, id, &["ready", "error"], 90);
    assert_eq!(d["current_state"]["state"], "ready", "{d}");
    d
}

/// Host pids of processes whose command line contains `text`, with their real user ids.
pub(crate) fn processes(text: &str) -> Vec<(i32, u32)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else { continue };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmdline).replace('\0', " ").contains(text) {
            let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
            let uid = status
                .lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|l| l.split_whitespace().next()?.parse().ok());
            if let Some(uid) = uid {
                out.push((pid, uid));
            }
        }
    }
    out
}

/// The run directory of the server with prefix `p`.
fn run_dir(p: &str) -> Option<PathBuf> {
    std::fs::read_dir("/run").unwrap().flatten().map(|e| e.path()).find(|d| {
        d.file_name().unwrap().to_string_lossy().starts_with(&format!("coiled-local-{p}."))
    })
}

/// Control groups of the server with prefix `p`, in any hierarchy.
fn cgroups(p: &str) -> Vec<PathBuf> {
    let name = format!("coiled-local-{p}");
    let mut found = Vec::new();
    let mut dirs = vec![PathBuf::from("/sys/fs/cgroup")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                if e.file_name() == name.as_str() {
                    found.push(e.path());
                } else if d.components().count() < 8 {
                    dirs.push(e.path());
                }
            }
        }
    }
    found
}

/// Creates a cluster in `workspace`; its id.
fn create(server: &crate::common::LocalServer, workspace: &str, name: &str, workers: i64) -> i64 {
    // Workspace bob has no software environment of its own: a package-sync build id stands in.
    server.create(
        workspace,
        &json!({"name": name, "workers": workers, "env_name": null, "env_id": 1}),
    )
}

#[test]
fn hostile_tasks_reach_nothing_and_leave_nothing() {
    if !can_run() {
        return;
    }
    let p = "t30host";
    let mut args = server_args(p);
    args.extend(
        ["--member-of", "bob", "--worker-memory", "256MiB", "--default-ingress", "443@10.1.0.0/16"]
            .map(String::from),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // The data directory is not under /tmp, which clusters do not see at all: its mode must protect it.
    let data = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut server = crate::common::LocalServer::start_in(data.path(), &args);
    let a = create(&server, "alice", "a", 1);
    let b = create(&server, "bob", "b", 1);
    let (a_details, b_details) = (ready(&server, "alice", a), ready(&server, "bob", b));
    let run = run_dir(p).expect("a run directory");
    let a_worker =
        processes("a-worker-1").into_iter().find(|(_, uid)| *uid != 0).expect("a's worker");
    let a_address =
        a_details["scheduler"]["instance"]["private_ip_address"].as_str().unwrap().to_string();
    let marker = format!("escape-{}", std::process::id());
    let data = server.data_dir.clone();
    // A world-writable directory on the host's disk, as /run/lock or /var/crash may be.
    let open_dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::set_permissions(open_dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o1777))
        .unwrap();
    assert!(run.join(b.to_string()).join("key.pem").exists());
    let targets = json!({
        "files": [run.join(a.to_string()).join("key.pem"), data.join("token"), data.join("coiled-local.db"), "/etc/shadow"],
        "dirs": [run.clone(), data.clone(), run.join(a.to_string())],
        "open_dirs": [open_dir.path()],
        "addresses": [["172.31.0.1", server.port()], [a_address, 443], ["10.1.0.10", 22]],
        "pids": [a_worker.0, server.child.id()],
        "marker": marker,
        "memory_mib": 600,
    });
    let hostile = |mode: &str| hostile(p, &b_details, &targets, mode);
    let result = hostile("probe");
    assert_refused(&result, a_worker.1);
    let ipcs =
        String::from_utf8_lossy(&Command::new("ipcs").args(["-m", "-c"]).output().unwrap().stdout)
            .into_owned();
    assert!(
        !ipcs.contains(&result["uid"].to_string()),
        "the cluster's shared memory is not the host's: {ipcs}"
    );
    let escaped = processes(&marker);
    assert_eq!(
        escaped.len(),
        2,
        "the escapes run, on the worker and on the scheduler, until their process ends: {escaped:?}"
    );
    assert!(
        escaped.iter().all(|(_, uid)| *uid as u64 == result["uid"].as_u64().unwrap()),
        "{escaped:?}"
    );

    // A worker that takes too much memory is killed by the kernel, says so, and takes its escape along.
    assert_ne!(hostile("hog")["memory beyond the limit"], "ok");

    let deadline = Instant::now() + Duration::from_secs(30);
    let reason = loop {
        let (_, d) = server.get(&format!("/api/v2/clusters/account/bob/id/{b}"));
        let w = d["workers"][0]["current_state"].clone();
        if w["state"] == "error" || Instant::now() > deadline {
            break w["reason"].as_str().unwrap_or_default().to_string();
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        reason.contains("killed by signal 9") && reason.contains("--worker-memory 256MiB"),
        "{reason}"
    );

    assert_eq!(
        processes(&marker).len(),
        1,
        "the worker's escape ended with it; the scheduler's remains"
    );

    // Stopping b kills everything it started; a and the server are untouched.
    server.delete(&format!("/api/v2/clusters/account/bob/id/{b}?reason=test"));
    let deadline = Instant::now() + Duration::from_secs(20);
    while (!processes(&marker).is_empty() || run.join(b.to_string()).exists())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(processes(&marker).is_empty(), "a setsid process outlived its cluster");
    assert!(!run.join(b.to_string()).exists(), "b's files are removed");
    assert!(
        cgroups(p).iter().all(|g| !g.join(format!("c{b}")).exists()),
        "b's control groups are removed"
    );
    assert!(server.child.try_wait().unwrap().is_none(), "the server survived the deep tree");
    assert_eq!(ready(&server, "alice", a)["current_state"]["state"], "ready");
    assert!(crate::real_clusters::alive(&a_worker.0.to_string()), "a's worker was not killed");

    assert!(server.stop().success());
    assert_nothing_left(p, &marker);
}

/// Runs `tests/python/hostile.py` in `mode` from the VPN against the cluster of `details`.
fn hostile(p: &str, details: &Value, targets: &Value, mode: &str) -> Value {
    let (details_file, targets_file) =
        (tempfile::NamedTempFile::new().unwrap(), tempfile::NamedTempFile::new().unwrap());
    std::fs::write(details_file.path(), details.to_string()).unwrap();
    std::fs::write(targets_file.path(), targets.to_string()).unwrap();
    let address = format!(
        "tls://{}:443",
        details["scheduler"]["instance"]["private_ip_address"].as_str().unwrap()
    );
    let out = Command::new("ip")
        .args(["netns", "exec", &format!("{p}-vpn")])
        .arg(tool(".tools/coiled-venv/bin/python"))
        .arg(tool("tests/python/hostile.py"))
        .args([details_file.path(), Path::new(&address), targets_file.path(), Path::new(mode)])
        .output()
        .unwrap();
    let text =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    text.lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .map(|r| serde_json::from_str(r).unwrap())
        .unwrap_or_else(|| panic!("{text}"))
}

/// Every attempt of the probe was refused, but what its own private namespaces allow.
fn assert_refused(result: &Value, other_uid: u32) {
    let results = result.as_object().unwrap();
    for (attempt, outcome) in results {
        match attempt.as_str() {
            "uid" => assert_ne!(outcome, &json!(other_uid), "each cluster runs as its own user"),
            "processes of other users seen" => {
                assert_eq!(outcome, &json!(0), "a private PID namespace: {result}")
            }
            "a 30000-deep tree in /tmp" | "shared memory made" => {
                assert_eq!(outcome, "ok", "its private /tmp and IPC are its own: {result}")
            }
            _ => assert_ne!(outcome, "ok", "{attempt} must be refused: {result}"),
        }
    }
    assert!(
        result["uid"].as_u64().unwrap() >= 1_900_000_000,
        "a uid from the reserved range: {result}"
    );
}

/// The server's exit leaves nothing: processes, namespaces, control groups, files.
fn assert_nothing_left(p: &str, marker: &str) {
    assert!(
        processes(&format!("--netns {p}-")).is_empty() && processes(marker).is_empty(),
        "processes outlived the server"
    );
    assert!(namespaces(p).is_empty(), "{:?}", namespaces(p));
    assert!(cgroups(p).is_empty(), "{:?}", cgroups(p));
    assert!(run_dir(p).is_none(), "the run directory is removed");
}
