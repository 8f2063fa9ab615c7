//! The cluster options teams set (`spot_policy`, `scheduler_port`, `allow_ingress_from`,
//! `cluster_timeout`, `arm`, `use_dashboard_https`), the scheduler-port lock-out warning, the
//! provider's `cluster_defaults`, the Coiled configuration file's settings, and `when_stopped`,
//! through real Terraform CLIs against `coiled-local`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::common::{HEADER, Scenario, clis, flat};

fn created(s: &Scenario, name: &str) -> Value {
    let log = s.server.get("/_local/requests").1;
    log.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/api/v2/clusters/account/alice/")
        .find(|r| r["body"]["name"] == name)
        .map(|r| r["body"].clone())
        .unwrap_or_else(|| panic!("no create of {name}"))
}

/// The configuration with `provider_extra` inside the provider block.
fn with_provider(s: &Scenario, provider_extra: &str, resources: &str) -> String {
    format!(
        "{HEADER}provider \"coiled\" {{\n  server = \"{}\"\n  token  = \"{}\"\n  retire_workers = false\n{provider_extra}\n}}\n{resources}",
        s.server.url, s.server.token
    )
}

#[test]
fn options_are_sent_as_the_client_sends_them() {
    let config = r#"
resource "coiled_cluster" "opts" {
  name                    = "opts"
  software                = "dask"
  n_workers               = 1
  spot_policy             = "spot_with_fallback"
  scheduler_port          = 8786
  allow_ingress_from      = "10.1.0.0/16"
  cluster_timeout         = "8 hours"
  use_dashboard_https     = false
  use_scheduler_public_ip = false
}
resource "coiled_cluster" "arm" {
  name      = "on-arm"
  software  = "dask"
  n_workers = 1
  arm       = true
}
output "opts" { value = { for k in ["scheduler_address", "firewall_rules"] : k => coiled_cluster.opts[k] } }
output "arm" { value = coiled_cluster.arm.worker_vm_types }
"#;
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "400ms", "--stop-delay", "0s"], config);
        let plan = s.tf.terraform(&["plan", "-no-color"]).ok();
        assert!(
            plan.stdout.contains("8786") && plan.stdout.contains("10.1.0.0/16"),
            "firewall_rules are planned:\n{}",
            plan.stdout
        );
        s.apply();
        let body = created(&s, "opts");
        assert_eq!(body["options"]["spot"], true);
        assert_eq!(body["options"]["spot_on_demand_fallback"], true);
        assert_eq!(body["options"]["use_dashboard_https"], false);
        assert_eq!(
            body["options"]["use_dashboard_public_ip"], false,
            "private scheduler, plain-HTTP dashboard"
        );
        assert_eq!(
            body["options"]["firewall_spec"]["ingress"],
            json!([{"ports": [8786, 443], "cidr": "10.1.0.0/16"}])
        );
        assert_eq!(body["scheduler_options"]["port"], 8786);
        assert_eq!(body["cluster_timeout_seconds"], 28800);
        let opts = s.output("opts");
        assert!(opts["scheduler_address"].as_str().unwrap().ends_with(":8786"), "{opts}");
        assert_eq!(
            s.output("arm"),
            json!(["m7g.xlarge", "m6g.xlarge"]),
            "the client's ARM defaults on AWS"
        );
        let arm = created(&s, "on-arm");
        assert!(
            arm["options"].get("spot").is_none() && arm["scheduler_options"].get("port").is_none(),
            "{arm}"
        );
        s.assert_no_changes();
    }
}

#[test]
fn bad_options_are_refused_at_plan_with_their_attribute() {
    let cluster = |extra: &str| {
        format!("resource \"coiled_cluster\" \"x\" {{\n  software = \"dask\"\n{extra}\n}}\n")
    };
    let cases = [
        (
            "unknown spot policy",
            cluster("  spot_policy = \"cheap\""),
            "valid options are: on-demand, spot, spot_with_fallback",
        ),
        ("port 0", cluster("  scheduler_port = 0"), "a port is a number from 1 to 65535"),
        (
            "port and ingress",
            cluster(
                "  scheduler_port = 8786\n  backend_options {\n    ingress {\n      ports = [8786]\n      cidr = \"10.0.0.0/8\"\n    }\n  }",
            ),
            "cannot be used when `backend_options.ingress` is also set",
        ),
        ("me", cluster("  allow_ingress_from = \"me\""), "must not depend on where it runs"),
        ("lifetime", cluster("  cluster_timeout = \"forever\""), "cluster_timeout"),
        (
            "both spot settings",
            cluster("  spot_policy = \"spot\"\n  backend_options {\n    spot = true\n  }"),
            "not both",
        ),
        ("when_stopped", cluster("  when_stopped = \"maybe\""), "\"recreate\" and \"keep\""),
        ("no disk", cluster("  worker_disk_size = 0"), "a disk size is at least 1 GiB"),
        ("part of a GiB", cluster("  worker_disk_size = 99.5"), "99.5 is not a whole number"),
    ];
    for cli in clis() {
        let s = Scenario::new(cli, &[], "");
        let cases: Vec<(&str, String, &str)> =
            cases.iter().map(|(n, c, e)| (*n, c.clone(), *e)).collect();
        s.assert_refused(&cases);
    }
}

/// The seed's rules (8786 and 8787 only) lock clients out of a current cluster, whose scheduler
/// listens on 443: the plan says so, naming the port and the rule to change.
#[test]
fn plans_warn_when_no_rule_admits_the_scheduler_port() {
    let account = r#"
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
    let own = r#"
resource "coiled_cluster" "own" {
  software = "dask"
  backend_options {
    ingress {
      ports = [8786]
      cidr  = "10.1.0.0/16"
    }
  }
}
"#;
    let fixed = own.replace("ports = [8786]", "ports = [443, 8786]");
    for cli in clis() {
        let s = Scenario::new(cli, &[], account);
        s.apply();
        s.set(&format!(
            "{account}\nresource \"coiled_cluster\" \"inherits\" {{\n  software = \"dask\"\n}}\n"
        ));
        let plan = flat(&s.tf.terraform(&["plan", "-no-color"]).ok().all());
        // A terse server does not report the account's rules (the client reads none): nothing to judge.
        if crate::common::echo() == crate::common::Echo::Full {
            assert!(
                plan.contains("Scheduler Port Not Open")
                    && plan.contains("port 443")
                    && plan.contains("account-level ingress"),
                "{plan}"
            );
        }
        s.set(&format!("{account}{own}"));
        let plan = flat(&s.tf.terraform(&["plan", "-no-color"]).ok().all());
        assert!(
            plan.contains("Scheduler Port Not Open")
                && plan.contains("admits only 8786 from 10.1.0.0/16"),
            "{plan}"
        );
        s.set(&format!("{account}{fixed}"));
        let plan = flat(&s.tf.terraform(&["plan", "-no-color"]).ok().all());
        assert!(!plan.contains("Scheduler Port Not Open"), "{plan}");
    }
}

#[test]
fn cluster_defaults_apply_to_clusters_without_their_own_and_show_in_plans() {
    let defaults = |cidr: &str| {
        format!(
            "  cluster_defaults {{\n    use_scheduler_public_ip = false\n    tags = {{ team = \"data\" }}\n    ingress {{\n      ports = [443]\n      cidr  = \"{cidr}\"\n    }}\n  }}"
        )
    };
    let clusters = r#"
resource "coiled_cluster" "plain" {
  name     = "plain"
  software = "dask"
}
resource "coiled_cluster" "own" {
  name                    = "own"
  software                = "dask"
  use_scheduler_public_ip = true
  tags                    = { team = "ml" }
  backend_options {
    ingress {
      ports = [443]
      cidr  = "10.32.0.0/16"
    }
  }
}
output "plain" { value = { for k in ["use_scheduler_public_ip", "scheduler_address"] : k => coiled_cluster.plain[k] } }
"#;
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "300ms", "--stop-delay", "0s"], "");
        s.tf.write("main.tf", &with_provider(&s, &defaults("10.1.0.0/16"), clusters));
        let plan = s.tf.terraform(&["plan", "-no-color"]).ok().stdout;
        assert!(
            plan.contains("\"data\"") && plan.contains("10.1.0.0/16"),
            "defaults show in the plan:\n{plan}"
        );
        s.apply();
        let plain = created(&s, "plain");
        assert_eq!(plain["tags"]["team"], "data");
        assert_eq!(
            plain["options"]["firewall_spec"]["ingress"],
            json!([{"ports": [443], "cidr": "10.1.0.0/16"}])
        );
        let out = s.output("plain");
        assert_eq!(out["use_scheduler_public_ip"], false);
        assert!(
            out["scheduler_address"].as_str().unwrap().starts_with("tls://10."),
            "the private address: {out}"
        );
        let own = created(&s, "own");
        assert_eq!(own["tags"]["team"], "ml", "a cluster's own values win");
        assert_eq!(
            own["options"]["firewall_spec"]["ingress"],
            json!([{"ports": [443], "cidr": "10.32.0.0/16"}])
        );
        s.assert_no_changes();
        // New default rules replace the clusters that take them, and only those.
        s.tf.write("main.tf", &with_provider(&s, &defaults("10.2.0.0/16"), clusters));
        let plan = s.plan_changes();
        assert!(
            plan.contains("coiled_cluster.plain must be replaced")
                && !plan.contains("coiled_cluster.own must be replaced"),
            "{plan}"
        );
    }
}

/// Settings of the Coiled configuration file or `DASK_COILED__*` that differ from a cluster's are
/// named in a warning and never applied.
#[test]
fn the_coiled_configuration_file_is_named_not_applied() {
    let cluster = "resource \"coiled_cluster\" \"c\" {\n  software = \"dask\"\n}\n";
    for cli in clis() {
        let mut s = Scenario::new(cli, &[], cluster);
        let dask = tempfile::tempdir().unwrap();
        std::fs::write(
            dask.path().join("coiled.yaml"),
            "coiled:\n  token: not-this-one\n  use_scheduler_public_ip: false\n  backend-options:\n    ingress:\n      - ports: [8786, 8787]\n        cidr: 10.1.0.0/16\n",
        )
        .unwrap();
        s.tf.set_env("DASK_CONFIG", dask.path().to_str().unwrap());
        let plan = s.tf.terraform(&["plan", "-no-color"]).ok();
        let text = flat(&plan.all());
        assert!(
            text.contains("Scheduler Address Setting Not Applied")
                && text.contains("coiled.use_scheduler_public_ip: false"),
            "{text}"
        );
        assert!(
            text.contains("coiled.yaml") && text.contains("use_scheduler_public_ip = false"),
            "names the file and the attribute: {text}"
        );
        assert!(
            text.contains("Ingress Setting Not Applied")
                && text.contains("coiled.backend-options.ingress")
                && text.contains("8786, 8787 from 10.1.0.0/16"),
            "{text}"
        );
        let planned = plan.stdout.lines().find(|l| l.contains("+ use_scheduler_public_ip"));
        assert!(
            planned.is_some_and(|l| !l.contains("false")),
            "the plan does not take the file's value:\n{}",
            plan.stdout
        );
        s.tf.set_env("DASK_COILED__USE_SCHEDULER_PUBLIC_IP", "True");
        let text = flat(&s.tf.terraform(&["plan", "-no-color"]).ok().all());
        assert!(
            !text.contains("coiled.use_scheduler_public_ip: false"),
            "the variable wins over the file: {text}"
        );
    }
}

/// Coiled stops idle clusters; `when_stopped = "keep"` keeps one in state, stopped, with no change
/// planned, while the default removes it so the next apply creates a new one.
#[test]
fn clusters_stopped_by_coiled_are_kept_or_recreated() {
    let config = r#"
resource "coiled_cluster" "kept" {
  name         = "kept"
  software     = "dask"
  n_workers    = 1
  idle_timeout = "1 minute"
  when_stopped = "keep"
}
resource "coiled_cluster" "again" {
  name         = "again"
  software     = "dask"
  n_workers    = 1
  idle_timeout = "1 minute"
}
output "kept" { value = coiled_cluster.kept.status }
"#;
    for cli in clis() {
        // A minute of idle time passes in two seconds.
        let s = Scenario::new(
            cli,
            &["--provision-delay", "300ms", "--stop-delay", "0s", "--time-scale", "30"],
            config,
        );
        s.apply();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !s.server.active_clusters().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(200));
        }
        assert!(s.server.active_clusters().is_empty(), "coiled-local stops idle clusters");
        let plan = s.tf.terraform(&["plan", "-detailed-exitcode", "-no-color"]);
        let text = flat(&plan.all());
        assert_eq!(plan.code, 2, "{text}");
        assert!(text.contains("Cluster Stopped") && text.contains("-replace="), "{text}");
        assert!(text.contains("coiled_cluster.again will be created"), "{text}");
        assert!(
            !text.contains("coiled_cluster.kept will be")
                && !text.contains("coiled_cluster.kept must be"),
            "{text}"
        );
        s.tf.terraform(&["apply", "-refresh-only", "-auto-approve", "-no-color"]).ok();
        assert_eq!(s.output("kept"), "stopped");
    }
}

/// A cluster made with cluster-level options imports against the configuration that made it without a
/// replacement: the API reports the firewall `scheduler_port` / `allow_ingress_from` made, and the
/// `spot` that `spot_policy` sent, as what the create sent, which the import holds as `backend_options`;
/// the first plan takes the configuration's way of saying them, in place and with no API call.
#[test]
fn clusters_made_with_options_import_against_the_same_configuration() {
    let config = r#"
resource "coiled_cluster" "ports" {
  name               = "ports"
  software           = "dask"
  n_workers          = 0
  scheduler_port     = 8786
  allow_ingress_from = "10.2.0.0/16"
}
resource "coiled_cluster" "open" {
  name                           = "open"
  software                       = "dask"
  n_workers                      = 0
  scheduler_port                 = 8786
  acknowledge_world_open_ingress = true
}
resource "coiled_cluster" "spot" {
  name        = "spot"
  software    = "dask"
  n_workers   = 0
  spot_policy = "spot_with_fallback"
}
"#;
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], config);
        s.apply();
        for name in ["ports", "open", "spot"] {
            let address = format!("coiled_cluster.{name}");
            let out = s.reimport(&address, name);
            assert!(out.stdout.contains("Import successful"), "{}", out.all());
        }
        let plan = s.plan_changes();
        assert!(
            !plan.contains("replace") && plan.contains("0 to add, 3 to change, 0 to destroy"),
            "{plan}"
        );
        s.apply_state_only();
        s.assert_no_changes();
        // The rules are the ones those options make, shown as such.
        let ports = s.state_text();
        assert!(ports.contains("\"source\": \"10.2.0.0/16\""), "{ports}");

        // The provider's `cluster_defaults` rules, sent as the cluster's own, likewise; rules that
        // differ from those the server reports the cluster has still replace it.
        let defaults = |cidr: &str| {
            format!(
                "  cluster_defaults {{\n    ingress {{\n      ports = [443]\n      cidr  = \"{cidr}\"\n    }}\n  }}"
            )
        };
        let cluster = "resource \"coiled_cluster\" \"defaults\" {\n  name      = \"defaults\"\n  software  = \"dask\"\n  n_workers = 0\n}\n";
        s.tf.write("main.tf", &with_provider(&s, &defaults("10.9.0.0/16"), cluster));
        s.apply();
        s.reimport("coiled_cluster.defaults", "defaults");
        s.tf.write("main.tf", &with_provider(&s, &defaults("10.8.0.0/16"), cluster));
        if crate::common::echo() == crate::common::Echo::Full {
            let plan = s.plan_changes();
            assert!(plan.contains("must be replaced"), "other rules: {plan}");
        }
        s.tf.write("main.tf", &with_provider(&s, &defaults("10.9.0.0/16"), cluster));
        let plan = s.plan_changes();
        assert!(
            !plan.contains("replace") && plan.contains("0 to add, 1 to change, 0 to destroy"),
            "{plan}"
        );
        s.apply();
        s.assert_no_changes();
    }
}

/// An import takes what the API does not report from the configuration only at the first plan after
/// it, and only what the API does not report: once an apply has followed the import, a creation
/// option added to the configuration replaces the cluster; and a scheduler port or tags the server
/// reports otherwise replace it even at that first plan.
#[test]
fn an_import_takes_the_configuration_only_where_and_while_it_cannot_tell() {
    let cluster = |extra: &str| {
        format!(
            "resource \"coiled_cluster\" \"late\" {{\n  name      = \"late\"\n  software  = \"dask\"\n  n_workers = 0\n{extra}}}\n"
        )
    };
    let port = "  scheduler_port                 = 8786\n  acknowledge_world_open_ingress = true\n";
    for cli in clis() {
        let s =
            Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], &cluster(""));
        s.apply();
        s.reimport("coiled_cluster.late", "late");
        // The server reports the port the scheduler listens on (443): another one is a change.
        s.set(&cluster(port));
        assert!(s.plan_changes().contains("must be replaced"), "{}: another port", cli.version);
        if crate::common::echo() == crate::common::Echo::Full {
            // It reports the cluster's tags, none here: tags added are a change.
            s.set(&cluster("  tags = { team = \"data\" }\n"));
            assert!(
                s.plan_changes().contains("must be replaced"),
                "{}: tags the cluster lacks",
                cli.version
            );
        }
        s.set(&cluster(""));
        s.apply();
        s.assert_no_changes();
        // After that first apply, a creation option the API does not report is a change too.
        s.set(&cluster("  cluster_timeout = \"8 hours\"\n"));
        let plan = s.plan_changes();
        assert!(plan.contains("must be replaced"), "{}: {plan}", cli.version);
        if cli.at_least(1, 5) {
            // With an `import` block, the run that imports and the next one take it; then no more.
            let import = "import {\n  to = coiled_cluster.late\n  id = \"late\"\n}\n";
            s.tf.terraform(&["state", "rm", "coiled_cluster.late"]).ok();
            s.set(&format!("{}{import}", cluster("")));
            s.apply();
            s.set(&cluster("  cluster_timeout = \"8 hours\"\n"));
            assert!(
                s.plan_changes().contains("0 to add, 1 to change, 0 to destroy"),
                "{}: the next run",
                cli.version
            );
            s.set(&cluster(""));
            s.apply();
            s.set(&cluster("  cluster_timeout = \"8 hours\"\n"));
            assert!(
                s.plan_changes().contains("must be replaced"),
                "{}: the run after",
                cli.version
            );
        }
    }
}

/// `arm = true` with x86 VM types known only at apply (here made from an id only the apply knows):
/// refused by the plan at apply, before the create's first request, whichever list says it.
#[test]
fn arm_with_x86_types_known_only_at_apply_is_refused_before_the_create() {
    for list in ["worker_vm_types", "scheduler_vm_types"] {
        let config = format!(
            "resource \"coiled_software_environment\" \"e\" {{\n  name      = \"img\"\n  container = \"ghcr.io/dask/dask:latest\"\n}}\nresource \"coiled_cluster\" \"x\" {{\n  name      = \"x86\"\n  software  = \"dask\"\n  n_workers = 1\n  arm       = true\n  {list} = [replace(coiled_software_environment.e.id, \"/.*/\", \"m6i.xlarge\")]\n}}\n"
        );
        for cli in clis() {
            let s = Scenario::new(cli, &["--provision-delay", "0s"], &config);
            let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
            let text = flat(&out.all());
            assert_ne!(out.code, 0, "{text}");
            assert!(text.contains("Architecture Does Not Match the VM Types"), "{text}");
            assert!(s.server.clusters().is_empty(), "no cluster was asked for");
            // Refused by the plan Terraform makes at apply, before the create's first request (its
            // name lookup).
            let log = s.server.get("/_local/requests").1.to_string();
            assert!(!log.contains("/name/x86"), "the create had begun: {log}");
        }
    }
}

/// A scheduler given a public IP that it does not report: Coiled's client refuses to connect rather
/// than use the private address, and so does the provider (a warning and a null address on the
/// resource, an error from the data source); `use_scheduler_public_ip = false` takes the private one.
#[test]
fn a_missing_public_address_is_never_replaced_by_the_private_one() {
    let config = |public: bool| {
        format!(
            "resource \"coiled_cluster\" \"c\" {{\n  name      = \"nopub\"\n  software  = \"dask\"\n  n_workers = 1\n  use_scheduler_public_ip = {public}\n  tags      = {{ \"coiled-local/no-public-ip\" = \"true\" }}\n}}\ndata \"coiled_cluster\" \"d\" {{\n  id                      = coiled_cluster.c.id\n  use_scheduler_public_ip = {public}\n}}\noutput \"address\" {{ value = coiled_cluster.c.scheduler_address }}\n"
        )
    };
    for cli in clis() {
        let s =
            Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], &config(true));
        let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
        let text = flat(&out.all());
        assert!(text.contains("No Public Scheduler Address"), "{text}");
        assert_ne!(out.code, 0, "the data source refuses: {text}");
        assert!(!text.contains("tls://10."), "never the private address: {text}");
        let state = s.state_text();
        assert!(!state.contains("tls://10."), "{state}");
        s.set(&config(false));
        s.apply();
        assert!(
            s.output("address").as_str().unwrap().starts_with("tls://10."),
            "the private address, asked for"
        );
        s.assert_no_changes();
    }
}

/// The workspace's Dask configuration overrides answered with an error status, which Coiled's client
/// does not check: the cluster is created without them, with a warning.
#[test]
fn an_error_reading_the_dask_overrides_is_a_warning() {
    let config = "resource \"coiled_cluster\" \"c\" {\n  name      = \"noover\"\n  software  = \"dask\"\n  n_workers = 1\n}\n";
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], config);
        s.server.put("/_local/faults", &json!({"overrides_status": 500}));
        let text = flat(&s.apply().all());
        assert!(text.contains("Workspace Dask Configuration Not Read"), "{text}");
        assert_eq!(s.server.running_named("noover").len(), 1);
        s.assert_no_changes();
    }
}

/// The firewall `allow_ingress_from` makes opens the scheduler's port, which without `scheduler_port`
/// is the workspace's `coiled.scheduler_port` (the client reads the server's Dask configuration before
/// it builds the firewall); arguments the firewall is made from that are unknown at plan leave
/// `firewall_rules` unknown until apply, on both CLIs.
#[test]
fn the_firewall_opens_the_port_the_workspace_chooses_and_waits_for_unknown_arguments() {
    let dir = tempfile::tempdir().unwrap();
    let overrides = dir.path().join("overrides.json");
    std::fs::write(&overrides, r#"{"coiled.scheduler_port": 8786}"#).unwrap();
    let config = r#"
resource "coiled_cluster" "net" {
  name               = "net"
  software           = "dask"
  n_workers          = 0
  allow_ingress_from = "10.1.0.0/16"
}
resource "coiled_cluster" "source_later" {
  name               = "source-later"
  software           = "dask"
  n_workers          = 0
  allow_ingress_from = coiled_cluster.net.id != "" ? "10.3.0.0/16" : "10.4.0.0/16"
  scheduler_port     = 8787
}
resource "coiled_cluster" "port_later" {
  name               = "port-later"
  software           = "dask"
  n_workers          = 0
  allow_ingress_from = "10.5.0.0/16"
  scheduler_port     = coiled_cluster.net.id != "" ? 8788 : 8789
}
output "rules" {
  value = [for c in [coiled_cluster.net, coiled_cluster.source_later, coiled_cluster.port_later] : c.firewall_rules]
}
"#;
    for cli in clis() {
        let s = Scenario::new(
            cli,
            &["--provision-delay", "0s", "--dask-config-overrides", overrides.to_str().unwrap()],
            config,
        );
        s.apply();
        let log = s.server.get("/_local/requests").1;
        let create = log
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["method"] == "POST" && r["body"]["name"] == "net")
            .cloned()
            .unwrap();
        assert_eq!(
            create["body"]["options"]["firewall_spec"]["ingress"],
            json!([{"ports": [8786, 15003, 443], "cidr": "10.1.0.0/16"}]),
            "{create}"
        );
        let rows = |i: usize| {
            let mut rows: Vec<(i64, String)> = s.output("rules")[i]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r["port"].as_i64().unwrap(), r["source"].as_str().unwrap().to_string()))
                .collect();
            rows.sort();
            rows
        };
        let net = |ports: &[i64], cidr: &str| -> Vec<(i64, String)> {
            ports.iter().map(|p| (*p, cidr.to_string())).collect()
        };
        assert_eq!(rows(0), net(&[443, 8786, 15003], "10.1.0.0/16"));
        assert_eq!(rows(1), net(&[443, 8787, 15003], "10.3.0.0/16"));
        assert_eq!(rows(2), net(&[443, 8788, 15003], "10.5.0.0/16"));
        s.assert_no_changes();
        // Imported, its rules are those the server reports, or (from a server that reports none)
        // not known: never those of port 443 alone.
        assert!(s.reimport("coiled_cluster.net", "net").stdout.contains("Import successful"));
        let plan = s.tf.terraform(&["plan", "-no-color"]).ok().stdout;
        assert!(!plan.contains("replace"), "{plan}");
        s.apply();
        let rules = &s.output("rules")[0];
        assert!(rules.is_null() || rows(0) == net(&[443, 8786, 15003], "10.1.0.0/16"), "{rules}");
        s.assert_no_changes();
        // Scaled after the import: still no guess.
        s.set(&config.replacen("n_workers          = 0", "n_workers          = 1", 1));
        s.apply();
        let rules = &s.output("rules")[0];
        assert!(rules.is_null() || rows(0) == net(&[443, 8786, 15003], "10.1.0.0/16"), "{rules}");
        s.assert_no_changes();
    }
}

/// `use_scheduler_public_ip` changed to a value known only at apply (from a resource the same apply
/// creates): the plan leaves `scheduler_address` unknown, and the apply gives the public one.
#[test]
fn the_address_waits_for_an_unknown_use_scheduler_public_ip() {
    let private = r#"
resource "coiled_cluster" "c" {
  name                    = "addressed"
  software                = "dask"
  n_workers               = 0
  use_scheduler_public_ip = false
}
output "address" { value = coiled_cluster.c.scheduler_address }
"#;
    let public_later = r#"
resource "coiled_cluster" "other" {
  name      = "other"
  software  = "dask"
  n_workers = 0
}
resource "coiled_cluster" "c" {
  name                    = "addressed"
  software                = "dask"
  n_workers               = 0
  use_scheduler_public_ip = coiled_cluster.other.id != ""
}
output "address" { value = coiled_cluster.c.scheduler_address }
"#;
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s"], private);
        s.apply();
        let before = s.output("address");
        s.set(public_later);
        s.apply();
        let after = s.output("address");
        assert!(after.is_string() && after != before, "{before} then {after}");
        s.assert_no_changes();
    }
}
