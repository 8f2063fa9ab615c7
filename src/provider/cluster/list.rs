//! List resource `coiled_cluster` (Terraform 1.14 and later): the clusters of a workspace,
//! including those created outside Terraform, filtered by status, name prefix and tags, for
//! `terraform query` and its `-generate-config-out`.
//!
//! API calls: `GET /api/v2/clusters/account/{ws}/` (the list, as `coiled.list_clusters` pages it),
//! and for each cluster listed without a state, and each result a tag filter or `include_resource`
//! needs, `GET …/id/{id}`; for a resource whose environment is named as one made for an image, that
//! environment's alias and spec.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use tfplugin::diag::Diagnostics;
use tfplugin::framework::Ctx;
use tfplugin::model::Field;
use tfplugin::query::{Found, ListResource};
use tfplugin::schema::Schema;
use tfplugin::value::{AttrPath, Value};

use super::super::ingress::RuleSet;
use super::super::{Checked, DEFAULT_API_TIMEOUT, ProviderData, refuse, workspace_slug};
use super::import::imported_state;
use super::model::ClusterModel;
use crate::api::{ClusterDetails, ClusterListItem, LIST_CEILING_PAGES, Op};

/// How many clusters' details a query reads at most (one request each): for clusters listed without
/// a state, and for a `tags` filter (a listed cluster carries no tags that Coiled's client reads);
/// a query that stops there says how many it left unchecked.
pub const MAX_TAG_READS: usize = 1000;

tfplugin::model! {
    /// The list block's `config`.
    struct ClusterQuery {
        /// Workspace to search. Defaults to the provider's workspace.
        #[attribute(optional, validated(workspace_slug))]
        workspace: String,
        /// Only clusters in this state (e.g. `ready`, `stopped`). Without it, the clusters that
        /// have not stopped or failed.
        #[attribute(optional, validated(cluster_state))]
        status: String,
        /// Only clusters whose name starts with this.
        #[attribute(optional)]
        name_prefix: String,
        /// Only clusters carrying every one of these tags (read from each cluster's details).
        #[attribute(optional)]
        tags: BTreeMap<String, String>,
    }
}

/// `status`: one of the states Coiled gives a cluster.
fn cluster_state(v: &Value) -> Checked {
    const STATES: &[&str] = &[
        "pending", "starting", "scaling", "ready", "stopping", "stopped", "error", "paused",
        "pausing",
    ];
    refuse(v.as_str().filter(|s| !STATES.contains(s)), "Invalid Status", |s| {
        format!(
            "{s:?} is not a cluster state: use pending, starting, scaling, ready, stopping, \
            stopped, error, pausing or paused."
        )
    })
}

pub struct ClusterList {
    pub(crate) data: Arc<ProviderData>,
}

/// Whether a listed cluster passes the status and name filters (no status: only those not ended).
fn matches(item: &ClusterListItem, q: &ClusterQuery) -> bool {
    let Some(state) = item.state() else { return false };
    let status_ok = match q.status.as_deref() {
        Some(wanted) => state == wanted,
        None => !matches!(state, "stopping" | "stopped" | "error"),
    };
    status_ok && named(item, q)
}

/// Whether a listed cluster passes the name filter.
fn named(item: &ClusterListItem, q: &ClusterQuery) -> bool {
    q.name_prefix.as_deref().is_none_or(|p| item.name.starts_with(p))
}

/// Whether a cluster carries every tag asked for; `None` when the server does not report tags.
fn tagged(d: &ClusterDetails, wanted: &BTreeMap<String, String>) -> Option<bool> {
    let tags = d.reported_tags()?;
    Some(wanted.iter().all(|(k, v)| tags.get(k) == Some(v)))
}

#[async_trait]
impl ListResource for ClusterList {
    fn type_name(&self) -> &'static str {
        "coiled_cluster"
    }

    fn schema(&self) -> Schema {
        let description = "Finds a workspace's clusters, including ones created outside Terraform.";
        Schema { version: 0, block: ClusterQuery::schema_block(description) }
    }

    async fn list(
        &self,
        ctx: &Ctx,
        config: &Value,
        include_resource: bool,
        limit: usize,
        diags: &mut Diagnostics,
    ) -> Vec<Found> {
        let q = ClusterQuery::decode(config);
        let session = self.data.session(ctx, DEFAULT_API_TIMEOUT, q.workspace.as_deref(), diags);
        let Some((coiled, op, ws)) = session.await else { return Vec::new() };
        let listed = coiled.client.list_clusters(&op, &ws).await;
        let Some(listed) = coiled.reported(listed, diags, "Unable to List Clusters", None) else {
            return Vec::new();
        };
        let wanted_tags = q.tags.known().cloned().filter(|t| !t.is_empty());
        let account = if include_resource { coiled.account_rules(&op, &ws).await } else { None };
        let mut found = Vec::new();
        let mut gaps =
            Gaps { complete: listed.complete, listed: listed.items.len(), ..Gaps::default() };
        let mut items = listed.items;
        let Some(mut read) =
            learn_states(&coiled, &op, &ws, &mut items, &q, &mut gaps, diags).await
        else {
            return Vec::new();
        };
        gaps.stateless = items.iter().filter(|i| i.state().is_none() && named(i, &q)).count();
        for item in items.iter().filter(|i| matches(i, &q)) {
            if limit > 0 && found.len() >= limit {
                break;
            }
            let details = if let Some(d) = read.remove(&item.id) {
                Some(d)
            } else if wanted_tags.is_some() || include_resource {
                if gaps.reads == MAX_TAG_READS && wanted_tags.is_some() {
                    gaps.unchecked += 1;
                    continue;
                }
                gaps.reads += 1;
                match coiled.client.get_cluster(&op, &ws, item.id).await {
                    Ok(d) => Some(d),
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => {
                        coiled.report(diags, "Unable to Read Cluster", None, &e);
                        break;
                    }
                }
            } else {
                None
            };
            if let (Some(wanted), Some(d)) = (&wanted_tags, &details) {
                match tagged(d, wanted) {
                    Some(true) => {}
                    Some(false) => continue,
                    None => {
                        gaps.untagged += 1;
                        continue;
                    }
                }
            }
            let resource = match details.filter(|_| include_resource) {
                Some(d) => Some(resource_object(&coiled, &op, &ws, &d, account.as_ref()).await),
                None => None,
            };
            found.push(Found {
                identity: Value::object([
                    ("workspace", Value::string(ws.clone())),
                    ("id", Value::string(item.id.to_string())),
                ]),
                display_name: format!(
                    "{} (id {}, {})",
                    item.name,
                    item.id,
                    item.state().unwrap_or("unknown")
                ),
                resource,
            });
        }
        gaps.report(diags);
        found
    }
}

/// The object `-generate-config-out` writes configuration from: the state an import starts from,
/// with `container` in place of `software` where the cluster runs the environment Coiled's client
/// made for an image.
async fn resource_object(
    coiled: &crate::provider::Coiled,
    op: &Op,
    ws: &str,
    d: &ClusterDetails,
    account: Option<&RuleSet>,
) -> Value {
    // `terraform query` prints the object whole, sensitive or not: the dashboard's URL, which
    // carries its token, is left out (the import reads it).
    let mut listed =
        ClusterModel { dashboard_address: Field::Null, ..imported_state(d, account, ws) };
    if let Some(software) = listed.software.known()
        && let Some(image) = container_of(coiled, op, ws, software).await
    {
        listed.container = Field::Known(image);
        listed.software = Field::Null;
    }
    listed.encode()
}

/// The image `software` was made from, when `software` is the environment Coiled's client makes for
/// it (`create_software_environment` for `Cluster(container=...)`, named by `container_env_name`):
/// read from the environment's newest spec, as `coiled env inspect` reads it (two requests, only
/// for a name of that form). `None` when it is not, or cannot be read: the configuration then names
/// the environment, which runs the same software.
async fn container_of(
    coiled: &crate::provider::Coiled,
    op: &Op,
    ws: &str,
    software: &str,
) -> Option<String> {
    let bare = software.rsplit('/').next().unwrap_or(software);
    if !super::request::looks_like_container_env(bare) {
        return None;
    }
    let alias = coiled.client.software_alias(op, ws, bare).await.ok()?;
    let spec = coiled.client.software_spec(op, ws, alias.latest_spec?.id?).await.ok()?;
    spec.container.filter(|image| super::request::container_env_named(image, bare))
}

/// Reads the details of the clusters listed without a state (as Coiled's CLI allows) that pass the
/// name filter, to learn their state, so that a status filter (or the default of clusters not
/// ended) can judge them: the details read, by id; `None` after an error, reported.
async fn learn_states(
    coiled: &crate::provider::Coiled,
    op: &Op,
    ws: &str,
    items: &mut [ClusterListItem],
    q: &ClusterQuery,
    gaps: &mut Gaps,
    diags: &mut Diagnostics,
) -> Option<BTreeMap<i64, ClusterDetails>> {
    let mut read = BTreeMap::new();
    let unknown = items.iter_mut().filter(|i| i.state().is_none() && named(i, q));
    for item in unknown {
        if gaps.reads == MAX_TAG_READS {
            break;
        }
        gaps.reads += 1;
        match coiled.client.get_cluster(op, ws, item.id).await {
            Ok(d) => {
                item.current_state =
                    Some(crate::api::ListedState { state: Some(d.current_state.state.clone()) });
                read.insert(item.id, d);
            }
            Err(e) if e.is_not_found() => {}
            Err(e) => return coiled.failed(diags, "Unable to Read Cluster", None, &e),
        }
    }
    Some(read)
}

/// What a query could not see, each said once as a warning.
#[derive(Default)]
struct Gaps {
    /// The list was read to its end.
    complete: bool,
    listed: usize,
    /// Listed without a state (Coiled's CLI shows them as `unknown`): left out.
    stateless: usize,
    /// Details read for the `tags` filter or the resource.
    reads: usize,
    /// Clusters the `tags` filter did not read, past [`MAX_TAG_READS`].
    unchecked: usize,
    /// Clusters whose tags the server did not report.
    untagged: usize,
}

impl Gaps {
    fn report(&self, diags: &mut Diagnostics) {
        if !self.complete {
            diags.warning(
                "Cluster List Not Read to the End",
                format!(
                    "The workspace lists more than {} clusters; the query read the newest {} and \
                        left the rest out.",
                    LIST_CEILING_PAGES * 100,
                    self.listed
                ),
            );
        }
        if self.stateless > 0 {
            diags.warning(
                "Clusters Listed Without a State",
                format!(
                    "{} listed cluster(s) had no state (Coiled's CLI shows them as `unknown`) \
                    and were not read within the query's {MAX_TAG_READS} reads of details, so no \
                    status filter could match them; they are left out. Narrow the query with \
                    `name_prefix`.",
                    self.stateless
                ),
            );
        }
        if self.unchecked > 0 {
            diags.warning_at(
                AttrPath::attr("tags"),
                "Tags Not Checked",
                format!(
                    "The `tags` filter reads each cluster's details (one request each) and \
                    stops after {MAX_TAG_READS}: {} more cluster(s) that passed the other filters \
                    were not checked and are left out. Narrow the query with `status` or \
                    `name_prefix`.",
                    self.unchecked
                ),
            );
        }
        if self.untagged > 0 {
            diags.warning_at(
                AttrPath::attr("tags"),
                "Tags Not Reported",
                format!(
                    "The server reported no tags for {} cluster(s) (Coiled's client reads \
                    none), so they could not be matched and are left out.",
                    self.untagged
                ),
            );
        }
    }
}
