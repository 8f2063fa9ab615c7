//! `coiled_backend_options` through real Terraform CLIs against `coiled-local`.

use serde_json::json;

use crate::common::{Scenario, clis, flat};

const TEAM: &str = r#"
resource "coiled_backend_options" "team" {
  backend               = "aws"
  region                = "us-west-2"
  aws_access_key_id     = "AKIAEXAMPLE"
  aws_secret_access_key = "SECRET-SENTINEL-1"
  ingress {
    ports = [8786, 8787]
    cidr  = "10.1.0.0/16"
  }
  ingress {
    ports = [8787]
    cidr  = "10.32.0.0/16"
  }
}
output "rules" { value = flatten([for b in coiled_backend_options.team.ingress : [for p in b.ports : "tcp ${p} ${b.cidr}"]]) }
"#;

/// The rows of an output of strings, sorted.
fn rows(v: &serde_json::Value) -> Vec<String> {
    let mut rows: Vec<String> =
        v.as_array().unwrap().iter().map(|r| r.as_str().unwrap().to_string()).collect();
    rows.sort();
    rows
}

#[test]
fn create_read_back_reorder_update_and_empty_plans() {
    for cli in clis() {
        let s = Scenario::new(cli, &[], TEAM);
        let plan = s.tf.terraform(&["plan", "-no-color"]).ok().stdout;
        assert!(
            plan.contains("tcp 8787 10.32.0.0/16"),
            "firewall rows are known at plan time:\n{plan}"
        );
        s.apply();
        assert_eq!(
            rows(&s.output("rules")),
            vec!["tcp 8786 10.1.0.0/16", "tcp 8787 10.1.0.0/16", "tcp 8787 10.32.0.0/16"]
        );
        let state: serde_json::Value = serde_json::from_str(&s.state_text()).unwrap();
        let team = &state["resources"][0]["instances"][0];
        assert!(
            team["attributes"].get("firewall_rules").is_none() && team["schema_version"] == 1,
            "rules stored once: {team}"
        );
        s.assert_no_changes();
        let (_, server) = s.server.get("/api/v1/alice/backend_options/");
        assert_eq!(
            server["options"]["firewall_spec"]["ingress"],
            json!([{"ports": [8786, 8787], "cidr": "10.1.0.0/16"}, {"ports": [8787], "cidr": "10.32.0.0/16"}])
        );
        assert_eq!(server["options"]["aws_region_name"], "us-west-2");

        // Reordered blocks and ports: no change.
        s.set(
            &TEAM
                .replace("ports = [8786, 8787]", "ports = [8787, 8786]")
                .replace("10.1.0.0/16", "TMP")
                .replace("10.32.0.0/16", "10.1.0.0/16")
                .replace("TMP", "10.32.0.0/16")
                .replace(
                    "ports = [8787]\n    cidr  = \"10.1.0.0/16\"",
                    "ports = [8786, 8787]\n    cidr  = \"10.1.0.0/16\"",
                )
                .replace(
                    "ports = [8787, 8786]\n    cidr  = \"10.32.0.0/16\"",
                    "ports = [8787]\n    cidr  = \"10.32.0.0/16\"",
                ),
        );
        s.assert_no_changes();

        // Host bits: accepted with a warning naming the canonical form, sent canonical, and the user's
        // spelling kept in state so there is no perpetual diff.
        s.set(&TEAM.replace("10.1.0.0/16", "10.1.0.2/16"));
        let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]).ok();
        assert!(flat(&out.all()).contains("Did you mean \"10.1.0.0/16\"?"), "{}", out.all());
        s.assert_no_changes();
        let (_, server) = s.server.get("/api/v1/alice/backend_options/");
        assert_eq!(server["options"]["firewall_spec"]["ingress"][0]["cidr"], "10.1.0.0/16");
        s.set(TEAM);
        s.apply();

        // In-place update.
        s.set(&TEAM.replace("ports = [8787]", "ports = [8787, 443]"));
        let plan = s.plan_changes();
        assert!(plan.contains("will be updated in-place"), "{plan}");
        assert!(!plan.contains("must be replaced"));
        s.apply();
        s.assert_no_changes();
        let (_, server) = s.server.get("/api/v1/alice/backend_options/");
        assert_eq!(
            server["options"]["firewall_spec"]["ingress"][1],
            json!({"ports": [443, 8787], "cidr": "10.32.0.0/16"})
        );
    }
}

#[test]
fn drift_import_and_destroy_that_leaves_settings_in_place() {
    for cli in clis() {
        let s = Scenario::new(cli, &[], TEAM);
        s.apply();
        // Drift made through the API: someone opens SSH to the world.
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let op = terraform_provider_coiled::api::Op::new(
                std::time::Duration::from_secs(10),
                Default::default(),
            );
            use terraform_provider_coiled::api::{
                AwsKeys, AwsOptions, BackendOptionsData, CloudOptions, FirewallSpecOut, IngressOut,
                Registry,
            };
            let data = BackendOptionsData {
                backend: "vm",
                options: CloudOptions::Aws(AwsOptions {
                    aws_region_name: "us-west-2".into(),
                    account_role: String::new(),
                    credentials: AwsKeys { aws_access_key: "k".into(), aws_secret_key: "s".into() },
                    firewall: Default::default(),
                    firewall_spec: FirewallSpecOut {
                        ingress: Some(vec![IngressOut {
                            ports: vec![22],
                            cidr: "0.0.0.0/0".into(),
                        }]),
                    },
                    network: Default::default(),
                    zone: None,
                    provider_name: "aws",
                    kind: "aws_cloudbridge_backend_options",
                }),
                registry: Registry {
                    kind: "ecr",
                    credentials: Default::default(),
                    public_ecr: false,
                    region: "us-west-2".into(),
                },
            };
            s.server.client().set_backend_options(&op, "alice", &data).await.unwrap();
        });
        match crate::common::echo() {
            // A server that does not echo the settings hides the drift; what the provider holds stays,
            // with no false change.
            crate::common::Echo::Terse => s.assert_no_changes(),
            crate::common::Echo::Full => {
                let plan = s.plan_changes();
                assert!(
                    plan.contains("0.0.0.0/0") && plan.contains("10.32.0.0/16"),
                    "drift shows in the plan:\n{plan}"
                );
                s.apply();
                s.assert_no_changes();
            }
            // The drift shows or not, as the answer echoes the settings or not; an apply puts them back
            // when it shows.
            crate::common::Echo::Varied => {
                s.apply();
            }
        }

        // Import into a fresh state.
        std::fs::remove_file(s.tf.path().join("terraform.tfstate")).unwrap();
        let out =
            s.tf.terraform(&["import", "-no-color", "coiled_backend_options.team", "alice"]).ok();
        assert!(out.stdout.contains("Import successful"), "{}", out.all());
        assert!(
            !out.all().contains("Changed Outside Terraform"),
            "an import's first read is no drift: {}",
            out.all()
        );
        let state = s.state_text();
        if crate::common::echo() == crate::common::Echo::Full {
            assert!(state.contains("10.32.0.0/16") && state.contains("us-west-2"), "{state}");
        }
        // Credentials are never read back, so the configured ones show as a (sensitive) change.
        let plan = s.plan_changes();
        assert!(plan.contains("(sensitive value)") && !plan.contains("SECRET-SENTINEL"), "{plan}");
        s.apply();
        s.assert_no_changes();

        // Destroy never opens the firewall: the rules stay, and Terraform says so.
        let out = s.tf.terraform(&["destroy", "-auto-approve", "-no-color"]).ok();
        assert!(out.all().contains("Backend Options Left in Place"), "{}", out.all());
        let (_, server) = s.server.get("/api/v1/alice/backend_options/");
        assert_eq!(server["options"]["firewall_spec"]["ingress"][0]["cidr"], "10.1.0.0/16");
    }
}

#[test]
fn world_open_ingress_warns_unless_acknowledged() {
    let open = TEAM.replace("10.32.0.0/16", "0.0.0.0/0");
    for cli in clis() {
        let s = Scenario::new(cli, &[], &open);
        let out = s.tf.terraform(&["plan", "-no-color"]).ok();
        assert!(
            out.all().contains("Ingress Open to the Whole Internet") && out.all().contains("8787"),
            "{}",
            out.all()
        );
        s.set(&open.replace(
            "region                = \"us-west-2\"",
            "region = \"us-west-2\"\n  acknowledge_world_open_ingress = true",
        ));
        let out = s.tf.terraform(&["plan", "-no-color"]).ok();
        assert!(!out.all().contains("Whole Internet"), "{}", out.all());
    }
}

/// Every invalid configuration fails at validate/plan time with an error diagnostic and makes no API call.
#[test]
fn bad_input_is_refused_before_any_api_call() {
    let cases: Vec<(&str, String, &str)> = vec![
        ("bad cidr", TEAM.replace("10.32.0.0/16", "10.32.0.300/16"), "Invalid CIDR Block"),
        ("no prefix", TEAM.replace("10.32.0.0/16", "10.32.0.0"), "has no prefix length"),
        ("prefix too long", TEAM.replace("10.32.0.0/16", "10.32.0.0/33"), "prefix length longer"),
        (
            "ipv6 prefix too long",
            TEAM.replace("10.32.0.0/16", "2001:db8::/129"),
            "prefix length longer",
        ),
        ("hostname", TEAM.replace("10.32.0.0/16", "example.com/16"), "is not a CIDR block"),
        ("empty cidr", TEAM.replace("10.32.0.0/16", ""), "a CIDR block is required"),
        ("port zero", TEAM.replace("ports = [8787]", "ports = [0]"), "Invalid Port"),
        ("port too big", TEAM.replace("ports = [8787]", "ports = [65536]"), "Invalid Port"),
        ("negative port", TEAM.replace("ports = [8787]", "ports = [-1]"), "Invalid Port"),
        ("fractional port", TEAM.replace("ports = [8787]", "ports = [80.5]"), "Invalid Port"),
        ("empty ports", TEAM.replace("ports = [8787]", "ports = []"), "No Ports"),
        ("bad backend", TEAM.replace("\"aws\"", "\"azure\""), "Invalid Backend"),
        (
            "missing key",
            TEAM.replace("aws_access_key_id     = \"AKIAEXAMPLE\"", ""),
            "Missing AWS Credentials",
        ),
        (
            "missing secret",
            TEAM.replace("aws_secret_access_key = \"SECRET-SENTINEL-1\"", ""),
            "Missing AWS Credentials",
        ),
        (
            "gcp keys on aws",
            TEAM.replace("region ", "gcp_project_id = \"p\"\n  region "),
            "Conflicting Cloud Settings",
        ),
        (
            "bad workspace",
            TEAM.replace("region ", "workspace = \"a/b\"\n  region "),
            "Invalid Workspace",
        ),
        (
            "version without value",
            TEAM.replace("region ", "aws_secret_access_key_wo_version = 1\n  region "),
            "Version Without Value",
        ),
        (
            "empty network id",
            TEAM.replace(
                "  ingress {\n    ports = [8786",
                "  network {\n    network_id = \"\"\n  }\n  ingress {\n    ports = [8786",
            ),
            "Empty Network Identifier",
        ),
        (
            "too many rules",
            TEAM.replace(
                "  ingress {\n    ports = [8787]",
                &format!("{}  ingress {{\n    ports = [8787]", many_blocks(101)),
            ),
            "Too Many Ingress Rules",
        ),
    ];
    for cli in clis() {
        Scenario::new(cli, &[], "").assert_refused(&cases);
    }
}

fn many_blocks(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!("  ingress {{\n    ports = [{}]\n    cidr  = \"10.9.0.0/16\"\n  }}\n", 1000 + i)
        })
        .collect()
}

#[test]
fn secrets_stay_out_of_logs_plans_and_errors() {
    for cli in clis() {
        let s = Scenario::new(cli, &[], TEAM);
        let apply =
            s.tf.terraform_env(&["apply", "-auto-approve", "-no-color"], &[("TF_LOG", "trace")])
                .ok();
        let plan = s.tf.terraform_env(&["plan", "-no-color"], &[("TF_LOG", "trace")]).ok();
        let show = s.tf.terraform(&["show", "-no-color"]).ok();
        for (what, text) in [("apply", apply.all()), ("plan", plan.all()), ("show", show.all())] {
            assert!(
                !text.contains("SECRET-SENTINEL") && !text.contains(&s.server.token),
                "{what} leaked a secret ({})",
                cli.version
            );
        }
        // A rejected token: the error names where it came from, not its value.
        s.tf.write(
            "main.tf",
            &Scenario::config(&s.server, TEAM)
                .replace(&format!("\"{}\"", s.server.token), "\"wrong-token-sentinel\""),
        );
        let out = s.tf.terraform_env(&["plan", "-no-color"], &[("TF_LOG", "trace")]);
        assert_ne!(out.code, 0);
        assert!(
            out.all().contains("rejected the token")
                && out.all().contains("provider's `token` argument"),
            "{}",
            out.all()
        );
        assert!(
            !out.all().contains("wrong-token-sentinel"),
            "the token leaked into output ({})",
            cli.version
        );
    }
}

#[test]
fn write_only_secret_never_reaches_state_on_modern_terraform() {
    let wo = TEAM.replace(
        "aws_secret_access_key = \"SECRET-SENTINEL-1\"",
        "aws_secret_access_key_wo = \"WO-SENTINEL-2\"\n  aws_secret_access_key_wo_version = 1",
    );
    for cli in clis() {
        let s = Scenario::new(cli, &[], &wo);
        if !cli.at_least(1, 11) {
            let out = s.tf.terraform(&["plan", "-no-color"]);
            assert_ne!(out.code, 0);
            assert!(out.all().contains("Write-Only Attribute Not Supported"), "{}", out.all());
            continue;
        }
        let out =
            s.tf.terraform_env(&["apply", "-auto-approve", "-no-color"], &[("TF_LOG", "trace")])
                .ok();
        assert!(!out.all().contains("WO-SENTINEL"));
        assert!(!s.state_text().contains("WO-SENTINEL"), "write-only secret in state");
        assert!(s.state_text().contains("aws_secret_access_key_wo_version"));
        s.assert_no_changes();
        s.set(
            &wo.replace("_wo_version = 1", "_wo_version = 2")
                .replace("WO-SENTINEL-2", "WO-SENTINEL-3"),
        );
        assert!(s.plan_changes().contains("aws_secret_access_key_wo_version"));
        s.apply();
        s.assert_no_changes();
    }
}

#[test]
fn data_source_reads_the_workspace_settings_without_secrets() {
    for cli in clis() {
        let s = Scenario::new(cli, &[], TEAM);
        s.apply();
        s.set(&format!("{TEAM}\ndata \"coiled_backend_options\" \"current\" {{\n  depends_on = [coiled_backend_options.team]\n}}\noutput \"read\" {{ value = data.coiled_backend_options.current }}\n"));
        s.apply();
        let read = s.output("read");
        assert_eq!(read["backend"], "aws");
        assert_eq!(read["workspace"], "alice");
        if crate::common::echo() == crate::common::Echo::Terse {
            // A data source shows what the server reports, and a terse one reports none of these.
            let unknown = ["region", "ingress", "uses_coiled_default_ingress"];
            assert!(unknown.iter().all(|k| read[k].is_null()), "{read}");
        } else if crate::common::echo() == crate::common::Echo::Varied {
            // What an answer leaves out shows as unknown (null), never as something else.
            assert!(read["region"] == "us-west-2" || read["region"].is_null(), "{read}");
        } else {
            assert_eq!(read["region"], "us-west-2");
            assert!(
                read.get("firewall_rules").is_none(),
                "the rules are stored once, as `ingress`: {read}"
            );
            assert_eq!(read["ingress"].as_array().unwrap().len(), 2);
        }
        assert!(!read.to_string().contains("SECRET-SENTINEL"));
    }
}

/// State of schema version 0, which stored `firewall_rules` beside the `ingress` blocks, upgrades with
/// no planned change and is rewritten without it.
#[test]
fn version_0_state_upgrades_without_a_change() {
    for cli in clis() {
        let s = Scenario::new(cli, &[], TEAM);
        s.apply();
        let mut state: serde_json::Value = serde_json::from_str(&s.state_text()).unwrap();
        let team = &mut state["resources"][0]["instances"][0];
        team["schema_version"] = json!(0);
        team["attributes"]["firewall_rules"] =
            json!([{"port": 8786, "protocol": "tcp", "source": "10.1.0.0/16"}]);
        state["serial"] = json!(state["serial"].as_i64().unwrap() + 1);
        s.tf.write("terraform.tfstate", &serde_json::to_string_pretty(&state).unwrap());
        s.assert_no_changes();
        s.tf.terraform(&["apply", "-refresh-only", "-auto-approve", "-no-color"]).ok();
        let state: serde_json::Value = serde_json::from_str(&s.state_text()).unwrap();
        let team = &state["resources"][0]["instances"][0];
        assert!(
            team["schema_version"] == 1 && team["attributes"].get("firewall_rules").is_none(),
            "{team}"
        );
    }
}

/// A `network` block taken out of the configuration is planned absent and updated in place on every
/// CLI (Terraform 1.0.3 proposes a removed single block as the prior state held it, and refuses a plan
/// that keeps it): the account's options are sent again without it.
#[test]
fn a_network_block_taken_out_is_removed_in_place() {
    let with_network = TEAM.replace(
        "  ingress {\n    ports = [8786",
        "  network {\n    network_id = \"vpc-1\"\n  }\n  ingress {\n    ports = [8786",
    );
    for cli in clis() {
        let s = Scenario::new(cli, &[], &with_network);
        s.apply();
        let (_, server) = s.server.get("/api/v1/alice/backend_options/");
        assert_eq!(
            server["options"]["network"]["network_id"], "vpc-1",
            "{}: {server}",
            cli.version
        );
        s.set(TEAM);
        let plan = flat(&s.plan_changes());
        assert!(
            plan.contains("- network {") && plan.contains("0 to add, 1 to change, 0 to destroy"),
            "{}: {plan}",
            cli.version
        );
        s.apply();
        let (_, server) = s.server.get("/api/v1/alice/backend_options/");
        // Sent as Coiled's client sends no network: an empty one.
        assert_eq!(server["options"]["network"], json!({}), "{}: {server}", cli.version);
        s.assert_no_changes();
    }
}

/// Two resources writing one workspace's options in one apply (a mistake, but one users make): each
/// apply succeeds and records what it wrote, warning when the options read back were changed in
/// between, never "inconsistent result"; the next plan shows the difference still to settle, where
/// the server reports the rules.
#[test]
fn two_owners_of_one_workspaces_options_conflict_without_an_invalid_result() {
    let cli = clis().last().unwrap();
    let s = Scenario::new(cli, &["--faults", r#"{"latency_ms": 150}"#], "");
    let owner = |name: &str, cidr: &str| {
        format!(
            "resource \"coiled_backend_options\" \"{name}\" {{\n  backend               = \"aws\"\n  aws_access_key_id     = \"AKIAEXAMPLE\"\n  aws_secret_access_key = \"example\"\n  ingress {{\n    ports = [443]\n    cidr  = \"{cidr}\"\n  }}\n}}\n"
        )
    };
    s.set(&format!("{}{}", owner("a", "10.1.0.0/16"), owner("b", "10.2.0.0/16")));
    let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!out.all().contains("inconsistent result"), "{}", out.all());
    // One of them no longer holds what it wrote: a server that reports the rules shows it.
    let plan = s.tf.terraform(&["plan", "-detailed-exitcode", "-no-color"]);
    let shown =
        if crate::common::echo() == crate::common::Echo::Full { vec![2] } else { vec![0, 2] };
    assert!(shown.contains(&plan.code), "{}", plan.all());
}

/// A saved plan predicts an inheriting cluster's `firewall_rules` from the account default; when a
/// teammate changes the default before the apply, the apply still succeeds (no "inconsistent result")
/// and the next plan shows the cluster's rules as they are.
#[test]
fn an_account_default_changed_between_plan_and_apply() {
    let cli = clis().last().unwrap();
    let options = |cidr: &str| {
        format!(
            "resource \"coiled_backend_options\" \"team\" {{\n  backend               = \"aws\"\n  aws_access_key_id     = \"AKIAEXAMPLE\"\n  aws_secret_access_key = \"example\"\n  ingress {{\n    ports = [443]\n    cidr  = \"{cidr}\"\n  }}\n}}\n"
        )
    };
    let s = Scenario::new(
        cli,
        &["--provision-delay", "0s", "--stop-delay", "0s"],
        &options("10.1.0.0/16"),
    );
    s.apply();
    let teammate = crate::common::Workdir::new(cli, &Scenario::config(&s.server, ""));
    teammate.terraform(&["import", "-no-color", "coiled_backend_options.team", "alice"]);
    s.tf.write(
        "main.tf",
        &Scenario::config(
            &s.server,
            "resource \"coiled_cluster\" \"c\" {\n  software  = \"dask\"\n  n_workers = 1\n}\n",
        ),
    );
    s.tf.terraform(&["state", "rm", "-no-color", "coiled_backend_options.team"]).ok();
    s.tf.terraform(&["plan", "-no-color", "-out=saved"]).ok();
    teammate.write("main.tf", &Scenario::config(&s.server, &options("10.2.0.0/16")));
    teammate.terraform(&["apply", "-auto-approve", "-no-color"]).ok();
    let out = s.tf.terraform(&["apply", "-no-color", "saved"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let plan = s.tf.terraform(&["plan", "-no-color"]);
    assert!(plan.code == 0, "{}", plan.all());
}

/// Data sources whose read waits for the apply (they depend on a change) plan and apply on every
/// Terraform: 1.0.3 renders their nested attributes while they are unknown.
#[test]
fn data_sources_read_at_apply_render_on_every_terraform() {
    let config = r#"
resource "coiled_software_environment" "env" {
  name      = "deferred"
  container = "ghcr.io/dask/dask:latest"
}
data "coiled_backend_options" "current" {
  depends_on = [coiled_software_environment.env]
}
data "coiled_software_environment" "read" {
  name       = "dask"
  depends_on = [coiled_software_environment.env]
}
"#;
    for cli in clis() {
        let s = Scenario::new(cli, &[], config);
        let plan = s.plan_changes();
        for read in
            ["coiled_backend_options\" \"current\"", "coiled_software_environment\" \"read\""]
        {
            assert!(plan.contains(&format!("<= data \"{read}")), "{}: {plan}", cli.version);
        }
        s.apply();
        s.assert_no_changes();
        s.tf.terraform(&["show", "-no-color"]).ok();
    }
}
