//! Data source `coiled_backend_options`: a workspace's current backend options (never credentials).
//!
//! API call: `GET /api/v1/{ws}/backend_options/`.

use std::sync::Arc;

use async_trait::async_trait;

use super::super::ingress::RuleSet;
use super::super::{DEFAULT_API_TIMEOUT, ProviderData, workspace_slug};
use super::wire::{BackendOptionsModel, Network};
use tfplugin::diag::Diagnostics;
use tfplugin::framework::{Ctx, DataSource};
use tfplugin::model::Field;
use tfplugin::schema::{Attribute, Nesting, Presence, Schema};
use tfplugin::value::{AttrPath, Type, Value};

pub struct BackendOptionsDataSource {
    pub(crate) data: Arc<ProviderData>,
}

#[async_trait]
impl DataSource for BackendOptionsDataSource {
    fn type_name(&self) -> &'static str {
        "coiled_backend_options"
    }

    fn schema(&self) -> Schema {
        Schema { version: 0, block: BackendOptionsView::schema_block(DESCRIPTION) }
    }

    async fn read(&self, ctx: &Ctx, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let named = BackendOptionsView::decode(config).workspace.into_known();
        let (coiled, op, ws) =
            self.data.session(ctx, DEFAULT_API_TIMEOUT, named.as_deref(), diags).await?;
        let server = coiled.client.get_backend_options(&op, &ws).await;
        let at = Some(AttrPath::attr("workspace"));
        let server = coiled.reported(server, diags, "Unable to Read Backend Options", at)?;
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
            ingress: Field::from_option(rules.as_ref().map(|r| Value::List(r.objects()))),
            uses_coiled_default_ingress: Field::from_option(rules.as_ref().map(RuleSet::is_empty)),
        };
        Some(view.encode())
    }
}

const DESCRIPTION: &str = "Reads a workspace's account-level backend options: cloud, region, network and the \
    default ingress rules of new clusters. Credentials are never returned.";

tfplugin::model! {
    /// `data.coiled_backend_options`'s configuration and result.
    struct BackendOptionsView {
        /// Workspace to read. Defaults to the provider's workspace.
        #[attribute(optional_computed, validated(workspace_slug))]
        workspace: String,
        /// The workspace slug.
        #[attribute(computed)]
        id: String,
        /// Cloud provider: `aws` or `gcp`.
        #[attribute(computed)]
        backend: String,
        /// Cloud region for clusters, when set.
        #[attribute(computed)]
        region: String,
        /// Availability zone for clusters, when set.
        #[attribute(computed)]
        zone: String,
        /// GCP project, for the `gcp` backend.
        #[attribute(computed)]
        gcp_project_id: String,
        /// Bring-your-own network settings, when set.
        #[attribute(with = network_attribute)]
        network: Network,
        /// The default ingress rules of new clusters; empty when none are set, null when the server
        /// does not report them.
        #[attribute(with = ingress_attribute)]
        ingress: Value,
        /// `true` when the workspace sets no ingress rules, so that a new cluster without rules of
        /// its own gets Coiled's default firewall: the scheduler and dashboard ports open to any
        /// address (port 443 on current Coiled; 8786 and 8787 on older releases). Set ingress in
        /// `coiled_backend_options`, or on the cluster, to restrict it. Null when the server does
        /// not report the rules.
        #[attribute(computed)]
        uses_coiled_default_ingress: bool,
    }
}

/// The `network` attribute: the resource's `network` block, read only.
fn network_attribute(name: &'static str, description: &'static str) -> Attribute {
    let computed = |name, d| Attribute::computed(name, Type::String, d);
    let attributes = vec![
        computed("network_id", "Existing VPC or network."),
        computed("scheduler_subnet_id", "Existing scheduler subnet."),
        computed("worker_subnet_id", "Existing worker subnet."),
        computed("firewall_id", "Existing security group or firewall."),
    ];
    Attribute::nested(name, Nesting::Single, attributes, Presence::Computed, description)
}

/// The `ingress` attribute: the rules as the resource's `ingress` blocks hold them, read only, in
/// canonical order. A list, not a set: Terraform 1.0.0 to 1.0.4 crash rendering a set of nested
/// attributes that is unknown, as it is when the read waits for the apply.
fn ingress_attribute(name: &'static str, description: &'static str) -> Attribute {
    let attributes = vec![
        Attribute::computed("ports", Type::set(Type::Number), "TCP ports."),
        Attribute::computed("cidr", Type::String, "Source CIDR block."),
    ];
    Attribute::nested(name, Nesting::List, attributes, Presence::Computed, description)
}

/// The data source model's attributes (for the schema check).
#[cfg(test)]
pub(crate) const MODEL_ATTRIBUTES: &[&str] = BackendOptionsView::ATTRIBUTES;
