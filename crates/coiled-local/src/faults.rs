//! Faults on demand, for reliability tests: latency, error statuses (429 with or without `Retry-After`,
//! 500, 502, 503), dropped connections, and creates and scale-ups whose answer is lost (or is a 502)
//! after the work was done.
//! Deterministic for a given seed. Off unless configured (`--faults JSON` or `PUT /_local/faults`).

use std::collections::BTreeMap;
use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// What to inject. Rates are probabilities per API request, from 0 to 1.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FaultConfig {
    /// Seed of the random choices.
    pub seed: u64,
    /// Added latency per request, in milliseconds.
    pub latency_ms: u64,
    /// Rate of 429 answers.
    pub rate_429: f64,
    /// `Retry-After` seconds sent with 429 and 503 (none when absent).
    pub retry_after: Option<u64>,
    /// Rate of 500 answers.
    pub rate_500: f64,
    /// Rate of 502 answers.
    pub rate_502: f64,
    /// Rate of 503 answers.
    pub rate_503: f64,
    /// Rate of connections dropped without an answer (before any work is done).
    pub rate_drop: f64,
    /// The next N successful cluster creates lose their answer (the connection drops after the create).
    pub lose_create_responses: u32,
    /// The next N successful cluster creates are answered 502 although the cluster was made, as a
    /// gateway that timed out while the server went on.
    pub create_then_502: u32,
    /// The next N successful scale-ups (`POST` of workers) lose their answer after adding the workers.
    pub lose_scale_responses: u32,
    /// The next N successful scale-ups are answered 502 although the workers were added.
    pub scale_then_502: u32,
    /// Every Nth cluster of a list (by position, from 1) carries a null `current_state.state`, which
    /// Coiled's CLI allows (`.get("state") or "unknown"`); 0 for none.
    pub null_list_state_every: u32,
    /// The status `dask-config-overrides` answers with (and a JSON error body), instead of the
    /// overrides; 0 for none.
    pub overrides_status: u16,
}

/// The fault to apply to one request.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answer with this status, without doing the work.
    Status(u16, Option<u64>),
    /// Drop the connection without doing the work.
    Drop,
}

/// Fault state: the configuration and its random source.
pub struct Faults {
    inner: Mutex<(FaultConfig, StdRng)>,
}

impl Faults {
    /// Faults as configured.
    pub fn new(config: FaultConfig) -> Faults {
        let rng = StdRng::seed_from_u64(config.seed);
        Faults { inner: Mutex::new((config, rng)) }
    }
    /// The current configuration.
    pub fn config(&self) -> FaultConfig {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).0.clone()
    }
    /// Replaces the configuration (and reseeds).
    pub fn set(&self, config: FaultConfig) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.1 = StdRng::seed_from_u64(config.seed);
        g.0 = config;
    }
    /// Decides the latency and fault for one request.
    pub fn decide(&self) -> (u64, Option<Fault>) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let (config, rng) = &mut *g;
        let roll: f64 = rng.random();
        let mut edge = 0.0;
        let mut pick = None;
        for (rate, fault) in [
            (config.rate_drop, Fault::Drop),
            (config.rate_429, Fault::Status(429, config.retry_after)),
            (config.rate_500, Fault::Status(500, None)),
            (config.rate_502, Fault::Status(502, None)),
            (config.rate_503, Fault::Status(503, config.retry_after)),
        ] {
            edge += rate;
            if pick.is_none() && roll < edge {
                pick = Some(fault);
            }
        }
        (config.latency_ms, pick)
    }
    /// Consumes one from the counter `which` picks, if any is left.
    fn take(&self, which: impl Fn(&mut FaultConfig) -> &mut u32) -> bool {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let left = which(&mut g.0);
        if *left > 0 {
            *left -= 1;
            true
        } else {
            false
        }
    }
    /// The fault, if any, that strikes a request of kind `work` once it has done its work: its answer
    /// lost (`lose_*`), else a 502 (`*_then_502`); each consumes one of its counter.
    pub fn after_work(&self, work: Work) -> Option<AfterWork> {
        let (lost, then_502): (Counter, Counter) = match work {
            Work::Create => (|c| &mut c.lose_create_responses, |c| &mut c.create_then_502),
            Work::Scale => (|c| &mut c.lose_scale_responses, |c| &mut c.scale_then_502),
        };
        if self.take(lost) {
            Some(AfterWork::Lost)
        } else if self.take(then_502) {
            Some(AfterWork::BadGateway)
        } else {
            None
        }
    }
}

/// One of the counters of [`FaultConfig`].
type Counter = fn(&mut FaultConfig) -> &mut u32;

/// A request that does work a fault may strike afterwards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// A cluster create.
    Create,
    /// Workers added to a cluster.
    Scale,
}

/// What strikes a request after its work was done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AfterWork {
    /// The connection drops: the answer is lost.
    Lost,
    /// A 502, as a gateway that gave up while the server went on.
    BadGateway,
}

/// Counters of API requests, by method and route.
#[derive(Default)]
pub struct Stats {
    inner: Mutex<Counters>,
}

/// The counters.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Counters {
    /// All API requests (not `/_local`, not the page).
    pub requests: u64,
    /// By `METHOD route`.
    pub by_route: BTreeMap<String, u64>,
    /// Faults injected, by kind.
    pub faults: BTreeMap<String, u64>,
    /// Cluster creates that made a new cluster.
    pub clusters_created: u64,
}

impl Stats {
    /// Counts one request.
    pub fn count(&self, route: String) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.requests += 1;
        *g.by_route.entry(route).or_default() += 1;
    }
    /// Counts an injected fault.
    pub fn fault(&self, kind: &str) {
        *self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .faults
            .entry(kind.to_string())
            .or_default() += 1;
    }
    /// Counts a created cluster.
    pub fn created(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clusters_created += 1;
    }
    /// A snapshot.
    pub fn snapshot(&self) -> Counters {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
    /// Resets all counters.
    pub fn reset(&self) {
        *self.inner.lock().unwrap_or_else(|p| p.into_inner()) = Counters::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_faults_and_rates_are_respected() {
        let cfg = FaultConfig { seed: 7, rate_429: 0.2, rate_503: 0.2, ..Default::default() };
        let a: Vec<_> = {
            let f = Faults::new(cfg.clone());
            (0..200).map(|_| f.decide().1).collect()
        };
        let b: Vec<_> = {
            let f = Faults::new(cfg);
            (0..200).map(|_| f.decide().1).collect()
        };
        assert_eq!(a, b);
        let faults = a.iter().filter(|x| x.is_some()).count();
        assert!((50..110).contains(&faults), "{faults} faults of 200 at 40%");
        assert!(Faults::new(FaultConfig::default()).decide().1.is_none());
    }

    #[test]
    fn faults_after_work_are_counted_down_lost_answers_first() {
        let f = Faults::new(FaultConfig {
            lose_create_responses: 1,
            create_then_502: 1,
            scale_then_502: 1,
            ..Default::default()
        });
        assert_eq!(f.after_work(Work::Create), Some(AfterWork::Lost));
        assert_eq!(f.after_work(Work::Create), Some(AfterWork::BadGateway));
        assert_eq!(f.after_work(Work::Create), None);
        assert_eq!(f.after_work(Work::Scale), Some(AfterWork::BadGateway));
        assert_eq!(f.after_work(Work::Scale), None);
    }
}
