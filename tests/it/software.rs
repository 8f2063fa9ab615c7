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
        .filter(|r| {
            r["method"] == "POST" && r["path"] == "/api/v2/software-environment/account/alice"
        })
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
        assert_eq!(
            (env["architecture"].as_str(), env["gpu_enabled"].as_bool()),
            (Some("x86_64"), Some(false))
        );
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
        let failing =
            ENV.replace("\"dask>=2025.1\"", "\"dask>=2025.1\", \"coiled-local-fail-build\"");
        s.set(&failing);
        let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
        assert_ne!(out.code, 0, "{}", out.all());
        let text = flat(&out.all());
        assert!(text.contains("Software Environment Build Failed"), "{text}");
        assert!(
            text.contains("nothing provides requested coiled-local-fail-build"),
            "the reason: {text}"
        );
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
        let (code, _) =
            s.server.get("/api/v2/software-environment/account/alice/alias/name/etl-env");
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
        if crate::common::echo() != crate::common::Echo::Full {
            // The client reads no build from `GET …/alias/name/{name}`: a terse server need report none.
            assert!(read["status"].is_null() || read["status"] == "built", "{read}");
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
        match crate::common::echo() {
            // The data source shows each read's answer, which may leave out what the client does not read.
            crate::common::Echo::Varied => s.assert_no_resource_changes(),
            _ => s.assert_no_changes(),
        }
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
            "python beside conda",
            r#"resource "coiled_software_environment" "x" {
  name           = "x"
  python_version = "3.12"
  conda {
    dependencies = ["python=3.11", "dask"]
  }
}"#,
            "Python Version Set With Conda",
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
        let cases: Vec<(&str, String, &str)> =
            cases.iter().map(|(n, c, e)| (*n, c.to_string(), *e)).collect();
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
        let import = "import {\n  to       = coiled_software_environment.etl\n  identity = { workspace = \"alice\", name = \"etl-env\" }\n}\n";
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

/// A colleague's environment, made through the API as Coiled's client makes one.
fn colleague_builds(s: &Scenario, name: &str, image: &str) -> Value {
    let (code, alias) = s.server.post(
        "/api/v2/software-environment/account/alice",
        &json!({"name": name, "container": image, "use_entrypoint": true}),
    );
    assert!(code < 300, "{code}: {alias}");
    alias
}

/// The environment `name` as the server holds it now: its alias id and latest spec id.
fn held(s: &Scenario, name: &str) -> (u16, Value, Value) {
    let (code, alias) =
        s.server.get(&format!("/api/v2/software-environment/account/alice/alias/name/{name}"));
    (code, alias["id"].clone(), alias["latest_spec"]["id"].clone())
}

/// A same-named environment that this configuration did not make is never rebuilt, adopted or deleted:
/// not at create, not under `create_before_destroy`, and not when ours was deleted and made again by
/// someone else.
#[test]
fn same_named_environments_of_others_are_never_taken_over() {
    let team = ENV.replace("etl-env", "team-env");
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "200ms", "--stop-delay", "0s"], &team);
        colleague_builds(&s, "team-env", "ghcr.io/dask/dask:2025.1.0");
        let before = held(&s, "team-env");
        let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
        let text = flat(&out.all());
        assert_ne!(out.code, 0, "{text}");
        assert!(
            text.contains("Software Environment Already Exists") && text.contains("alice/team-env"),
            "{text}"
        );
        assert_eq!(held(&s, "team-env"), before, "not rebuilt");
        assert!(
            !s.tf.terraform(&["state", "list"]).ok().stdout.contains("team-env"),
            "not in state"
        );
        s.tf.terraform(&["destroy", "-auto-approve", "-no-color"]).ok();
        assert_eq!(held(&s, "team-env"), before, "not deleted");

        // Ours, deleted and made again by someone else: forgotten with a warning, never deleted. Only
        // the alias id tells the two apart, and a terse server sends none (Coiled's client reads none).
        if crate::common::echo() == crate::common::Echo::Full {
            s.set(ENV);
            s.apply();
            s.server.delete("/api/v2/software-environment/account/alice/alias/name/etl-env");
            colleague_builds(&s, "etl-env", "ghcr.io/dask/dask:2025.1.0");
            let theirs = held(&s, "etl-env");
            let plan = s.tf.terraform(&["plan", "-no-color"]);
            let text = flat(&plan.all());
            assert!(text.contains("Replaced Outside Terraform"), "{text}");
            let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
            assert!(
                flat(&out.all()).contains("Software Environment Already Exists"),
                "{}",
                out.all()
            );
            assert_eq!(held(&s, "etl-env"), theirs, "not rebuilt");

            // Ours again; deleted and made again between the refresh and the delete: left alone.
            s.server.delete("/api/v2/software-environment/account/alice/alias/name/etl-env");
            s.apply();
            s.assert_no_changes();
            s.server.delete("/api/v2/software-environment/account/alice/alias/name/etl-env");
            colleague_builds(&s, "etl-env", "ghcr.io/dask/dask:2025.2.0");
            let destroy =
                s.tf.terraform(&["destroy", "-auto-approve", "-no-color", "-refresh=false"])
                    .ok()
                    .all();
            assert!(flat(&destroy).contains("Software Environment Not Deleted"), "{destroy}");
            assert_eq!(held(&s, "etl-env").0, 200, "theirs is still there");
            s.server.delete("/api/v2/software-environment/account/alice/alias/name/etl-env");
        }

        // `-replace` under create_before_destroy with the same name: refused, the old one kept.
        s.set(&team.replace("team-env", "cbd-env"));
        s.apply();
        let kept = held(&s, "cbd-env");
        let cbd = team
            .replace("team-env", "cbd-env")
            .replace("pip = [", "lifecycle {\n    create_before_destroy = true\n  }\n  pip = [");
        s.set(&cbd);
        let out = s.tf.terraform(&[
            "apply",
            "-auto-approve",
            "-no-color",
            "-replace=coiled_software_environment.etl",
        ]);
        let text = flat(&out.all());
        assert_ne!(out.code, 0, "{text}");
        assert!(text.contains("create_before_destroy"), "{text}");
        assert_eq!(held(&s, "cbd-env"), kept, "the old one is kept as it was");
    }
}

/// Ctrl-C during a first build, and a failed first build, leave the environment in state untainted:
/// the next apply waits for the build (or keeps the finished one), or builds again in place.
#[test]
fn an_interrupted_or_failed_first_build_is_finished_in_place() {
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "6s", "--stop-delay", "0s"], ENV);
        let child = s.tf.spawn(&["apply", "-auto-approve", "-no-color"], &[]);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while posts(&s).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        crate::common::interrupt(&child);
        let (_, out) = crate::common::finish(child);
        assert!(out.contains("Build Not Finished"), "{out}");
        let state = s.tf.terraform(&["state", "list"]).ok().stdout;
        assert!(state.contains("coiled_software_environment.etl"), "{state}\n{out}");
        assert!(!s.state_text().contains("tainted"), "{}", s.state_text());
        let plan = s.plan_changes();
        assert!(plan.contains("update in-place") && !plan.contains("replaced"), "{plan}");
        s.apply();
        assert_eq!(posts(&s).len(), 1, "the build under way was waited for, not asked for again");
        assert_eq!(s.output("env")["status"], "built");
        s.assert_no_changes();
    }
    for cli in clis() {
        let failing =
            ENV.replace("\"dask>=2025.1\"", "\"dask>=2025.1\", \"coiled-local-fail-build\"");
        let s = Scenario::new(cli, &["--provision-delay", "200ms", "--stop-delay", "0s"], &failing);
        let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
        let text = flat(&out.all());
        assert!(
            text.contains("Software Environment Build Failed") && text.contains("in place"),
            "{text}"
        );
        assert!(!s.state_text().contains("tainted"), "{}", s.state_text());
        let id = s.output("env")["id"].clone();
        s.set(ENV);
        let plan = s.plan_changes();
        assert!(plan.contains("update in-place") && !plan.contains("replaced"), "{plan}");
        s.apply();
        assert_eq!(s.output("env")["id"], id, "the same environment, built again");
        assert_eq!(s.output("env")["status"], "built");
    }
}

/// An imported environment whose configuration contradicts what it was built from (an image for one
/// built from packages) is built again in place as configured, with a warning, not silently taken as
/// configured; one that agrees is taken with no build. A terse server echoes no spec: the import is
/// taken as configured, with a warning that it could not be checked.
#[test]
fn an_import_checks_the_configuration_against_the_spec() {
    let image = "resource \"coiled_software_environment\" \"etl\" {\n  name      = \"etl-env\"\n  container = \"ghcr.io/dask/dask:latest\"\n}\n";
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "200ms", "--stop-delay", "0s"], ENV);
        s.apply();
        // The same configuration: no build.
        s.reimport("coiled_software_environment.etl", "alice/etl-env");
        let before = posts(&s).len();
        let plan = flat(&s.tf.terraform(&["plan", "-no-color"]).ok().all());
        assert!(!plan.contains("Differs"), "{plan}");
        s.apply();
        assert_eq!(posts(&s).len(), before, "nothing built for a matching configuration");
        s.assert_no_changes();
        // An image for an environment built from packages: built again, in place.
        s.set(image);
        s.reimport("coiled_software_environment.etl", "alice/etl-env");
        let plan = flat(&s.tf.terraform(&["plan", "-no-color"]).ok().all());
        match crate::common::echo() {
            crate::common::Echo::Terse => {
                assert!(plan.contains("Not Checked"), "{plan}");
                continue;
            }
            // The spec is reported or not: the import is checked, or said not to be.
            crate::common::Echo::Varied => {
                assert!(
                    plan.contains("Not Checked")
                        || plan.contains("Imported Software Environment Differs"),
                    "{plan}"
                );
                continue;
            }
            crate::common::Echo::Full => {}
        }
        assert!(
            plan.contains("Imported Software Environment Differs") && plan.contains("container"),
            "{plan}"
        );
        assert!(plan.contains("update in-place") && !plan.contains("replaced"), "{plan}");
        s.apply();
        let sent = posts(&s);
        assert_eq!(sent.len(), before + 1, "built once, as configured");
        assert_eq!(sent.last().unwrap()["body"]["container"], "ghcr.io/dask/dask:latest");
        s.assert_no_changes();
    }
}

/// A password in a `pip` index URL (the reason `pip` is sensitive) shows nowhere: not in a failed
/// build's diagnostic, which quotes the build's log, nor in the trace log, nor in what the server
/// records; the log still shows the line, with the password hidden as pip hides it.
#[test]
fn a_pip_index_password_never_shows() {
    let config = r#"
resource "coiled_software_environment" "private" {
  name           = "private-index"
  python_version = "3.12"
  pip            = ["--extra-index-url https://bob:PIP-SECRET-1@pypi.example/simple", "coiled-local-fail-build"]
}
"#;
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "300ms"], config);
        let args = ["apply", "-auto-approve", "-no-color"];
        let out = s.tf.terraform_env(&args, &[("TF_LOG", "trace")]);
        let text = flat(&out.all());
        assert!(text.contains("Software Environment Build Failed"), "{text}");
        assert!(text.contains("https://bob:****@pypi.example/simple"), "the log's line: {text}");
        let recorded = s.server.get("/_local/requests").1.to_string();
        for (what, shown) in [("terraform", &text), ("the server's record", &recorded)] {
            assert!(!shown.contains("PIP-SECRET-1"), "{what} ({}): {shown}", cli.version);
        }
    }
}
