//! Moves clusters and workers through Coiled's states on their timers:
//! `pending` → `starting` → `ready` (or `error` for clusters meant to fail) over the provisioning delay,
//! `stopping` → `stopped` over the stop delay. Wakes exactly when the next change is due.

use std::time::Duration;

use super::{Shared, unix_now};

/// Applies every due state change; returns when the next one is due.
pub fn advance(state: &Shared) -> Option<f64> {
    let now = unix_now();
    let half = state.config.provision_delay.as_secs_f64() / 2.0;
    match state.store.due_clusters(now) {
        Ok(clusters) => {
            for c in clusters {
                let r = match c.state.as_str() {
                    "pending" => state
                        .store
                        .set_cluster_state(c.id, "starting", "", Some(now + half))
                        .and_then(|()| state.store.set_workers_state(c.id, "starting", Some(now + half))),
                    "starting" => match &c.fail_reason {
                        Some(reason) => state
                            .store
                            .set_cluster_state(c.id, "error", reason, None)
                            .and_then(|()| state.store.set_workers_state(c.id, "error", None)),
                        None => state
                            .store
                            .set_cluster_state(c.id, "ready", "", None)
                            .and_then(|()| state.store.set_workers_state(c.id, "started", None)),
                    },
                    "stopping" => state
                        .store
                        .set_cluster_state(c.id, "stopped", &c.reason, None)
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
    if let Ok(workers) = state.store.due_workers(now) {
        for w in workers {
            let next = match w.state.as_str() {
                "pending" => ("starting", Some(now + half)),
                "starting" => ("started", None),
                "stopping" => ("stopped", None),
                other => (other, None),
            };
            let _ = state.store.set_worker_state(w.id, next.0, next.1);
        }
    }
    state.store.next_due().ok().flatten()
}

/// Runs forever: applies changes when due, sleeping until the next one or until woken.
pub async fn run(state: Shared) {
    loop {
        let next = advance(&state);
        let sleep = match next {
            Some(t) => Duration::from_secs_f64((t - unix_now()).max(0.0)),
            None => Duration::from_secs(3600),
        };
        tokio::select! {
            () = tokio::time::sleep(sleep) => {}
            () = state.wake.notified() => {}
        }
    }
}
