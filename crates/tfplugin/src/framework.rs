//! The resource framework: the interfaces a provider implements, and the rules enforced once for
//! every resource (planning of computed values, requires-replace paths, the invariants of create /
//! read / update results). The gRPC layer calls into this; resources never see protocol messages.

use std::sync::Arc;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use super::diag::Diagnostics;
use super::model::Model;
use super::schema::{Block, Nesting, Schema};
use super::value::{AttrPath, Type, Value};

/// What every operation is given: the provider-wide stop signal and the client's abilities.
#[derive(Clone, Debug)]
pub struct Ctx {
    /// Cancelled on `StopProvider` (Ctrl-C): waits, retries and polls must then end promptly.
    pub stop: CancellationToken,
    /// Whether the Terraform client understands write-only attributes (≥ 1.11).
    pub write_only_allowed: bool,
}

/// Opaque per-resource data that Terraform keeps beside state but never shows.
pub type Private = Vec<u8>;

/// The state a create, update, read or import produced: a model, or (in the server) its value.
#[derive(Clone, Debug)]
pub struct NewState<S = Value> {
    /// The object.
    pub state: S,
    /// Private data to store with it.
    pub private: Private,
}

/// What a read found.
#[derive(Clone, Debug)]
pub enum Read<M> {
    /// The object, as it now is.
    Found(NewState<M>),
    /// The object no longer exists: Terraform removes it from state (and the next plan creates it).
    Gone,
}

/// The inputs of planning one change, and the plan being built: in the resource's model, or (in
/// the server) in protocol values.
#[derive(Debug)]
pub struct Plan<M = Value> {
    /// The state before the change (every field null, or `Value::Null`, when creating).
    pub prior: M,
    /// The configuration (may contain unknown values).
    pub config: M,
    /// The planned new state; starts as Terraform's proposal and is refined by the resource.
    pub planned: M,
    /// Attribute paths whose change forces replacement, beyond those the schema declares.
    pub requires_replace: Vec<AttrPath>,
    /// Private data planned to go with the new state.
    pub private: Private,
    /// Computed attributes the resource predicted (kept known even when unchanged).
    pub predicted: Vec<&'static str>,
    /// Top-level attributes and blocks whose change this plan makes in place although the schema or
    /// the resource's hook marks them requires-replace (e.g. values an import could not read, taken
    /// from the configuration).
    pub in_place: Vec<&'static str>,
    /// Terraform proposed the prior state itself: nothing changed in the configuration. The
    /// framework sets it before the resource's hook.
    pub proposal_is_prior: bool,
    /// Whether this plan creates the object.
    pub creating: bool,
}

impl<M> Plan<M> {
    /// Marks a computed attribute whose planned value the resource has set as predicted: kept as
    /// planned even when it equals Terraform's proposal.
    pub fn mark_predicted(&mut self, name: &'static str) {
        if !self.predicted.contains(&name) {
            self.predicted.push(name);
        }
    }

    /// Whether this plan creates the object.
    pub fn is_create(&self) -> bool {
        self.creating
    }
}

/// A managed resource type, written in its model: every method but validation and state upgrades
/// takes and returns [`Model`] values, which the framework decodes and encodes.
#[async_trait]
pub trait Resource: Send + Sync + 'static {
    /// The model its attributes are declared on.
    type Model: Model;
    /// The full type name, e.g. `example_server`.
    fn type_name(&self) -> &'static str;
    /// The schema.
    fn schema(&self) -> Schema;
    /// The identity schema (Terraform 1.12 and later): attributes of the state that name an
    /// instance for good. Identity values are taken from the state by these names, and an `import`
    /// block's identity becomes the import ID of their values joined by `/`.
    fn identity(&self) -> Option<crate::identity::IdentitySchema> {
        None
    }
    /// Checks a configuration as Terraform sent it (so that a value the model cannot hold is
    /// reported where it is), which may hold unknown values: only known values can be judged.
    async fn validate(&self, _ctx: &Ctx, _config: &Value, _diags: &mut Diagnostics) {}
    /// Refines a plan beyond the schema's rules: predicts computed values, keeps semantically equal
    /// prior values, adds replace paths, warns. Called for creates and updates, never for destroys.
    async fn modify_plan(
        &self,
        _ctx: &Ctx,
        _plan: &mut Plan<Self::Model>,
        _diags: &mut Diagnostics,
    ) {
    }
    /// Creates the remote object. Must return its state, or report an error.
    async fn create(
        &self,
        ctx: &Ctx,
        planned: Self::Model,
        config: Self::Model,
        diags: &mut Diagnostics,
    ) -> Option<NewState<Self::Model>>;
    /// Reads the remote object; `None` with an error when it cannot.
    async fn read(
        &self,
        ctx: &Ctx,
        state: Self::Model,
        private: &Private,
        diags: &mut Diagnostics,
    ) -> Option<Read<Self::Model>>;
    /// Updates the remote object in place.
    async fn update(
        &self,
        ctx: &Ctx,
        prior: Self::Model,
        planned: Self::Model,
        config: Self::Model,
        private: &Private,
        diags: &mut Diagnostics,
    ) -> Option<NewState<Self::Model>>;
    /// Deletes the remote object.
    async fn delete(
        &self,
        ctx: &Ctx,
        prior: Self::Model,
        private: &Private,
        diags: &mut Diagnostics,
    );
    /// Turns an import ID into a state (and private data) that `read` can complete; `None` with an
    /// error when it cannot.
    async fn import(
        &self,
        _ctx: &Ctx,
        _id: &str,
        diags: &mut Diagnostics,
    ) -> Option<NewState<Self::Model>> {
        diags.error(
            "Import Not Supported",
            format!("Resource type {} cannot be imported.", self.type_name()),
        );
        None
    }
    /// State written under an older schema `version` (Terraform's JSON), rewritten as state of the
    /// current schema; `None`, the default, when it reads as it is.
    fn upgrade_json(&self, _version: i64, _json: &serde_json::Value) -> Option<serde_json::Value> {
        None
    }
}

/// A managed resource as the server handles it, in protocol values: every [`Resource`] is one, its
/// values decoded into its model and encoded back here.
#[async_trait]
pub trait AnyResource: Send + Sync {
    /// [`Resource::type_name`].
    fn type_name(&self) -> &'static str;
    /// [`Resource::schema`].
    fn schema(&self) -> Schema;
    /// [`Resource::identity`].
    fn identity(&self) -> Option<crate::identity::IdentitySchema>;
    /// [`Resource::validate`].
    async fn validate(&self, ctx: &Ctx, config: &Value, diags: &mut Diagnostics);
    /// Reads state written under `version` of the schema (Terraform's JSON) as a value of the
    /// current `schema` and its type `ty`, both built once by the caller, after
    /// [`Resource::upgrade_json`]. Called for state of an older version, and for state of the
    /// current version that does not match the schema (to say why); other state of the current
    /// version is decoded directly.
    fn upgrade_state(
        &self,
        schema: &Schema,
        ty: &Type,
        version: i64,
        json: &serde_json::Value,
        diags: &mut Diagnostics,
    ) -> Option<Value>;
    /// [`Resource::modify_plan`].
    async fn modify_plan(&self, ctx: &Ctx, plan: &mut Plan, diags: &mut Diagnostics);
    /// [`Resource::create`].
    async fn create(
        &self,
        ctx: &Ctx,
        planned: &Value,
        config: &Value,
        diags: &mut Diagnostics,
    ) -> Option<NewState>;
    /// [`Resource::read`]; a `Value::Null` state when the object is gone.
    async fn read(
        &self,
        ctx: &Ctx,
        state: &Value,
        private: &Private,
        diags: &mut Diagnostics,
    ) -> Option<NewState>;
    /// [`Resource::update`].
    async fn update(&self, ctx: &Ctx, change: &Change, diags: &mut Diagnostics)
    -> Option<NewState>;
    /// [`Resource::delete`].
    async fn delete(&self, ctx: &Ctx, prior: &Value, private: &Private, diags: &mut Diagnostics);
    /// [`Resource::import`].
    async fn import(&self, ctx: &Ctx, id: &str, diags: &mut Diagnostics) -> Option<NewState>;
}

fn encoded<M: Model>(new: NewState<M>) -> NewState {
    NewState { state: new.state.encode(), private: new.private }
}

#[async_trait]
impl<R: Resource> AnyResource for R {
    fn type_name(&self) -> &'static str {
        Resource::type_name(self)
    }
    fn schema(&self) -> Schema {
        Resource::schema(self)
    }
    fn identity(&self) -> Option<crate::identity::IdentitySchema> {
        Resource::identity(self)
    }
    async fn validate(&self, ctx: &Ctx, config: &Value, diags: &mut Diagnostics) {
        Resource::validate(self, ctx, config, diags).await;
    }
    fn upgrade_state(
        &self,
        schema: &Schema,
        ty: &Type,
        version: i64,
        json: &serde_json::Value,
        diags: &mut Diagnostics,
    ) -> Option<Value> {
        if version > schema.version {
            diags.error(
                "State From a Newer Provider",
                format!(
                    "The state of this {} was written by a newer provider (schema version \
                    {version}, this provider knows {}). Upgrade the provider.",
                    self.type_name(),
                    schema.version
                ),
            );
            return None;
        }
        let upgraded =
            if version < schema.version { self.upgrade_json(version, json) } else { None };
        super::value::from_json(upgraded.as_ref().unwrap_or(json), ty)
            .map_err(|e| {
                diags.error_at(
                    e.path.clone(),
                    "Unreadable Resource State",
                    format!("The stored state does not match the schema: {e}."),
                )
            })
            .ok()
    }
    async fn modify_plan(&self, ctx: &Ctx, plan: &mut Plan, diags: &mut Diagnostics) {
        let prior = R::Model::decode(&plan.prior);
        // An unchanged resource's proposal is its prior state: decoded once.
        let planned =
            if plan.proposal_is_prior { prior.clone() } else { R::Model::decode(&plan.planned) };
        let mut typed = Plan {
            prior,
            config: R::Model::decode(&plan.config),
            planned,
            requires_replace: std::mem::take(&mut plan.requires_replace),
            private: std::mem::take(&mut plan.private),
            predicted: std::mem::take(&mut plan.predicted),
            in_place: std::mem::take(&mut plan.in_place),
            proposal_is_prior: plan.proposal_is_prior,
            creating: plan.creating,
        };
        Resource::modify_plan(self, ctx, &mut typed, diags).await;
        // Left as it was, the proposal (the prior state itself) needs no encoding.
        if !(typed.proposal_is_prior && typed.planned == typed.prior) {
            plan.planned = typed.planned.encode();
        }
        plan.requires_replace = typed.requires_replace;
        plan.private = typed.private;
        plan.predicted = typed.predicted;
        plan.in_place = typed.in_place;
    }
    async fn create(
        &self,
        ctx: &Ctx,
        planned: &Value,
        config: &Value,
        diags: &mut Diagnostics,
    ) -> Option<NewState> {
        Resource::create(self, ctx, R::Model::decode(planned), R::Model::decode(config), diags)
            .await
            .map(encoded)
    }
    async fn read(
        &self,
        ctx: &Ctx,
        state: &Value,
        private: &Private,
        diags: &mut Diagnostics,
    ) -> Option<NewState> {
        Some(match Resource::read(self, ctx, R::Model::decode(state), private, diags).await? {
            Read::Found(new) => encoded(new),
            Read::Gone => NewState { state: Value::Null, private: Vec::new() },
        })
    }
    async fn update(
        &self,
        ctx: &Ctx,
        change: &Change,
        diags: &mut Diagnostics,
    ) -> Option<NewState> {
        let decode = R::Model::decode;
        let (prior, planned, config) =
            (decode(&change.prior), decode(&change.planned), decode(&change.config));
        Resource::update(self, ctx, prior, planned, config, &change.private, diags)
            .await
            .map(encoded)
    }
    async fn delete(&self, ctx: &Ctx, prior: &Value, private: &Private, diags: &mut Diagnostics) {
        Resource::delete(self, ctx, R::Model::decode(prior), private, diags).await;
    }
    async fn import(&self, ctx: &Ctx, id: &str, diags: &mut Diagnostics) -> Option<NewState> {
        Resource::import(self, ctx, id, diags).await.map(encoded)
    }
}

/// A data source type.
#[async_trait]
pub trait DataSource: Send + Sync {
    /// The full type name, e.g. `example_server`.
    fn type_name(&self) -> &'static str;
    /// The schema.
    fn schema(&self) -> Schema;
    /// Checks a configuration that may hold unknown values.
    async fn validate(&self, _ctx: &Ctx, _config: &Value, _diags: &mut Diagnostics) {}
    /// Reads the data.
    async fn read(&self, ctx: &Ctx, config: &Value, diags: &mut Diagnostics) -> Option<Value>;
}

/// An ephemeral resource (Terraform 1.10+): values read when needed, never kept in plan or state.
#[async_trait]
pub trait EphemeralResource: Send + Sync {
    /// The full type name.
    fn type_name(&self) -> &'static str;
    /// The schema.
    fn schema(&self) -> Schema;
    /// Checks a configuration that may hold unknown values.
    async fn validate(&self, _ctx: &Ctx, _config: &Value, _diags: &mut Diagnostics) {}
    /// Reads the values.
    async fn open(&self, ctx: &Ctx, config: &Value, diags: &mut Diagnostics) -> Option<Value>;
}

/// The provider itself: its configuration and the types it offers.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The registry name used in type names (e.g. `example`).
    fn name(&self) -> &'static str;
    /// The provider's release version, as its package declares it (logged when serving).
    fn version(&self) -> &'static str;
    /// The provider block's schema.
    fn schema(&self) -> Schema;
    /// The managed resource types.
    fn resources(&self) -> Vec<Arc<dyn AnyResource>>;
    /// The data source types.
    fn data_sources(&self) -> Vec<Arc<dyn DataSource>>;
    /// The ephemeral resource types (Terraform 1.10 and later); none by default.
    fn ephemeral_resources(&self) -> Vec<Arc<dyn EphemeralResource>> {
        Vec::new()
    }
    /// The provider-defined functions (Terraform 1.8 and later); none by default.
    fn functions(&self) -> Vec<Arc<dyn crate::function::Function>> {
        Vec::new()
    }
    /// The list resources (Terraform 1.14 and later), each named as the managed resource it finds;
    /// none by default.
    fn list_resources(&self) -> Vec<Arc<dyn crate::query::ListResource>> {
        Vec::new()
    }
    /// The actions (Terraform 1.14 and later); none by default.
    fn actions(&self) -> Vec<Arc<dyn crate::query::Action>> {
        Vec::new()
    }
    /// Checks the provider configuration (which may hold unknown values).
    async fn validate(&self, _ctx: &Ctx, _config: &Value, _diags: &mut Diagnostics) {}
    /// Applies the provider configuration; may be called with unknown values during plan.
    async fn configure(
        &self,
        ctx: &Ctx,
        config: &Value,
        terraform_version: &str,
        diags: &mut Diagnostics,
    );
}

/// Applies the schema's plan rules around the resource's own [`Resource::modify_plan`]: computed
/// attributes the configuration leaves unset become unknown when the object changes (unless marked
/// stable), a plan with no change returns the prior state untouched, and attributes and blocks
/// marked requires-replace that differ from the prior state are listed. `schema` is the resource's
/// schema, built once by the caller: this runs for every instance on every plan. `true` when the
/// planned value is the prior state itself (no change).
pub async fn plan_change(
    resource: &dyn AnyResource,
    schema: &Schema,
    ctx: &Ctx,
    plan: &mut Plan,
    diags: &mut Diagnostics,
) -> bool {
    if plan.planned.is_null() {
        return false; // destroy: nothing to plan
    }
    null_write_only(&schema.block, &mut plan.planned);
    plan_declared_defaults(&schema.block, plan);
    if null_absent_single_blocks(&schema.block, &plan.config, &mut plan.planned) {
        plan.proposal_is_prior = false;
    }
    // Terraform proposes an unchanged resource's prior state as it is: then that is the value
    // before the hook, and no copy is needed.
    plan.proposal_is_prior =
        plan.proposal_is_prior || (!plan.creating && plan.planned == plan.prior);
    let before_hook = (!plan.proposal_is_prior).then(|| plan.planned.clone());
    resource.modify_plan(ctx, plan, diags).await;
    if diags.has_errors() {
        return false;
    }
    if !plan.creating && plan.planned.same_as(&plan.prior) {
        // Equal but for set order: answer the prior value itself, so nothing reads as a change.
        std::mem::swap(&mut plan.planned, &mut plan.prior);
        return true;
    }
    let before_hook = before_hook.as_ref().unwrap_or(&plan.prior);
    mark_unknown_computed(
        &schema.block,
        &plan.prior,
        before_hook,
        &plan.config,
        &plan.predicted,
        &mut plan.planned,
    );
    if !plan.creating {
        for p in replace_paths(&schema.block, &plan.prior, &plan.planned) {
            if !plan.requires_replace.contains(&p) {
                plan.requires_replace.push(p);
            }
        }
        // What the plan makes in place replaces nothing, whoever listed it (schema or resource).
        let in_place = &plan.in_place;
        plan.requires_replace.retain(|p| !in_place.iter().any(|name| *p == AttrPath::attr(name)));
    }
    false
}

/// Declared defaults: an attribute the configuration leaves null takes its default in a create, and
/// keeps what state holds in an update; either way it is predicted.
fn plan_declared_defaults(block: &Block, plan: &mut Plan) {
    for attr in block.attributes.iter() {
        let Some(default) = attr.default else { continue };
        if plan.config.get(attr.name).is_some_and(|v| !v.is_null()) {
            continue;
        }
        let value = if plan.creating {
            default()
        } else {
            plan.prior.get(attr.name).cloned().unwrap_or(Value::Null)
        };
        if plan.planned.get(attr.name) != Some(&value) {
            plan.planned.set_attr(attr.name, value);
        }
        plan.mark_predicted(attr.name);
    }
}

/// Marks top-level computed attributes unknown where the configuration did not set them, the hook
/// did not predict them, and they are not declared stable (or have no prior value yet).
fn mark_unknown_computed(
    block: &Block,
    prior: &Value,
    before_hook: &Value,
    config: &Value,
    predicted: &[&str],
    planned: &mut Value,
) {
    let unset = |name: &str| config.get(name).is_none_or(Value::is_null);
    for attr in block
        .attributes
        .iter()
        .filter(|a| a.computed_by_provider() && !predicted.contains(&a.name) && unset(a.name))
    {
        let Some(current) = planned.get(attr.name) else { continue };
        // A value the hook changed is the resource's prediction.
        let hook_changed = before_hook.get(attr.name).is_none_or(|b| !b.same_as(current));
        let keep = attr.stable && prior.get(attr.name).is_some_and(|p| !p.is_null());
        if !hook_changed && !keep {
            planned.set_attr(attr.name, Value::Unknown);
        }
    }
}

fn replace_paths(block: &Block, prior: &Value, planned: &Value) -> Vec<AttrPath> {
    let differs = |name: &str| {
        let a = prior.get(name).unwrap_or(&Value::Null);
        let b = planned.get(name).unwrap_or(&Value::Null);
        // An unknown value may differ from any, null included.
        b.is_unknown() || !a.same_as(b)
    };
    let attributes = block.attributes.iter().filter(|a| a.requires_replace && !a.write_only);
    let blocks = block.blocks.iter().filter(|b| b.requires_replace);
    attributes
        .map(|a| a.name)
        .chain(blocks.map(|b| b.name))
        .filter(|name| differs(name))
        .map(AttrPath::attr)
        .collect()
}

/// The inputs of applying one planned change.
#[derive(Debug)]
pub struct Change {
    /// The state before (`Value::Null` for a create).
    pub prior: Value,
    /// The planned state (`Value::Null` for a destroy).
    pub planned: Value,
    /// The configuration.
    pub config: Value,
    /// The private data planned with it.
    pub private: Private,
}

/// Applies a planned change through the resource, enforcing the apply invariants: a failed destroy
/// keeps the object in state; a create returns state or an error; an update that changes only what
/// the schema declares state only is recorded without the resource; a failed update keeps the prior
/// state; write-only values never reach state; a new state has no unknown values. Returns the new
/// state, or `None` when there is none to record (a failed create).
pub async fn apply_change(
    resource: &dyn AnyResource,
    schema: &Schema,
    ctx: &Ctx,
    change: Change,
    diags: &mut Diagnostics,
) -> Option<NewState> {
    let result = if change.planned.is_null() {
        resource.delete(ctx, &change.prior, &change.private, diags).await;
        if diags.has_errors() {
            Some(NewState { state: change.prior, private: change.private })
        } else {
            Some(NewState { state: Value::Null, private: Vec::new() })
        }
    } else if change.prior.is_null() {
        let created = resource.create(ctx, &change.planned, &change.config, diags).await;
        if created.is_none() && !diags.has_errors() {
            diags.bug(
                "Missing Resource State After Create",
                format!("The create of {} returned no state and no error.", resource.type_name()),
            );
        }
        created
    } else if change.planned.is_wholly_known()
        && schema.block.differs_in_state_only(&change.prior, &change.planned)
    {
        // Only what Terraform alone keeps changes (as declared): nothing is sent.
        Some(NewState { state: change.planned, private: change.private })
    } else {
        let updated = resource.update(ctx, &change, diags).await;
        if updated.is_none() && !diags.has_errors() {
            diags.bug(
                "Missing Resource State After Update",
                format!("The update of {} returned no state and no error.", resource.type_name()),
            );
        }
        Some(updated.unwrap_or(NewState { state: change.prior, private: change.private }))
    };
    result.map(|mut new| {
        null_write_only(&schema.block, &mut new.state);
        if !new.state.is_null() {
            check_known(resource.type_name(), "Apply", &new.state, diags);
        }
        new
    })
}

/// Reads a resource through its `read`, checking that the state it returns is wholly known.
pub async fn read_resource(
    resource: &dyn AnyResource,
    ctx: &Ctx,
    state: &Value,
    private: &Private,
    diags: &mut Diagnostics,
) -> Option<NewState> {
    let new = resource.read(ctx, state, private, diags).await?;
    check_known(resource.type_name(), "Read", &new.state, diags);
    if new.state.is_null() {
        tracing::info!(
            resource = resource.type_name(),
            "remote object is gone; removing it from state"
        );
    }
    Some(new)
}

/// Reads a data source, checking that the value it returns is wholly known.
pub async fn read_data_source(
    source: &dyn DataSource,
    ctx: &Ctx,
    config: &Value,
    diags: &mut Diagnostics,
) -> Option<Value> {
    let state = source.read(ctx, config, diags).await?;
    check_known(source.type_name(), "Read", &state, diags);
    Some(state)
}

/// A new state must be wholly known: an unknown value there is a provider bug.
fn check_known(type_name: &str, step: &str, state: &Value, diags: &mut Diagnostics) {
    if !state.is_wholly_known() {
        diags.bug(
            format!("Unknown Value After {step}"),
            format!("The {step} of {type_name} returned a state with unknown values."),
        );
    }
}

/// Nulls the single nested blocks the configuration leaves out; `true` when it changed `planned`. A
/// block is never computed, so it exists exactly when the configuration writes it; but older
/// Terraform releases (1.0.3 among them) propose a removed single block as the prior state held it,
/// then refuse a plan that keeps it ("planned for existence but config wants absence").
fn null_absent_single_blocks(block: &Block, config: &Value, planned: &mut Value) -> bool {
    let mut changed = false;
    for b in block.blocks.iter().filter(|b| b.nesting == Nesting::Single) {
        let Some(current) = planned.get_mut(b.name).filter(|c| !c.is_null()) else { continue };
        match config.get(b.name) {
            None | Some(Value::Null) => {
                *current = Value::Null;
                changed = true;
            }
            Some(inner) if !current.is_unknown() => {
                changed |= null_absent_single_blocks(&b.block, inner, current);
            }
            Some(_) => {}
        }
    }
    changed
}

/// Write-only attributes never reach state: nulls them at the top level of an object.
pub fn null_write_only(block: &Block, value: &mut Value) {
    for a in block.attributes.iter().filter(|a| a.write_only) {
        if value.get(a.name).is_some() {
            value.set_attr(a.name, Value::Null);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Attribute, NestedBlock};
    use crate::value::Type;

    struct Fake;

    crate::model! {
        struct Thing {
            /// ID.
            #[attribute(computed, stable)]
            id: String,
            /// Status.
            #[attribute(computed)]
            status: String,
            /// Name.
            #[attribute(required, requires_replace)]
            name: String,
            /// Size.
            #[attribute(optional)]
            size: i64,
        }
    }

    #[async_trait]
    impl Resource for Fake {
        type Model = Thing;
        fn type_name(&self) -> &'static str {
            "fake_thing"
        }
        fn schema(&self) -> Schema {
            Schema { version: 0, block: Thing::schema_block("A thing.") }
        }
        async fn create(
            &self,
            _: &Ctx,
            _: Thing,
            _: Thing,
            _: &mut Diagnostics,
        ) -> Option<NewState<Thing>> {
            None
        }
        async fn read(
            &self,
            _: &Ctx,
            _: Thing,
            _: &Private,
            _: &mut Diagnostics,
        ) -> Option<Read<Thing>> {
            None
        }
        async fn update(
            &self,
            _: &Ctx,
            _: Thing,
            _: Thing,
            _: Thing,
            _: &Private,
            _: &mut Diagnostics,
        ) -> Option<NewState<Thing>> {
            None
        }
        async fn delete(&self, _: &Ctx, _: Thing, _: &Private, _: &mut Diagnostics) {}
    }

    fn ctx() -> Ctx {
        Ctx { stop: CancellationToken::new(), write_only_allowed: false }
    }

    fn obj(id: Value, status: Value, name: &str, size: i64) -> Value {
        Value::object([
            ("id", id),
            ("status", status),
            ("name", Value::string(name)),
            ("size", Value::int(size)),
        ])
    }

    /// An existing thing: id "1", status "ready".
    fn ready(name: &str, size: i64) -> Value {
        obj(Value::string("1"), Value::string("ready"), name, size)
    }

    async fn run(prior: Value, proposed: Value) -> Plan {
        // Computed attributes are null in a configuration.
        let mut config = proposed.clone();
        config.set_attr("id", Value::Null);
        config.set_attr("status", Value::Null);
        let mut plan = Plan {
            creating: prior.is_null(),
            prior,
            config,
            planned: proposed,
            requires_replace: vec![],
            private: vec![],
            predicted: vec![],
            in_place: vec![],
            proposal_is_prior: false,
        };
        let mut d = Diagnostics::new();
        plan_change(&Fake, &Resource::schema(&Fake), &ctx(), &mut plan, &mut d).await;
        plan
    }

    #[tokio::test]
    async fn create_marks_computed_unknown() {
        let plan = run(Value::Null, obj(Value::Null, Value::Null, "a", 1)).await;
        assert_eq!(plan.planned.get("id"), Some(&Value::Unknown));
        assert_eq!(plan.planned.get("status"), Some(&Value::Unknown));
    }

    #[tokio::test]
    async fn no_change_returns_prior_exactly() {
        let prior = ready("a", 1);
        let plan = run(prior.clone(), prior.clone()).await;
        assert_eq!(plan.planned, prior);
        assert!(plan.requires_replace.is_empty());
    }

    #[test]
    fn a_single_block_left_out_of_the_configuration_is_planned_absent() {
        let single = |name: &'static str, blocks: Vec<NestedBlock>| {
            let region = Attribute::optional("region", Type::String, "Region.");
            let block = Block { attributes: vec![region], blocks, ..Default::default() };
            NestedBlock::new(name, Nesting::Single, block)
        };
        let block = Block {
            blocks: vec![single("options", vec![single("inner", vec![])]).requires_replace()],
            ..Default::default()
        };
        let options = |inner: Value| {
            let options = Value::object([("region", Value::string("a")), ("inner", inner)]);
            Value::object([("options", options)])
        };
        let held = options(Value::object([("region", Value::string("b"))]));
        // Left out: absent, as Terraform before 1.3 would otherwise plan it from the prior state.
        let mut planned = held.clone();
        let absent = Value::object([("options", Value::Null)]);
        assert!(null_absent_single_blocks(&block, &absent, &mut planned));
        assert_eq!(planned.get("options"), Some(&Value::Null));
        // Written without its inner block: only that one goes.
        let mut planned = held.clone();
        assert!(null_absent_single_blocks(&block, &options(Value::Null), &mut planned));
        assert_eq!(planned.get("options").and_then(|o| o.get("inner")), Some(&Value::Null));
        assert_eq!(planned.get("options").and_then(|o| o.get("region")), Some(&Value::string("a")));
        // Written whole: nothing changes.
        let mut planned = held.clone();
        assert!(!null_absent_single_blocks(&block, &held, &mut planned));
        assert_eq!(planned, held);
    }

    #[tokio::test]
    async fn update_keeps_stable_and_replaces_on_marked_attributes() {
        let prior = ready("a", 1);
        let plan = run(prior.clone(), ready("a", 2)).await;
        assert_eq!(plan.planned.get("id"), Some(&Value::string("1")));
        assert_eq!(plan.planned.get("status"), Some(&Value::Unknown));
        assert!(plan.requires_replace.is_empty());
        let plan = run(prior, ready("b", 1)).await;
        assert_eq!(plan.requires_replace, vec![AttrPath::attr("name")]);
    }
}
