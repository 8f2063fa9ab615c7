//! `coiled_software_environment` (and its data source) through real Terraform CLIs against
//! `coiled-local`.

use serde_json::{Value, json};

use crate::common::{Scenario, clis, flat};

const ENV: &str = r#"
resource "coiled_software_environment" "etl" {
  name = "etl-env"
  conda {
    channels     = ["conda-forge"]
    dependencies = ["python=3.12", "dask>=2025.1"]
  }
  pip = ["xgboost>=2"]
}
output "env" {
  value = {
    for k in ["id", "name", "workspace", "spec_id", "build_id", "status", "architecture", "gpu_enabled"] :
    k => coiled_software_environment.etl[k]
  }
}
"#;

fn posts(s: &Scenario) -> Vec<Value> {
    let log = s.server.get("/_local/requests").1;
    log.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/api/v2/software-environment/account/alice")
        .cloned()
        .collect()
}

#[test]
fn builds_rebuilds_in_place_fails_with_its_log_imports_and_deletes() {
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "800ms", "--stop-delay", "0s"], ENV);
        s.apply();
        let env = s.output("env");
        assert_eq!(env["status"], "built", "{env}");
        assert_eq!((env["architecture"].as_str(), env["gpu_enabled"].as_bool()), (Some("x86_64"), Some(false)));
        let sent = posts(&s);
        assert_eq!(sent.len(), 1);
        let body = &sent[0]["body"];
        assert_eq!(
            body["raw_conda"],
            json!({"channels": ["https://conda.anaconda.org/conda-forge"], "dependencies": ["python=3.12", "dask>=2025.1", "pip"]})
        );
        assert_eq!(body["raw_pip"], json!(["--index-url https://pypi.org/simple", "xgboost>=2"]));
        assert_eq!(body["md5"].as_str().map(str::len), Some(32));
        assert_eq!(body["container"], Value::Null);
        s.assert_no_changes();

        // A new spec is a new build of the same environment, in place.
        s.set(&ENV.replace("xgboost>=2", "xgboost>=2.1"));
        let plan = s.plan_changes();
        assert!(plan.contains("update in-place") && !plan.contains("must be replaced"), "{plan}");
        s.apply();
        let rebuilt = s.output("env");
        assert_eq!(rebuilt["id"], env["id"], "the same environment");
        assert_ne!(rebuilt["spec_id"], env["spec_id"], "a new spec");
        assert_eq!(rebuilt["status"], "built");
        s.assert_no_changes();

        // A failing build fails the apply with the build's own reason and log, and the next plan
        // offers to build again.
        let failing = ENV.replace("\"dask>=2025.1\"", "\"dask>=2025.1\", \"coiled-local-fail-build\"");
        s.set(&failing);
        let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
        assert_ne!(out.code, 0, "{}", out.all());
        let text = flat(&out.all());
        assert!(text.contains("Software Environment Build Failed"), "{text}");
        assert!(text.contains("nothing provides requested coiled-local-fail-build"), "the reason: {text}");
        assert!(text.contains("conda: coiled-local-fail-build"), "the log's tail: {text}");
        let again = s.tf.terraform(&["plan", "-detailed-exitcode", "-no-color"]);
        assert_eq!(again.code, 2, "{}", again.all());
        assert!(flat(&again.all()).contains("Build Failed Before"), "{}", again.all());
        s.set(ENV);
        s.apply();
        assert_eq!(s.output("env")["status"], "built");
        s.assert_no_changes();

        // Import by name: nothing is rebuilt, and the plan after applying the import is empty.
        s.reimport("coiled_software_environment.etl", "alice/etl-env");
        let before = posts(&s).len();
        let plan = s.tf.terraform(&["plan", "-no-color"]).ok().stdout;
        assert!(!plan.contains("must be replaced"), "{plan}");
        s.apply();
        assert_eq!(posts(&s).len(), before, "adopting the configuration's spec builds nothing");
        s.assert_no_changes();

        s.tf.terraform(&["destroy", "-auto-approve", "-no-color"]).ok();
        let (code, _) = s.server.get("/api/v2/software-environment/account/alice/alias/name/etl-env");
        assert_eq!(code, 404, "deleted");
    }
}

/// A cluster names an environment whose name is known only at apply; the data source reads one.
#[test]
fn clusters_run_environments_named_at_apply() {
    let config = r#"
resource "coiled_software_environment" "base" {
  container = "ghcr.io/dask/dask:2025.1.0"
  name      = "base"
}
resource "coiled_software_environment" "derived" {
  name           = "derived-${coiled_software_environment.base.id}"
  python_version = "3.12"
  pip            = ["dask[complete]"]
}
resource "coiled_cluster" "c" {
  name      = "on-derived"
  software  = coiled_software_environment.derived.name
  n_workers = 1
}
data "coiled_software_environment" "read" {
  name       = coiled_software_environment.derived.name
  depends_on = [coiled_cluster.c]
}
output "read" { value = data.coiled_software_environment.read }
output "software" { value = coiled_cluster.c.software }
"#;
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "600ms", "--stop-delay", "0s"], config);
        let plan = s.tf.terraform(&["plan", "-no-color"]).ok().stdout;
        assert!(plan.contains("software") && plan.contains("(known after apply)"), "{plan}");
        s.apply();
        let name = s.output("software");
        assert!(name.as_str().unwrap().starts_with("derived-"), "{name}");
        let read = s.output("read");
        if crate::common::minimal_echo() {
            // The client reads no build from `GET …/alias/name/{name}`: a terse server reports none.
            assert_eq!(read["status"], Value::Null, "{read}");
        } else {
            assert_eq!(read["status"], "built", "{read}");
        }
        assert_eq!(read["name"], name);
        let pip_only = posts(&s).into_iter().find(|p| p["body"]["name"] == name).unwrap();
        assert_eq!(
            pip_only["body"]["raw_conda"]["dependencies"],
            json!(["python==3.12", "pip"]),
            "the stated Python, as the client pins the local one"
        );
        s.assert_no_changes();
    }
}

#[test]
fn bad_specs_are_refused_at_plan_with_their_attribute() {
    let cases = [
        (
            "both",
            r#"resource "coiled_software_environment" "x" {
  name      = "x"
  container = "ghcr.io/dask/dask:latest"
  conda { dependencies = ["numpy"] }
}"#,
            "does not support specifying both packages and a container",
        ),
        (
            "conda not a list",
            r#"resource "coiled_software_environment" "x" {
  name = "x"
  conda { dependencies = "numpy" }
}"#,
            "list of string required",
        ),
        (
            "pip only, no python",
            r#"resource "coiled_software_environment" "x" {
  name = "x"
  pip  = ["dask"]
}"#,
            "python_version",
        ),
        (
            "architecture",
            r#"resource "coiled_software_environment" "x" {
  name         = "x"
  container    = "ghcr.io/dask/dask:latest"
  architecture = "arm64"
}"#,
            "use \"x86_64\" or \"aarch64\"",
        ),
        (
            "upper-case name",
            r#"resource "coiled_software_environment" "x" {
  name      = "My-Env"
  container = "ghcr.io/dask/dask:latest"
}"#,
            "lower-case letters",
        ),
        (
            "nothing",
            r#"resource "coiled_software_environment" "x" {
  name = "x"
}"#,
            "Missing Software Spec",
        ),
    ];
    for cli in clis() {
        let s = Scenario::new(cli, &[], "");
        let cases: Vec<(&str, String, &str)> = cases.iter().map(|(n, c, e)| (*n, c.to_string(), *e)).collect();
        s.assert_refused(&cases);
    }
}

/// Resource identity (Terraform 1.12 and later): state records `{workspace, name}`, and an `import`
/// block given only that identity imports the environment; applying builds nothing.
#[test]
fn import_blocks_take_a_software_environment_identity() {
    for cli in clis().iter().filter(|c| c.at_least(1, 12)) {
        let s = Scenario::new(cli, &["--provision-delay", "0s"], ENV);
        s.apply();
        let state: Value = serde_json::from_str(&s.state_text()).unwrap();
        let identity = state["resources"][0]["instances"][0]["identity"].clone();
        assert_eq!(identity, json!({"workspace": "alice", "name": "etl-env"}), "{state}");
        s.tf.terraform(&["state", "rm", "coiled_software_environment.etl"]).ok();
        let import =
            "import {\n  to       = coiled_software_environment.etl\n  identity = { workspace = \"alice\", name = \"etl-env\" }\n}\n";
        s.set(&format!("{ENV}{import}"));
        let before = posts(&s).len();
        let plan = s.tf.terraform(&["plan", "-no-color"]).ok().stdout;
        assert!(plan.contains("1 to import") && !plan.contains("must be replaced"), "{plan}");
        s.apply();
        assert_eq!(posts(&s).len(), before, "nothing is built");
        s.set(ENV);
        s.assert_no_changes();
    }
}
