//! `coiled-local`: a Coiled control plane on one machine, speaking the real API (REST under `/api/…`,
//! the `update_options` WebSocket under `/ws/…`) over SQLite storage, with clusters that move through
//! Coiled's states on timers, configurable faults for reliability tests, and a page for people at `/`.
//!
//! Its wire types are its own ([`wire`]), written from the API facts, not shared with the provider's
//! client: a field the client names wrongly fails a test instead of being mirrored.

pub mod accounts;
pub mod app;
pub mod dask;
pub mod faults;
pub mod handlers;
pub mod idle;
pub mod lifecycle;
pub mod minimal;
pub mod page;
pub mod recorder;
pub mod serve;
pub mod software_store;
pub mod store;
pub mod tls;
pub mod vary;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use coiled_firewall::Rule;

/// Server settings.
#[derive(Clone, Debug)]
pub struct Config {
    /// Time from create to `ready`.
    pub provision_delay: Duration,
    /// Time from stop to `stopped`.
    pub stop_delay: Duration,
    /// Rules for clusters created with no ingress of their own and none at account level.
    pub default_ingress: Vec<Rule>,
    /// Scheduler port of clusters whose create sets none: 443, as current Coiled.
    pub scheduler_port: i64,
    /// How many times faster than real time idle timeouts pass (`--time-scale`).
    pub time_scale: f64,
    /// Software environments that exist, built, from the start (`--software-env`).
    pub software_envs: Vec<String>,
    /// The workspace's Dask configuration overrides (`--dask-config-overrides FILE`).
    pub dask_config_overrides: serde_json::Value,
    /// Answer with only the fields the public client reads (`--minimal-echo`).
    pub minimal_echo: bool,
    /// How many clusters a workspace may have running at once (`--max-clusters`): nobody with a
    /// token fills the server's memory and disk.
    pub max_clusters: i64,
    /// A wide-area round trip (`--latency`): every API request, the WebSocket's opening request
    /// included, and each WebSocket message waits this long before it is handled. The `/_local`
    /// routes are not delayed.
    pub latency: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            provision_delay: Duration::from_secs(3),
            stop_delay: Duration::from_secs(1),
            default_ingress: vec![
                coiled_firewall::rule_from_wire(&[443, 8786, 8787], "0.0.0.0/0")
                    .expect("valid default"),
            ],
            scheduler_port: 443,
            time_scale: 1.0,
            software_envs: Vec::new(),
            dask_config_overrides: serde_json::json!({}),
            minimal_echo: false,
            max_clusters: 10_000,
            latency: Duration::ZERO,
        }
    }
}

/// Everything the handlers share.
pub struct State {
    /// Storage.
    pub store: store::Store,
    /// Settings.
    pub config: Config,
    /// Fault injection.
    pub faults: faults::Faults,
    /// Wakes the lifecycle task when a new state change is scheduled.
    pub wake: tokio::sync::Notify,
    /// Request counters.
    pub stats: faults::Stats,
    /// Every API request received, for `GET /_local/requests`.
    pub requests: recorder::Requests,
    /// The real clusters (`--clusters dask`); `None` when clusters are simulated.
    pub dask: Option<Arc<dask::Runtime>>,
    /// Answers and timings that vary within what the client tolerates (`--vary SEED`).
    pub vary: Option<vary::Vary>,
}

impl State {
    /// How much longer than configured a phase of `what` `id` lasts: 1 unless `--vary` draws a
    /// factor in `[low, high)` (`phase-times`).
    pub fn phase_factor(&self, low: f64, high: f64, what: &str, id: i64) -> f64 {
        self.vary.as_ref().map_or(1.0, |v| v.factor(low, high, what, &id.to_string()))
    }
}

/// Shared handle.
pub type Shared = Arc<State>;

/// Current time as Unix seconds.
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
