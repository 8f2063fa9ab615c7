//! The JSON shapes the client reads and writes, as Coiled's public client uses them. Fields the
//! client does not need are ignored; optional ones default.

use serde::{Deserialize, Deserializer, Serialize};

/// A field that may be absent or null: either is its default. The client reads these with `.get()`
/// or not at all, so a server may leave them out or send null.
fn null_is_default<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Text a server writes for people (a reason, a log line), which diagnostics quote: the credentials
/// of URLs in it are hidden as it is read ([`super::hide_url_credentials`]).
fn shown_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map(|t| super::hide_url_credentials(&t)))
}

/// [`shown_text`] where absent or null is empty.
fn shown_line<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    shown_text(d).map(Option::unwrap_or_default)
}

/// `GET /api/v2/user/me`.
#[derive(Clone, Debug, Deserialize)]
pub struct User {
    pub username: String,
}

/// A workspace as named in a membership.
#[derive(Clone, Debug, Deserialize)]
pub struct AccountRef {
    /// The workspace slug used in URLs.
    pub slug: String,
}

/// One entry of `GET /api/v2/user/me/memberships`.
#[derive(Clone, Debug, Deserialize)]
pub struct Membership {
    pub account: AccountRef,
    #[serde(default, deserialize_with = "null_is_default")]
    pub is_admin: bool,
    /// Whether it is the user's default workspace.
    #[serde(default, deserialize_with = "null_is_default")]
    pub is_default_account: bool,
}

/// One ingress rule on the wire: TCP `ports` open to one `cidr`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IngressRule {
    pub ports: Vec<i64>,
    pub cidr: String,
}

/// `{"ingress": [...]}`, the `firewall_spec` object.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FirewallSpec {
    /// The rules; absent means none configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingress: Option<Vec<IngressRule>>,
}

/// `GET /api/v1/{ws}/backend_options/`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct BackendOptionsRead {
    /// `vm` (or a legacy value).
    pub backend: Option<String>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub options: serde_json::Value,
}

impl BackendOptionsRead {
    /// The cloud (`aws` or `gcp`), from `options.provider_name` or a legacy backend name.
    pub fn provider_name(&self) -> Option<String> {
        self.options.get("provider_name").and_then(|v| v.as_str()).map(str::to_string).or_else(
            || match self.backend.as_deref() {
                Some("vm_aws") => Some("aws".into()),
                Some("vm_gcp") => Some("gcp".into()),
                _ => None,
            },
        )
    }
    /// The account-level ingress rules as reported: `Some(rules)` (empty when none are set) when
    /// the answer carries `options.firewall_spec`, `None` when the server does not report it at
    /// all.
    pub fn ingress(&self) -> Option<Vec<IngressRule>> {
        let spec = self.options.get("firewall_spec")?;
        Some(serde_json::from_value::<FirewallSpec>(spec.clone()).ok()?.ingress.unwrap_or_default())
    }
    /// A string option as reported (empty counts as absent).
    pub fn option_str(&self, key: &str) -> Option<String> {
        self.options.get(key).and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_string)
    }
    /// The region as reported: `options.gcp_region_name` on GCP, else `options.aws_region_name`.
    pub fn region(&self) -> Option<String> {
        if self.provider_name().as_deref() == Some("gcp") {
            self.option_str("gcp_region_name")
        } else {
            self.option_str("aws_region_name").or_else(|| self.option_str("gcp_region_name"))
        }
    }
    /// The zone as it was given: `options.zone` where the answer carries the key
    /// (`set_backend_options` writes its `zone` argument there, null when not given), else
    /// `options.gcp_zone_name`; `None` when the answer says nothing of it, `Some(None)` when it
    /// reports none. On GCP, `gcp_zone_name` is the zone the client derived (`us-east1-c` when
    /// given none), which is not a zone the user gave.
    pub fn zone(&self) -> Option<Option<String>> {
        if self.options.get("zone").is_some() {
            return Some(self.option_str("zone"));
        }
        self.options.get("gcp_zone_name").is_some().then(|| self.option_str("gcp_zone_name"))
    }
    /// `options.gcp_project_name`.
    pub fn gcp_project_name(&self) -> Option<String> {
        self.option_str("gcp_project_name")
    }
    /// `options.network`, as `(network_id, scheduler_subnet_id, worker_subnet_id, firewall_id)`
    /// values where set; `None` when the answer carries no network object.
    pub fn network(&self) -> Option<[Option<String>; 4]> {
        let net = self.options.get("network")?.as_object()?;
        let text = |k: &str| {
            net.get(k).and_then(|v| v.as_str()).filter(|s| !s.is_empty()).map(str::to_string)
        };
        Some([
            text("network_id"),
            text("scheduler_subnet_id"),
            text("worker_subnet_id"),
            text("firewall_id"),
        ])
    }
}

/// The answer to a cluster create.
#[derive(Clone, Debug, Deserialize)]
pub struct CreatedCluster {
    pub id: i64,
    /// True when an active cluster of that name was reused instead of created.
    #[serde(default, deserialize_with = "null_is_default")]
    pub existing: bool,
}

/// The answer to a by-name lookup.
#[derive(Clone, Debug, Deserialize)]
pub struct ClusterRef {
    pub id: i64,
}

/// A state with its reason.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct CurrentState {
    /// The state name (`pending`, `ready`, `started`, …).
    #[serde(default, deserialize_with = "null_is_default")]
    pub state: String,
    /// Why, for errors.
    #[serde(default, deserialize_with = "shown_text")]
    pub reason: Option<String>,
}

impl CurrentState {
    /// Whether a cluster in this state has stopped, is stopping, or failed: it will not run again
    /// (rule `ended`).
    pub fn has_ended(&self) -> bool {
        matches!(self.state.as_str(), "stopping" | "stopped" | "error")
    }
    /// The reason, when one is given.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref().filter(|r| !r.is_empty())
    }
    /// The state, and the reason in parentheses when one is given: `stopped (idle)`.
    pub fn described(&self) -> String {
        match self.reason() {
            Some(r) => format!("{} ({r})", self.state),
            None => self.state.clone(),
        }
    }
}

/// A VM.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Instance {
    pub public_ip_address: Option<String>,
    pub private_ip_address: Option<String>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub current_state: CurrentState,
}

/// A scheduler or worker process.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct Process {
    /// Name, e.g. `etl-worker-3`.
    #[serde(default, deserialize_with = "null_is_default")]
    pub name: String,
    #[serde(default, deserialize_with = "null_is_default")]
    pub current_state: CurrentState,
    /// The VM, once assigned.
    pub instance: Option<Instance>,
    /// Dashboard URL (scheduler only).
    pub dashboard_address: Option<String>,
}

/// `GET …/clusters/account/{ws}/id/{id}`.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ClusterDetails {
    pub id: i64,
    #[serde(default, deserialize_with = "null_is_default")]
    pub name: String,
    /// Creation time (ISO 8601).
    pub created: Option<String>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub current_state: CurrentState,
    #[serde(default, deserialize_with = "null_is_default")]
    pub desired_workers: i64,
    pub scheduler_port: Option<i64>,
    pub scheduler: Option<Process>,
    #[serde(default, deserialize_with = "null_is_default")]
    pub workers: Vec<Process>,
    /// Options the cluster was created with (echoes `firewall_spec` where the server keeps it).
    #[serde(default, deserialize_with = "null_is_default")]
    pub cluster_options: serde_json::Value,
    /// Infrastructure facts (`give_scheduler_public_ip`).
    #[serde(default, deserialize_with = "null_is_default")]
    pub cluster_infra: serde_json::Value,
    /// The software environment alias.
    pub senv_alias: Option<SenvAlias>,
    /// Tags, where the server reports them (kept only when present; never required).
    pub tags: Option<serde_json::Value>,
    /// Scheduler options (`idle_timeout`), where the server reports them (never required).
    pub scheduler_options: Option<serde_json::Value>,
}

/// `senv_alias` in cluster details.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SenvAlias {
    pub name: Option<String>,
}

impl ClusterDetails {
    /// The effective ingress rules the server reports, if it reports them.
    pub fn ingress(&self) -> Option<Vec<IngressRule>> {
        let spec = self.cluster_options.get("firewall_spec")?;
        serde_json::from_value::<FirewallSpec>(spec.clone()).ok()?.ingress
    }
    fn option_text(&self, key: &str) -> Option<&str> {
        self.cluster_options.get(key).and_then(|v| v.as_str()).filter(|t| !t.is_empty())
    }
    /// `cluster_options.tls_cert`: the cluster's certificate (PEM), as `_security` reads it.
    pub fn tls_cert(&self) -> Option<&str> {
        self.option_text("tls_cert")
    }
    /// `cluster_options.tls_key`: the key of that certificate (PEM).
    pub fn tls_key(&self) -> Option<&str> {
        self.option_text("tls_key")
    }
    /// `cluster_options.region_name`.
    pub fn region_name(&self) -> Option<&str> {
        self.option_text("region_name")
    }
    /// `cluster_options.zone_name`.
    pub fn zone_name(&self) -> Option<&str> {
        self.option_text("zone_name")
    }
    /// `cluster_options.spot`, where reported.
    pub fn spot(&self) -> Option<bool> {
        self.cluster_options.get("spot").and_then(|v| v.as_bool())
    }
    /// `cluster_options.use_dashboard_https`, where reported (the client sends it only when
    /// `false`).
    pub fn dashboard_https(&self) -> Option<bool> {
        self.cluster_options.get("use_dashboard_https").and_then(|v| v.as_bool())
    }
    /// `cluster_infra.firewall_source` (`cluster`, `account` or `default`), where reported.
    pub fn firewall_source(&self) -> Option<&str> {
        self.cluster_infra.get("firewall_source").and_then(|s| s.as_str())
    }
    /// `scheduler_options.idle_timeout`, where reported.
    pub fn idle_timeout(&self) -> Option<&str> {
        self.scheduler_options
            .as_ref()
            .and_then(|o| o.get("idle_timeout"))
            .and_then(|v| v.as_str())
            .filter(|t| !t.is_empty())
    }
    /// `tags`, values as strings (as Coiled's client stringifies them), where reported.
    pub fn reported_tags(&self) -> Option<std::collections::BTreeMap<String, String>> {
        let map = self.tags.as_ref()?.as_object()?;
        let text = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
        Some(map.iter().map(|(k, v)| (k.clone(), text(v))).collect())
    }
    /// Whether the scheduler has a public IP.
    pub fn gives_scheduler_public_ip(&self) -> bool {
        self.cluster_infra.get("give_scheduler_public_ip").and_then(|v| v.as_bool()).unwrap_or(true)
    }
}

/// The answer to a software environment create (`Cloud._create_software_environment` reads
/// `latest_spec.latest_build`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SoftwareAlias {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub latest_spec: Option<SoftwareSpec>,
}

/// A software environment's spec (`GET …/spec/{id}`, `Cloud._get_software_spec`, which `coiled env
/// inspect` prints whole): what a create sent, as far as the server echoes it. Every field is
/// optional; one that is absent is not compared.
#[derive(Clone, Debug, Default, Deserialize, serde::Serialize, PartialEq)]
pub struct SpecRead {
    /// The image, for an environment made from one.
    pub container: Option<String>,
    /// The package spec's digest, for an environment made from packages.
    pub md5: Option<String>,
    /// The CPU architecture built for.
    pub architecture: Option<String>,
    /// Whether it was built for GPUs.
    pub gpu_enabled: Option<bool>,
}

/// `latest_spec` of a software environment.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SoftwareSpec {
    pub id: Option<i64>,
    pub latest_build: Option<SoftwareBuild>,
}

/// A software environment build (`Cloud._fetch_software_build`, `_tail_software_build_logs`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct SoftwareBuild {
    #[serde(default, deserialize_with = "null_is_default")]
    pub id: i64,
    /// `built`, `error`, or a state on the way.
    #[serde(default, deserialize_with = "null_is_default")]
    pub state: String,
    /// Why it failed.
    #[serde(default, deserialize_with = "shown_text")]
    pub reason: Option<String>,
}

/// One page of a build's log (`Cloud._fetch_software_build_logs`).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct BuildLogPage {
    #[serde(default, deserialize_with = "null_is_default")]
    pub events: Vec<BuildLogEvent>,
    /// Where the next page starts.
    #[serde(default, rename = "nextToken")]
    pub next_token: Option<String>,
}

/// One log line.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct BuildLogEvent {
    /// Its id, unique within the build.
    #[serde(default, rename = "eventId")]
    pub event_id: serde_json::Value,
    #[serde(default, deserialize_with = "shown_line")]
    pub message: String,
}

/// One page of a workspace's software environments.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct AliasPage {
    #[serde(default, deserialize_with = "null_is_default")]
    pub items: Vec<SoftwareAlias>,
    /// How many there are in all.
    #[serde(default, deserialize_with = "null_is_default")]
    pub count: usize,
}

/// One cluster of a workspace's list (`coiled cluster list` shows these fields).
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ClusterListItem {
    pub id: i64,
    #[serde(default, deserialize_with = "null_is_default")]
    pub name: String,
    pub updated: Option<String>,
    /// State; its `state` may be absent or null, which Coiled's CLI shows as `unknown`.
    pub current_state: Option<ListedState>,
}

/// `current_state` of a listed cluster, whose state Coiled's CLI (`cli/cluster/list.py`) shows as
/// `unknown` when absent.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct ListedState {
    pub state: Option<String>,
}

impl ClusterListItem {
    /// The listed state, when the server gave one.
    pub fn state(&self) -> Option<&str> {
        self.current_state.as_ref().and_then(|c| c.state.as_deref())
    }
}
