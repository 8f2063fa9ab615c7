//! What a software environment's create, wait and delete decide from the server's answers: a name
//! someone else holds is never taken over, an alias is deleted only while it is still the one in
//! state, and a build that fails or is interrupted leaves state that the next apply finishes in
//! place.

use tfplugin::diag::Diagnostics;
use tfplugin::framework::NewState;
use tfplugin::model::Field;

use super::{SoftwareEnvModel, build};
use crate::api::{ApiError, Op, SoftwareBuild};
use crate::provider::Coiled;
use crate::provider::ownership::{self, Kind};

/// Software environments, as the rules of [`ownership`] name them.
const SOFTWARE_ENVIRONMENT: Kind = Kind {
    name_taken: "Software Environment Already Exists",
    noun: "software environment",
    why_left_alone: ": building it again with this configuration would replace what its owner \
        built",
    instead: "Choose another name",
    when_replacing: "the new environment cannot take the name while the old one exists: remove \
        `create_before_destroy`, or change the name with the spec",
};

/// Whether no environment holds `name` in `ws`, as `coiled.create_software_environment` would find
/// it (`Cloud._get_software_info`). Ours: an environment found is someone else's (state did not
/// hold it), so the create refuses it rather than rebuilding it with this configuration's spec; the
/// create that follows may then take what it gets, since the name was free a moment before
/// (rule `adopt-software`).
pub(super) async fn name_is_free(
    coiled: &Coiled,
    op: &Op,
    ws: &str,
    name: &str,
    diags: &mut Diagnostics,
) -> bool {
    match coiled.client.software_alias(op, ws, name).await {
        Err(e) if e.is_not_found() => true,
        Err(e) => {
            coiled.report(diags, "Unable to Create Software Environment", None, &e);
            false
        }
        Ok(found) => {
            ownership::refuse_taken_name(diags, &SOFTWARE_ENVIRONMENT, ws, name, found.id);
            false
        }
    }
}

/// Deletes the alias `name` only while it is still the environment in state (`id`): one deleted and
/// made again by someone else since is theirs, and is only forgotten, with a warning.
pub(super) async fn delete_if_ours(
    coiled: &Coiled,
    op: &Op,
    ws: &str,
    name: &str,
    id: Option<&str>,
    diags: &mut Diagnostics,
) {
    let found = match coiled.client.software_alias(op, ws, name).await {
        Ok(found) => found,
        Err(e) if e.is_not_found() => return,
        Err(e) => return coiled.report(diags, "Unable to Delete Software Environment", None, &e),
    };
    if let (Some(found), Some(ours)) = (found.id, id)
        && found.to_string() != ours
    {
        diags.warning(
            "Software Environment Not Deleted",
            format!(
                "Software environment {name:?} of workspace {ws:?} is now id {found}, not id \
                    {ours} that Terraform created: it was deleted and made again outside \
                    Terraform. It is left as it is and removed from state."
            ),
        );
        return;
    }
    tracing::info!(workspace = %ws, name = %name, "deleting software environment");
    match coiled.client.delete_software_alias(op, ws, name).await {
        Ok(()) => {}
        Err(e) if e.is_not_found() => {}
        Err(e) => coiled.report(diags, "Unable to Delete Software Environment", None, &e),
    }
}

/// Waits for `first`, the build a create or update asked for, and writes how it ended into `state`.
/// A failed build, an interrupted or timed-out wait, or a failed read keeps the environment in
/// state as it is. After a create they are warnings: an error would mark it tainted, and the next
/// apply would delete it and build it again, where it should build it again in place (a failed
/// build) or wait for the build under way (any other end).
pub(super) async fn wait_for_build(
    coiled: &Coiled,
    op: &Op,
    ws: &str,
    mut state: SoftwareEnvModel,
    first: SoftwareBuild,
    creating: bool,
    diags: &mut Diagnostics,
) -> NewState<SoftwareEnvModel> {
    let name = state.name.as_deref().unwrap_or("?").to_string();
    let mut report =
        |summary: &str, detail: String| ownership::unfinished(diags, creating, summary, detail);
    match build::wait(&coiled.client, op, ws, first).await {
        Ok(done) => {
            state.status = Field::Known(done.state.clone());
            if done.state == "error" {
                let tail = build::log_tail(&coiled.client, op, ws, done.id).await;
                let detail =
                    build::failure_detail(&format!("software environment {name:?}"), &done, &tail);
                let next = "\n\nThe environment is kept in state with `status = \"error\"`: the \
                    next apply builds it again in place.";
                report("Software Environment Build Failed", format!("{detail}{next}"));
            }
        }
        Err((e, last)) => {
            state.status = Field::Known(last.state.clone());
            let why = match &e {
                ApiError::Cancelled => "Terraform was interrupted".to_string(),
                _ => coiled.explain(&e),
            };
            report(
                "Software Environment Build Not Finished",
                format!(
                    "The wait for the build of software environment {name:?} ended before the \
                        build did ({why}); the build goes on at Coiled. The environment is kept \
                        in state with `status = {:?}`: the next apply waits for the build in \
                        place, and keeps it if it has finished.",
                    last.state
                ),
            );
        }
    }
    NewState { state, private: Vec::new() }
}
