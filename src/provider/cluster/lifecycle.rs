//! Creating, waiting and stopping: the create with its name check, the readiness wait, the stop
//! wait, and what a failed wait leaves behind.

use std::time::Duration;

use tfplugin::diag::Diagnostics;
use tfplugin::framework::{Ctx, NewState};
use tfplugin::value::AttrPath;

use super::super::ingress::RuleSet;
use super::model::{
    ClusterModel, DEFAULT_SCHEDULER_PORT, INTERRUPTED, UnfinishedScale, pending_state,
    state_from_details,
};
use super::state::{self as cluster_state, Readiness, Wait, counted_workers};
use crate::api::{ApiError, ClusterDetails, CreateCluster, Op, Process};
use crate::provider::Coiled;
use crate::provider::ownership::{self, Kind};

/// The cluster as it is before scaling; an error when it is gone or stopped since the plan.
pub(super) async fn current_for_scaling(
    coiled: &Coiled,
    op: &Op,
    ws: &str,
    id: i64,
    diags: &mut Diagnostics,
) -> Option<ClusterDetails> {
    let current = match coiled.client.get_cluster(op, ws, id).await {
        Ok(d) => d,
        Err(e) if e.is_not_found() => {
            diags.error(
                "Cluster Gone Since the Plan",
                format!(
                    "Cluster {id} no longer exists, so it cannot be scaled. Run `terraform plan` \
                    again: the new plan creates a replacement."
                ),
            );
            return None;
        }
        Err(e) => return coiled.failed(diags, "Unable to Scale Cluster", None, &e),
    };
    if current.current_state.has_ended() {
        diags.error(
            "Cluster Stopped Since the Plan",
            format!(
                "Cluster {id} was {} after this plan was made, so it cannot be scaled. Run \
                    `terraform plan` again: the new plan creates a replacement.",
                if current.current_state.state == "error" { "failed" } else { "stopped" }
            ),
        );
        return None;
    }
    Some(current)
}

/// Asks for `target` workers as Coiled's client scales (`Cluster.scale_up` / `scale_down`): the
/// workers that count are those pending, starting or started in the workers list; scaling up adds
/// the difference, scaling down removes the surplus by name, shortened by the `{cluster}-worker`
/// prefix (the client sends them 200 to a request). Returns what the wait that follows waits for.
///
/// A request to add workers is not idempotent: when its answer is lost or a gateway fails (502,
/// 504), the list is read again and only the workers still missing are asked for, as a create is
/// made safe by looking its name up, until the operation's timeout (Coiled's client retries these
/// for five minutes).
pub(super) async fn scale(
    coiled: &Coiled,
    op: &Op,
    ws: &str,
    current: &ClusterDetails,
    (target, use_public_ip): (i64, bool),
    diags: &mut Diagnostics,
) -> Result<Wait, ApiError> {
    let id = current.id;
    let mut attempt = 0u32;
    loop {
        let workers = coiled.client.list_workers(op, ws, id).await?;
        let have = counted_workers(&workers).len() as i64;
        let wait = Wait::Scale {
            workers: target,
            failed_before: workers.iter().filter(|w| w.current_state.state == "error").count(),
        };
        if target < have && attempt == 0 {
            let leaving = workers_leaving(&workers, (have - target) as usize);
            if coiled.retire_workers {
                retire(current, &leaving, use_public_ip, op, diags).await;
            }
            let names = short_names(&leaving, &current.name);
            tracing::info!(cluster = id, remove = names.len(), "removing workers");
            return coiled.client.remove_workers(op, ws, id, &names).await.map(|()| wait);
        }
        if target <= have {
            return Ok(wait);
        }
        tracing::info!(cluster = id, add = target - have, "adding workers");
        match coiled.client.add_workers(op, ws, id, target - have).await {
            Ok(()) => return Ok(wait),
            Err(e) if e.may_have_been_applied() && !op.remaining().is_zero() => {
                tracing::warn!(cluster = id, error = %e, "adding workers got no clear answer; \
                    counting them again before asking for the rest");
                op.sleep(cluster_state::stop_poll_delay(attempt)).await?;
                attempt += 1;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Creates the cluster, once [`name_is_free`] has looked the name up (as Coiled's client does
/// before it creates): a running cluster of that name belongs to someone else and is never taken
/// over, and one still stopping is waited for. After a create whose answer was lost, a cluster
/// found under the name was made by this apply (it was not there a moment before) and is adopted;
/// anything else gets the same error as without faults (rule `adopt-cluster`).
pub(super) async fn post_create(
    coiled: &Coiled,
    op: &Op,
    ws: &str,
    name: &str,
    body: &CreateCluster,
    diags: &mut Diagnostics,
) -> Option<i64> {
    match coiled.client.create_cluster(op, ws, body).await {
        Ok(created) if created.existing && !created.recovered => {
            ownership::refuse_taken_name(diags, &CLUSTER, ws, name, Some(created.id));
            None
        }
        Ok(created) => Some(created.id),
        Err(e) => coiled.failed(diags, "Unable to Create Cluster", None, &e),
    }
}

/// Whether no running cluster holds `name`, waiting for one that is stopping; reports why not.
pub(super) async fn name_is_free(
    coiled: &Coiled,
    op: &Op,
    ws: &str,
    name: &str,
    diags: &mut Diagnostics,
) -> bool {
    let mut n = 0u32;
    let failure = loop {
        let found = match coiled.client.find_cluster_by_name(op, ws, name).await {
            Ok(None) => return true,
            Ok(Some(found)) => found,
            Err(e) => break e,
        };
        let state = match coiled.client.get_cluster(op, ws, found.id).await {
            Ok(d) => d.current_state,
            Err(e) if e.is_not_found() => return true,
            Err(e) => break e,
        };
        if !state.has_ended() {
            ownership::refuse_taken_name(diags, &CLUSTER, ws, name, Some(found.id));
            return false;
        }
        if n == 0 {
            tracing::info!(
                cluster = found.id,
                "a cluster of the same name is still stopping; waiting for it"
            );
        }
        if op.remaining() <= Duration::from_secs(1) {
            diags.error_at(
                AttrPath::attr("name"),
                "Cluster Name Still in Use",
                format!(
                    "Cluster {} of the same name ({name:?}) is still stopping and holds \
                    the name. Apply again shortly, once it has stopped.",
                    found.id
                ),
            );
            return false;
        }
        if op.sleep(cluster_state::stop_poll_delay(n)).await.is_err() {
            break ApiError::Cancelled;
        }
        n += 1;
    };
    coiled.report(diags, "Unable to Create Cluster", None, &failure);
    false
}

/// Polls until the cluster is ready, failed, cancelled or out of time. Returns the last details.
pub(super) async fn wait_ready(
    coiled: &Coiled,
    op: &Op,
    ws: &str,
    id: i64,
    fraction: f64,
    wait: Wait,
) -> Result<ClusterDetails, (WaitEnd, Option<ClusterDetails>)> {
    let began = std::time::Instant::now();
    let mut n = 0u32;
    let mut last: Option<ClusterDetails> = None;
    let mut last_state = String::new();
    let mut settling: Option<std::time::Instant> = None;
    // The first poll is the grid's first point, just after the request's answer.
    let mut delay = cluster_state::GRID_OFFSET;
    loop {
        if op.sleep(delay).await.is_err() {
            return Err((WaitEnd::Cancelled, last));
        }
        match coiled.client.get_cluster(op, ws, id).await {
            Ok(d) => {
                match cluster_state::readiness(&d, fraction, wait) {
                    Readiness::Ready
                        if cluster_state::catching_up(&d)
                            && settling.get_or_insert_with(std::time::Instant::now).elapsed()
                                < cluster_state::SETTLE => {}
                    Readiness::Ready => return Ok(d),
                    Readiness::Failed(reason) => {
                        return Err((WaitEnd::Failed(reason), Some(d)));
                    }
                    Readiness::Waiting { state } => {
                        if state != last_state {
                            tracing::info!(cluster = id, state = %state, "waiting for the cluster");
                            last_state = state;
                            n = 0;
                        }
                    }
                }
                last = Some(d);
            }
            // Right after a create the API may not know the id yet.
            Err(e) if e.is_not_found() && n < 5 => {}
            Err(ApiError::Cancelled) => return Err((WaitEnd::Cancelled, last)),
            Err(e) => return Err((WaitEnd::Api(e), last)),
        }
        if op.remaining().is_zero() {
            return Err((WaitEnd::TimedOut, last));
        }
        delay = cluster_state::grid_delay(began.elapsed());
        n += 1;
    }
}

/// Stops a cluster and waits until it is stopped (or gone).
pub(super) async fn stop_and_wait(
    coiled: &Coiled,
    op: &Op,
    ws: &str,
    id: i64,
    reason: &str,
) -> Result<(), ApiError> {
    match coiled.client.stop_cluster(op, ws, id, reason).await {
        Ok(()) => {}
        Err(e) if e.is_not_found() => return Ok(()),
        Err(e) => return Err(e),
    }
    let mut n = 0;
    loop {
        let state = match coiled.client.get_cluster(op, ws, id).await {
            Ok(d) if matches!(d.current_state.state.as_str(), "stopped" | "error") => {
                return Ok(());
            }
            Ok(d) => d.current_state.state,
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        if op.remaining().is_zero() {
            return Err(ApiError::NotStopped { id, state });
        }
        op.sleep(cluster_state::stop_poll_delay(n)).await?;
        n += 1;
    }
}

/// The update of a running cluster that scales it to `planned`'s worker count (when `scaling`), or
/// waits for a create that was interrupted, on `cluster` (whose `base` is the prior state). Until
/// the wait ends well, state keeps the worker count it had, marked [`UnfinishedScale`]: a failed
/// scale is not recorded as done, and the next plan shows it again.
pub(super) async fn scale_and_wait(
    cluster: Target<'_>,
    ctx: &Ctx,
    op: &Op,
    planned: &ClusterModel,
    scaling: bool,
    private: &[u8],
    diags: &mut Diagnostics,
) -> Option<NewState<ClusterModel>> {
    let Target { coiled, ws, id, base: prior, own } = cluster;
    let current = current_for_scaling(coiled, op, ws, id, diags).await?;
    let unfinished = || UnfinishedScale { scaling_to: planned.workers() }.private();
    // An interrupted create is only waited for: its worker count is the one it was created with.
    let wait = if scaling {
        scale(coiled, op, ws, &current, (planned.workers(), planned.use_public_ip()), diags).await
    } else {
        Ok(Wait::Start)
    };
    let wait = match wait {
        Ok(wait) => wait,
        Err(e) => {
            coiled.report(diags, "Unable to Scale Cluster", None, &e);
            // The rules are the planned ones: changing them replaces the cluster instead.
            let state = state_from_details(prior, own, &current, ws);
            return Some(NewState {
                state: ClusterModel { n_workers: prior.n_workers.clone(), ..state },
                private: unfinished(),
            });
        }
    };
    let recorded = ClusterModel { n_workers: prior.n_workers.clone(), ..planned.clone() };
    match wait_ready(coiled, op, ws, id, planned.wait_fraction(), wait).await {
        // Waited for: an interrupted create is finished, and a scale is done.
        Ok(d) => {
            let state = state_from_details(planned, own, &d, ws);
            let n_workers = if scaling { planned.n_workers.clone() } else { state.n_workers };
            let done = private == INTERRUPTED || UnfinishedScale::read(private).is_some();
            Some(NewState {
                state: ClusterModel { n_workers, ..state },
                private: if done { Vec::new() } else { private.to_vec() },
            })
        }
        Err(failure) => {
            let mut kept =
                fail_wait(Target { base: &recorded, ..cluster }, ctx, failure, false, diags)
                    .await?;
            // What is still unfinished stays marked for the next apply: the scale, or the create.
            kept.private = if scaling { unfinished() } else { INTERRUPTED.to_vec() };
            Some(kept)
        }
    }
}

/// Reports a failed wait after create or update. After create, the half-made cluster is stopped,
/// leaving nothing Terraform does not know about; if that fails, its state is kept.
pub(super) async fn fail_wait(
    cluster: Target<'_>,
    ctx: &Ctx,
    (end, last): (WaitEnd, Option<ClusterDetails>),
    creating: bool,
    diags: &mut Diagnostics,
) -> Option<NewState<ClusterModel>> {
    let Target { coiled, ws, id, base, own } = cluster;
    let summary = if creating { "Cluster Failed to Start" } else { "Cluster Failed to Scale" };
    // After a scale, `base` holds the worker count state had before it: the scale is not recorded
    // as done, whatever the server now says it is asked to run.
    let current = last.as_ref().map(|d| {
        let state = state_from_details(base, own, d, ws);
        if creating { state } else { ClusterModel { n_workers: base.n_workers.clone(), ..state } }
    });
    let pending = || pending_state(base, own, id, ws);
    // A cluster whose start was not seen through is kept untainted, for the next apply to finish.
    let kept = "It is kept in state as it is now. The next apply keeps it if it has become ready, \
        waits for it if it is still starting, and creates a new one only if it failed or was \
        stopped.";
    let why = match end {
        WaitEnd::Cancelled => {
            let detail = if creating {
                format!("Terraform was interrupted while cluster {id} was starting. {kept}")
            } else {
                format!(
                    "Terraform was interrupted while cluster {id} was scaling. The workers \
                        asked for may still start; state keeps the worker count it had, so \
                        the next plan shows the scale again, and applying it asks only for \
                        the workers still missing."
                )
            };
            ownership::unfinished(diags, creating, "Interrupted", detail);
            let private = if creating { INTERRUPTED.to_vec() } else { Vec::new() };
            return Some(NewState { state: current.unwrap_or_else(pending), private });
        }
        // The cluster was made and Coiled could not be reached to see it start: as if interrupted
        // (`ownership::unfinished`), not a failure of the cluster's.
        WaitEnd::Api(
            e @ (ApiError::Unreachable { .. }
            | ApiError::Transport { .. }
            | ApiError::Timeout { .. }),
        ) if creating => {
            let detail = format!(
                "Cluster {id} was created, but the wait for it to start could not reach Coiled. \
                    {kept} Until then, what uses its address may see none.\n\n{}",
                coiled.explain(&e)
            );
            ownership::unfinished(diags, true, "Cluster Start Not Confirmed", detail);
            let state = current.unwrap_or_else(pending);
            return Some(NewState { state, private: INTERRUPTED.to_vec() });
        }
        WaitEnd::Api(e) => {
            coiled.report(diags, summary, None, &e);
            return Some(NewState { state: current.unwrap_or_else(pending), private: Vec::new() });
        }
        WaitEnd::Failed(r) => r,
        WaitEnd::TimedOut if creating => format!(
            "it was not ready within the create timeout ({})",
            humantime::format_duration(base.timeout(|t| &t.create))
        ),
        WaitEnd::TimedOut => format!(
            "too few workers had started when the update timeout ({}) passed",
            humantime::format_duration(base.timeout(|t| &t.update))
        ),
    };
    if !creating {
        diags.error(
            summary,
            format!(
                "Cluster {id} did not get the workers it was scaled to: {why}. State keeps the \
                worker count it had, so the next plan shows the scale again, and applying it \
                asks only for the workers still missing."
            ),
        );
        return Some(NewState {
            state: current.unwrap_or_else(|| base.clone()),
            private: Vec::new(),
        });
    }
    // Clean up with a fresh budget: the create's may be spent.
    let cleanup = Op::new(base.timeout(|t| &t.delete), ctx.stop.clone());
    match stop_and_wait(coiled, &cleanup, ws, id, "Terraform create failed").await {
        Ok(()) => {
            diags.error(
                summary,
                format!(
                    "Cluster {id} did not start: {why}. It has been stopped, so nothing is \
                        left running; fix the cause and apply again."
                ),
            );
            None
        }
        Err(e) => {
            diags.error(
                summary,
                format!(
                    "Cluster {id} did not start: {why}. Stopping it failed as well ({e}), \
                    so it is kept in state (marked tainted) and the next apply will stop and \
                    replace it."
                ),
            );
            Some(NewState { state: current.unwrap_or_else(pending), private: Vec::new() })
        }
    }
}

/// Ours (Coiled's client has no such check): a refresh of a `ready` cluster warns when fewer
/// workers are running or on their way than `n_workers` asks for, naming the failed ones and why.
/// Coiled does not replace failed workers, and state keeps `n_workers` (the server is still asked
/// for them), so without this the shortfall would not show (rule `missing-workers`).
pub(super) fn warn_of_missing_workers(
    cluster: &ClusterModel,
    d: &ClusterDetails,
    diags: &mut Diagnostics,
) {
    let Some(n) = cluster.n_workers.known().and_then(tfplugin::value::Number::as_i64) else {
        return;
    };
    let live = counted_workers(&d.workers).len() as i64;
    if d.current_state.state != "ready" || live >= n {
        return;
    }
    let failed: Vec<String> = d
        .workers
        .iter()
        .filter(|w| w.current_state.state == "error")
        .map(|w| format!("{} ({})", w.name, w.current_state.reason().unwrap_or("no reason given")))
        .collect();
    let failed =
        if failed.is_empty() { String::new() } else { format!(" Failed: {}.", failed.join("; ")) };
    diags.warning_at(
        AttrPath::attr("n_workers"),
        "Fewer Workers Than Asked For",
        format!(
            "Cluster {} runs {live} of the {n} workers `n_workers` asks for.{failed} Coiled does \
                not replace failed workers. To start new ones in their place, change `n_workers` \
                (a scale counts only pending, starting and running workers, as Coiled's client \
                does, so it starts the missing ones too) or replace the cluster with `terraform \
                apply -replace=<this resource's address>`.",
            d.id
        ),
    );
}

/// A warning when the address `cluster`'s clients would use cannot be had (a public one wanted and
/// not reported): Coiled's client refuses to connect then, and `scheduler_address` is null.
pub(super) fn warn_of_missing_address(
    cluster: &ClusterModel,
    d: &ClusterDetails,
    diags: &mut Diagnostics,
) {
    if let Err(why) = cluster.address_in(d) {
        diags.warning_at(
            AttrPath::attr("use_scheduler_public_ip"),
            "No Public Scheduler Address",
            format!(
                "`scheduler_address` is null: {why}, which is how Coiled's client would connect."
            ),
        );
    }
}

/// Clusters, as the rules of [`ownership`] name them.
pub(super) const CLUSTER: Kind = Kind {
    name_taken: "Cluster Already Exists",
    noun: "running cluster",
    why_left_alone: "",
    instead: "Either choose another name (or leave `name` out to have one generated), stop that \
        cluster",
    when_replacing: "the new cluster cannot take the name while the old one still runs: leave \
        `name` out, or remove `create_before_destroy`",
};

/// The cluster an operation works on.
#[derive(Clone, Copy)]
pub(super) struct Target<'a> {
    pub(super) coiled: &'a Coiled,
    pub(super) ws: &'a str,
    pub(super) id: i64,
    /// The state the operation started from (planned or prior).
    pub(super) base: &'a ClusterModel,
    /// `base`'s own rules, as read once.
    pub(super) own: Option<&'a RuleSet>,
}

/// How a wait ended, when not ready.
pub(super) enum WaitEnd {
    Failed(String),
    TimedOut,
    Cancelled,
    Api(ApiError),
}

/// The `n` counted workers a scale-down removes, by name: those not started yet first (they hold no
/// work), then started ones, the last listed first. Nothing here depends on how the server numbers
/// its workers (rule `workers-leaving`).
pub(super) fn workers_leaving(workers: &[Process], n: usize) -> Vec<String> {
    let mut order = counted_workers(workers);
    order.reverse();
    order.sort_by_key(|w| w.current_state.state == "started");
    order.into_iter().take(n).map(|w| w.name.clone()).collect()
}

/// Worker names as Coiled's client sends them to delete: without the `{cluster}-worker` prefix.
pub(super) fn short_names(names: &[String], cluster: &str) -> Vec<String> {
    let prefix = format!("{cluster}-worker");
    names.iter().map(|n| n.strip_prefix(&prefix).unwrap_or(n).to_string()).collect()
}

/// Asks the scheduler to retire `names` before they are deleted, as `Cluster.scale_down` does, so
/// that the data they hold moves to the workers that stay; on the cluster's address for
/// `use_public_ip` with its TLS certificate, within the operation's time. As in the client, a
/// scheduler that cannot be asked is a warning, and the workers are deleted all the same.
async fn retire(
    d: &ClusterDetails,
    names: &[String],
    use_public_ip: bool,
    op: &Op,
    diags: &mut Diagnostics,
) {
    if names.is_empty() {
        return;
    }
    let address =
        super::state::scheduler_address(d, use_public_ip, DEFAULT_SCHEDULER_PORT).ok().flatten();
    let asked = match (address.as_deref(), d.tls_cert(), d.tls_key()) {
        (Some(address), Some(cert), Some(key)) => {
            crate::api::scheduler::retire_workers(address, cert, key, names, op.remaining()).await
        }
        _ => Err("Coiled reported no scheduler address or no TLS certificate for it".to_string()),
    };
    match asked {
        Ok(retired) => tracing::info!(
            cluster = d.id,
            retired = retired.len(),
            "the scheduler retired the workers"
        ),
        Err(why) => diags.warning(
            "Workers Removed Without Retiring",
            format!(
                "The scheduler of cluster {} could not be asked to retire the {} worker(s) \
                    removed ({why}), so the data they held was not moved first and is lost; \
                    running computations that need it fail. They were removed all the same, as \
                    Coiled's client does.",
                d.id,
                names.len()
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::CurrentState;

    fn worker(name: &str, state: &str) -> Process {
        Process {
            name: name.into(),
            current_state: CurrentState { state: state.into(), ..Default::default() },
            ..Default::default()
        }
    }

    #[test]
    fn scaling_counts_and_removes_as_the_client_does() {
        let workers = vec![
            worker("etl-worker-a1", "started"),
            worker("etl-worker-b2", "started"),
            worker("etl-worker-c3", "error"),
            worker("etl-worker-d4", "pending"),
            worker("etl-worker-e5", "stopping"),
        ];
        assert_eq!(counted_workers(&workers).len(), 3, "pending, starting and started count");
        let leaving = workers_leaving(&workers, 2);
        assert_eq!(
            leaving,
            vec!["etl-worker-d4", "etl-worker-b2"],
            "unstarted first, then the last listed"
        );
        assert_eq!(short_names(&leaving, "etl"), vec!["-d4", "-b2"]);
        assert_eq!(
            short_names(&["other-name".to_string()], "etl"),
            vec!["other-name"],
            "an unexpected name is sent whole"
        );
    }
}
