//! The cluster's values: defaults, helpers over its configuration / plan / state value, the create
//! request built from a plan, and the state built from what the server reports.

use std::collections::BTreeMap;
use std::time::Duration;

use tfplugin::model::Field;
use tfplugin::schema::NestedBlock;
use tfplugin::value::{Number, Value};

use super::super::duration::{self, Timeouts};
use super::super::ingress::{self, RuleSet};
use super::state as cluster_state;
use crate::api::ClusterDetails;
use crate::provider::{Checked, not_empty, refuse, workspace_slug};

/// Private data of a cluster whose create was interrupted before it was ready: the next apply waits
/// for it in place.
pub const INTERRUPTED: &[u8] = br#"{"interrupted":true}"#;

/// Private data of a cluster whose scale was asked for but not seen through (it failed, timed out
/// or was interrupted). State keeps the worker count it had while the server is still asked for
/// `scaling_to`, and the next plan updates the cluster in place: the apply asks only for what is
/// missing and waits again.
#[derive(serde::Serialize, serde::Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnfinishedScale {
    pub scaling_to: i64,
}

impl UnfinishedScale {
    /// The marker in `private`, if it holds one.
    pub fn read(private: &[u8]) -> Option<UnfinishedScale> {
        serde_json::from_slice(private).ok()
    }
    /// The private data that holds this marker.
    pub fn private(self) -> Vec<u8> {
        serde_json::to_vec(&self).unwrap_or_default()
    }
}

/// Why a stopped cluster kept in state cannot change its worker count.
pub const STOPPED_CANNOT_SCALE: &str = "This cluster is stopped (kept in state by `when_stopped = \
    \"keep\"`), so it cannot be scaled: unless the plan replaces it (another argument that \
    replaces it, or `terraform apply -replace=<address>`, which starts a new one with this worker \
    count), the apply fails.";

/// Default for each of the create, update and delete timeouts.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(20 * 60);
/// Default worker count, as `coiled.Cluster`.
pub const DEFAULT_WORKERS: i64 = 4;
/// The port current Coiled schedulers listen on unless told otherwise (`cluster_firewall`'s
/// `scheduler=443` and the `Cluster` docstring in coiled 1.135.6).
pub const DEFAULT_SCHEDULER_PORT: i64 = 443;
/// Spark Connect's port, which the client opens when the dashboard uses HTTPS.
pub const SPARK_CONNECT_PORT: i64 = 15003;
/// The values of `spot_policy` (`purchase_configs` in `Cluster._start`).
pub const SPOT_POLICIES: &[&str] = &["on-demand", "spot", "spot_with_fallback"];
/// Default fraction of workers to wait for, as `coiled.Cluster`.
pub const DEFAULT_WAIT_FOR_WORKERS: f64 = 0.3;

tfplugin::model! {
    /// `coiled_cluster`'s configuration, plan or state.
    pub struct ClusterModel {
        /// Coiled's numeric cluster id.
        #[attribute(computed, stable)]
        id: String,
        /// Cluster name: letters, digits, `-` and `_`, at most 128. Generated when absent. Names
        /// are unique among running clusters of a workspace.
        #[attribute(optional_computed, requires_replace, stable, validated(cluster_name))]
        name: String,
        /// Workspace (formerly account) to create the cluster in. Defaults to the provider's
        /// workspace.
        #[attribute(optional_computed, requires_replace, stable, validated(workspace_slug))]
        workspace: String,
        /// Number of workers, a whole number from 0 to 1000. Changed in place by adding or removing
        /// workers. Default `4`.
        #[attribute(optional_computed, defaulting_to(|| Value::int(DEFAULT_WORKERS)))]
        n_workers: Number,
        /// VM instance types for workers, in order of preference, e.g. `["m6i.xlarge"]`. When
        /// absent, the workspace's Dask configuration overrides (`coiled.worker.vm-types`), else
        /// the defaults of Coiled's client for the workspace's cloud: `["m6i.xlarge", "m5.xlarge"]`
        /// on AWS, `["e2-standard-4"]` on Google Cloud, `["Standard_D4_v5"]` on Azure.
        #[attribute(optional_computed, requires_replace, stable, import_from_configuration)]
        worker_vm_types: Vec<String>,
        /// VM instance types for the scheduler, in order of preference. Defaults as
        /// `worker_vm_types` (from `coiled.scheduler.vm-types`).
        #[attribute(optional_computed, requires_replace, stable, import_from_configuration)]
        scheduler_vm_types: Vec<String>,
        /// Disk size of each worker, in GiB, as `coiled.Cluster(worker_disk_size=...)` sends it.
        /// Coiled's default for the VM type when absent.
        #[attribute(optional, requires_replace, import_from_configuration, validated(positive_gib))]
        worker_disk_size: i64,
        /// Name of the Coiled software environment to run, which must exist in the workspace. One
        /// of `software` or `container` is required. With `container`, the name Coiled's client
        /// gives the environment it makes for the image.
        #[attribute(optional_computed, requires_replace, stable, validated(software_name))]
        software: String,
        /// A container image to run, e.g. `ghcr.io/dask/dask:latest`, instead of `software`. As
        /// `coiled.Cluster(container=...)`, the provider makes (or reuses) a software environment
        /// for the image before creating the cluster, and waits for its build.
        #[attribute(
            optional, requires_replace, import_compared_by_meaning, validated(container_image)
        )]
        container: String,
        /// Tags applied to the cluster's cloud resources. When absent, the provider's
        /// `cluster_defaults.tags`.
        #[attribute(optional_computed, requires_replace, import_from_configuration_if_unread)]
        tags: BTreeMap<String, String>,
        /// Environment variables set on the scheduler and workers. Sensitive: hidden in plans.
        #[attribute(optional, sensitive, requires_replace, import_from_configuration)]
        environ: BTreeMap<String, String>,
        /// How long the cluster may sit idle before Coiled stops it, e.g. `2 hours`. Coiled's
        /// default is 20 minutes.
        #[attribute(
            optional, requires_replace, import_compared_by_meaning,
            validated(|v| dask_duration(v, "Invalid Idle Timeout"))
        )]
        idle_timeout: String,
        /// The cluster's maximum lifetime, e.g. `8 hours`: Coiled stops it then even if it is busy.
        /// Sent as `cluster_timeout_seconds`. No limit by default.
        #[attribute(
            optional, requires_replace, import_from_configuration_if_unread,
            validated(|v| dask_duration(v, "Invalid Cluster Timeout"))
        )]
        cluster_timeout: String,
        /// How workers are bought: `on-demand`, `spot`, or `spot_with_fallback` (spot, falling back
        /// to on-demand when none is available). Sent as `spot` and `spot_on_demand_fallback`, as
        /// `coiled.Cluster(spot_policy=...)` sends it. Conflicts with `backend_options.spot`.
        #[attribute(
            optional, requires_replace, import_from_configuration_if_unread,
            validated(spot_policy)
        )]
        spot_policy: String,
        /// Run on ARM (Graviton, Ampere) instances: default VM types become the cloud's ARM ones,
        /// and VM types given must all be ARM.
        #[attribute(optional, requires_replace, import_from_configuration_if_unread)]
        arm: bool,
        /// Port the scheduler listens on (1–65535). Unset, the workspace's `coiled.scheduler_port`
        /// (its Dask configuration), else Coiled's default, 443. As in
        /// `coiled.Cluster(scheduler_port=...)`, it also gives the cluster a firewall of its own:
        /// the port, 443 and (with dashboard HTTPS) 15003, open to `allow_ingress_from`. Conflicts
        /// with `backend_options.ingress`.
        #[attribute(
            optional, requires_replace, import_from_configuration_if_unread,
            validated(port_number)
        )]
        scheduler_port: i64,
        /// The one source (a CIDR block, or `everyone` for `0.0.0.0/0`) that the firewall
        /// `coiled.Cluster(allow_ingress_from=...)` makes admits: the scheduler's port, 443 and
        /// (with dashboard HTTPS) 15003. Conflicts with `backend_options.ingress`. The client's
        /// `me` is refused: a plan must not depend on where it runs.
        #[attribute(
            optional, requires_replace, import_from_configuration_if_unread,
            validated(ingress_source)
        )]
        allow_ingress_from: String,
        /// Serve the dashboard over HTTPS on port 443 (`true`); `false` serves it over plain HTTP
        /// on
        /// 8787. Unset, the workspace's `coiled.use_dashboard_https` (its Dask configuration), else
        /// `true`, as Coiled's client chooses; a cluster keeps what it was created with when the
        /// argument is removed.
        #[attribute(optional_computed, requires_replace, import_from_configuration_if_unread)]
        use_dashboard_https: bool,
        /// What a plan does with a cluster Coiled stopped on its own (idle or lifetime timeout, or
        /// stopped outside Terraform): `recreate` (default) removes it from state so the next apply
        /// creates a new one; `keep` keeps it in state with `status = "stopped"` and plans no
        /// change, with a warning (start a new one with `terraform apply -replace=...`). Changes in
        /// place.
        #[attribute(optional_computed, state_only, validated(stopped_choice))]
        when_stopped: String,
        /// Whether clients reach the scheduler on its public IP (`true`, the default) or over a
        /// private network (`false`): it chooses `scheduler_address`. As in `coiled.Cluster`, it is
        /// the client's choice and sends nothing to Coiled: the scheduler keeps its public IP, and
        /// the firewall decides who may reach it. Unset, the provider's `cluster_defaults`, else
        /// the workspace's `coiled.use_scheduler_public_ip` (its Dask configuration), else `true`;
        /// a cluster keeps what it was created with when both are removed. Changes in place.
        #[attribute(optional_computed, state_only, import_from_configuration)]
        use_scheduler_public_ip: bool,
        /// Fraction of workers (0 to 1) that must have started before create or scaling completes,
        /// as in `coiled.Cluster`. Unset, it stays null in state and the wait is for Coiled's
        /// client default, `0.3` (`coiled.wait-for-workers`).
        #[attribute(optional_computed, state_only)]
        wait_for_workers: Number,
        /// Silences the warning about rules open to the whole internet.
        #[attribute(with = ingress::acknowledge_attribute)]
        acknowledge_world_open_ingress: bool,
        /// Coiled's cluster state, as the server reports it: `ready` once every worker has started,
        /// `pending`, `starting` or `scaling` while workers beyond those waited for still start,
        /// `stopping`, `stopped` or `error` otherwise.
        #[attribute(computed, stable)]
        status: String,
        /// Address clients connect to, `tls://IP:PORT`: the public IP when
        /// `use_scheduler_public_ip` is true and the cluster has one, else the private IP. (The
        /// `coiled_cluster` data source reads the other one, with the opposite
        /// `use_scheduler_public_ip`.)
        #[attribute(computed, stable)]
        scheduler_address: String,
        /// URL of the Dask dashboard. Sensitive: an HTTPS dashboard's URL carries its access token
        /// (`?token=…`), as Coiled gives it.
        #[attribute(computed, stable, sensitive)]
        dashboard_address: String,
        /// When the cluster was created (ISO 8601).
        #[attribute(computed, stable)]
        created_at: String,
        /// The rules the cluster takes from elsewhere, one row per (port, source), protocol `tcp`:
        /// those `scheduler_port` / `allow_ingress_from` make, else the workspace's account-level
        /// ingress at creation time, else Coiled's default. Null when the cluster sets
        /// `backend_options.ingress` (those blocks are its rules, not stored twice;
        /// `provider::coiled::firewall_rules` turns them into these rows), and when it inherits and
        /// the server reports neither its rules nor the account's (Coiled's client reads neither).
        #[attribute(with = ingress::firewall_rules_attribute, stable, import_compared_by_meaning)]
        firewall_rules: Value,
        /// Per-cluster backend options, overriding the workspace's account-level ones.
        #[block(Single, requires_replace, import_compared_by_meaning)]
        backend_options: ClusterBackendOptions,
        /// Operation timeouts, as durations such as `90s`, `20m` or `1h`.
        #[block(with = timeouts_block)]
        timeouts: Timeouts,
    }
}

tfplugin::model! {
    /// The cluster's `backend_options` block.
    pub struct ClusterBackendOptions {
        /// Cloud region, e.g. `us-east-2`. Defaults to the workspace's.
        #[attribute(optional, validated(|v| not_empty(v, "backend_options.region")))]
        region: String,
        /// Availability zone. Coiled chooses when absent.
        #[attribute(optional, validated(|v| not_empty(v, "backend_options.zone")))]
        zone: String,
        /// Use spot instances for workers.
        #[attribute(optional)]
        spot: bool,
        /// Ingress rule for this cluster. When any is set, the cluster uses exactly these rules
        /// instead of the workspace's account-level ingress.
        #[block(with = ingress::ingress_block, requires_replace)]
        ingress: Value,
    }
}

/// A disk size is a whole number of GiB, at least 1.
fn positive_gib(v: &Value) -> Checked {
    let small = v.as_number().and_then(Number::as_i64).filter(|n| *n < 1);
    refuse(small, "Invalid Disk Size", |n| format!("{n} GiB: a disk size is at least 1 GiB."))
}

/// `name`: as Coiled accepts cluster names.
fn cluster_name(v: &Value) -> Checked {
    refuse(v.as_str().filter(|n| !valid_name(n)), "Invalid Cluster Name", |name| {
        format!(
            "{name:?} is not a valid cluster name: use letters, digits, `-` and `_`, at most 128 \
            characters."
        )
    })
}

/// `software`: a software environment's name, optionally after its workspace.
fn software_name(v: &Value) -> Checked {
    let bad = v.as_str().filter(|sw| !super::request::valid_software_name(sw));
    refuse(bad, "Invalid Software Environment Name", |sw| {
        let hint = if sw.contains('.') && sw.contains('/') {
            " It looks like a container image: use `container` for images."
        } else {
            ""
        };
        format!(
            "{sw:?} is not a software environment name: use letters, digits, `-` and `_`, \
            optionally after `workspace/`.{hint}"
        )
    })
}

/// `container`: an image reference, without spaces.
fn container_image(v: &Value) -> Checked {
    let bad = v.as_str().filter(|i| i.trim().is_empty() || i.chars().any(char::is_whitespace));
    refuse(bad, "Invalid Container Image", |image| {
        format!("{image:?} is not a container image reference.")
    })
}

/// A Dask time delta, e.g. `2 hours` (`idle_timeout`, `cluster_timeout`).
fn dask_duration(v: &Value, summary: &'static str) -> Checked {
    refuse(v.as_str().and_then(|t| duration::parse_dask_timedelta(t).err()), summary, |e| e)
}

/// `spot_policy`: one of [`SPOT_POLICIES`].
fn spot_policy(v: &Value) -> Checked {
    refuse(v.as_str().filter(|p| !SPOT_POLICIES.contains(p)), "Invalid Spot Policy", |policy| {
        format!(
            "{policy:?} is not a valid spot_policy; valid options are: {}.",
            SPOT_POLICIES.join(", ")
        )
    })
}

/// `scheduler_port`: a TCP port.
fn port_number(v: &Value) -> Checked {
    let bad = v.as_number().and_then(Number::as_i64).filter(|p| !(1..=65535).contains(p));
    refuse(bad, "Invalid Scheduler Port", |port| {
        format!("scheduler_port is {port}; a port is a number from 1 to 65535.")
    })
}

/// `allow_ingress_from`: a CIDR block or `everyone`; the client's `me` depends on the machine.
fn ingress_source(v: &Value) -> Checked {
    refuse(v.as_str().filter(|s| *s == "me"), "Machine-Dependent Source", |_| {
        "Coiled's client turns `me` into the public address of the machine it runs on; a \
            Terraform plan must not depend on where it runs. Give the CIDR block of the clients' \
            network, e.g. \"203.0.113.7/32\"."
            .to_string()
    })?;
    let cidr = v.as_str().filter(|s| *s != "everyone" && *s != "me");
    let bad = cidr.and_then(|from| coiled_firewall::parse_cidr(from).err().map(|e| (from, e)));
    refuse(bad, "Invalid CIDR Block", |(from, e)| {
        format!("{from:?}: {e}. Use a CIDR block such as \"10.1.0.0/16\", or \"everyone\".")
    })
}

/// `when_stopped`: `recreate` or `keep`.
fn stopped_choice(v: &Value) -> Checked {
    let bad = v.as_str().filter(|w| *w != "recreate" && *w != "keep");
    refuse(bad, "Invalid when_stopped", |w| {
        format!("{w:?} is not one of \"recreate\" and \"keep\".")
    })
}

fn timeouts_block(name: &'static str, description: &'static str) -> NestedBlock {
    duration::timeouts_block(
        name,
        description,
        &[
            (
                "create",
                "How long to wait for a new cluster to be ready, e.g. `30m`. Default `20m`.",
            ),
            ("update", "How long to wait for scaling to finish. Default `20m`."),
            ("delete", "How long to wait for the cluster to stop. Default `20m`."),
        ],
    )
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

    /// Whether the cluster sets `ingress` blocks (which then hold its rules, so that
    /// `firewall_rules` stays null), or may once their unknown values are known.
    pub fn has_ingress_blocks(&self) -> bool {
        match self.backend_options.known().map(|b| &b.ingress) {
            Some(Field::Unknown) => true,
            Some(Field::Known(ingress)) => {
                ingress.is_unknown() || ingress.as_elements().is_some_and(|e| !e.is_empty())
            }
            _ => false,
        }
    }

    /// The cluster's own rules in a value this provider planned or stored: its `ingress` blocks,
    /// else the rules `scheduler_port` / `allow_ingress_from` make; `None` when it sets none (it
    /// then inherits), and when they open the workspace's port, which only its Dask configuration
    /// says ([`ClusterModel::opens_workspace_port`]).
    pub fn own_rules(&self) -> Option<RuleSet> {
        RuleSet::of_state(&self.ingress())
            .or_else(|| self.network_rules(None).filter(|_| !self.opens_workspace_port()))
    }

    /// [`ClusterModel::network_rules`] of a cluster that sets `scheduler_port` or
    /// `allow_ingress_from`, opening `workspace_port` where it sets no `scheduler_port`; `None` for
    /// one that sets neither.
    pub fn own_network_rules(&self, workspace_port: Option<i64>) -> Option<RuleSet> {
        self.network_rules(None)?;
        self.network_rules(workspace_port)
    }

    /// The rules `coiled.Cluster` makes from `scheduler_port` (else `port_override`, the
    /// workspace's `coiled.scheduler_port`) and `allow_ingress_from`: `cluster_firewall(target,
    /// scheduler=port, spark=use_dashboard_https)` in `coiled/utils.py`, i.e. the scheduler's port,
    /// Spark Connect's 15003 when the dashboard uses HTTPS, and 443, from the target (`0.0.0.0/0`
    /// for everyone).
    pub fn network_rules(&self, port_override: Option<i64>) -> Option<RuleSet> {
        let port = self.scheduler_port.known().copied().or(port_override);
        let target = self.allow_ingress_from.as_deref();
        if port.is_none() && target.is_none() {
            return None;
        }
        let cidr = target.filter(|t| *t != "everyone").unwrap_or("0.0.0.0/0");
        let rule = coiled_firewall::rule_from_wire(&self.network_ports(port_override), cidr)?;
        Some(RuleSet::new(&[rule]))
    }

    /// The ports of that firewall in the order the client sends them (`[port, 15003, 443]`, a port
    /// repeated if it is 443 too).
    fn network_ports(&self, port_override: Option<i64>) -> Vec<i64> {
        let port = self.scheduler_port.known().copied().or(port_override);
        let spark = Some(SPARK_CONNECT_PORT).filter(|_| self.dashboard_https());
        [Some(port.unwrap_or(DEFAULT_SCHEDULER_PORT)), spark, Some(443)]
            .into_iter()
            .flatten()
            .collect()
    }

    /// Whether its firewall opens the workspace's `coiled.scheduler_port` (else 443): it has one
    /// from `allow_ingress_from`, and no `scheduler_port`. Only the workspace's Dask configuration
    /// says which port that is.
    pub fn opens_workspace_port(&self) -> bool {
        self.scheduler_port.is_null() && self.allow_ingress_from.known().is_some()
    }

    /// Whether an argument the firewall of [`ClusterModel::network_rules`] is made from is not
    /// known until apply.
    pub fn network_unknown(&self) -> bool {
        let made =
            self.scheduler_port.known().is_some() || self.allow_ingress_from.known().is_some();
        self.scheduler_port.is_unknown()
            || self.allow_ingress_from.is_unknown()
            || (made && self.use_dashboard_https.is_unknown())
    }

    /// [`ClusterModel::network_rules`]'s rules, in the form and order the client sends them.
    pub fn network_wire(&self, port_override: Option<i64>) -> Option<Vec<crate::api::IngressOut>> {
        let rules = self.network_rules(port_override)?;
        let cidr = rules.rules().first()?.cidr.to_string();
        let ports = self.network_ports(port_override);
        Some(vec![crate::api::IngressOut {
            ports: ports.into_iter().filter_map(|p| u16::try_from(p).ok()).collect(),
            cidr,
        }])
    }

    /// Whether the dashboard is served over HTTPS (the client's default).
    pub fn dashboard_https(&self) -> bool {
        self.use_dashboard_https.known().copied().unwrap_or(true)
    }

    /// `spot` and `spot_on_demand_fallback` as the client sends them: `spot_policy` wins over
    /// `backend_options.spot`, as the client merges them (a configuration cannot set both).
    pub fn spot_options(&self) -> (Option<bool>, Option<bool>) {
        match self.spot_policy.as_deref() {
            Some("on-demand") => (Some(false), None),
            Some("spot") => (Some(true), Some(false)),
            Some("spot_with_fallback") => (Some(true), Some(true)),
            _ => (self.backend().spot.known().copied(), None),
        }
    }

    /// The address its clients use in `d`, on its configured port where the server reports none
    /// ([`cluster_state::scheduler_address`]).
    pub fn address_in(&self, d: &ClusterDetails) -> Result<Option<String>, String> {
        cluster_state::scheduler_address(
            d,
            self.use_public_ip(),
            self.scheduler_port.known().copied().unwrap_or(DEFAULT_SCHEDULER_PORT),
        )
    }

    /// Whether state holds it stopped, failed or stopping (kept by `when_stopped = "keep"`).
    pub fn is_stopped(&self) -> bool {
        self.status.as_deref().is_some_and(|s| matches!(s, "stopped" | "stopping" | "error"))
    }

    /// What to do with a cluster found stopped: keep it in state (`keep`) or not (`recreate`).
    pub fn keeps_stopped(&self) -> bool {
        self.when_stopped.as_deref() == Some("keep")
    }

    /// The `timeouts` value `which` picks (`|t| &t.create`), or the default.
    pub fn timeout(&self, which: fn(&Timeouts) -> &Field<String>) -> Duration {
        crate::provider::duration::timeout_of(&self.timeouts, which, DEFAULT_TIMEOUT)
    }

    /// The cluster id in state.
    pub fn cluster_id(&self) -> Option<i64> {
        self.id.as_deref().and_then(|i| i.parse().ok())
    }
}

/// Cluster names as Coiled accepts them.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Values chosen at creation that the configuration leaves out stay as they are (null after an
/// import that could not read them); the scheduler address stays unless `use_scheduler_public_ip`
/// changes (in place): the other address is not stored, so the update reads it.
pub(super) fn keep_prior_choices(
    config: &ClusterModel,
    prior: &ClusterModel,
    planned: &mut ClusterModel,
) -> Vec<&'static str> {
    let mut kept = Vec::new();
    if config.worker_vm_types.is_null() {
        planned.worker_vm_types = prior.worker_vm_types.clone();
        kept.push(tfplugin::attr!(ClusterModel, worker_vm_types));
    }
    if config.scheduler_vm_types.is_null() {
        planned.scheduler_vm_types = prior.scheduler_vm_types.clone();
        kept.push(tfplugin::attr!(ClusterModel, scheduler_vm_types));
    }
    if config.software.is_null() && config.container == prior.container {
        planned.software = prior.software.clone();
        kept.push(tfplugin::attr!(ClusterModel, software));
    }
    // A value unknown until apply may change it too.
    if prior.use_scheduler_public_ip != planned.use_scheduler_public_ip
        && !planned.use_scheduler_public_ip.is_null()
    {
        planned.scheduler_address = Field::Unknown;
        kept.push(tfplugin::attr!(ClusterModel, scheduler_address));
    }
    kept
}

/// The state for what the server reports, on top of `base` (planned or prior state) whose own rules
/// are `own`.
pub fn state_from_details(
    base: &ClusterModel,
    own: Option<&RuleSet>,
    d: &ClusterDetails,
    ws: &str,
) -> ClusterModel {
    let mut state = base.clone();
    state.id = Field::Known(d.id.to_string());
    state.workspace = Field::Known(ws.to_string());
    if !d.name.is_empty() {
        state.name = Field::Known(d.name.clone());
    }
    state.status = Field::Known(d.current_state.state.clone());
    state.n_workers = Field::Known(Number::from_i64(d.desired_workers));
    // A public address wanted and missing is null here; the read and the create say why.
    state.scheduler_address = Field::from_option(base.address_in(d).ok().flatten());
    state.dashboard_address =
        Field::from_option(d.scheduler.as_ref().and_then(|s| s.dashboard_address.clone()));
    state.created_at = Field::from_option(d.created.clone());
    // The effective rules, unless the cluster's `ingress` blocks hold them: as the server reports
    // them, else the cluster's own, else those already held (a terse server says nothing of
    // inherited rules), else null: not known.
    if base.has_ingress_blocks() {
        state.firewall_rules = Field::Null;
    } else {
        match d.ingress().map(|w| RuleSet::from_wire(&w)).or_else(|| own.cloned()) {
            Some(rules) => state.firewall_rules = Field::Known(rules.rows_value()),
            None if matches!(state.firewall_rules, Field::Known(_)) => {}
            None => state.firewall_rules = Field::Null,
        }
    }
    if state.use_scheduler_public_ip.is_null() {
        state.use_scheduler_public_ip = Field::Known(true);
    }
    // Unset, the wait is for the default (`wait_fraction`) and state keeps it unset.
    if state.wait_for_workers.is_unknown() {
        state.wait_for_workers = Field::Null;
    }
    state
}

/// The state of a cluster known only by id (every computed value filled, as Terraform requires).
pub(crate) fn pending_state(
    base: &ClusterModel,
    own: Option<&RuleSet>,
    id: i64,
    ws: &str,
) -> ClusterModel {
    let mut state = base.clone();
    state.id = Field::Known(id.to_string());
    state.workspace = Field::Known(ws.to_string());
    if state.status.is_unknown() {
        state.status = Field::Known("pending".into());
    }
    for field in [&mut state.scheduler_address, &mut state.dashboard_address, &mut state.created_at]
    {
        if field.is_unknown() {
            *field = Field::Null;
        }
    }
    if state.firewall_rules.is_unknown() {
        state.firewall_rules =
            Field::from_option(own.filter(|_| !base.has_ingress_blocks()).map(RuleSet::rows_value));
    }
    state
}

/// State of schema version 0, which held the scheduler's public and private addresses beside the
/// one clients use, and `firewall_rules` beside the `ingress` blocks they repeat, rewritten for
/// version 1, which stores neither twice.
pub(super) fn upgrade_v0(json: &serde_json::Value) -> serde_json::Value {
    let mut json = json.clone();
    if let Some(obj) = json.as_object_mut() {
        obj.remove("scheduler_public_address");
        obj.remove("scheduler_private_address");
        let blocks = obj
            .get("backend_options")
            .and_then(|b| b.get("ingress"))
            .and_then(serde_json::Value::as_array);
        if blocks.is_some_and(|b| !b.is_empty()) {
            obj.insert("firewall_rules".into(), serde_json::Value::Null);
        }
    }
    json
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn details(ingress: serde_json::Value) -> ClusterDetails {
        serde_json::from_value(json!({
            "id": 7, "name": "etl", "current_state": {"state": "ready"}, "desired_workers": 1, "scheduler_port": 443,
            "scheduler": {"current_state": {"state": "started"}, "instance": {"public_ip_address": "198.51.100.7", "private_ip_address": "10.0.0.7", "current_state": {"state": "ready"}}},
            "cluster_options": {"firewall_spec": {"ingress": ingress}},
            "cluster_infra": {"give_scheduler_public_ip": true},
        }))
        .unwrap()
    }

    fn with_blocks(cidr: &str) -> ClusterModel {
        let block = Value::object([
            ("cidr", Value::string(cidr)),
            ("ports", Value::Set(vec![Value::int(443)])),
        ]);
        ClusterModel {
            backend_options: Field::Known(ClusterBackendOptions {
                ingress: Field::Known(Value::Set(vec![block])),
                ..Default::default()
            }),
            use_scheduler_public_ip: Field::Known(false),
            ..Default::default()
        }
    }

    #[test]
    fn rules_and_addresses_are_stored_once() {
        let d = details(json!([{"ports": [443], "cidr": "10.1.0.0/16"}]));
        let own = with_blocks("10.1.0.0/16");
        let state = state_from_details(&own, own.own_rules().as_ref(), &d, "alice");
        assert!(state.firewall_rules.is_null(), "the ingress blocks hold the rules");
        assert_eq!(state.scheduler_address.as_deref(), Some("tls://10.0.0.7:443"));
        let inheriting = ClusterModel::default();
        let state = state_from_details(&inheriting, None, &d, "alice");
        assert_eq!(
            state.firewall_rules.known().and_then(Value::as_elements).map(<[Value]>::len),
            Some(1)
        );
        assert_eq!(state.scheduler_address.as_deref(), Some("tls://198.51.100.7:443"));
    }

    #[test]
    fn version_0_state_drops_what_it_stored_twice() {
        let v0 = json!({
            "scheduler_address": "tls://10.0.0.7:443", "scheduler_public_address": "tls://198.51.100.7:443",
            "scheduler_private_address": "tls://10.0.0.7:443", "firewall_rules": [{"port": 443, "protocol": "tcp", "source": "10.1.0.0/16"}],
            "backend_options": {"ingress": [{"cidr": "10.1.0.0/16", "ports": [443]}], "region": null, "spot": null, "zone": null},
        });
        let v1 = upgrade_v0(&v0);
        assert_eq!(v1.as_object().unwrap().len(), 3, "{v1}");
        assert!(v1["firewall_rules"].is_null());
        assert_eq!(v1["scheduler_address"], "tls://10.0.0.7:443");
        // Inherited rules are stored nowhere else: they stay.
        let inherited = json!({"firewall_rules": [{"port": 443, "protocol": "tcp", "source": "10.1.0.0/16"}], "backend_options": null});
        assert_eq!(upgrade_v0(&inherited), inherited);
    }

    #[test]
    fn reported_own_rules_that_differ_are_drift_in_the_blocks() {
        use super::super::import::refresh_reported;
        let mut state = with_blocks("10.1.0.0/16");
        refresh_reported(&mut state, &details(json!([{"ports": [443], "cidr": "10.1.0.0/16"}])));
        assert_eq!(
            state.ingress(),
            with_blocks("10.1.0.0/16").ingress(),
            "same rules: the blocks stay as written"
        );
        let drifted = details(json!([{"ports": [443, 8786], "cidr": "10.9.0.0/16"}]));
        refresh_reported(&mut state, &drifted);
        let rules = RuleSet::of_state(&state.ingress()).unwrap();
        assert!(rules.same_as(&RuleSet::from_wire(&drifted.ingress().unwrap())));
    }
}
