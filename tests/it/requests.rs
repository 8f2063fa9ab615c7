//! What an operation asks Coiled: the user's memberships and each workspace's backend options and Dask
//! configuration overrides are read once per provider process (rule `read-once`), and a workspace's
//! again once the process has written its backend options.

use serde_json::Value;

use crate::common::{Scenario, clis};

const GCP_KEY: &str = r#"{"type": "service_account", "project_id": "p", "private_key_id": "x", "client_email": "a@b"}"#;

/// Four clusters, then (after them) the workspace's backend options moved to GCP, then one more
/// cluster made from the new options.
fn config() -> String {
    let mut text = String::new();
    for i in 0..4 {
        text += &format!(
            "resource \"coiled_cluster\" \"c{i}\" {{\n  name      = \"early-{i}\"\n  software  = \"dask\"\n  n_workers = 0\n}}\n"
        );
    }
    text += &format!(
        "resource \"coiled_backend_options\" \"o\" {{\n  backend = \"gcp\"\n  gcp_service_account_json = {GCP_KEY:?}\n  gcp_project_id = \"p\"\n  depends_on = [coiled_cluster.c0, coiled_cluster.c1, coiled_cluster.c2, coiled_cluster.c3]\n}}\n"
    );
    text += "resource \"coiled_cluster\" \"late\" {\n  name       = \"late\"\n  software   = \"dask\"\n  n_workers  = 0\n  depends_on = [coiled_backend_options.o]\n}\n";
    text
}

fn count(log: &[Value], method: &str, path: &str) -> usize {
    log.iter().filter(|r| r["method"] == method && r["path"] == path).count()
}

fn vm_types(log: &[Value], name: &str) -> Value {
    log.iter()
        .find(|r| r["method"] == "POST" && r["body"]["name"] == name)
        .map(|r| r["body"]["worker_instance_types"].clone())
        .unwrap_or_else(|| panic!("no create of {name}"))
}

#[test]
fn workspace_wide_reads_are_made_once_per_process() {
    let (backend, overrides, memberships) = (
        "/api/v1/alice/backend_options/",
        "/api/v2/user/workspace/alice/dask-config-overrides",
        "/api/v2/user/me/memberships",
    );
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s"], &config());
        let v = &cli.version;
        // The plan: every new cluster is checked against the workspace's facts, read once; the
        // backend options resource reads what its create would overwrite, once more.
        s.server.delete("/_local/requests");
        s.tf.terraform(&["plan", "-no-color", "-out", "tfplan"]).ok();
        let log = s.server.get("/_local/requests").1.as_array().unwrap().clone();
        assert_eq!(count(&log, "GET", backend), 2, "plan ({v})");
        assert_eq!(count(&log, "GET", overrides), 1, "plan ({v})");
        assert_eq!(count(&log, "GET", memberships), 1, "plan ({v})");
        // The apply of that plan, in a process of its own.
        s.server.delete("/_local/requests");
        s.tf.terraform(&["apply", "-no-color", "tfplan"]).ok();
        let log = s.server.get("/_local/requests").1.as_array().unwrap().clone();
        let written =
            log.iter().position(|r| r["method"] == "WS").expect("no backend options write");
        let (before, after) = log.split_at(written);
        assert_eq!(count(before, "GET", overrides), 1, "apply, before the write ({v})");
        assert_eq!(count(after, "GET", overrides), 1, "apply, after the write ({v})");
        assert_eq!(count(&log, "GET", memberships), 1, "apply ({v})");
        // Made from the options of their time.
        assert_eq!(vm_types(before, "early-0"), serde_json::json!(["m6i.xlarge", "m5.xlarge"]));
        assert_eq!(vm_types(after, "late"), serde_json::json!(["e2-standard-4"]));
        // Beyond those, a cluster costs its name lookup, its create and one poll (it is ready at once),
        // and one listing of the workspace's clusters shows their lookups' 404s are Coiled's (rule
        // `gone`).
        let clusters = log.iter().filter(|r| {
            r["path"].as_str().is_some_and(|p| p.starts_with("/api/v2/clusters/account/alice/"))
        });
        assert_eq!(clusters.count(), 3 * 5 + 1, "apply ({v}): {log:#?}");
        s.assert_no_changes();
    }
}

/// Over a wide-area network, every answer a 150 ms round trip away (`coiled-local --latency`): a
/// write of backend options (over the WebSocket), a create, a scale that starts new workers, a refresh
/// and a destroy work, no request is sent again and nothing is taken as unreachable, and a plan asks
/// once per resource.
#[test]
fn a_wide_area_round_trip_needs_no_retry() {
    let config = |n: u32| {
        format!(
            "resource \"coiled_backend_options\" \"o\" {{\n  backend = \"gcp\"\n  gcp_service_account_json = {GCP_KEY:?}\n  gcp_project_id = \"p\"\n}}\nresource \"coiled_cluster\" \"c\" {{\n  name       = \"far\"\n  software   = \"dask\"\n  n_workers  = {n}\n  depends_on = [coiled_backend_options.o]\n}}\n"
        )
    };
    for cli in clis() {
        let v = &cli.version;
        let s = Scenario::new(
            cli,
            &["--provision-delay", "1s", "--stop-delay", "1s", "--latency", "150ms"],
            &config(1),
        );
        let logged = [("TF_LOG_PROVIDER", "INFO")];
        let run = |args: &[&str]| {
            let out = s.tf.terraform_env(args, &logged);
            let text = out.all();
            assert_eq!(out.code, 0, "{args:?} ({v}):\n{text}");
            for sign in ["retrying", "unreachable", "Unreachable"] {
                assert!(!text.contains(sign), "{args:?} ({v}): {sign:?} in\n{text}");
            }
            text
        };
        let first = run(&["apply", "-auto-approve", "-no-color"]);
        // The provider's log is there to be searched.
        assert!(first.contains("writing backend options"), "no provider log ({v}):\n{first}");
        s.set(&config(3));
        run(&["apply", "-auto-approve", "-no-color"]);
        let id = s.instance("coiled_cluster")["attributes"]["id"].as_str().unwrap().to_string();
        let workers = s.server.get(&format!("/api/v2/workers/account/alice/cluster/{id}/")).1;
        // Three workers on their way or started (the apply waits for `wait_for_workers` of them).
        let counted = workers.as_array().into_iter().flatten().filter(|w| {
            matches!(w["current_state"]["state"].as_str(), Some("pending" | "starting" | "started"))
        });
        assert_eq!(counted.count(), 3, "after the scale ({v}): {workers}");
        s.reset_stats();
        let out = s.tf.terraform_env(&["plan", "-detailed-exitcode", "-no-color"], &logged);
        assert_eq!(out.code, 0, "a plan after the apply ({v}):\n{}", out.all());
        assert!(s.api_requests() <= 2, "{} requests for 2 resources ({v})", s.api_requests());
        run(&["destroy", "-auto-approve", "-no-color"]);
        assert!(s.server.active_clusters().is_empty(), "destroyed ({v})");
    }
}

/// Overrides the server failed to give (a 500) are none for that one cluster, with a warning, as
/// Coiled's client takes them: the next cluster of the same apply asks again, and has them.
#[test]
fn overrides_the_server_failed_to_give_are_asked_for_again() {
    let overrides = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(overrides.path(), r#"{"coiled.tags": {"org": "platform"}}"#).unwrap();
    let config = "resource \"coiled_cluster\" \"a\" {\n  name      = \"first\"\n  software  = \"dask\"\n  n_workers = 0\n}\nresource \"coiled_cluster\" \"b\" {\n  name       = \"second\"\n  software   = \"dask\"\n  n_workers  = 0\n  depends_on = [coiled_cluster.a]\n}\n";
    let create = "/api/v2/clusters/account/alice/";
    for cli in clis() {
        let v = &cli.version;
        let file = overrides.path().to_str().unwrap();
        let s = Scenario::new(
            cli,
            &["--provision-delay", "2s", "--dask-config-overrides", file],
            config,
        );
        s.server.put("/_local/faults", &serde_json::json!({"overrides_status": 500}));
        // The server recovers once the first cluster is created, while the apply waits for it.
        let out = std::thread::scope(|scope| {
            scope.spawn(|| {
                for _ in 0..1200 {
                    let log = s.server.get("/_local/requests").1;
                    if count(log.as_array().unwrap(), "POST", create) > 0 {
                        s.server.put("/_local/faults", &serde_json::json!({}));
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
            });
            s.tf.terraform(&["apply", "-auto-approve", "-no-color"])
        });
        let text = out.all();
        assert_eq!(out.code, 0, "({v}):\n{text}");
        assert!(text.contains("Workspace Dask Configuration Not Read"), "({v}):\n{text}");
        let log = s.server.get("/_local/requests").1.as_array().unwrap().clone();
        let tags = |name: &str| {
            log.iter()
                .find(|r| r["method"] == "POST" && r["path"] == create && r["body"]["name"] == name)
                .map(|r| r["body"]["dask_config"]["coiled.tags"].clone())
                .unwrap_or_else(|| panic!("no create of {name} ({v})"))
        };
        assert_eq!(tags("first"), Value::Null, "made without the overrides ({v})");
        assert_eq!(tags("second"), serde_json::json!({"org": "platform"}), "asked again ({v})");
        s.assert_no_changes();
    }
}
