//! Moves clusters, schedulers and workers through Coiled's states on their timers, each its own
//! machine:
//! - scheduler: `pending` → `starting` → `started` over the provisioning delay (or `error` for a
//!   cluster tagged `coiled-local/fail`);
//! - worker: `pending` → `starting` → `started` over the same delay, each on its own timer (or stays
//!   `pending` for good, or ends in `error`, for the workers the `coiled-local/stuck-workers` and
//!   `coiled-local/failed-workers` tags name); `stopping` → `stopped` over the stop delay;
//! - cluster: `pending` → `starting` with its scheduler, then `ready` once its scheduler has started and
//!   every worker has started or failed; `stopping` → `stopped`; `error` with its scheduler.
//!
//! Wakes exactly when the next change is due.

use std::time::Duration;

use super::{Shared, unix_now};
use crate::store::StoreError;

/// Applies every due state change; returns when the next one is due.
pub fn advance(state: &Shared) -> Option<f64> {
    let now = unix_now();
    let half = state.config.provision_delay.as_secs_f64() / 2.0;
    // Workers first: a scheduler that starts in the same pass then finds them started, and the
    // cluster is `ready` in the same step as its scheduler.
    if let Ok(workers) = state.store.due_workers(now) {
        for w in workers {
            let next = match (w.state.as_str(), w.fate.as_deref()) {
                ("pending", _) => (
                    "starting",
                    Some(now + half * state.phase_factor(0.5, 2.5, "worker-starting", w.id)),
                ),
                ("starting", Some("fail")) => ("error", None),
                ("starting", _) => ("started", None),
                ("stopping", _) => ("stopped", None),
                (other, _) => (other, None),
            };
            let r = state
                .store
                .set_worker_state(w.id, next.0, next.1)
                .and_then(|()| settle(state, w.cluster_id));
            if let Err(e) = r {
                tracing::error!(worker = w.id, error = %e, "worker state change failed");
            }
        }
    }
    match state.store.due_clusters(now) {
        Ok(clusters) => {
            for c in clusters {
                let r = match (c.state.as_str(), &c.fail_reason) {
                    ("pending", _) => state
                        .store
                        .set_cluster_state(
                            c.id,
                            "starting",
                            "",
                            Some(
                                now + half
                                    * state.phase_factor(0.5, 2.5, "scheduler-starting", c.id),
                            ),
                        )
                        .and_then(|()| state.store.set_scheduler_state(c.id, "starting", "")),
                    // `--vary`'s `late-ready`: the scheduler starts, the cluster is ready a while later.
                    ("starting", None)
                        if c.scheduler_state != "started"
                            && state
                                .vary
                                .as_ref()
                                .is_some_and(|v| v.coin(0.5, "late-ready", &c.id.to_string())) =>
                    {
                        state.store.set_scheduler_state(c.id, "started", "").and_then(|()| {
                            state.store.set_cluster_state(
                                c.id,
                                "starting",
                                "",
                                Some(now + half * state.phase_factor(0.5, 2.5, "late-ready", c.id)),
                            )
                        })
                    }
                    ("starting", Some(reason)) => state.store.fail_cluster(c.id, reason),
                    // The cluster's state is written before its scheduler's: no reader sees a started
                    // scheduler with every worker started in a cluster not yet `ready`.
                    ("starting", None) => workers_done(state, c.id)
                        .and_then(|done| {
                            state.store.set_cluster_state(
                                c.id,
                                if done { "ready" } else { "starting" },
                                "",
                                None,
                            )
                        })
                        .and_then(|()| state.store.set_scheduler_state(c.id, "started", "")),
                    ("stopping", _) => state
                        .store
                        .set_cluster_state(c.id, "stopped", &c.reason, None)
                        .and_then(|()| state.store.set_scheduler_state(c.id, "stopped", &c.reason))
                        .and_then(|()| state.store.set_workers_state(c.id, "stopped", None)),
                    _ => state.store.set_cluster_state(c.id, &c.state, &c.reason, None),
                };
                if let Err(e) = r {
                    tracing::error!(cluster = c.id, error = %e, "state change failed");
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "reading due clusters failed"),
    }
    let idle = crate::idle::stop_idle(state);
    match (state.store.next_due().ok().flatten(), idle) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Whether every worker of a cluster has started or failed (or is leaving).
fn workers_done(state: &Shared, cluster_id: i64) -> Result<bool, StoreError> {
    Ok(state
        .store
        .workers(cluster_id)?
        .iter()
        .all(|w| matches!(w.state.as_str(), "started" | "error" | "stopping" | "stopped")))
}

/// A starting cluster whose scheduler has started becomes `ready` once no worker is still on its way.
pub(crate) fn settle(state: &Shared, cluster_id: i64) -> Result<(), StoreError> {
    let Some(c) = state.store.cluster_by_id(cluster_id)? else { return Ok(()) };
    if c.state != "starting" || c.scheduler_state != "started" || c.phase_at.is_some() {
        return Ok(());
    }
    if workers_done(state, cluster_id)? {
        state.store.set_cluster_state(cluster_id, "ready", "", None)?;
    }
    Ok(())
}

/// Runs forever: applies changes when due, sleeping until the next one or until woken.
pub async fn run(state: Shared) {
    loop {
        let next = advance(&state);
        let sleep = match next {
            Some(t) => Duration::from_secs_f64((t - unix_now()).clamp(0.0, 3600.0)),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = state.wake.notified() => {}
        }
    }
}
