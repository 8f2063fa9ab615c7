//! Ephemeral resource `coiled_cluster_connection` (Terraform 1.10 and later): what a Dask client
//! needs to connect to a running cluster — the address to use, the dashboard, and the cluster's TLS
//! certificate and key — read where Coiled's client reads them (`_security` in
//! `coiled/v2/core.py`), and never written to a plan or state.

use std::sync::Arc;

use async_trait::async_trait;
use tfplugin::diag::Diagnostics;
use tfplugin::framework::{Ctx, EphemeralResource};
use tfplugin::model::Field;
use tfplugin::schema::Schema;
use tfplugin::value::Value;

use super::super::{ProviderData, lookup_name, workspace_slug};
use super::data_source::{address, cluster_id, lookup};

const DESCRIPTION: &str = "What a Dask client needs to connect to a running cluster: the scheduler address to \
    use, the dashboard, and the cluster's TLS certificate and key, read as Coiled's client reads them. \
    Ephemeral: never stored in a plan or state (Terraform 1.10 and later). Give `id`, or `name` (and \
    `workspace`).";

tfplugin::model! {
    /// The connection's arguments and values.
    pub struct Connection {
        /// Coiled's numeric cluster id.
        #[attribute(optional_computed, validated(cluster_id))]
        id: String,
        /// The name of a running cluster.
        #[attribute(optional_computed, validated(lookup_name))]
        name: String,
        /// Its workspace; defaults to the provider's.
        #[attribute(optional_computed, validated(workspace_slug))]
        workspace: String,
        /// Connect to the scheduler's public address (`true`, the default, when it has one) or its
        /// private one (`false`).
        #[attribute(optional)]
        use_scheduler_public_ip: bool,
        /// The address to connect to, `tls://IP:PORT`.
        #[attribute(computed)]
        scheduler_address: String,
        /// The dashboard's URL. Sensitive: an HTTPS dashboard's URL carries its access token.
        #[attribute(computed, sensitive)]
        dashboard_address: String,
        /// The cluster's certificate (PEM): the client's certificate and the CA to trust.
        #[attribute(computed, sensitive)]
        tls_cert: String,
        /// The key of that certificate (PEM).
        #[attribute(computed, sensitive)]
        tls_key: String,
    }
}

/// `coiled_cluster_connection`.
pub struct ClusterConnection {
    pub(crate) data: Arc<ProviderData>,
}

#[async_trait]
impl EphemeralResource for ClusterConnection {
    fn type_name(&self) -> &'static str {
        "coiled_cluster_connection"
    }

    fn schema(&self) -> Schema {
        Schema { version: 0, block: Connection::schema_block(DESCRIPTION) }
    }

    async fn validate(&self, _ctx: &Ctx, config: &Value, diags: &mut Diagnostics) {
        Connection::check_values(config, diags);
        let c = Connection::decode(config);
        if c.id.is_null() && c.name.is_null() {
            diags.error("Cluster Not Identified", "Give the cluster's `id`, or its `name`.");
        }
    }

    async fn open(&self, ctx: &Ctx, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let mut c = Connection::decode(config);
        let (ws, d) = lookup(&self.data, ctx, [&c.workspace, &c.id, &c.name], diags).await?;
        // As `_security`: only a started scheduler can be connected to.
        let started = d.scheduler.as_ref().is_some_and(|s| s.current_state.state == "started");
        if !started {
            diags.error(
                "Cluster Not Ready",
                format!(
                    "Cluster {} ({}) has no started scheduler yet (it is {}); connect once it is \
                        ready.",
                    d.id, d.name, d.current_state.state
                ),
            );
            return None;
        }
        let (Some(cert), Some(key)) = (d.tls_cert(), d.tls_key()) else {
            diags.error(
                "No TLS Material",
                format!("Coiled returned no certificate for cluster {}.", d.id),
            );
            return None;
        };
        let chosen = address(&d, &c.use_scheduler_public_ip, "Cannot connect: ", diags)?;
        c.id = Field::Known(d.id.to_string());
        c.name = Field::Known(d.name.clone());
        c.workspace = Field::Known(ws);
        c.scheduler_address = Field::from_option(chosen);
        c.dashboard_address =
            Field::from_option(d.scheduler.as_ref().and_then(|s| s.dashboard_address.clone()));
        c.tls_cert = Field::Known(cert.to_string());
        c.tls_key = Field::Known(key.to_string());
        Some(c.encode())
    }
}
