//! Actions (Terraform 1.14 and later) on a running cluster: `coiled_cluster_stop` and
//! `coiled_cluster_scale`. Each makes the one API call the resource makes for the same change, then
//! waits by the same rules (stopped or gone; ready by Coiled's client's rule), and changes no
//! resource's state: a cluster stopped by an action is found stopped by the next refresh, and one
//! scaled away from its `n_workers` is scaled back by the next apply.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tfplugin::diag::Diagnostics;
use tfplugin::framework::Ctx;
use tfplugin::query::{Action, Progress};
use tfplugin::schema::Schema;
use tfplugin::value::{AttrPath, Number, Value};

use super::super::{ProviderData, workspace_slug};
use super::lifecycle::{self, WaitEnd};
use super::model::DEFAULT_WAIT_FOR_WORKERS;
use crate::api::Op;

/// Default time an action waits.
const DEFAULT_WAIT: Duration = Duration::from_secs(20 * 60);

tfplugin::model! {
    /// Both actions' configuration: each action's schema holds the attributes it names.
    struct ActionConfig {
        /// The cluster's id, e.g. `coiled_cluster.etl.id`.
        #[attribute(required)]
        cluster_id: String,
        /// The cluster's workspace. Defaults to the provider's workspace.
        #[attribute(optional, validated(workspace_slug))]
        workspace: String,
        /// How long to wait, as a duration such as `10m`. Default `20m`.
        #[attribute(optional)]
        timeout: String,
        /// The number of workers to scale to (0 to 1000).
        #[attribute(required)]
        n_workers: Number,
        /// Fraction of them (0 to 1) that must have started before the action ends, as for the
        /// resource. Default `0.3`.
        #[attribute(optional)]
        wait_for_workers: Number,
        /// Why, for Coiled's logs. Default `Terraform action`.
        #[attribute(optional)]
        reason: String,
    }
}

/// An action's schema: its `description`, and the attributes of [`ActionConfig`] it names.
fn schema_of(description: &'static str, names: &[&str]) -> Schema {
    let mut block = ActionConfig::schema_block(description);
    block.attributes.retain(|a| names.contains(&a.name));
    Schema { version: 0, block }
}

/// Checks what both actions share; returns the cluster id when known and valid.
fn check_common(c: &ActionConfig, diags: &mut Diagnostics) -> Option<i64> {
    if let Some(t) = c.timeout.known()
        && let Err(e) = crate::provider::duration::parse_timeout(t)
    {
        diags.error_at(AttrPath::attr("timeout"), "Invalid Timeout", e);
    }
    let id = c.cluster_id.known()?;
    match id.parse::<i64>() {
        Ok(n) if n > 0 => Some(n),
        _ => {
            diags.error_at(
                AttrPath::attr("cluster_id"),
                "Invalid Cluster ID",
                format!("{id:?} is not a Coiled cluster id (a whole number)."),
            );
            None
        }
    }
}

/// What both actions start from: the connection, the operation, the workspace and the id.
async fn start(
    data: &ProviderData,
    ctx: &Ctx,
    c: &ActionConfig,
    diags: &mut Diagnostics,
) -> Option<(Arc<crate::provider::Coiled>, Op, String, i64)> {
    let id = check_common(c, diags)?;
    let timeout = crate::provider::duration::timeout_or(c.timeout.as_deref(), DEFAULT_WAIT);
    let (coiled, op, ws) = data.session(ctx, timeout, c.workspace.as_deref(), diags).await?;
    Some((coiled, op, ws, id))
}

/// `coiled_cluster_stop`.
pub struct StopCluster {
    pub(crate) data: Arc<ProviderData>,
}

#[async_trait]
impl Action for StopCluster {
    fn type_name(&self) -> &'static str {
        "coiled_cluster_stop"
    }

    fn schema(&self) -> Schema {
        schema_of(
            "Stops a running cluster (`DELETE …/id/{id}`, as `coiled.Cluster.shutdown()` does) and \
                waits until it has stopped. The cluster's resource is not changed: its next refresh \
                finds it stopped, and then removes it from state (or keeps it, with \
                `when_stopped = \"keep\"`).",
            &["cluster_id", "workspace", "timeout", "reason"],
        )
    }

    async fn validate(&self, _ctx: &Ctx, config: &Value, diags: &mut Diagnostics) {
        ActionConfig::check_values(config, diags);
        check_common(&ActionConfig::decode(config), diags);
    }

    async fn invoke(
        &self,
        ctx: &Ctx,
        config: &Value,
        progress: &Progress,
        diags: &mut Diagnostics,
    ) {
        let c = ActionConfig::decode(config);
        let Some((coiled, op, ws, id)) = start(&self.data, ctx, &c, diags).await else { return };
        progress.say(format!("Stopping cluster {id} of workspace {ws}"));
        let reason = c.reason.as_deref().unwrap_or("Terraform action");
        match lifecycle::stop_and_wait(&coiled, &op, &ws, id, reason).await {
            Ok(()) => progress.say(format!("Cluster {id} has stopped")),
            Err(e) => coiled.report(
                diags,
                "Unable to Stop Cluster",
                Some(AttrPath::attr("cluster_id")),
                &e,
            ),
        }
    }
}

/// `coiled_cluster_scale`.
pub struct ScaleCluster {
    pub(crate) data: Arc<ProviderData>,
}

#[async_trait]
impl Action for ScaleCluster {
    fn type_name(&self) -> &'static str {
        "coiled_cluster_scale"
    }

    fn schema(&self) -> Schema {
        schema_of(
            "Scales a running cluster to `n_workers` as Coiled's client scales \
                    (adding the difference, or removing the surplus by name) and waits as the \
                    resource waits. Removing workers first asks the scheduler to retire them, as \
                    Coiled's client does, where it can be reached. It changes no resource's \
                    state: the cluster's `n_workers` stays as configured, so the next apply \
                    scales it back. Use it for temporary capacity, and apply again once the job \
                    has finished; change `n_workers` to change it for good.",
            &["cluster_id", "workspace", "timeout", "n_workers", "wait_for_workers"],
        )
    }

    async fn validate(&self, _ctx: &Ctx, config: &Value, diags: &mut Diagnostics) {
        ActionConfig::check_values(config, diags);
        let c = ActionConfig::decode(config);
        check_common(&c, diags);
        super::validate::worker_count_and_wait(
            c.n_workers.known(),
            c.wait_for_workers.known(),
            diags,
        );
    }

    async fn invoke(
        &self,
        ctx: &Ctx,
        config: &Value,
        progress: &Progress,
        diags: &mut Diagnostics,
    ) {
        let c = ActionConfig::decode(config);
        let Some((coiled, op, ws, id)) = start(&self.data, ctx, &c, diags).await else { return };
        let Some(target) = c.n_workers.known().and_then(Number::as_i64) else { return };
        let fraction =
            c.wait_for_workers.known().and_then(Number::as_f64).unwrap_or(DEFAULT_WAIT_FOR_WORKERS);
        let Some(current) = lifecycle::current_for_scaling(&coiled, &op, &ws, id, diags).await
        else {
            return;
        };
        progress.say(format!("Scaling cluster {id} ({}) to {target} workers", current.name));
        // The address Coiled's client connects to by default, the public one.
        let scaled = lifecycle::scale(&coiled, &op, &ws, &current, (target, true), diags).await;
        let at = Some(AttrPath::attr("cluster_id"));
        let Some(wait) = coiled.reported(scaled, diags, "Unable to Scale Cluster", at) else {
            return;
        };
        match lifecycle::wait_ready(&coiled, &op, &ws, id, fraction, wait).await {
            Ok(d) => progress.say(format!(
                "Cluster {id} is {} with {target} workers asked for",
                d.current_state.state
            )),
            Err((end, _)) => {
                let why = match end {
                    WaitEnd::Failed(r) => r,
                    WaitEnd::TimedOut => "the wait timed out; the cluster keeps scaling".into(),
                    WaitEnd::Cancelled => {
                        "Terraform was interrupted; the cluster keeps scaling".into()
                    }
                    WaitEnd::Api(e) => coiled.explain(&e),
                };
                diags.error_at(
                    AttrPath::attr("cluster_id"),
                    "Cluster Failed to Scale",
                    format!("Cluster {id}: {why}."),
                );
            }
        }
    }
}
