//! Every request body the provider sends, as typed structs serialised by serde. Each mirrors the
//! body that the public `coiled` client (1.135.6) sends for the same arguments; the doc comment
//! names the client function it follows.

use std::collections::BTreeMap;

use serde::Serialize;

/// One ingress rule on the wire: TCP ports open to one CIDR block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct IngressOut {
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
/// `coiled/v2/core.py` (called from `coiled.Cluster._start` in `coiled/v2/cluster.py`), every key
/// the client sends, with the values it sends for the arguments the provider has; a key without a
/// comment is always null, the client's value when its argument is not given. Client-only keys
/// (`local_versions`) and the local Dask configuration are the differences the wire ledger lists.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CreateCluster {
    pub name: String,
    /// Initial worker count.
    pub workers: i64,
    /// Worker VM types in order of preference: never null (the client's defaults when unset).
    pub worker_instance_types: Vec<String>,
    /// Scheduler VM types in order of preference: never null.
    pub scheduler_instance_types: Vec<String>,
    /// `coiled.worker-options` of the workspace's Dask overrides (`{}` by default).
    pub worker_options: JsonObject,
    /// `coiled.worker.class` of the overrides, else null.
    pub worker_class: Option<String>,
    /// `worker_disk_size`, in GiB; null when unset.
    pub worker_disk_size: Option<i64>,
    pub worker_disk_throughput: Option<i64>,
    pub worker_disk_config: Option<JsonObject>,
    pub scheduler_disk_size: Option<i64>,
    pub scheduler_disk_config: Option<JsonObject>,
    /// `coiled.scheduler-options` of the overrides, with `idle_timeout` when one is set.
    pub scheduler_options: JsonObject,
    pub environ: BTreeMap<String, String>,
    /// Tags: the overrides' `coiled.tags`, then the cluster's own with empty values dropped.
    pub tags: BTreeMap<String, String>,
    /// The workspace's server-side Dask configuration overrides.
    pub dask_config: JsonObject,
    /// `coiled.private-to-creator` of the overrides (`false` by default).
    pub private_to_creator: bool,
    /// Package-sync environment id: always null (no package sync from Terraform).
    pub env_id: Option<i64>,
    /// Software environment name: never null.
    pub env_name: String,
    pub extra_worker_on_scheduler: Option<bool>,
    pub n_worker_specs_per_host: Option<i64>,
    /// `coiled.use_aws_creds_endpoint` of the overrides (`true` by default).
    pub use_aws_creds_endpoint: bool,
    pub custom_subdomain: Option<String>,
    pub batch_job_ids: Option<Vec<i64>>,
    pub extra_user_container: Option<String>,
    /// `false`, as the client sends it without a batch container.
    pub extra_user_container_ignore_entrypoint: bool,
    pub scheduler_sidecars: Option<Vec<JsonObject>>,
    pub worker_sidecars: Option<Vec<JsonObject>>,
    pub host_setup_script: Option<String>,
    pub pause_on_exit: Option<bool>,
    pub skip_ssd_mount: Option<bool>,
    /// `cluster_timeout` (else the overrides' `coiled.cluster-timeout`) in seconds; null when
    /// unset.
    pub cluster_timeout_seconds: Option<i64>,
    /// `coiled.cloud-env-image` of the overrides, else null.
    pub coiled_cloud_env_image: Option<String>,
    pub filestores_to_attach: Option<Vec<JsonObject>>,
    /// Backend options of this cluster; absent when empty, as the client leaves it out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub options: Option<ClusterOptions>,
}

/// A free-form JSON object.
pub type JsonObject = serde_json::Map<String, serde_json::Value>;

/// `options` of a create (the cluster's backend options, with `region` renamed `region_name` and
/// `zone` renamed `zone_name` as the client renames them).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClusterOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub zone_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spot: Option<bool>,
    /// Whether a spot worker may fall back to on-demand (`spot_policy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spot_on_demand_fallback: Option<bool>,
    /// `true` unless a zone is named: the client's `use_best_zone` default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub multizone: Option<bool>,
    /// `false` when the scheduler is private and the dashboard is not served over HTTPS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_dashboard_public_ip: Option<bool>,
    /// `false` when the dashboard is not served over HTTPS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub use_dashboard_https: Option<bool>,
    /// The cluster's own ingress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub firewall_spec: Option<FirewallSpecOut>,
}

/// `POST /api/v2/software-environment/account/{ws}`: the body
/// `Cloud._create_software_environment_v2` (`coiled/core.py`) sends, for a container image (as
/// `coiled.Cluster(container=...)` makes one, or `create_software_environment(container=...)`) or a
/// package spec. A key without a comment is always null.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct CreateSoftwareEnv {
    pub name: String,
    /// The image, if it is one.
    pub container: Option<String>,
    /// `false`, the client's default.
    pub force_rebuild: bool,
    /// The MD5 of the package spec as Python's `json.dumps(spec, sort_keys=True)` writes it (of
    /// `null` for an image).
    pub md5: String,
    /// Whether the image's entrypoint is used (`true` by default).
    pub use_entrypoint: bool,
    /// Whether CUDA is set up for conda.
    pub gpu_enabled: bool,
    /// `x86_64` or `aarch64`.
    pub architecture: String,
    /// Where the environment is stored, if set.
    pub region_name: Option<String>,
    /// `true`, the client's default (`use_uv_installer`).
    pub enable_experimental_installer: bool,
    pub lockfile_content: Option<String>,
    pub lockfile_name: Option<String>,
    /// `packages`, `raw_conda` and `raw_pip` of a package spec; nothing for an image.
    #[serde(flatten)]
    pub spec: JsonObject,
}

/// `POST /api/v2/workers/account/{ws}/cluster/{id}/`: `CloudV2._scale_up` in `coiled/v2/core.py`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScaleUp {
    /// Workers to add (not a target).
    pub n_workers: i64,
    /// Why, for Coiled's logs.
    pub reason: String,
}

/// The `update_options` message on `/ws/api/v1/{ws}/cluster-info/`:
/// `CloudBeta._set_backend_options` in `coiled/core.py` (through `coiled.set_backend_options`).
#[derive(Clone, Debug, Serialize)]
pub struct UpdateOptions<'a, D: Serialize> {
    /// Always `update_options`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// Empty, as the client sends it.
    pub logging_context: BTreeMap<String, String>,
    /// The options: a [`BackendOptionsData`].
    pub data: &'a D,
    #[serde(rename = "coiled-session-id")]
    pub session_id: &'a str,
    #[serde(rename = "coiled-request-id")]
    pub request_id: String,
}

/// `data` of an `update_options` message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BackendOptionsData {
    /// Always `vm`.
    pub backend: &'static str,
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
    pub aws_region_name: String,
    /// Empty: no role.
    pub account_role: String,
    pub credentials: AwsKeys,
    /// Deprecated single rule, always empty.
    pub firewall: BTreeMap<String, String>,
    /// Default ingress of new clusters.
    pub firewall_spec: FirewallSpecOut,
    /// Bring-your-own network (empty for Coiled-managed).
    pub network: BTreeMap<String, String>,
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
    pub aws_access_key: String,
    pub aws_secret_key: String,
}

/// GCP backend options, as `set_backend_options(backend="gcp", …)` sends them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GcpOptions {
    /// The client's AWS default, sent for GCP too.
    pub aws_region_name: String,
    pub account_role: String,
    /// Empty AWS keys.
    pub credentials: EmptyAwsKeys,
    /// Deprecated single rule, always empty.
    pub firewall: BTreeMap<String, String>,
    /// Default ingress of new clusters.
    pub firewall_spec: FirewallSpecOut,
    /// Bring-your-own network (empty for Coiled-managed).
    pub network: BTreeMap<String, String>,
    pub zone: Option<String>,
    /// The service account key.
    pub gcp_service_creds_dict: serde_json::Value,
    /// `gcp`.
    pub provider_name: &'static str,
    /// `gcp_cloudbridge_backend_options`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub gcp_project_name: Option<String>,
    pub gcp_region_name: String,
    pub gcp_zone_name: Option<String>,
    pub instance_service_account: Option<String>,
}

/// The empty AWS key pair GCP options carry.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EmptyAwsKeys {
    pub aws_access_key_id: String,
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
    pub public_ecr: bool,
    pub region: String,
}
