//! `coiled_cluster`: a Dask cluster, with its own firewall (`backend_options { ingress }`) and the choice
//! of public or private scheduler address (`use_scheduler_public_ip`).
//!
//! API calls: `POST /api/v2/clusters/account/{ws}/` (create), `GET …/id/{id}` (wait, read),
//! `GET …/name/{name}` (import, and recovering a create whose answer was lost), `DELETE …/id/{id}`
//! (destroy, and cleaning up a create that failed), `GET/POST/DELETE /api/v2/workers/…` (scaling).
//! Only the worker count changes in place; everything else is fixed at creation (replacement).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use std::collections::BTreeMap;

use super::cluster_state::{self, Readiness};
use super::ingress::{self, Parsed};
use super::{Coiled, ProviderData};
use crate::api::{ApiError, ClusterDetails, ClusterOptions, CreateCluster, FirewallSpecOut, Op, SchedulerOptions};
use coiled_firewall::Rule;
use tfplugin::diag::Diagnostics;
use tfplugin::framework::{Ctx, NewState, Plan, Private, Resource};
use tfplugin::schema::{Attribute, Block, NestedBlock, Nesting, Schema};
use tfplugin::value::{AttrPath, Number, Type, Value};

/// Default for each of the create, update and delete timeouts.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// Default worker count, as `coiled.Cluster`.
pub const DEFAULT_WORKERS: i64 = 4;
/// Default fraction of workers to wait for, as `coiled.Cluster`.
pub const DEFAULT_WAIT_FOR_WORKERS: f64 = 0.3;

/// The resource.
pub struct ClusterResource {
    data: Arc<ProviderData>,
}

impl ClusterResource {
    /// The resource, sharing the provider's configuration.
    pub fn new(data: Arc<ProviderData>) -> ClusterResource {
        ClusterResource { data }
    }
}

fn s<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

/// Cluster names as Coiled accepts them.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// One of the `timeouts` values, or the default.
fn timeout(state: &Value, which: &str) -> Duration {
    state
        .get("timeouts")
        .and_then(|t| t.get(which))
        .and_then(Value::as_str)
        .and_then(|t| humantime::parse_duration(t).ok())
        .unwrap_or(DEFAULT_TIMEOUT)
}

fn wait_fraction(state: &Value) -> f64 {
    state.get("wait_for_workers").and_then(Value::as_number).and_then(Number::as_f64).unwrap_or(DEFAULT_WAIT_FOR_WORKERS)
}

fn use_public_ip(state: &Value) -> bool {
    state.get("use_scheduler_public_ip").and_then(Value::as_bool).unwrap_or(true)
}

fn backend_options(state: &Value) -> &Value {
    state.get("backend_options").unwrap_or(&Value::Null)
}

/// The cluster's own ingress rules, `None` when it sets none (it then inherits).
fn own_rules(state: &Value) -> Option<Vec<Rule>> {
    own_rules_of(backend_options(state).get("ingress"))
}

/// The rules of an `ingress` set value, `None` when it holds none.
fn own_rules_of(ingress: Option<&Value>) -> Option<Vec<Rule>> {
    let ingress = ingress?;
    if ingress.as_elements().is_none_or(<[Value]>::is_empty) {
        return None;
    }
    match ingress::parse(ingress, &AttrPath::root(), true, false, &mut Diagnostics::new()) {
        Parsed::Rules(r) => Some(r),
        _ => None,
    }
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_map)
        .map(|m| m.iter().filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_string()))).collect())
        .unwrap_or_default()
}

fn string_list(v: Option<&Value>) -> Option<Vec<String>> {
    v.and_then(Value::as_elements).map(|items| items.iter().filter_map(Value::as_str).map(str::to_string).collect())
}

/// The create request, shaped as Coiled's client sends it (unset values as `null`).
pub fn create_body(planned: &Value) -> CreateCluster {
    let bo = backend_options(planned);
    let options = ClusterOptions {
        region_name: s(bo, "region").map(str::to_string),
        zone_name: s(bo, "zone").map(str::to_string),
        spot: bo.get("spot").and_then(Value::as_bool),
        // As Coiled's client: a private scheduler also keeps the dashboard off the public address.
        use_dashboard_public_ip: (!use_public_ip(planned)).then_some(false),
        firewall_spec: own_rules(planned).map(|rules| FirewallSpecOut { ingress: Some(ingress::to_wire(&rules)) }),
    };
    CreateCluster {
        name: s(planned, "name").unwrap_or_default().to_string(),
        workers: planned.get("n_workers").and_then(Value::as_number).and_then(Number::as_i64).unwrap_or(DEFAULT_WORKERS),
        worker_instance_types: string_list(planned.get("worker_vm_types")),
        scheduler_instance_types: string_list(planned.get("scheduler_vm_types")),
        worker_options: BTreeMap::new(),
        worker_class: None,
        worker_disk_size: None,
        scheduler_disk_size: None,
        scheduler_options: SchedulerOptions { idle_timeout: s(planned, "idle_timeout").map(str::to_string) },
        environ: string_map(planned.get("environ")),
        tags: string_map(planned.get("tags")),
        dask_config: BTreeMap::new(),
        private_to_creator: false,
        env_id: None,
        env_name: s(planned, "software").map(str::to_string),
        use_aws_creds_endpoint: true,
        options,
    }
}

/// The state for what the server reports, on top of `base` (planned or prior state).
pub fn state_from_details(base: &Value, d: &ClusterDetails, ws: &str) -> Value {
    let mut state = base.clone();
    state.set_attr("id", Value::string(d.id.to_string()));
    state.set_attr("workspace", Value::string(ws));
    if !d.name.is_empty() {
        state.set_attr("name", Value::string(d.name.clone()));
    }
    state.set_attr("status", Value::string(d.current_state.state.clone()));
    state.set_attr("n_workers", Value::int(d.desired_workers));
    let (chosen, public, private) = cluster_state::scheduler_addresses(d, use_public_ip(base));
    let opt = |v: Option<String>| v.map(Value::string).unwrap_or(Value::Null);
    state.set_attr("scheduler_address", opt(chosen));
    state.set_attr("scheduler_public_address", opt(public));
    state.set_attr("scheduler_private_address", opt(private));
    state.set_attr("dashboard_address", opt(d.scheduler.as_ref().and_then(|s| s.dashboard_address.clone())));
    state.set_attr("created_at", opt(d.created.clone()));
    // The effective rules: as the server reports them, else the cluster's own, else unknown to us.
    let rules = d.ingress().map(|w| ingress::from_wire(&w)).or_else(|| own_rules(base)).unwrap_or_default();
    state.set_attr("firewall_rules", ingress::rows_value(&rules));
    if state.get("use_scheduler_public_ip").is_none_or(Value::is_null) {
        state.set_attr("use_scheduler_public_ip", Value::Bool(true));
    }
    if state.get("wait_for_workers").is_none_or(|v| v.is_null() || v.is_unknown()) {
        state.set_attr("wait_for_workers", Value::Number(Number::from_f64(DEFAULT_WAIT_FOR_WORKERS).expect("finite")));
    }
    state
}

impl ClusterResource {
    async fn connection(&self, diags: &mut Diagnostics) -> Option<Arc<Coiled>> {
        self.data.require(diags).await
    }

    /// At plan time: the token works, and its user is a member of the cluster's workspace.
    async fn check_access(&self, ctx: &Ctx, plan: &Plan, diags: &mut Diagnostics) {
        let mut quiet = Diagnostics::new();
        let Ok(Some(coiled)) = self.data.coiled(&mut quiet).await else { return };
        let op = Op::new(super::DEFAULT_API_TIMEOUT, ctx.stop.clone());
        let own = s(&plan.config, "workspace");
        let ws = own.or(s(&plan.planned, "workspace")).or(coiled.configured_workspace());
        coiled.check_access(&op, ws, own.map(|_| AttrPath::attr("workspace")), diags).await;
    }

    /// Creates the cluster. The name is looked up first (as Coiled's client does before it creates):
    /// a running cluster of that name belongs to someone else and is never taken over, and one still
    /// stopping is waited for. After a create whose answer was lost, a cluster found under the name
    /// was made by this apply (it was not there a moment before) and is adopted; anything else gets
    /// the same error as without faults.
    async fn post_create(coiled: &Coiled, op: &Op, ws: &str, name: &str, body: &CreateCluster, diags: &mut Diagnostics) -> Option<i64> {
        if !Self::name_is_free(coiled, op, ws, name, diags).await {
            return None;
        }
        match coiled.client.create_cluster(op, ws, body).await {
            Ok(created) if created.existing && !created.recovered => {
                already_exists(diags, ws, name, created.id);
                None
            }
            Ok(created) => Some(created.id),
            Err(e) => {
                coiled.report(diags, "Unable to Create Cluster", None, &e);
                None
            }
        }
    }

    /// Whether no running cluster holds `name`; waits for one that is stopping to finish. Reports why not.
    async fn name_is_free(coiled: &Coiled, op: &Op, ws: &str, name: &str, diags: &mut Diagnostics) -> bool {
        let mut n = 0u32;
        loop {
            let found = match coiled.client.find_cluster_by_name(op, ws, name).await {
                Ok(None) => return true,
                Ok(Some(found)) => found,
                Err(e) => {
                    coiled.report(diags, "Unable to Create Cluster", None, &e);
                    return false;
                }
            };
            let state = match coiled.client.get_cluster(op, ws, found.id).await {
                Ok(d) => d.current_state.state,
                Err(e) if e.is_not_found() => return true,
                Err(e) => {
                    coiled.report(diags, "Unable to Create Cluster", None, &e);
                    return false;
                }
            };
            if !matches!(state.as_str(), "stopping" | "stopped" | "error") {
                already_exists(diags, ws, name, found.id);
                return false;
            }
            if n == 0 {
                tracing::info!(cluster = found.id, "a cluster of the same name is still stopping; waiting for it");
            }
            if op.remaining() <= Duration::from_secs(1) {
                diags.error_at(
                    AttrPath::attr("name"),
                    "Cluster Name Still in Use",
                    format!("Cluster {} of the same name ({name:?}) is still stopping and holds the name. Apply again shortly, once it has stopped.", found.id),
                );
                return false;
            }
            if op.sleep(cluster_state::poll_delay(n, "stopping")).await.is_err() {
                coiled.report(diags, "Unable to Create Cluster", None, &ApiError::Cancelled);
                return false;
            }
            n += 1;
        }
    }

    /// Warns when the cluster's own ingress repeats the workspace's account-level default verbatim: the
    /// block is then redundant, and would silently diverge when the account default changes.
    async fn warn_if_redundant(&self, planned: &Value, diags: &mut Diagnostics) {
        let Some(own) = own_rules(planned) else { return };
        let mut quiet = Diagnostics::new();
        let Ok(Some(coiled)) = self.data.coiled(&mut quiet).await else { return };
        let op = Op::new(Duration::from_secs(30), Default::default());
        let ws = match s(planned, "workspace") {
            Some(ws) => ws.to_string(),
            None => match coiled.workspace(&op).await {
                Ok(ws) => ws,
                Err(_) => return,
            },
        };
        let Ok(account) = coiled.client.get_backend_options(&op, &ws).await else { return };
        if let Some(wire) = account.ingress()
            && !wire.is_empty()
            && coiled_firewall::same_rules(&own, &ingress::from_wire(&wire))
        {
            diags.warning_at(
                AttrPath::attr("backend_options").then("ingress"),
                "Ingress Repeats the Account Default",
                format!(
                    "These ingress rules are exactly workspace {ws:?}'s account-level default, so they change nothing today. Remove them to follow the account default, or keep them to pin these rules even if the default changes later."
                ),
            );
        }
    }

    /// Polls until the cluster is ready, failed, cancelled or out of time. Returns the last details.
    async fn wait_ready(
        coiled: &Coiled,
        op: &Op,
        ws: &str,
        id: i64,
        fraction: f64,
    ) -> Result<ClusterDetails, (WaitEnd, Option<ClusterDetails>)> {
        let mut n = 0u32;
        let mut last: Option<ClusterDetails> = None;
        let mut last_state = String::new();
        loop {
            match coiled.client.get_cluster(op, ws, id).await {
                Ok(d) => {
                    match cluster_state::readiness(&d, fraction) {
                        Readiness::Ready => return Ok(d),
                        Readiness::Failed(reason) => return Err((WaitEnd::Failed(reason), Some(d))),
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
            let delay = cluster_state::poll_delay(n, &last_state);
            n += 1;
            if op.sleep(delay).await.is_err() {
                return Err((WaitEnd::Cancelled, last));
            }
        }
    }

    /// Stops a cluster and waits until it is stopped (or gone).
    async fn stop_and_wait(coiled: &Coiled, op: &Op, ws: &str, id: i64, reason: &str) -> Result<(), ApiError> {
        match coiled.client.stop_cluster(op, ws, id, reason).await {
            Ok(()) => {}
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut n = 0;
        loop {
            let state = match coiled.client.get_cluster(op, ws, id).await {
                Ok(d) if matches!(d.current_state.state.as_str(), "stopped" | "error") => return Ok(()),
                Ok(d) => d.current_state.state,
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) => return Err(e),
            };
            if op.remaining().is_zero() {
                return Err(ApiError::NotStopped { id, state });
            }
            op.sleep(cluster_state::poll_delay(n, "stopping")).await?;
            n += 1;
        }
    }

    /// Reports a failed wait after create or update. After create, the half-made cluster is stopped so
    /// that nothing is left behind that Terraform does not know about; if that fails, its state is kept.
    async fn fail_wait(
        cluster: Target<'_>,
        ctx: &Ctx,
        (end, last): (WaitEnd, Option<ClusterDetails>),
        creating: bool,
        diags: &mut Diagnostics,
    ) -> Option<NewState> {
        let Target { coiled, ws, id, base } = cluster;
        let summary = if creating { "Cluster Failed to Start" } else { "Cluster Failed to Scale" };
        let current = last.as_ref().map(|d| state_from_details(base, d, ws));
        match end {
            WaitEnd::Cancelled if creating => {
                // A warning, not an error: an error would mark the cluster tainted, and the next apply
                // would replace it even once it is ready.
                diags.warning(
                    "Interrupted",
                    format!("Terraform was interrupted while cluster {id} was starting. It is kept in state as it is now. The next apply keeps it if it has become ready, waits for it if it is still starting, and creates a new one only if it failed or was stopped."),
                );
                return Some(NewState { state: current.unwrap_or_else(|| pending_state(base, id, ws)), private: Vec::new() });
            }
            WaitEnd::Cancelled => {
                diags.error(
                    "Interrupted",
                    format!("Terraform was interrupted while cluster {id} was scaling. It is kept in state as it is now; the next plan shows what is left to do."),
                );
                return Some(NewState { state: current.unwrap_or_else(|| pending_state(base, id, ws)), private: Vec::new() });
            }
            WaitEnd::Api(e) => {
                coiled.report(diags, summary, None, &e);
                return Some(NewState { state: current.unwrap_or_else(|| pending_state(base, id, ws)), private: Vec::new() });
            }
            WaitEnd::Failed(_) | WaitEnd::TimedOut if !creating => {
                let why = match end {
                    WaitEnd::Failed(r) => r,
                    _ => "the update timeout passed".into(),
                };
                diags.error(summary, format!("Cluster {id} did not become ready after scaling: {why}."));
                return Some(NewState { state: current.unwrap_or_else(|| base.clone()), private: Vec::new() });
            }
            _ => {}
        }
        let why = match end {
            WaitEnd::Failed(r) => format!("Coiled reports: {r}"),
            _ => format!("it was not ready within the create timeout ({})", humantime::format_duration(timeout(base, "create"))),
        };
        // Clean up with a fresh budget: the create's may be spent.
        let cleanup = Op::new(timeout(base, "delete"), ctx.stop.clone());
        match Self::stop_and_wait(coiled, &cleanup, ws, id, "Terraform create failed").await {
            Ok(()) => {
                diags.error(
                    summary,
                    format!(
                        "Cluster {id} did not start: {why}. It has been stopped, so nothing is left running; fix the cause and apply again."
                    ),
                );
                None
            }
            Err(e) => {
                diags.error(
                    summary,
                    format!("Cluster {id} did not start: {why}. Stopping it failed as well ({e}), so it is kept in state (marked tainted) and the next apply will stop and replace it."),
                );
                Some(NewState { state: current.unwrap_or_else(|| pending_state(base, id, ws)), private: Vec::new() })
            }
        }
    }
}

/// The error for a name held by a running cluster this apply did not create.
fn already_exists(diags: &mut Diagnostics, ws: &str, name: &str, id: i64) {
    diags.error_at(
        AttrPath::attr("name"),
        "Cluster Already Exists",
        format!(
            "A running cluster named {name:?} already exists in workspace {ws:?} (id {id}), and this apply did not create it, so Terraform leaves it alone. Either choose another name (or leave `name` out to have one generated), stop that cluster, or manage it with this resource by importing it: `terraform import` with this resource's address (shown below) and the ID `{ws}/{name}`.\n\nIf this is a replacement under `create_before_destroy`, the new cluster cannot take the name while the old one still runs: leave `name` out, or remove `create_before_destroy`."
        ),
    );
}

/// The cluster an operation works on.
#[derive(Clone, Copy)]
struct Target<'a> {
    coiled: &'a Coiled,
    ws: &'a str,
    id: i64,
    /// The state the operation started from (planned or prior).
    base: &'a Value,
}

/// How a wait ended, when not ready.
enum WaitEnd {
    Failed(String),
    TimedOut,
    Cancelled,
    Api(ApiError),
}

/// `planned` with every unknown top-level value taken from `prior`.
fn fill_unknown_from(planned: &Value, prior: &Value) -> Value {
    let mut state = planned.clone();
    if let Value::Object(attrs) = planned {
        for (name, v) in attrs {
            if v.is_unknown() {
                state.set_attr(name, prior.get(name).cloned().unwrap_or(Value::Null));
            }
        }
    }
    state
}

/// The state of a cluster known only by id (every computed value filled, as Terraform requires).
fn pending_state(base: &Value, id: i64, ws: &str) -> Value {
    let mut state = base.clone();
    state.set_attr("id", Value::string(id.to_string()));
    state.set_attr("workspace", Value::string(ws));
    for attr in ["status", "scheduler_address", "scheduler_public_address", "scheduler_private_address", "dashboard_address", "created_at"]
    {
        if state.get(attr).is_none_or(Value::is_unknown) {
            state.set_attr(attr, if attr == "status" { Value::string("pending") } else { Value::Null });
        }
    }
    if state.get("firewall_rules").is_none_or(Value::is_unknown) {
        state.set_attr("firewall_rules", ingress::rows_value(&own_rules(base).unwrap_or_default()));
    }
    state
}

fn timeouts_block() -> NestedBlock {
    let t = |name, d| Attribute::optional(name, Type::String, d);
    NestedBlock {
        name: "timeouts",
        nesting: Nesting::Single,
        block: Block {
            attributes: vec![
                t("create", "How long to wait for a new cluster to be ready, e.g. `30m`. Default `20m`."),
                t("update", "How long to wait for scaling to finish. Default `20m`."),
                t("delete", "How long to wait for the cluster to stop. Default `20m`."),
            ],
            blocks: vec![],
            description: "Operation timeouts, as durations such as `90s`, `20m` or `1h`.",
        },
        min_items: 0,
        max_items: 1,
        requires_replace: false,
    }
}

#[async_trait]
impl Resource for ClusterResource {
    fn type_name(&self) -> &'static str {
        "coiled_cluster"
    }

    fn schema(&self) -> Schema {
        let computed = |name, d| Attribute::computed(name, Type::String, d).stable();
        Schema {
            version: 0,
            block: Block {
                description: "A Coiled Dask cluster, equivalent to `coiled.Cluster(...)`, with its own firewall (`backend_options { ingress { … } }`) and the choice of a public or private scheduler address.\n\nCreating waits until the scheduler is up and enough workers have started (`wait_for_workers`). `n_workers` changes in place by scaling; `wait_for_workers`, `acknowledge_world_open_ingress` and `timeouts` change in place in state only; every other change replaces the cluster. Coiled stops idle clusters on its own: a cluster found stopped is removed from state with a warning, and the next apply creates a new one.",
                attributes: vec![
                    Attribute::computed("id", Type::String, "Coiled's numeric cluster id.").stable(),
                    Attribute::optional_computed("name", Type::String, "Cluster name: letters, digits, `-` and `_`, at most 128. Generated when absent. Names are unique among running clusters of a workspace.").requires_replace().stable(),
                    Attribute::optional_computed("workspace", Type::String, "Workspace (formerly account) to create the cluster in. Defaults to the provider's workspace.").requires_replace().stable(),
                    Attribute::optional_computed("n_workers", Type::Number, "Number of workers. Changed in place by adding or removing workers. Default `4`."),
                    Attribute::optional("worker_vm_types", Type::list(Type::String), "VM instance types for workers, in order of preference, e.g. `[\"m6i.xlarge\"]`. Coiled chooses when absent.").requires_replace(),
                    Attribute::optional("scheduler_vm_types", Type::list(Type::String), "VM instance types for the scheduler, in order of preference.").requires_replace(),
                    Attribute::optional("software", Type::String, "Name of the Coiled software environment to run.").requires_replace(),
                    Attribute::optional("tags", Type::map(Type::String), "Tags applied to the cluster's cloud resources.").requires_replace(),
                    Attribute::optional("environ", Type::map(Type::String), "Environment variables set on the scheduler and workers. Sensitive: hidden in plans.").sensitive().requires_replace(),
                    Attribute::optional("idle_timeout", Type::String, "How long the cluster may sit idle before Coiled stops it, e.g. `2 hours`. Coiled's default is 20 minutes.").requires_replace(),
                    Attribute::optional_computed("use_scheduler_public_ip", Type::Bool, "Whether clients reach the scheduler on its public IP (`true`, the default) or over a private network (`false`). With `false`, `scheduler_address` is the private address and the dashboard is not exposed publicly either.").requires_replace(),
                    Attribute::optional_computed("wait_for_workers", Type::Number, "Fraction of workers (0 to 1) that must have started before create or scaling completes, as in `coiled.Cluster`. Default `0.3`."),
                    ingress::acknowledge_attribute(),
                    computed("status", "Coiled's cluster state: `ready` once created; `pending`, `starting`, `scaling`, `stopping`, `stopped` or `error` otherwise."),
                    computed("scheduler_address", "Address clients connect to, `tls://IP:PORT`: the public IP when `use_scheduler_public_ip` is true and the cluster has one, else the private IP."),
                    computed("scheduler_public_address", "The scheduler's public address (`tls://IP:PORT`), when it has one."),
                    computed("scheduler_private_address", "The scheduler's private address (`tls://IP:PORT`)."),
                    computed("dashboard_address", "URL of the Dask dashboard."),
                    computed("created_at", "When the cluster was created (ISO 8601)."),
                    ingress::firewall_rules_attribute("The rules that actually apply to the cluster, one row per (port, source), protocol `tcp`: its own `ingress` if set, else the workspace's account-level ingress at creation time, else Coiled's default.").stable(),
                ],
                blocks: vec![
                    NestedBlock {
                        name: "backend_options",
                        nesting: Nesting::Single,
                        block: Block {
                            attributes: vec![
                                Attribute::optional("region", Type::String, "Cloud region, e.g. `us-east-2`. Defaults to the workspace's."),
                                Attribute::optional("zone", Type::String, "Availability zone. Coiled chooses when absent."),
                                Attribute::optional("spot", Type::Bool, "Use spot instances for workers."),
                            ],
                            blocks: vec![ingress::ingress_block(
                                "Ingress rule for this cluster. When any is set, the cluster uses exactly these rules instead of the workspace's account-level ingress.",
                                true,
                            )],
                            description: "Per-cluster backend options, overriding the workspace's account-level ones.",
                        },
                        min_items: 0,
                        max_items: 1,
                        requires_replace: true,
                    },
                    timeouts_block(),
                ],
            },
        }
    }

    async fn validate(&self, _ctx: &Ctx, config: &Value, diags: &mut Diagnostics) {
        if let Some(name) = s(config, "name")
            && !valid_name(name)
        {
            diags.error_at(
                AttrPath::attr("name"),
                "Invalid Cluster Name",
                format!("{name:?} is not a valid cluster name: use letters, digits, `-` and `_`, at most 128 characters."),
            );
        }
        if let Some(n) = config.get("n_workers").and_then(Value::as_number) {
            match n.as_i64() {
                Some(n) if (0..=1000).contains(&n) => {}
                _ => diags.error_at(
                    AttrPath::attr("n_workers"),
                    "Invalid Worker Count",
                    format!("n_workers is {n}; it must be a whole number from 0 to 1000."),
                ),
            }
        }
        if let Some(f) = config.get("wait_for_workers").and_then(Value::as_number)
            && !f.as_f64().is_some_and(|f| (0.0..=1.0).contains(&f))
        {
            {
                diags.error_at(
                    AttrPath::attr("wait_for_workers"),
                    "Invalid Wait Fraction",
                    format!("wait_for_workers is {f}; it must be from 0 (do not wait for workers) to 1 (wait for all)."),
                );
            }
        }
        for list in ["worker_vm_types", "scheduler_vm_types"] {
            if let Some(items) = config.get(list).and_then(Value::as_elements) {
                if items.is_empty() {
                    diags.error_at(
                        AttrPath::attr(list),
                        "Empty VM Type List",
                        format!("{list} is empty; remove it to let Coiled choose, or name at least one type."),
                    );
                }
                if items.iter().any(|i| i.as_str().is_some_and(|s| s.trim().is_empty())) {
                    diags.error_at(AttrPath::attr(list), "Empty VM Type", format!("{list} contains an empty name."));
                }
            }
        }
        if let Some(sw) = s(config, "software")
            && sw.trim().is_empty()
        {
            diags.error_at(
                AttrPath::attr("software"),
                "Empty Software Environment",
                "software is empty; remove it or name a software environment.",
            );
        }
        if let Some(ws) = s(config, "workspace")
            && (ws.is_empty() || ws.contains('/'))
        {
            diags.error_at(AttrPath::attr("workspace"), "Invalid Workspace", format!("{ws:?} is not a workspace slug."));
        }
        if let Some(t) = config.get("timeouts").filter(|t| !t.is_null()) {
            for which in ["create", "update", "delete"] {
                if let Some(text) = t.get(which).and_then(Value::as_str) {
                    match super::duration::parse_timeout(text) {
                        Ok(d) if d >= Duration::from_secs(1) && d <= Duration::from_secs(24 * 3600) => {}
                        Ok(_) => diags.error_at(
                            AttrPath::attr("timeouts").then(which),
                            "Invalid Timeout",
                            format!("{which} = {text:?}: a timeout must be from 1s to 24h."),
                        ),
                        Err(e) => diags.error_at(AttrPath::attr("timeouts").then(which), "Invalid Timeout", format!("{which} = {e}")),
                    }
                }
            }
        }
        if let Some(idle) = s(config, "idle_timeout")
            && let Err(e) = super::duration::parse_dask_timedelta(idle)
        {
            diags.error_at(AttrPath::attr("idle_timeout"), "Invalid Idle Timeout", e);
        }
        if let Some(tags) = config.get("tags").and_then(Value::as_map) {
            for (k, v) in tags {
                if k.is_empty() || k.len() > 128 {
                    diags.error_at(AttrPath::attr("tags").key(k), "Invalid Tag", "Tag keys must have 1 to 128 characters.");
                }
                if v.as_str().is_some_and(|v| v.len() > 256) {
                    diags.error_at(AttrPath::attr("tags").key(k), "Invalid Tag", "Tag values may have at most 256 characters.");
                }
            }
        }
        if let Some(env) = config.get("environ").and_then(Value::as_map) {
            for k in env.keys() {
                if k.is_empty() || k.contains('=') || k.contains('\0') {
                    diags.error_at(
                        AttrPath::attr("environ"),
                        "Invalid Environment Variable",
                        format!("{k:?} is not a valid environment variable name."),
                    );
                }
            }
        }
        let bo = backend_options(config);
        if !bo.is_null() {
            for key in ["region", "zone"] {
                if s(bo, key).is_some_and(|v| v.trim().is_empty()) {
                    diags.error_at(
                        AttrPath::attr("backend_options").then(key),
                        "Empty Value",
                        format!("backend_options.{key} is empty; remove it or give a value."),
                    );
                }
            }
            let ack = config.get("acknowledge_world_open_ingress").and_then(Value::as_bool).unwrap_or(false);
            ingress::parse(bo.get("ingress").unwrap_or(&Value::Null), &AttrPath::attr("backend_options").then("ingress"), ack, true, diags);
        }
    }

    async fn modify_plan(&self, ctx: &Ctx, plan: &mut Plan, diags: &mut Diagnostics) {
        Self::adopt_unreadable(plan);
        let config = plan.config.clone();
        let null = |name: &str| config.get(name).is_some_and(Value::is_null);
        if null("n_workers") {
            let prior = plan.prior.get("n_workers").filter(|v| !v.is_null()).cloned();
            plan.predict("n_workers", prior.unwrap_or(Value::int(DEFAULT_WORKERS)));
        }
        if null("wait_for_workers") {
            plan.predict("wait_for_workers", Value::Number(Number::from_f64(DEFAULT_WAIT_FOR_WORKERS).expect("finite")));
        }
        if null("use_scheduler_public_ip") {
            plan.predict("use_scheduler_public_ip", Value::Bool(true));
        }
        let mut coiled_ws = None;
        if plan.is_create() {
            let mut quiet = Diagnostics::new();
            if let Ok(Some(coiled)) = self.data.coiled(&mut quiet).await {
                coiled_ws = coiled.configured_workspace().map(str::to_string);
            }
            if null("workspace")
                && let Some(ws) = &coiled_ws
            {
                plan.predict("workspace", Value::string(ws.clone()));
            }
            // An unset name stays unknown until apply, which draws it once: a name drawn here would
            // differ between the plan and the apply-time plan.
            // `status` stays unknown: an interrupted create records the cluster as it then is.
            self.warn_if_redundant(&plan.planned, diags).await;
            match backend_options(&plan.planned).get("ingress") {
                Some(i) if i.as_elements().is_some_and(|e| !e.is_empty()) || i.is_unknown() => {
                    match ingress::parse(i, &AttrPath::attr("backend_options").then("ingress"), true, false, diags) {
                        Parsed::Rules(rules) => plan.predict("firewall_rules", ingress::rows_value(&rules)),
                        _ => plan.predict("firewall_rules", Value::Unknown),
                    }
                }
                _ => {} // inherits: known after apply
            }
        } else {
            let scaling = plan.prior.get("n_workers") != plan.planned.get("n_workers");
            // A cluster left starting (an apply interrupted while it started) is waited for in place.
            let unfinished = matches!(s(&plan.prior, "status"), Some("pending" | "starting"));
            if scaling || unfinished {
                plan.predict("status", Value::string("ready"));
            }
        }
        if !diags.has_errors() && (plan.is_create() || !plan.planned.same_as(&plan.prior)) {
            self.check_access(ctx, plan, diags).await;
        }
    }

    async fn create(&self, ctx: &Ctx, planned: &Value, _config: &Value, diags: &mut Diagnostics) -> Option<NewState> {
        let coiled = self.connection(diags).await?;
        // The apply-time plan checked the token; creating then names the workspace when it was left
        // to the default.
        let op = Op::new(timeout(planned, "create"), ctx.stop.clone());
        let ws = coiled.workspace_for(&op, planned, diags).await?;
        let mut planned = planned.clone();
        planned.set_attr("workspace", Value::string(ws.clone()));
        let name = s(&planned, "name").map(str::to_string).unwrap_or_else(|| format!("{ws}-{:06x}", rand::random::<u32>() & 0xff_ffff));
        planned.set_attr("name", Value::string(name.clone()));
        let body = create_body(&planned);
        tracing::info!(workspace = %ws, name = %name, "creating cluster");
        let id = Self::post_create(&coiled, &op, &ws, &name, &body, diags).await?;
        match Self::wait_ready(&coiled, &op, &ws, id, wait_fraction(&planned)).await {
            Ok(d) => Some(NewState { state: state_from_details(&planned, &d, &ws), private: Vec::new() }),
            Err(failure) => Self::fail_wait(Target { coiled: &coiled, ws: &ws, id, base: &planned }, ctx, failure, true, diags).await,
        }
    }

    async fn read(&self, ctx: &Ctx, state: &Value, private: &Private, diags: &mut Diagnostics) -> Option<NewState> {
        let coiled = match self.data.coiled(diags).await {
            Ok(Some(c)) => c,
            Ok(None) => return Some(NewState { state: state.clone(), private: private.clone() }),
            Err(()) => return None,
        };
        let op = Op::new(super::DEFAULT_API_TIMEOUT, ctx.stop.clone());
        let ws = s(state, "workspace")?.to_string();
        let Some(id) = s(state, "id").and_then(|i| i.parse::<i64>().ok()) else {
            diags.bug("Invalid Cluster ID in State", format!("{:?} is not a cluster id.", s(state, "id")));
            return None;
        };
        let gone = |diags: &mut Diagnostics, why: String| {
            diags.warning(
                "Cluster No Longer Running",
                format!(
                    "Cluster {id} ({}) {why}. Coiled stops clusters on its own (idle timeout, no client connected, or an unresponsive scheduler), and they can be stopped outside Terraform. It has been removed from state; the next apply creates a new one. Set `idle_timeout` to keep clusters longer.",
                    s(state, "name").unwrap_or("?")
                ),
            );
            Some(NewState { state: Value::Null, private: Vec::new() })
        };
        match coiled.client.get_cluster(&op, &ws, id).await {
            Ok(d) => match d.current_state.state.as_str() {
                "stopped" | "stopping" => gone(
                    diags,
                    format!(
                        "is {}{}",
                        d.current_state.state,
                        d.current_state.reason.as_deref().filter(|r| !r.is_empty()).map(|r| format!(" ({r})")).unwrap_or_default()
                    ),
                ),
                "error" => gone(diags, format!("failed: {}", d.current_state.reason.as_deref().unwrap_or("no reason given"))),
                _ => {
                    let mut refreshed = state_from_details(state, &d, &ws);
                    refresh_reported(&mut refreshed, &d);
                    Some(NewState { state: refreshed, private: private.clone() })
                }
            },
            Err(e) if e.is_not_found() => gone(diags, "no longer exists".into()),
            Err(e) => {
                coiled.report(diags, "Unable to Read Cluster", None, &e);
                None
            }
        }
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: &Value,
        planned: &Value,
        _config: &Value,
        private: &Private,
        diags: &mut Diagnostics,
    ) -> Option<NewState> {
        let scaling = prior.get("n_workers") != planned.get("n_workers");
        if !scaling && !matches!(s(prior, "status"), Some("pending" | "starting")) {
            // Only values Terraform keeps (wait_for_workers, timeouts, acknowledgements, values taken
            // from the configuration after an import) change: no API call.
            return Some(NewState { state: fill_unknown_from(planned, prior), private: private.clone() });
        }
        let coiled = self.connection(diags).await?;
        let op = Op::new(timeout(planned, "update"), ctx.stop.clone());
        let ws = s(prior, "workspace")?.to_string();
        let id: i64 = s(prior, "id")?.parse().ok()?;
        let target = planned.get("n_workers").and_then(Value::as_number).and_then(Number::as_i64).unwrap_or(DEFAULT_WORKERS);
        let current = match coiled.client.get_cluster(&op, &ws, id).await {
            Ok(d) => d,
            Err(e) if e.is_not_found() => {
                diags.error("Cluster Gone Since the Plan", format!("Cluster {id} no longer exists, so it cannot be scaled. Run `terraform plan` again: the new plan creates a replacement."));
                return None;
            }
            Err(e) => {
                coiled.report(diags, "Unable to Scale Cluster", None, &e);
                return None;
            }
        };
        if matches!(current.current_state.state.as_str(), "stopping" | "stopped" | "error") {
            diags.error(
                "Cluster Stopped Since the Plan",
                format!(
                    "Cluster {id} was {} after this plan was made, so it cannot be scaled. Run `terraform plan` again: the new plan creates a replacement.",
                    if current.current_state.state == "error" { "failed" } else { "stopped" }
                ),
            );
            return None;
        }
        let delta = target - current.desired_workers;
        let scaled = if delta > 0 {
            tracing::info!(cluster = id, add = delta, "adding workers");
            coiled.client.add_workers(&op, &ws, id, delta).await
        } else if delta < 0 {
            match coiled.client.list_workers(&op, &ws, id).await {
                Ok(mut workers) => {
                    // Remove the newest first.
                    workers.retain(|w| !matches!(w.current_state.state.as_str(), "stopping" | "stopped" | "error"));
                    workers.sort_by_key(|w| std::cmp::Reverse(w.name.rsplit('-').next().and_then(|n| n.parse::<i64>().ok()).unwrap_or(0)));
                    let names: Vec<String> = workers.iter().take((-delta) as usize).map(|w| w.name.clone()).collect();
                    tracing::info!(cluster = id, remove = names.len(), "removing workers");
                    coiled.client.remove_workers(&op, &ws, id, &names).await
                }
                Err(e) => Err(e),
            }
        } else {
            Ok(())
        };
        if let Err(e) = scaled {
            coiled.report(diags, "Unable to Scale Cluster", None, &e);
            return Some(NewState { state: state_from_details(prior, &current, &ws), private: private.clone() });
        }
        match Self::wait_ready(&coiled, &op, &ws, id, wait_fraction(planned)).await {
            Ok(d) => Some(NewState { state: state_from_details(planned, &d, &ws), private: private.clone() }),
            Err(failure) => Self::fail_wait(Target { coiled: &coiled, ws: &ws, id, base: planned }, ctx, failure, false, diags).await,
        }
    }

    async fn delete(&self, ctx: &Ctx, prior: &Value, _private: &Private, diags: &mut Diagnostics) {
        let Some(coiled) = self.connection(diags).await else { return };
        let op = Op::new(timeout(prior, "delete"), ctx.stop.clone());
        let (Some(ws), Some(id)) = (s(prior, "workspace"), s(prior, "id").and_then(|i| i.parse::<i64>().ok())) else { return };
        tracing::info!(cluster = id, "stopping cluster");
        if let Err(e) = Self::stop_and_wait(&coiled, &op, ws, id, "Terraform destroy").await {
            coiled.report(diags, "Unable to Stop Cluster", None, &e);
        }
    }

    async fn import(&self, ctx: &Ctx, id: &str, diags: &mut Diagnostics) -> Option<NewState> {
        let coiled = self.connection(diags).await?;
        let op = Op::new(super::DEFAULT_API_TIMEOUT, ctx.stop.clone());
        let (ws, cluster_id) = Self::resolve_import_id(&coiled, &op, id, diags).await?;
        let d = match coiled.client.get_cluster(&op, &ws, cluster_id).await {
            Ok(d) => d,
            Err(e) if e.is_not_found() => {
                diags.error("Cluster Not Found", format!("No cluster with id {cluster_id} in workspace {ws:?}."));
                return None;
            }
            Err(e) => {
                coiled.report(diags, "Unable to Import Cluster", None, &e);
                return None;
            }
        };
        if matches!(d.current_state.state.as_str(), "stopped" | "stopping" | "error") {
            diags.error(
                "Cluster Not Running",
                format!("Cluster {cluster_id} is {}; only running clusters can be imported.", d.current_state.state),
            );
            return None;
        }
        let account = coiled.client.get_backend_options(&op, &ws).await.ok().and_then(|b| b.ingress()).map(|w| ingress::from_wire(&w));
        let state = imported_state(&self.schema(), &d, account.as_deref());
        // What the API does not report is taken from the configuration at the first plan (see
        // `adopt_unreadable`), instead of forcing a replacement. The region and zone the server
        // reports are kept aside to check the configuration's against: in state they would show a
        // configuration that leaves them to the default as a change.
        let text = |key: &str| d.cluster_options.get(key).and_then(|v| v.as_str()).filter(|t| !t.is_empty()).map(str::to_string);
        let marker = ImportMarker { imported: true, region: text("region_name"), zone: text("zone_name") };
        let private = serde_json::to_vec(&marker).unwrap_or_default();
        Some(NewState { state: state_from_details(&state, &d, &ws), private })
    }
}

impl ClusterResource {
    /// `ID`, `NAME`, `WORKSPACE/ID` or `WORKSPACE/NAME` → the workspace and the cluster id.
    async fn resolve_import_id(coiled: &Coiled, op: &Op, id: &str, diags: &mut Diagnostics) -> Option<(String, i64)> {
        let usage = "use `ID`, `NAME`, `WORKSPACE/ID` or `WORKSPACE/NAME`, e.g. `my-team/etl`";
        let (ws, key) = match id.trim().split_once('/') {
            Some((ws, key)) if ws.is_empty() || key.is_empty() || key.contains('/') => {
                diags.error("Invalid Import ID", format!("{id:?} is not a cluster ID: {usage}."));
                return None;
            }
            Some((ws, key)) => (ws.to_string(), key.to_string()),
            None if id.trim().is_empty() => {
                diags.error("Invalid Import ID", format!("The import ID is empty: {usage}."));
                return None;
            }
            None => (
                coiled.workspace(op).await.map_err(|e| coiled.report(diags, "Unable to Determine Workspace", None, &e)).ok()?,
                id.trim().to_string(),
            ),
        };
        match key.parse::<i64>() {
            Ok(n) => Some((ws, n)),
            Err(_) if valid_name(&key) => match coiled.client.find_cluster_by_name(op, &ws, &key).await {
                Ok(Some(c)) => Some((ws, c.id)),
                Ok(None) => {
                    diags.error("Cluster Not Found", format!("No running cluster named {key:?} in workspace {ws:?}."));
                    None
                }
                Err(e) => {
                    coiled.report(diags, "Unable to Import Cluster", None, &e);
                    None
                }
            },
            Err(_) => {
                diags.error("Invalid Import ID", format!("{id:?} is not a cluster ID: {usage}."));
                None
            }
        }
    }

    /// After an import, the values the API could not show (or showed with room for the
    /// configuration's spelling) are taken from the configuration in place, not by replacement:
    /// `environ` and the VM type preferences always; `idle_timeout`, `tags`, `region`, `zone` and `spot`
    /// when the server did not report them, or reported the same meaning.
    fn adopt_unreadable(plan: &mut Plan) {
        if plan.is_create() {
            return;
        }
        let Some(marker) = serde_json::from_slice::<ImportMarker>(&plan.private).ok().filter(|m| m.imported) else { return };
        let (prior, planned) = (&plan.prior, &plan.planned);
        let differs = |name: &str| !prior.get(name).unwrap_or(&Value::Null).same_as(planned.get(name).unwrap_or(&Value::Null));
        let mut adopt: Vec<&'static str> = Vec::new();
        for name in ["environ", "worker_vm_types", "scheduler_vm_types"] {
            if differs(name) {
                adopt.push(name);
            }
        }
        if differs("idle_timeout") {
            let secs = |v: Option<&str>| v.and_then(|t| super::duration::parse_dask_timedelta(t).ok());
            let (before, after) = (s(prior, "idle_timeout"), s(planned, "idle_timeout"));
            if before.is_none() || after.is_none() || secs(before) == secs(after) {
                adopt.push("idle_timeout");
            }
        }
        if differs("tags") && prior.get("tags").is_none_or(Value::is_null) {
            adopt.push("tags");
        }
        if differs("backend_options") && backend_options_adoptable(backend_options(prior), backend_options(planned), &marker) {
            adopt.push("backend_options");
        }
        if !adopt.is_empty() {
            tracing::debug!(?adopt, "taking values the import could not read from the configuration");
            plan.in_place.extend(adopt);
            plan.private = Vec::new();
        }
    }
}

/// Private data marking state that an import built: some values are still to be taken from the
/// configuration, and the region and zone the server reported are kept to check them against.
#[derive(serde::Serialize, serde::Deserialize, Default)]
struct ImportMarker {
    imported: bool,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    zone: Option<String>,
}

/// Whether two `backend_options` blocks differ only where an import could not tell: the same ingress,
/// `region` and `zone` unset or as the server reported them (by meaning), and `spot` unreported or equal.
fn backend_options_adoptable(prior: &Value, planned: &Value, reported: &ImportMarker) -> bool {
    let rules = |v: &Value| own_rules_of(v.get("ingress"));
    let same_rules = match (rules(prior), rules(planned)) {
        (None, None) => true,
        (Some(a), Some(b)) => coiled_firewall::same_rules(&a, &b),
        _ => false,
    };
    let text_ok = |name: &str, server: &Option<String>| match (s(prior, name).or(server.as_deref()), s(planned, name)) {
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => true,
    };
    let spot_ok = match (prior.get("spot").and_then(Value::as_bool), planned.get("spot").and_then(Value::as_bool)) {
        (Some(a), Some(b)) => a == b,
        (Some(_), None) => false,
        _ => true,
    };
    same_rules && text_ok("region", &reported.region) && text_ok("zone", &reported.zone) && spot_ok
}

/// The state an import starts from: what the cluster was created with, as far as the API reports it.
fn imported_state(schema: &Schema, d: &ClusterDetails, account: Option<&[Rule]>) -> Value {
    let mut state = Value::null_object(&schema.object_type());
    let opts = &d.cluster_options;
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).filter(|t| !t.is_empty()).map(Value::string);
    let private_scheduler = opts.get("use_dashboard_public_ip").and_then(|v| v.as_bool()) == Some(false);
    state.set_attr("use_scheduler_public_ip", Value::Bool(!private_scheduler));
    let reported = d.ingress().map(|w| ingress::from_wire(&w));
    // Rules that came from the workspace or the service default are inherited, not the cluster's own:
    // the server may say so, else rules equal to the account's count as inherited.
    let inherited = cluster_is_inheriting(d) || matches!((&reported, account), (Some(r), Some(a)) if coiled_firewall::same_rules(r, a));
    let own = if inherited { None } else { reported.filter(|r| !r.is_empty()) };
    let spot = opts.get("spot").and_then(|v| v.as_bool());
    if own.is_some() || spot.is_some() {
        let mut bo =
            Value::object([("region", Value::Null), ("zone", Value::Null), ("spot", spot.map(Value::Bool).unwrap_or(Value::Null))]);
        bo.set_attr("ingress", ingress::state_value(&own.unwrap_or_default(), &Value::Null));
        state.set_attr("backend_options", bo);
    }
    if let Some(name) = d.senv_alias.as_ref().and_then(|a| a.name.as_deref()) {
        state.set_attr("software", Value::string(name));
    }
    if let Some(tags) = reported_tags(d).filter(|t| !t.is_empty()) {
        state.set_attr("tags", Value::Map(tags.into_iter().map(|(k, v)| (k, Value::string(v))).collect()));
    }
    if let Some(idle) = text(d.scheduler_options.as_ref().and_then(|o| o.get("idle_timeout"))) {
        state.set_attr("idle_timeout", idle);
    }
    state
}

/// The tags the server reports, values as strings (as Coiled's client stringifies them).
fn reported_tags(d: &ClusterDetails) -> Option<std::collections::BTreeMap<String, String>> {
    let map = d.tags.as_ref()?.as_object()?;
    Some(
        map.iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    match v {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    },
                )
            })
            .collect(),
    )
}

/// Refreshes the creation-time values the server reports, by meaning: a value the state holds and
/// the server shows differently is drift (the next plan replaces the cluster); the user's spelling
/// stays when the meaning is the same; nothing changes where the server says nothing.
fn refresh_reported(state: &mut Value, d: &ClusterDetails) {
    if let (Some(Value::Map(held)), Some(reported)) = (state.get("tags").cloned(), reported_tags(d)) {
        // Only the keys the configuration set are compared: the service may add tags of its own.
        let mut now = held.clone();
        for (k, v) in &held {
            match reported.get(k) {
                Some(r) if Some(r.as_str()) == v.as_str() => {}
                Some(r) => {
                    now.insert(k.clone(), Value::string(r.clone()));
                }
                None => {
                    now.remove(k);
                }
            }
        }
        if now != held {
            state.set_attr("tags", Value::Map(now));
        }
    }
    let opts = &d.cluster_options;
    if let Some(Value::Object(mut bo)) = state.get("backend_options").cloned() {
        let mut changed = false;
        for (attr, key) in [("region", "region_name"), ("zone", "zone_name")] {
            let held = bo.get(attr).and_then(Value::as_str).map(str::to_string);
            if let (Some(held), Some(now)) = (held, opts.get(key).and_then(|v| v.as_str()).filter(|v| !v.is_empty()))
                && !held.eq_ignore_ascii_case(now)
            {
                bo.insert(attr.to_string(), Value::string(now));
                changed = true;
            }
        }
        if changed {
            state.set_attr("backend_options", Value::Object(bo));
        }
    }
    let held = s(state, "idle_timeout").map(str::to_string);
    let now = d.scheduler_options.as_ref().and_then(|o| o.get("idle_timeout")).and_then(|v| v.as_str()).map(str::to_string);
    if let (Some(held), Some(now)) = (held, now) {
        let secs = |t: &str| super::duration::parse_dask_timedelta(t).ok();
        if secs(&held) != secs(&now) {
            state.set_attr("idle_timeout", Value::string(now));
        }
    }
}

/// Whether the server says the cluster's rules came from the account or the service default
/// (`cluster_infra.firewall_source`, which `coiled-local` reports).
fn cluster_is_inheriting(d: &ClusterDetails) -> bool {
    matches!(d.cluster_infra.get("firewall_source").and_then(|s| s.as_str()), Some("default" | "account"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn create_body_matches_the_coiled_client() {
        let planned = Value::object([
            ("name", Value::string("etl")),
            ("n_workers", Value::int(4)),
            ("use_scheduler_public_ip", Value::Bool(false)),
            ("software", Value::string("my-env")),
            (
                "backend_options",
                Value::object([
                    ("region", Value::string("us-east-2")),
                    ("zone", Value::Null),
                    ("spot", Value::Null),
                    (
                        "ingress",
                        Value::Set(vec![
                            Value::object([("cidr", Value::string("10.1.0.0/16")), ("ports", Value::Set(vec![Value::int(8786)]))]),
                            Value::object([("cidr", Value::string("10.32.0.0/16")), ("ports", Value::Set(vec![Value::int(8787)]))]),
                        ]),
                    ),
                ]),
            ),
        ]);
        let b = serde_json::to_value(create_body(&planned)).unwrap();
        assert_eq!(b["name"], "etl");
        assert_eq!(b["workers"], 4);
        assert_eq!(b["env_name"], "my-env");
        assert_eq!(b["worker_instance_types"], serde_json::Value::Null);
        assert_eq!(
            b["options"],
            json!({"region_name": "us-east-2", "use_dashboard_public_ip": false,
                "firewall_spec": {"ingress": [{"ports": [8786], "cidr": "10.1.0.0/16"}, {"ports": [8787], "cidr": "10.32.0.0/16"}]}})
        );
        let public = serde_json::to_value(create_body(&Value::object([("name", Value::string("x"))]))).unwrap();
        assert_eq!(public["options"], json!({}), "no ingress and a public scheduler add nothing");
    }

    #[test]
    fn names_follow_coiled_rules() {
        assert!(valid_name("etl-2026_a"));
        for bad in ["", "a b", "a/b", "ä", &"x".repeat(129)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
