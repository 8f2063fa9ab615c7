//! What a cluster's plan checks beyond its configuration: its firewall (its own, the provider's
//! `cluster_defaults`, or the workspace's account-level rules) and its scheduler's port, warning of
//! a lock-out; `arm` against the cloud's VM types; and the settings of this machine's Coiled
//! configuration that Coiled's Python client would apply but the provider does not.

use std::time::Duration;

use tfplugin::diag::{Diagnostics, Severity};
use tfplugin::model::Field;
use tfplugin::value::AttrPath;

use super::super::ProviderData;
use super::super::defaults::{self, ClusterDefaults, LocalClusterSettings};
use super::super::ingress::RuleSet;
use super::model::{ClusterModel, INTERRUPTED, UnfinishedScale};
use super::request::{self, Overrides};
use crate::api::Op;

/// Where a cluster's rules come from, for messages.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Source {
    /// Its `ingress` blocks.
    Blocks,
    /// `scheduler_port` / `allow_ingress_from`.
    Network,
    /// The provider's `cluster_defaults`.
    Defaults,
    /// The workspace's account-level rules.
    Account,
}

/// The rules a cluster gets and where from, as far as the plan knows (`None`: Coiled's default, or
/// not known before apply). The order: its `ingress` blocks, the firewall `scheduler_port` /
/// `allow_ingress_from` make, the provider's `cluster_defaults`, the firewall the workspace's
/// `coiled.scheduler_port` makes, the workspace's account-level rules.
pub(super) fn effective_rules(
    planned: &ClusterModel,
    defaults: Option<&ClusterDefaults>,
    overrides: Option<&Overrides>,
    account: Option<RuleSet>,
) -> Option<(RuleSet, Source)> {
    if let Some(own) = RuleSet::of_state(&planned.ingress()) {
        return Some((own, Source::Blocks));
    }
    // Without `scheduler_port`, the port is the workspace's `coiled.scheduler_port` (else 443).
    let port = overrides.and_then(request::override_port);
    if let Some(net) = planned.own_network_rules(port) {
        return Some((net, Source::Network));
    }
    if let Some(d) = defaults.and_then(|d| d.ingress.clone()) {
        return Some((d, Source::Defaults));
    }
    if let Some(net) = port.and_then(|p| planned.network_rules(Some(p))) {
        return Some((net, Source::Network));
    }
    account.filter(|a| !a.is_empty()).map(|a| (a, Source::Account))
}

/// Says what a plan finishes of an earlier apply (`private`'s marker), which its diff cannot show: a
/// create whose start was not seen through is waited for; a plan that asks for another worker count
/// than an unfinished scale changes what Coiled is asked for although state still holds the count
/// from before that scale.
pub(super) fn unfinished_work(private: &[u8], planned: &ClusterModel, diags: &mut Diagnostics) {
    if private == INTERRUPTED {
        diags.warning(
            "Finishing an Earlier Create",
            format!(
                "The apply that created cluster {} ended before the cluster was ready \
                    (interrupted, or Coiled could not be reached): this apply waits for it in \
                    place, unless the plan replaces it.",
                planned.id.as_deref().unwrap_or("?")
            ),
        );
        return;
    }
    let planned_count = planned.n_workers.known().and_then(|n| n.as_i64());
    let (Some(m), Some(to)) = (UnfinishedScale::read(private), planned_count) else { return };
    if m.scaling_to == to {
        return;
    }
    let removing = if to < m.scaling_to { ", removing workers it asked for" } else { "" };
    diags.warning_at(
        AttrPath::attr("n_workers"),
        "Unfinished Scale Changed",
        format!(
            "An earlier apply asked Coiled for {} workers and did not see the scale through; \
                state still shows the count from before that scale. This apply asks for {to} \
                instead{removing}.",
            m.scaling_to
        ),
    );
}

/// What a change of the worker count cannot do, or will do differently: a stopped cluster kept in
/// state cannot be scaled (unless the plan replaces it); and removing workers whose scheduler
/// cannot be reached from here to retire them first loses their data, which the plan says.
pub(super) async fn scaling_checks(
    data: &ProviderData,
    prior: &ClusterModel,
    planned: &ClusterModel,
    diags: &mut Diagnostics,
) {
    if prior.n_workers == planned.n_workers {
        return;
    }
    if prior.is_stopped() {
        // A warning: the provider cannot tell whether this plan replaces the cluster (another
        // argument, or `-replace`), which is then what happens; an update fails at apply.
        diags.warning_at(
            AttrPath::attr("n_workers"),
            "Cluster Is Stopped",
            super::model::STOPPED_CANNOT_SCALE,
        );
        return;
    }
    let (Some(before), Some(after)) = (
        prior.n_workers.known().and_then(|n| n.as_i64()),
        planned.n_workers.known().and_then(|n| n.as_i64()),
    ) else {
        return;
    };
    let mut quiet = Diagnostics::new();
    let retiring = matches!(data.coiled(&mut quiet).await, Ok(Some(c)) if c.retire_workers);
    let Some(address) = prior.scheduler_address.as_deref().filter(|_| retiring && after < before)
    else {
        return;
    };
    if !crate::api::scheduler::reachable(address, Duration::from_secs(3)).await {
        diags.warning_at(
            AttrPath::attr("n_workers"),
            "Workers Will Be Removed Without Retiring",
            format!(
                "This plan removes {} worker(s). Coiled's client first asks the scheduler to \
                    retire them, so that the data they hold moves to the workers that stay, \
                    but the scheduler at {address} cannot be reached from here: the apply \
                    will remove them without asking, and their data is lost (computations \
                    that need it fail). Run Terraform where the scheduler can be reached \
                    (inside its network), or set the provider's `retire_workers = false` to \
                    remove workers without this check.",
                before - after
            ),
        );
    }
}

/// A new cluster's checks against the server (skipped quietly when it cannot be asked).
pub(super) async fn server_checks(
    data: &ProviderData,
    planned: &ClusterModel,
    defaults: Option<&ClusterDefaults>,
    diags: &mut Diagnostics,
) {
    let mut quiet = Diagnostics::new();
    let Ok(Some(coiled)) = data.coiled(&mut quiet).await else { return };
    let op = Op::new(Duration::from_secs(30), Default::default());
    let ws = match planned.workspace.known() {
        Some(ws) => ws.clone(),
        None => match coiled.workspace(&op).await {
            Ok(ws) => ws,
            Err(_) => return,
        },
    };
    let Some(facts) = coiled.plan_facts(&op, &ws).await else { return };
    let (backend, overrides) =
        (&facts.backend, Overrides(facts.overrides.clone().unwrap_or_default()));
    let account = backend.ingress().map(|w| RuleSet::from_wire(&w));
    if let (Some(own), Some(acc)) = (RuleSet::of_state(&planned.ingress()), &account)
        && !acc.is_empty()
        && own.same_as(acc)
    {
        diags.warning_at(
            AttrPath::attr("backend_options").then("ingress"),
            "Ingress Repeats the Account Default",
            format!(
                "These ingress rules are exactly workspace {ws:?}'s account-level default, so \
                    they change nothing today. Remove them to follow the account default, or \
                    keep them to pin these rules even if the default changes later."
            ),
        );
    }
    let provider = backend.provider_name().unwrap_or_default();
    // The VM types known so far, at plan or (once an expression is known) at apply, before the
    // create: either list alone can contradict `arm`.
    let known: Vec<&String> = [&planned.worker_vm_types, &planned.scheduler_vm_types]
        .into_iter()
        .filter_map(|t| t.known())
        .flatten()
        .collect();
    if !known.is_empty()
        && let Some(why) = request::arm_mismatch(planned, &provider, known)
    {
        diags.error_at(AttrPath::attr("arm"), "Architecture Does Not Match the VM Types", why);
    }
    let port = request::scheduler_port(planned, &overrides);
    if let Some((rules, source)) = effective_rules(planned, defaults, Some(&overrides), account) {
        lockout_warning(port, &rules, source, &ws, diags);
    }
}

/// Warns when no rule admits the scheduler's port: clients could not connect.
pub(super) fn lockout_warning(
    port: i64,
    rules: &RuleSet,
    source: Source,
    ws: &str,
    diags: &mut Diagnostics,
) {
    let open = rules.rules().iter().any(|r| r.ports.iter().any(|p| i64::from(*p) == port));
    if open || rules.is_empty() {
        return;
    }
    let (path, whose) = match source {
        Source::Blocks => (
            Some(AttrPath::attr("backend_options").then("ingress")),
            "its own ingress (its `ingress` blocks)".to_string(),
        ),
        Source::Network => (
            Some(AttrPath::attr("scheduler_port")),
            "the firewall `scheduler_port` makes".to_string(),
        ),
        Source::Defaults => (None, "the provider's `cluster_defaults` ingress".to_string()),
        Source::Account => {
            (None, format!("workspace {ws:?}'s account-level ingress (coiled_backend_options)"))
        }
    };
    let default_note = if port == super::model::DEFAULT_SCHEDULER_PORT {
        " (Coiled's default; the 8786 and 8787 of older Coiled releases are no longer the \
            scheduler's ports)"
    } else {
        ""
    };
    let detail = format!(
        "This cluster's scheduler will listen on port {port}{default_note}, but {whose} admits \
            only {}. Clients could not connect to it. Add {port} to the `ports` of the rule for \
            your clients' network{}.",
        defaults::describe(rules),
        if source == Source::Account { ", or give the cluster ingress of its own" } else { "" }
    );
    diags.push(Severity::Warning, path, "Scheduler Port Not Open", detail);
}

/// Warns where this machine's Coiled configuration sets a cluster value that differs from the
/// plan's: Coiled's Python client would apply it, the provider does not.
pub(super) fn local_config_warnings(
    planned: &ClusterModel,
    effective: Option<&RuleSet>,
    local: &LocalClusterSettings,
    from_workspace: bool,
    diags: &mut Diagnostics,
) {
    // Unknown, the workspace's configuration chooses it at apply (`from_workspace`), else `true`,
    // unless an unknown value of the configuration does.
    let uses = match planned.use_scheduler_public_ip {
        Field::Known(v) => Some((v, v.to_string())),
        Field::Unknown if from_workspace => Some((
            true,
            "the workspace's `coiled.use_scheduler_public_ip`, else `true`".to_string(),
        )),
        _ => None,
    };
    if let Some(s) = &local.use_scheduler_public_ip
        && let Some((_, uses)) = uses.filter(|(v, _)| *v != s.value)
    {
        diags.warning_at(
            AttrPath::attr("use_scheduler_public_ip"),
            "Scheduler Address Setting Not Applied",
            format!(
                "{} sets `{}: {}`, which Coiled's Python client applies to the clusters it \
                    creates; this cluster uses {}. The provider never applies it: a plan must not \
                    depend on whose machine runs it. Set `use_scheduler_public_ip = {}` on the \
                    cluster, or in the provider's `cluster_defaults`, to get it here.",
                s.source, s.key, s.value, uses, s.value
            ),
        );
    }
    if let Some(s) = &local.ingress
        && effective.is_none_or(|e| !e.same_as(&s.value))
    {
        diags.warning_at(
            AttrPath::attr("backend_options").then("ingress"),
            "Ingress Setting Not Applied",
            format!(
                "{} sets `{}` ({}), but this cluster's ingress is {}. The provider never applies \
                    it (a plan must not depend on whose machine runs it), and Coiled's Python \
                    client 1.135.6 reads the key without applying it either. Set these rules in \
                    `backend_options {{ ingress {{ … }} }}`, in the provider's \
                    `cluster_defaults`, or account-wide in `coiled_backend_options`.",
                s.source,
                s.key,
                defaults::describe(&s.value),
                effective.map_or_else(
                    || "not known before apply (inherited)".to_string(),
                    defaults::describe
                )
            ),
        );
    }
}
