//! The cluster's values: defaults, helpers over its configuration / plan / state value, the create
//! request built from a plan, and the state built from what the server reports.

use std::collections::BTreeMap;
use std::time::Duration;

use tfplugin::model::Field;
use tfplugin::value::{Number, Value};

use super::super::duration::Timeouts;
use super::super::ingress::RuleSet;
use super::state as cluster_state;
use crate::api::{ClusterDetails, ClusterOptions, CreateCluster, FirewallSpecOut, SchedulerOptions};

/// Private data of a cluster whose create was interrupted before it was ready: the next apply waits for
/// it in place.
pub const INTERRUPTED: &[u8] = br#"{"interrupted":true}"#;

/// Default for each of the create, update and delete timeouts.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// Default worker count, as `coiled.Cluster`.
pub const DEFAULT_WORKERS: i64 = 4;
/// Default fraction of workers to wait for, as `coiled.Cluster`.
pub const DEFAULT_WAIT_FOR_WORKERS: f64 = 0.3;

tfplugin::model! {
    /// `coiled_cluster`'s configuration, plan or state.
    pub struct ClusterModel {
        id: String,
        name: String,
        workspace: String,
        n_workers: Number,
        worker_vm_types: Vec<String>,
        scheduler_vm_types: Vec<String>,
        software: String,
        tags: BTreeMap<String, String>,
        environ: BTreeMap<String, String>,
        idle_timeout: String,
        use_scheduler_public_ip: bool,
        wait_for_workers: Number,
        acknowledge_world_open_ingress: bool,
        status: String,
        scheduler_address: String,
        scheduler_public_address: String,
        scheduler_private_address: String,
        dashboard_address: String,
        created_at: String,
        /// Computed rows, built from a [`RuleSet`].
        firewall_rules: Value,
        backend_options: ClusterBackendOptions,
        timeouts: Timeouts,
    }
}

tfplugin::model! {
    /// The cluster's `backend_options` block.
    pub struct ClusterBackendOptions {
        region: String,
        zone: String,
        spot: bool,
        /// The `ingress` blocks as Terraform has them (elements may be unknown while planning); read
        /// into a [`RuleSet`] once per call.
        ingress: Value,
    }
}

/// Which of the `timeouts` values.
#[derive(Clone, Copy)]
pub enum Operation {
    /// `timeouts.create`.
    Create,
    /// `timeouts.update`.
    Update,
    /// `timeouts.delete`.
    Delete,
}

impl ClusterModel {
    /// The worker count, or the default.
    pub fn workers(&self) -> i64 {
        self.n_workers.known().and_then(Number::as_i64).unwrap_or(DEFAULT_WORKERS)
    }

    /// The fraction of workers to wait for, or the default.
    pub fn wait_fraction(&self) -> f64 {
        self.wait_for_workers.known().and_then(Number::as_f64).unwrap_or(DEFAULT_WAIT_FOR_WORKERS)
    }

    /// Whether clients use the scheduler's public address (the default).
    pub fn use_public_ip(&self) -> bool {
        self.use_scheduler_public_ip.known().copied().unwrap_or(true)
    }

    /// The `backend_options` block, empty when unset.
    pub fn backend(&self) -> ClusterBackendOptions {
        self.backend_options.known().cloned().unwrap_or_default()
    }

    /// The `ingress` value inside `backend_options`.
    pub fn ingress(&self) -> Value {
        self.backend_options.known().map_or(Value::Null, |b| b.ingress.encode())
    }

    /// The cluster's own rules in a value this provider planned or stored, `None` when it sets none
    /// (it then inherits).
    pub fn own_rules(&self) -> Option<RuleSet> {
        RuleSet::of_state(&self.ingress())
    }

    /// One of the `timeouts` values, or the default.
    pub fn timeout(&self, which: Operation) -> Duration {
        let t = self.timeouts.known().cloned().unwrap_or_default();
        let text = match which {
            Operation::Create => t.create,
            Operation::Update => t.update,
            Operation::Delete => t.delete,
        };
        crate::provider::duration::timeout_or(text.as_deref(), DEFAULT_TIMEOUT)
    }

    /// The cluster id in state.
    pub fn cluster_id(&self) -> Option<i64> {
        self.id.as_deref().and_then(|i| i.parse().ok())
    }
}

/// Cluster names as Coiled accepts them.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn text(v: &Field<String>) -> Option<String> {
    v.known().cloned()
}

/// The create request, shaped as Coiled's client sends it (unset values as `null`), with the
/// cluster's own rules as read once from the plan.
pub fn create_body(planned: &ClusterModel, own: Option<&RuleSet>) -> CreateCluster {
    let bo = planned.backend();
    let options = ClusterOptions {
        region_name: text(&bo.region),
        zone_name: text(&bo.zone),
        spot: bo.spot.known().copied(),
        // As Coiled's client: a private scheduler also keeps the dashboard off the public address.
        use_dashboard_public_ip: (!planned.use_public_ip()).then_some(false),
        firewall_spec: own.map(|rules| FirewallSpecOut { ingress: Some(rules.to_wire()) }),
    };
    CreateCluster {
        name: planned.name.as_deref().unwrap_or_default().to_string(),
        workers: planned.workers(),
        worker_instance_types: planned.worker_vm_types.known().cloned(),
        scheduler_instance_types: planned.scheduler_vm_types.known().cloned(),
        worker_options: BTreeMap::new(),
        worker_class: None,
        worker_disk_size: None,
        scheduler_disk_size: None,
        scheduler_options: SchedulerOptions { idle_timeout: text(&planned.idle_timeout) },
        environ: planned.environ.known().cloned().unwrap_or_default(),
        tags: planned.tags.known().cloned().unwrap_or_default(),
        dask_config: BTreeMap::new(),
        private_to_creator: false,
        env_id: None,
        env_name: text(&planned.software),
        use_aws_creds_endpoint: true,
        options,
    }
}

/// The state for what the server reports, on top of `base` (planned or prior state) whose own rules
/// are `own`.
pub fn state_from_details(base: &ClusterModel, own: Option<&RuleSet>, d: &ClusterDetails, ws: &str) -> ClusterModel {
    let mut state = base.clone();
    state.id = Field::Known(d.id.to_string());
    state.workspace = Field::Known(ws.to_string());
    if !d.name.is_empty() {
        state.name = Field::Known(d.name.clone());
    }
    state.status = Field::Known(d.current_state.state.clone());
    state.n_workers = Field::Known(Number::from_i64(d.desired_workers));
    let (chosen, public, private) = cluster_state::scheduler_addresses(d, base.use_public_ip());
    state.scheduler_address = Field::from_option(chosen);
    state.scheduler_public_address = Field::from_option(public);
    state.scheduler_private_address = Field::from_option(private);
    state.dashboard_address = Field::from_option(d.scheduler.as_ref().and_then(|s| s.dashboard_address.clone()));
    state.created_at = Field::from_option(d.created.clone());
    // The effective rules: as the server reports them, else the cluster's own, else unknown to us.
    let rules = d.ingress().map(|w| RuleSet::from_wire(&w)).or_else(|| own.cloned()).unwrap_or_default();
    state.firewall_rules = Field::Known(rules.rows_value());
    if state.use_scheduler_public_ip.is_null() {
        state.use_scheduler_public_ip = Field::Known(true);
    }
    if state.wait_for_workers.known().is_none() {
        state.wait_for_workers = Field::Known(Number::from_f64(DEFAULT_WAIT_FOR_WORKERS).expect("finite"));
    }
    state
}

/// The state of a cluster known only by id (every computed value filled, as Terraform requires).
pub(crate) fn pending_state(base: &ClusterModel, own: Option<&RuleSet>, id: i64, ws: &str) -> ClusterModel {
    let mut state = base.clone();
    state.id = Field::Known(id.to_string());
    state.workspace = Field::Known(ws.to_string());
    if state.status.is_unknown() {
        state.status = Field::Known("pending".into());
    }
    for field in [
        &mut state.scheduler_address,
        &mut state.scheduler_public_address,
        &mut state.scheduler_private_address,
        &mut state.dashboard_address,
        &mut state.created_at,
    ] {
        if field.is_unknown() {
            *field = Field::Null;
        }
    }
    if state.firewall_rules.is_unknown() {
        state.firewall_rules = Field::Known(own.cloned().unwrap_or_default().rows_value());
    }
    state
}
