//! The schema-driven tier: for every argument of every resource, as its model declares it, a create
//! with it set, a change of it (which must replace, update in place, change state only, or plan
//! nothing, as declared), an import of what was made and the plans after it, a bad value refused
//! at validation with the argument's path, and a create planned with it unknown beside each other
//! argument, which must agree with the plan once it is known. In process (the provider's service and `coiled-local`
//! called directly, no Terraform), so it covers every argument in seconds.
//!
//! Each resource's table gives, per argument, an overlay of the base configuration with it set, one
//! with it changed and, where the argument has one, a bad value. The table must name exactly the
//! schema's arguments (top-level ones, blocks, and what a single block holds unless the block is
//! state only, as `timeouts` is): an argument added to a model fails here until it has its row.

use serde_json::Value as Json;
use tfplugin::schema::{AfterImport, Block, Nesting, Schema};
use tfplugin::value::{self, Value};

use crate::common::in_process::{InProcess, Stored, assert_conforms};

/// One argument's row: the argument (`name`, or `block.name` inside a single block); JSON merged
/// onto the base configuration (a null removes a key) with it set, and with it changed; and a bad
/// value, merged onto the base, with the text its error must hold.
type Row = (&'static str, &'static str, &'static str, Option<(&'static str, &'static str)>);

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
            if attr.is_some_and(|a| a.requires_replace) {
                Change::Replaces
            } else {
                Change::InPlace
            }
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
    let mut keys: Vec<String> =
        block.attributes.iter().filter(|a| a.configurable()).map(|a| a.name.to_string()).collect();
    for b in &block.blocks {
        keys.push(b.name.to_string());
        if b.nesting == Nesting::Single && !b.state_only {
            keys.extend(
                b.block
                    .attributes
                    .iter()
                    .filter(|a| a.configurable())
                    .map(|a| format!("{}.{}", b.name, a.name)),
            );
            keys.extend(b.block.blocks.iter().map(|inner| format!("{}.{}", b.name, inner.name)));
        }
    }
    keys.sort();
    keys
}

/// `base` with `overlay` (JSON text) merged in, one level deep for objects (a block's arguments),
/// nulls removing.
fn merged(base: &Json, overlay: &str) -> Json {
    let overlay: Json = serde_json::from_str(overlay).unwrap_or_else(|e| panic!("{overlay}: {e}"));
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
async fn try_every_argument(
    type_name: &str,
    base: &str,
    table: &[Row],
    import_id: fn(&Value) -> String,
) {
    let base: Json = serde_json::from_str(base).unwrap();
    let p = InProcess::start().await;
    let schema = p.schema(type_name).clone();
    let mut named: Vec<String> = table.iter().map(|r| r.0.to_string()).collect();
    named.sort();
    assert_eq!(
        named,
        arguments(&schema.block),
        "{type_name}: the table must name exactly the schema's arguments"
    );
    for &(key, set, changed, bad) in table {
        let at = format!("{type_name}.{key}");
        let set = config_value(&schema, &merged(&base, set));
        let changed = config_value(&schema, &merged(&base, changed));
        // Created with it set; the plan right after is empty.
        let before = p.log_len();
        let made = p.converge(type_name, &none(), &set).await;
        let sent_for_set = p.sent_since(before);
        let again = p.plan(type_name, &made, &set).await;
        assert!(
            again.replaces.is_empty() && again.state.same_as(&made.state),
            "{at}: the plan after the create is not empty"
        );
        // Changed: as declared.
        let (change, after_import) = declared(&schema, key);
        let plan = p.plan(type_name, &made, &changed).await;
        assert!(
            !plan.diags.iter().any(|d| d.error),
            "{at}: the change is refused: {:?}",
            plan.diags
        );
        let replaces = !plan.replaces.is_empty();
        let differs = !plan.state.same_as(&made.state);
        let before = p.log_len();
        let now = if replaces {
            // As Terraform replaces: the old one destroyed, then a create planned from nothing,
            // which sends what the argument changed.
            p.destroy(type_name, &made).await;
            let from = p.log_len();
            let now = p.converge(type_name, &none(), &changed).await;
            assert_ne!(
                p.sent_since(from),
                sent_for_set,
                "{at}: replaced, yet the create sends the same requests"
            );
            now
        } else {
            let (now, found) = p.apply(type_name, &made, &plan, &changed).await;
            assert!(!found.iter().any(|d| d.error), "{at}: the change's apply failed: {found:?}");
            now
        };
        let writes = p.writes_since(before);
        match change {
            Change::Replaces => {
                assert!(replaces, "{at}: declared to replace, planned {:?}", plan.replaces)
            }
            Change::InPlace => assert!(
                differs && !replaces && !writes.is_empty(),
                "{at}: declared in place: {writes:?}"
            ),
            Change::StateOnly => assert!(
                differs && !replaces && writes.is_empty(),
                "{at}: declared state only: {writes:?}"
            ),
            Change::Nothing => {
                assert!(!differs && !replaces, "{at}: write-only, yet the plan changes")
            }
        }
        let settled = p.plan(type_name, &now, &changed).await;
        assert!(
            settled.replaces.is_empty() && settled.state.same_as(&now.state),
            "{at}: the plan after the change is not empty"
        );
        // Imported: the first plan never replaces, its apply writes nothing unless the argument
        // is one an import cannot read from Coiled, and the plan after it is empty.
        let (imported, found) = p.import(type_name, &import_id(&now.state)).await;
        assert!(
            !found.iter().any(|d| d.error) && !imported.state.is_null(),
            "{at}: import: {found:?}"
        );
        let first = p.plan(type_name, &imported, &changed).await;
        assert!(
            first.replaces.is_empty(),
            "{at}: the plan after an import replaces {:?}",
            first.replaces
        );
        let before = p.log_len();
        let (adopted, found) = p.apply(type_name, &imported, &first, &changed).await;
        assert!(
            !found.iter().any(|d| d.error),
            "{at}: the apply after an import failed: {found:?}"
        );
        let writes = p.writes_since(before);
        // What Coiled never reports is sent again by the first apply after an import.
        let sent_again = schema.block.attributes.iter().any(|a| {
            a.after_import == AfterImport::SentAgain
                && changed.get(a.name).is_some_and(|v| !v.is_null())
        });
        assert!(
            writes.is_empty() || sent_again,
            "{at} ({after_import:?}): the apply after an import wrote {writes:?}"
        );
        let last = p.plan(type_name, &adopted, &changed).await;
        assert!(
            last.replaces.is_empty() && last.state.same_as(&adopted.state),
            "{at}: the second plan after an import is not empty"
        );
        p.destroy(type_name, &adopted).await;
        // A bad value: refused at validation, at the argument's path.
        if let Some((value, expect)) = bad {
            let config = config_value(&schema, &merged(&base, value));
            let found = p.validate(type_name, &config).await;
            assert!(
                found.iter().any(|d| d.error && d.path.starts_with(key) && d.text.contains(expect)),
                "{at}: {value} not refused at {key} with {expect:?}: {found:?}"
            );
        }
    }
}

/// `config` with `key` (as a table names it) unknown, as a value from another resource is at plan,
/// and with each part of it unknown (an element of a collection, an attribute of a block in a set);
/// none when the configuration does not set it. A single block is never unknown, only its parts.
fn with_unknown(schema: &Schema, config: &Value, key: &str) -> Vec<Value> {
    let (outer, inner) = key.split_once('.').map_or((key, None), |(o, i)| (o, Some(i)));
    let single =
        inner.is_none() && schema.block.block(outer).is_some_and(|b| b.nesting == Nesting::Single);
    let Value::Object(top) = config else { return Vec::new() };
    let Some(value) = top.get(outer).filter(|v| !v.is_null()) else { return Vec::new() };
    let value = match inner {
        None => value,
        Some(inner) => match value.get(inner).filter(|v| !v.is_null()) {
            Some(v) => v,
            None => return Vec::new(),
        },
    };
    let mut variants = if single { Vec::new() } else { vec![Value::Unknown] };
    variants.extend(parts_unknown(value));
    variants
        .into_iter()
        .map(|v| {
            let mut top = top.clone();
            match inner {
                None => {
                    top.insert(outer.to_string(), v);
                }
                Some(inner) => {
                    if let Some(Value::Object(block)) = top.get_mut(outer) {
                        block.insert(inner.to_string(), v);
                    }
                }
            }
            Value::Object(top)
        })
        .collect()
}

/// `config` with `key` (as a table names it) null.
fn with_null(config: &Value, key: &str) -> Value {
    let (outer, inner) = key.split_once('.').map_or((key, None), |(o, i)| (o, Some(i)));
    let Value::Object(mut top) = config.clone() else { return config.clone() };
    match inner {
        None => {
            top.insert(outer.to_string(), Value::Null);
        }
        Some(inner) => {
            if let Some(Value::Object(block)) = top.get_mut(outer) {
                block.insert(inner.to_string(), Value::Null);
            }
        }
    }
    Value::Object(top)
}

/// `value` with one part unknown, for each part one level down (two in a collection of objects).
fn parts_unknown(value: &Value) -> Vec<Value> {
    let unknown_in = |elements: &[Value]| -> Vec<Vec<Value>> {
        (0..elements.len())
            .flat_map(|i| {
                let mut whole = vec![Value::Unknown];
                whole.extend(
                    parts_unknown(&elements[i])
                        .into_iter()
                        .filter(|_| matches!(elements[i], Value::Object(_))),
                );
                whole.into_iter().map(move |part| {
                    let mut out = elements.to_vec();
                    out[i] = part;
                    out
                })
            })
            .collect()
    };
    match value {
        Value::List(e) => unknown_in(e).into_iter().map(Value::List).collect(),
        Value::Set(e) => unknown_in(e).into_iter().map(Value::Set).collect(),
        Value::Map(m) | Value::Object(m) => m
            .keys()
            .filter(|k| !m[*k].is_null())
            .map(|k| {
                let mut out = m.clone();
                out.insert(k.clone(), Value::Unknown);
                if matches!(value, Value::Map(_)) { Value::Map(out) } else { Value::Object(out) }
            })
            .collect(),
        _ => Vec::new(),
    }
}

/// For every argument of `table`, set alone and beside each other argument: a create planned while
/// it (or a part of it) is unknown keeps it unknown (a write-only one is never planned), and every
/// value that plan knows is the one the plan has once it is known, or once it turns out null (else
/// Terraform reports an inconsistent final plan). Pairs the validation refuses (two arguments that
/// conflict) are left out. And an update to the argument's changed value, from its value and from
/// unset, planned while that value is unknown, agrees with the plan once it is known, a
/// replacement included.
async fn try_every_argument_unknown(type_name: &str, base: &str, table: &[Row]) {
    let base: Json = serde_json::from_str(base).unwrap();
    let p = InProcess::start().await;
    let schema = p.schema(type_name).clone();
    let mut tried = 0;
    for &(key, set, _, _) in table {
        for &(_, beside, _, _) in std::iter::once(&("", "{}", "", None)).chain(table) {
            let json = merged(&merged(&base, beside), set);
            let known = config_value(&schema, &json);
            let variants = with_unknown(&schema, &known, key);
            if variants.is_empty() {
                continue;
            }
            let late = p.plan(type_name, &none(), &known).await;
            if late.diags.iter().any(|d| d.error) {
                continue;
            }
            // An unknown value may also turn out null (a conditional, an empty `for_each`).
            let absent = p.plan(type_name, &none(), &with_null(&known, key)).await;
            let absent = Some(absent).filter(|a| !a.diags.iter().any(|d| d.error));
            for unknown in variants {
                let at = format!("{type_name}.{key} in {unknown:?}");
                let early = p.plan(type_name, &none(), &unknown).await;
                assert!(!early.diags.iter().any(|d| d.error), "{at}: refused: {:?}", early.diags);
                let planned = match key.split_once('.') {
                    Some((outer, inner)) => early.state.get(outer).and_then(|b| b.get(inner)),
                    None => early.state.get(key),
                };
                let write_only = schema.block.attribute(key).is_some_and(|a| a.write_only);
                assert!(
                    planned.is_some_and(|v| !v.is_wholly_known()) || write_only,
                    "{at}: planned as {planned:?}"
                );
                assert_conforms(&early.state, &late.state, "", &format!("{at}: once known"));
                if let Some(absent) = absent.as_ref().filter(|_| planned == Some(&Value::Unknown)) {
                    assert_conforms(&early.state, &absent.state, "", &format!("{at}: once null"));
                }
                tried += 1;
            }
        }
    }
    // Changed while unknown, from the row's value and from unset: an update planned with the new
    // value unknown agrees with the plan once it is known, and plans the replacement that plan makes
    // (Terraform refuses an update that becomes a replacement at apply).
    for &(key, set, changed, _) in table {
        for from in [merged(&base, set), base.clone()] {
            let made = p.converge(type_name, &none(), &config_value(&schema, &from)).await;
            let known = config_value(&schema, &merged(&base, changed));
            let late = p.plan(type_name, &made, &known).await;
            if late.diags.iter().any(|d| d.error) {
                p.destroy(type_name, &made).await;
                continue;
            }
            for unknown in with_unknown(&schema, &known, key) {
                let at = format!("{type_name}.{key} changed from {from} to {unknown:?}");
                let early = p.plan(type_name, &made, &unknown).await;
                assert!(!early.diags.iter().any(|d| d.error), "{at}: refused: {:?}", early.diags);
                assert!(
                    late.replaces.is_empty() || !early.replaces.is_empty(),
                    "{at}: planned as an update, replaced once known: {:?}",
                    late.replaces
                );
                if early.replaces.is_empty() {
                    assert_conforms(&early.state, &late.state, "", &format!("{at}: once known"));
                }
                tried += 1;
            }
            p.destroy(type_name, &made).await;
        }
    }
    assert!(tried >= table.len(), "{type_name}: only {tried} configurations tried");
    eprintln!("{type_name}: {tried} configurations with an argument unknown");
}

fn cluster_id(state: &Value) -> String {
    let text = |name: &str| state.get(name).and_then(Value::as_str).unwrap().to_string();
    format!("{}/{}", text("workspace"), text("id"))
}

fn software_id(state: &Value) -> String {
    let text = |name: &str| state.get(name).and_then(Value::as_str).unwrap().to_string();
    format!("{}/{}", text("workspace"), text("name"))
}

fn workspace_id(state: &Value) -> String {
    state.get("workspace").and_then(Value::as_str).unwrap().to_string()
}

#[rustfmt::skip]
const CLUSTER: &[Row] = &[
    ("name", r#"{"name": "declared-a"}"#, r#"{"name": "declared-b"}"#, Some((r#"{"name": "not a name!"}"#, "not a valid cluster name"))),
    ("workspace", r#"{"workspace": "alice"}"#, r#"{"workspace": "bob"}"#, Some((r#"{"workspace": "a/b"}"#, "not a workspace"))),
    ("n_workers", r#"{"n_workers": 1}"#, r#"{"n_workers": 2}"#, Some((r#"{"n_workers": -1}"#, "from 0 to 1000"))),
    ("worker_vm_types", r#"{"worker_vm_types": ["m6i.xlarge"]}"#, r#"{"worker_vm_types": ["m6i.large"]}"#, None),
    ("scheduler_vm_types", r#"{"scheduler_vm_types": ["m6i.xlarge"]}"#, r#"{"scheduler_vm_types": ["m6i.large"]}"#, None),
    ("worker_disk_size", r#"{"worker_disk_size": 100}"#, r#"{"worker_disk_size": 200}"#, Some((r#"{"worker_disk_size": 0}"#, "at least 1 GiB"))),
    ("software", r#"{"software": "dask"}"#, r#"{"software": "other-env"}"#, None),
    ("container", r#"{"software": null, "container": "ghcr.io/dask/dask:latest"}"#, r#"{"software": null, "container": "ghcr.io/dask/dask:2025.1.0"}"#, None),
    ("tags", r#"{"tags": {"team": "a"}}"#, r#"{"tags": {"team": "b"}}"#, None),
    ("environ", r#"{"environ": {"A": "1"}}"#, r#"{"environ": {"B": "1"}}"#, None),
    ("idle_timeout", r#"{"idle_timeout": "2 hours"}"#, r#"{"idle_timeout": "3 hours"}"#, Some((r#"{"idle_timeout": "forever"}"#, "forever"))),
    ("cluster_timeout", r#"{"cluster_timeout": "8 hours"}"#, r#"{"cluster_timeout": "9 hours"}"#, Some((r#"{"cluster_timeout": "forever"}"#, "forever"))),
    ("spot_policy", r#"{"spot_policy": "spot"}"#, r#"{"spot_policy": "on-demand"}"#, Some((r#"{"spot_policy": "cheap"}"#, "valid options"))),
    ("arm", r#"{"arm": true}"#, r#"{"arm": false}"#, None),
    ("scheduler_port", r#"{"scheduler_port": 8786}"#, r#"{"scheduler_port": 8787}"#, Some((r#"{"scheduler_port": 0}"#, "from 1 to 65535"))),
    ("allow_ingress_from", r#"{"allow_ingress_from": "10.1.0.0/16"}"#, r#"{"allow_ingress_from": "10.2.0.0/16"}"#, Some((r#"{"allow_ingress_from": "me"}"#, "must not depend on where it runs"))),
    ("use_dashboard_https", r#"{"use_dashboard_https": false}"#, r#"{"use_dashboard_https": true}"#, None),
    ("when_stopped", r#"{"when_stopped": "keep"}"#, r#"{"when_stopped": "recreate"}"#, Some((r#"{"when_stopped": "maybe"}"#, "\"keep\""))),
    ("use_scheduler_public_ip", r#"{"use_scheduler_public_ip": false}"#, r#"{"use_scheduler_public_ip": true}"#, None),
    ("wait_for_workers", r#"{"wait_for_workers": 0.5}"#, r#"{"wait_for_workers": 1}"#, Some((r#"{"wait_for_workers": 2}"#, "from 0"))),
    ("acknowledge_world_open_ingress", r#"{"acknowledge_world_open_ingress": true}"#, r#"{"acknowledge_world_open_ingress": false}"#, None),
    ("backend_options", r#"{"backend_options": {"region": "us-west-2"}}"#, r#"{"backend_options": {"region": "us-east-2"}}"#, None),
    ("backend_options.region", r#"{"backend_options": {"region": "us-west-2"}}"#, r#"{"backend_options": {"region": "us-east-2"}}"#, None),
    ("backend_options.zone", r#"{"backend_options": {"zone": "us-east-1a"}}"#, r#"{"backend_options": {"zone": "us-east-1b"}}"#, None),
    ("backend_options.spot", r#"{"backend_options": {"spot": true}}"#, r#"{"backend_options": {"spot": false}}"#, None),
    ("backend_options.ingress", r#"{"backend_options": {"ingress": [{"ports": [443], "cidr": "10.1.0.0/16"}]}}"#, r#"{"backend_options": {"ingress": [{"ports": [443], "cidr": "10.2.0.0/16"}]}}"#, Some((r#"{"backend_options": {"ingress": [{"ports": [443], "cidr": "10.1.0.0/33"}]}}"#, "CIDR"))),
    ("timeouts", r#"{"timeouts": {"create": "30m"}}"#, r#"{"timeouts": {"create": "40m"}}"#, Some((r#"{"timeouts": {"create": "forever"}}"#, "Timeout"))),
];

#[rustfmt::skip]
const SOFTWARE_ENVIRONMENT: &[Row] = &[
    ("name", r#"{"name": "sw-a"}"#, r#"{"name": "sw-b"}"#, Some((r#"{"name": "Not A Name"}"#, "name"))),
    ("workspace", r#"{"workspace": "alice"}"#, r#"{"workspace": "bob"}"#, Some((r#"{"workspace": "a/b"}"#, "workspace"))),
    ("container", r#"{"container": "ghcr.io/dask/dask:latest"}"#, r#"{"container": "ghcr.io/dask/dask:2025.1.0"}"#, None),
    ("conda", r#"{"container": null, "conda": {"dependencies": ["dask"]}}"#, r#"{"container": null, "conda": {"dependencies": ["dask", "numpy"]}}"#, None),
    ("conda.channels", r#"{"container": null, "conda": {"channels": ["conda-forge"], "dependencies": ["dask"]}}"#, r#"{"container": null, "conda": {"channels": ["defaults"], "dependencies": ["dask"]}}"#, None),
    ("conda.dependencies", r#"{"container": null, "conda": {"dependencies": ["dask"]}}"#, r#"{"container": null, "conda": {"dependencies": ["dask=2025.1"]}}"#, None),
    ("pip", r#"{"container": null, "pip": ["dask"], "python_version": "3.12"}"#, r#"{"container": null, "pip": ["dask", "numpy"], "python_version": "3.12"}"#, None),
    ("python_version", r#"{"container": null, "pip": ["dask"], "python_version": "3.12"}"#, r#"{"container": null, "pip": ["dask"], "python_version": "3.11"}"#, None),
    ("gpu_enabled", r#"{"gpu_enabled": true}"#, r#"{"gpu_enabled": false}"#, None),
    ("architecture", r#"{"architecture": "aarch64"}"#, r#"{"architecture": "x86_64"}"#, Some((r#"{"architecture": "sparc"}"#, "sparc"))),
    ("use_entrypoint", r#"{"use_entrypoint": false}"#, r#"{"use_entrypoint": true}"#, None),
    ("region_name", r#"{"region_name": "us-west-2"}"#, r#"{"region_name": "us-east-2"}"#, None),
    ("use_uv_installer", r#"{"container": null, "pip": ["dask"], "python_version": "3.12", "use_uv_installer": false}"#, r#"{"container": null, "pip": ["dask"], "python_version": "3.12", "use_uv_installer": true}"#, None),
    ("timeouts", r#"{"timeouts": {"create": "30m"}}"#, r#"{"timeouts": {"create": "40m"}}"#, Some((r#"{"timeouts": {"update": "0s"}}"#, "Timeout"))),
];

#[rustfmt::skip]
const BACKEND_OPTIONS: &[Row] = &[
    ("workspace", r#"{"workspace": "alice"}"#, r#"{"workspace": "bob"}"#, Some((r#"{"workspace": "a/b"}"#, "workspace"))),
    ("backend", r#"{}"#, r#"{"backend": "gcp", "aws_access_key_id": null, "aws_secret_access_key": null, "gcp_service_account_json": "{\"type\": \"service_account\", \"project_id\": \"proj-a\", \"private_key_id\": \"k\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nX\\n-----END PRIVATE KEY-----\\n\", \"client_email\": \"sa@proj-a.iam.gserviceaccount.com\"}"}"#, Some((r#"{"backend": "azure"}"#, "azure"))),
    ("region", r#"{"region": "us-west-2"}"#, r#"{"region": "us-east-2"}"#, None),
    ("zone", r#"{"zone": "us-east-1a"}"#, r#"{"zone": "us-east-1b"}"#, None),
    ("aws_access_key_id", r#"{"aws_access_key_id": "AKIAONE"}"#, r#"{"aws_access_key_id": "AKIATWO"}"#, None),
    ("aws_secret_access_key", r#"{"aws_secret_access_key": "SECRET-ONE"}"#, r#"{"aws_secret_access_key": "SECRET-TWO"}"#, None),
    ("aws_secret_access_key_wo", r#"{"aws_secret_access_key": null, "aws_secret_access_key_wo": "WO-ONE", "aws_secret_access_key_wo_version": 1}"#, r#"{"aws_secret_access_key": null, "aws_secret_access_key_wo": "WO-TWO", "aws_secret_access_key_wo_version": 1}"#, None),
    ("aws_secret_access_key_wo_version", r#"{"aws_secret_access_key": null, "aws_secret_access_key_wo": "WO-ONE", "aws_secret_access_key_wo_version": 1}"#, r#"{"aws_secret_access_key": null, "aws_secret_access_key_wo": "WO-ONE", "aws_secret_access_key_wo_version": 2}"#, None),
    ("gcp_project_id", r#"{"backend": "gcp", "aws_access_key_id": null, "aws_secret_access_key": null, "gcp_service_account_json": "{\"type\": \"service_account\", \"project_id\": \"proj-a\", \"private_key_id\": \"k\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nX\\n-----END PRIVATE KEY-----\\n\", \"client_email\": \"sa@proj-a.iam.gserviceaccount.com\"}", "gcp_project_id": "proj-a"}"#, r#"{"backend": "gcp", "aws_access_key_id": null, "aws_secret_access_key": null, "gcp_service_account_json": "{\"type\": \"service_account\", \"project_id\": \"proj-a\", \"private_key_id\": \"k\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nX\\n-----END PRIVATE KEY-----\\n\", \"client_email\": \"sa@proj-a.iam.gserviceaccount.com\"}", "gcp_project_id": "proj-b"}"#, None),
    ("gcp_service_account_json", r#"{"backend": "gcp", "aws_access_key_id": null, "aws_secret_access_key": null, "gcp_service_account_json": "{\"type\": \"service_account\", \"project_id\": \"proj-a\", \"private_key_id\": \"k\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nX\\n-----END PRIVATE KEY-----\\n\", \"client_email\": \"sa@proj-a.iam.gserviceaccount.com\"}"}"#, r#"{"backend": "gcp", "aws_access_key_id": null, "aws_secret_access_key": null, "gcp_service_account_json": "{\"type\": \"service_account\", \"project_id\": \"proj-b\", \"private_key_id\": \"k\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nX\\n-----END PRIVATE KEY-----\\n\", \"client_email\": \"sa@proj-b.iam.gserviceaccount.com\"}"}"#, None),
    ("gcp_service_account_json_wo", r#"{"backend": "gcp", "aws_access_key_id": null, "aws_secret_access_key": null, "gcp_service_account_json": null, "gcp_service_account_json_wo": "{\"type\": \"service_account\", \"project_id\": \"proj-a\", \"private_key_id\": \"k\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nX\\n-----END PRIVATE KEY-----\\n\", \"client_email\": \"sa@proj-a.iam.gserviceaccount.com\"}", "gcp_service_account_json_wo_version": 1}"#, r#"{"backend": "gcp", "aws_access_key_id": null, "aws_secret_access_key": null, "gcp_service_account_json": null, "gcp_service_account_json_wo": "{\"type\": \"service_account\", \"project_id\": \"proj-b\", \"private_key_id\": \"k\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nX\\n-----END PRIVATE KEY-----\\n\", \"client_email\": \"sa@proj-b.iam.gserviceaccount.com\"}", "gcp_service_account_json_wo_version": 1}"#, None),
    ("gcp_service_account_json_wo_version", r#"{"backend": "gcp", "aws_access_key_id": null, "aws_secret_access_key": null, "gcp_service_account_json": null, "gcp_service_account_json_wo": "{\"type\": \"service_account\", \"project_id\": \"proj-a\", \"private_key_id\": \"k\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nX\\n-----END PRIVATE KEY-----\\n\", \"client_email\": \"sa@proj-a.iam.gserviceaccount.com\"}", "gcp_service_account_json_wo_version": 1}"#, r#"{"backend": "gcp", "aws_access_key_id": null, "aws_secret_access_key": null, "gcp_service_account_json": null, "gcp_service_account_json_wo": "{\"type\": \"service_account\", \"project_id\": \"proj-a\", \"private_key_id\": \"k\", \"private_key\": \"-----BEGIN PRIVATE KEY-----\\nX\\n-----END PRIVATE KEY-----\\n\", \"client_email\": \"sa@proj-a.iam.gserviceaccount.com\"}", "gcp_service_account_json_wo_version": 2}"#, None),
    ("acknowledge_world_open_ingress", r#"{"acknowledge_world_open_ingress": true}"#, r#"{"acknowledge_world_open_ingress": false}"#, None),
    ("network", r#"{"network": {"network_id": "vpc-1"}}"#, r#"{"network": {"network_id": "vpc-2"}}"#, None),
    ("network.network_id", r#"{"network": {"network_id": "vpc-1"}}"#, r#"{"network": {"network_id": "vpc-2"}}"#, None),
    ("network.scheduler_subnet_id", r#"{"network": {"scheduler_subnet_id": "s-1"}}"#, r#"{"network": {"scheduler_subnet_id": "s-2"}}"#, None),
    ("network.worker_subnet_id", r#"{"network": {"worker_subnet_id": "w-1"}}"#, r#"{"network": {"worker_subnet_id": "w-2"}}"#, None),
    ("network.firewall_id", r#"{"network": {"firewall_id": "sg-1"}}"#, r#"{"network": {"firewall_id": "sg-2"}}"#, None),
    ("ingress", r#"{"ingress": [{"ports": [8786], "cidr": "10.1.0.0/16"}]}"#, r#"{"ingress": [{"ports": [8786], "cidr": "10.2.0.0/16"}]}"#, Some((r#"{"ingress": [{"ports": [8786], "cidr": "10.1.0.0/33"}]}"#, "CIDR"))),
    ("timeouts", r#"{"timeouts": {"create": "30m"}}"#, r#"{"timeouts": {"create": "40m"}}"#, Some((r#"{"timeouts": {"create": "forever"}}"#, "Timeout"))),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cluster_argument_behaves_as_declared() {
    let base = r#"{"name": "declared", "software": "dask", "n_workers": 0}"#;
    try_every_argument("coiled_cluster", base, CLUSTER, cluster_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_software_environment_argument_behaves_as_declared() {
    let base = r#"{"name": "declared-env", "container": "ghcr.io/dask/dask:latest"}"#;
    try_every_argument("coiled_software_environment", base, SOFTWARE_ENVIRONMENT, software_id)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backend_options_argument_behaves_as_declared() {
    let base = r#"{"backend": "aws", "aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "SECRET-SENTINEL-DECLARED"}"#;
    try_every_argument("coiled_backend_options", base, BACKEND_OPTIONS, workspace_id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_cluster_argument_may_be_unknown_until_apply() {
    let base = r#"{"name": "declared", "software": "dask", "n_workers": 0}"#;
    try_every_argument_unknown("coiled_cluster", base, CLUSTER).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_software_environment_argument_may_be_unknown_until_apply() {
    let base = r#"{"name": "declared-env", "container": "ghcr.io/dask/dask:latest"}"#;
    try_every_argument_unknown("coiled_software_environment", base, SOFTWARE_ENVIRONMENT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_backend_options_argument_may_be_unknown_until_apply() {
    let base = r#"{"backend": "aws", "aws_access_key_id": "AKIAEXAMPLE", "aws_secret_access_key": "SECRET-SENTINEL-DECLARED"}"#;
    try_every_argument_unknown("coiled_backend_options", base, BACKEND_OPTIONS).await;
}
