//! `coiled_backend_options`: a workspace's account-level backend options (cloud, region,
//! credentials, network) and its default ingress rules for new clusters.
//!
//! API calls: `GET /api/v1/{ws}/backend_options/` (read) and the `cluster-info` WebSocket with
//! `update_options` (create, update). Coiled has no call to delete backend options: destroy leaves
//! them in place (it never opens the firewall) and says so.

pub mod data_source;
mod validate;
pub mod wire;

use std::sync::Arc;

use async_trait::async_trait;
use tfplugin::diag::Diagnostics;
use tfplugin::framework::{Ctx, NewState, Plan, Private, Read, Resource};
use tfplugin::model::Field;
use tfplugin::schema::Schema;
use tfplugin::value::{AttrPath, Value};

use super::duration::{self, WriteTimeouts};
use super::ingress::{self, Parsed, Reading};
use super::{DEFAULT_API_TIMEOUT, ProviderData};
use crate::api::{CloudOptions, GcpOptions, Op};
use wire::{
    BackendOptionsModel, default_region, describe, differences, is_default, payload,
    state_from_server,
};

pub struct BackendOptionsResource {
    pub(crate) data: Arc<ProviderData>,
}

const DESCRIPTION: &str = "Account-level backend options of a Coiled workspace: the cloud, region and \
    credentials Coiled uses, and the default ingress rules (firewall) of every cluster \
    created afterwards. Equivalent to `coiled.set_backend_options(...)`. A workspace has \
    one set of options: let one configuration own them.";

/// Default of both timeouts: setting up a workspace's cloud resources can take minutes.
pub const DEFAULT_WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20 * 60);

impl BackendOptionsResource {
    /// At plan time, for a create: one workspace has one set of options, so creating this resource
    /// replaces whatever the workspace holds. Warns when that is more than Coiled's defaults.
    async fn warn_on_takeover(
        &self,
        ctx: &Ctx,
        planned: &BackendOptionsModel,
        diags: &mut Diagnostics,
    ) {
        let mut quiet = Diagnostics::new();
        let Ok(Some(coiled)) = self.data.coiled(&mut quiet).await else { return };
        let op = Op::new(DEFAULT_API_TIMEOUT, ctx.stop.clone());
        let named = planned.workspace.as_deref();
        let Some(ws) = coiled.workspace_for(&op, named, &mut quiet).await else { return };
        let Ok(server) = coiled.client.get_backend_options(&op, &ws).await else { return };
        let current = describe(&state_from_server(&BackendOptionsModel::default(), &server));
        if is_default(&current) {
            return;
        }
        let changes = differences(&current, &describe(planned));
        if changes.is_empty() {
            return;
        }
        diags.warning(
            "Existing Backend Options Will Be Replaced",
            format!(
                "Workspace {ws:?} already has backend options that differ from Coiled's defaults, \
                    set outside this configuration (another Terraform configuration, \
                    `coiled.set_backend_options`, or Coiled's web app). A workspace has exactly \
                    one set of options, and applying this replaces them:\n{}\n\nIf another \
                    configuration manages this workspace's options, keep only one of them: the \
                    two would overwrite each other on every apply. To start from what is there, \
                    import it instead: `terraform import` with this resource's address and `{ws}`.",
                changes.join("\n")
            ),
        );
    }

    /// Writes the planned options, then reads them back into the new state, within the `timeouts`
    /// value for the first write (`create`) or a later one: the server may set up cloud
    /// infrastructure before it answers.
    async fn write(
        &self,
        ctx: &Ctx,
        planned: BackendOptionsModel,
        config: BackendOptionsModel,
        diags: &mut Diagnostics,
        create: bool,
    ) -> Option<NewState<BackendOptionsModel>> {
        let summary = if create {
            "Unable to Set Backend Options"
        } else {
            "Unable to Update Backend Options"
        };
        let coiled = self.data.require(diags).await?;
        let which: fn(&WriteTimeouts) -> &Field<String> =
            if create { |t| &t.create } else { |t| &t.update };
        let timeout = duration::timeout_of(&planned.timeouts, which, DEFAULT_WRITE_TIMEOUT);
        let op = Op::new(timeout, ctx.stop.clone());
        let ws = coiled.workspace_for(&op, planned.workspace.as_deref(), diags).await?;
        let at = Reading::at(AttrPath::attr("ingress"));
        let Parsed::Rules(rules) = ingress::read(&planned.ingress_value(), &at, diags) else {
            diags.bug(summary, "The ingress rules were not known or not valid at apply time.");
            return None;
        };
        let body = payload(&planned, &config, &rules)
            .map_err(|e| diags.error(summary, format!("{e}.")))
            .ok()?;
        tracing::info!(workspace = %ws, rules = rules.rules().len(), "writing backend options");
        let written = coiled.client.set_backend_options(&op, &ws, &body).await;
        // Even a write that failed may have reached Coiled: clusters made later read them again.
        coiled.forget_workspace_reads(&ws);
        coiled.reported(written, diags, summary, None)?;
        let mut state = planned;
        state.id = Field::Known(ws.clone());
        state.workspace = Field::Known(ws.clone());
        if state.region.known().is_none() {
            state.region =
                Field::Known(default_region(state.backend.as_deref(), state.zone.as_deref()));
        }
        if let CloudOptions::Gcp(GcpOptions { gcp_project_name: Some(project), .. }) = &body.options
        {
            state.gcp_project_id = Field::Known(project.clone());
        } else if state.gcp_project_id.is_unknown() {
            state.gcp_project_id = Field::Null;
        }
        match coiled.client.get_backend_options(&op, &ws).await {
            Ok(server) => {
                // State records what this apply wrote, as planned; options read back otherwise were
                // changed by another writer in between, which the next plan shows as drift.
                let changes =
                    differences(&describe(&state), &describe(&state_from_server(&state, &server)));
                if !changes.is_empty() {
                    diags.warning(
                        "Backend Options Changed While Applying",
                        format!(
                            "Workspace {ws:?}'s backend options, read back right after this apply \
                                wrote them, differ from what it wrote:\n{}\n\nAnother writer \
                                changed them in between: a second Terraform configuration or \
                                resource managing this workspace's options, \
                                `coiled.set_backend_options`, or Coiled's web app. A workspace \
                                has one set of options: keep one owner. State records what this \
                                apply wrote; the next plan shows the difference.",
                            changes.join("\n")
                        ),
                    );
                }
            }
            // The write succeeded: record it, and say the read-back failed.
            Err(e) => diags.warning(
                "Backend Options Written but Not Read Back",
                format!(
                    "The options were saved, but reading them back failed: {e}. The next \
                    refresh will read them again."
                ),
            ),
        }
        Some(NewState { state, private: Vec::new() })
    }

    /// Predicts what apply will store, so plans show real values instead of "known after apply".
    fn predict(
        plan: &Plan<BackendOptionsModel>,
        planned: &mut BackendOptionsModel,
        predicted: &mut Vec<&'static str>,
        diags: &mut Diagnostics,
    ) {
        let (config, prior) = (&plan.config, &plan.prior);
        let backend = planned.backend.known().cloned();
        if config.region.is_null() {
            let prior_region = prior
                .region
                .known()
                .filter(|_| prior.backend == planned.backend && prior.zone == planned.zone)
                .cloned();
            // On GCP the region follows a zone given without one: wait for the zone to be known.
            let zone_known = !(backend.as_deref() == Some("gcp") && planned.zone.is_unknown());
            let default = backend
                .as_deref()
                .filter(|_| zone_known)
                .map(|b| default_region(Some(b), planned.zone.as_deref()));
            if let Some(region) = prior_region.or(default) {
                planned.region = Field::Known(region);
                predicted.push(tfplugin::attr!(BackendOptionsModel, region));
            }
        }
        if config.gcp_project_id.is_null() {
            let from_json = config
                .gcp_service_account_json
                .known()
                .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
                .and_then(|v| v.get("project_id").and_then(|p| p.as_str()).map(str::to_string));
            let project = match (backend.as_deref(), from_json) {
                (Some("gcp"), Some(p)) => Some(Field::Known(p)),
                (Some("aws"), _) => Some(Field::Null),
                _ => None,
            };
            if let Some(project) = project {
                planned.gcp_project_id = project;
                predicted.push(tfplugin::attr!(BackendOptionsModel, gcp_project_id));
            }
        }
        // The rules' warnings (host bits, duplicates, open to the internet), at plan time.
        ingress::read(&planned.ingress_value(), &Reading::at(AttrPath::attr("ingress")), diags);
    }
}

#[async_trait]
impl Resource for BackendOptionsResource {
    type Model = BackendOptionsModel;

    fn type_name(&self) -> &'static str {
        "coiled_backend_options"
    }

    fn identity(&self) -> Option<tfplugin::identity::IdentitySchema> {
        Some(tfplugin::identity::IdentitySchema::required_strings(&[(
            "workspace",
            "The workspace whose backend options these are.",
        )]))
    }

    fn schema(&self) -> Schema {
        Schema { version: 1, block: BackendOptionsModel::schema_block(DESCRIPTION) }
    }

    async fn validate(&self, _ctx: &Ctx, config: &Value, diags: &mut Diagnostics) {
        validate::validate_config(config, diags);
    }

    /// Schema version 0 also stored `firewall_rules`, the rows of the `ingress` blocks beside them.
    fn upgrade_json(&self, version: i64, json: &serde_json::Value) -> Option<serde_json::Value> {
        (version == 0).then(|| {
            let mut v1 = json.clone();
            v1.as_object_mut().map(|obj| obj.remove("firewall_rules"));
            v1
        })
    }

    async fn modify_plan(
        &self,
        ctx: &Ctx,
        plan: &mut Plan<BackendOptionsModel>,
        diags: &mut Diagnostics,
    ) {
        let mut planned = plan.planned.clone();
        let mut predicted = Vec::new();
        Self::predict(plan, &mut planned, &mut predicted, diags);
        let configured_ws = plan.config.workspace.clone();
        if plan.is_create()
            && let Some(ws) = self.data.planned_workspace(&configured_ws).await
        {
            planned.workspace = Field::Known(ws.clone());
            planned.id = Field::Known(ws);
            predicted.push(tfplugin::attr!(BackendOptionsModel, workspace));
            predicted.push(tfplugin::attr!(BackendOptionsModel, id));
        }
        let unchanged = !plan.is_create() && planned.encode().same_as(&plan.prior.encode());
        plan.planned = planned.clone();
        for name in predicted {
            plan.mark_predicted(name);
        }
        if diags.has_errors() || unchanged {
            return;
        }
        let access = self
            .data
            .check_plan_access(ctx, &configured_ws, planned.workspace.as_deref(), diags)
            .await;
        if access && plan.is_create() {
            self.warn_on_takeover(ctx, &planned, diags).await;
        }
    }

    async fn create(
        &self,
        ctx: &Ctx,
        planned: BackendOptionsModel,
        config: BackendOptionsModel,
        diags: &mut Diagnostics,
    ) -> Option<NewState<BackendOptionsModel>> {
        self.write(ctx, planned, config, diags, true).await
    }

    async fn read(
        &self,
        ctx: &Ctx,
        state: BackendOptionsModel,
        private: &Private,
        diags: &mut Diagnostics,
    ) -> Option<Read<BackendOptionsModel>> {
        let coiled = match self.data.coiled(diags).await {
            Ok(Some(c)) => c,
            // Configuration unknown during plan: keep the state as it is.
            Ok(None) => return Some(Read::Found(NewState { state, private: private.clone() })),
            Err(()) => return None,
        };
        let op = Op::new(DEFAULT_API_TIMEOUT, ctx.stop.clone());
        let ws = state.workspace_name()?.to_string();
        let server = coiled.client.get_backend_options(&op, &ws).await;
        let server = coiled.reported(server, diags, "Unable to Read Backend Options", None)?;
        let new = state_from_server(&state, &server);
        // An import's first read fills its state in: nothing was set, so nothing changed.
        let imported = private.as_slice() == IMPORTED;
        let changes = differences(&describe(&state), &describe(&new));
        if !changes.is_empty() && !imported {
            diags.warning(
                "Backend Options Changed Outside Terraform",
                format!(
                    "Workspace {ws:?}'s backend options were changed outside Terraform \
                        (by `coiled.set_backend_options`, Coiled's web app, or another \
                        Terraform configuration):\n{}\n\nThe next apply sets them back to \
                        this configuration. If the change was intended, put it in the \
                        configuration; if another configuration now owns these options, \
                        remove this resource from one of them (`terraform state rm`).",
                    changes.join("\n")
                ),
            );
        }
        Some(Read::Found(NewState {
            state: new,
            private: if imported { Vec::new() } else { private.clone() },
        }))
    }

    async fn update(
        &self,
        ctx: &Ctx,
        _prior: BackendOptionsModel,
        planned: BackendOptionsModel,
        config: BackendOptionsModel,
        _private: &Private,
        diags: &mut Diagnostics,
    ) -> Option<NewState<BackendOptionsModel>> {
        self.write(ctx, planned, config, diags, false).await
    }

    async fn delete(
        &self,
        _ctx: &Ctx,
        prior: BackendOptionsModel,
        _private: &Private,
        diags: &mut Diagnostics,
    ) {
        let ws = prior.workspace.as_deref().unwrap_or("?");
        diags.warning(
            "Backend Options Left in Place",
            format!(
                "Coiled has no way to delete backend options, so the options of workspace {ws:?} \
                    (including its ingress rules) stay as they are; Terraform no longer manages \
                    them. To change them, manage them again or use Coiled's own tools."
            ),
        );
    }

    async fn import(
        &self,
        _ctx: &Ctx,
        id: &str,
        diags: &mut Diagnostics,
    ) -> Option<NewState<BackendOptionsModel>> {
        let ws = id.trim();
        if ws.is_empty() || ws.contains('/') {
            diags.error(
                "Invalid Import ID",
                format!(
                    "{id:?} is not a workspace; import coiled_backend_options by workspace slug, \
                    e.g. `terraform import coiled_backend_options.team my-team`."
                ),
            );
            return None;
        }
        let state = BackendOptionsModel {
            id: Field::Known(ws.to_string()),
            workspace: Field::Known(ws.to_string()),
            ingress: Field::Known(Value::Set(Vec::new())),
            ..BackendOptionsModel::default()
        };
        Some(NewState { state, private: IMPORTED.to_vec() })
    }
}

/// The private data of a state an import just built, until its first read fills the state in.
const IMPORTED: &[u8] = b"imported";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::BackendOptionsRead;
    use crate::provider::ingress::RuleSet;
    use coiled_firewall::Rule;
    use serde_json::json;

    /// The payload as the JSON that goes on the wire.
    fn payload_json(
        planned: &Value,
        config: &Value,
        rules: &[Rule],
    ) -> Result<serde_json::Value, String> {
        payload(
            &BackendOptionsModel::decode(planned),
            &BackendOptionsModel::decode(config),
            &RuleSet::new(rules),
        )
        .map(|p| serde_json::to_value(p).unwrap())
    }

    fn planned_aws(ingress: Value) -> Value {
        Value::object([
            ("backend", Value::string("aws")),
            ("region", Value::string("us-west-2")),
            ("zone", Value::Null),
            ("aws_access_key_id", Value::string("AKIA")),
            ("aws_secret_access_key", Value::string("SECRET")),
            ("network", Value::Null),
            ("ingress", ingress),
        ])
    }

    #[test]
    fn aws_payload_matches_the_coiled_client() {
        let rules = RuleSet::from_wire(&[crate::api::IngressRule {
            ports: vec![8787, 8786],
            cidr: "10.1.0.2/16".into(),
        }]);
        let p = payload_json(&planned_aws(Value::Null), &Value::Null, rules.rules()).unwrap();
        assert_eq!(
            p,
            json!({"backend": "vm",
                "options": {"aws_region_name": "us-west-2", "account_role": "", "credentials": {"aws_access_key": "AKIA", "aws_secret_key": "SECRET"},
                    "firewall": {}, "firewall_spec": {"ingress": [{"ports": [8786, 8787], "cidr": "10.1.0.0/16"}]}, "network": {}, "zone": null,
                    "provider_name": "aws", "type": "aws_cloudbridge_backend_options"},
                "registry": {"type": "ecr", "credentials": {"aws_access_key_id": "AKIA", "aws_secret_access_key": "SECRET"}, "public_ecr": false, "region": "us-west-2"}})
        );
        let none = payload_json(&planned_aws(Value::Null), &Value::Null, &[]).unwrap();
        assert_eq!(none["options"]["firewall_spec"], json!({}));
    }

    #[test]
    fn write_only_secret_comes_from_the_config() {
        let mut planned = planned_aws(Value::Null);
        if let Value::Object(attrs) = &mut planned {
            attrs.insert("aws_secret_access_key".into(), Value::Null);
        }
        let config = Value::object([("aws_secret_access_key_wo", Value::string("WO-SECRET"))]);
        let p = payload_json(&planned, &config, &[]).unwrap();
        assert_eq!(p["options"]["credentials"]["aws_secret_key"], "WO-SECRET");
        assert!(payload_json(&planned, &Value::Null, &[]).is_err());
    }

    #[test]
    fn gcp_payload_carries_project_and_region() {
        let planned = Value::object([
            ("backend", Value::string("gcp")),
            ("region", Value::string("us-central1")),
            (
                "gcp_service_account_json",
                Value::string(r#"{"type":"service_account","project_id":"my-proj"}"#),
            ),
        ]);
        let p = payload_json(&planned, &Value::Null, &[]).unwrap();
        assert_eq!(p["options"]["provider_name"], "gcp");
        assert_eq!(p["options"]["gcp_project_name"], "my-proj");
        assert_eq!(p["options"]["gcp_region_name"], "us-central1");
        assert_eq!(
            p["registry"],
            json!({"type": "ecr", "credentials": {}, "public_ecr": false, "region": "us-east-1"})
        );
    }

    #[test]
    fn reading_keeps_credentials_and_what_the_server_does_not_report() {
        let prior = planned_aws(Value::Set(vec![Value::object([
            ("cidr", Value::string("10.1.0.2/16")),
            ("ports", Value::Set(vec![Value::int(8786)])),
        ])]));
        let reply = |options: serde_json::Value| -> BackendOptionsRead {
            serde_json::from_value(json!({"backend": "vm", "options": options})).unwrap()
        };
        let read = |prior: &Value, server: &BackendOptionsRead| {
            state_from_server(&BackendOptionsModel::decode(prior), server).encode()
        };
        let server = reply(
            json!({"provider_name": "aws", "aws_region_name": "us-west-2", "firewall_spec": {"ingress": [{"ports": [8786], "cidr": "10.1.0.0/16"}]}}),
        );
        let s = read(&prior, &server);
        assert_eq!(s.get("aws_secret_access_key"), Some(&Value::string("SECRET")));
        assert_eq!(s.get("ingress"), prior.get("ingress"), "same rules keep the user's spelling");
        let silent = reply(json!({"provider_name": "aws"}));
        assert_eq!(
            read(&prior, &silent).get("ingress"),
            prior.get("ingress"),
            "unreported ingress is kept"
        );
        let drifted = reply(json!({"provider_name": "aws", "firewall_spec": {}}));
        assert_eq!(
            read(&prior, &drifted).get("ingress"),
            Some(&Value::Set(vec![])),
            "removed outside Terraform"
        );
    }
}
