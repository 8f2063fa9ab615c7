//! Real clusters over time, as the service behaves: an idle scheduler stops its cluster while a busy
//! one does not, a process that cannot run fails its cluster at once, a dead scheduler fails every
//! worker, and a `--python` cluster users cannot run is refused with its cause. Needs root.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::real_clusters::{can_run, server_args, tool};

/// The scheduler of a cluster with a short `idle_timeout` stops itself when idle, and the cluster is
/// `stopped` with the reason; one running a task outlives its timeout until the task ends.
#[test]
fn idle_real_clusters_stop_and_busy_ones_do_not() {
    if !can_run() {
        return;
    }
    let p = "t30idle";
    let mut args = server_args(p);
    args.extend(["--default-ingress", "443@10.1.0.0/16"].map(String::from));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = crate::common::LocalServer::start(&args);
    let idle = json!({"scheduler_options": {"idle_timeout": "8 seconds"}});
    let (quiet, busy) = (
        server.create("alice", &json!({"name": "quiet", "workers": 1}).merged(&idle)),
        server.create("alice", &json!({"name": "busy", "workers": 1}).merged(&idle)),
    );
    let details = server.wait_for("alice", busy, &["ready", "error"], 60);
    assert_eq!(details["current_state"]["state"], "ready", "{details}");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), details.to_string()).unwrap();
    let address = format!(
        "tls://{}:443",
        details["scheduler"]["instance"]["private_ip_address"].as_str().unwrap()
    );
    let started = Instant::now();
    let client = Command::new("ip")
        .args(["netns", "exec", &format!("{p}-vpn")])
        .arg(tool(".tools/coiled-venv/bin/python"))
        .arg(tool("tests/python/dask_busy.py"))
        .args([file.path(), Path::new(&address), Path::new("20")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let stopped = server.wait_for("alice", quiet, &["stopped", "error"], 30);
    assert_eq!(stopped["current_state"]["state"], "stopped", "{stopped}");
    assert_eq!(
        stopped["current_state"]["reason"],
        "Cluster was idle for 8 seconds (its idle_timeout)"
    );
    while started.elapsed() < Duration::from_secs(16) {
        std::thread::sleep(Duration::from_millis(200));
    }
    let (_, during) = server.get(&format!("/api/v2/clusters/account/alice/id/{busy}"));
    assert_eq!(
        during["current_state"]["state"], "ready",
        "a computation keeps its cluster: {during}"
    );
    let out = client.wait_with_output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("DONE"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = server.wait_for("alice", busy, &["stopped", "error"], 30);
    assert_eq!(after["current_state"]["state"], "stopped", "idle once its task ended: {after}");
}

/// A `--python` that passes the start-up check but cannot run a cluster's processes fails the
/// cluster at once (never `starting` until a timeout); a scheduler that dies takes every worker's
/// state with it.
#[test]
fn failing_processes_fail_their_cluster_and_its_workers() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    let wrapper = dir.path().join("python");
    let real = tool(".tools/dask-venv/bin/python");
    std::fs::write(
        &wrapper,
        format!("#!/bin/sh\ncase \"$1\" in -c) exec {} \"$@\";; esac\nexit 126\n", real.display()),
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .unwrap();
    let mut args = server_args("t30fail");
    let at = args.iter().position(|a| a == "--python").unwrap() + 1;
    args[at] = wrapper.display().to_string();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = crate::common::LocalServer::start(&args);
    let id = server.create("alice", &json!({"name": "broken", "workers": 2}));
    let failed = server.wait_for("alice", id, &["error"], 15);
    assert_eq!(failed["current_state"]["state"], "error", "{failed}");
    assert!(
        failed["current_state"]["reason"].as_str().unwrap().contains("exit status 126"),
        "{failed}"
    );
    assert!(
        failed["workers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["current_state"]["state"] == "error"),
        "{failed}"
    );
    drop(server);

    let args = server_args("t30dies");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = crate::common::LocalServer::start(&args);
    let id = server.create("alice", &json!({"name": "dies", "workers": 2}));
    assert_eq!(
        server.wait_for("alice", id, &["ready", "error"], 60)["current_state"]["state"],
        "ready"
    );
    let in_cluster = crate::real_clusters::in_namespace(&format!("t30dies-c{id}"));
    let scheduler = &in_cluster
        .iter()
        .find(|c| c.is_dask() && c.cmdline.contains("dask_scheduler"))
        .unwrap()
        .pid;
    Command::new("kill").args(["-KILL", scheduler]).status().unwrap();
    let failed = server.wait_for("alice", id, &["error"], 20);
    assert_eq!(
        failed["scheduler"]["current_state"]["reason"],
        "the process was killed by signal 9 (SIGKILL)",
        "{failed}"
    );
    assert!(
        failed["workers"]
            .as_array()
            .unwrap()
            .iter()
            .all(|w| w["current_state"]["state"] == "error"),
        "no worker is left started: {failed}"
    );
    let worker = &failed["workers"][0]["current_state"]["reason"];
    assert_eq!(
        worker, "its cluster failed: the process was killed by signal 9 (SIGKILL)",
        "{failed}"
    );
    let page = server.get("/").1;
    let page = page.as_str().unwrap_or_default();
    assert!(
        page.contains("Failed workers")
            && page.contains(
                "<code>dies-worker-2</code>: its cluster failed: the process was killed by signal 9"
            ),
        "the page names them and why: {page}"
    );
}

/// A `--python` under a directory other users may not enter (as one under `/root` is) is refused at
/// start-up, and the message names that directory.
#[test]
fn a_python_cluster_users_cannot_reach_is_refused_with_its_cause() {
    if !can_run() {
        return;
    }
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .unwrap();
    let python = dir.path().join("python");
    std::os::unix::fs::symlink(tool(".tools/dask-venv/bin/python"), &python).unwrap();
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(crate::common::local_bin())
        .args([
            "serve",
            "--data-dir",
            data.path().to_str().unwrap(),
            "--clusters",
            "dask",
            "--lab",
            "t30py",
            "--python",
        ])
        .arg(&python)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains(&format!("{} (mode 700) does not let other users in", dir.path().display())),
        "{err}"
    );
}

/// A `--python` under a directory every cluster gets privately (a checkout in `/tmp`), its
/// environment linked from another such directory, still runs clusters: both are bound back into each
/// cluster's view, read-only.
#[test]
fn a_python_under_tmp_runs_clusters() {
    if !can_run() {
        return;
    }
    let dirs: Vec<tempfile::TempDir> = (0..2)
        .map(|_| {
            tempfile::Builder::new().prefix("coiled-local-checkout").tempdir_in("/tmp").unwrap()
        })
        .collect();
    for dir in &dirs {
        std::fs::set_permissions(dir.path(), std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    std::os::unix::fs::symlink(tool(".tools/dask-venv"), dirs[1].path().join("venv")).unwrap();
    std::os::unix::fs::symlink(dirs[1].path().join("venv"), dirs[0].path().join("venv")).unwrap();
    let mut args = server_args("t30tmp");
    let at = args.iter().position(|a| a == "--python").unwrap() + 1;
    args[at] = dirs[0].path().join("venv/bin/python").display().to_string();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = crate::common::LocalServer::start(&args);
    let id = server.create("alice", &json!({"name": "from-tmp", "workers": 1}));
    let ready = server.wait_for("alice", id, &["ready", "error"], 60);
    assert_eq!(ready["current_state"]["state"], "ready", "{ready}");
}

trait Merged {
    fn merged(self, other: &Value) -> Value;
}

impl Merged for Value {
    fn merged(mut self, other: &Value) -> Value {
        if let (Some(a), Some(b)) = (self.as_object_mut(), other.as_object()) {
            a.extend(b.clone());
        }
        self
    }
}

/// The user id a cluster runs as, from its Dask processes in namespace `ns`.
fn cluster_uid(ns: &str) -> u32 {
    crate::real_clusters::in_namespace(ns)
        .into_iter()
        .find(|c| c.is_dask())
        .expect("a cluster process")
        .uid
}

/// A new cluster never runs as the user a recent one ran as, even on a fresh data directory where
/// cluster ids start again (so anything a cluster could have left is not its successor's).
#[test]
fn user_ids_are_not_given_again_across_runs() {
    if !can_run() {
        return;
    }
    let p = "t30uid";
    let args = server_args(p);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut uids = Vec::new();
    for _ in 0..2 {
        let mut server = crate::common::LocalServer::start(&args);
        let id = server.create("alice", &json!({"name": "u", "workers": 0}));
        assert_eq!(
            server.wait_for("alice", id, &["ready", "error"], 60)["current_state"]["state"],
            "ready"
        );
        assert_eq!(id, 100, "a fresh data directory numbers clusters from 100 again");
        uids.push(cluster_uid(&format!("{p}-c{id}")));
        assert!(server.stop().success());
    }
    assert_ne!(uids[0], uids[1], "cluster 100 of the second run is another user: {uids:?}");
}
