//! The schema-driven tier: for every argument of every resource, as its model declares it, a create
//! with it set, a change of it (which must replace, update in place, change state only, or plan
//! nothing, as declared), an import of what was made and the plans after it, and a bad value refused
//! at validation with the argument's path. In process (the provider's service and `coiled-local`
//! called directly, no Terraform), so it covers every argument in seconds.
//!
//! Each resource's table gives, per argument, an overlay of the base configuration with it set, one
//! with it changed and, where the argument has one, a bad value. The table must name exactly the
//! schema's arguments (top-level ones, blocks, and the arguments inside a single block other than
//! `timeouts`): an argument added to a model fails here until it has its row.

use serde_json::{Value as Json, json};
use tfplugin::schema::{AfterImport, Block, Nesting, Schema};
use tfplugin::value::{self, Value};

use crate::common::in_process::{InProcess, Stored};

/// One argument's row.
struct Row {
    /// The argument: `name`, or `block.name` inside a single block.
    key: &'static str,
    /// Merged onto the base configuration (a null removes a key): the argument set.
    set: Json,
    /// The same, the argument changed.
    changed: Json,
    /// A bad value, merged onto the base, and the text its error must hold.
    bad: Option<(Json, &'static str)>,
}

fn row(key: &'static str, set: Json, changed: Json) -> Row {
    Row { key, set, changed, bad: None }
}

fn bad(key: &'static str, set: Json, changed: Json, bad: Json, expect: &'static str) -> Row {
    Row { key, set, changed, bad: Some((bad, expect)) }
}

/// What a change of an argument does, as the schema declares it.
#[derive(Debug, PartialEq)]
enum Change {
    Replaces,
    InPlace,
    StateOnly,
    /// A write-only argument: never in a plan, so its change alone plans nothing.
    Nothing,
}

/// The declared effect of a change of `key`, and what an import learns of it.
fn declared(schema: &Schema, key: &str) -> (Change, AfterImport) {
    let block = &schema.block;
    let (outer, inner) = key.split_once('.').map_or((key, None), |(o, i)| (o, Some(i)));
    if let Some(nested) = block.block(outer) {
        let replaces = nested.requires_replace;
        let state_only = nested.state_only;
        let change = if replaces {
            Change::Replaces
        } else if state_only {
            Change::StateOnly
        } else {
            let attr = inner.and_then(|i| nested.block.attribute(i));
            if attr.is_some_and(|a| a.requires_replace) { Change::Replaces } else { Change::InPlace }
        };
        return (change, nested.after_import);
    }
    let a = block.attribute(key).unwrap_or_else(|| panic!("{key} is not in the schema"));
    let change = if a.requires_replace {
        Change::Replaces
    } else if a.write_only {
        Change::Nothing
    } else if a.state_only {
        Change::StateOnly
    } else {
        Change::InPlace
    };
    (change, a.after_import)
}

/// The arguments a table must name.
fn arguments(block: &Block) -> Vec<String> {
    let mut keys: Vec<String> = block.attributes.iter().filter(|a| a.configurable()).map(|a| a.name.to_string()).collect();
    for b in &block.blocks {
        keys.push(b.name.to_string());
        if b.nesting == Nesting::Single && !b.state_only {
            keys.extend(b.block.attributes.iter().filter(|a| a.configurable()).map(|a| format!("{}.{}", b.name, a.name)));
            keys.extend(b.block.blocks.iter().map(|inner| format!("{}.{}", b.name, inner.name)));
        }
    }
    keys.sort();
    keys
}

/// `base` with `overlay` merged in, one level deep for objects (a block's arguments), nulls removing.
fn merged(base: &Json, overlay: &Json) -> Json {
    let mut out = base.as_object().cloned().unwrap_or_default();
    for (k, v) in overlay.as_object().into_iter().flatten() {
        match (out.get_mut(k), v) {
            (_, Json::Null) => {
                out.remove(k);
            }
            (Some(Json::Object(inner)), Json::Object(more)) => inner.extend(more.clone()),
            _ => {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    Json::Object(out)
}

/// A configuration value of the resource's type from JSON: blocks of set nesting become sets.
fn config_value(schema: &Schema, json: &Json) -> Value {
    value::from_json(json, &schema.object_type()).unwrap_or_else(|e| panic!("{json}: {e:?}"))
}

fn none() -> Stored {
    Stored { state: Value::Null, private: Vec::new() }
}

/// Runs every row of `table` on `type_name`; `import_id` names what a state holds for an import.
async fn try_every_argument(type_name: &str, base: Json, table: Vec<Row>, import_id: fn(&Value) -> String) {
    let p = InProcess::start().await;
    let schema = p.schema(type_name).clone();
    let mut named: Vec<String> = table.iter().map(|r| r.key.to_string()).collect();
    named.sort();
    assert_eq!(named, arguments(&schema.block), "{type_name}: the table must name exactly the schema's arguments");
    for r in &table {
        let at = format!("{type_name}.{}", r.key);
        let set = config_value(&schema, &merged(&base, &r.set));
        let changed = config_value(&schema, &merged(&base, &r.changed));
        // Created with it set; the plan right after is empty.
        let before = p.log_len();
        let made = p.converge(type_name, &none(), &set).await;
        let sent_for_set = p.sent_since(before);
        let again = p.plan(type_name, &made, &set).await;
        assert!(again.replaces.is_empty() && again.state.same_as(&made.state), "{at}: the plan after the create is not empty");
        // Changed: as declared.
        let (change, after_import) = declared(&schema, r.key);
        let plan = p.plan(type_name, &made, &changed).await;
        assert!(!plan.diags.iter().any(|d| d.error), "{at}: the change is refused: {:?}", plan.diags);
        let replaces = !plan.replaces.is_empty();
        let differs = !plan.state.same_as(&made.state);
        let before = p.log_len();
        let now = if replaces {
            // As Terraform replaces: the old one destroyed, then a create planned from nothing,
            // which sends what the argument changed.
            p.destroy(type_name, &made).await;
            let from = p.log_len();
            let now = p.converge(type_name, &none(), &changed).await;
            assert_ne!(p.sent_since(from), sent_for_set, "{at}: replaced, yet the create sends the same requests");
            now
        } else {
            let (now, found) = p.apply(type_name, &made, &plan, &changed).await;
            assert!(!found.iter().any(|d| d.error), "{at}: the change's apply failed: {found:?}");
            now
        };
        let writes = p.writes_since(before);
        match change {
            Change::Replaces => assert!(replaces, "{at}: declared to replace, planned {:?}", plan.replaces),
            Change::InPlace => assert!(differs && !replaces && !writes.is_empty(), "{at}: declared in place: {writes:?}"),
            Change::StateOnly => assert!(differs && !replaces && writes.is_empty(), "{at}: declared state only: {writes:?}"),
            Change::Nothing => assert!(!differs && !replaces, "{at}: write-only, yet the plan changes"),
        }
        let settled = p.plan(type_name, &now, &changed).await;
        assert!(settled.replaces.is_empty() && settled.state.same_as(&now.state), "{at}: the plan after the change is not empty");
        // Imported: the first plan never replaces, its apply writes nothing unless the argument
        // is one an import cannot read from Coiled, and the plan after it is empty.
        let (imported, found) = p.import(type_name, &import_id(&now.state)).await;
        assert!(!found.iter().any(|d| d.error) && !imported.state.is_null(), "{at}: import: {found:?}");
        let first = p.plan(type_name, &imported, &changed).await;
        assert!(first.replaces.is_empty(), "{at}: the plan after an import replaces {:?}", first.replaces);
        let before = p.log_len();
        let (adopted, _) = p.apply(type_name, &imported, &first, &changed).await;
        let writes = p.writes_since(before);
        // What Coiled never reports is sent again by the first apply after an import.
        let sent_again = schema
            .block
            .attributes
            .iter()
            .any(|a| a.after_import == AfterImport::SentAgain && changed.get(a.name).is_some_and(|v| !v.is_null()));
        assert!(writes.is_empty() || sent_again, "{at} ({after_import:?}): the apply after an import wrote {writes:?}");
        let last = p.plan(type_name, &adopted, &changed).await;
        assert!(last.replaces.is_empty() && last.state.same_as(&adopted.state), "{at}: the second plan after an import is not empty");
        p.destroy(type_name, &adopted).await;
        // A bad value: refused at validation, at the argument's path.
        if let Some((value, expect)) = &r.bad {
            let config = config_value(&schema, &merged(&base, value));
            let found = p.validate(type_name, &config).await;
            assert!(
                found.iter().any(|d| d.error && d.path.starts_with(r.key) && d.text.contains(expect)),
                "{at}: {value} not refused at {} with {expect:?}: {found:?}",
                r.key
            );
        }
    }
}

fn cluster_id(state: &Value) -> String {
    format!("{}/{}", state.get("workspace").and_then(Value::as_str).unwrap(), state.get("id").and_then(Value::as_str).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cluster_argument_behaves_as_declared() {
    let rows = vec![
        bad(
            "name",
            json!({"name": "declared-a"}),
            json!({"name": "declared-b"}),
            json!({"name": "not a name!"}),
            "not a valid cluster name",
        ),
        bad("workspace", json!({"workspace": "alice"}), json!({"workspace": "bob"}), json!({"workspace": "a/b"}), "not a workspace"),
        bad("n_workers", json!({"n_workers": 1}), json!({"n_workers": 2}), json!({"n_workers": -1}), "from 0 to 1000"),
        row("worker_vm_types", json!({"worker_vm_types": ["m6i.xlarge"]}), json!({"worker_vm_types": ["m6i.large"]})),
        row("scheduler_vm_types", json!({"scheduler_vm_types": ["m6i.xlarge"]}), json!({"scheduler_vm_types": ["m6i.large"]})),
        bad(
            "worker_disk_size",
            json!({"worker_disk_size": 100}),
            json!({"worker_disk_size": 200}),
            json!({"worker_disk_size": 0}),
            "at least 1 GiB",
        ),
        row("software", json!({"software": "dask"}), json!({"software": "other-env"})),
        row(
            "container",
            json!({"software": null, "container": "ghcr.io/dask/dask:latest"}),
            json!({"software": null, "container": "ghcr.io/dask/dask:2025.1.0"}),
        ),
        row("tags", json!({"tags": {"team": "a"}}), json!({"tags": {"team": "b"}})),
        row("environ", json!({"environ": {"A": "1"}}), json!({"environ": {"B": "1"}})),
        bad(
            "idle_timeout",
            json!({"idle_timeout": "2 hours"}),
            json!({"idle_timeout": "3 hours"}),
            json!({"idle_timeout": "forever"}),
            "forever",
        ),
        bad(
            "cluster_timeout",
            json!({"cluster_timeout": "8 hours"}),
            json!({"cluster_timeout": "9 hours"}),
            json!({"cluster_timeout": "forever"}),
            "forever",
        ),
        bad(
            "spot_policy",
            json!({"spot_policy": "spot"}),
            json!({"spot_policy": "on-demand"}),
            json!({"spot_policy": "cheap"}),
            "valid options",
        ),
        row("arm", json!({"arm": true}), json!({"arm": false})),
        bad(
            "scheduler_port",
            json!({"scheduler_port": 8786}),
            json!({"scheduler_port": 8787}),
            json!({"scheduler_port": 0}),
            "from 1 to 65535",
        ),
        bad(
            "allow_ingress_from",
            json!({"allow_ingress_from": "10.1.0.0/16"}),
            json!({"allow_ingress_from": "10.2.0.0/16"}),
            json!({"allow_ingress_from": "me"}),
            "must not depend on where it runs",
        ),
        row("use_dashboard_https", json!({"use_dashboard_https": false}), json!({"use_dashboard_https": true})),
        bad(
            "when_stopped",
            json!({"when_stopped": "keep"}),
            json!({"when_stopped": "recreate"}),
            json!({"when_stopped": "maybe"}),
            "\"keep\"",
        ),
        row("use_scheduler_public_ip", json!({"use_scheduler_public_ip": false}), json!({"use_scheduler_public_ip": true})),
        bad("wait_for_workers", json!({"wait_for_workers": 0.5}), json!({"wait_for_workers": 1}), json!({"wait_for_workers": 2}), "from 0"),
        row(
            "acknowledge_world_open_ingress",
            json!({"acknowledge_world_open_ingress": true}),
            json!({"acknowledge_world_open_ingress": false}),
        ),
        row("backend_options", json!({"backend_options": {"region": "us-west-2"}}), json!({"backend_options": {"region": "us-east-2"}})),
        row(
            "backend_options.region",
            json!({"backend_options": {"region": "us-west-2"}}),
            json!({"backend_options": {"region": "us-east-2"}}),
        ),
        row("backend_options.zone", json!({"backend_options": {"zone": "us-east-1a"}}), json!({"backend_options": {"zone": "us-east-1b"}})),
        row("backend_options.spot", json!({"backend_options": {"spot": true}}), json!({"backend_options": {"spot": false}})),
        bad(
            "backend_options.ingress",
            json!({"backend_options": {"ingress": [{"ports": [443], "cidr": "10.1.0.0/16"}]}}),
            json!({"backend_options": {"ingress": [{"ports": [443], "cidr": "10.2.0.0/16"}]}}),
            json!({"backend_options": {"ingress": [{"ports": [443], "cidr": "10.1.0.0/33"}]}}),
            "CIDR",
        ),
        bad(
            "timeouts",
            json!({"timeouts": {"create": "30m"}}),
            json!({"timeouts": {"create": "40m"}}),
            json!({"timeouts": {"create": "forever"}}),
            "Timeout",
        ),
    ];
    try_every_argument("coiled_cluster", json!({"name": "declared", "software": "dask", "n_workers": 0}), rows, cluster_id).await;
}

fn software_id(state: &Value) -> String {
    format!("{}/{}", state.get("workspace").and_then(Value::as_str).unwrap(), state.get("name").and_then(Value::as_str).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_software_environment_argument_behaves_as_declared() {
    let packages = json!({"container": null, "pip": ["dask"], "python_version": "3.12"});
    let with = |overlay: Json| merged(&packages, &overlay);
    let rows = vec![
        bad("name", json!({"name": "sw-a"}), json!({"name": "sw-b"}), json!({"name": "Not A Name"}), "name"),
        bad("workspace", json!({"workspace": "alice"}), json!({"workspace": "bob"}), json!({"workspace": "a/b"}), "workspace"),
        row("container", json!({"container": "ghcr.io/dask/dask:latest"}), json!({"container": "ghcr.io/dask/dask:2025.1.0"})),
        row(
            "conda",
            json!({"container": null, "conda": {"dependencies": ["dask"]}}),
            json!({"container": null, "conda": {"dependencies": ["dask", "numpy"]}}),
        ),
        row(
            "conda.channels",
            json!({"container": null, "conda": {"channels": ["conda-forge"], "dependencies": ["dask"]}}),
            json!({"container": null, "conda": {"channels": ["defaults"], "dependencies": ["dask"]}}),
        ),
        row(
            "conda.dependencies",
            json!({"container": null, "conda": {"dependencies": ["dask"]}}),
            json!({"container": null, "conda": {"dependencies": ["dask=2025.1"]}}),
        ),
        row("pip", with(json!({})), with(json!({"pip": ["dask", "numpy"]}))),
        row("python_version", with(json!({"python_version": "3.12"})), with(json!({"python_version": "3.11"}))),
        row("gpu_enabled", json!({"gpu_enabled": true}), json!({"gpu_enabled": false})),
        bad(
            "architecture",
            json!({"architecture": "aarch64"}),
            json!({"architecture": "x86_64"}),
            json!({"architecture": "sparc"}),
            "sparc",
        ),
        row("use_entrypoint", json!({"use_entrypoint": false}), json!({"use_entrypoint": true})),
        row("region_name", json!({"region_name": "us-west-2"}), json!({"region_name": "us-east-2"})),
        row("use_uv_installer", with(json!({"use_uv_installer": false})), with(json!({"use_uv_installer": true}))),
        bad(
            "timeouts",
            json!({"timeouts": {"create": "30m"}}),
            json!({"timeouts": {"create": "40m"}}),
            json!({"timeouts": {"update": "0s"}}),
            "Timeout",
        ),
    ];
    let base = json!({"name": "declared-env", "container": "ghcr.io/dask/dask:latest"});
    try_every_argument("coiled_software_environment", base, rows, software_id).await;
}

fn workspace_id(state: &Value) -> String {
    state.get("workspace").and_then(Value::as_str).unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backend_options_argument_behaves_as_declared() {
    let key = |id: &str| {
        json!({"type": "service_account", "project_id": id, "private_key_id": "k", "private_key": "-----BEGIN PRIVATE KEY-----\nX\n-----END PRIVATE KEY-----\n", "client_email": format!("sa@{id}.iam.gserviceaccount.com")})
        .to_string()
    };
    let gcp = |overlay: Json| {
        let base =
            json!({"backend": "gcp", "aws_access_key_id": null, "aws_secret_access_key": null, "gcp_service_account_json": key("proj-a")});
        merged(&base, &overlay)
    };
    let write_only = |secret: &str, version: i64| json!({"aws_secret_access_key": null, "aws_secret_access_key_wo": secret, "aws_secret_access_key_wo_version": version});
    let gcp_write_only = |id: &str, version: i64| {
        gcp(
            json!({"gcp_service_account_json": null, "gcp_service_account_json_wo": key(id), "gcp_service_account_json_wo_version": version}),
        )
    };
    let rows = vec![
        bad("workspace", json!({"workspace": "alice"}), json!({"workspace": "bob"}), json!({"workspace": "a/b"}), "workspace"),
        bad("backend", json!({}), gcp(json!({})), json!({"backend": "azure"}), "azure"),
        row("region", json!({"region": "us-west-2"}), json!({"region": "us-east-2"})),
        row("zone", json!({"zone": "us-east-1a"}), json!({"zone": "us-east-1b"})),
        row("aws_access_key_id", json!({"aws_access_key_id": "AKIAONE"}), json!({"aws_access_key_id": "AKIATWO"})),
        row("aws_secret_access_key", json!({"aws_secret_access_key": "SECRET-ONE"}), json!({"aws_secret_access_key": "SECRET-TWO"})),
        row("aws_secret_access_key_wo", write_only("WO-ONE", 1), write_only("WO-TWO", 1)),
        row("aws_secret_access_key_wo_version", write_only("WO-ONE", 1), write_only("WO-ONE", 2)),
        row("gcp_project_id", gcp(json!({"gcp_project_id": "proj-a"})), gcp(json!({"gcp_project_id": "proj-b"}))),
        row("gcp_service_account_json", gcp(json!({})), gcp(json!({"gcp_service_account_json": key("proj-b")}))),
        row("gcp_service_account_json_wo", gcp_write_only("proj-a", 1), gcp_write_only("proj-b", 1)),
        row("gcp_service_account_json_wo_version", gcp_write_only("proj-a", 1), gcp_write_only("proj-a", 2)),
        row(
            "acknowledge_world_open_ingress",
            json!({"acknowledge_world_open_ingress": true}),
            json!({"acknowledge_world_open_ingress": false}),
        ),
        row("network", json!({"network": {"network_id": "vpc-1"}}), json!({"network": {"network_id": "vpc-2"}})),
        row("network.network_id", json!({"network": {"network_id": "vpc-1"}}), json!({"network": {"network_id": "vpc-2"}})),
        row(
            "network.scheduler_subnet_id",
            json!({"network": {"scheduler_subnet_id": "s-1"}}),
            json!({"network": {"scheduler_subnet_id": "s-2"}}),
        ),
        row("network.worker_subnet_id", json!({"network": {"worker_subnet_id": "w-1"}}), json!({"network": {"worker_subnet_id": "w-2"}})),
        row("network.firewall_id", json!({"network": {"firewall_id": "sg-1"}}), json!({"network": {"firewall_id": "sg-2"}})),
        bad(
            "ingress",
            json!({"ingress": [{"ports": [8786], "cidr": "10.1.0.0/16"}]}),
            json!({"ingress": [{"ports": [8786], "cidr": "10.2.0.0/16"}]}),
            json!({"ingress": [{"ports": [8786], "cidr": "10.1.0.0/33"}]}),
            "CIDR",
        ),
        bad(
            "timeouts",
            json!({"timeouts": {"create": "30m"}}),
            json!({"timeouts": {"create": "40m"}}),
            json!({"timeouts": {"create": "forever"}}),
            "Timeout",
        ),
    ];
    let base = json!({"backend": "aws", "aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "SECRET-SENTINEL-DECLARED"});
    try_every_argument("coiled_backend_options", base, rows, workspace_id).await;
}
