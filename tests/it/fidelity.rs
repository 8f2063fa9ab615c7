//! Behaviour as the public `coiled` client shows it: replays after a gateway error, WebSocket timeouts.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{Scenario, clis, flat};

#[test]
fn regression_a_create_answered_502_after_it_happened_is_adopted_once() {
    let config = "resource \"coiled_cluster\" \"c\" {\n  software = \"dask\"\n  name      = \"gated\"\n  n_workers = 1\n}\n";
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], config);
        s.server.put("/_local/faults", &json!({"create_then_502": 1}));
        s.apply();
        s.assert_no_changes();
        let posts = s
            .server
            .get("/_local/requests")
            .1
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["method"] == "POST")
            .count();
        assert_eq!(posts, 1, "the create is not sent again once the lookup finds it");
        assert_eq!(s.server.running_named("gated").len(), 1);
    }
}

#[test]
fn the_backend_options_write_is_bounded_by_its_timeouts_block() {
    let config = r#"resource "coiled_backend_options" "team" {
  backend               = "aws"
  aws_access_key_id     = "AKIAEXAMPLE"
  aws_secret_access_key = "SECRET-SENTINEL-1"
  timeouts {
    create = "2s"
  }
}
"#;
    for cli in clis() {
        let s = Scenario::new(cli, &[], config);
        s.tf.terraform(&["plan", "-no-color"]).ok();
        s.server.put("/_local/faults", &json!({"latency_ms": 4000}));
        let started = Instant::now();
        let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
        s.server.put("/_local/faults", &json!({}));
        assert_ne!(out.code, 0, "{}", out.all());
        assert!(started.elapsed() < Duration::from_secs(40), "took {:?}", started.elapsed());
        let text = flat(&out.all());
        assert!(
            text.contains("Unable to Set Backend Options")
                && (text.contains("timeout") || text.contains("gave up")),
            "{text}"
        );
    }
}

/// Workers that stay `pending` for good are not a timeout: the create succeeds once the fraction waited
/// for has started, `status` is what the server says, and the next plan is empty.
#[test]
fn pending_workers_beyond_the_wait_are_a_success_and_the_next_plan_is_empty() {
    let config = r#"resource "coiled_cluster" "c" {
  software         = "dask"
  name             = "slow"
  n_workers        = 4
  wait_for_workers = 0.5
  tags             = { "coiled-local/stuck-workers" = "2" }
}
output "status" { value = coiled_cluster.c.status }
"#;
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "400ms", "--stop-delay", "0s"], config);
        s.apply();
        assert_eq!(
            s.output("status"),
            "starting",
            "the server's own state: two workers are still pending"
        );
        let id = s.server.running_named("slow")[0]["id"].clone();
        let (_, d) = s.server.get(&format!("/api/v2/clusters/account/alice/id/{id}"));
        let states: Vec<&str> = d["workers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["current_state"]["state"].as_str().unwrap())
            .collect();
        assert_eq!(states.iter().filter(|s| **s == "pending").count(), 2, "{states:?}");
        assert_eq!(d["scheduler"]["current_state"]["state"], "started");
        s.assert_no_changes();
    }
}

/// Failed workers that leave the target out of reach fail the create at once, with Coiled's reasons,
/// and nothing is left running or in state.
#[test]
fn failed_workers_that_put_the_target_out_of_reach_fail_the_create() {
    let config = r#"resource "coiled_cluster" "c" {
  software         = "dask"
  name             = "flaky"
  n_workers        = 2
  wait_for_workers = 1
  tags             = { "coiled-local/failed-workers" = "1" }
}
"#;
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "400ms", "--stop-delay", "0s"], config);
        let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
        assert_ne!(out.code, 0);
        let text = flat(&out.all());
        assert!(
            text.contains("Cluster Failed to Start") && text.contains("1 of 2 workers failed"),
            "{text}"
        );
        assert!(text.contains("set to fail"), "the worker's own reason is shown: {text}");
        assert!(s.server.running_named("flaky").is_empty(), "stopped, nothing left running");
        assert!(!s.tf.terraform(&["state", "list"]).ok().stdout.contains("coiled_cluster.c"));
    }
}

/// A container image gets the software environment Coiled's client makes for it (same name, same
/// request), built before the cluster is created; a failed build is an error on `container`.
#[test]
fn a_container_image_gets_the_clients_software_environment() {
    let config = r#"resource "coiled_cluster" "c" {
  name      = "boxed"
  n_workers = 1
  container = "ghcr.io/dask/dask:2024.1.0"
}
output "software" { value = coiled_cluster.c.software }
"#;
    let name = "dask_2024_1_0-x86_64-17e95dff-2fc9-5dc9-835a-6a4409761519";
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "1s", "--stop-delay", "0s"], config);
        s.apply();
        assert_eq!(s.output("software"), name);
        let log = s.server.get("/_local/requests").1;
        let log = log.as_array().unwrap();
        let senv = log
            .iter()
            .find(|r| r["path"] == "/api/v2/software-environment/account/alice")
            .expect("software environment made");
        assert_eq!(
            senv["body"],
            json!({"name": name, "container": "ghcr.io/dask/dask:2024.1.0", "force_rebuild": false, "md5": "37a6259cc0c1dae299a7866489dff0bd",
                "use_entrypoint": true, "gpu_enabled": false, "architecture": "x86_64", "region_name": null,
                "enable_experimental_installer": true, "lockfile_content": null, "lockfile_name": null})
        );
        assert!(
            log.iter().any(|r| r["path"].as_str().unwrap().contains("/build/")),
            "the build is waited for"
        );
        let create = log
            .iter()
            .find(|r| r["method"] == "POST" && r["path"] == "/api/v2/clusters/account/alice/")
            .unwrap();
        assert_eq!(create["body"]["env_name"], name);
        s.assert_no_changes();
        // Import with the same configuration: the image is taken from the configuration, no replacement.
        let id = s.server.running_named("boxed")[0]["id"].to_string();
        s.set(&config[..config.find("output").unwrap()]);
        s.reimport("coiled_cluster.c", &id);
        let plan = s.tf.terraform(&["plan", "-no-color"]).ok().stdout;
        assert!(!plan.contains("replace"), "{plan}");
        s.apply();
        s.assert_no_changes();

        s.set(
            &config
                .replace("boxed", "broken")
                .replace("ghcr.io/dask/dask:2024.1.0", "example.com/coiled-local-fail-build:1"),
        );
        let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
        let text = flat(&out.all());
        assert!(
            out.code != 0
                && text.contains("Software Environment Build Failed")
                && text.contains("container"),
            "{text}"
        );
        assert!(s.server.running_named("broken").is_empty());
    }
}

/// VM types left out come from the workspace's Dask overrides, else the client's defaults for the
/// workspace's cloud; the overrides travel as `dask_config`.
#[test]
fn default_vm_types_follow_the_workspace_cloud_and_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let overrides = dir.path().join("overrides.json");
    std::fs::write(
        &overrides,
        r#"{"coiled.scheduler.vm-types": ["t2a-standard-2"], "coiled.tags": {"org": "platform"}}"#,
    )
    .unwrap();
    let gcp = r#"resource "coiled_backend_options" "team" {
  backend                  = "gcp"
  gcp_project_id           = "my-proj"
  gcp_service_account_json = jsonencode({ type = "service_account", project_id = "my-proj", client_email = "a@b" })
}
resource "coiled_cluster" "c" {
  software   = "dask"
  name       = "defaults"
  n_workers  = 1
  depends_on = [coiled_backend_options.team]
}
output "vm" { value = [coiled_cluster.c.worker_vm_types, coiled_cluster.c.scheduler_vm_types] }
"#;
    let cli = clis().last().unwrap();
    let s = Scenario::new(
        cli,
        &["--provision-delay", "0s", "--dask-config-overrides", overrides.to_str().unwrap()],
        gcp,
    );
    s.apply();
    assert_eq!(s.output("vm"), json!([["e2-standard-4"], ["t2a-standard-2"]]));
    let log = s.server.get("/_local/requests").1;
    let create = log
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["method"] == "POST" && r["path"] == "/api/v2/clusters/account/alice/")
        .cloned()
        .unwrap();
    assert_eq!(
        create["body"]["dask_config"],
        json!({"coiled.scheduler.vm-types": ["t2a-standard-2"], "coiled.tags": {"org": "platform"}})
    );
    assert_eq!(create["body"]["tags"], json!({"org": "platform"}));
    s.assert_no_changes();
}

/// A software environment the workspace does not have is refused by the server, and said so.
#[test]
fn a_missing_software_environment_is_a_clear_error() {
    let config = "resource \"coiled_cluster\" \"c\" {\n  software  = \"nope\"\n  name      = \"x\"\n  n_workers = 1\n}\n";
    let cli = clis().last().unwrap();
    let s = Scenario::new(cli, &["--provision-delay", "0s"], config);
    let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
    let text = flat(&out.all());
    assert!(
        out.code != 0
            && text.contains("Unable to Create Cluster")
            && text.contains("\"nope\" does not exist"),
        "{text}"
    );
    assert!(!s.tf.terraform(&["state", "list"]).ok().stdout.contains("coiled_cluster.c"));
}
