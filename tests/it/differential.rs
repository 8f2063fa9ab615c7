//! The provider against the public `coiled` client (1.135.6) with the same arguments: both talk to one
//! `coiled-local`, whose request log (`/_local/requests`) shows what each sent. The update-options
//! `data` must be the same, and so must the cluster create body, key by key, except the differences
//! `docs/wire-ledger.md` lists with their reasons.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use crate::common::{Scenario, clis};

const BACKEND_OPTIONS: &str = r#"
resource "coiled_backend_options" "team" {
  backend               = "aws"
  region                = "us-west-2"
  aws_access_key_id     = "AKIAEXAMPLE"
  aws_secret_access_key = "SECRET-SENTINEL-DIFF"
  ingress {
    ports = [8786, 8787]
    cidr  = "10.1.0.0/16"
  }
  ingress {
    ports = [8786]
    cidr  = "10.2.0.0/16"
  }
}
"#;

const CLUSTER: &str = r#"
resource "coiled_cluster" "diff" {
  name                    = "diff"
  n_workers               = 2
  software                = "my-env"
  worker_vm_types         = ["m6i.large"]
  scheduler_vm_types      = ["m6i.xlarge"]
  tags                    = { team = "data", empty = "", cost = "42" }
  idle_timeout            = "2 hours"
  use_scheduler_public_ip = false
  backend_options {
    region = "us-west-2"
    ingress {
      ports = [8786]
      cidr  = "10.1.0.0/16"
    }
  }
}
"#;

/// Runs one step of `tests/python/differential.py` (its name, then its arguments, separated by spaces)
/// against the scenario's server.
fn python(bin: &Path, s: &Scenario, step: &str, extra: &[(&str, &str)]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/python/differential.py");
    let home = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(bin.join("python"));
    cmd.arg(&script)
        .args(step.split(' '))
        .env("DASK_COILED__SERVER", &s.server.url)
        .env("DASK_COILED__TOKEN", &s.server.token)
        .env("HOME", home.path());
    for k in [
        "DASK_COILED__WORKSPACE",
        "DASK_COILED__ACCOUNT",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_PROFILE",
    ] {
        cmd.env_remove(k);
    }
    cmd.envs(extra.iter().copied());
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "python step {step}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The recorded requests since the last clear, then clears them.
fn take_requests(s: &Scenario) -> Vec<Value> {
    let (_, log) = s.server.get("/_local/requests");
    s.server.delete("/_local/requests");
    log.as_array().cloned().unwrap_or_default()
}

fn update_options_data(log: &[Value]) -> Value {
    let sent: Vec<&Value> = log
        .iter()
        .filter(|r| r["method"] == "WS" && r["body"]["type"] == "update_options")
        .collect();
    assert_eq!(sent.len(), 1, "one update_options message: {log:?}");
    sent[0]["body"]["data"].clone()
}

fn create_body(log: &[Value]) -> Value {
    let sent: Vec<&Value> = log
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/api/v2/clusters/account/alice/")
        .collect();
    assert_eq!(sent.len(), 1, "one create: {log:?}");
    sent[0]["body"].clone()
}

/// The ledger's list of keys the provider's create body leaves different from the client's, each with
/// its reason (`## Differences from the client`).
fn listed_differences() -> BTreeMap<String, String> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/wire-ledger.md"))
            .unwrap();
    let section = text
        .split("## Differences from the client")
        .nth(1)
        .expect("a Differences from the client section");
    let section = section.split("\n## ").next().unwrap_or_default();
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let key = l.split('`').nth(1).unwrap_or_default().to_string();
            let reason = l.rsplit('|').nth(1).unwrap_or_default().trim().to_string();
            assert!(reason.len() > 20, "{key}: give the reason");
            (key, reason)
        })
        .collect()
}

/// Every leaf of a Dask configuration object, dotted keys expanded, `_` read as `-`.
fn leaves(v: &Value, prefix: &str, out: &mut BTreeMap<String, Value>) {
    match v.as_object() {
        Some(map) if !map.is_empty() => {
            for (k, sub) in map {
                let k = k.replace('_', "-");
                leaves(sub, &if prefix.is_empty() { k } else { format!("{prefix}.{k}") }, out);
            }
        }
        _ => {
            out.insert(prefix.to_string(), v.clone());
        }
    }
}

/// A scenario on the newest CLI whose server has the software environment `my-env` and gives
/// `overrides` (written in `dir`) as the workspace's Dask configuration.
fn with_workspace_config(dir: &Path, overrides: &Value) -> Scenario {
    let path = dir.join("overrides.json");
    std::fs::write(&path, overrides.to_string()).unwrap();
    let args = [
        "--provision-delay",
        "0s",
        "--stop-delay",
        "0s",
        "--software-env",
        "my-env",
        "--dask-config-overrides",
        path.to_str().unwrap(),
    ];
    Scenario::new(clis().last().unwrap(), &args, "")
}

#[test]
fn the_provider_sends_what_the_coiled_client_sends() {
    let Some(bin) = crate::python_client::venv() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = with_workspace_config(
        dir.path(),
        &json!({"coiled.tags": {"org": "platform"}, "distributed.scheduler.allowed-failures": 5}),
    );

    take_requests(&s);
    python(
        &bin,
        &s,
        "backend-options",
        &[("AWS_ENDPOINT_URL_STS", &s.server.url), ("AWS_DEFAULT_REGION", "us-east-1")],
    );
    let client = update_options_data(&take_requests(&s));
    s.set(BACKEND_OPTIONS);
    s.apply();
    let provider = update_options_data(&take_requests(&s));
    assert_eq!(provider, client, "update_options data differs from coiled.set_backend_options");

    python(&bin, &s, "cluster", &[]);
    let client = create_body(&take_requests(&s));
    s.set(&format!("{BACKEND_OPTIONS}{CLUSTER}"));
    s.apply();
    let provider = create_body(&take_requests(&s));
    let (client, provider) = (client.as_object().unwrap(), provider.as_object().unwrap());
    assert_same_create(client, provider);
    // The one listed difference with a rule: the provider's dask_config is the workspace's overrides,
    // which the client's whole local configuration includes.
    let (mut theirs, mut ours) = (BTreeMap::new(), BTreeMap::new());
    leaves(&client["dask_config"], "", &mut theirs);
    leaves(&provider["dask_config"], "", &mut ours);
    assert!(!ours.is_empty());
    for (k, v) in &ours {
        assert_eq!(theirs.get(k), Some(v), "override {k} is not in the client's dask_config");
    }
    assert_eq!(
        provider["tags"]["org"], "platform",
        "override tags merged as the client merges them"
    );
}

/// GCP options for every combination of a region and a zone given or not (a zone in full or as one
/// letter): the provider sends what `coiled.set_backend_options(backend="gcp", gcp_region=…, zone=…,
/// gcp_zone=…)` sends, the region and zone the client derives included, and plans nothing after.
#[test]
fn gcp_options_are_sent_as_the_client_sends_them() {
    let Some(bin) = crate::python_client::venv() else { return };
    let s = Scenario::new(clis().last().unwrap(), &["--provision-delay", "0s"], "");
    let key = r#"{"type": "service_account", "project_id": "diff-proj", "private_key_id": "x", "client_email": "a@b"}"#;
    for region in [None, Some("us-east1"), Some("europe-west1")] {
        for zone in [None, Some("b"), Some("us-central1-f")] {
            // Terraform first: after the client's write, the refresh would find nothing left to send.
            let line = |k: &str, v: Option<&str>| {
                v.map(|v| format!("  {k} = \"{v}\"\n")).unwrap_or_default()
            };
            s.set(&format!(
                "resource \"coiled_backend_options\" \"gcp\" {{\n  backend = \"gcp\"\n  gcp_service_account_json = {key:?}\n  gcp_project_id = \"diff-proj\"\n{}{}  ingress {{\n    ports = [443]\n    cidr  = \"10.1.0.0/16\"\n  }}\n}}\n",
                line("region", region),
                line("zone", zone)
            ));
            take_requests(&s);
            s.apply();
            let provider = update_options_data(&take_requests(&s));
            s.assert_no_changes();
            let arg = |v: Option<&str>| v.unwrap_or("-").to_string();
            python(&bin, &s, &format!("gcp-options {} {}", arg(region), arg(zone)), &[]);
            let client = update_options_data(&take_requests(&s));
            assert_eq!(provider, client, "region {region:?}, zone {zone:?}");
        }
    }
}

/// Two create bodies agree key for key, but for the differences the ledger lists (each of which must
/// still differ).
fn assert_same_create(
    client: &serde_json::Map<String, Value>,
    provider: &serde_json::Map<String, Value>,
) {
    let differences = listed_differences();
    let mut differing: Vec<&String> = client
        .keys()
        .chain(provider.keys())
        .filter(|k| client.get(*k) != provider.get(*k))
        .collect();
    differing.sort();
    differing.dedup();
    let unlisted: Vec<_> =
        differing.iter().filter(|k| !differences.contains_key(k.as_str())).collect();
    assert!(
        unlisted.is_empty(),
        "create body keys that differ from coiled.Cluster's: {unlisted:?}\nclient: {client:?}\nprovider: {provider:?}"
    );
    let stale: Vec<_> = differences.keys().filter(|k| !differing.contains(k)).collect();
    assert!(
        stale.is_empty(),
        "docs/wire-ledger.md lists differences that no longer exist: {stale:?}"
    );
}

const SOFTWARE: &str = r#"
resource "coiled_software_environment" "spec" {
  name = "spec-env"
  conda {
    channels     = ["conda-forge"]
    dependencies = ["python=3.11", "numpy>=1.26", "conda-forge::xarray"]
  }
  pip = ["xgboost>=2", "--extra-index-url https://pypi.example.com/simple"]
}
resource "coiled_software_environment" "image" {
  name        = "img-env"
  container   = "ghcr.io/dask/dask:latest"
  gpu_enabled = true
}
resource "coiled_software_environment" "arm" {
  name             = "arm-env"
  conda {
    dependencies = ["dask"]
  }
  architecture     = "aarch64"
  use_uv_installer = false
}
"#;

const OPTIONS: &str = r#"
resource "coiled_cluster" "opts" {
  name                    = "opts"
  n_workers               = 1
  software                = "my-env"
  spot_policy             = "spot_with_fallback"
  scheduler_port          = 8786
  allow_ingress_from      = "10.1.0.0/16"
  cluster_timeout         = "8 hours"
  worker_disk_size        = 120
  use_dashboard_https     = false
  use_scheduler_public_ip = false
}
resource "coiled_cluster" "arm" {
  name        = "on-arm"
  n_workers   = 1
  software    = "my-env"
  arm         = true
  spot_policy = "on-demand"
}
"#;

/// The software environment requests, by name.
fn software_bodies(log: &[Value]) -> BTreeMap<String, Value> {
    log.iter()
        .filter(|r| {
            r["method"] == "POST" && r["path"] == "/api/v2/software-environment/account/alice"
        })
        .map(|r| (r["body"]["name"].as_str().unwrap_or_default().to_string(), r["body"].clone()))
        .collect()
}

/// The cluster create bodies, by name.
fn create_bodies(log: &[Value]) -> BTreeMap<String, Value> {
    log.iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/api/v2/clusters/account/alice/")
        .map(|r| (r["body"]["name"].as_str().unwrap_or_default().to_string(), r["body"].clone()))
        .collect()
}

#[test]
fn software_environments_and_cluster_options_are_sent_as_the_client_sends_them() {
    let Some(bin) = crate::python_client::venv() else { return };
    let cli = clis().last().unwrap();
    let s = Scenario::new(
        cli,
        &["--provision-delay", "0s", "--stop-delay", "0s", "--software-env", "my-env"],
        "",
    );
    let backend = BACKEND_OPTIONS.replace("SECRET-SENTINEL-DIFF", "SECRET-SENTINEL-OPTS");
    s.set(&backend);
    s.apply();
    take_requests(&s);

    python(&bin, &s, "software", &[]);
    let client = software_bodies(&take_requests(&s));
    // The provider never takes over what the client made: the same names are free again first.
    for name in client.keys() {
        s.server.delete(&format!("/api/v2/software-environment/account/alice/alias/name/{name}"));
    }
    s.set(&format!("{backend}{SOFTWARE}"));
    s.apply();
    let provider = software_bodies(&take_requests(&s));
    assert_eq!(client.len(), 3, "{client:?}");
    for (name, body) in &client {
        assert_eq!(
            provider.get(name),
            Some(body),
            "software environment {name}: the provider's request differs from the client's"
        );
    }

    python(&bin, &s, "cluster-options", &[]);
    let client = create_bodies(&take_requests(&s));
    s.set(&format!("{backend}{SOFTWARE}{OPTIONS}"));
    s.apply();
    let provider = create_bodies(&take_requests(&s));
    assert_eq!(client.len(), 2, "{client:?}");
    for (name, body) in &client {
        let theirs = body.as_object().unwrap();
        let ours = provider
            .get(name)
            .and_then(Value::as_object)
            .unwrap_or_else(|| panic!("no create of {name}"));
        assert_same_create(theirs, ours);
    }
}

/// Arguments left out take the workspace's Dask configuration, as the client reads it from the
/// server before it builds the request: the scheduler's port (and the firewall it opens), the
/// dashboard's HTTPS and the scheduler's public address.
#[test]
fn the_workspace_configuration_steers_the_provider_as_the_client() {
    let Some(bin) = crate::python_client::venv() else { return };
    let dir = tempfile::tempdir().unwrap();
    let s = with_workspace_config(
        dir.path(),
        &json!({
            "coiled.scheduler_port": 8786,
            "coiled.use_dashboard_https": false,
            "coiled.use_scheduler_public_ip": false,
        }),
    );
    take_requests(&s);
    python(&bin, &s, "workspace-config", &[]);
    let client = create_bodies(&take_requests(&s));
    s.set(
        r#"
resource "coiled_cluster" "net" {
  name               = "ws-net"
  n_workers          = 1
  software           = "my-env"
  allow_ingress_from = "10.1.0.0/16"
}
resource "coiled_cluster" "plain" {
  name      = "ws-plain"
  n_workers = 1
  software  = "my-env"
}
"#,
    );
    s.apply();
    let provider = create_bodies(&take_requests(&s));
    assert_eq!(client.len(), 2, "{client:?}");
    for (name, body) in &client {
        let ours = provider
            .get(name)
            .and_then(Value::as_object)
            .unwrap_or_else(|| panic!("no create of {name}"));
        assert_same_create(body.as_object().unwrap(), ours);
    }
    s.assert_no_changes();
}
