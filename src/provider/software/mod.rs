//! `coiled_software_environment`: a Coiled software environment, as
//! `coiled.create_software_environment(...)` makes it, from a container image or a package spec
//! (`conda`, `pip`).
//!
//! API calls (under `/api/v2/software-environment/account/{ws}`): `POST` (create, and a new build
//! of the same name on update), `GET build/{id}` (waiting), `GET build/logs/{id}` (a failure's
//! log), `GET alias/name/{name}` (read, import) and `DELETE alias/name/{name}` (destroy). Files:
//! this one (schema, plan, CRUD), [`model`], [`spec`] (the package spec as the client builds it),
//! [`build`] (waiting and logs), [`validate`], [`data_source`].

pub mod build;
pub mod data_source;
mod lifecycle;
pub mod list;
pub mod model;
pub mod spec;
mod validate;

use std::sync::Arc;

use async_trait::async_trait;
use tfplugin::diag::Diagnostics;
use tfplugin::framework::{Ctx, NewState, Plan, Private, Read, Resource};
use tfplugin::model::Field;
use tfplugin::schema::Schema;
use tfplugin::value::{AttrPath, Value};

use super::{Coiled, DEFAULT_API_TIMEOUT, ProviderData};
use crate::api::{Op, SoftwareAlias, SoftwareBuild};
use model::{Marks, SoftwareEnvModel, id_field};

pub struct SoftwareEnvResource {
    pub(crate) data: Arc<ProviderData>,
}

const DESCRIPTION: &str = "A Coiled software environment, as `coiled.create_software_environment(...)` makes \
    it: from a container image, or from conda and pip packages. Creating waits for its \
    build and never takes over an environment of the same name it did not make. A failed \
    build is reported with the end of the build's log: a rebuild fails the apply, and a \
    failed first build is a warning, so that the environment stays in state, not \
    tainted, and the next apply builds it again in place.\n\n\
    A change to the image or the packages (or any build setting) builds the same \
    environment again in place, as the client does when called again with the same name; \
    `name` and `workspace` replace it.";

#[async_trait]
impl Resource for SoftwareEnvResource {
    type Model = SoftwareEnvModel;

    fn type_name(&self) -> &'static str {
        "coiled_software_environment"
    }

    fn identity(&self) -> Option<tfplugin::identity::IdentitySchema> {
        Some(tfplugin::identity::IdentitySchema::required_strings(&[
            ("workspace", "The environment's workspace."),
            ("name", "The environment's name."),
        ]))
    }

    fn schema(&self) -> Schema {
        Schema { version: 0, block: SoftwareEnvModel::schema_block(DESCRIPTION) }
    }

    async fn validate(&self, _ctx: &Ctx, config: &Value, diags: &mut Diagnostics) {
        validate::validate_config(config, diags);
    }

    async fn modify_plan(
        &self,
        ctx: &Ctx,
        plan: &mut Plan<SoftwareEnvModel>,
        diags: &mut Diagnostics,
    ) {
        let (config, prior) = (&plan.config, &plan.prior);
        let mut planned = plan.planned.clone();
        let mut predicted: Vec<&'static str> = Vec::new();
        // A new environment needs an image or packages to build; the client's defaults are
        // declared on the model.
        if plan.is_create() && !config.has_spec() {
            let missing = validate::MISSING_SPEC;
            diags.error_at(AttrPath::attr("container"), "Missing Software Spec", missing);
            return;
        }
        let marks = Marks::read(&plan.private);
        if !plan.is_create() {
            // Without a rebuild they keep their values (timeouts change in state only).
            predicted.extend(["spec_id", "build_id", "status"]);
        }
        if plan.is_create() {
            if let Some(ws) = self.data.planned_workspace(&config.workspace).await {
                planned.workspace = Field::Known(ws);
                predicted.push("workspace");
            }
        } else if marks.imported {
            // What the spec echoes agrees (or it echoes nothing to compare): the configuration's
            // spec is taken as it is, with no build; else it is built, in place.
            plan.private = Vec::new();
            if import_contradicted(&planned, &marks, diags) {
                planned.spec_id = Field::Unknown;
                planned.build_id = Field::Unknown;
                planned.status = Field::Unknown;
            }
        } else {
            let rebuild = prior.spec_changes(&planned)
                || marks.latest_spec.is_some()
                || prior.status.as_deref() == Some("error");
            if let Some(latest) = marks.latest_spec {
                diags.warning(
                    "Software Environment Changed Outside Terraform",
                    format!(
                        "Software environment {:?} now has spec {latest}, not spec {} that this \
                            configuration built. Applying builds the configured spec again.",
                        prior.name.as_deref().unwrap_or("?"),
                        prior.spec_id.as_deref().unwrap_or("?")
                    ),
                );
            } else if prior.status.as_deref() == Some("error") && !prior.spec_changes(&planned) {
                diags.warning(
                    "Software Environment Build Failed Before",
                    "The last build of this spec failed. Applying asks Coiled to build it again; \
                        change the spec if it fails for a reason in the spec itself.",
                );
            }
            if rebuild && !config.has_spec() {
                diags.error_at(
                    AttrPath::attr("container"),
                    "Missing Software Spec",
                    validate::MISSING_SPEC,
                );
                return;
            }
            if rebuild {
                planned.spec_id = Field::Unknown;
                planned.build_id = Field::Unknown;
                planned.status = Field::Unknown;
            } else if prior.status.as_deref().is_some_and(|s| !build::ended(s)) {
                // A build whose wait ended early (Ctrl-C, timeout): apply waits for it in place.
                planned.status = Field::Unknown;
            }
        }
        let changes = plan.is_create() || !planned.encode().same_as(&prior.encode());
        plan.planned = planned;
        for name in predicted {
            plan.mark_predicted(name);
        }
        if !diags.has_errors() && changes {
            let (configured, planned_ws) =
                (&plan.config.workspace, plan.planned.workspace.as_deref());
            self.data.check_plan_access(ctx, configured, planned_ws, diags).await;
        }
    }

    async fn create(
        &self,
        ctx: &Ctx,
        mut planned: SoftwareEnvModel,
        _config: SoftwareEnvModel,
        diags: &mut Diagnostics,
    ) -> Option<NewState<SoftwareEnvModel>> {
        let coiled = self.data.require(diags).await?;
        let op = Op::new(planned.timeout(|t| &t.create), ctx.stop.clone());
        let ws = coiled.workspace_for(&op, planned.workspace.as_deref(), diags).await?;
        planned.workspace = Field::Known(ws.clone());
        if !lifecycle::name_is_free(&coiled, &op, &ws, planned.name.as_deref()?, diags).await {
            return None;
        }
        self.build(&coiled, &op, &ws, planned, true, diags).await
    }

    async fn read(
        &self,
        ctx: &Ctx,
        mut state: SoftwareEnvModel,
        private: &Private,
        diags: &mut Diagnostics,
    ) -> Option<Read<SoftwareEnvModel>> {
        let coiled = match self.data.coiled(diags).await {
            Ok(Some(c)) => c,
            Ok(None) => return Some(Read::Found(NewState { state, private: private.clone() })),
            Err(()) => return None,
        };
        let op = Op::new(DEFAULT_API_TIMEOUT, ctx.stop.clone());
        let (ws, name) = (state.workspace.known()?.clone(), state.name.known()?.clone());
        let alias = match coiled.client.software_alias(&op, &ws, &name).await {
            Ok(a) => a,
            Err(e) if e.is_not_found() => {
                diags.warning(
                    "Software Environment No Longer Exists",
                    format!(
                        "Software environment {name:?} of workspace {ws:?} was deleted \
                        outside Terraform. It has been removed from state; the next apply creates \
                        it again."
                    ),
                );
                return Some(Read::Gone);
            }
            Err(e) => return coiled.failed(diags, "Unable to Read Software Environment", None, &e),
        };
        let mut marks = Marks::read(private);
        if let (Some(found), Some(ours)) = (alias.id, state.id.as_deref())
            && found.to_string() != ours
        {
            // Ours: deleted and made again by someone else; it is theirs, never taken over.
            diags.warning(
                "Software Environment Replaced Outside Terraform",
                format!(
                    "Software environment {name:?} of workspace {ws:?} is now id {found}, not \
                    id {ours} that Terraform manages: it was deleted and made again outside \
                    Terraform. It has been removed from state and is left alone; the next apply \
                    refuses to build over it (import it to manage it)."
                ),
            );
            return Some(Read::Gone);
        }
        if alias.id.is_some() {
            state.id = id_field(alias.id);
        }
        let latest = alias.latest_spec.as_ref().and_then(|s| s.id);
        marks.latest_spec =
            latest.filter(|l| state.spec_id.as_deref().is_some_and(|s| *s != l.to_string()));
        if marks.latest_spec.is_none()
            && let Some(build) = state.build_id.as_deref().and_then(|b| b.parse::<i64>().ok())
        {
            let summary = "Unable to Read Software Environment Build";
            match coiled.client.software_build(&op, &ws, build).await {
                Ok(b) => state.status = Field::Known(b.state),
                Err(e) if e.is_not_found() => {}
                Err(e) => return coiled.failed(diags, summary, None, &e),
            }
        }
        Some(Read::Found(NewState { state, private: marks.write() }))
    }

    async fn update(
        &self,
        ctx: &Ctx,
        prior: SoftwareEnvModel,
        planned: SoftwareEnvModel,
        _config: SoftwareEnvModel,
        _private: &Private,
        diags: &mut Diagnostics,
    ) -> Option<NewState<SoftwareEnvModel>> {
        let unfinished = prior
            .build_id
            .as_deref()
            .and_then(|b| b.parse::<i64>().ok())
            .filter(|_| planned.status.is_unknown());
        if !planned.spec_id.is_unknown() && unfinished.is_none() {
            // Timeouts, or an unreadable imported spec taken from the configuration: no API call.
            return Some(NewState { state: planned.known_from(&prior), private: Vec::new() });
        }
        let coiled = self.data.require(diags).await?;
        let op = Op::new(planned.timeout(|t| &t.update), ctx.stop.clone());
        let ws = prior.workspace.known()?.clone();
        if let Some(id) = unfinished.filter(|_| !planned.spec_id.is_unknown()) {
            // A build whose wait ended early: waited for in place, not asked for again.
            let state = planned.known_from(&prior);
            let first = SoftwareBuild {
                id,
                state: prior.status.known().cloned().unwrap_or_default(),
                reason: None,
            };
            return Some(
                lifecycle::wait_for_build(&coiled, &op, &ws, state, first, false, diags).await,
            );
        }
        self.build(&coiled, &op, &ws, planned, false, diags).await
    }

    async fn delete(
        &self,
        ctx: &Ctx,
        prior: SoftwareEnvModel,
        _private: &Private,
        diags: &mut Diagnostics,
    ) {
        let Some(coiled) = self.data.require(diags).await else { return };
        let op = Op::new(DEFAULT_API_TIMEOUT, ctx.stop.clone());
        let (Some(ws), Some(name)) = (prior.workspace.as_deref(), prior.name.as_deref()) else {
            return;
        };
        lifecycle::delete_if_ours(&coiled, &op, ws, name, prior.id.as_deref(), diags).await;
    }

    async fn import(
        &self,
        ctx: &Ctx,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Option<NewState<SoftwareEnvModel>> {
        let coiled = self.data.require(diags).await?;
        let op = Op::new(DEFAULT_API_TIMEOUT, ctx.stop.clone());
        let (ws, name) = match id.split_once('/') {
            Some((ws, name)) if !ws.is_empty() && !name.is_empty() && !name.contains('/') => {
                (ws.to_string(), name.to_string())
            }
            None if !id.is_empty() => {
                (coiled.workspace_for(&op, None, diags).await?, id.to_string())
            }
            _ => {
                diags.error(
                    "Invalid Import ID",
                    format!("{id:?} is not an import ID: use NAME or WORKSPACE/NAME."),
                );
                return None;
            }
        };
        let alias = match coiled.client.software_alias(&op, &ws, &name).await {
            Ok(a) => a,
            Err(e) if e.is_not_found() => {
                diags.error(
                    "Software Environment Not Found",
                    format!("No software environment {name:?} in workspace {ws:?}."),
                );
                return None;
            }
            Err(e) => {
                return coiled.failed(diags, "Unable to Import Software Environment", None, &e);
            }
        };
        let state = state_of(SoftwareEnvModel::default(), &ws, &name, &alias);
        // The spec as `Cloud._get_software_info` reads it, to check the configuration against; one
        // that cannot be read is not checked (the first plan says so).
        let imported_spec = match alias.latest_spec.as_ref().and_then(|s| s.id) {
            Some(id) => coiled.client.software_spec(&op, &ws, id).await.ok(),
            None => None,
        };
        let marks = Marks { imported: true, latest_spec: None, imported_spec };
        Some(NewState { state, private: marks.write() })
    }
}

/// `base` with what an alias (as the create answers it) reports.
pub(super) fn state_of(
    mut base: SoftwareEnvModel,
    ws: &str,
    name: &str,
    alias: &SoftwareAlias,
) -> SoftwareEnvModel {
    base.workspace = Field::Known(ws.to_string());
    base.name = Field::Known(name.to_string());
    base.id = id_field(alias.id);
    let spec = alias.latest_spec.as_ref();
    base.spec_id = id_field(spec.and_then(|s| s.id));
    let build = spec.and_then(|s| s.latest_build.as_ref());
    base.build_id = id_field(build.map(|b| b.id));
    base.status = Field::from_option(build.map(|b| b.state.clone()));
    base
}

impl SoftwareEnvResource {
    /// Asks for a build of `planned` and waits for it; the state of what exists comes back even
    /// when the build fails or the wait is cut short (with an error).
    async fn build(
        &self,
        coiled: &Coiled,
        op: &Op,
        ws: &str,
        planned: SoftwareEnvModel,
        creating: bool,
        diags: &mut Diagnostics,
    ) -> Option<NewState<SoftwareEnvModel>> {
        let name = planned.name.known()?.clone();
        let body = planned
            .request()
            .map_err(|why| diags.error_at(AttrPath::attr("conda"), "Incomplete Software Spec", why))
            .ok()?;
        tracing::info!(workspace = %ws, name = %name, "creating software environment");
        let alias = coiled.client.create_software_env(op, ws, &body).await;
        let alias = coiled.reported(alias, diags, "Unable to Create Software Environment", None)?;
        let state = state_of(planned, ws, &name, &alias);
        let Some(first) = alias.latest_spec.and_then(|s| s.latest_build) else {
            return Some(NewState { state, private: Vec::new() });
        };
        Some(lifecycle::wait_for_build(coiled, op, ws, state, first, creating, diags).await)
    }
}

/// Whether the configuration contradicts the spec of the environment it imported (a warning says
/// which settings, and that it is built again in place); an import whose spec says nothing to
/// compare is taken as configured, with a warning that it could not be checked.
fn import_contradicted(planned: &SoftwareEnvModel, marks: &Marks, diags: &mut Diagnostics) -> bool {
    let name = planned.name.as_deref().unwrap_or("?");
    match marks.imported_spec.as_ref().and_then(|spec| planned.contradicted_by(spec)) {
        Some(differ) if !differ.is_empty() => {
            diags.warning(
                "Imported Software Environment Differs",
                format!(
                    "Software environment {name:?} was built with another {} than this \
                    configuration gives: applying builds the configured spec, in place.",
                    differ.join(", ")
                ),
            );
            true
        }
        Some(_) => false,
        None if planned.has_spec() => {
            diags.warning(
                "Imported Software Environment Not Checked",
                format!(
                    "Coiled did not report what software environment {name:?} was built from, \
                    so it cannot be checked against this configuration: the configuration's spec \
                    is taken as it is, with no build. Apply with `-replace` to build it as \
                    configured."
                ),
            );
            false
        }
        None => false,
    }
}
