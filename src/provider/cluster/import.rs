//! Import: resolving an import ID, the state an import starts from, taking what the API cannot report
//! from the configuration at the first plan, and refreshing creation-time values by meaning.

use coiled_firewall::Rule;
use tfplugin::diag::Diagnostics;
use tfplugin::framework::Plan;
use tfplugin::schema::Schema;
use tfplugin::value::Value;

use super::super::ingress;
use super::ClusterResource;
use super::model::*;
use crate::api::{ClusterDetails, Op};
use crate::provider::Coiled;

impl ClusterResource {
    /// `ID`, `NAME`, `WORKSPACE/ID` or `WORKSPACE/NAME` → the workspace and the cluster id.
    pub(super) async fn resolve_import_id(coiled: &Coiled, op: &Op, id: &str, diags: &mut Diagnostics) -> Option<(String, i64)> {
        let usage = "use `ID`, `NAME`, `WORKSPACE/ID` or `WORKSPACE/NAME`, e.g. `my-team/etl`";
        let (ws, key) = match id.trim().split_once('/') {
            Some((ws, key)) if ws.is_empty() || key.is_empty() || key.contains('/') => {
                diags.error("Invalid Import ID", format!("{id:?} is not a cluster ID: {usage}."));
                return None;
            }
            Some((ws, key)) => (ws.to_string(), key.to_string()),
            None if id.trim().is_empty() => {
                diags.error("Invalid Import ID", format!("The import ID is empty: {usage}."));
                return None;
            }
            None => (
                coiled.workspace(op).await.map_err(|e| coiled.report(diags, "Unable to Determine Workspace", None, &e)).ok()?,
                id.trim().to_string(),
            ),
        };
        match key.parse::<i64>() {
            Ok(n) => Some((ws, n)),
            Err(_) if valid_name(&key) => match coiled.client.find_cluster_by_name(op, &ws, &key).await {
                Ok(Some(c)) => Some((ws, c.id)),
                Ok(None) => {
                    diags.error("Cluster Not Found", format!("No running cluster named {key:?} in workspace {ws:?}."));
                    None
                }
                Err(e) => {
                    coiled.report(diags, "Unable to Import Cluster", None, &e);
                    None
                }
            },
            Err(_) => {
                diags.error("Invalid Import ID", format!("{id:?} is not a cluster ID: {usage}."));
                None
            }
        }
    }

    /// After an import, the values the API could not show (or showed with room for the
    /// configuration's spelling) are taken from the configuration in place, not by replacement:
    /// `environ` and the VM type preferences always; `idle_timeout`, `tags`, `region`, `zone` and `spot`
    /// when the server did not report them, or reported the same meaning.
    pub(super) fn adopt_unreadable(plan: &mut Plan) {
        if plan.is_create() {
            return;
        }
        let Some(marker) = serde_json::from_slice::<ImportMarker>(&plan.private).ok().filter(|m| m.imported) else { return };
        let (prior, planned) = (&plan.prior, &plan.planned);
        let differs = |name: &str| !prior.get(name).unwrap_or(&Value::Null).same_as(planned.get(name).unwrap_or(&Value::Null));
        let mut adopt: Vec<&'static str> = Vec::new();
        for name in ["environ", "worker_vm_types", "scheduler_vm_types"] {
            if differs(name) {
                adopt.push(name);
            }
        }
        if differs("idle_timeout") {
            let secs = |v: Option<&str>| v.and_then(|t| crate::provider::duration::parse_dask_timedelta(t).ok());
            let (before, after) = (s(prior, "idle_timeout"), s(planned, "idle_timeout"));
            if before.is_none() || after.is_none() || secs(before) == secs(after) {
                adopt.push("idle_timeout");
            }
        }
        if differs("tags") && prior.get("tags").is_none_or(Value::is_null) {
            adopt.push("tags");
        }
        if differs("backend_options") && backend_options_adoptable(backend_options(prior), backend_options(planned), &marker) {
            adopt.push("backend_options");
        }
        if !adopt.is_empty() {
            tracing::debug!(?adopt, "taking values the import could not read from the configuration");
            plan.in_place.extend(adopt);
            plan.private = Vec::new();
        }
    }
}

/// Private data marking state that an import built: some values are still to be taken from the
/// configuration, and the region and zone the server reported are kept to check them against.
#[derive(serde::Serialize, serde::Deserialize, Default)]
pub(super) struct ImportMarker {
    pub(super) imported: bool,
    #[serde(default)]
    pub(super) region: Option<String>,
    #[serde(default)]
    pub(super) zone: Option<String>,
}

/// Whether two `backend_options` blocks differ only where an import could not tell: the same ingress,
/// `region` and `zone` unset or as the server reported them (by meaning), and `spot` unreported or equal.
pub(super) fn backend_options_adoptable(prior: &Value, planned: &Value, reported: &ImportMarker) -> bool {
    let rules = |v: &Value| own_rules_of(v.get("ingress"));
    let same_rules = match (rules(prior), rules(planned)) {
        (None, None) => true,
        (Some(a), Some(b)) => coiled_firewall::same_rules(&a, &b),
        _ => false,
    };
    let text_ok = |name: &str, server: &Option<String>| match (s(prior, name).or(server.as_deref()), s(planned, name)) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => true,
    };
    let spot_ok = match (prior.get("spot").and_then(Value::as_bool), planned.get("spot").and_then(Value::as_bool)) {
        (Some(a), Some(b)) => a == b,
        (Some(_), None) => false,
        _ => true,
    };
    same_rules && text_ok("region", &reported.region) && text_ok("zone", &reported.zone) && spot_ok
}

/// The state an import starts from: what the cluster was created with, as far as the API reports it.
pub(super) fn imported_state(schema: &Schema, d: &ClusterDetails, account: Option<&[Rule]>) -> Value {
    let mut state = Value::null_object(&schema.object_type());
    let private_scheduler = d.use_dashboard_public_ip() == Some(false);
    state.set_attr("use_scheduler_public_ip", Value::Bool(!private_scheduler));
    let reported = d.ingress().map(|w| ingress::from_wire(&w));
    // Rules that came from the workspace or the service default are inherited, not the cluster's own:
    // the server may say so, else rules equal to the account's count as inherited.
    let inherited = cluster_is_inheriting(d) || matches!((&reported, account), (Some(r), Some(a)) if coiled_firewall::same_rules(r, a));
    let own = if inherited { None } else { reported.filter(|r| !r.is_empty()) };
    let spot = d.spot();
    if own.is_some() || spot.is_some() {
        let mut bo =
            Value::object([("region", Value::Null), ("zone", Value::Null), ("spot", spot.map(Value::Bool).unwrap_or(Value::Null))]);
        bo.set_attr("ingress", ingress::state_value(&own.unwrap_or_default(), &Value::Null));
        state.set_attr("backend_options", bo);
    }
    if let Some(name) = d.senv_alias.as_ref().and_then(|a| a.name.as_deref()) {
        state.set_attr("software", Value::string(name));
    }
    if let Some(tags) = d.reported_tags().filter(|t| !t.is_empty()) {
        state.set_attr("tags", Value::Map(tags.into_iter().map(|(k, v)| (k, Value::string(v))).collect()));
    }
    if let Some(idle) = d.idle_timeout() {
        state.set_attr("idle_timeout", Value::string(idle));
    }
    state
}

/// Refreshes the creation-time values the server reports, by meaning: a value the state holds and
/// the server shows differently is drift (the next plan replaces the cluster); the user's spelling
/// stays when the meaning is the same; nothing changes where the server says nothing.
pub(super) fn refresh_reported(state: &mut Value, d: &ClusterDetails) {
    if let (Some(Value::Map(held)), Some(reported)) = (state.get("tags").cloned(), d.reported_tags()) {
        // Only the keys the configuration set are compared: the service may add tags of its own.
        let mut now = held.clone();
        for (k, v) in &held {
            match reported.get(k) {
                Some(r) if Some(r.as_str()) == v.as_str() => {}
                Some(r) => {
                    now.insert(k.clone(), Value::string(r.clone()));
                }
                None => {
                    now.remove(k);
                }
            }
        }
        if now != held {
            state.set_attr("tags", Value::Map(now));
        }
    }
    if let Some(Value::Object(mut bo)) = state.get("backend_options").cloned() {
        let mut changed = false;
        for (attr, reported) in [("region", d.region_name()), ("zone", d.zone_name())] {
            let held = bo.get(attr).and_then(Value::as_str).map(str::to_string);
            if let (Some(held), Some(now)) = (held, reported)
                && !held.eq_ignore_ascii_case(now)
            {
                bo.insert(attr.to_string(), Value::string(now));
                changed = true;
            }
        }
        if changed {
            state.set_attr("backend_options", Value::Object(bo));
        }
    }
    let held = s(state, "idle_timeout").map(str::to_string);
    let now = d.idle_timeout().map(str::to_string);
    if let (Some(held), Some(now)) = (held, now) {
        let secs = |t: &str| crate::provider::duration::parse_dask_timedelta(t).ok();
        if secs(&held) != secs(&now) {
            state.set_attr("idle_timeout", Value::string(now));
        }
    }
}

/// Whether the server says the cluster's rules came from the account or the service default
/// (`cluster_infra.firewall_source`, which `coiled-local` reports).
pub(super) fn cluster_is_inheriting(d: &ClusterDetails) -> bool {
    matches!(d.firewall_source(), Some("default" | "account"))
}
