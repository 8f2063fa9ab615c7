//! The Coiled provider: its configuration, and the resources and data sources it offers.
//!
//! Configuring makes no API call: the token is checked, and the default workspace looked up
//! (`GET /api/v2/user/me/memberships`), on first use.

pub mod backend_options;
pub mod cluster;
pub mod config;
pub mod defaults;
pub mod duration;
pub mod functions;
pub mod ingress;
pub(crate) mod ownership;
pub mod software;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::{OnceCell, RwLock};

use crate::api::{ApiError, Client, ClientConfig, Op, RetryPolicy};
use tfplugin::diag::{Diagnostics, Severity};
use tfplugin::framework::{AnyResource, Ctx, DataSource, Provider};
use tfplugin::model::Field;
use tfplugin::schema::Schema;
use tfplugin::value::{AttrPath, Value};

/// The provider's registry address.
pub const ADDRESS: &str = "registry.terraform.io/coiled/coiled";

/// The release version: the package's, declared once in Cargo.toml.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// A configured connection to Coiled, shared by every resource of one provider instance.
#[derive(Debug)]
pub struct Coiled {
    pub client: Client,
    configured_workspace: Option<config::Sourced<String>>,
    default_workspace: OnceCell<String>,
    memberships: OnceCell<Vec<crate::api::Membership>>,
    token_source: String,
    server_source: String,
    /// The outcome of checking the token (and its workspaces) once, for plans.
    verified: OnceCell<Result<Vec<String>, String>>,
    /// Each workspace's backend options and Dask configuration overrides, read at most once per
    /// provider process (rule `read-once`).
    workspace_reads: std::sync::Mutex<HashMap<String, Arc<WorkspaceReads>>>,
    /// Whether a scale-down first asks the scheduler to retire the workers it removes
    /// (`retire_workers`).
    pub retire_workers: bool,
}

/// What every new cluster of a workspace is built from: its backend options (its cloud, default VM
/// types and account-level firewall) and its Dask configuration overrides.
#[derive(Debug)]
pub struct WorkspaceFacts {
    /// `GET /api/v1/{ws}/backend_options/`.
    pub backend: Arc<crate::api::BackendOptionsRead>,
    /// `GET /api/v2/user/workspace/{ws}/dask-config-overrides`; `None` when Coiled answered it with
    /// an error, which Coiled's client ignores.
    pub overrides: Option<crate::api::JsonObject>,
}

/// A workspace's reads, each made once (rule `read-once`).
#[derive(Debug, Default)]
struct WorkspaceReads {
    backend: OnceCell<Arc<crate::api::BackendOptionsRead>>,
    overrides: OnceCell<Option<crate::api::JsonObject>>,
    /// What a plan's checks could read, tried once: `None` when they could not.
    for_plans: OnceCell<Option<Arc<WorkspaceFacts>>>,
}

impl Coiled {
    /// What this process has read of workspace `ws`.
    fn reads(&self, ws: &str) -> Arc<WorkspaceReads> {
        let mut reads = self.workspace_reads.lock().unwrap_or_else(|e| e.into_inner());
        reads.entry(ws.to_string()).or_default().clone()
    }

    /// The workspace's backend options. Coiled's client reads them for every cluster it creates;
    /// ours (rule `read-once`): they are workspace-wide, so one provider process (a `terraform
    /// apply` runs one for its plan and one for its apply) reads them at most once per workspace,
    /// concurrent first uses waiting for one read, and again after it writes them
    /// ([`Coiled::forget_workspace_reads`]). A read that fails is not kept: the next use asks
    /// again.
    pub async fn backend_options(
        &self,
        op: &Op,
        ws: &str,
    ) -> Result<Arc<crate::api::BackendOptionsRead>, ApiError> {
        let read = || async { self.client.get_backend_options(op, ws).await.map(Arc::new) };
        self.reads(ws).backend.get_or_try_init(read).await.cloned()
    }

    /// The workspace's account-level ingress rules, where they can be read (for what an import or
    /// a list makes of a cluster that inherits them).
    pub async fn account_rules(&self, op: &Op, ws: &str) -> Option<ingress::RuleSet> {
        let ingress = self.backend_options(op, ws).await.ok()?.ingress()?;
        Some(ingress::RuleSet::from_wire(&ingress))
    }

    /// The workspace's overrides and backend options, in the client's order (overrides first, as
    /// `coiled.Cluster` starts), each read once as [`Coiled::backend_options`] is. Overrides the
    /// server failed to give (a 5xx or 429) are none for this use and asked for again at the next.
    /// The error comes with its title.
    pub async fn workspace_facts(
        &self,
        op: &Op,
        ws: &str,
    ) -> Result<WorkspaceFacts, (&'static str, ApiError)> {
        let read = || self.client.dask_config_overrides(op, ws);
        let overrides = match self.reads(ws).overrides.get_or_try_init(read).await {
            Ok(o) => o.clone(),
            Err(ApiError::Status { .. }) => None,
            Err(e) => return Err(("Unable to Read the Workspace's Dask Configuration", e)),
        };
        match self.backend_options(op, ws).await {
            Ok(backend) => Ok(WorkspaceFacts { backend, overrides }),
            Err(e) => Err(("Unable to Read the Workspace's Backend Options", e)),
        }
    }

    /// The workspace's facts for plan-time checks, which are advice: read once for all of them,
    /// concurrent checks waiting for that read, and `None` for the rest of the process (until it
    /// writes the workspace's backend options) when it failed, so that a plan of many clusters asks
    /// a failing server once.
    pub async fn plan_facts(&self, op: &Op, ws: &str) -> Option<Arc<WorkspaceFacts>> {
        let reads = self.reads(ws);
        let read = || async { self.workspace_facts(op, ws).await.ok().map(Arc::new) };
        reads.for_plans.get_or_init(read).await.clone()
    }

    /// Forgets what was read of the workspace: this process has written its backend options.
    pub fn forget_workspace_reads(&self, ws: &str) {
        self.workspace_reads.lock().unwrap_or_else(|e| e.into_inner()).remove(ws);
    }

    /// The workspace to use when a resource names none: the configured one, else the API's default.
    pub async fn workspace(&self, op: &Op) -> Result<String, ApiError> {
        if let Some(ws) = &self.configured_workspace {
            return Ok(ws.value.clone());
        }
        let default = || async {
            let memberships = self.memberships(op).await?;
            self.client.default_workspace(op, memberships).await
        };
        self.default_workspace.get_or_try_init(default).await.cloned()
    }

    /// The token's user's memberships, read once per provider process (rule `read-once`): they give
    /// the default workspace and the workspaces a plan checks the token against.
    async fn memberships(&self, op: &Op) -> Result<&[crate::api::Membership], ApiError> {
        self.memberships.get_or_try_init(|| self.client.memberships(op)).await.map(Vec::as_slice)
    }

    /// The workspace a resource's `workspace` attribute names, else the default one; reports an
    /// error pointing at `workspace` when the default cannot be determined.
    pub async fn workspace_for(
        &self,
        op: &Op,
        named: Option<&str>,
        diags: &mut Diagnostics,
    ) -> Option<String> {
        if let Some(ws) = named {
            return Some(ws.to_string());
        }
        let path = Some(AttrPath::attr("workspace"));
        self.reported(self.workspace(op).await, diags, "Unable to Determine Workspace", path)
    }

    /// The workspace named in the configuration or environment, if any (no API call).
    pub fn configured_workspace(&self) -> Option<&str> {
        self.configured_workspace.as_ref().map(|w| w.value.as_str())
    }

    /// The value of an API call that succeeded; else `None`, and the error
    /// [reported](Coiled::report) under `summary` (at `path`).
    pub fn reported<T>(
        &self,
        result: Result<T, ApiError>,
        diags: &mut Diagnostics,
        summary: &str,
        path: Option<AttrPath>,
    ) -> Option<T> {
        result.map_err(|e| self.report(diags, summary, path, &e)).ok()
    }

    /// `None`, once `e` is [reported](Coiled::report): the end of an operation an API error stops.
    pub fn failed<T>(
        &self,
        diags: &mut Diagnostics,
        summary: &str,
        path: Option<AttrPath>,
        e: &ApiError,
    ) -> Option<T> {
        self.report(diags, summary, path, e);
        None
    }

    /// Turns an API error into a diagnostic with a next step, naming where the token came from when
    /// it was rejected. Never includes the token.
    pub fn report(
        &self,
        diags: &mut Diagnostics,
        summary: &str,
        path: Option<AttrPath>,
        e: &ApiError,
    ) {
        diags.push(Severity::Error, path, summary, self.explain(e));
    }

    /// An API error in words, with the next step.
    pub fn explain(&self, e: &ApiError) -> String {
        match e {
            ApiError::Unauthorized { .. } => format!(
                "{e}\n\nThe token came from {}. Check that it is current (`coiled login` writes a \
                    new one), or set it in {}.",
                self.token_source,
                config::TOKEN_PLACES
            ),
            ApiError::Forbidden { .. } => format!(
                "{e}\n\nCheck that the token's user is a member (and, for account settings, \
                    an admin) of the workspace."
            ),
            ApiError::Unreachable { .. } => format!(
                "{e}.\n\nThe server URL came from {}. Check that it is right (the provider's \
                    `server` argument or COILED_SERVER), that this machine can reach it (network, \
                    VPN, firewall; proxies through HTTPS_PROXY and NO_PROXY), and that the server \
                    is running. To keep trying longer on a flaky network, set \
                    `unreachable_timeout` in the provider block.",
                self.server_source
            ),
            ApiError::Decode { .. } => format!(
                "{e}.\n\nThe server URL came from {}. If it is not Coiled's API (or a proxy in \
                    front of it answers instead, such as a login page), correct it.",
                self.server_source
            ),
            ApiError::Cancelled => format!(
                "{e}. The operation was interrupted; Terraform's state records only what is known \
                    to exist."
            ),
            ApiError::Status { code: Some(code), .. } if code == "NO_CLOUD_SETUP" => format!(
                "{e}\n\nThe workspace has no cloud account configured: run `coiled setup`, or \
                    manage it with a coiled_backend_options resource."
            ),
            _ => format!("{e}"),
        }
    }

    /// Checks, once per provider process, that the token is accepted and (when `workspace` is
    /// given) that its user is a member of that workspace: one cheap call, made at plan time so
    /// that a wrong token or workspace fails `plan` rather than `apply`. Reports why not.
    pub async fn check_access(
        &self,
        op: &Op,
        workspace: Option<&str>,
        path: Option<AttrPath>,
        diags: &mut Diagnostics,
    ) -> bool {
        let verified = self
            .verified
            .get_or_init(|| async {
                match self.memberships(op).await {
                    Ok(ms) => Ok(ms.iter().map(|m| m.account.slug.clone()).collect()),
                    Err(e) => Err(self.explain(&e)),
                }
            })
            .await;
        match (verified, workspace) {
            (Err(detail), _) => {
                diags.error("Unable to Verify Coiled Credentials", detail.clone());
                false
            }
            (Ok(slugs), Some(ws)) if !slugs.iter().any(|s| s == ws) => {
                let detail = format!(
                    "The token's user (token from {}) is not a member of workspace {ws:?}. Its \
                        workspaces: {}. Use one of them, or a token of a member of {ws:?}.",
                    self.token_source,
                    if slugs.is_empty() { "none".to_string() } else { slugs.join(", ") }
                );
                diags.push(Severity::Error, path, "Not a Member of the Workspace", detail);
                false
            }
            _ => true,
        }
    }
}

/// What `ConfigureProvider` decided.
#[derive(Debug, Default)]
enum Configured {
    #[default]
    NotYet,
    /// The configuration holds values unknown until apply; API calls wait for a later configure.
    Deferred,
    /// Ready to call the API.
    Ready(Arc<Coiled>),
}

/// The provider's `cluster_defaults`, as a plan may use them.
#[derive(Clone, Debug, Default)]
pub enum DefaultsState {
    /// No block.
    #[default]
    Absent,
    /// The block holds values not known until apply.
    Unknown,
    /// The block, read.
    Set(defaults::ClusterDefaults),
}

impl DefaultsState {
    /// The block, when it is set and known.
    pub fn set(&self) -> Option<&defaults::ClusterDefaults> {
        match self {
            DefaultsState::Set(d) => Some(d),
            _ => None,
        }
    }
}

/// State shared between the provider and its resources.
#[derive(Debug, Default)]
pub struct ProviderData {
    configured: RwLock<Configured>,
    defaults: std::sync::RwLock<DefaultsState>,
    local: std::sync::RwLock<defaults::LocalClusterSettings>,
}

impl ProviderData {
    pub fn cluster_defaults(&self) -> DefaultsState {
        self.defaults.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The cluster settings of this machine's Coiled configuration (for warnings only).
    pub fn local_settings(&self) -> defaults::LocalClusterSettings {
        self.local.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The configured connection; adds an error when there is none. `Ok(None)` means the provider
    /// configuration is not known yet (plan with values from other resources): callers skip API
    /// work.
    pub async fn coiled(&self, diags: &mut Diagnostics) -> Result<Option<Arc<Coiled>>, ()> {
        match &*self.configured.read().await {
            Configured::Ready(c) => Ok(Some(c.clone())),
            Configured::Deferred => Ok(None),
            Configured::NotYet => {
                diags.bug(
                    "Provider Not Configured",
                    "A resource was used before the provider was configured.",
                );
                Err(())
            }
        }
    }

    /// What a call outside a resource's lifecycle needs: the connection, an operation of `timeout`,
    /// and the workspace `named`, else the default one; errors say why there is none.
    pub async fn session(
        &self,
        ctx: &Ctx,
        timeout: Duration,
        named: Option<&str>,
        diags: &mut Diagnostics,
    ) -> Option<(Arc<Coiled>, Op, String)> {
        let coiled = self.require(diags).await?;
        let op = Op::new(timeout, ctx.stop.clone());
        let ws = coiled.workspace_for(&op, named, diags).await?;
        Some((coiled, op, ws))
    }

    /// The workspace a create whose configuration names none (`named` is null) will use, where it
    /// is known without an API call: the provider's or the environment's.
    pub async fn planned_workspace(&self, named: &Field<String>) -> Option<String> {
        let coiled = self.coiled(&mut Diagnostics::new()).await.ok().flatten();
        coiled.filter(|_| named.is_null())?.configured_workspace().map(str::to_string)
    }

    /// At plan time: the token works, and its user is a member of the workspace the plan names (the
    /// resource's own `workspace`, else the planned or configured one), or, with none named
    /// anywhere, a default workspace can be determined as the apply will. Skipped while the
    /// provider configuration is unknown. Returns whether the plan may go on.
    /// `configured` is the configuration's `workspace`, `planned` the plan's.
    pub async fn check_plan_access(
        &self,
        ctx: &Ctx,
        configured: &Field<String>,
        planned: Option<&str>,
        diags: &mut Diagnostics,
    ) -> bool {
        let Ok(Some(coiled)) = self.coiled(&mut Diagnostics::new()).await else { return true };
        let op = Op::new(DEFAULT_API_TIMEOUT, ctx.stop.clone());
        let named = configured.as_deref();
        let ws = named.or(planned).or(coiled.configured_workspace());
        let path = named.map(|_| AttrPath::attr("workspace"));
        if !coiled.check_access(&op, ws, path, diags).await {
            return false;
        }
        // Named nowhere (not merely unknown until apply): the default the apply takes must exist.
        ws.is_some()
            || !configured.is_null()
            || coiled.workspace_for(&op, None, diags).await.is_some()
    }

    /// The configured connection for an operation that must call the API, or an error saying why
    /// not.
    pub async fn require(&self, diags: &mut Diagnostics) -> Option<Arc<Coiled>> {
        match self.coiled(diags).await {
            Ok(Some(c)) => Some(c),
            Ok(None) => {
                diags.error(
                    "Provider Configuration Unknown",
                    "The provider configuration depends on values not known yet; apply the \
                        resources it depends on first.",
                );
                None
            }
            Err(()) => None,
        }
    }
}

#[derive(Default)]
pub struct CoiledProvider {
    data: Arc<ProviderData>,
}

/// What a declared check (`validated(...)`) answers: an error's summary and detail, or nothing.
pub(crate) type Checked = Result<(), (&'static str, String)>;

/// A declared check's answer for the value it found wrong, if any: the error `summary`, and a
/// detail `detail` writes of that value.
pub(crate) fn refuse<T>(
    bad: Option<T>,
    summary: &'static str,
    detail: impl FnOnce(T) -> String,
) -> Checked {
    bad.map_or(Ok(()), |b| Err((summary, detail(b))))
}

/// The check every resource declares on its `workspace`: a slug.
pub(crate) fn workspace_slug(v: &Value) -> Checked {
    let bad = v.as_str().filter(|ws| ws.is_empty() || ws.contains('/'));
    refuse(bad, "Invalid Workspace", |ws| format!("{ws:?} is not a workspace slug."))
}

/// The check on a text argument `name` for which empty means nothing: it is left out instead.
pub(crate) fn not_empty(v: &Value, name: &str) -> Checked {
    refuse(v.as_str().filter(|t| t.trim().is_empty()), "Empty Value", |_| {
        format!("{name} is empty; remove it or give a value.")
    })
}

/// The check on a name a data source or a connection looks up: one that can stand in a URL's path.
pub(crate) fn lookup_name(v: &Value) -> Checked {
    let bad = v.as_str().filter(|n| n.is_empty() || n.contains('/'));
    refuse(bad, "Invalid Name", |n| {
        format!("{n:?} is not a name: it is empty or has a `/` (name a workspace in `workspace`).")
    })
}

/// Default timeout for provider-level API calls made outside a resource's own timeouts.
pub const DEFAULT_API_TIMEOUT: Duration = Duration::from_secs(5 * 60);

const DESCRIPTION: &str = "The Coiled provider manages Coiled's hosted Dask clusters and their \
    firewalls: account-wide backend options with ingress rules, and clusters with their own ingress \
    and a private or public scheduler address.";

tfplugin::model! {
    /// The provider block.
    pub struct ProviderConfig {
        /// Base URL of the Coiled control plane. Defaults, in order, to `COILED_SERVER`,
        /// `DASK_COILED__SERVER`, `coiled.server` in `~/.config/dask/coiled.yaml`, then
        /// `https://cloud.coiled.io`. A URL without a scheme gets `http://`, as in the Coiled
        /// client.
        #[attribute(optional)]
        server: String,
        /// Coiled API token. Defaults, in order, to `COILED_TOKEN`, `DASK_COILED__TOKEN`, then
        /// `coiled.token` in `~/.config/dask/coiled.yaml` (written by `coiled login`). Never shown
        /// in plans or logs.
        #[attribute(optional, sensitive)]
        token: String,
        /// Workspace (formerly account) used by resources that do not name one. Defaults, in order,
        /// to `COILED_WORKSPACE`, `DASK_COILED__WORKSPACE`, `DASK_COILED__ACCOUNT`,
        /// `coiled.workspace` or `coiled.account` in `~/.config/dask/coiled.yaml`, then the token's
        /// default workspace.
        #[attribute(optional)]
        workspace: String,
        /// Allow sending the API token over plain `http://` to a host other than the loopback
        /// interface. Off by default: the token is a credential.
        #[attribute(optional)]
        allow_insecure_http: bool,
        /// Path to a PEM file of extra certificate authorities to trust for the Coiled API (HTTPS
        /// and the WebSocket alike), besides the platform's roots.
        #[attribute(optional)]
        ca_bundle_file: String,
        /// Whether removing workers from a cluster first asks its Dask scheduler to retire them, as
        /// Coiled's client does (`Cluster.scale_down`), so that the data they hold moves to the
        /// workers that stay (`true`, the default). It needs a network path from where Terraform
        /// runs to the scheduler's address (the one `use_scheduler_public_ip` chooses), over TLS
        /// with the cluster's certificate. A plan that removes workers checks that the address
        /// accepts a connection from here and warns when it does not; a path that connects but
        /// fails the TLS handshake (a proxy in between) is found by the apply, which then warns
        /// that the workers were removed without retiring. `false` removes workers without asking
        /// (their memory is lost) and skips the check.
        #[attribute(optional)]
        retire_workers: bool,
        /// How long to keep trying a server that cannot be reached at all (connection refused, host
        /// name not resolved, no answer) before failing, as a duration such as `30s` or `5m`.
        /// Default `30s`. A server that answers, even with throttling or server errors, is retried
        /// within each operation's own timeout regardless.
        #[attribute(optional)]
        unreachable_timeout: String,
        /// Defaults for `coiled_cluster`, as the Coiled configuration file sets them for Coiled's
        /// Python client. Plans show the values each cluster takes; a change here changes (or, for
        /// `ingress` and `tags`, replaces) the clusters that take it.
        #[block(with = defaults::block)]
        cluster_defaults: Value,
    }
}

#[async_trait]
impl Provider for CoiledProvider {
    fn name(&self) -> &'static str {
        "coiled"
    }

    fn version(&self) -> &'static str {
        VERSION
    }

    fn schema(&self) -> Schema {
        Schema { version: 0, block: ProviderConfig::schema_block(DESCRIPTION) }
    }

    fn resources(&self) -> Vec<Arc<dyn AnyResource>> {
        vec![
            Arc::new(backend_options::BackendOptionsResource { data: self.data.clone() }),
            Arc::new(cluster::ClusterResource { data: self.data.clone() }),
            Arc::new(software::SoftwareEnvResource { data: self.data.clone() }),
        ]
    }

    fn ephemeral_resources(&self) -> Vec<Arc<dyn tfplugin::framework::EphemeralResource>> {
        vec![Arc::new(cluster::connection::ClusterConnection { data: self.data.clone() })]
    }

    fn list_resources(&self) -> Vec<Arc<dyn tfplugin::query::ListResource>> {
        vec![
            Arc::new(cluster::list::ClusterList { data: self.data.clone() }),
            Arc::new(software::list::SoftwareEnvList { data: self.data.clone() }),
        ]
    }

    fn actions(&self) -> Vec<Arc<dyn tfplugin::query::Action>> {
        vec![
            Arc::new(cluster::actions::StopCluster { data: self.data.clone() }),
            Arc::new(cluster::actions::ScaleCluster { data: self.data.clone() }),
        ]
    }

    fn functions(&self) -> Vec<Arc<dyn tfplugin::function::Function>> {
        vec![Arc::new(functions::FirewallRules), Arc::new(functions::CanonicalCidr)]
    }

    fn data_sources(&self) -> Vec<Arc<dyn DataSource>> {
        vec![
            Arc::new(backend_options::data_source::BackendOptionsDataSource {
                data: self.data.clone(),
            }),
            Arc::new(cluster::data_source::ClusterDataSource { data: self.data.clone() }),
            Arc::new(software::data_source::SoftwareEnvDataSource { data: self.data.clone() }),
        ]
    }

    async fn configure(
        &self,
        _ctx: &Ctx,
        config: &Value,
        _terraform_version: &str,
        diags: &mut Diagnostics,
    ) {
        let cluster_defaults = defaults::read(config, diags);
        *self.data.defaults.write().unwrap_or_else(|p| p.into_inner()) = cluster_defaults;
        // Read once. The local settings take what they can even when the connection waits for a
        // later configure; only the connection reports a file that cannot be read.
        let env = config::Env::from_process();
        if let Ok(env) = &env {
            *self.data.local.write().unwrap_or_else(|p| p.into_inner()) =
                defaults::local_settings(env);
        }
        let c = ProviderConfig::decode(config);
        let unknown =
            [&c.server, &c.token, &c.workspace, &c.ca_bundle_file, &c.unreachable_timeout]
                .iter()
                .any(|f| f.is_unknown())
                || c.allow_insecure_http.is_unknown()
                || c.retire_workers.is_unknown();
        if unknown {
            tracing::debug!(
                "provider configuration depends on values known only after apply; deferring API \
                    calls"
            );
            *self.data.configured.write().await = Configured::Deferred;
            return;
        }
        let Some(unreachable) = unreachable_timeout(c.unreachable_timeout.as_deref(), diags) else {
            return;
        };
        let Ok(env) = env.map_err(|e| diags.error("Unreadable Coiled Configuration File", e))
        else {
            return;
        };
        let settings =
            config::resolve(c.server.as_deref(), c.token.as_deref(), c.workspace.as_deref(), &env);
        let (server, server_source) = (&settings.server.value, &settings.server.source);
        tracing::debug!(server = %server, server_source = %server_source, "resolved Coiled server");
        let Some(token) = settings.token else {
            diags.error_at(
                AttrPath::attr("token"),
                "Missing Coiled API Token",
                format!("No Coiled API token was found. Set it in {}.", config::TOKEN_PLACES),
            );
            return;
        };
        let Ok(ca_bundle_pem) = read_ca_bundle(c.ca_bundle_file.as_deref(), diags) else { return };
        let client = Client::new(ClientConfig {
            server: settings.server.value.clone(),
            token: token.value,
            allow_insecure_http: c.allow_insecure_http.known().copied().unwrap_or(false),
            ca_bundle_pem,
            retry: RetryPolicy { unreachable, ..RetryPolicy::default() },
        });
        match client {
            Ok(client) => {
                let coiled = Coiled {
                    client,
                    configured_workspace: settings.workspace,
                    default_workspace: OnceCell::new(),
                    token_source: token.source,
                    server_source: settings.server.source.clone(),
                    verified: OnceCell::new(),
                    memberships: OnceCell::new(),
                    workspace_reads: Default::default(),
                    retire_workers: c.retire_workers.known().copied().unwrap_or(true),
                };
                *self.data.configured.write().await = Configured::Ready(Arc::new(coiled));
            }
            Err(e) => diags.error_at(
                AttrPath::attr("server"),
                "Invalid Coiled Server",
                format!("{e} (server from {}).", settings.server.source),
            ),
        }
    }
}

/// `unreachable_timeout`, or its default; `None` with an error when it is not a positive duration.
fn unreachable_timeout(value: Option<&str>, diags: &mut Diagnostics) -> Option<Duration> {
    let Some(text) = value else { return Some(crate::api::DEFAULT_UNREACHABLE) };
    let error = match duration::parse_timeout(text) {
        Ok(d) if !d.is_zero() => return Some(d),
        Ok(_) => "unreachable_timeout must be longer than zero.".to_string(),
        Err(e) => e,
    };
    diags.error_at(AttrPath::attr("unreachable_timeout"), "Invalid Duration", error);
    None
}

/// The PEM text of `ca_bundle_file`, if set; an error when it cannot be read.
fn read_ca_bundle(path: Option<&str>, diags: &mut Diagnostics) -> Result<Option<Vec<u8>>, ()> {
    let Some(path) = path else { return Ok(None) };
    std::fs::read(path).map(Some).map_err(|e| {
        diags.error_at(
            AttrPath::attr("ca_bundle_file"),
            "Unreadable CA Bundle",
            format!("Cannot read {path}: {e}."),
        );
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every model holds exactly its schema's attributes and blocks: `encode` must write an object
    /// Terraform accepts.
    #[test]
    fn models_hold_exactly_the_schema_attributes() {
        let provider = CoiledProvider::default();
        let sorted = |attrs: &[&'static str]| {
            let mut n = attrs.to_vec();
            n.sort_unstable();
            n
        };
        let names = |s: &tfplugin::schema::Schema| {
            let blocks = s.block.blocks.iter().map(|b| b.name);
            sorted(&s.block.attributes.iter().map(|a| a.name).chain(blocks).collect::<Vec<_>>())
        };
        for r in provider.resources() {
            let expected = sorted(match r.type_name() {
                "coiled_cluster" => cluster::model::ClusterModel::ATTRIBUTES,
                "coiled_backend_options" => backend_options::wire::BackendOptionsModel::ATTRIBUTES,
                "coiled_software_environment" => software::model::SoftwareEnvModel::ATTRIBUTES,
                other => panic!("no model for {other}"),
            });
            assert_eq!(names(&r.schema()), expected, "{}", r.type_name());
        }
        for d in provider.data_sources() {
            let expected = sorted(match d.type_name() {
                "coiled_cluster" => cluster::data_source::MODEL_ATTRIBUTES,
                "coiled_backend_options" => backend_options::data_source::MODEL_ATTRIBUTES,
                "coiled_software_environment" => software::data_source::MODEL_ATTRIBUTES,
                other => panic!("no model for {other}"),
            });
            assert_eq!(names(&d.schema()), expected, "data {}", d.type_name());
        }
    }

    /// Terraform 1.0.0 to 1.0.4 crash rendering a set of nested attributes whose value is unknown or
    /// null, as a data source read at apply is: nested attributes are single objects or lists.
    #[test]
    fn no_nested_attribute_is_a_set() {
        use tfplugin::schema::{Attribute, Block, Nesting};
        fn attributes(attrs: &[Attribute], at: &str) {
            for a in attrs {
                if let Some((nesting, inner)) = &a.nested {
                    assert!(!matches!(nesting, Nesting::Set), "{at}.{} is a set", a.name);
                    attributes(inner, &format!("{at}.{}", a.name));
                }
            }
        }
        fn walk(block: &Block, at: &str) {
            attributes(&block.attributes, at);
            block.blocks.iter().for_each(|b| walk(&b.block, &format!("{at}.{}", b.name)));
        }
        let provider = CoiledProvider::default();
        provider.resources().iter().for_each(|r| walk(&r.schema().block, r.type_name()));
        provider.data_sources().iter().for_each(|d| walk(&d.schema().block, d.type_name()));
    }

    /// Every schema's top-level arguments, by kind and type name (the provider block's aside: an
    /// empty provider argument means "unset", as an empty environment variable does).
    fn every_schema() -> Vec<(String, tfplugin::schema::Schema)> {
        let p = CoiledProvider::default();
        let mut all: Vec<(String, tfplugin::schema::Schema)> = Vec::new();
        all.extend(p.resources().iter().map(|r| (r.type_name().to_string(), r.schema())));
        all.extend(
            p.data_sources().iter().map(|d| (format!("data {}", d.type_name()), d.schema())),
        );
        let ephemerals = p.ephemeral_resources();
        all.extend(ephemerals.iter().map(|e| (format!("ephemeral {}", e.type_name()), e.schema())));
        all.extend(
            p.list_resources().iter().map(|l| (format!("list {}", l.type_name()), l.schema())),
        );
        all.extend(p.actions().iter().map(|a| (format!("action {}", a.type_name()), a.schema())));
        all
    }

    /// A workspace argument anywhere refuses what cannot be a workspace's slug, and a name looked up
    /// refuses an empty one, at validation, with the attribute's path: neither reaches a URL.
    #[test]
    fn every_workspace_and_looked_up_name_is_checked() {
        let refuses = |a: &tfplugin::schema::Attribute, v: &str| {
            a.check.is_some_and(|check| check(&Value::string(v)).is_err())
        };
        let mut workspaces = 0;
        for (kind, schema) in every_schema() {
            for a in &schema.block.attributes {
                let argument = !matches!(a.presence, tfplugin::schema::Presence::Computed);
                if a.name == "workspace" && argument {
                    workspaces += 1;
                    for bad in ["", "a/b"] {
                        assert!(refuses(a, bad), "{kind}.workspace accepts {bad:?}");
                    }
                    assert!(!refuses(a, "my-team"), "{kind}.workspace");
                }
                if a.name == "name" && argument {
                    assert!(refuses(a, ""), "{kind}.name accepts \"\"");
                }
            }
        }
        assert!(workspaces >= 10, "{workspaces} workspace arguments found");
    }
}
