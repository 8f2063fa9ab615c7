//! The tfplugin6 `Provider` gRPC service: decodes requests, dispatches them through the framework,
//! and encodes the answers. Knows protocol messages, not any particular provider.

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

/// The schema of each item of a table built by [`by_name`], as tfplugin6 lists them.
fn schemas<T: ?Sized>(
    items: &HashMap<&'static str, (Arc<T>, Schema, Type)>,
) -> HashMap<String, pb::Schema> {
    items.iter().map(|(name, (_, schema, _))| (name.to_string(), schema.to_proto())).collect()
}

/// The names of a table's items, each as tfplugin6's metadata message `entry` makes of it.
fn names<V, M>(items: &HashMap<&'static str, V>, entry: impl Fn(String) -> M) -> Vec<M> {
    items.keys().map(|name| entry(name.to_string())).collect()
}

/// The item of a table built by [`by_name`] named `name`; else the error `summary`, naming it as a
/// `kind` (`"action"`) this provider does not have.
fn named<'a, T: ?Sized>(
    items: &'a HashMap<&'static str, (Arc<T>, Schema, Type)>,
    (summary, kind): (&str, &str),
    name: &str,
    diags: &mut Diagnostics,
) -> Option<&'a (Arc<T>, Schema, Type)> {
    let found = items.get(name);
    if found.is_none() {
        diags.error(summary, format!("This provider has no {kind} {name:?}."));
    }
    found
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
            resource_schemas: schemas(&self.resources),
            data_source_schemas: schemas(&self.data_sources),
            functions: self.function_declarations(),
            ephemeral_resource_schemas: schemas(&self.ephemerals),
            list_resource_schemas: schemas(&self.lists),
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
            .or_else(|e| value::fail(e.to_string()))
            .and_then(|j| value::from_json(&j, ty))
    } else {
        Ok(Value::Null)
    };
    result
        .map_err(|e| {
            diags.error_at(
                e.path.clone(),
                "Invalid Value From Terraform",
                format!("The {what} sent by Terraform could not be decoded: {e}."),
            )
        })
        .ok()
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

/// The bodies of the RPCs longer than one expression, each taking and returning the message.
impl PluginService {
    fn identity_schemas(&self) -> pb::get_resource_identity_schemas::Response {
        let schemas = self.identities.iter().map(|(n, (s, _))| (n.to_string(), s.to_proto()));
        pb::get_resource_identity_schemas::Response {
            identity_schemas: schemas.collect(),
            diagnostics: Vec::new(),
        }
    }

    fn stop_provider(&self) -> pb::stop_provider::Response {
        tracing::info!("StopProvider: cancelling in-flight operations");
        self.stop.cancel();
        pb::stop_provider::Response { error: String::new() }
    }

    fn metadata(&self) -> pb::get_metadata::Response {
        use pb::get_metadata as m;
        m::Response {
            server_capabilities: self.schema_response().server_capabilities,
            resources: names(&self.resources, |type_name| m::ResourceMetadata { type_name }),
            data_sources: names(&self.data_sources, |type_name| m::DataSourceMetadata {
                type_name,
            }),
            functions: names(&self.functions, |name| m::FunctionMetadata { name }),
            ephemeral_resources: names(&self.ephemerals, |type_name| m::EphemeralMetadata {
                type_name,
            }),
            list_resources: names(&self.lists, |type_name| m::ListResourceMetadata { type_name }),
            actions: names(&self.actions, |type_name| m::ActionMetadata { type_name }),
            ..Default::default()
        }
    }

    async fn validate_provider_config(
        &self,
        r: pb::validate_provider_config::Request,
    ) -> Result<pb::validate_provider_config::Response, Status> {
        let mut diags = Diagnostics::new();
        let ty = self.provider_schema.object_type();
        if let Some(config) = decode(r.config.as_ref(), &ty, &mut diags, "provider configuration") {
            self.provider.validate(&self.ctx(None), &config, &mut diags).await;
        }
        Ok(pb::validate_provider_config::Response { diagnostics: diags.to_proto() })
    }

    async fn validate_resource_config(
        &self,
        r: pb::validate_resource_config::Request,
    ) -> Result<pb::validate_resource_config::Response, Status> {
        let started = std::time::Instant::now();
        let (res, schema, ty) = self.resource(&r.type_name)?;
        let ctx = self.ctx(r.client_capabilities.as_ref());
        let mut diags = Diagnostics::new();
        if let Some(config) = decode(r.config.as_ref(), ty, &mut diags, "configuration") {
            check_write_only(schema, &config, &ctx, &mut diags);
            schema.block.check_declared(&config, &value::AttrPath::root(), &mut diags);
            res.validate(&ctx, &config, &mut diags).await;
        }
        let bytes = r.config.as_ref().map_or(0, |c| c.msgpack.len());
        let elapsed_us = started.elapsed().as_micros() as u64;
        tracing::debug!(resource = %r.type_name, bytes, elapsed_us, "validated configuration");
        Ok(pb::validate_resource_config::Response { diagnostics: diags.to_proto() })
    }

    async fn validate_data_resource_config(
        &self,
        r: pb::validate_data_resource_config::Request,
    ) -> Result<pb::validate_data_resource_config::Response, Status> {
        let (ds, schema, ty) = self.data_source(&r.type_name)?;
        let mut diags = Diagnostics::new();
        if let Some(config) = decode(r.config.as_ref(), ty, &mut diags, "configuration") {
            schema.block.check_declared(&config, &value::AttrPath::root(), &mut diags);
            ds.validate(&self.ctx(None), &config, &mut diags).await;
        }
        Ok(pb::validate_data_resource_config::Response { diagnostics: diags.to_proto() })
    }

    async fn upgrade_resource_state(
        &self,
        r: pb::upgrade_resource_state::Request,
    ) -> Result<pb::upgrade_resource_state::Response, Status> {
        let started = std::time::Instant::now();
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
        let elapsed_us = started.elapsed().as_micros() as u64;
        tracing::debug!(resource = %r.type_name, elapsed_us, "upgraded state");
        Ok(pb::upgrade_resource_state::Response { upgraded_state, diagnostics: diags.to_proto() })
    }

    async fn configure_provider(
        &self,
        r: pb::configure_provider::Request,
    ) -> Result<pb::configure_provider::Response, Status> {
        let mut diags = Diagnostics::new();
        tracing::debug!(terraform_version = %r.terraform_version, "configuring provider");
        let ty = self.provider_schema.object_type();
        let ctx = self.ctx(r.client_capabilities.as_ref());
        if let Some(config) = decode(r.config.as_ref(), &ty, &mut diags, "provider configuration") {
            self.provider.configure(&ctx, &config, &r.terraform_version, &mut diags).await;
        }
        Ok(pb::configure_provider::Response { diagnostics: diags.to_proto() })
    }

    async fn read_resource(
        &self,
        r: pb::read_resource::Request,
    ) -> Result<pb::read_resource::Response, Status> {
        let started = std::time::Instant::now();
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
        Ok(out)
    }

    async fn plan_resource_change(
        &self,
        mut r: pb::plan_resource_change::Request,
    ) -> Result<pb::plan_resource_change::Response, Status> {
        let started = std::time::Instant::now();
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
                // The prior state as Terraform sent it (nothing to encode), and its identity.
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
        Ok(out)
    }

    async fn apply_resource_change(
        &self,
        r: pb::apply_resource_change::Request,
    ) -> Result<pb::apply_resource_change::Response, Status> {
        let (res, schema, ty) = self.resource(&r.type_name)?;
        let ctx = self.ctx(None);
        let mut diags = Diagnostics::new();
        let mut out = pb::apply_resource_change::Response::default();
        let prior = decode(r.prior_state.as_ref(), ty, &mut diags, "prior state");
        let planned = decode(r.planned_state.as_ref(), ty, &mut diags, "planned state");
        let config = decode(r.config.as_ref(), ty, &mut diags, "configuration");
        if let (Some(prior), Some(planned), Some(config)) = (prior, planned, config) {
            let change = framework::Change { prior, planned, config, private: r.planned_private };
            if let Some(new) =
                framework::apply_change(res.as_ref(), schema, &ctx, change, &mut diags).await
            {
                out.new_state = encode(&new.state, ty, &mut diags, "new state");
                out.new_identity = self.identity_of(&r.type_name, &new.state);
                out.private = new.private;
            }
        }
        out.diagnostics = diags.to_proto();
        Ok(out)
    }

    async fn import_resource_state(
        &self,
        r: pb::import_resource_state::Request,
    ) -> Result<pb::import_resource_state::Response, Status> {
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
        Ok(out)
    }

    async fn read_data_source(
        &self,
        r: pb::read_data_source::Request,
    ) -> Result<pb::read_data_source::Response, Status> {
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
        Ok(out)
    }
}

/// The stream of an RPC this provider does not offer.
type EmptyStream<T> = tokio_stream::Empty<Result<T, Status>>;

/// The `Provider` service. Each offered RPC answers with its expression, in which `this` is the
/// service and `r` the request's message; an unoffered one answers UNIMPLEMENTED, which Terraform
/// tolerates; streams' types follow.
macro_rules! provider_service {
    (
        offered { $($rpc:ident = |$this:ident, $r:ident| $answer:expr;)* }
        offered_as {
            $($rpc_as:ident($req:ty) -> $resp:ty = |$this_as:ident, $r_as:ident| $answer_as:expr;)*
        }
        unoffered { $($none:ident,)* }
        unoffered_as { $($none_as:ident($none_req:ty) -> $none_resp:ty;)* }
        $($streams:tt)*
    ) => {
        #[tonic::async_trait]
        impl ProviderRpc for PluginService {
            $(async fn $rpc(
                &self,
                r: Request<pb::$rpc::Request>,
            ) -> Result<Response<pb::$rpc::Response>, Status> {
                let ($this, $r) = (self, r.into_inner());
                Ok(Response::new($answer))
            })*
            $(async fn $rpc_as(&self, r: Request<$req>) -> Result<Response<$resp>, Status> {
                let ($this_as, $r_as) = (self, r.into_inner());
                Ok(Response::new($answer_as))
            })*
            $(async fn $none(
                &self,
                _: Request<pb::$none::Request>,
            ) -> Result<Response<pb::$none::Response>, Status> {
                let why = concat!(stringify!($none), " is not offered by this provider");
                Err(Status::unimplemented(why))
            })*
            $(async fn $none_as(
                &self,
                _: Request<$none_req>,
            ) -> Result<Response<$none_resp>, Status> {
                let why = concat!(stringify!($none_as), " is not offered by this provider");
                Err(Status::unimplemented(why))
            })*
            $($streams)*
        }
    };
}

// Each RPC whose messages are in the module of its own name is `offered` (or `unoffered`) by name
// alone; the others (`_as`) name their messages.
provider_service! {
    offered {
        get_metadata = |this, _r| this.metadata();
        get_provider_schema = |this, _r| {
            tracing::debug!("serving provider schema");
            this.schema_response()
        };
        get_resource_identity_schemas = |this, _r| this.identity_schemas();
        validate_provider_config = |this, r| this.validate_provider_config(r).await?;
        configure_provider = |this, r| this.configure_provider(r).await?;
        stop_provider = |this, _r| this.stop_provider();
        validate_resource_config = |this, r| this.validate_resource_config(r).await?;
        upgrade_resource_state = |this, r| this.upgrade_resource_state(r).await?;
        read_resource = |this, r| this.read_resource(r).await?;
        plan_resource_change = |this, r| this.plan_resource_change(r).await?;
        apply_resource_change = |this, r| this.apply_resource_change(r).await?;
        import_resource_state = |this, r| this.import_resource_state(r).await?;
        upgrade_resource_identity = |this, r| this.upgrade_identity(r);
        validate_data_resource_config = |this, r| this.validate_data_resource_config(r).await?;
        read_data_source = |this, r| this.read_data_source(r).await?;
        get_functions = |this, _r| pb::get_functions::Response {
            functions: this.function_declarations(),
            diagnostics: Vec::new(),
        };
        call_function = |this, r| this.call(&r.name, &r.arguments);
        validate_ephemeral_resource_config = |this, r| this.validate_ephemeral(r).await;
        open_ephemeral_resource = |this, r| this.open_ephemeral(r).await;
        // Nothing to renew or release: the values are read once, and hold no lease.
        renew_ephemeral_resource = |_this, _r| Default::default();
        close_ephemeral_resource = |_this, _r| Default::default();
        validate_list_resource_config = |this, r| this.validate_list(r).await;
        validate_action_config = |this, r| this.validate_action(r).await;
        plan_action = |this, r| this.plan_action_of(r).await;
    }
    offered_as {
        list_resource(pb::list_resource::Request) -> Self::ListResourceStream =
            |this, r| this.list(r).await;
        invoke_action(pb::invoke_action::Request) -> Self::InvokeActionStream =
            |this, r| this.invoke(r);
    }
    unoffered {
        move_resource_state, generate_resource_config, configure_state_store, lock_state,
        unlock_state, get_states, delete_state,
    }
    unoffered_as {
        validate_state_store_config(pb::validate_state_store::Request)
            -> pb::validate_state_store::Response;
        read_state_bytes(pb::read_state_bytes::Request) -> Self::ReadStateBytesStream;
        write_state_bytes(tonic::Streaming<pb::write_state_bytes::RequestChunk>)
            -> pb::write_state_bytes::Response;
    }
    type ListResourceStream = query::Answers<pb::list_resource::Event>;
    type ReadStateBytesStream = EmptyStream<pb::read_state_bytes::Response>;
    type InvokeActionStream = query::Answers<pb::invoke_action::Event>;
}
