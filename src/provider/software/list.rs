//! List resource `coiled_software_environment` (Terraform 1.14 and later): a workspace's software
//! environments, by name prefix. API calls: `GET …/alias` (the list, as
//! `coiled.list_software_environments` pages it), and with `include_resource`, `GET
//! …/alias/name/{name}` for each result.

use std::sync::Arc;

use async_trait::async_trait;
use tfplugin::diag::Diagnostics;
use tfplugin::framework::Ctx;
use tfplugin::query::{Found, ListResource};
use tfplugin::schema::Schema;
use tfplugin::value::Value;

use super::super::{DEFAULT_API_TIMEOUT, ProviderData, workspace_slug};
use super::SoftwareEnvModel;

tfplugin::model! {
    /// The list block's `config`.
    struct SoftwareQuery {
        /// Workspace to search. Defaults to the provider's workspace.
        #[attribute(optional, validated(workspace_slug))]
        workspace: String,
        /// Only environments whose name starts with this.
        #[attribute(optional)]
        name_prefix: String,
    }
}

pub struct SoftwareEnvList {
    pub(crate) data: Arc<ProviderData>,
}

#[async_trait]
impl ListResource for SoftwareEnvList {
    fn type_name(&self) -> &'static str {
        "coiled_software_environment"
    }

    fn schema(&self) -> Schema {
        let description =
            "Finds a workspace's software environments, including ones made outside Terraform.";
        Schema { version: 0, block: SoftwareQuery::schema_block(description) }
    }

    async fn list(
        &self,
        ctx: &Ctx,
        config: &Value,
        include_resource: bool,
        limit: usize,
        diags: &mut Diagnostics,
    ) -> Vec<Found> {
        let q = SoftwareQuery::decode(config);
        let session = self.data.session(ctx, DEFAULT_API_TIMEOUT, q.workspace.as_deref(), diags);
        let Some((coiled, op, ws)) = session.await else { return Vec::new() };
        let aliases = coiled.client.list_software_aliases(&op, &ws).await;
        let Some(aliases) =
            coiled.reported(aliases, diags, "Unable to List Software Environments", None)
        else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for name in aliases
            .into_iter()
            .filter_map(|a| a.name)
            .filter(|n| q.name_prefix.as_deref().is_none_or(|p| n.starts_with(p)))
        {
            if limit > 0 && found.len() >= limit {
                break;
            }
            let resource = if include_resource {
                match coiled.client.software_alias(&op, &ws, &name).await {
                    Ok(alias) => Some(
                        super::state_of(SoftwareEnvModel::default(), &ws, &name, &alias).encode(),
                    ),
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => {
                        coiled.report(diags, "Unable to Read Software Environment", None, &e);
                        break;
                    }
                }
            } else {
                None
            };
            found.push(Found {
                identity: Value::object([
                    ("workspace", Value::string(ws.clone())),
                    ("name", Value::string(name.clone())),
                ]),
                display_name: name,
                resource,
            });
        }
        found
    }
}
