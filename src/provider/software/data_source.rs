//! Data source `coiled_software_environment`: an existing software environment by name, as
//! `coiled.get_software_info` finds it (`GET …/alias/name/{name}`), with its latest build's state
//! (`GET …/build/{id}`) when the server reports the build.

use std::sync::Arc;

use async_trait::async_trait;
use tfplugin::diag::Diagnostics;
use tfplugin::framework::{Ctx, DataSource};
use tfplugin::model::Field;
use tfplugin::schema::Schema;
use tfplugin::value::{AttrPath, Value};

use super::super::{DEFAULT_API_TIMEOUT, ProviderData, lookup_name, workspace_slug};
use super::model::id_field;
use crate::api::Op;

pub struct SoftwareEnvDataSource {
    pub(crate) data: Arc<ProviderData>,
}

const DESCRIPTION: &str = "Reads an existing Coiled software environment by name: a check that it exists before \
    clusters name it, and the state of its latest build.";

tfplugin::model! {
    /// `data.coiled_software_environment`'s configuration and result.
    struct SoftwareEnvView {
        /// The environment's name.
        #[attribute(required, validated(lookup_name))]
        name: String,
        /// Its workspace. Defaults to the provider's workspace.
        #[attribute(optional_computed, validated(workspace_slug))]
        workspace: String,
        /// Coiled's id of the environment (its alias).
        #[attribute(computed)]
        id: String,
        /// Id of its latest spec.
        #[attribute(computed)]
        spec_id: String,
        /// Id of that spec's build, when the server reports it.
        #[attribute(computed)]
        build_id: String,
        /// State of that build (`queued`, `building`, `built` or `error`), when the server reports
        /// the build.
        #[attribute(computed)]
        status: String,
    }
}

/// The data source model's attributes (for the schema check).
#[cfg(test)]
pub(crate) const MODEL_ATTRIBUTES: &[&str] = SoftwareEnvView::ATTRIBUTES;

#[async_trait]
impl DataSource for SoftwareEnvDataSource {
    fn type_name(&self) -> &'static str {
        "coiled_software_environment"
    }

    fn schema(&self) -> Schema {
        Schema { version: 0, block: SoftwareEnvView::schema_block(DESCRIPTION) }
    }

    async fn read(&self, ctx: &Ctx, config: &Value, diags: &mut Diagnostics) -> Option<Value> {
        let coiled = self.data.require(diags).await?;
        let op = Op::new(DEFAULT_API_TIMEOUT, ctx.stop.clone());
        let mut view = SoftwareEnvView::decode(config);
        let name = view.name.known()?.clone();
        let ws = coiled.workspace_for(&op, view.workspace.as_deref(), diags).await?;
        let alias = match coiled.client.software_alias(&op, &ws, &name).await {
            Ok(a) => a,
            Err(e) if e.is_not_found() => {
                diags.error_at(
                    AttrPath::attr("name"),
                    "Software Environment Not Found",
                    format!("Workspace {ws:?} has no software environment {name:?}."),
                );
                return None;
            }
            Err(e) => {
                let at = Some(AttrPath::attr("name"));
                return coiled.failed(diags, "Unable to Read Software Environment", at, &e);
            }
        };
        let spec = alias.latest_spec.as_ref();
        let build = spec.and_then(|s| s.latest_build.as_ref());
        view.workspace = Field::Known(ws.clone());
        view.id = id_field(alias.id);
        view.spec_id = id_field(spec.and_then(|s| s.id));
        view.build_id = id_field(build.map(|b| b.id));
        view.status = Field::Null;
        if let Some(b) = build {
            let now = coiled.client.software_build(&op, &ws, b.id).await;
            let summary = "Unable to Read Software Environment Build";
            let now = coiled.reported(now, diags, summary, Some(AttrPath::attr("name")))?;
            view.status = Field::Known(now.state);
        }
        Some(view.encode())
    }
}
