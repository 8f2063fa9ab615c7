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
fn workspace_wide_reads_are_made_once_per_operation() {
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
