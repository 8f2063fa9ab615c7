//! `coiled_cluster` through real Terraform CLIs against `coiled-local`.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::{LocalServer, Scenario, clis, flat};

const ETL: &str = r#"
resource "coiled_cluster" "etl" {
  software  = "dask"
  name      = "etl"
  n_workers = 4
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
  use_scheduler_public_ip = false
}
output "cluster" {
  value = {
    for k in ["id", "status", "name", "n_workers", "scheduler_address", "dashboard_address", "firewall_rules", "created_at", "worker_vm_types", "software"] :
    k => coiled_cluster.etl[k]
  }
  sensitive = true
}
"#;

fn clusters(s: &Scenario) -> Vec<serde_json::Value> {
    s.server.clusters()
}

fn active(s: &Scenario) -> Vec<serde_json::Value> {
    s.server.active_clusters()
}

/// Account-level options whose ingress later tests compare clusters with.
pub(crate) const ACCOUNT: &str = r#"
resource "coiled_backend_options" "team" {
  backend               = "aws"
  aws_access_key_id     = "AKIAEXAMPLE"
  aws_secret_access_key = "SECRET-SENTINEL-1"
  ingress {
    ports = [8786, 8787]
    cidr  = "10.1.0.0/16"
  }
}
"#;

#[test]
fn create_wait_scale_replace_and_destroy() {
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "600ms", "--stop-delay", "200ms"], ETL);
        s.apply();
        let c = s.output("cluster");
        assert_eq!(c["status"], "ready");
        assert!(
            c["scheduler_address"].as_str().unwrap().starts_with("tls://10."),
            "private scheduler address chosen: {c}"
        );
        assert!(
            c["firewall_rules"].is_null(),
            "the ingress blocks hold the rules, not stored twice: {c}"
        );
        let id = c["id"].as_str().unwrap().to_string();
        let (_, d) = s.server.get(&format!("/api/v2/clusters/account/alice/id/{id}"));
        assert_eq!(d["current_state"]["state"], "ready");
        // As Coiled's client sends it: a private scheduler alone adds nothing (the client hides the
        // dashboard only with HTTPS off), no zone means `multizone`, and the VM types are the client's
        // AWS defaults.
        assert!(d["cluster_options"].get("use_dashboard_public_ip").is_none(), "{d}");
        assert_eq!(d["cluster_options"]["multizone"], true);
        assert_eq!(c["worker_vm_types"], json!(["m6i.xlarge", "m5.xlarge"]));
        assert_eq!(c["software"], "dask");
        assert_eq!(
            d["cluster_options"]["firewall_spec"]["ingress"],
            json!([{"ports": [8786], "cidr": "10.1.0.0/16"}, {"ports": [8787], "cidr": "10.32.0.0/16"}])
        );
        s.assert_no_changes();

        // Scale in place, up then down.
        s.set(&ETL.replace("n_workers = 4", "n_workers = 6"));
        let plan = s.plan_changes();
        assert!(plan.contains("updated in-place") && !plan.contains("must be replaced"), "{plan}");
        s.apply();
        assert_eq!(s.output("cluster")["id"], id.as_str(), "same cluster");
        assert_eq!(
            s.server.get(&format!("/api/v2/clusters/account/alice/id/{id}")).1["desired_workers"],
            6
        );
        s.assert_no_changes();
        s.set(&ETL.replace("n_workers = 4", "n_workers = 1"));
        s.apply();
        let (_, d) = s.server.get(&format!("/api/v2/clusters/account/alice/id/{id}"));
        assert_eq!(d["desired_workers"], 1);
        s.assert_no_changes();

        // An ingress change replaces the cluster.
        s.set(
            &ETL.replace("n_workers = 4", "n_workers = 1").replace("10.32.0.0/16", "10.33.0.0/16"),
        );
        let plan = s.plan_changes();
        assert!(plan.contains("must be replaced") && plan.contains("forces replacement"), "{plan}");
        s.apply();
        let new_id = s.output("cluster")["id"].as_str().unwrap().to_string();
        assert_ne!(new_id, id);
        assert_eq!(
            s.server.get(&format!("/api/v2/clusters/account/alice/id/{id}")).1["current_state"]["state"],
            "stopped"
        );
        s.assert_no_changes();

        // Public scheduler address: the client's choice of address, in place, with no request but reads.
        s.set(
            &ETL.replace("n_workers = 4", "n_workers = 1")
                .replace("10.32.0.0/16", "10.33.0.0/16")
                .replace("use_scheduler_public_ip = false", "use_scheduler_public_ip = true"),
        );
        let plan = s.plan_changes();
        assert!(plan.contains("updated in-place") && !plan.contains("must be replaced"), "{plan}");
        s.apply_state_only();
        let c = s.output("cluster");
        assert_eq!(c["id"], new_id.as_str());
        assert!(
            c["scheduler_address"].as_str().unwrap().starts_with("tls://198.51.100."),
            "public address chosen: {c}"
        );
        s.assert_no_changes();

        s.tf.terraform(&["destroy", "-auto-approve", "-no-color"]).ok();
        assert!(active(&s).is_empty(), "destroy waits until stopped");
    }
}

#[test]
fn inherited_firewall_follows_the_account_default_at_creation() {
    let config = &format!(
        "{ACCOUNT}{}",
        r#"resource "coiled_cluster" "plain" {
  software  = "dask"
  name       = "plain"
  n_workers  = 1
  depends_on = [coiled_backend_options.team]
}
output "rules" { value = coiled_cluster.plain.firewall_rules }
"#
    );
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s"], config);
        s.apply();
        if crate::common::echo() != crate::common::Echo::Full {
            // Neither the cluster's inherited rules nor the account's need be reported: then not known,
            // not empty.
            let cluster = s.instance("coiled_cluster");
            let rules = &cluster["attributes"]["firewall_rules"];
            assert!(
                rules.is_null() || crate::common::echo() == crate::common::Echo::Varied,
                "{cluster}"
            );
            s.assert_no_changes();
            continue;
        }
        let rules = s.output("rules");
        assert_eq!(
            rules,
            json!([{"port": 8787, "protocol": "tcp", "source": "10.1.0.0/16"}, {"port": 8786, "protocol": "tcp", "source": "10.1.0.0/16"}])
        );
        s.assert_no_changes();
        // A later account change does not touch the existing cluster, nor plan to replace it.
        s.set(&config.replace("10.1.0.0/16", "10.2.0.0/16"));
        let plan = s.plan_changes();
        assert!(
            plan.contains("coiled_backend_options.team will be updated")
                && !plan.contains("coiled_cluster.plain will")
                && !plan.contains("coiled_cluster.plain must"),
            "{plan}"
        );
        s.apply();
        assert_eq!(s.output("rules")[0]["source"], "10.1.0.0/16");
        s.assert_no_changes();
    }
}

#[test]
fn stopped_outside_terraform_is_recreated() {
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], ETL);
        s.apply();
        let id = s.output("cluster")["id"].as_str().unwrap().to_string();
        s.server.delete(&format!("/api/v2/clusters/account/alice/id/{id}?reason=idle+timeout"));
        std::thread::sleep(Duration::from_millis(100));
        let plan = s.tf.terraform(&["plan", "-detailed-exitcode", "-no-color"]);
        assert_eq!(plan.code, 2, "{}", plan.all());
        assert!(
            plan.all().contains("Cluster No Longer Running") && plan.all().contains("idle timeout"),
            "{}",
            plan.all()
        );
        assert!(plan.stdout.contains("will be created"), "{}", plan.stdout);
        s.apply();
        assert_ne!(s.output("cluster")["id"], id.as_str());
        s.assert_no_changes();
    }
}

#[test]
fn import_by_id_and_by_name() {
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s"], ETL);
        s.apply();
        let id = s.output("cluster")["id"].as_str().unwrap().to_string();
        // Outputs are not part of an import: check the resource alone.
        s.set(&ETL[..ETL.find("output").unwrap()]);
        s.apply();
        for key in [id.clone(), "etl".to_string(), format!("alice/{id}")] {
            let out = s.reimport("coiled_cluster.etl", &key);
            assert!(out.stdout.contains("Import successful"), "{}", out.all());
            // Which address clients use is the client's choice, which no server shows: the first plan
            // takes `use_scheduler_public_ip = false` from the configuration, in place: the apply reads
            // the address it chooses, and writes nothing.
            let plan = s.plan_changes();
            let flat = crate::common::flat(&plan);
            assert!(
                flat.contains("use_scheduler_public_ip = true -> false")
                    && !plan.contains("replace"),
                "{plan}"
            );
            assert!(
                flat.contains("scheduler_address = \"tls://198.51.100.")
                    && flat.contains("-> (known after apply)"),
                "{plan}"
            );
            s.apply_state_only();
            s.assert_no_changes();
            assert!(
                s.state_text().contains("\"scheduler_address\": \"tls://10."),
                "the private address, read at apply"
            );
        }
        s.tf.terraform(&["state", "rm", "coiled_cluster.etl"]).ok();
        let out = s.tf.terraform(&["import", "-no-color", "coiled_cluster.etl", "no-such-cluster"]);
        assert_ne!(out.code, 0);
        assert!(out.all().contains("Cluster Not Found"), "{}", out.all());
    }
}

#[test]
fn a_cluster_that_fails_to_start_is_stopped_and_reported() {
    let doomed = ETL.replace(
        "  use_scheduler_public_ip = false",
        "  use_scheduler_public_ip = false\n  tags = { \"coiled-local/fail\" = \"no capacity for m6i.xlarge in us-east-1a\" }",
    );
    for cli in clis() {
        let s =
            Scenario::new(cli, &["--provision-delay", "200ms", "--stop-delay", "100ms"], &doomed);
        let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
        assert_ne!(out.code, 0);
        assert!(
            out.all().contains("Cluster Failed to Start")
                && out.all().contains("no capacity for m6i.xlarge"),
            "{}",
            out.all()
        );
        assert!(active(&s).is_empty(), "nothing left running");
        let state = s.tf.terraform(&["state", "list"]);
        assert!(!state.stdout.contains("coiled_cluster.etl"), "nothing in state: {}", state.stdout);
    }
}

#[test]
fn create_timeout_stops_the_cluster() {
    let slow = ETL.replace(
        "  use_scheduler_public_ip = false",
        "  use_scheduler_public_ip = false\n  timeouts {\n    create = \"1s\"\n  }",
    );
    let cli = &clis()[0];
    let s = Scenario::new(cli, &["--provision-delay", "30s", "--stop-delay", "0s"], &slow);
    let started = Instant::now();
    let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
    assert_ne!(out.code, 0);
    assert!(started.elapsed() < Duration::from_secs(15));
    assert!(out.all().contains("not ready within the create timeout"), "{}", out.all());
    assert!(active(&s).is_empty());
}

#[test]
fn faults_lost_create_answer_makes_no_duplicate() {
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s"], ETL);
        s.server
            .put("/_local/faults", &json!({"seed": 11, "rate_429": 0.15, "rate_503": 0.15, "retry_after": 0, "lose_create_responses": 1}));
        s.apply();
        s.server.put("/_local/faults", &json!({}));
        let all = clusters(&s);
        assert_eq!(all.len(), 1, "one cluster, no duplicate: {all:?}");
        assert_eq!(s.output("cluster")["id"], all[0]["id"].to_string().as_str());
        let (_, stats) = s.server.get("/_local/stats");
        assert_eq!(stats["faults"]["lost_create"], 1, "{stats}");
        s.assert_no_changes();
    }
}

#[test]
fn ctrl_c_during_the_wait_returns_promptly_and_state_matches() {
    for cli in clis() {
        ctrl_c_scenario(cli);
    }
}

fn ctrl_c_scenario(cli: &crate::common::Cli) {
    let s = Scenario::new(cli, &["--provision-delay", "4s", "--stop-delay", "0s"], ETL);
    let child = s.tf.spawn(&["apply", "-auto-approve", "-no-color"], &[]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while clusters(&s).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    let interrupted = Instant::now();
    crate::common::interrupt(&child);
    let (status, out) = crate::common::finish(child);
    assert!(
        interrupted.elapsed() < Duration::from_secs(3),
        "took {:?} to stop:\n{out}",
        interrupted.elapsed()
    );
    assert!(!status.success());
    assert!(out.contains("Interrupted") || out.contains("interrupt"), "{out}");
    // The state records the cluster that exists, so nothing is orphaned; the next apply converges.
    let listed = s.tf.terraform(&["state", "list"]).ok().stdout;
    assert!(listed.contains("coiled_cluster.etl"), "state lost the cluster: {listed}\n{out}");
    let interrupted_id = clusters(&s)[0]["id"].clone();
    s.apply();
    s.assert_no_changes();
    assert_eq!(active(&s).len(), 1, "one running cluster after converging");
    assert_eq!(
        active(&s)[0]["id"],
        interrupted_id,
        "the interrupted cluster is waited for and kept, not replaced"
    );
}

/// A server lost while a create waits (the cluster was made) ends the wait as Ctrl-C does: a
/// warning, the cluster in state untainted, and the next apply waits for it instead of replacing it.
#[test]
fn a_server_lost_during_the_create_wait_leaves_the_cluster_untainted() {
    for cli in clis() {
        let server_args = ["--provision-delay", "4s", "--stop-delay", "0s"];
        let mut s = Scenario::new(cli, &server_args, ETL);
        let quick = Scenario::config_with(&s.server, "  unreachable_timeout = \"1s\"\n", ETL);
        s.tf.write("main.tf", &quick);
        let child = s.tf.spawn(&["apply", "-auto-approve", "-no-color"], &[]);
        let deadline = Instant::now() + Duration::from_secs(20);
        while clusters(&s).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        assert!(!clusters(&s).is_empty(), "{}: no cluster was created in 20 s", cli.version);
        let made = clusters(&s)[0]["id"].clone();
        s.server.stop();
        let (status, out) = crate::common::finish(child);
        assert!(flat(&out).contains("Cluster Start Not Confirmed"), "{}: {out}", cli.version);
        assert!(status.success(), "a warning, not an error: {out}");
        // The same server, back on its port with its data.
        let listen = format!("127.0.0.1:{}", s.server.port());
        let args: Vec<&str> = server_args.iter().copied().chain(["--listen", &listen]).collect();
        let back = LocalServer::start_in(&s.server.data_dir.clone(), &args);
        let _lost = std::mem::replace(&mut s.server, back);
        let plan = s.tf.terraform(&["plan", "-no-color"]).ok().all();
        assert!(
            !plan.contains("tainted")
                && !plan.contains("must be replaced")
                && flat(&plan).contains("Finishing an Earlier Create"),
            "{}: {plan}",
            cli.version
        );
        s.apply();
        // The wait may end on a status that is ready by Coiled's rule (`starting`) and reads
        // `ready` later: only the output that shows it may change.
        s.assert_no_resource_changes();
        assert_eq!(active(&s).len(), 1);
        assert_eq!(active(&s)[0]["id"], made, "the cluster made is waited for and kept");
    }
}

#[test]
fn bad_cluster_input_is_refused_before_any_api_call() {
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "bad name",
            ETL.replace("name      = \"etl\"", "name = \"etl cluster\""),
            "Invalid Cluster Name",
        ),
        (
            "slash name",
            ETL.replace("name      = \"etl\"", "name = \"a/b\""),
            "Invalid Cluster Name",
        ),
        (
            "negative workers",
            ETL.replace("n_workers = 4", "n_workers = -1"),
            "Invalid Worker Count",
        ),
        (
            "fractional workers",
            ETL.replace("n_workers = 4", "n_workers = 1.5"),
            "Invalid Worker Count",
        ),
        (
            "absurd workers",
            ETL.replace("n_workers = 4", "n_workers = 100000"),
            "Invalid Worker Count",
        ),
        (
            "wait fraction",
            ETL.replace("n_workers = 4", "n_workers = 4\n  wait_for_workers = 1.5"),
            "Invalid Wait Fraction",
        ),
        (
            "empty vm types",
            ETL.replace("n_workers = 4", "n_workers = 4\n  worker_vm_types = []"),
            "Empty VM Type List",
        ),
        (
            "empty software",
            ETL.replace("software  = \"dask\"", "software = \"\""),
            "Invalid Software Environment Name",
        ),
        ("no software", ETL.replace("software  = \"dask\"", ""), "Missing Software Environment"),
        (
            "image as software",
            ETL.replace("software  = \"dask\"", "software = \"ghcr.io/dask/dask:latest\""),
            "use `container` for images",
        ),
        (
            "software and container",
            ETL.replace("software  = \"dask\"", "software = \"dask\"\n  container = \"dask/dask\""),
            "Conflicting Software Settings",
        ),
        (
            "bad timeout",
            ETL.replace("n_workers = 4", "n_workers = 4\n  timeouts {\n    create = \"soon\"\n  }"),
            "Invalid Timeout",
        ),
        ("bad cidr", ETL.replace("10.32.0.0/16", "10.32.0.0/40"), "Invalid CIDR Block"),
        ("bad port", ETL.replace("ports = [8787]", "ports = [70000]"), "Invalid Port"),
        ("empty ports", ETL.replace("ports = [8787]", "ports = []"), "No Ports"),
        (
            "wrong type",
            ETL.replace("n_workers = 4", "n_workers = \"many\""),
            "Incorrect attribute value type",
        ),
        (
            "unknown attribute",
            ETL.replace("n_workers = 4", "n_workers = 4\n  colour = \"blue\""),
            "Unsupported argument",
        ),
        (
            "two backend_options",
            ETL.replace(
                "  use_scheduler_public_ip = false",
                "  backend_options {\n  }\n  use_scheduler_public_ip = false",
            ),
            "Duplicate backend_options block",
        ),
        (
            "empty region",
            ETL.replace("  backend_options {", "  backend_options {\n    region = \"\""),
            "Empty Value",
        ),
        (
            "bad environ",
            ETL.replace("n_workers = 4", "n_workers = 4\n  environ = { \"A=B\" = \"x\" }"),
            "Invalid Environment Variable",
        ),
    ];
    for cli in clis() {
        Scenario::new(cli, &[], "").assert_refused(&cases);
    }
}

#[test]
fn data_source_by_id_and_by_name() {
    let config = format!(
        "{}\ndata \"coiled_cluster\" \"by_name\" {{\n  name = coiled_cluster.etl.name\n  use_scheduler_public_ip = false\n}}\ndata \"coiled_cluster\" \"by_id\" {{\n  id = coiled_cluster.etl.id\n}}\noutput \"by_name\" {{\n  value     = data.coiled_cluster.by_name\n  sensitive = true\n}}\noutput \"by_id\" {{\n  value     = data.coiled_cluster.by_id\n  sensitive = true\n}}\noutput \"etl\" {{ value = coiled_cluster.etl.scheduler_address }}\n",
        &ETL[..ETL.find("output").unwrap()]
    );
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s"], &config);
        s.apply();
        let (by_name, by_id) = (s.output("by_name"), s.output("by_id"));
        assert_eq!(by_name["id"], by_id["id"]);
        assert_eq!(by_name["status"], "ready");
        // Both addresses of one cluster, each read with its own `use_scheduler_public_ip`.
        assert_eq!(by_name["scheduler_address"], s.output("etl"), "the resource's private choice");
        assert!(
            by_name["scheduler_address"].as_str().unwrap().starts_with("tls://10."),
            "{by_name}"
        );
        assert!(
            by_id["scheduler_address"].as_str().unwrap().starts_with("tls://198.51.100."),
            "{by_id}"
        );
        if crate::common::echo() == crate::common::Echo::Full {
            assert_eq!(by_id["firewall_rules"].as_array().unwrap().len(), 2);
        }
        s.set(&config.replace(
            "  name = coiled_cluster.etl.name\n",
            "  name = coiled_cluster.etl.name\n  id = \"1\"\n",
        ));
        let out = s.tf.terraform(&["plan", "-no-color"]);
        assert!(out.all().contains("Cluster Not Identified"), "{}", out.all());
    }
}

#[test]
fn ingress_that_repeats_the_account_default_is_flagged() {
    let config = ACCOUNT;
    let cluster = r#"
resource "coiled_cluster" "same" {
  software  = "dask"
  name      = "same"
  n_workers = 1
  backend_options {
    ingress {
      ports = [8787, 8786]
      cidr  = "10.1.0.2/16"
    }
  }
}
"#;
    if crate::common::echo() != crate::common::Echo::Full {
        eprintln!(
            "skipped: a server that need not report the account's rules leaves nothing sure to compare with"
        );
        return;
    }
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s"], config);
        s.apply();
        s.set(&format!("{config}{cluster}"));
        let out = s.tf.terraform(&["plan", "-no-color"]).ok();
        assert!(out.all().contains("Ingress Repeats the Account Default"), "{}", out.all());
        s.set(&format!("{config}{}", cluster.replace("10.1.0.2/16", "10.9.0.0/16")));
        let out = s.tf.terraform(&["plan", "-no-color"]).ok();
        assert!(!out.all().contains("Repeats the Account Default"), "{}", out.all());
    }
}

/// State written by schema version 0, which stored the scheduler's public and private addresses beside
/// the chosen one and `firewall_rules` beside the `ingress` blocks, upgrades with no planned change,
/// and is rewritten without them.
#[test]
fn version_0_state_upgrades_without_a_change() {
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s"], ETL);
        s.apply();
        let mut state: serde_json::Value = serde_json::from_str(&s.state_text()).unwrap();
        let cluster = state["resources"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|r| r["type"] == "coiled_cluster")
            .unwrap();
        let instance = &mut cluster["instances"][0];
        let private = instance["attributes"]["scheduler_address"].clone();
        instance["schema_version"] = json!(0);
        let attrs = instance["attributes"].as_object_mut().unwrap();
        attrs.insert("scheduler_private_address".into(), private);
        attrs.insert("scheduler_public_address".into(), json!("tls://198.51.100.9:443"));
        // A cluster that left `wait_for_workers` out stored the default then.
        attrs.insert("wait_for_workers".into(), json!(0.3));
        attrs.insert(
            "firewall_rules".into(),
            json!([{"port": 8786, "protocol": "tcp", "source": "10.1.0.0/16"}, {"port": 8787, "protocol": "tcp", "source": "10.32.0.0/16"}]),
        );
        state["serial"] = json!(state["serial"].as_i64().unwrap() + 1);
        s.tf.write("terraform.tfstate", &serde_json::to_string_pretty(&state).unwrap());
        s.assert_no_changes();
        s.tf.terraform(&["apply", "-refresh-only", "-auto-approve", "-no-color"]).ok();
        let instance = s.instance("coiled_cluster");
        assert_eq!(instance["schema_version"], 1, "{instance}");
        let attrs = instance["attributes"].as_object().unwrap();
        assert!(
            !attrs.contains_key("scheduler_private_address")
                && !attrs.contains_key("scheduler_public_address"),
            "{instance}"
        );
        assert!(attrs["firewall_rules"].is_null(), "{instance}");
    }
}

/// Rules changed outside Terraform: a cluster's own `ingress` blocks are its rules, so what the server
/// then reports shows as drift in those blocks, and the plan replaces the cluster to put them back.
#[test]
fn own_rules_changed_outside_terraform_are_drift_that_is_put_back() {
    let configured = json!([{"ports": [8786], "cidr": "10.1.0.0/16"}, {"ports": [8787], "cidr": "10.32.0.0/16"}]);
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], ETL);
        s.apply();
        let id = s.output("cluster")["id"].as_str().unwrap().to_string();
        let route = format!("/_local/clusters/{id}/firewall");
        let (code, answer) = s.server.send(
            "PUT",
            &route,
            &json!({"ingress": [{"ports": [8786], "cidr": "10.1.0.300/16"}]}),
        );
        assert_eq!(code, 400, "an invalid rule is refused: {answer}");
        let (code, _) =
            s.server.send("PUT", "/_local/clusters/999999/firewall", &json!({"ingress": []}));
        assert_eq!(code, 404);
        let (_, d) = s.server.get(&format!("/api/v2/clusters/account/alice/id/{id}"));
        if crate::common::echo() == crate::common::Echo::Full {
            assert_eq!(
                d["cluster_options"]["firewall_spec"]["ingress"], configured,
                "a refused change changes nothing"
            );
        }
        s.server.put(&route, &json!({"ingress": [{"ports": [8786, 8787], "cidr": "0.0.0.0/0"}]}));
        match crate::common::echo() {
            // A server that reports no rules shows no drift: the configured blocks stand.
            crate::common::Echo::Terse => {
                s.assert_no_changes();
                continue;
            }
            // The drift shows or not, as the answer reports the rules or not.
            crate::common::Echo::Varied => continue,
            crate::common::Echo::Full => {}
        }
        let plan = s.plan_changes();
        assert!(plan.contains("coiled_cluster.etl must be replaced"), "{plan}");
        assert!(
            plan.contains("0.0.0.0/0"),
            "the rules the server reports show in the plan: {plan}"
        );
        s.apply();
        let replaced = s.output("cluster")["id"].as_str().unwrap().to_string();
        assert_ne!(replaced, id);
        let (_, d) = s.server.get(&format!("/api/v2/clusters/account/alice/id/{replaced}"));
        assert_eq!(d["cluster_options"]["firewall_spec"]["ingress"], configured);
        s.assert_no_changes();
    }
}

/// A decimal that no float holds (`0.3`, as the migration guide writes it) is planned as that decimal,
/// not as the float nearest it: Terraform 1.0.3 refuses a planned value that differs from the
/// configuration's, and the next plan is empty.
#[test]
fn a_decimal_in_the_configuration_is_planned_as_that_decimal() {
    let config = "resource \"coiled_cluster\" \"c\" {\n  software         = \"dask\"\n  name             = \"tenths\"\n  n_workers        = 1\n  wait_for_workers = 0.3\n}\noutput \"wait\" { value = coiled_cluster.c.wait_for_workers }\n";
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], config);
        s.apply();
        assert_eq!(s.output("wait"), json!(0.3), "{}", cli.version);
        s.assert_no_changes();
    }
}

/// Left out, `wait_for_workers` stays null in state, as Coiled's client keeps `None` and waits for its
/// default; set and then removed again, it changes back to null in place; imported, it is null too.
#[test]
fn a_wait_fraction_left_out_stays_null() {
    let config = |wait: &str| {
        format!(
            "resource \"coiled_cluster\" \"c\" {{\n  software  = \"dask\"\n  name      = \"waits\"\n  n_workers = 1\n{wait}}}\n"
        )
    };
    let stored =
        |s: &Scenario| s.instance("coiled_cluster")["attributes"]["wait_for_workers"].clone();
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], &config(""));
        s.apply();
        assert_eq!(stored(&s), serde_json::Value::Null, "{}", cli.version);
        s.assert_no_changes();
        s.set(&config("  wait_for_workers = 0.5\n"));
        s.apply();
        assert_eq!(stored(&s), json!(0.5), "{}", cli.version);
        s.set(&config(""));
        let plan = flat(&s.plan_changes());
        assert!(
            plan.contains("wait_for_workers = 0.5 -> null")
                && plan.contains("1 to change, 0 to destroy"),
            "{}: {plan}",
            cli.version
        );
        s.apply();
        assert_eq!(stored(&s), serde_json::Value::Null, "{}", cli.version);
        assert_eq!(s.server.clusters().len(), 1, "{}: changed in place", cli.version);
        s.assert_no_changes();
        // Imported, it is null as when left out: a configuration that sets it changes it in place.
        s.set(&config("  wait_for_workers = 0.5\n"));
        s.reimport("coiled_cluster.c", "waits");
        assert_eq!(stored(&s), serde_json::Value::Null, "{}", cli.version);
        let plan = flat(&s.plan_changes());
        assert!(
            plan.contains("+ wait_for_workers = 0.5")
                && plan.contains("0 to add, 1 to change, 0 to destroy"),
            "{}: {plan}",
            cli.version
        );
        s.apply();
        assert_eq!(s.server.clusters().len(), 1, "{}: changed in place", cli.version);
        s.assert_no_changes();
    }
}

/// A single block taken out of the configuration is planned absent on every CLI: `timeouts` changes
/// in place with no API call, and `backend_options` replaces the cluster. (Terraform 1.0.3 proposes a
/// removed single block as the prior state held it, and refuses a plan that keeps it.)
#[test]
fn a_block_taken_out_of_the_configuration_is_planned_absent() {
    let config = |blocks: &str| {
        format!(
            "resource \"coiled_cluster\" \"c\" {{\n  software  = \"dask\"\n  name      = \"blocks\"\n  n_workers = 0\n{blocks}}}\n"
        )
    };
    let timeouts = "  timeouts {\n    create = \"30m\"\n  }\n";
    let options = "  backend_options {\n    region = \"us-east-2\"\n  }\n";
    for cli in clis() {
        let s = Scenario::new(
            cli,
            &["--provision-delay", "0s", "--stop-delay", "0s"],
            &config(&format!("{timeouts}{options}")),
        );
        s.apply();
        s.set(&config(options));
        let plan = flat(&s.plan_changes());
        assert!(
            plan.contains("- timeouts {") && plan.contains("0 to add, 1 to change, 0 to destroy"),
            "{}: {plan}",
            cli.version
        );
        s.apply_state_only();
        s.assert_no_changes();
        s.set(&config(""));
        let plan = flat(&s.plan_changes());
        assert!(
            plan.contains("- backend_options { # forces replacement")
                && plan.contains("1 to add, 0 to change, 1 to destroy"),
            "{}: {plan}",
            cli.version
        );
        s.apply();
        s.assert_no_changes();
    }
}

/// The dashboard's URL carries its access token: it is sensitive in the resource, the data source and
/// the connection, an output of it must say so, and the token shows in no plan, log or `show`.
#[test]
fn the_dashboard_token_never_shows() {
    let config = r#"
resource "coiled_cluster" "c" {
  name      = "dash"
  software  = "dask"
  n_workers = 1
}
data "coiled_cluster" "read" {
  id = coiled_cluster.c.id
}
output "dash" {
  value = coiled_cluster.c.dashboard_address
}
"#;
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], config);
        let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
        assert_ne!(out.code, 0, "an output of it must be marked sensitive");
        assert!(flat(&out.all()).contains("sensitive"), "{}", out.all());
        s.set(&config.replace(
            "value = coiled_cluster.c.dashboard_address",
            "value     = coiled_cluster.c.dashboard_address\n  sensitive = true",
        ));
        let apply =
            s.tf.terraform_env(&["apply", "-auto-approve", "-no-color"], &[("TF_LOG", "trace")])
                .ok();
        let id = s.server.running_named("dash")[0]["id"].clone();
        let (_, d) = s.server.get(&format!("/api/v2/clusters/account/alice/id/{id}"));
        let url = d["scheduler"]["dashboard_address"].as_str().unwrap().to_string();
        let token = url
            .split_once("token=")
            .map(|(_, t)| t.to_string())
            .expect("an HTTPS dashboard carries a token");
        assert!(url.starts_with("https://") && token.len() >= 16, "{url}");
        assert_eq!(s.output("dash"), url.as_str(), "the output still gives it to whoever asks");
        let plan =
            s.tf.terraform_env(&["plan", "-no-color", "-refresh-only"], &[("TF_LOG", "trace")])
                .ok();
        let show = s.tf.terraform(&["show", "-no-color"]).ok();
        for (what, text) in [("apply", apply.all()), ("plan", plan.all()), ("show", show.all())] {
            assert!(!text.contains(&token), "{what} showed the dashboard token ({})", cli.version);
        }
    }
}
