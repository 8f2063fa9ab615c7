//! Data source `coiled_cluster`: a running cluster, looked up by id or by name.
//!
//! API calls: `GET /api/v2/clusters/account/{ws}/id/{id}`, `GET …/name/{name}`.

use std::sync::Arc;

use async_trait::async_trait;

use super::super::ingress::{self, RuleSet};
use super::super::{
    Checked, Coiled, DEFAULT_API_TIMEOUT, ProviderData, lookup_name, refuse, workspace_slug,
};
use super::state as cluster_state;
use crate::api::{ClusterDetails, Op};
use tfplugin::diag::{Diagnostics, Severity};
use tfplugin::framework::{Ctx, DataSource};
use tfplugin::model::Field;
use tfplugin::schema::Schema;
use tfplugin::value::{AttrPath, Value};

pub struct ClusterDataSource {
    pub(crate) data: Arc<ProviderData>,
}

#[async_trait]
impl DataSource for ClusterDataSource {
    fn type_name(&self) -> &'static str {
        "coiled_cluster"
    }

    fn schema(&self) -> Schema {
        Schema { version: 0, block: ClusterLookup::schema_block(DESCRIPTION) }
    }

    async fn validate(&self, _ctx: &Ctx, config: &Value, diags: &mut Diagnostics) {
        ClusterLookup::check_values(config, diags);
        let config = ClusterLookup::decode(config);
        if config.id.is_null() == config.name.is_null()
            && !config.id.is_unknown()
            && !config.name.is_unknown()
        {
            diags.error("Cluster Not Identified", "Give exactly one of `id` and `name`.");
        }
    }

    async fn read(&self, ctx: &Ctx, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let mut out = ClusterLookup::decode(config);
        let (ws, d) = lookup(&self.data, ctx, [&out.workspace, &out.id, &out.name], diags).await?;
        let id = d.id;
        let ended = d.current_state.has_ended();
        if ended && out.allow_stopped.known() != Some(&true) {
            diags.error_at(
                AttrPath::attr("id"),
                "Cluster Not Running",
                format!(
                    "Cluster {id} ({}) is {}{}. Set `allow_stopped = true` to read it anyway (its \
                        addresses are then null).",
                    d.name,
                    d.current_state.state,
                    d.current_state.reason().map(|r| format!(": {r}")).unwrap_or_default()
                ),
            );
            return None;
        }
        let chosen =
            if ended { None } else { address(&d, &out.use_scheduler_public_ip, "", diags)? };
        out.id = Field::Known(d.id.to_string());
        out.name = Field::Known(d.name.clone());
        out.workspace = Field::Known(ws);
        out.status = Field::Known(d.current_state.state.clone());
        out.n_workers = Field::Known(d.desired_workers);
        out.scheduler_address = Field::from_option(chosen);
        out.dashboard_address = Field::from_option(
            d.scheduler.as_ref().filter(|_| !ended).and_then(|s| s.dashboard_address.clone()),
        );
        out.created_at = Field::from_option(d.created.clone());
        out.firewall_rules =
            Field::from_option(d.ingress().map(|w| RuleSet::from_wire(&w).rows_value()));
        Some(out.encode())
    }
}

const DESCRIPTION: &str = "Reads a running Coiled cluster by `id` or by `name`: its state, scheduler addresses \
    and the firewall rules that apply to it. A cluster that is stopping, stopped or \
    failed is an error, unless `allow_stopped` is set; its addresses are then null, \
    since nothing listens there any more.";

tfplugin::model! {
    /// `data.coiled_cluster`'s configuration and result.
    struct ClusterLookup {
        /// Cluster id. Give this or `name`.
        #[attribute(optional_computed, validated(cluster_id))]
        id: String,
        /// Name of a running cluster. Give this or `id`.
        #[attribute(optional_computed, validated(lookup_name))]
        name: String,
        /// Workspace. Defaults to the provider's workspace.
        #[attribute(optional_computed, validated(workspace_slug))]
        workspace: String,
        /// Which address `scheduler_address` gives: the public one (`true`, the default, when the
        /// cluster has one) or the private one.
        #[attribute(optional)]
        use_scheduler_public_ip: bool,
        /// Read a cluster by `id` even when it is `stopping`, `stopped` or in `error`, instead of
        /// failing. Default `false`. (By `name`, only running clusters are found.)
        #[attribute(optional)]
        allow_stopped: bool,
        /// Coiled's cluster state: `pending`, `starting`, `scaling` or `ready` for a running
        /// cluster; `stopping`, `stopped` or `error` only with `allow_stopped`.
        #[attribute(computed)]
        status: String,
        /// Target number of workers.
        #[attribute(computed)]
        n_workers: i64,
        /// Address a client connects to, `tls://IP:PORT`, as chosen by `use_scheduler_public_ip`.
        /// For both addresses of one cluster, read it twice, with `use_scheduler_public_ip` true
        /// and false.
        #[attribute(computed)]
        scheduler_address: String,
        /// URL of the Dask dashboard. Sensitive: an HTTPS dashboard's URL carries its access token
        /// (`?token=…`), as Coiled gives it.
        #[attribute(computed, sensitive)]
        dashboard_address: String,
        /// When the cluster was created (ISO 8601).
        #[attribute(computed)]
        created_at: String,
        /// The rules that apply to the cluster, one row per (port, source), protocol `tcp`; null
        /// when the server does not report them.
        #[attribute(with = ingress::firewall_rules_attribute)]
        firewall_rules: Value,
    }
}

/// `id`: a cluster id is a number.
pub(super) fn cluster_id(v: &Value) -> Checked {
    let bad = v.as_str().filter(|id| id.parse::<i64>().is_err());
    refuse(bad, "Invalid Cluster ID", |id| format!("{id:?} is not a cluster id (a number)."))
}

/// The address `use_scheduler_public_ip` chooses (the public one unless it is false); an error on
/// that attribute, its detail after `lead`, when the cluster has no public one.
pub(super) fn address(
    d: &ClusterDetails,
    use_scheduler_public_ip: &Field<bool>,
    lead: &str,
    diags: &mut Diagnostics,
) -> Option<Option<String>> {
    let public = use_scheduler_public_ip.known().copied().unwrap_or(true);
    match cluster_state::scheduler_address(d, public, super::model::DEFAULT_SCHEDULER_PORT) {
        Ok(address) => Some(address),
        Err(why) => {
            diags.error_at(
                AttrPath::attr("use_scheduler_public_ip"),
                "No Public Scheduler Address",
                format!("{lead}{why}."),
            );
            None
        }
    }
}

/// The cluster a data source or ephemeral resource names by `[workspace, id, name]`: by id or by
/// name, in the workspace (the provider's by default), with the workspace; a diagnostic on the
/// attribute when there is none.
pub(super) async fn lookup(
    data: &ProviderData,
    ctx: &Ctx,
    [workspace, id, name]: [&Field<String>; 3],
    diags: &mut Diagnostics,
) -> Option<(String, ClusterDetails)> {
    let (coiled, op, ws) =
        data.session(ctx, DEFAULT_API_TIMEOUT, workspace.as_deref(), diags).await?;
    // An `id` that is not a number was refused by its declared check.
    let id = match id.as_deref() {
        Some(id) => Some(id.parse::<i64>().ok()?),
        None => None,
    };
    let key = (id, name.as_deref());
    let d = find(&coiled, &op, &ws, key, ("Unable to Read Cluster", true), diags).await?;
    Some((ws, d))
}

/// The cluster `id` names, else the running one `name` names, in `ws`: a "Cluster Not Found" error
/// when there is none, and an API error reported under `summary`; `at` points errors at `id` and
/// `name` (a data source's arguments; an import has none).
pub(super) async fn find(
    coiled: &Coiled,
    op: &Op,
    ws: &str,
    (id, name): (Option<i64>, Option<&str>),
    (summary, at): (&str, bool),
    diags: &mut Diagnostics,
) -> Option<ClusterDetails> {
    let path = |attribute: &str| at.then(|| AttrPath::attr(attribute));
    let not_found = |diags: &mut Diagnostics, attribute: &str, detail: String| {
        diags.push(Severity::Error, path(attribute), "Cluster Not Found", detail)
    };
    let id = match (id, name) {
        (Some(id), _) => id,
        (None, Some(name)) => match coiled.client.find_cluster_by_name(op, ws, name).await {
            Ok(Some(c)) => c.id,
            Ok(None) => {
                let detail = format!("No running cluster named {name:?} in workspace {ws:?}.");
                not_found(diags, "name", detail);
                return None;
            }
            Err(e) => return coiled.failed(diags, summary, None, &e),
        },
        _ => return None,
    };
    match coiled.client.get_cluster(op, ws, id).await {
        Err(e) if e.is_not_found() => {
            not_found(diags, "id", format!("No cluster with id {id} in workspace {ws:?}."));
            None
        }
        found => coiled.reported(found, diags, summary, path("id")),
    }
}

/// The data source model's attributes (for the schema check).
#[cfg(test)]
pub(crate) const MODEL_ATTRIBUTES: &[&str] = ClusterLookup::ATTRIBUTES;
