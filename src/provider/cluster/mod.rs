//! `coiled_cluster`: a Dask cluster, with its own firewall (`backend_options { ingress }`) and the
//! choice of public or private scheduler address (`use_scheduler_public_ip`).
//!
//! API calls: `POST /api/v2/clusters/account/{ws}/` (create), `GET …/id/{id}` (wait, read),
//! `GET …/name/{name}` (create, import, and recovering a create whose answer was lost),
//! `DELETE …/id/{id}` (destroy, and cleaning up a create that failed), `GET/POST/DELETE
//! /api/v2/workers/…` (scaling). Files: this one (schema, validation, planning, CRUD), [`model`],
//! [`lifecycle`] (create and waits), [`import`], [`state`] (readiness rules), [`data_source`].

pub mod actions;
pub mod connection;
pub mod data_source;
mod import;
mod lifecycle;
pub mod list;
pub mod model;
mod plan_checks;
mod prepare;
pub mod request;
pub mod state;
mod validate;

use async_trait::async_trait;
use std::sync::Arc;
use tfplugin::diag::Diagnostics;
use tfplugin::framework::{Ctx, NewState, Plan, Private, Read, Resource};
use tfplugin::model::Field;
use tfplugin::schema::Schema;
use tfplugin::value::{AttrPath, Number, Value};

use super::defaults::ClusterDefaults;
use super::ingress::{self, Reading, RuleSet};
use super::{DefaultsState, ProviderData};
use crate::api::Op;
use import::{ImportMarker, imported_state, keep_worker_count, refresh_reported};
use lifecycle::{Target, warn_of_missing_address, warn_of_missing_workers};
use model::{
    ClusterModel, DEFAULT_WAIT_FOR_WORKERS, INTERRUPTED, STOPPED_CANNOT_SCALE, UnfinishedScale,
    state_from_details,
};
use state::counted_workers;

pub struct ClusterResource {
    pub(crate) data: Arc<ProviderData>,
}

impl ClusterResource {
    /// The values a configuration leaves out: the resource's defaults and the provider's
    /// `cluster_defaults` (unknown while those are); values added to the schema later stay as the
    /// prior state has them, so that upgrading the provider plans no change.
    fn plan_defaults(
        config: &ClusterModel,
        prior: &ClusterModel,
        planned: &mut ClusterModel,
        defaults: &DefaultsState,
        create: bool,
    ) -> Vec<&'static str> {
        let mut predicted = Vec::new();
        if config.wait_for_workers.is_null() {
            // Unset stays null, as the client keeps `None`; a prior equal to the default is kept.
            let is_default = prior.wait_for_workers.known().and_then(Number::as_f64)
                == Some(DEFAULT_WAIT_FOR_WORKERS);
            planned.wait_for_workers =
                if is_default { prior.wait_for_workers.clone() } else { Field::Null };
            predicted.push(tfplugin::attr!(ClusterModel, wait_for_workers));
        }
        // A new cluster's choices the workspace's Dask configuration makes are known at apply,
        // which reads it (rule `workspace-choices`); an existing one keeps its own.
        if config.use_scheduler_public_ip.is_null() {
            planned.use_scheduler_public_ip = match defaults {
                DefaultsState::Unknown => Field::Unknown,
                DefaultsState::Set(ClusterDefaults {
                    use_scheduler_public_ip: Some(v), ..
                }) => Field::Known(*v),
                _ if create => Field::Unknown,
                _ if prior.use_scheduler_public_ip.is_null() => Field::Known(true),
                _ => prior.use_scheduler_public_ip.clone(),
            };
            predicted.push(tfplugin::attr!(ClusterModel, use_scheduler_public_ip));
        }
        if config.tags.is_null() {
            planned.tags = match defaults {
                DefaultsState::Unknown => Field::Unknown,
                DefaultsState::Set(ClusterDefaults { tags: Some(t), .. }) => {
                    Field::Known(t.clone())
                }
                _ if create => Field::Null,
                _ => prior.tags.clone(),
            };
            predicted.push(tfplugin::attr!(ClusterModel, tags));
        }
        if config.use_dashboard_https.is_null() {
            planned.use_dashboard_https =
                if create { Field::Unknown } else { prior.use_dashboard_https.clone() };
            predicted.push(tfplugin::attr!(ClusterModel, use_dashboard_https));
        }
        if config.when_stopped.is_null() {
            planned.when_stopped = if create || !prior.when_stopped.is_null() {
                Field::Known("recreate".into())
            } else {
                Field::Null
            };
            predicted.push(tfplugin::attr!(ClusterModel, when_stopped));
        }
        predicted
    }

    /// A cluster without a firewall of its own takes the provider's `cluster_defaults` ingress: its
    /// `firewall_rules` show them, and a change of them replaces it.
    fn plan_default_rules(
        prior: &ClusterModel,
        planned: &mut ClusterModel,
        defaults: &DefaultsState,
        (creating, requires_replace): (bool, &mut Vec<AttrPath>),
        predicted: &mut Vec<&'static str>,
    ) {
        if planned.has_ingress_blocks()
            || planned.network_unknown()
            || planned.network_rules(None).is_some()
        {
            return;
        }
        let rows = match defaults {
            DefaultsState::Set(ClusterDefaults { ingress: Some(rules), .. }) => {
                Field::Known(rules.rows_value())
            }
            DefaultsState::Unknown => Field::Unknown,
            _ => return,
        };
        if !creating && prior.firewall_rules != rows {
            requires_replace.push(AttrPath::attr("firewall_rules"));
        }
        planned.firewall_rules = rows;
        predicted.push(tfplugin::attr!(ClusterModel, firewall_rules));
    }

    /// The cluster's own firewall in a plan, read once: `firewall_rules` is null beside its ingress
    /// blocks, or predicted from the rules `scheduler_port` / `allow_ingress_from` make: unknown
    /// while an argument they are made from is, or (without `scheduler_port`) until the apply reads
    /// the workspace's port (rule `workspace-choices`).
    fn plan_own_rules(
        planned: &mut ClusterModel,
        predicted: &mut Vec<&'static str>,
        diags: &mut Diagnostics,
    ) {
        if planned.has_ingress_blocks() {
            // The `ingress` blocks hold the rules: `firewall_rules` does not repeat them (unknown
            // while the blocks are, which may turn out to be none).
            predicted.push(tfplugin::attr!(ClusterModel, firewall_rules));
            planned.firewall_rules =
                if planned.ingress().is_unknown() { Field::Unknown } else { Field::Null };
            let at = AttrPath::attr("backend_options").then("ingress");
            ingress::read(&planned.ingress(), &Reading::at(at), diags);
            return;
        }
        if planned.network_unknown() {
            planned.firewall_rules = Field::Unknown;
            predicted.push(tfplugin::attr!(ClusterModel, firewall_rules));
            return;
        }
        let Some(net) = planned.network_rules(None) else { return };
        let open = coiled_firewall::world_open_ports(net.rules());
        if !open.is_empty()
            && !planned.acknowledge_world_open_ingress.known().copied().unwrap_or(false)
        {
            let at = if planned.allow_ingress_from.is_null() {
                "scheduler_port"
            } else {
                "allow_ingress_from"
            };
            diags.warning_at(
                AttrPath::attr(at),
                "Ingress Open to the Whole Internet",
                format!(
                    "Without `allow_ingress_from`, the firewall `scheduler_port` makes \
                    (as in Coiled's client) admits ports {} from any address. Set \
                    `allow_ingress_from` to your clients' network, or \
                    `acknowledge_world_open_ingress = true` to keep this on purpose.",
                    open.iter().map(u16::to_string).collect::<Vec<_>>().join(", ")
                ),
            );
        }
        predicted.push(tfplugin::attr!(ClusterModel, firewall_rules));
        planned.firewall_rules = if planned.opens_workspace_port() {
            Field::Unknown
        } else {
            Field::Known(net.rows_value())
        };
    }
}

const DESCRIPTION: &str = "A Coiled Dask cluster, equivalent to `coiled.Cluster(...)`, with its own firewall \
    (`backend_options { ingress { … } }`) and the choice of a public or private \
    scheduler address.\n\n\
    Creating waits until the scheduler is up and enough workers have started \
    (`wait_for_workers`). `n_workers` changes in place by scaling; the arguments that \
    steer only Terraform and the client's choice of address change state only; every \
    other change replaces the cluster. Coiled stops idle clusters on its own: a cluster \
    found stopped is removed from state with a warning, and the next apply creates a new \
    one; with `when_stopped = \"keep\"` it stays in state, stopped. Values the \
    configuration leaves out come from the provider's `cluster_defaults` where it sets \
    them.";

#[async_trait]
impl Resource for ClusterResource {
    type Model = ClusterModel;

    fn type_name(&self) -> &'static str {
        "coiled_cluster"
    }

    fn identity(&self) -> Option<tfplugin::identity::IdentitySchema> {
        Some(tfplugin::identity::IdentitySchema::required_strings(&[
            ("workspace", "The cluster's workspace."),
            ("id", "Coiled's numeric cluster id."),
        ]))
    }

    fn schema(&self) -> Schema {
        Schema { version: 1, block: ClusterModel::schema_block(DESCRIPTION) }
    }

    async fn validate(&self, _ctx: &Ctx, config: &Value, diags: &mut Diagnostics) {
        validate::validate_config(config, diags);
    }

    fn upgrade_json(&self, version: i64, json: &serde_json::Value) -> Option<serde_json::Value> {
        (version == 0).then(|| model::upgrade_v0(json))
    }

    async fn modify_plan(&self, ctx: &Ctx, plan: &mut Plan<ClusterModel>, diags: &mut Diagnostics) {
        let defaults = self.data.cluster_defaults();
        import::adopt_unreadable(plan, defaults.set().and_then(|d| d.ingress.as_ref()));
        let creating = plan.is_create();
        let (config, prior) = (std::mem::take(&mut plan.config), std::mem::take(&mut plan.prior));
        let mut planned = std::mem::take(&mut plan.planned);
        let mut predicted = Self::plan_defaults(&config, &prior, &mut planned, &defaults, creating);
        if !creating {
            predicted.extend(model::keep_prior_choices(&config, &prior, &mut planned));
            if planned.has_ingress_blocks() {
                // Its `ingress` blocks hold its rules: they are not stored twice.
                planned.firewall_rules = Field::Null;
                predicted.push(tfplugin::attr!(ClusterModel, firewall_rules));
            } else if prior.firewall_rules.is_null()
                && !planned.network_unknown()
                && let Some(own) = planned.own_rules().or_else(|| {
                    let read = RuleSet::of_state(&prior.ingress()).filter(|r| !r.is_empty());
                    read.filter(|_| planned.opens_workspace_port())
                })
            {
                // Rules not in state (after an import) are the cluster's own; those that open the
                // workspace's port, which only its Dask configuration says, as the import read
                // them.
                planned.firewall_rules = Field::Known(own.rows_value());
                predicted.push(tfplugin::attr!(ClusterModel, firewall_rules));
            }
            plan_checks::scaling_checks(&self.data, &prior, &planned, diags).await;
            plan_checks::unfinished_work(&plan.private, &planned, diags);
        }
        let set = defaults.set();
        if creating {
            if let Some(ws) = self.data.planned_workspace(&config.workspace).await {
                planned.workspace = Field::Known(ws);
                predicted.push(tfplugin::attr!(ClusterModel, workspace));
            }
            // An unset name stays unknown until apply, which draws it once: a name drawn here would
            // differ between the plan and the apply-time plan.
            // `status` stays unknown: an interrupted create records the cluster as it then is.
            Self::plan_own_rules(&mut planned, &mut predicted, diags);
        } else if prior.n_workers != planned.n_workers
            || plan.private == INTERRUPTED
            || UnfinishedScale::read(&plan.private).is_some()
        {
            // Scaling, or waiting in place for an interrupted create or scale: the status after the
            // wait is what the server then says (ready by Coiled's rule need not be `ready`).
            planned.status = Field::Unknown;
            predicted.push(tfplugin::attr!(ClusterModel, status));
        }
        let replacing = (creating, &mut plan.requires_replace);
        Self::plan_default_rules(&prior, &mut planned, &defaults, replacing, &mut predicted);
        // Left as it was, the proposal (the prior state itself) needs no comparing.
        let untouched = plan.proposal_is_prior && planned == prior;
        let changes = creating || (!untouched && !planned.encode().same_as(&prior.encode()));
        for name in predicted {
            plan.mark_predicted(name);
        }
        if !diags.has_errors() && changes {
            let (configured, planned_ws) = (&config.workspace, planned.workspace.as_deref());
            // Only a server that answered the access check is asked more.
            if self.data.check_plan_access(ctx, configured, planned_ws, diags).await && creating {
                plan_checks::server_checks(&self.data, &planned, set, diags).await;
            }
        }
        if changes {
            validate::private_ingress_on_public_address(&config, &planned, diags);
            // After the server's checks, which learn what the workspace's configuration chooses.
            let effective = plan_checks::effective_rules(&planned, set, None, None).map(|(r, _)| r);
            let from_workspace = config.use_scheduler_public_ip.is_null()
                && set.is_none_or(|d| d.use_scheduler_public_ip.is_none());
            plan_checks::local_config_warnings(
                &planned,
                effective.as_ref(),
                &self.data.local_settings(),
                from_workspace,
                diags,
            );
        }
        (plan.config, plan.prior, plan.planned) = (config, prior, planned);
    }

    async fn create(
        &self,
        ctx: &Ctx,
        mut planned: ClusterModel,
        config: ClusterModel,
        diags: &mut Diagnostics,
    ) -> Option<NewState<ClusterModel>> {
        let coiled = self.data.require(diags).await?;
        // The apply-time plan checked the token; creating then names the workspace when it was left
        // to the default.
        let op = Op::new(planned.timeout(|t| &t.create), ctx.stop.clone());
        let ws = coiled.workspace_for(&op, planned.workspace.as_deref(), diags).await?;
        planned.workspace = Field::Known(ws.clone());
        let random_name = || format!("{ws}-{:06x}", rand::random::<u32>() & 0xff_ffff);
        let name = planned.name.known().cloned().unwrap_or_else(random_name);
        planned.name = Field::Known(name.clone());
        if !lifecycle::name_is_free(&coiled, &op, &ws, &name, diags).await {
            return None;
        }
        let prepared = prepare::prepare(&coiled, &op, &ws, &planned, diags).await?;
        let resolved = &prepared.resolved;
        request::take_workspace_choices(&config, &mut planned, &resolved.overrides);
        // Its firewall: its own, or the provider's defaults; else it inherits.
        let defaults = self.data.cluster_defaults();
        let own =
            plan_checks::effective_rules(&planned, defaults.set(), Some(&resolved.overrides), None)
                .map(|(r, _)| r);
        planned.worker_vm_types = Field::Known(resolved.worker_vm_types.clone());
        planned.scheduler_vm_types = Field::Known(resolved.scheduler_vm_types.clone());
        planned.software = Field::Known(resolved.env_name.clone());
        // Rules the server may not echo: the cluster's own, else the account's it inherits now.
        let inherited = own.clone().or(prepared.account_rules);
        if let Some(rules) = inherited.as_ref().filter(|_| !planned.has_ingress_blocks()) {
            planned.firewall_rules = Field::Known(rules.rows_value());
        }
        let body = request::create_body(&planned, own.as_ref(), prepared.resolved);
        tracing::info!(workspace = %ws, name = %name, "creating cluster");
        let id = lifecycle::post_create(&coiled, &op, &ws, &name, &body, diags).await?;
        let target = Target { coiled: &coiled, ws: &ws, id, base: &planned, own: own.as_ref() };
        let fraction = planned.wait_fraction();
        match lifecycle::wait_ready(&coiled, &op, &ws, id, fraction, state::Wait::Start).await {
            Ok(d) => {
                warn_of_missing_address(&planned, &d, diags);
                Some(NewState {
                    state: state_from_details(&planned, own.as_ref(), &d, &ws),
                    private: Vec::new(),
                })
            }
            Err(failure) => lifecycle::fail_wait(target, ctx, failure, true, diags).await,
        }
    }

    async fn read(
        &self,
        ctx: &Ctx,
        state: ClusterModel,
        private: &Private,
        diags: &mut Diagnostics,
    ) -> Option<Read<ClusterModel>> {
        let coiled = match self.data.coiled(diags).await {
            Ok(Some(c)) => c,
            Ok(None) => return Some(Read::Found(NewState { state, private: private.clone() })),
            Err(()) => return None,
        };
        let op = Op::new(super::DEFAULT_API_TIMEOUT, ctx.stop.clone());
        let ws = state.workspace.known()?.clone();
        let Some(id) = state.cluster_id() else {
            diags.bug(
                "Invalid Cluster ID in State",
                format!("{:?} is not a cluster id.", state.id.known()),
            );
            return None;
        };
        let gone = |diags: &mut Diagnostics, why: String| {
            diags.warning(
                "Cluster No Longer Running",
                format!(
                    "Cluster {id} ({}) {why}. Coiled stops clusters on its own (idle timeout, no \
                        client connected, or an unresponsive scheduler); they can be stopped \
                        outside Terraform, or by a destroy that was interrupted. It has been \
                        removed from state; the next apply creates a new one. Set `idle_timeout` \
                        to keep clusters longer, or `when_stopped = \"keep\"` to keep a stopped \
                        cluster in state.",
                    state.name.as_deref().unwrap_or("?")
                ),
            );
            Some(Read::Gone)
        };
        match coiled.client.get_cluster(&op, &ws, id).await {
            Ok(d) if state.keeps_stopped() && d.current_state.has_ended() => {
                diags.warning(
                    "Cluster Stopped",
                    format!(
                        "Cluster {id} ({}) is {}. It stays in state (`when_stopped = \"keep\"`) \
                            and the plan changes nothing; to start a new one, run `terraform \
                            apply -replace=<this resource's address>`.",
                        state.name.as_deref().unwrap_or("?"),
                        d.current_state.described(),
                    ),
                );
                let mut kept = state.clone();
                kept.status = Field::Known(d.current_state.state.clone());
                Some(Read::Found(NewState {
                    state: kept,
                    private: import::private_after_read(private),
                }))
            }
            Ok(d) => match d.current_state.state.as_str() {
                "stopped" | "stopping" => {
                    gone(diags, format!("is {}", d.current_state.described()))
                }
                "error" => gone(
                    diags,
                    format!(
                        "failed: {}",
                        d.current_state.reason.as_deref().unwrap_or("no reason given")
                    ),
                ),
                _ => {
                    warn_of_missing_address(&state, &d, diags);
                    // Unreported rules are those state holds (the create's, made with the
                    // workspace's port), else the cluster's own where they do not open that port.
                    let own = state.own_rules().filter(|_| state.firewall_rules.is_null());
                    let mut refreshed = state_from_details(&state, own.as_ref(), &d, &ws);
                    refresh_reported(&mut refreshed, &d);
                    keep_worker_count(&state, &mut refreshed, &d);
                    let mut private = import::private_after_read(private);
                    match UnfinishedScale::read(&private) {
                        // Still asked for what the unfinished scale asked: state keeps its count.
                        Some(m)
                            if m.scaling_to == d.desired_workers
                                || m.scaling_to == counted_workers(&d.workers).len() as i64 =>
                        {
                            refreshed.n_workers = state.n_workers.clone()
                        }
                        // Scaled since by someone else: state is what the server is now asked for.
                        Some(_) => private = Vec::new(),
                        None => {}
                    }
                    // Against the count state now asks for: one scaled down elsewhere is drift.
                    warn_of_missing_workers(&refreshed, &d, diags);
                    Some(Read::Found(NewState { state: refreshed, private }))
                }
            },
            Err(e) if e.is_not_found() => gone(diags, "no longer exists".into()),
            Err(e) => coiled.failed(diags, "Unable to Read Cluster", None, &e),
        }
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: ClusterModel,
        planned: ClusterModel,
        _config: ClusterModel,
        private: &Private,
        diags: &mut Diagnostics,
    ) -> Option<NewState<ClusterModel>> {
        // A scale not seen through is asked for again (only what is missing) and waited for.
        let scaling =
            prior.n_workers != planned.n_workers || UnfinishedScale::read(private).is_some();
        if !scaling && private.as_slice() != INTERRUPTED && !planned.scheduler_address.is_unknown()
        {
            // Only values Terraform keeps (wait_for_workers, timeouts, acknowledgements, values
            // taken from the configuration after an import) change: no API call.
            return Some(NewState { state: planned.known_from(&prior), private: private.clone() });
        }
        if scaling && prior.is_stopped() {
            diags.error_at(AttrPath::attr("n_workers"), "Cluster Is Stopped", STOPPED_CANNOT_SCALE);
            return Some(NewState { state: prior, private: private.clone() });
        }
        let coiled = self.data.require(diags).await?;
        let op = Op::new(planned.timeout(|t| &t.update), ctx.stop.clone());
        let ws = prior.workspace.known()?.clone();
        let id = prior.cluster_id()?;
        let own = planned.own_rules();
        if !scaling && private.as_slice() != INTERRUPTED {
            // The address `use_scheduler_public_ip` now chooses is read (the other is not stored).
            let d = coiled.client.get_cluster(&op, &ws, id).await;
            let d = coiled.reported(d, diags, "Unable to Read Cluster", None)?;
            let address = match planned.address_in(&d) {
                Ok(address) => Field::from_option(address),
                Err(why) => {
                    diags.error_at(
                        AttrPath::attr("use_scheduler_public_ip"),
                        "No Public Scheduler Address",
                        format!("{why}."),
                    );
                    return Some(NewState { state: prior, private: private.clone() });
                }
            };
            let updated = ClusterModel { scheduler_address: address, ..planned.known_from(&prior) };
            return Some(NewState { state: updated, private: private.clone() });
        }
        let target = Target { coiled: &coiled, ws: &ws, id, base: &prior, own: own.as_ref() };
        let mut new =
            lifecycle::scale_and_wait(target, ctx, &op, &planned, scaling, private, diags).await?;
        // A scale changes no firewall: what the plan holds stays, though a server that reported no
        // rules before reports them now (the next refresh shows that, as any drift).
        if matches!(planned.firewall_rules, Field::Known(_) | Field::Null) {
            new.state.firewall_rules = planned.firewall_rules.clone();
        }
        Some(new)
    }

    async fn delete(
        &self,
        ctx: &Ctx,
        prior: ClusterModel,
        _private: &Private,
        diags: &mut Diagnostics,
    ) {
        let Some(coiled) = self.data.require(diags).await else { return };
        let op = Op::new(prior.timeout(|t| &t.delete), ctx.stop.clone());
        let (Some(ws), Some(id)) = (prior.workspace.as_deref(), prior.cluster_id()) else { return };
        tracing::info!(cluster = id, "stopping cluster");
        if let Err(e) = lifecycle::stop_and_wait(&coiled, &op, ws, id, "Terraform destroy").await {
            coiled.report(diags, "Unable to Stop Cluster", None, &e);
        }
    }

    async fn import(
        &self,
        ctx: &Ctx,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Option<NewState<ClusterModel>> {
        let coiled = self.data.require(diags).await?;
        let op = Op::new(super::DEFAULT_API_TIMEOUT, ctx.stop.clone());
        let (ws, d) = import::find_imported(&coiled, &op, id, diags).await?;
        if d.current_state.has_ended() {
            diags.error(
                "Cluster Not Running",
                format!(
                    "Cluster {} is {}; only running clusters can be imported.",
                    d.id, d.current_state.state
                ),
            );
            return None;
        }
        let account = coiled.account_rules(&op, &ws).await;
        let state = imported_state(&d, account.as_ref(), &ws);
        // What the API does not report is taken from the configuration at the first plan (see
        // `adopt_unreadable`), instead of forcing a replacement.
        let private = serde_json::to_vec(&ImportMarker::of(&d)).unwrap_or_default();
        Some(NewState { state, private })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use model::valid_name;
    use serde_json::json;

    /// An ingress block opening `port` to `cidr`.
    fn block(cidr: &str, port: i64) -> Value {
        let ports = Value::Set(vec![Value::int(port)]);
        Value::object([("cidr", Value::string(cidr)), ("ports", ports)])
    }

    #[test]
    fn create_body_matches_the_coiled_client() {
        let ingress = Value::Set(vec![block("10.1.0.0/16", 8786), block("10.32.0.0/16", 8787)]);
        let backend = Value::object([
            ("region", Value::string("us-east-2")),
            ("zone", Value::Null),
            ("spot", Value::Null),
            ("ingress", ingress),
        ]);
        let planned = ClusterModel::decode(&Value::object([
            ("name", Value::string("etl")),
            ("n_workers", Value::int(4)),
            ("use_scheduler_public_ip", Value::Bool(false)),
            ("software", Value::string("my-env")),
            ("backend_options", backend),
        ]));
        let resolved = |o: &str| request::Resolved {
            worker_vm_types: vec!["m6i.large".into()],
            scheduler_vm_types: vec!["m6i.xlarge".into()],
            env_name: "my-env".into(),
            overrides: request::Overrides(serde_json::from_str(o).unwrap()),
        };
        let body = |m: &ClusterModel, own: Option<&RuleSet>, overrides: &str| {
            serde_json::to_value(request::create_body(m, own, resolved(overrides))).unwrap()
        };
        let b = body(&planned, planned.own_rules().as_ref(), "{}");
        assert_eq!(b["name"], "etl");
        assert_eq!(b["workers"], 4);
        assert_eq!(b["env_name"], "my-env");
        assert_eq!(b["env_id"], serde_json::Value::Null);
        assert_eq!(b["worker_instance_types"], json!(["m6i.large"]));
        assert_eq!(b["use_aws_creds_endpoint"], true);
        assert_eq!(b["dask_config"], json!({}));
        assert_eq!(
            b["options"],
            json!({"region_name": "us-east-2", "multizone": true,
                "firewall_spec": {"ingress": [{"ports": [8786], "cidr": "10.1.0.0/16"}, {"ports": [8787], "cidr": "10.32.0.0/16"}]}}),
            "a private scheduler sends nothing more: the client only hides the dashboard when \
                HTTPS is off"
        );
        let tags = [("team", "a"), ("empty", "")].map(|(k, v)| (k.to_string(), Value::string(v)));
        let public = ClusterModel::decode(&Value::object([
            ("name", Value::string("x")),
            ("tags", Value::Map(tags.into())),
            ("backend_options", Value::object([("zone", Value::string("us-east-2a"))])),
        ]));
        let overrides = r#"{"coiled": {"tags": {"org": "x", "team": "b"}, "scheduler-options": {"port": 443}}, "distributed.scheduler.idle_timeout": "1h"}"#;
        let public = body(&public, None, overrides);
        assert_eq!(
            public["options"],
            json!({"zone_name": "us-east-2a"}),
            "a named zone turns multizone off"
        );
        assert_eq!(
            public["tags"],
            json!({"org": "x", "team": "a"}),
            "overrides first, empty values dropped"
        );
        assert_eq!(public["scheduler_options"], json!({"port": 443, "idle_timeout": "1h"}));
        assert_eq!(
            public["dask_config"]["coiled"]["tags"]["org"], "x",
            "the overrides travel as dask_config"
        );
    }

    #[test]
    fn names_follow_coiled_rules() {
        assert!(valid_name("etl-2026_a"));
        for bad in ["", "a b", "a/b", "ä", &"x".repeat(129)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
