//! Modern Terraform features: provider functions (1.8 and later) and resource identity (1.12 and later).
//! Older CLIs do not know their syntax, and the provider keeps working for them (every other suite runs
//! on 1.0.3).

use serde_json::json;

use crate::common::{Scenario, clis, flat};

const FUNCTIONS: &str = r#"
locals {
  ingress = [
    { ports = [8787, 8786], cidr = "10.1.0.2/16" },
    { ports = [8786], cidr = "10.1.0.0/16" },
    { ports = [8787], cidr = "10.32.0.0/16" },
  ]
}
output "rows" { value = provider::coiled::firewall_rules(local.ingress) }
output "canonical" { value = provider::coiled::canonical_cidr("2001:DB8::1/32") }
"#;

#[test]
fn functions_compute_what_the_resources_show_offline() {
    for cli in clis().iter().filter(|c| c.at_least(1, 8)) {
        let s = Scenario::new(cli, &[], FUNCTIONS);
        s.reset_stats();
        s.apply();
        assert_eq!(
            s.output("rows"),
            json!([
                {"protocol": "tcp", "port": 8787, "source": "10.1.0.0/16"},
                {"protocol": "tcp", "port": 8786, "source": "10.1.0.0/16"},
                {"protocol": "tcp", "port": 8787, "source": "10.32.0.0/16"}
            ]),
            "merged, canonical, in the order firewall_rules shows"
        );
        assert_eq!(s.output("canonical"), "2001:db8::/32");
        assert_eq!(s.api_requests(), 0, "functions read nothing from Coiled");
        s.assert_no_changes();

        s.set(&FUNCTIONS.replace("10.32.0.0/16", "10.32.0.300/16"));
        let out = s.tf.terraform(&["plan", "-no-color"]);
        let text = flat(&out.all());
        assert!(out.code != 0 && text.contains("Invalid function argument") && text.contains("ingress[2].cidr"), "{text}");
        s.set(&FUNCTIONS.replace("2001:DB8::1/32", "not-a-block"));
        let text = flat(&s.tf.terraform(&["plan", "-no-color"]).all());
        assert!(text.contains("Invalid function argument") && text.contains("not-a-block"), "{text}");
    }
}

/// Resource identity (Terraform 1.12 and later): state records each instance's identity, and an
/// `import` block given only the identity imports it with an empty plan.
#[test]
fn import_blocks_take_an_identity() {
    let resources = r#"
resource "coiled_backend_options" "team" {
  backend               = "aws"
  aws_access_key_id     = "AKIAEXAMPLE"
  aws_secret_access_key = "SECRET-SENTINEL-1"
  ingress {
    ports = [8786]
    cidr  = "10.1.0.0/16"
  }
}
resource "coiled_cluster" "etl" {
  software  = "dask"
  name      = "ident"
  n_workers = 1
}
"#;
    for cli in clis().iter().filter(|c| c.at_least(1, 12)) {
        let s = Scenario::new(cli, &["--provision-delay", "0s"], resources);
        s.apply();
        let state: serde_json::Value = serde_json::from_str(&s.state_text()).unwrap();
        let identity = |kind: &str| {
            state["resources"].as_array().unwrap().iter().find(|r| r["type"] == kind).unwrap()["instances"][0]["identity"].clone()
        };
        let cluster = identity("coiled_cluster");
        let id = cluster["id"].as_str().unwrap().to_string();
        assert_eq!(cluster, json!({"workspace": "alice", "id": id}), "{state}");
        assert_eq!(identity("coiled_backend_options"), json!({"workspace": "alice"}));
        s.assert_no_changes();

        for r in ["coiled_cluster.etl", "coiled_backend_options.team"] {
            s.tf.terraform(&["state", "rm", r]).ok();
        }
        let imports = format!(
            "import {{\n  to       = coiled_cluster.etl\n  identity = {{ workspace = \"alice\", id = \"{id}\" }}\n}}\nimport {{\n  to       = coiled_backend_options.team\n  identity = {{ workspace = \"alice\" }}\n}}\n"
        );
        s.set(&format!("{resources}{imports}"));
        let plan = s.tf.terraform(&["plan", "-no-color"]).ok().stdout;
        assert!(plan.contains("2 to import, 0 to add") && plan.contains("0 to destroy"), "{plan}");
        assert!(!plan.contains("coiled_cluster.etl will be updated"), "the cluster imports with no change: {plan}");
        s.apply();
        s.set(resources);
        // The account options' secret is never read back, so it shows once as a sensitive change.
        s.apply();
        s.assert_no_changes();
        assert_eq!(s.server.running_named("ident").len(), 1);
    }
}

/// The ephemeral `coiled_cluster_connection` (Terraform 1.10 and later) gives the cluster's TLS key to
/// where it is used (here a write-only argument), and the key is in no plan, state or log.
#[test]
fn the_cluster_connection_is_used_but_never_stored() {
    let cluster = "resource \"coiled_cluster\" \"etl\" {\n  software  = \"dask\"\n  name      = \"conn\"\n  n_workers = 1\n}\n";
    let uses = r#"
ephemeral "coiled_cluster_connection" "c" {
  name                    = coiled_cluster.etl.name
  use_scheduler_public_ip = false
}
resource "coiled_backend_options" "team" {
  backend                          = "aws"
  aws_access_key_id                = "AKIAEXAMPLE"
  aws_secret_access_key_wo         = ephemeral.coiled_cluster_connection.c.tls_key
  aws_secret_access_key_wo_version = 1
}
"#;
    for cli in clis().iter().filter(|c| c.at_least(1, 11)) {
        let s = Scenario::new(cli, &["--provision-delay", "0s"], cluster);
        s.apply();
        let id = s.server.running_named("conn")[0]["id"].to_string();
        let (_, d) = s.server.get(&format!("/api/v2/clusters/account/alice/id/{id}"));
        let key = d["cluster_options"]["tls_key"].as_str().unwrap().to_string();
        let secret_line = key.lines().nth(1).unwrap().to_string();
        s.set(&format!("{cluster}{uses}"));
        let log = s.tf.path().join("trace.log");
        let plan = s.tf.terraform_env(&["plan", "-no-color"], &[("TF_LOG", "trace"), ("TF_LOG_PATH", log.to_str().unwrap())]).ok();
        let out =
            s.tf.terraform_env(&["apply", "-auto-approve", "-no-color"], &[("TF_LOG", "trace"), ("TF_LOG_PATH", log.to_str().unwrap())])
                .ok();
        let sent = s.server.get("/_local/requests").1.to_string();
        assert!(sent.contains(&secret_line.replace('+', "\\u002b")) || sent.contains(&secret_line), "the key reached its use");
        for (what, text) in [
            ("plan", plan.all()),
            ("apply", out.all()),
            ("state", s.state_text()),
            ("log", std::fs::read_to_string(&log).unwrap_or_default()),
        ] {
            assert!(!text.contains(&secret_line), "the key is in the {what}");
        }
        s.assert_no_changes();

        s.set(&format!("{cluster}ephemeral \"coiled_cluster_connection\" \"c\" {{}}\n"));
        let text = flat(&s.tf.terraform(&["plan", "-no-color"]).all());
        assert!(text.contains("Cluster Not Identified"), "{text}");
    }
}
