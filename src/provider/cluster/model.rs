//! The cluster's values: defaults, helpers over its configuration / plan / state value, the create
//! request built from a plan, and the state built from what the server reports.

use std::collections::BTreeMap;
use std::time::Duration;

use coiled_firewall::Rule;
use tfplugin::diag::Diagnostics;
use tfplugin::value::{AttrPath, Number, Value};

use super::super::ingress::{self, Parsed};
use super::state as cluster_state;
use crate::api::{ClusterDetails, ClusterOptions, CreateCluster, FirewallSpecOut, SchedulerOptions};

/// Private data of a cluster whose create was interrupted before it was ready: the next apply waits for
/// it in place.
pub const INTERRUPTED: &[u8] = br#"{"interrupted":true}"#;

/// Default for each of the create, update and delete timeouts.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// Default worker count, as `coiled.Cluster`.
pub const DEFAULT_WORKERS: i64 = 4;
/// Default fraction of workers to wait for, as `coiled.Cluster`.
pub const DEFAULT_WAIT_FOR_WORKERS: f64 = 0.3;

pub(crate) fn s<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

/// Cluster names as Coiled accepts them.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One of the `timeouts` values, or the default.
pub(crate) fn timeout(state: &Value, which: &str) -> Duration {
    crate::provider::duration::configured_timeout(state, which, DEFAULT_TIMEOUT)
}

pub(crate) fn wait_fraction(state: &Value) -> f64 {
    state.get("wait_for_workers").and_then(Value::as_number).and_then(Number::as_f64).unwrap_or(DEFAULT_WAIT_FOR_WORKERS)
}

pub(crate) fn use_public_ip(state: &Value) -> bool {
    state.get("use_scheduler_public_ip").and_then(Value::as_bool).unwrap_or(true)
}

pub(crate) fn backend_options(state: &Value) -> &Value {
    state.get("backend_options").unwrap_or(&Value::Null)
}

/// The cluster's own ingress rules, `None` when it sets none (it then inherits).
pub(crate) fn own_rules(state: &Value) -> Option<Vec<Rule>> {
    own_rules_of(backend_options(state).get("ingress"))
}

/// The rules of an `ingress` set value, `None` when it holds none.
pub(crate) fn own_rules_of(ingress: Option<&Value>) -> Option<Vec<Rule>> {
    let ingress = ingress?;
    if ingress.as_elements().is_none_or(<[Value]>::is_empty) {
        return None;
    }
    match ingress::parse(ingress, &AttrPath::root(), true, false, &mut Diagnostics::new()) {
        Parsed::Rules(r) => Some(r),
        _ => None,
    }
}

pub(crate) fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_map)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
        .unwrap_or_default()
}

pub(crate) fn string_list(v: Option<&Value>) -> Option<Vec<String>> {
    v.and_then(Value::as_elements).map(|items| items.iter().filter_map(Value::as_str).map(str::to_string).collect())
}

/// The create request, shaped as Coiled's client sends it (unset values as `null`).
pub fn create_body(planned: &Value) -> CreateCluster {
    let bo = backend_options(planned);
    let options = ClusterOptions {
        region_name: s(bo, "region").map(str::to_string),
        zone_name: s(bo, "zone").map(str::to_string),
        spot: bo.get("spot").and_then(Value::as_bool),
        // As Coiled's client: a private scheduler also keeps the dashboard off the public address.
        use_dashboard_public_ip: (!use_public_ip(planned)).then_some(false),
        firewall_spec: own_rules(planned).map(|rules| FirewallSpecOut { ingress: Some(ingress::to_wire(&rules)) }),
    };
    CreateCluster {
        name: s(planned, "name").unwrap_or_default().to_string(),
        workers: planned.get("n_workers").and_then(Value::as_number).and_then(Number::as_i64).unwrap_or(DEFAULT_WORKERS),
        worker_instance_types: string_list(planned.get("worker_vm_types")),
        scheduler_instance_types: string_list(planned.get("scheduler_vm_types")),
        worker_options: BTreeMap::new(),
        worker_class: None,
        worker_disk_size: None,
        scheduler_disk_size: None,
        scheduler_options: SchedulerOptions { idle_timeout: s(planned, "idle_timeout").map(str::to_string) },
        environ: string_map(planned.get("environ")),
        tags: string_map(planned.get("tags")),
        dask_config: BTreeMap::new(),
        private_to_creator: false,
        env_id: None,
        env_name: s(planned, "software").map(str::to_string),
        use_aws_creds_endpoint: true,
        options,
    }
}

/// The state for what the server reports, on top of `base` (planned or prior state).
pub fn state_from_details(base: &Value, d: &ClusterDetails, ws: &str) -> Value {
    let mut state = base.clone();
    state.set_attr("id", Value::string(d.id.to_string()));
    state.set_attr("workspace", Value::string(ws));
    if !d.name.is_empty() {
        state.set_attr("name", Value::string(d.name.clone()));
    }
    state.set_attr("status", Value::string(d.current_state.state.clone()));
    state.set_attr("n_workers", Value::int(d.desired_workers));
    let (chosen, public, private) = cluster_state::scheduler_addresses(d, use_public_ip(base));
    let opt = |v: Option<String>| v.map(Value::string).unwrap_or(Value::Null);
    state.set_attr("scheduler_address", opt(chosen));
    state.set_attr("scheduler_public_address", opt(public));
    state.set_attr("scheduler_private_address", opt(private));
    state.set_attr("dashboard_address", opt(d.scheduler.as_ref().and_then(|s| s.dashboard_address.clone())));
    state.set_attr("created_at", opt(d.created.clone()));
    // The effective rules: as the server reports them, else the cluster's own, else unknown to us.
    let rules = d.ingress().map(|w| ingress::from_wire(&w)).or_else(|| own_rules(base)).unwrap_or_default();
    state.set_attr("firewall_rules", ingress::rows_value(&rules));
    if state.get("use_scheduler_public_ip").is_none_or(Value::is_null) {
        state.set_attr("use_scheduler_public_ip", Value::Bool(true));
    }
    if state.get("wait_for_workers").is_none_or(|v| v.is_null() || v.is_unknown()) {
        state.set_attr("wait_for_workers", Value::Number(Number::from_f64(DEFAULT_WAIT_FOR_WORKERS).expect("finite")));
    }
    state
}

/// `planned` with every unknown top-level value taken from `prior`.
pub(crate) fn fill_unknown_from(planned: &Value, prior: &Value) -> Value {
    let mut state = planned.clone();
    if let Value::Object(attrs) = planned {
        for (name, v) in attrs {
            if v.is_unknown() {
                state.set_attr(name, prior.get(name).cloned().unwrap_or(Value::Null));
            }
        }
    }
    state
}

/// The state of a cluster known only by id (every computed value filled, as Terraform requires).
pub(crate) fn pending_state(base: &Value, id: i64, ws: &str) -> Value {
    let mut state = base.clone();
    state.set_attr("id", Value::string(id.to_string()));
    state.set_attr("workspace", Value::string(ws));
    for attr in ["status", "scheduler_address", "scheduler_public_address", "scheduler_private_address", "dashboard_address", "created_at"]
    {
        if state.get(attr).is_none_or(Value::is_unknown) {
            state.set_attr(attr, if attr == "status" { Value::string("pending") } else { Value::Null });
        }
    }
    if state.get("firewall_rules").is_none_or(Value::is_unknown) {
        state.set_attr("firewall_rules", ingress::rows_value(&own_rules(base).unwrap_or_default()));
    }
    state
}
