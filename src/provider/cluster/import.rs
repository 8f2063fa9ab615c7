//! Import: resolving an import ID, the state an import starts from, taking what the API cannot
//! report from the configuration at the first plan, and refreshing creation-time values by meaning.

use tfplugin::diag::Diagnostics;
use tfplugin::framework::Plan;
use tfplugin::model::Field;
use tfplugin::schema::AfterImport;
use tfplugin::value::Value;

use super::super::ingress::{self, RuleSet};
use super::data_source::find;
use super::model::{ClusterBackendOptions, ClusterModel, state_from_details, valid_name};
use crate::api::{ClusterDetails, Op};
use crate::provider::Coiled;

/// `ID`, `NAME`, `WORKSPACE/ID` or `WORKSPACE/NAME` → the workspace and the cluster it names.
pub(super) async fn find_imported(
    coiled: &Coiled,
    op: &Op,
    id: &str,
    diags: &mut Diagnostics,
) -> Option<(String, ClusterDetails)> {
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
        None => {
            let ws = coiled.workspace(op).await;
            let ws = coiled.reported(ws, diags, "Unable to Determine Workspace", None)?;
            (ws, id.trim().to_string())
        }
    };
    let key = match key.parse::<i64>() {
        Ok(n) => (Some(n), None),
        Err(_) if valid_name(&key) => (None, Some(key.as_str())),
        Err(_) => {
            diags.error("Invalid Import ID", format!("{id:?} is not a cluster ID: {usage}."));
            return None;
        }
    };
    let found = find(coiled, op, &ws, key, ("Unable to Import Cluster", false), diags).await?;
    Some((ws, found))
}

/// After an import, the values the API could not show (or showed with room for the
/// configuration's spelling) are taken from the configuration in place, not by replacement: those
/// the schema declares so ([`declared_adoptions`]), and those compared here by meaning:
/// `container` when the imported environment is the one made for it, `idle_timeout` when it
/// means the same, and the firewall when it holds the same rules.
pub(super) fn adopt_unreadable(plan: &mut Plan<ClusterModel>, default_rules: Option<&RuleSet>) {
    if plan.is_create() {
        return;
    }
    // A read drops the marker once it has outlived the first plan (see `private_after_read`).
    let Some(marker) =
        serde_json::from_slice::<ImportMarker>(&plan.private).ok().filter(|m| m.imported)
    else {
        return;
    };
    let (prior, planned) = (&plan.prior, &plan.planned);
    // Compared as Terraform compares values (sets without order).
    let differs = |a: Value, b: Value| !a.same_as(&b);
    let mut adopt = declared_adoptions(plan, &marker);
    // The image behind the imported environment, when the configuration names the image whose
    // environment the cluster runs.
    if prior.container.is_null()
        && let Some(image) = planned.container.known()
        && prior.software.known().is_some_and(|sw| super::request::container_env_named(image, sw))
    {
        adopt.push(tfplugin::attr!(ClusterModel, container));
    }
    if differs(prior.idle_timeout.encode(), planned.idle_timeout.encode()) {
        let secs = |v: Option<&str>| {
            v.and_then(|t| crate::provider::duration::parse_dask_timedelta(t).ok())
        };
        let (before, after) = (prior.idle_timeout.as_deref(), planned.idle_timeout.as_deref());
        if before.is_none() || after.is_none() || secs(before) == secs(after) {
            adopt.push(tfplugin::attr!(ClusterModel, idle_timeout));
        }
    }
    if differs(prior.backend_options.encode(), planned.backend_options.encode())
        && backend_options_adoptable(
            &prior.backend(),
            &options_as_imported(planned, default_rules, &marker),
            &marker,
        )
    {
        // The same firewall, held in `firewall_rules` instead of `ingress` blocks, or vice versa.
        adopt.extend([
            tfplugin::attr!(ClusterModel, backend_options),
            tfplugin::attr!(ClusterModel, firewall_rules),
        ]);
    }
    // A server that reports no rules leaves the cluster's firewall to the configuration: the
    // provider's `cluster_defaults` rules, when the cluster sets none of its own.
    if marker.rules_unreported
        && prior.firewall_rules.is_null()
        && default_rules.is_some()
        && planned.network_rules(None).is_none()
        && !planned.has_ingress_blocks()
    {
        adopt.push(tfplugin::attr!(ClusterModel, firewall_rules));
    }
    if !adopt.is_empty() {
        tracing::debug!(?adopt, "taking values the import could not read from the configuration");
        plan.in_place.extend(adopt);
    }
    // This is the first plan after the import: later ones treat a change as a change.
    plan.private = Vec::new();
}

/// The attributes the schema declares taken from the configuration after an import
/// ([`AfterImport`]) whose configured value differs from the imported one: those the API never
/// reports, and those it may not report where the import read none.
fn declared_adoptions(plan: &Plan<ClusterModel>, marker: &ImportMarker) -> Vec<&'static str> {
    let (prior, planned) = (plan.prior.encode(), plan.planned.encode());
    let value = |v: &Value, name: &str| v.get(name).cloned().unwrap_or(Value::Null);
    let planned_port = plan.planned.scheduler_port.known();
    let mut taken = Vec::new();
    for a in ClusterModel::schema_block("").attributes {
        let (before, after) = (value(&prior, a.name), value(&planned, a.name));
        if before.same_as(&after) {
            continue;
        }
        let taken_here = match a.after_import {
            AfterImport::FromConfiguration => true,
            // Where the import read none.
            AfterImport::FromConfigurationIfUnread => match a.name {
                // Tags the server reported, even as none, were read.
                "tags" => before.is_null() && !marker.tags_reported,
                // The server did not say: the import guessed.
                "use_dashboard_https" => before.is_null() || marker.https_unreported,
                // The port is reported: another one than the cluster listens on is a change.
                "scheduler_port" => {
                    before.is_null()
                        && !matches!((marker.scheduler_port, planned_port.copied()), (Some(on), Some(wanted)) if on != wanted)
                }
                _ => before.is_null(),
            },
            _ => false,
        };
        if taken_here {
            taken.push(a.name);
        }
    }
    taken
}

/// How many reads an import's marker lives for: the import's own, and the refresh of the first plan
/// after `terraform import`. (After an `import` block, whose plan follows the import's own read in
/// the same run, the next run's refresh is the second: the marker lives one run longer there.)
const FIRST_PLAN_READS: u8 = 2;

/// The private data a read hands on: an import's marker counts the read, and goes once the first
/// plan after the import has had its reads. (A plan that changes nothing writes no private data, so
/// the marker cannot count on that plan to remove it.)
pub(super) fn private_after_read(private: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<ImportMarker>(private) {
        Ok(mut marker) if marker.imported => {
            marker.reads = marker.reads.saturating_add(1);
            if marker.reads > FIRST_PLAN_READS {
                Vec::new()
            } else {
                serde_json::to_vec(&marker).unwrap_or_default()
            }
        }
        _ => private.to_vec(),
    }
}

/// Private data marking state that an import built: some values are still to be taken from the
/// configuration, and the region and zone the server reported are kept to check them against.
/// (Other private data reads as a marker with `imported` false, which no reader takes for one.)
#[derive(serde::Serialize, serde::Deserialize, Default)]
#[serde(default)]
pub(super) struct ImportMarker {
    pub(super) imported: bool,
    pub(super) region: Option<String>,
    pub(super) zone: Option<String>,
    /// The server reported no rules at all (a terse server): the configuration's are taken as is.
    pub(super) rules_unreported: bool,
    /// The server did not report whether the dashboard uses HTTPS: the configuration's is taken.
    pub(super) https_unreported: bool,
    /// The server reported the cluster's tags, even as none: tags the configuration adds are a
    /// change.
    pub(super) tags_reported: bool,
    /// The port the server reports the scheduler listens on.
    pub(super) scheduler_port: Option<i64>,
    /// Reads since the import (see [`private_after_read`]).
    pub(super) reads: u8,
}

/// The `backend_options` an import builds for a cluster made from `planned`: the configuration's
/// own, with the firewall it sends as its `ingress` when it sets no blocks (the one
/// `scheduler_port` / `allow_ingress_from` make, else the provider's `cluster_defaults` rules), and
/// the `spot` that `spot_policy` sends. The API reports what a create sent, not which arguments
/// said it: a cluster made with `spot_policy = "spot"` imports with `spot = true`.
fn options_as_imported(
    planned: &ClusterModel,
    default_rules: Option<&RuleSet>,
    marker: &ImportMarker,
) -> ClusterBackendOptions {
    let mut options = planned.backend();
    // Without `scheduler_port`, the firewall opened the port the scheduler listens on, which the
    // server reports (the workspace's `coiled.scheduler_port`, else 443).
    if !planned.has_ingress_blocks()
        && let Some(rules) =
            planned.own_network_rules(marker.scheduler_port).or_else(|| default_rules.cloned())
    {
        options.ingress = Field::Known(ingress::state_value(&rules, &Value::Null));
    }
    options.spot = Field::from_option(planned.spot_options().0);
    options
}

impl ImportMarker {
    /// The marker of a state an import builds from `d`. The region and zone the server reports are
    /// kept aside to check the configuration's against: in state they would show a configuration
    /// that leaves them to the default as a change.
    pub(super) fn of(d: &ClusterDetails) -> ImportMarker {
        ImportMarker {
            imported: true,
            region: d.region_name().map(str::to_string),
            zone: d.zone_name().map(str::to_string),
            rules_unreported: d.ingress().is_none(),
            https_unreported: d.dashboard_https().is_none(),
            tags_reported: d.reported_tags().is_some(),
            scheduler_port: d.scheduler_port,
            reads: 0,
        }
    }
}

/// Whether two `backend_options` blocks differ only where an import could not tell: the same
/// ingress, `region` and `zone` unset or as the server reported them (by meaning), and `spot`
/// unreported or equal.
pub(super) fn backend_options_adoptable(
    prior: &ClusterBackendOptions,
    planned: &ClusterBackendOptions,
    reported: &ImportMarker,
) -> bool {
    let same_rules = reported.rules_unreported
        || match (
            RuleSet::of_state(&prior.ingress.encode()),
            RuleSet::of_state(&planned.ingress.encode()),
        ) {
            (None, None) => true,
            (Some(a), Some(b)) => a.same_as(&b),
            _ => false,
        };
    let text_ok = |held: Option<&str>, server: &Option<String>, wanted: Option<&str>| match (
        held.or(server.as_deref()),
        wanted,
    ) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => true,
    };
    let spot_ok = match (prior.spot.known(), planned.spot.known()) {
        (Some(a), Some(b)) => a == b,
        (Some(_), None) => false,
        _ => true,
    };
    same_rules
        && text_ok(prior.region.as_deref(), &reported.region, planned.region.as_deref())
        && text_ok(prior.zone.as_deref(), &reported.zone, planned.zone.as_deref())
        && spot_ok
}

/// The state an import builds in `ws`: what the cluster was created with, as far as the API reports
/// it (with its own rules told from those it inherits), and what the server reports now.
pub(super) fn imported_state(
    d: &ClusterDetails,
    account: Option<&RuleSet>,
    ws: &str,
) -> ClusterModel {
    let reported = d.ingress().map(|w| RuleSet::from_wire(&w));
    // Rules that came from the workspace or the service default are inherited, not the cluster's
    // own: where the server says which, that is trusted (a cluster's own rules may equal the
    // account's); else rules equal to the account's count as inherited.
    let inherited = match d.firewall_source() {
        Some(source) => matches!(source, "default" | "account"),
        None => matches!((&reported, account), (Some(r), Some(a)) if r.same_as(a)),
    };
    let own = if inherited { None } else { reported.filter(|r| !r.is_empty()) };
    let spot = d.spot();
    let backend_options = (own.is_some() || spot.is_some()).then(|| ClusterBackendOptions {
        spot: Field::from_option(spot),
        ingress: Field::Known(ingress::state_value(&own.clone().unwrap_or_default(), &Value::Null)),
        ..Default::default()
    });
    let state = ClusterModel {
        // Which address clients use is the client's choice, not the server's: taken from the
        // configuration at the first plan. A scheduler given no public IP is reached on its private
        // address whatever the client asks (`_security` in coiled 1.135.6), which `false` says.
        use_scheduler_public_ip: Field::Known(d.gives_scheduler_public_ip()),
        backend_options: Field::from_option(backend_options),
        software: Field::from_option(d.senv_alias.as_ref().and_then(|a| a.name.clone())),
        tags: Field::from_option(d.reported_tags().filter(|t| !t.is_empty())),
        idle_timeout: Field::from_option(d.idle_timeout().map(str::to_string)),
        // The dashboard's HTTPS is on unless the server says otherwise; what to do when the cluster
        // stops is Terraform's own choice, the default until the configuration says otherwise.
        use_dashboard_https: Field::Known(d.dashboard_https().unwrap_or(true)),
        when_stopped: Field::Known("recreate".into()),
        ..Default::default()
    };
    state_from_details(&state, own.as_ref(), d, ws)
}

/// Refreshes the creation-time values the server reports (tags, region, zone, idle timeout, the
/// cluster's own rules), by meaning: a value the state holds and the server shows differently is
/// drift (the next plan replaces the cluster); the user's spelling stays when the meaning is the
/// same; nothing changes where the server says nothing.
pub(super) fn refresh_reported(state: &mut ClusterModel, d: &ClusterDetails) {
    if let (Some(held), Some(reported)) = (state.tags.known(), d.reported_tags()) {
        // Only the keys the configuration set are compared: the service may add tags of its own.
        let now =
            held.keys().filter_map(|k| reported.get(k).map(|r| (k.clone(), r.clone()))).collect();
        if &now != held {
            state.tags = Field::Known(now);
        }
    }
    let own_rules = state.has_ingress_blocks() && !cluster_is_inheriting(d);
    if let Field::Known(bo) = &mut state.backend_options {
        // The cluster's own rules, as the server reports them: drift shows in its `ingress` blocks,
        // which keep the user's grouping while they mean the same rules.
        if let Some(rules) = d.ingress().filter(|_| own_rules).map(|w| RuleSet::from_wire(&w)) {
            bo.ingress = Field::Known(ingress::state_value(&rules, &bo.ingress.encode()));
        }
        for (held, reported) in [(&mut bo.region, d.region_name()), (&mut bo.zone, d.zone_name())] {
            if let (Some(h), Some(now)) = (held.known(), reported)
                && !h.eq_ignore_ascii_case(now)
            {
                *held = Field::Known(now.to_string());
            }
        }
    }
    if let (Some(held), Some(now)) = (state.idle_timeout.known(), d.idle_timeout()) {
        let secs = |t: &str| crate::provider::duration::parse_dask_timedelta(t).ok();
        if secs(held) != secs(now) {
            state.idle_timeout = Field::Known(now.to_string());
        }
    }
}

/// The worker count a refresh records: what the server is asked to run (`desired_workers`), unless
/// the workers Coiled's client counts when it scales (pending, starting or started) are as many as
/// state says. Ours: a scale that replaced failed workers leaves `desired_workers` counting them
/// too, and a create whose wait accepted failed workers leaves fewer running; neither is a change
/// of size (rule `keep-worker-count`).
pub(super) fn keep_worker_count(
    prior: &ClusterModel,
    refreshed: &mut ClusterModel,
    d: &ClusterDetails,
) {
    if prior.n_workers.known().and_then(tfplugin::value::Number::as_i64)
        == Some(super::state::counted_workers(&d.workers).len() as i64)
    {
        refreshed.n_workers = prior.n_workers.clone();
    }
}

/// Whether the server says the cluster's rules came from the account or the service default
/// (`cluster_infra.firewall_source`, which `coiled-local` reports).
pub(super) fn cluster_is_inheriting(d: &ClusterDetails) -> bool {
    matches!(d.firewall_source(), Some("default" | "account"))
}
