//! Every request body the provider sends, as typed structs serialised by serde. Each mirrors the body
//! that the public `coiled` client (1.135.6) sends for the same arguments; the doc comment names the
//! client function it follows.

use std::collections::BTreeMap;

use serde::Serialize;

/// One ingress rule on the wire: TCP ports open to one CIDR block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IngressOut {
    /// TCP ports.
    pub ports: Vec<u16>,
    /// Source block, canonical.
    pub cidr: String,
}

/// `{"ingress": [...]}`, the wire form of a firewall (`firewall_spec`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FirewallSpecOut {
    /// The rules; absent means "no rules" (`{}`), as the client sends an empty spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Vec<IngressOut>>,
}

/// `POST /api/v2/clusters/account/{ws}/`: the body `CloudV2._create_cluster` builds in
/// `coiled/v2/core.py` (called from `coiled.Cluster._start` in `coiled/v2/cluster.py`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CreateCluster {
    /// Cluster name.
    pub name: String,
    /// Initial worker count.
    pub workers: i64,
    /// Worker VM types in order of preference.
    pub worker_instance_types: Option<Vec<String>>,
    /// Scheduler VM types in order of preference.
    pub scheduler_instance_types: Option<Vec<String>>,
    /// Worker options (none set by the provider).
    pub worker_options: BTreeMap<String, String>,
    /// Worker class (the client's default).
    pub worker_class: Option<String>,
    /// Worker disk size (the client's default).
    pub worker_disk_size: Option<i64>,
    /// Scheduler disk size (the client's default).
    pub scheduler_disk_size: Option<i64>,
    /// Scheduler options.
    pub scheduler_options: SchedulerOptions,
    /// Environment variables.
    pub environ: BTreeMap<String, String>,
    /// Tags, values as strings.
    pub tags: BTreeMap<String, String>,
    /// Dask configuration sent with the cluster.
    pub dask_config: BTreeMap<String, String>,
    /// Whether only the creator may see the cluster.
    pub private_to_creator: bool,
    /// Software environment build id.
    pub env_id: Option<i64>,
    /// Software environment name.
    pub env_name: Option<String>,
    /// Whether the cluster gets AWS credentials through Coiled's endpoint.
    pub use_aws_creds_endpoint: bool,
    /// Backend options of this cluster.
    pub options: ClusterOptions,
}

/// `scheduler_options` of a create.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct SchedulerOptions {
    /// Idle timeout, as Dask reads it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_timeout: Option<String>,
}

/// `options` of a create (the cluster's backend options, with `region` renamed `region_name` and
/// `zone` renamed `zone_name` as the client renames them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClusterOptions {
    /// Region.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region_name: Option<String>,
    /// Zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone_name: Option<String>,
    /// Spot workers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spot: Option<bool>,
    /// `false` for a private scheduler (the client's `use_scheduler_public_ip=False`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_dashboard_public_ip: Option<bool>,
    /// The cluster's own ingress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firewall_spec: Option<FirewallSpecOut>,
}

/// `POST /api/v2/workers/account/{ws}/cluster/{id}/`: `CloudV2._scale_up` in `coiled/v2/core.py`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScaleUp {
    /// Workers to add (not a target).
    pub n_workers: i64,
    /// Why, for Coiled's logs.
    pub reason: String,
}

/// The `update_options` message on `/ws/api/v1/{ws}/cluster-info/`: `CloudBeta._set_backend_options`
/// in `coiled/core.py` (through `coiled.set_backend_options`).
#[derive(Clone, Debug, Serialize)]
pub struct UpdateOptions<'a, D: Serialize> {
    /// Always `update_options`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Empty, as the client sends it.
    pub logging_context: BTreeMap<String, String>,
    /// The options: a [`BackendOptionsData`].
    pub data: &'a D,
    /// The client session.
    #[serde(rename = "coiled-session-id")]
    pub session_id: &'a str,
    /// This request.
    #[serde(rename = "coiled-request-id")]
    pub request_id: String,
}

/// `data` of an `update_options` message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BackendOptionsData {
    /// Always `vm`.
    pub backend: &'static str,
    /// The cloud's options.
    pub options: CloudOptions,
    /// Container registry settings.
    pub registry: Registry,
}

/// `data.options`, per cloud.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum CloudOptions {
    /// `backend="aws"`.
    Aws(AwsOptions),
    /// `backend="gcp"`.
    Gcp(GcpOptions),
}

/// AWS backend options, as `set_backend_options(backend="aws", …)` sends them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AwsOptions {
    /// Region.
    pub aws_region_name: String,
    /// Empty: no role.
    pub account_role: String,
    /// The keys.
    pub credentials: AwsKeys,
    /// Deprecated single rule, always empty.
    pub firewall: BTreeMap<String, String>,
    /// Default ingress of new clusters.
    pub firewall_spec: FirewallSpecOut,
    /// Bring-your-own network (empty for Coiled-managed).
    pub network: BTreeMap<String, String>,
    /// Zone.
    pub zone: Option<String>,
    /// `aws`.
    pub provider_name: &'static str,
    /// `aws_cloudbridge_backend_options`.
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// AWS keys in backend options.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AwsKeys {
    /// Access key id.
    pub aws_access_key: String,
    /// Secret key.
    pub aws_secret_key: String,
}

/// GCP backend options, as `set_backend_options(backend="gcp", …)` sends them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GcpOptions {
    /// The client's AWS default, sent for GCP too.
    pub aws_region_name: String,
    /// Empty.
    pub account_role: String,
    /// Empty AWS keys.
    pub credentials: EmptyAwsKeys,
    /// Deprecated single rule, always empty.
    pub firewall: BTreeMap<String, String>,
    /// Default ingress of new clusters.
    pub firewall_spec: FirewallSpecOut,
    /// Bring-your-own network (empty for Coiled-managed).
    pub network: BTreeMap<String, String>,
    /// Zone.
    pub zone: Option<String>,
    /// The service account key.
    pub gcp_service_creds_dict: serde_json::Value,
    /// `gcp`.
    pub provider_name: &'static str,
    /// `gcp_cloudbridge_backend_options`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Project.
    pub gcp_project_name: Option<String>,
    /// Region.
    pub gcp_region_name: String,
    /// Zone.
    pub gcp_zone_name: Option<String>,
    /// Always null.
    pub instance_service_account: Option<String>,
}

/// The empty AWS key pair GCP options carry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EmptyAwsKeys {
    /// Empty.
    pub aws_access_key_id: String,
    /// Empty.
    pub aws_secret_access_key: String,
}

/// `data.registry`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Registry {
    /// `ecr`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// ECR credentials (the AWS keys on AWS, empty on GCP).
    pub credentials: BTreeMap<String, String>,
    /// Always false.
    pub public_ecr: bool,
    /// Region.
    pub region: String,
}
