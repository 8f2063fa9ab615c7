//! What a create asks the server before it sends the cluster, in the client's order: the
//! workspace's Dask configuration overrides (read when `coiled.Cluster` starts), the workspace's
//! backend options (for its cloud), both read once per workspace and provider process
//! ([`Coiled::workspace_facts`]), and for a container image the software environment made for it,
//! waited for until built as `Cloud._create_software_environment` waits.

use tfplugin::diag::Diagnostics;
use tfplugin::value::AttrPath;

use super::super::ingress::RuleSet;
use super::model::ClusterModel;
use super::request::{self, Overrides, Resolved};
use crate::api::Op;
use crate::provider::Coiled;
use crate::provider::software::build;

/// What [`prepare`] found.
pub(super) struct Prepared {
    pub resolved: Resolved,
    /// The workspace's account-level rules, where its backend options report them: what a cluster
    /// without rules of its own inherits.
    pub account_rules: Option<RuleSet>,
}

/// Reads what the create needs; a diagnostic names the attribute behind each failure.
pub(super) async fn prepare(
    coiled: &Coiled,
    op: &Op,
    ws: &str,
    planned: &ClusterModel,
    diags: &mut Diagnostics,
) -> Option<Prepared> {
    let facts = coiled.workspace_facts(op, ws).await;
    let facts = facts.map_err(|(title, e)| coiled.report(diags, title, None, &e)).ok()?;
    let overrides = match &facts.overrides {
        Some(o) => Overrides(o.clone()),
        None => {
            // As Coiled's client, which does not check this answer's status: no overrides.
            diags.warning(
                "Workspace Dask Configuration Not Read",
                format!(
                    "Coiled answered the request for workspace {ws:?}'s Dask \
                    configuration overrides with an error, which Coiled's client ignores too: \
                    the cluster is created without them."
                ),
            );
            Overrides(Default::default())
        }
    };
    let backend = &facts.backend;
    let provider = backend.provider_name().unwrap_or_default();
    let types = request::vm_types(planned, &provider, &overrides).map_err(|why| {
        diags.error_at(
            AttrPath::attr("worker_vm_types"),
            "No Default VM Types",
            format!(
                "Coiled's client takes default VM types from the workspace's cloud, \
                    but {why}. Set `worker_vm_types` and `scheduler_vm_types`, or set up the \
                    workspace's cloud (`coiled_backend_options`)."
            ),
        )
    });
    let (worker_vm_types, scheduler_vm_types) = types.ok()?;
    if let Some(why) =
        request::arm_mismatch(planned, &provider, worker_vm_types.iter().chain(&scheduler_vm_types))
    {
        diags.error_at(AttrPath::attr("arm"), "Architecture Does Not Match the VM Types", why);
        return None;
    }
    let env_name = match (planned.container.known(), planned.software.known()) {
        (Some(image), _) => {
            let arch =
                request::architecture(&provider, worker_vm_types.iter().chain(&scheduler_vm_types));
            let body =
                request::container_env_body(image, arch, planned.backend().region.known().cloned());
            build_container_env(coiled, op, ws, &body, diags).await?;
            body.name
        }
        (None, Some(name)) => name.clone(),
        (None, None) => {
            diags.error_at(
                AttrPath::attr("software"),
                "Missing Software Environment",
                MISSING_SOFTWARE,
            );
            return None;
        }
    };
    let account_rules = backend.ingress().map(|w| RuleSet::from_wire(&w));
    Some(Prepared {
        resolved: Resolved { worker_vm_types, scheduler_vm_types, env_name, overrides },
        account_rules,
    })
}

/// Makes the software environment for a container image and waits until its build ends; a failed
/// build is reported with the end of its log.
async fn build_container_env(
    coiled: &Coiled,
    op: &Op,
    ws: &str,
    body: &crate::api::CreateSoftwareEnv,
    diags: &mut Diagnostics,
) -> Option<()> {
    let summary = "Unable to Make the Container's Software Environment";
    let at = || Some(AttrPath::attr("container"));
    let image = body.container.as_deref().unwrap_or_default();
    tracing::info!(
        image = %image,
        name = %body.name,
        "making the container's software environment"
    );
    let alias = coiled.client.create_software_env(op, ws, body).await;
    let alias = coiled.reported(alias, diags, summary, at())?;
    let Some(first) = alias.latest_spec.and_then(|s| s.latest_build) else { return Some(()) };
    let done = build::wait(&coiled.client, op, ws, first).await.map_err(|(e, _)| e);
    let done = coiled.reported(done, diags, summary, at())?;
    if done.state == "error" {
        let tail = build::log_tail(&coiled.client, op, ws, done.id).await;
        let what = format!("software environment {:?} for image {image:?}", body.name);
        diags.error_at(
            AttrPath::attr("container"),
            "Software Environment Build Failed",
            build::failure_detail(&what, &done, &tail),
        );
        return None;
    }
    Some(())
}

/// Why a cluster needs `software` or `container`.
pub(super) const MISSING_SOFTWARE: &str = "Set `software` (the name of a Coiled software \
    environment) or `container` (an image). Without either, Coiled's Python client would \
    package-sync the local Python environment, which has no meaning in Terraform.";
