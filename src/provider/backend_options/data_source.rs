//! Data source `coiled_backend_options`: a workspace's current backend options (never credentials).
//!
//! API call: `GET /api/v1/{ws}/backend_options/`.

use std::sync::Arc;

use async_trait::async_trait;

use super::super::ingress::RuleSet;
use super::super::{DEFAULT_API_TIMEOUT, ProviderData};
use super::wire::{BackendOptionsModel, Network};
use crate::api::Op;
use tfplugin::diag::Diagnostics;
use tfplugin::framework::{Ctx, DataSource};
use tfplugin::model::Field;
use tfplugin::schema::{Attribute, Block, Nesting, Presence, Schema};
use tfplugin::value::{AttrPath, Type, Value};

/// The data source.
pub struct BackendOptionsDataSource {
    data: Arc<ProviderData>,
}

impl BackendOptionsDataSource {
    /// The data source, sharing the provider's configuration.
    pub fn new(data: Arc<ProviderData>) -> BackendOptionsDataSource {
        BackendOptionsDataSource { data }
    }
}

#[async_trait]
impl DataSource for BackendOptionsDataSource {
    fn type_name(&self) -> &'static str {
        "coiled_backend_options"
    }

    fn schema(&self) -> Schema {
        let computed = |name, d| Attribute::computed(name, Type::String, d);
        Schema {
            version: 0,
            block: Block {
                description: "Reads a workspace's account-level backend options: cloud, region, network and the default ingress rules of new clusters. Credentials are never returned.",
                attributes: vec![
                    Attribute::optional_computed("workspace", Type::String, "Workspace to read. Defaults to the provider's workspace."),
                    computed("id", "The workspace slug."),
                    computed("backend", "Cloud provider: `aws` or `gcp`."),
                    computed("region", "Cloud region for clusters, when set."),
                    computed("zone", "Availability zone for clusters, when set."),
                    computed("gcp_project_id", "GCP project, for the `gcp` backend."),
                    Attribute::nested(
                        "network",
                        Nesting::Single,
                        vec![
                            computed("network_id", "Existing VPC or network."),
                            computed("scheduler_subnet_id", "Existing scheduler subnet."),
                            computed("worker_subnet_id", "Existing worker subnet."),
                            computed("firewall_id", "Existing security group or firewall."),
                        ],
                        Presence::Computed,
                        "Bring-your-own network settings, when set.",
                    ),
                    Attribute::nested(
                        "ingress",
                        Nesting::Set,
                        vec![Attribute::computed("ports", Type::set(Type::Number), "TCP ports."), computed("cidr", "Source CIDR block.")],
                        Presence::Computed,
                        "The default ingress rules of new clusters; empty when none are set, null when the server does not report them.",
                    ),
                    Attribute::computed(
                        "uses_coiled_default_ingress",
                        Type::Bool,
                        "`true` when the workspace sets no ingress rules, so that a new cluster without rules of its own gets Coiled's default firewall: the scheduler and dashboard ports open to any address (port 443 on current Coiled; 8786 and 8787 on older releases). Set ingress in `coiled_backend_options`, or on the cluster, to restrict it. Null when the server does not report the rules.",
                    ),
                ],
                blocks: vec![],
            },
        }
    }

    async fn read(&self, ctx: &Ctx, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let coiled = self.data.require(diags).await?;
        let op = Op::new(DEFAULT_API_TIMEOUT, ctx.stop.clone());
        let ws = match BackendOptionsView::decode(config).workspace.into_known() {
            Some(ws) => ws,
            None => match coiled.workspace(&op).await {
                Ok(ws) => ws,
                Err(e) => {
                    coiled.report(diags, "Unable to Determine Workspace", Some(AttrPath::attr("workspace")), &e);
                    return None;
                }
            },
        };
        let server = match coiled.client.get_backend_options(&op, &ws).await {
            Ok(s) => s,
            Err(e) => {
                coiled.report(diags, "Unable to Read Backend Options", Some(AttrPath::attr("workspace")), &e);
                return None;
            }
        };
        // Read as the resource reads, then shown without credentials.
        let read = super::wire::state_from_server(&BackendOptionsModel::default(), &server);
        // Null, not empty, when the server does not report the rules at all.
        let rules = server.ingress().map(|w| RuleSet::from_wire(&w));
        let view = BackendOptionsView {
            workspace: Field::Known(ws.clone()),
            id: Field::Known(ws),
            backend: read.backend,
            region: read.region,
            zone: read.zone,
            gcp_project_id: read.gcp_project_id,
            network: read.network,
            ingress: Field::from_option(rules.as_ref().map(RuleSet::set_value)),
            uses_coiled_default_ingress: Field::from_option(rules.as_ref().map(RuleSet::is_empty)),
        };
        Some(view.encode())
    }
}

tfplugin::model! {
    /// `data.coiled_backend_options`'s configuration and result.
    struct BackendOptionsView {
        workspace: String,
        id: String,
        backend: String,
        region: String,
        zone: String,
        gcp_project_id: String,
        network: Network,
        ingress: Value,
        uses_coiled_default_ingress: bool,
    }
}

/// The data source model's attributes (for the schema check).
#[cfg(test)]
pub(crate) const MODEL_ATTRIBUTES: &[&str] = BackendOptionsView::ATTRIBUTES;
