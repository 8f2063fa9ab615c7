//! The services of Terraform 1.14: list resources (`ListResource`, a stream of results) and actions
//! (`PlanAction`, `InvokeAction`, a stream of progress messages ending in the outcome). A child of
//! the server module, sharing its state.

use std::collections::HashMap;
use std::pin::Pin;

use tokio_stream::Stream;
use tonic::Status;

use super::super::diag::Diagnostics;
use super::super::query::{Found, Progress};
use super::super::value::{AttrPath, Value};
use super::{PluginService, decode, encode, named, pb};

const UNKNOWN_ACTION: (&str, &str) = ("Unknown Action", "action");

/// A stream of answers.
pub type Answers<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

impl PluginService {
    pub(super) fn action_schemas(&self) -> HashMap<String, pb::ActionSchema> {
        self.actions
            .iter()
            .map(|(n, (_, s, _))| (n.to_string(), pb::ActionSchema { schema: Some(s.to_proto()) }))
            .collect()
    }

    /// `ValidateListResourceConfig`.
    pub(super) async fn validate_list(
        &self,
        r: pb::validate_list_resource_config::Request,
    ) -> pb::validate_list_resource_config::Response {
        let mut diags = Diagnostics::new();
        if let Some((l, schema, ty)) =
            named(&self.lists, ("Unknown List Resource", "list resource"), &r.type_name, &mut diags)
        {
            if let Some(config) = decode(r.config.as_ref(), ty, &mut diags, "list configuration") {
                schema.block.check_declared(&config, &AttrPath::root(), &mut diags);
                l.validate(&self.ctx(None), &config, &mut diags).await;
            }
            let limit = decode(r.limit.as_ref(), &super::Type::Number, &mut diags, "limit");
            if let Some(n) = limit.as_ref().and_then(Value::as_number).and_then(|n| n.as_i64())
                && n < 0
            {
                diags.error("Invalid Limit", format!("limit is {n}; it must be zero or more."));
            }
        }
        pb::validate_list_resource_config::Response { diagnostics: diags.to_proto() }
    }

    /// `ListResource`: every result as an event; diagnostics without results as one event of their
    /// own.
    pub(super) async fn list(
        &self,
        r: pb::list_resource::Request,
    ) -> Answers<pb::list_resource::Event> {
        let mut diags = Diagnostics::new();
        let mut events = Vec::new();
        let name = r.type_name.as_str();
        match (self.lists.get(name), self.identities.get(name), self.resources.get(name)) {
            (Some((l, _, ty)), Some((_, identity_ty)), Some((_, _, resource_ty))) => {
                if let Some(config) =
                    decode(r.config.as_ref(), ty, &mut diags, "list configuration")
                {
                    let include = r.include_resource_object;
                    let limit = usize::try_from(r.limit).unwrap_or(0);
                    let found = l.list(&self.ctx(None), &config, include, limit, &mut diags).await;
                    let found = found.into_iter().take(if limit == 0 { usize::MAX } else { limit });
                    events.extend(found.map(|f| self.event(f, identity_ty, resource_ty, include)));
                }
            }
            _ => diags.error(
                "Unknown List Resource",
                format!("This provider has no list resource {:?}.", r.type_name),
            ),
        }
        if !diags.is_empty() {
            events.push(pb::list_resource::Event {
                diagnostic: diags.to_proto(),
                ..Default::default()
            });
        }
        Box::pin(tokio_stream::iter(events.into_iter().map(Ok)))
    }

    fn event(
        &self,
        f: Found,
        identity_ty: &super::Type,
        resource_ty: &super::Type,
        include: bool,
    ) -> pb::list_resource::Event {
        let mut diags = Diagnostics::new();
        let identity = encode(&f.identity, identity_ty, &mut diags, "identity")
            .map(|dv| pb::ResourceIdentityData { identity_data: Some(dv) });
        let resource_object = match (include, &f.resource) {
            (true, Some(state)) => encode(state, resource_ty, &mut diags, "resource"),
            _ => None,
        };
        pb::list_resource::Event {
            identity,
            display_name: crate::diag::printable(&f.display_name),
            resource_object,
            diagnostic: diags.to_proto(),
        }
    }

    /// `ValidateActionConfig`.
    pub(super) async fn validate_action(
        &self,
        r: pb::validate_action_config::Request,
    ) -> pb::validate_action_config::Response {
        let mut diags = Diagnostics::new();
        if let Some((a, schema, ty)) =
            named(&self.actions, UNKNOWN_ACTION, &r.type_name, &mut diags)
            && let Some(config) = decode(r.config.as_ref(), ty, &mut diags, "action configuration")
        {
            schema.block.check_declared(&config, &AttrPath::root(), &mut diags);
            a.validate(&self.ctx(None), &config, &mut diags).await;
        }
        pb::validate_action_config::Response { diagnostics: diags.to_proto() }
    }

    /// `PlanAction`.
    pub(super) async fn plan_action_of(
        &self,
        r: pb::plan_action::Request,
    ) -> pb::plan_action::Response {
        let mut diags = Diagnostics::new();
        let ctx = self.ctx(r.client_capabilities.as_ref());
        if let Some((a, _, ty)) = named(&self.actions, UNKNOWN_ACTION, &r.action_type, &mut diags)
            && let Some(config) = decode(r.config.as_ref(), ty, &mut diags, "action configuration")
        {
            a.plan(&ctx, &config, &mut diags).await;
        }
        pb::plan_action::Response { diagnostics: diags.to_proto(), deferred: None }
    }

    /// `InvokeAction`: runs the action on a task of its own; its progress messages stream as they
    /// come, then its outcome.
    pub(super) fn invoke(
        &self,
        r: pb::invoke_action::Request,
    ) -> Answers<pb::invoke_action::Event> {
        use pb::invoke_action::event::{Completed, Progress as Said, Type};
        let (tx, rx) =
            tokio::sync::mpsc::unbounded_channel::<Result<pb::invoke_action::Event, Status>>();
        let mut diags = Diagnostics::new();
        let found = named(&self.actions, UNKNOWN_ACTION, &r.action_type, &mut diags).cloned();
        let ctx = self.ctx(r.client_capabilities.as_ref());
        tokio::spawn(async move {
            if let Some((action, _, ty)) = found
                && let Some(config) =
                    decode(r.config.as_ref(), &ty, &mut diags, "action configuration")
            {
                let (progress, mut said) = Progress::channel();
                let relay = tx.clone();
                let forward = tokio::spawn(async move {
                    while let Some(message) = said.recv().await {
                        let _ = relay.send(Ok(pb::invoke_action::Event {
                            r#type: Some(Type::Progress(Said { message })),
                        }));
                    }
                });
                action.invoke(&ctx, &config, &progress, &mut diags).await;
                drop(progress);
                let _ = forward.await;
            }
            let _ = tx.send(Ok(pb::invoke_action::Event {
                r#type: Some(Type::Completed(Completed { diagnostics: diags.to_proto() })),
            }));
        });
        Box::pin(tokio_stream::wrappers::UnboundedReceiverStream::new(rx))
    }
}
