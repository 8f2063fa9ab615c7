//! The tfplugin6 `Provider` gRPC service: decodes requests, dispatches to the provider's resources and
//! data sources through the framework, and encodes the answers. Knows protocol messages, not any particular provider.

use std::collections::HashMap;
use std::sync::Arc;

use crate::proto::tfplugin6 as pb;
use crate::proto::tfplugin6::provider_server::Provider as ProviderRpc;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::diag::Diagnostics;
use super::framework::{self, AnyResource, Ctx, DataSource, EphemeralResource, Plan, Provider};
use super::function::Function;
use super::identity::IdentitySchema;

mod modern;
mod query;
use super::query::{Action, ListResource};
use super::schema::Schema;
use super::value::{self, Type, Value};

/// Each of `items` by its type name, with its schema and that schema's type, built once.
fn by_name<T: ?Sized>(
    items: Vec<Arc<T>>,
    describe: impl Fn(&T) -> (&'static str, Schema),
) -> HashMap<&'static str, (Arc<T>, Schema, Type)> {
    items
        .into_iter()
        .map(|item| {
            let (name, schema) = describe(&item);
            let ty = schema.object_type();
            (name, (item, schema, ty))
        })
        .collect()
}

/// Everything the service needs, built once at start.
pub struct PluginService {
    provider: Arc<dyn Provider>,
    provider_schema: Schema,
    resources: HashMap<&'static str, (Arc<dyn AnyResource>, Schema, Type)>,
    data_sources: HashMap<&'static str, (Arc<dyn DataSource>, Schema, Type)>,
    functions: HashMap<&'static str, Arc<dyn Function>>,
    identities: HashMap<&'static str, (IdentitySchema, Type)>,
    ephemerals: HashMap<&'static str, (Arc<dyn EphemeralResource>, Schema, Type)>,
    lists: HashMap<&'static str, (Arc<dyn ListResource>, Schema, Type)>,
    actions: HashMap<&'static str, (Arc<dyn Action>, Schema, Type)>,
    stop: CancellationToken,
}

impl PluginService {
    /// Builds the service for `provider`. `stop` is cancelled by `StopProvider`.
    pub fn new(provider: Arc<dyn Provider>, stop: CancellationToken) -> PluginService {
        let resources = by_name(provider.resources(), |r| (r.type_name(), r.schema()));
        let data_sources = by_name(provider.data_sources(), |d| (d.type_name(), d.schema()));
        let functions = provider.functions().into_iter().map(|f| (f.name(), f)).collect();
        let identities = resources
            .iter()
            .filter_map(|(name, (r, _, _))| {
                r.identity().map(|i| {
                    let t = i.object_type();
                    (*name, (i, t))
                })
            })
            .collect();
        let ephemerals = by_name(provider.ephemeral_resources(), |e| (e.type_name(), e.schema()));
        let lists = by_name(provider.list_resources(), |l| (l.type_name(), l.schema()));
        let actions = by_name(provider.actions(), |a| (a.type_name(), a.schema()));
        PluginService {
            provider_schema: provider.schema(),
            provider,
            resources,
            data_sources,
            functions,
            identities,
            ephemerals,
            lists,
            actions,
            stop,
        }
    }

    fn ctx(&self, caps: Option<&pb::ClientCapabilities>) -> Ctx {
        Ctx {
            stop: self.stop.clone(),
            write_only_allowed: caps.is_some_and(|c| c.write_only_attributes_allowed),
        }
    }

    fn resource(&self, name: &str) -> Result<&(Arc<dyn AnyResource>, Schema, Type), Status> {
        self.resources
            .get(name)
            .ok_or_else(|| Status::not_found(format!("unknown resource type {name:?}")))
    }

    fn data_source(&self, name: &str) -> Result<&(Arc<dyn DataSource>, Schema, Type), Status> {
        self.data_sources
            .get(name)
            .ok_or_else(|| Status::not_found(format!("unknown data source type {name:?}")))
    }

    /// The full schema response, also used by `GetMetadata` for type names.
    pub fn schema_response(&self) -> pb::get_provider_schema::Response {
        pb::get_provider_schema::Response {
            provider: Some(self.provider_schema.to_proto()),
            resource_schemas: self
                .resources
                .iter()
                .map(|(n, (_, s, _))| (n.to_string(), s.to_proto()))
                .collect(),
            data_source_schemas: self
                .data_sources
                .iter()
                .map(|(n, (_, s, _))| (n.to_string(), s.to_proto()))
                .collect(),
            functions: self.function_declarations(),
            ephemeral_resource_schemas: self.ephemeral_schemas(),
            list_resource_schemas: self.list_schemas(),
            action_schemas: self.action_schemas(),
            server_capabilities: Some(pb::ServerCapabilities {
                plan_destroy: false,
                get_provider_schema_optional: true,
                move_resource_state: false,
                generate_resource_config: false,
            }),
            ..Default::default()
        }
    }
}

/// Decodes a DynamicValue (msgpack, or JSON when that is what was sent); an absent value is null.
fn decode(
    dv: Option<&pb::DynamicValue>,
    ty: &Type,
    diags: &mut Diagnostics,
    what: &str,
) -> Option<Value> {
    let Some(dv) = dv else { return Some(Value::Null) };
    let result = if !dv.msgpack.is_empty() {
        value::from_msgpack(&dv.msgpack, ty)
    } else if !dv.json.is_empty() {
        serde_json::from_slice(&dv.json)
            .map_err(|e| value::DecodeError {
                path: value::AttrPath::root(),
                message: e.to_string(),
            })
            .and_then(|j| value::from_json(&j, ty))
    } else {
        Ok(Value::Null)
    };
    match result {
        Ok(v) => Some(v),
        Err(e) => {
            diags.error_at(
                e.path.clone(),
                "Invalid Value From Terraform",
                format!("The {what} sent by Terraform could not be decoded: {e}."),
            );
            None
        }
    }
}

fn encode(v: &Value, ty: &Type, diags: &mut Diagnostics, what: &str) -> Option<pb::DynamicValue> {
    match value::to_msgpack(v, ty) {
        Ok(msgpack) => Some(pb::DynamicValue { msgpack, json: Vec::new() }),
        Err(e) => {
            diags.bug(
                "Unable to Encode Value",
                format!("The {what} does not match the schema: {e}."),
            );
            None
        }
    }
}

/// Write-only attributes set in a configuration for a client that cannot keep them out of state.
fn check_write_only(schema: &Schema, config: &Value, ctx: &Ctx, diags: &mut Diagnostics) {
    if ctx.write_only_allowed {
        return;
    }
    for a in schema.block.attributes.iter().filter(|a| a.write_only) {
        if config.get(a.name).is_some_and(|v| !v.is_null()) {
            diags.error_at(
                value::AttrPath::attr(a.name),
                "Write-Only Attribute Not Supported",
                format!(
                    "The attribute {} is write-only, which needs Terraform 1.11 or later; this \
                        Terraform would store it in state. Use the sensitive attribute without \
                        the `_wo` suffix instead, or upgrade Terraform.",
                    a.name
                ),
            );
        }
    }
}

/// Checks what a resource returned from an apply step before Terraform sees it.
type EmptyStream<T> = tokio_stream::Empty<Result<T, Status>>;

#[tonic::async_trait]
impl ProviderRpc for PluginService {
    async fn get_metadata(
        &self,
        _r: Request<pb::get_metadata::Request>,
    ) -> Result<Response<pb::get_metadata::Response>, Status> {
        use pb::get_metadata as m;
        Ok(Response::new(m::Response {
            server_capabilities: self.schema_response().server_capabilities,
            resources: self
                .resources
                .keys()
                .map(|n| m::ResourceMetadata { type_name: n.to_string() })
                .collect(),
            data_sources: self
                .data_sources
                .keys()
                .map(|n| m::DataSourceMetadata { type_name: n.to_string() })
                .collect(),
            functions: self
                .functions
                .keys()
                .map(|n| m::FunctionMetadata { name: n.to_string() })
                .collect(),
            ephemeral_resources: self
                .ephemerals
                .keys()
                .map(|n| m::EphemeralMetadata { type_name: n.to_string() })
                .collect(),
            list_resources: self
                .lists
                .keys()
                .map(|n| m::ListResourceMetadata { type_name: n.to_string() })
                .collect(),
            actions: self
                .actions
                .keys()
                .map(|n| m::ActionMetadata { type_name: n.to_string() })
                .collect(),
            ..Default::default()
        }))
    }

    async fn get_provider_schema(
        &self,
        _r: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        tracing::debug!("serving provider schema");
        Ok(Response::new(self.schema_response()))
    }

    async fn validate_provider_config(
        &self,
        r: Request<pb::validate_provider_config::Request>,
    ) -> Result<Response<pb::validate_provider_config::Response>, Status> {
        let r = r.into_inner();
        let mut diags = Diagnostics::new();
        if let Some(config) = decode(
            r.config.as_ref(),
            &self.provider_schema.object_type(),
            &mut diags,
            "provider configuration",
        ) {
            self.provider.validate(&self.ctx(None), &config, &mut diags).await;
        }
        Ok(Response::new(pb::validate_provider_config::Response { diagnostics: diags.to_proto() }))
    }

    async fn validate_resource_config(
        &self,
        r: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        let started = std::time::Instant::now();
        let r = r.into_inner();
        let (res, schema, ty) = self.resource(&r.type_name)?;
        let ctx = self.ctx(r.client_capabilities.as_ref());
        let mut diags = Diagnostics::new();
        if let Some(config) = decode(r.config.as_ref(), ty, &mut diags, "configuration") {
            check_write_only(schema, &config, &ctx, &mut diags);
            schema.block.check_declared(&config, &crate::value::AttrPath::root(), &mut diags);
            res.validate(&ctx, &config, &mut diags).await;
        }
        tracing::debug!(resource = %r.type_name, bytes = r.config.as_ref().map_or(0, |c| c.msgpack.len()), elapsed_us = started.elapsed().as_micros() as u64, "validated \
            configuration");
        Ok(Response::new(pb::validate_resource_config::Response { diagnostics: diags.to_proto() }))
    }

    async fn validate_data_resource_config(
        &self,
        r: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        let r = r.into_inner();
        let (ds, schema, ty) = self.data_source(&r.type_name)?;
        let mut diags = Diagnostics::new();
        if let Some(config) = decode(r.config.as_ref(), ty, &mut diags, "configuration") {
            schema.block.check_declared(&config, &crate::value::AttrPath::root(), &mut diags);
            ds.validate(&self.ctx(None), &config, &mut diags).await;
        }
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics: diags.to_proto(),
        }))
    }

    async fn upgrade_resource_state(
        &self,
        r: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        let started = std::time::Instant::now();
        let r = r.into_inner();
        let (res, schema, ty) = self.resource(&r.type_name)?;
        let mut diags = Diagnostics::new();
        let raw = r.raw_state.map(|s| s.json).unwrap_or_default();
        // The resource reads its state, rewriting state of an older version first.
        let upgraded = if raw.is_empty() {
            Some(Value::Null)
        } else {
            match serde_json::from_slice::<serde_json::Value>(&raw) {
                Ok(json) => res.upgrade_state(schema, ty, r.version, &json, &mut diags),
                Err(e) => {
                    diags.error(
                        "Unreadable Resource State",
                        format!("The stored state is not valid JSON: {e}."),
                    );
                    None
                }
            }
        };
        let upgraded_state = upgraded.and_then(|v| encode(&v, ty, &mut diags, "upgraded state"));
        tracing::debug!(resource = %r.type_name, elapsed_us = started.elapsed().as_micros() as u64, "upgraded \
            state");
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state,
            diagnostics: diags.to_proto(),
        }))
    }

    async fn get_resource_identity_schemas(
        &self,
        _r: Request<pb::get_resource_identity_schemas::Request>,
    ) -> Result<Response<pb::get_resource_identity_schemas::Response>, Status> {
        Ok(Response::new(pb::get_resource_identity_schemas::Response {
            identity_schemas: self
                .identities
                .iter()
                .map(|(n, (s, _))| (n.to_string(), s.to_proto()))
                .collect(),
            diagnostics: Vec::new(),
        }))
    }

    async fn configure_provider(
        &self,
        r: Request<pb::configure_provider::Request>,
    ) -> Result<Response<pb::configure_provider::Response>, Status> {
        let r = r.into_inner();
        let mut diags = Diagnostics::new();
        tracing::debug!(terraform_version = %r.terraform_version, "configuring provider");
        if let Some(config) = decode(
            r.config.as_ref(),
            &self.provider_schema.object_type(),
            &mut diags,
            "provider configuration",
        ) {
            self.provider
                .configure(
                    &self.ctx(r.client_capabilities.as_ref()),
                    &config,
                    &r.terraform_version,
                    &mut diags,
                )
                .await;
        }
        Ok(Response::new(pb::configure_provider::Response { diagnostics: diags.to_proto() }))
    }

    async fn read_resource(
        &self,
        r: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let started = std::time::Instant::now();
        let r = r.into_inner();
        let (res, _, ty) = self.resource(&r.type_name)?;
        let ctx = self.ctx(r.client_capabilities.as_ref());
        let mut diags = Diagnostics::new();
        let mut out = pb::read_resource::Response {
            new_state: r.current_state.clone(),
            private: r.private.clone(),
            ..Default::default()
        };
        if let Some(state) = decode(r.current_state.as_ref(), ty, &mut diags, "current state")
            && let Some(new) =
                framework::read_resource(res.as_ref(), &ctx, &state, &r.private, &mut diags).await
        {
            out.new_identity =
                self.identity_of(&r.type_name, &new.state).or(r.current_identity.clone());
            out.new_state = encode(&new.state, ty, &mut diags, "read state");
            out.private = new.private;
        }
        out.diagnostics = diags.to_proto();
        let elapsed_us = started.elapsed().as_micros() as u64;
        tracing::debug!(resource = %r.type_name, elapsed_us, "read resource");
        Ok(Response::new(out))
    }

    async fn plan_resource_change(
        &self,
        r: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        let started = std::time::Instant::now();
        let mut r = r.into_inner();
        let (res, schema, ty) = self.resource(&r.type_name)?;
        let ctx = self.ctx(r.client_capabilities.as_ref());
        let mut diags = Diagnostics::new();
        let mut out = pb::plan_resource_change::Response::default();
        let prior = decode(r.prior_state.as_ref(), ty, &mut diags, "prior state");
        let proposed = decode(r.proposed_new_state.as_ref(), ty, &mut diags, "proposed state");
        let config = decode(r.config.as_ref(), ty, &mut diags, "configuration");
        if let (Some(prior), Some(proposed), Some(config)) = (prior, proposed, config) {
            let mut plan = Plan {
                creating: prior.is_null(),
                prior,
                config,
                planned: proposed,
                requires_replace: Vec::new(),
                private: std::mem::take(&mut r.prior_private),
                predicted: Vec::new(),
                in_place: Vec::new(),
                proposal_is_prior: false,
            };
            let unchanged =
                framework::plan_change(res.as_ref(), schema, &ctx, &mut plan, &mut diags).await;
            if unchanged {
                // The prior state itself, as Terraform sent it: nothing to encode, and its identity.
                out.planned_state = r.prior_state.take();
                out.planned_identity = r
                    .prior_identity
                    .take()
                    .or_else(|| self.identity_of(&r.type_name, &plan.planned));
            } else if !diags.has_errors() {
                out.planned_state = encode(&plan.planned, ty, &mut diags, "planned state");
                out.planned_identity =
                    self.identity_of(&r.type_name, &plan.planned).or(r.prior_identity.take());
            }
            if !diags.has_errors() {
                out.requires_replace =
                    plan.requires_replace.iter().map(super::diag::path_to_proto).collect();
                out.planned_private = plan.private;
            }
        }
        out.diagnostics = diags.to_proto();
        let elapsed_us = started.elapsed().as_micros() as u64;
        tracing::debug!(resource = %r.type_name, elapsed_us, "planned change");
        Ok(Response::new(out))
    }

    async fn apply_resource_change(
        &self,
        r: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let r = r.into_inner();
        let (res, schema, ty) = self.resource(&r.type_name)?;
        let ctx = self.ctx(None);
        let mut diags = Diagnostics::new();
        let mut out = pb::apply_resource_change::Response::default();
        let prior = decode(r.prior_state.as_ref(), ty, &mut diags, "prior state");
        let planned = decode(r.planned_state.as_ref(), ty, &mut diags, "planned state");
        let config = decode(r.config.as_ref(), ty, &mut diags, "configuration");
        let (Some(prior), Some(planned), Some(config)) = (prior, planned, config) else {
            out.diagnostics = diags.to_proto();
            return Ok(Response::new(out));
        };
        let change =
            framework::Change { prior, planned, config, private: r.planned_private.clone() };
        if let Some(new) =
            framework::apply_change(res.as_ref(), schema, &ctx, change, &mut diags).await
        {
            out.new_state = encode(&new.state, ty, &mut diags, "new state");
            out.new_identity = self.identity_of(&r.type_name, &new.state);
            out.private = new.private;
        }
        out.diagnostics = diags.to_proto();
        Ok(Response::new(out))
    }

    async fn import_resource_state(
        &self,
        r: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        let r = r.into_inner();
        let (res, _, ty) = self.resource(&r.type_name)?;
        let ctx = self.ctx(r.client_capabilities.as_ref());
        let mut diags = Diagnostics::new();
        let mut out = pb::import_resource_state::Response::default();
        let id = match (&r.identity, r.id.is_empty()) {
            (Some(identity), true) => self.import_id_of(&r.type_name, identity, &mut diags),
            _ => Some(r.id.clone()),
        };
        if let Some(id) = id
            && let Some(imported) = res.import(&ctx, &id, &mut diags).await
            && let Some(dv) = encode(&imported.state, ty, &mut diags, "imported state")
        {
            out.imported_resources.push(pb::import_resource_state::ImportedResource {
                type_name: r.type_name.clone(),
                state: Some(dv),
                private: imported.private,
                identity: self.identity_of(&r.type_name, &imported.state),
            });
        }
        out.diagnostics = diags.to_proto();
        Ok(Response::new(out))
    }

    async fn read_data_source(
        &self,
        r: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        let r = r.into_inner();
        let (ds, _, ty) = self.data_source(&r.type_name)?;
        let ctx = self.ctx(r.client_capabilities.as_ref());
        let mut diags = Diagnostics::new();
        let mut out = pb::read_data_source::Response::default();
        if let Some(config) = decode(r.config.as_ref(), ty, &mut diags, "configuration")
            && let Some(state) =
                framework::read_data_source(ds.as_ref(), &ctx, &config, &mut diags).await
        {
            out.state = encode(&state, ty, &mut diags, "data source state");
        }
        out.diagnostics = diags.to_proto();
        Ok(Response::new(out))
    }

    async fn stop_provider(
        &self,
        _r: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        tracing::info!("StopProvider: cancelling in-flight operations");
        self.stop.cancel();
        Ok(Response::new(pb::stop_provider::Response { error: String::new() }))
    }

    async fn get_functions(
        &self,
        _r: Request<pb::get_functions::Request>,
    ) -> Result<Response<pb::get_functions::Response>, Status> {
        Ok(Response::new(pb::get_functions::Response {
            functions: self.function_declarations(),
            diagnostics: Vec::new(),
        }))
    }

    async fn upgrade_resource_identity(
        &self,
        r: Request<pb::upgrade_resource_identity::Request>,
    ) -> Result<Response<pb::upgrade_resource_identity::Response>, Status> {
        Ok(Response::new(self.upgrade_identity(r.into_inner())))
    }

    // Protocol features this provider does not offer answer UNIMPLEMENTED, which Terraform tolerates.
    async fn move_resource_state(
        &self,
        _r: Request<pb::move_resource_state::Request>,
    ) -> Result<Response<pb::move_resource_state::Response>, Status> {
        Err(Status::unimplemented("move_resource_state is not offered by this provider"))
    }

    async fn generate_resource_config(
        &self,
        _r: Request<pb::generate_resource_config::Request>,
    ) -> Result<Response<pb::generate_resource_config::Response>, Status> {
        Err(Status::unimplemented("generate_resource_config is not offered by this provider"))
    }

    async fn validate_ephemeral_resource_config(
        &self,
        r: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> Result<Response<pb::validate_ephemeral_resource_config::Response>, Status> {
        Ok(Response::new(self.validate_ephemeral(r.into_inner()).await))
    }

    async fn open_ephemeral_resource(
        &self,
        r: Request<pb::open_ephemeral_resource::Request>,
    ) -> Result<Response<pb::open_ephemeral_resource::Response>, Status> {
        Ok(Response::new(self.open_ephemeral(r.into_inner()).await))
    }

    async fn renew_ephemeral_resource(
        &self,
        _r: Request<pb::renew_ephemeral_resource::Request>,
    ) -> Result<Response<pb::renew_ephemeral_resource::Response>, Status> {
        // Nothing to renew or release: the values are read once, and hold no lease.
        Ok(Response::new(pb::renew_ephemeral_resource::Response {
            diagnostics: Vec::new(),
            renew_at: None,
            private: None,
        }))
    }

    async fn close_ephemeral_resource(
        &self,
        _r: Request<pb::close_ephemeral_resource::Request>,
    ) -> Result<Response<pb::close_ephemeral_resource::Response>, Status> {
        // Nothing to renew or release: the values are read once, and hold no lease.
        Ok(Response::new(pb::close_ephemeral_resource::Response { diagnostics: Vec::new() }))
    }

    async fn validate_list_resource_config(
        &self,
        r: Request<pb::validate_list_resource_config::Request>,
    ) -> Result<Response<pb::validate_list_resource_config::Response>, Status> {
        Ok(Response::new(self.validate_list(r.into_inner()).await))
    }

    async fn call_function(
        &self,
        r: Request<pb::call_function::Request>,
    ) -> Result<Response<pb::call_function::Response>, Status> {
        let r = r.into_inner();
        Ok(Response::new(self.call(&r.name, &r.arguments)))
    }

    async fn validate_state_store_config(
        &self,
        _r: Request<pb::validate_state_store::Request>,
    ) -> Result<Response<pb::validate_state_store::Response>, Status> {
        Err(Status::unimplemented("validate_state_store_config is not offered by this provider"))
    }

    async fn configure_state_store(
        &self,
        _r: Request<pb::configure_state_store::Request>,
    ) -> Result<Response<pb::configure_state_store::Response>, Status> {
        Err(Status::unimplemented("configure_state_store is not offered by this provider"))
    }

    async fn lock_state(
        &self,
        _r: Request<pb::lock_state::Request>,
    ) -> Result<Response<pb::lock_state::Response>, Status> {
        Err(Status::unimplemented("lock_state is not offered by this provider"))
    }

    async fn unlock_state(
        &self,
        _r: Request<pb::unlock_state::Request>,
    ) -> Result<Response<pb::unlock_state::Response>, Status> {
        Err(Status::unimplemented("unlock_state is not offered by this provider"))
    }

    async fn get_states(
        &self,
        _r: Request<pb::get_states::Request>,
    ) -> Result<Response<pb::get_states::Response>, Status> {
        Err(Status::unimplemented("get_states is not offered by this provider"))
    }

    async fn delete_state(
        &self,
        _r: Request<pb::delete_state::Request>,
    ) -> Result<Response<pb::delete_state::Response>, Status> {
        Err(Status::unimplemented("delete_state is not offered by this provider"))
    }

    async fn plan_action(
        &self,
        r: Request<pb::plan_action::Request>,
    ) -> Result<Response<pb::plan_action::Response>, Status> {
        Ok(Response::new(self.plan_action_of(r.into_inner()).await))
    }

    async fn validate_action_config(
        &self,
        r: Request<pb::validate_action_config::Request>,
    ) -> Result<Response<pb::validate_action_config::Response>, Status> {
        Ok(Response::new(self.validate_action(r.into_inner()).await))
    }

    type ListResourceStream = query::Answers<pb::list_resource::Event>;
    async fn list_resource(
        &self,
        r: Request<pb::list_resource::Request>,
    ) -> Result<Response<Self::ListResourceStream>, Status> {
        Ok(Response::new(self.list(r.into_inner()).await))
    }

    type ReadStateBytesStream = EmptyStream<pb::read_state_bytes::Response>;
    async fn read_state_bytes(
        &self,
        _r: Request<pb::read_state_bytes::Request>,
    ) -> Result<Response<Self::ReadStateBytesStream>, Status> {
        Err(Status::unimplemented("state storage is not offered by this provider"))
    }

    async fn write_state_bytes(
        &self,
        _r: Request<tonic::Streaming<pb::write_state_bytes::RequestChunk>>,
    ) -> Result<Response<pb::write_state_bytes::Response>, Status> {
        Err(Status::unimplemented("state storage is not offered by this provider"))
    }

    type InvokeActionStream = query::Answers<pb::invoke_action::Event>;
    async fn invoke_action(
        &self,
        r: Request<pb::invoke_action::Request>,
    ) -> Result<Response<Self::InvokeActionStream>, Status> {
        Ok(Response::new(self.invoke(r.into_inner())))
    }
}
