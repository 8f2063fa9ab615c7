//! Pure rules about clusters: when one is ready (Coiled's client's own definition), which scheduler
//! address a client would use, and how polling backs off. No IO, table-tested.

use std::time::Duration;

use crate::api::{ClusterDetails, Process};

/// What a poll of a starting cluster says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Ready: scheduler started on a ready instance, enough workers started.
    Ready,
    /// Still coming up.
    Waiting {
        /// The cluster state, for progress logs.
        state: String,
    },
    /// It will never be ready: the reason, as Coiled gives it.
    Failed(String),
}

/// How many started workers to wait for: `ceil(fraction × desired)`, as Coiled's client computes it
/// (rule `workers-to-wait-for`).
pub fn workers_to_wait_for(fraction: f64, desired: i64) -> i64 {
    if desired <= 0 || fraction <= 0.0 {
        return 0;
    }
    ((fraction.min(1.0) * desired as f64) - 1e-9).ceil().max(0.0) as i64
}

/// What a readiness wait follows: the first start of a cluster, or its growth after a scale.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// A new cluster (or one whose create was interrupted): Coiled's client waits as
    /// `Cluster._wait_until_ready` does, for `ceil(fraction × desired_workers)` started workers,
    /// and gives up on a `ready` cluster with fewer (every worker has then started or failed)
    /// (rule `ready-after-create`).
    Start,
    /// A running cluster just scaled to `workers`: Coiled's client waits as
    /// `Cluster._wait_for_workers` does, counting running workers until `ceil(fraction × workers)`
    /// have arrived or the timeout passes. The cluster stays `ready` while it grows, so its state
    /// says nothing here (rule `ready-after-scale`).
    Scale {
        /// The worker count asked for.
        workers: i64,
        /// How many workers had failed before the scale.
        failed_before: usize,
    },
}

/// The workers Coiled's client counts when it scales: pending, starting or started
/// (rule `counted-workers`).
pub(super) fn counted_workers(workers: &[Process]) -> Vec<&Process> {
    workers
        .iter()
        .filter(|w| matches!(w.current_state.state.as_str(), "pending" | "starting" | "started"))
        .collect()
}

/// How many workers of an answer are in `error`.
pub fn failed_workers(d: &ClusterDetails) -> usize {
    d.workers.iter().filter(|w| w.current_state.state == "error").count()
}

/// How long a ready cluster whose own state lags is polled further ([`catching_up`]).
pub const SETTLE: Duration = Duration::from_secs(10);

/// Whether a cluster that meets the readiness rule still says `pending` or `starting` although no
/// worker is on its way: its state has only to catch up. Ours (the client returns as soon as its
/// rule holds): such a cluster is polled up to [`SETTLE`] longer, so that state records what the
/// next read will say and the plan after the apply is empty (rule `settle-status`).
pub fn catching_up(d: &ClusterDetails) -> bool {
    matches!(d.current_state.state.as_str(), "pending" | "starting")
        && !d
            .workers
            .iter()
            .any(|w| matches!(w.current_state.state.as_str(), "pending" | "starting"))
}

/// Applies Coiled's readiness rule to one cluster details answer.
pub fn readiness(d: &ClusterDetails, wait_fraction: f64, wait: Wait) -> Readiness {
    let state = d.current_state.state.as_str();
    let reason = || d.current_state.reason.clone().filter(|r| !r.is_empty());
    match state {
        "error" => {
            return Readiness::Failed(
                reason()
                    .or_else(|| scheduler_reason(d))
                    .unwrap_or_else(|| "the cluster entered the error state".into()),
            );
        }
        "stopped" | "stopping" | "paused" | "pausing" => {
            return Readiness::Failed(format!(
                "the cluster is {state}{}",
                reason().map(|r| format!(": {r}")).unwrap_or_default()
            ));
        }
        _ => {}
    }
    let desired = match wait {
        Wait::Start => d.desired_workers,
        Wait::Scale { workers, .. } => workers,
    };
    let target = workers_to_wait_for(wait_fraction, desired);
    let started = d.workers.iter().filter(|w| w.current_state.state == "started").count() as i64;
    let alive = counted_workers(&d.workers).len() as i64;
    // Ours, after a scale (the client waits out its timeout): give up early only once workers have
    // failed since the scale, so that a list not yet caught up with the request is waited for.
    let cannot_arrive = match wait {
        Wait::Start => alive < target,
        Wait::Scale { failed_before, .. } => alive < target && failed_workers(d) > failed_before,
    };
    if cannot_arrive {
        let reasons: Vec<String> = d
            .workers
            .iter()
            .filter(|w| w.current_state.state == "error")
            .filter_map(|w| w.current_state.reason.clone())
            .filter(|r| !r.is_empty())
            .collect();
        return Readiness::Failed(format!(
            "{} of {} workers failed, so the {target} needed can no longer start{}",
            d.workers.len() as i64 - alive,
            d.workers.len(),
            if reasons.is_empty() { String::new() } else { format!(": {}", reasons.join("; ")) }
        ));
    }
    let scheduler_up = d.scheduler.as_ref().is_some_and(|s| {
        s.current_state.state == "started"
            && s.instance
                .as_ref()
                .is_some_and(|i| matches!(i.current_state.state.as_str(), "ready" | "started"))
    });
    if scheduler_up && started >= target {
        Readiness::Ready
    } else if wait == Wait::Start && state == "ready" && started < target {
        // As `Cluster._wait_until_ready`: a new cluster is `ready` once every worker has started or
        // failed, so one with too few started workers will never get there.
        Readiness::Failed(format!(
            "the cluster is ready with {started} worker(s) started, fewer than the {target} \
                waited for"
        ))
    } else {
        Readiness::Waiting { state: state.to_string() }
    }
}

fn scheduler_reason(d: &ClusterDetails) -> Option<String> {
    d.scheduler.as_ref().and_then(|s| s.current_state.reason.clone()).filter(|r| !r.is_empty())
}

/// The address clients connect to, `tls://IP:PORT`, as Coiled's client chooses it
/// (`Cloud._security` in `coiled/v2/core.py`): the public IP when the cluster gives its scheduler
/// one and the user wants it, else the private one. Like the client, a public address wanted and
/// given but not reported is an error (the message), never the private one instead. The port is the
/// one the server reports, else `default_port` (the configured port, or Coiled's default 443).
/// `Ok(None)` while no scheduler instance has an address yet (rule `scheduler-address`).
pub fn scheduler_address(
    d: &ClusterDetails,
    use_public_ip: bool,
    default_port: i64,
) -> Result<Option<String>, String> {
    let port = d.scheduler_port.unwrap_or(default_port);
    let Some(instance) = d.scheduler.as_ref().and_then(|s| s.instance.as_ref()) else {
        return Ok(None);
    };
    let nonempty = |ip: &Option<String>| ip.clone().filter(|ip| !ip.is_empty());
    let public = nonempty(&instance.public_ip_address);
    let private = nonempty(&instance.private_ip_address);
    let ip = match (use_public_ip && d.gives_scheduler_public_ip(), public, private) {
        (true, Some(ip), _) | (false, _, Some(ip)) => ip,
        (true, None, Some(_)) => {
            return Err(format!(
                "the scheduler of cluster {} has no public IP address, and \
                    `use_scheduler_public_ip` asks for it (as Coiled's client does by default). \
                    Set `use_scheduler_public_ip = false` to connect over a private network",
                d.id
            ));
        }
        // No address yet.
        _ => return Ok(None),
    };
    Ok(Some(if ip.contains(':') {
        format!("tls://[{ip}]:{port}")
    } else {
        format!("tls://{ip}:{port}")
    }))
}

/// The delay before poll number `n` (0-based) of a wait for a stop: quick at first (a stop is often
/// over in a moment), backing off to 2 s.
pub fn stop_poll_delay(n: u32) -> Duration {
    Duration::from_secs_f64((0.25 * f64::powi(1.5, n.min(20) as i32)).min(2.0))
}

/// How far past each whole second of a readiness wait its poll comes.
pub const GRID_OFFSET: Duration = Duration::from_millis(100);

/// The delay from `elapsed` (since the wait began, right after the create or scale was answered) to
/// the next readiness poll. Polls fall on a one-second grid, as Coiled's client polls (once a
/// second), at `GRID_OFFSET` past each whole second (the first at `GRID_OFFSET`), so a wait of D
/// seconds makes at most D + 1 polls; the grid is anchored on the request's answer, so that a state
/// the server changes whole seconds after creating the cluster is seen within `GRID_OFFSET` (and
/// any other within a second).
pub fn grid_delay(elapsed: Duration) -> Duration {
    let next = (elapsed.saturating_sub(GRID_OFFSET).as_secs_f64().floor() + 1.0)
        + GRID_OFFSET.as_secs_f64();
    Duration::from_secs_f64((next - elapsed.as_secs_f64()).max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn details(
        state: &str,
        sched: &str,
        inst: &str,
        workers: &[&str],
        desired: i64,
    ) -> ClusterDetails {
        serde_json::from_value(json!({
            "id": 1, "current_state": {"state": state, "reason": if state == "error" { "no capacity" } else { "" }},
            "desired_workers": desired, "scheduler_port": 8786,
            "scheduler": {"current_state": {"state": sched}, "instance": {"public_ip_address": "198.51.100.1", "private_ip_address": "10.0.0.1", "current_state": {"state": inst}}},
            "workers": workers.iter().map(|w| json!({"name": "w", "current_state": {"state": w, "reason": if *w == "error" { "spot reclaimed" } else { "" }}})).collect::<Vec<_>>(),
            "cluster_infra": {"give_scheduler_public_ip": true},
        }))
        .unwrap()
    }

    /// `details` with the cluster, scheduler and instance states, and the workers' states, each
    /// space-separated.
    fn details_of(states: &str, workers: &str, desired: i64) -> ClusterDetails {
        let s: Vec<&str> = states.split(' ').collect();
        let workers: Vec<&str> = workers.split_whitespace().collect();
        details(s[0], s[1], s[2], &workers, desired)
    }

    /// A `Readiness` as a word, for tables.
    fn label(r: Readiness) -> &'static str {
        match r {
            Readiness::Ready => "ready",
            Readiness::Waiting { .. } => "waiting",
            Readiness::Failed(_) => "failed",
        }
    }

    #[test]
    fn wait_targets_follow_the_client() {
        assert_eq!(workers_to_wait_for(0.3, 4), 2);
        assert_eq!(workers_to_wait_for(0.3, 10), 3);
        assert_eq!(workers_to_wait_for(1.0, 4), 4);
        assert_eq!(workers_to_wait_for(0.0, 4), 0);
        assert_eq!(workers_to_wait_for(0.3, 0), 0);
    }

    #[test]
    fn readiness_table() {
        // (cluster scheduler instance states, worker states, desired workers, expected)
        let cases = [
            ("pending pending queued", "pending pending pending pending", 4, "waiting"),
            ("starting starting starting", "starting starting starting starting", 4, "waiting"),
            ("ready started ready", "started started starting starting", 4, "ready"),
            ("ready started ready", "started starting starting starting", 4, "failed"),
            ("scaling started ready", "started started pending pending", 4, "ready"),
            ("starting started started", "started started pending pending", 4, "ready"),
            ("paused stopped stopped", "", 4, "failed"),
            ("ready started starting", "started started started started", 4, "waiting"),
            ("error error error", "", 4, "failed"),
            ("stopping stopping stopping", "", 4, "failed"),
            ("starting starting starting", "error error error starting", 4, "failed"),
            ("ready started ready", "", 0, "ready"),
        ]
        .map(|(states, workers, desired, expect)| (details_of(states, workers, desired), expect));
        for (i, (d, expect)) in cases.iter().enumerate() {
            assert_eq!(label(readiness(d, 0.3, Wait::Start)), *expect, "case {i}");
        }
        assert_eq!(
            readiness(&cases[8].0, 0.3, Wait::Start),
            Readiness::Failed("no capacity".into())
        );
        let Readiness::Failed(why) = readiness(&cases[10].0, 0.3, Wait::Start) else { panic!() };
        assert!(why.contains("spot reclaimed"), "{why}");
    }

    /// Every growth of a ready cluster, from each count to each larger one, with each mix of the
    /// new workers' states: a scale fails only once a worker has failed since, so that the target
    /// cannot be reached; it is ready exactly when enough have started, whatever the cluster's own
    /// state.
    #[test]
    fn a_growing_cluster_is_waited_for_not_failed() {
        let states = ["pending", "starting", "started", "error"];
        for from in 0..=4usize {
            for to in from + 1..=5usize {
                for fraction in [0.3, 0.5, 1.0] {
                    let target = workers_to_wait_for(fraction, to as i64);
                    // Each mix of states for the added workers (4^(to - from) of them).
                    for code in 0..states.len().pow((to - from) as u32) {
                        let added: Vec<&str> = (0..to - from)
                            .map(|i| states[code / states.len().pow(i as u32) % states.len()])
                            .collect();
                        let mut workers = vec!["started"; from];
                        workers.extend(&added);
                        let started = workers.iter().filter(|w| **w == "started").count() as i64;
                        let alive = workers.iter().filter(|w| **w != "error").count() as i64;
                        let expect = if started >= target {
                            "ready"
                        } else if alive < target {
                            "failed"
                        } else {
                            "waiting"
                        };
                        let wait = Wait::Scale { workers: to as i64, failed_before: 0 };
                        for cluster_state in ["ready", "scaling", "starting"] {
                            // The server may or may not have updated `desired_workers` yet.
                            for desired in [from as i64, to as i64] {
                                let d =
                                    details(cluster_state, "started", "ready", &workers, desired);
                                assert_eq!(
                                    label(readiness(&d, fraction, wait)),
                                    expect,
                                    "{from} -> {to} at {fraction}, {workers:?}, cluster \
                                        {cluster_state}"
                                );
                            }
                        }
                    }
                }
            }
        }
        // Workers that had failed before the scale do not end it: the list may not show the new
        // ones yet.
        let d = details("ready", "started", "ready", &["started", "error"], 2);
        assert!(matches!(
            readiness(&d, 1.0, Wait::Scale { workers: 4, failed_before: 1 }),
            Readiness::Waiting { .. }
        ));
        assert!(matches!(readiness(&d, 1.0, Wait::Start), Readiness::Failed(_)));
    }

    #[test]
    fn addresses_follow_use_scheduler_public_ip() {
        let d = details("ready", "started", "ready", &[], 0);
        let at = |d: &ClusterDetails, public| scheduler_address(d, public, 443);
        assert_eq!(at(&d, true), Ok(Some("tls://198.51.100.1:8786".into())));
        assert_eq!(at(&d, false), Ok(Some("tls://10.0.0.1:8786".into())));
        let mut no_public = d.clone();
        no_public.cluster_infra = json!({"give_scheduler_public_ip": false});
        assert_eq!(at(&no_public, true), Ok(Some("tls://10.0.0.1:8786".into())));
        // Given a public IP but not reporting one: an error, as the client raises, never the
        // private one.
        let mut missing = d.clone();
        missing.scheduler.as_mut().unwrap().instance.as_mut().unwrap().public_ip_address = None;
        assert!(at(&missing, true).unwrap_err().contains("no public IP address"));
        assert_eq!(at(&missing, false), Ok(Some("tls://10.0.0.1:8786".into())));
        // No port reported: the configured or default one, not 8786.
        let mut portless = d.clone();
        portless.scheduler_port = None;
        assert_eq!(at(&portless, false), Ok(Some("tls://10.0.0.1:443".into())));
    }

    #[test]
    fn readiness_polls_fall_on_a_one_second_grid() {
        let at = |secs: f64| grid_delay(Duration::from_secs_f64(secs)).as_secs_f64();
        assert!((at(0.0) - 1.1).abs() < 1e-9, "{}", at(0.0));
        assert!((at(1.1) - 1.0).abs() < 1e-9);
        assert!((at(1.3) - 0.8).abs() < 1e-9);
        assert!((at(2.05) - 0.05).abs() < 1e-9);
        // A wait of D whole seconds: the first poll at 0.1 s, then one a second.
        for d in [3.0, 20.0, 90.0] {
            let (mut t, mut polls) = (0.1, 1);
            while t < d {
                t += at(t);
                polls += 1;
            }
            assert!(polls as f64 <= d + 1.0, "{polls} polls for {d} s");
            assert!(t - d <= 0.1 + 1e-9, "seen {} s after", t - d);
        }
    }

    #[test]
    fn stops_are_polled_quickly_then_backed_off() {
        assert!(stop_poll_delay(0) <= Duration::from_millis(250));
        assert_eq!(stop_poll_delay(30), Duration::from_secs(2));
    }
}
