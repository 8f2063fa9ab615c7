//! Modern Terraform features: provider functions (1.8 and later), ephemeral resources (1.10), resource
//! identity (1.12), list resources and actions (1.14).
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
        assert!(
            out.code != 0
                && text.contains("Invalid function argument")
                && text.contains("ingress[2].cidr"),
            "{text}"
        );
        s.set(&FUNCTIONS.replace("2001:DB8::1/32", "not-a-block"));
        let text = flat(&s.tf.terraform(&["plan", "-no-color"]).all());
        assert!(
            text.contains("Invalid function argument") && text.contains("not-a-block"),
            "{text}"
        );
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
        let identity = |kind: &str| s.instance(kind)["identity"].clone();
        let cluster = identity("coiled_cluster");
        let id = cluster["id"].as_str().unwrap().to_string();
        assert_eq!(cluster, json!({"workspace": "alice", "id": id}), "{}", s.state_text());
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
        assert!(
            !plan.contains("coiled_cluster.etl will be updated"),
            "the cluster imports with no change: {plan}"
        );
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
        let plan =
            s.tf.terraform_env(
                &["plan", "-no-color"],
                &[("TF_LOG", "trace"), ("TF_LOG_PATH", log.to_str().unwrap())],
            )
            .ok();
        let out =
            s.tf.terraform_env(
                &["apply", "-auto-approve", "-no-color"],
                &[("TF_LOG", "trace"), ("TF_LOG_PATH", log.to_str().unwrap())],
            )
            .ok();
        // The request log never keeps a secret: that one was sent shows as `***`.
        let sent = s.server.get("/_local/requests").1.to_string();
        assert!(
            sent.contains(r#""aws_secret_access_key":"***""#),
            "the key reached its use: {sent}"
        );
        assert!(!sent.contains(&secret_line), "the log keeps no secret");
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

/// `terraform query` (Terraform 1.14 and later): `list "coiled_cluster"` finds clusters created
/// outside Terraform, filtered; `-generate-config-out` writes configuration and import blocks that
/// import with an empty plan; software environments are listed too.
#[test]
fn terraform_query_finds_and_imports_clusters_made_elsewhere() {
    for cli in clis().iter().filter(|c| c.at_least(1, 14)) {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], "");
        let body = |name: &str, team: &str| {
            crate::common::client_body(&json!({"name": name, "workers": 1, "tags": {"team": team},
                "options": {"firewall_spec": {"ingress": [{"ports": [443], "cidr": "10.1.0.0/16"}]}}}))
        };
        for (name, team) in
            [("ext-a", "data"), ("ext-b", "data"), ("ext-c", "ml"), ("other", "data")]
        {
            let (code, _) = s.server.post("/api/v2/clusters/account/alice/", &body(name, team));
            assert_eq!(code, 201);
        }
        let (code, _) = s.server.post(
            "/api/v2/software-environment/account/alice",
            &json!({"name": "team-img", "container": "ghcr.io/dask/dask:latest"}),
        );
        assert_eq!(code, 200);
        let tags = if crate::common::minimal_echo() {
            ""
        } else {
            "    tags        = { team = \"data\" }\n"
        };
        s.tf.write(
            "q.tfquery.hcl",
            &format!("list \"coiled_cluster\" \"ext\" {{\n  provider = coiled\n  config {{\n    name_prefix = \"ext-\"\n{tags}  }}\n}}\nlist \"coiled_software_environment\" \"team\" {{\n  provider = coiled\n  config {{\n    name_prefix = \"team-\"\n  }}\n}}\n"),
        );
        let out = s.tf.terraform(&["query", "-no-color"]).ok().stdout;
        assert!(
            out.contains("ext-a (id") && out.contains("ext-b (id") && !out.contains("other"),
            "{out}"
        );
        assert_eq!(out.contains("ext-c"), crate::common::minimal_echo(), "the tag filter: {out}");
        assert!(
            out.contains("list.coiled_software_environment.team") && out.contains("name=team-img"),
            "{out}"
        );

        std::fs::remove_file(s.tf.path().join("q.tfquery.hcl")).unwrap();
        s.tf.write(
            "q.tfquery.hcl",
            "list \"coiled_cluster\" \"ext\" {\n  provider = coiled\n  config {\n    name_prefix = \"ext-a\"\n  }\n}\nlist \"coiled_software_environment\" \"team\" {\n  provider = coiled\n  config {\n    name_prefix = \"team-\"\n  }\n}\n",
        );
        s.tf.terraform(&["query", "-no-color", "-generate-config-out=generated.tf"]).ok();
        let generated = std::fs::read_to_string(s.tf.path().join("generated.tf")).unwrap();
        assert!(
            generated.contains("resource \"coiled_cluster\"")
                && generated.contains("import {")
                && generated.contains("name")
                && generated.contains("\"ext-a\""),
            "{generated}"
        );
        assert!(
            generated.contains("resource \"coiled_software_environment\"")
                && generated.contains("\"team-img\""),
            "{generated}"
        );
        let plan = s.tf.terraform(&["plan", "-no-color"]).ok().stdout;
        assert!(plan.contains("2 to import, 0 to add, 0 to change, 0 to destroy"), "{plan}");
        s.apply();
        s.assert_no_changes();
    }
}

/// `-generate-config-out` writes what the server shows of a cluster the client made from an image,
/// on a scheduler without a public IP: `container` (where the environment's spec shows the image) and
/// `use_scheduler_public_ip = false`; with the idle timeout the user adds, the import plans nothing.
#[test]
fn generated_configuration_keeps_the_image_the_private_address_and_the_idle_timeout() {
    use terraform_provider_coiled::provider::cluster::request::container_env_body;
    const IMAGE: &str = "ghcr.io/dask/dask:2024.1.0";
    for cli in clis().iter().filter(|c| c.at_least(1, 14)) {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], "");
        // What `coiled.Cluster(container=IMAGE, use_scheduler_public_ip=False, idle_timeout=…)` sends.
        let env = serde_json::to_value(container_env_body(IMAGE, "x86_64", None)).unwrap();
        let (code, _) = s.server.post("/api/v2/software-environment/account/alice", &env);
        assert_eq!(code, 200);
        let cluster = json!({"name": "py-img", "workers": 1, "env_name": env["name"], "scheduler_options": {"idle_timeout": "2 hours"},
            "tags": {"coiled-local/private-scheduler": "true"}});
        let (code, _) =
            s.server.post("/api/v2/clusters/account/alice/", &crate::common::client_body(&cluster));
        assert_eq!(code, 201);
        s.tf.write(
            "q.tfquery.hcl",
            "list \"coiled_cluster\" \"py\" {\n  provider = coiled\n  config {\n    name_prefix = \"py-\"\n  }\n}\n",
        );
        s.tf.terraform(&["query", "-no-color", "-generate-config-out=generated.tf"]).ok();
        let generated = flat(&std::fs::read_to_string(s.tf.path().join("generated.tf")).unwrap());
        assert!(generated.contains("use_scheduler_public_ip = false"), "{generated}");
        // Where the spec does not show the image (a terse or varying server), the name of its
        // environment stays: the same software, either way.
        let by_image = generated.contains(&format!("container = \"{IMAGE}\""));
        assert_ne!(
            by_image,
            generated.contains(&format!("software = {}", env["name"])),
            "{generated}"
        );
        assert!(by_image || crate::common::echo() != crate::common::Echo::Full, "{generated}");
        // coiled-local does not echo the scheduler's options (the client shows no field that would):
        // the timeout is the user's to add, and the import takes it without a change.
        assert!(generated.contains("idle_timeout = null"), "{generated}");
        let text = std::fs::read_to_string(s.tf.path().join("generated.tf")).unwrap();
        let edited: Vec<&str> = text
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("idle_timeout ") {
                    "  idle_timeout = \"2 hours\""
                } else {
                    l
                }
            })
            .collect();
        s.tf.write("generated.tf", &edited.join("\n"));
        // The first plan takes the image and the timeout from the configuration, in place.
        let plan = s.tf.terraform(&["plan", "-no-color"]).ok().stdout;
        assert!(
            plan.contains("1 to import, 0 to add")
                && plan.contains("0 to destroy")
                && !plan.contains("replace"),
            "{plan}"
        );
        s.apply_state_only();
        s.assert_no_changes();
    }
}

/// Actions (Terraform 1.14 and later): `coiled_cluster_scale` and `coiled_cluster_stop`, invoked with
/// `-invoke` and from a lifecycle `action_trigger`, make their call, wait, and change no state.
#[test]
fn actions_scale_and_stop_clusters_without_changing_state() {
    let config = r#"
resource "coiled_cluster" "etl" {
  name         = "acted"
  software     = "dask"
  n_workers    = 1
  when_stopped = "keep"
  lifecycle {
    action_trigger {
      events  = [after_create]
      actions = [action.coiled_cluster_scale.burst]
    }
  }
}
action "coiled_cluster_scale" "burst" {
  config {
    cluster_id = coiled_cluster.etl.id
    n_workers  = 3
  }
}
action "coiled_cluster_stop" "stop" {
  config {
    cluster_id = coiled_cluster.etl.id
    reason     = "done for today"
  }
}
action "coiled_cluster_scale" "bad" {
  config {
    cluster_id = "etl"
    n_workers  = 5000
  }
}
"#;
    for cli in clis().iter().filter(|c| c.at_least(1, 14)) {
        let s = Scenario::new(cli, &["--provision-delay", "300ms", "--stop-delay", "0s"], config);
        let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
        let text = flat(&out.all());
        // The invalid action is refused at validation, before anything is made.
        assert_ne!(out.code, 0);
        assert!(
            text.contains("Invalid Cluster ID") && text.contains("Invalid Worker Count"),
            "{text}"
        );
        assert!(s.server.clusters().is_empty());
        s.set(&config[..config.find("action \"coiled_cluster_scale\" \"bad\"").unwrap()]);
        let text = flat(&s.apply().all());
        assert!(
            text.contains("Scaling cluster") && text.contains("to 3 workers"),
            "triggered after create: {text}"
        );
        let id = s.server.running_named("acted")[0]["id"].clone();
        let (_, cluster) = s.server.get(&format!("/api/v2/clusters/account/alice/id/{id}"));
        assert_eq!(cluster["desired_workers"], 3);
        // The state keeps the configured count: the next plan scales back.
        let plan = s.plan_changes();
        assert!(plan.contains("n_workers") && plan.contains("3 -> 1"), "{plan}");
        let text = flat(
            &s.tf
                .terraform(&[
                    "apply",
                    "-auto-approve",
                    "-no-color",
                    "-invoke=action.coiled_cluster_stop.stop",
                ])
                .ok()
                .all(),
        );
        assert!(text.contains("has stopped") && text.contains("Actions: 1 invoked"), "{text}");
        assert!(s.server.active_clusters().is_empty());
        let (_, log) = s.server.get("/_local/requests");
        let stop =
            log.as_array().unwrap().iter().find(|r| r["method"] == "DELETE").unwrap().clone();
        assert!(stop["query"].as_str().unwrap_or_default().contains("done"), "{stop}");
        // Kept in state, stopped; an apply that would scale it is refused at plan time.
        let plan = s.tf.terraform(&["plan", "-no-color"]);
        assert!(flat(&plan.all()).contains("Cluster Is Stopped"), "{}", plan.all());
    }
}

/// A query reads the whole list, however long: with 2,511 clusters, the 111 oldest (`team-…`, one of
/// them long-lived) are all found, far past the 2,000 Coiled's client lists by default; a cluster
/// listed without a state is read to learn it, and found.
#[test]
fn a_query_reads_every_page_and_says_what_it_left_out() {
    let Some(cli) = clis().iter().find(|c| c.at_least(1, 14)) else { return };
    let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], "");
    let client = s.server.client();
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
        let names = (0..111)
            .map(|i| format!("team-{i:03}"))
            .chain((0..2400).map(|i| format!("bulk-{i:04}")));
        for name in names {
            crate::common::create_cluster_raw(&client, &json!({"name": name, "workers": 0}))
                .await
                .unwrap();
        }
    });
    let query = |prefix: &str| {
        format!(
            "list \"coiled_cluster\" \"q\" {{\n  provider = coiled\n  limit    = 1000\n  config {{\n    name_prefix = \"{prefix}\"\n  }}\n}}\n"
        )
    };
    s.tf.write("q.tfquery.hcl", &query("team-"));
    let out = s.tf.terraform(&["query", "-no-color"]).ok().all();
    let found = out.lines().filter(|l| l.contains("team-") && l.contains("(id")).count();
    assert_eq!(found, 111, "{out}");
    assert!(out.contains("team-000 (id"), "the oldest, long-lived cluster: {out}");
    // Every 50th listed cluster without a state: those the name filter keeps are read to learn their
    // state, and found like the rest; none is left out.
    s.server.put("/_local/faults", &json!({"null_list_state_every": 50}));
    s.reset_stats();
    let out = s.tf.terraform(&["query", "-no-color"]).ok().all();
    let found = out
        .lines()
        .filter(|l| l.contains("team-") && l.contains("(id") && l.contains(", ready)"))
        .count();
    assert_eq!(found, 111, "{out}");
    assert!(!flat(&out).contains("Clusters Listed Without a State"), "{out}");
    let (_, stats) = s.server.get("/_local/stats");
    let reads = stats["by_route"]["GET /api/v2/clusters/account/{}/id/{}"].as_u64().unwrap_or(0);
    assert!((1..=3).contains(&reads), "only the stateless `team-` clusters are read: {stats}");
}

/// `coiled_cluster_stop` sends its reason as Coiled's client does: cut to its first 6,000 characters.
#[test]
fn the_stop_action_cuts_its_reason_as_the_client_does() {
    let reason = "é".repeat(7000);
    let config = format!(
        "resource \"coiled_cluster\" \"c\" {{\n  name      = \"long\"\n  software  = \"dask\"\n  n_workers = 0\n}}\naction \"coiled_cluster_stop\" \"stop\" {{\n  config {{\n    cluster_id = coiled_cluster.c.id\n    reason     = \"{reason}\"\n  }}\n}}\n"
    );
    for cli in clis().iter().filter(|c| c.at_least(1, 14)) {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], &config);
        s.apply();
        s.tf.terraform(&[
            "apply",
            "-auto-approve",
            "-no-color",
            "-invoke=action.coiled_cluster_stop.stop",
        ])
        .ok();
        let (_, log) = s.server.get("/_local/requests");
        let stop =
            log.as_array().unwrap().iter().find(|r| r["method"] == "DELETE").unwrap().clone();
        let query = stop["query"].as_str().unwrap_or_default().to_string();
        let sent: String = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "reason")
            .map(|(_, v)| v.into_owned())
            .unwrap();
        assert_eq!(sent.chars().count(), 6000, "{}", &query[..200.min(query.len())]);
    }
}
