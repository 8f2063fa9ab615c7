//! Where the API meets the real clusters: what a create, a scale or a stop starts or ends, and how
//! process events become scheduler, worker and cluster states.

use rusqlite::params;

use super::procs::Who;
use crate::store::{Store, StoreError};
use crate::{Shared, lifecycle, wire};

impl Store {
    /// Takes a cluster and its active workers off the timers: their processes move them instead.
    pub fn hold_timers(&self, cluster_id: i64) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute("UPDATE clusters SET phase_at = NULL WHERE id = ?1", params![cluster_id])?;
            c.execute(
                "UPDATE workers SET phase_at = NULL WHERE cluster_id = ?1 AND state NOT IN \
                    ('stopping', 'stopped', 'error')",
                params![cluster_id],
            )?;
            Ok(())
        })
    }

    /// Every cluster not ended, after a restart: their processes ended with the previous run.
    pub fn fail_active_clusters(&self, reason: &str) -> Result<Vec<i64>, StoreError> {
        let ids: Vec<i64> = self.with(|c| {
            let mut s =
                c.prepare("SELECT id FROM clusters WHERE state NOT IN ('stopped', 'error')")?;
            let rows = s.query_map([], |r| r.get(0))?;
            rows.collect()
        })?;
        for id in &ids {
            self.fail_cluster(*id, reason)?;
        }
        Ok(ids)
    }

    /// The scheduler instance's addresses.
    pub fn set_addresses(
        &self,
        cluster_id: i64,
        private_ip: &str,
        public_ip: &str,
    ) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE clusters SET private_ip = ?2, public_ip = ?3 WHERE id = ?1",
                params![cluster_id, private_ip, public_ip],
            )
            .map(|_| ())
        })
    }

    /// A worker whose process ended: `error`, with the reason.
    pub fn fail_worker(&self, cluster_id: i64, name: &str, reason: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE workers SET state = 'error', phase_at = NULL, fate = ?3, updated = ?4 \
                    WHERE cluster_id = ?1 AND name = ?2 AND state NOT IN ('stopping', 'stopped')",
                params![cluster_id, name, format!("error: {reason}"), crate::store::now_text()],
            )
            .map(|_| ())
        })
    }

    /// Sets the named worker's state, unless it is on its way out.
    pub fn start_worker(&self, cluster_id: i64, name: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.execute(
                "UPDATE workers SET state = 'started', phase_at = NULL, updated = ?3 WHERE \
                    cluster_id = ?1 AND name = ?2 AND state IN ('pending', 'starting')",
                params![cluster_id, name, crate::store::now_text()],
            )
            .map(|_| ())
        })
    }
}

/// A cluster was created: its instance, firewall and processes start in the background. Its states
/// say `starting` before any process starts, so that a process failing at once is never overwritten.
pub fn on_create(state: &Shared, id: i64) {
    let Some(rt) = state.dask.clone() else { return };
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let started = (|| -> Result<(), String> {
            state.store.hold_timers(id).map_err(|e| e.to_string())?;
            let c = state
                .store
                .cluster_by_id(id)
                .map_err(|e| e.to_string())?
                .ok_or("the cluster is gone")?;
            let workers: Vec<String> = state
                .store
                .workers(id)
                .map_err(|e| e.to_string())?
                .into_iter()
                .map(|w| w.name)
                .collect();
            state.store.set_cluster_state(id, "starting", "", None).map_err(|e| e.to_string())?;
            state.store.set_scheduler_state(id, "starting", "").map_err(|e| e.to_string())?;
            state.store.set_workers_state(id, "starting", None).map_err(|e| e.to_string())?;
            // The scheduler stops itself once idle for the cluster's idle timeout, as Coiled's does.
            let idle = state
                .store
                .idle_limit(id)
                .map_err(|e| e.to_string())?
                .map(|(seconds, _)| seconds / state.config.time_scale);
            let https = wire::dashboard_https(&c);
            let instance = rt.start_cluster(
                id,
                &wire::stored_rules(&c.firewall),
                c.scheduler_port,
                idle,
                https,
            )?;
            state
                .store
                .set_addresses(
                    id,
                    &instance.private_ip.to_string(),
                    &instance.public_ip.to_string(),
                )
                .map_err(|e| e.to_string())?;
            rt.add_workers(id, c.scheduler_port, &workers)
        })();
        if let Err(reason) = started {
            tracing::error!(cluster = id, %reason, "the cluster could not start");
            rt.stop_cluster(id);
            let _ = state.store.fail_cluster(id, &reason);
        }
    });
}

/// Workers were added to cluster `id`.
pub fn on_add_workers(state: &Shared, id: i64, port: i64, names: Vec<String>) {
    let Some(rt) = state.dask.clone() else { return };
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let _ = state.store.hold_timers(id);
        if let Err(reason) = rt.add_workers(id, port, &names) {
            for name in &names {
                let _ = state.store.fail_worker(id, name, &reason);
            }
        }
    });
}

/// Workers of cluster `id` were removed.
pub fn on_remove_workers(state: &Shared, id: i64, names: &[String]) {
    if let Some(rt) = &state.dask {
        rt.remove_workers(id, names);
    }
}

/// Cluster `id` is stopping: its processes and instance end now, and then it is `stopped`.
pub fn on_stop(state: &Shared, id: i64) {
    let Some(rt) = state.dask.clone() else { return };
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        rt.stop_cluster(id);
        let reason =
            state.store.cluster_by_id(id).ok().flatten().map(|c| c.reason).unwrap_or_default();
        let stopped = state
            .store
            .set_cluster_state(id, "stopped", &reason, None)
            .and_then(|()| state.store.set_scheduler_state(id, "stopped", &reason))
            .and_then(|()| state.store.set_workers_state(id, "stopped", None));
        if let Err(e) = stopped {
            tracing::error!(cluster = id, error = %e, "recording a stop");
        }
    });
}

/// Turns process events into states, for as long as the server runs.
pub async fn supervise(
    state: Shared,
    mut events: tokio::sync::mpsc::UnboundedReceiver<super::Event>,
) {
    while let Some(e) = events.recv().await {
        let Some(rt) = state.dask.clone() else { return };
        let id = e.cluster;
        let r = match (&e.who, &e.ended) {
            (Who::Scheduler, None) => state.store.set_scheduler_state(id, "started", ""),
            (Who::Worker(name), None) => state.store.start_worker(id, name),
            (who, Some(_)) if rt.expected_exit(id, who) => Ok(()),
            (Who::Scheduler, Some(_)) if e.idle => {
                let text = state
                    .store
                    .idle_limit(id)
                    .ok()
                    .flatten()
                    .map(|(_, text)| text)
                    .unwrap_or_default();
                tracing::info!(cluster = id, idle_timeout = %text, "the scheduler stopped itself \
                    when idle");
                crate::handlers::clusters::begin_stop(&state, id, &crate::idle::idle_reason(&text))
            }
            (Who::Scheduler, Some(reason)) => {
                tracing::warn!(cluster = id, %reason, "the scheduler ended");
                // Its workers end with it: none is left `started`.
                let r = state.store.fail_cluster(id, reason);
                tokio::task::spawn_blocking(move || rt.stop_cluster(id));
                r
            }
            (Who::Worker(name), Some(reason)) => {
                tracing::warn!(cluster = id, worker = %name, %reason, "a worker ended");
                state.store.fail_worker(id, name, reason)
            }
        };
        if let Err(err) = r.and_then(|()| lifecycle::settle(&state, id)) {
            tracing::error!(cluster = id, error = %err, "recording a process event failed");
        }
    }
}
