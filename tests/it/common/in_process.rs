//! The provider and `coiled-local` in the test process, with no Terraform: the provider's tfplugin6
//! service called directly, and the steps Terraform takes between the calls (the proposed new state,
//! the checks of a plan and of an apply's result) done here, as Terraform does them. For tests that
//! try every attribute of every resource in seconds; the end-to-end suites keep the CLI's behaviour.

use std::sync::Arc;

use terraform_provider_coiled::provider::CoiledProvider;
use tfplugin::framework::Provider as _;
use tfplugin::proto::tfplugin6 as pb;
use tfplugin::proto::tfplugin6::provider_server::Provider as _;
use tfplugin::schema::{Block, Nesting, Presence, Schema};
use tfplugin::server::PluginService;
use tfplugin::value::{self, Type, Value};
use tokio_util::sync::CancellationToken;
use tonic::Request;

/// The token the in-process server accepts.
const TOKEN: &str = "in-process-token";

/// A `coiled-local` served on loopback from this process, and a configured provider service.
pub struct InProcess {
    /// The server's state: its request log and store.
    pub server: coiled_local::Shared,
    service: PluginService,
    schemas: Vec<(String, Schema)>,
    stop: CancellationToken,
    _data: tempfile::TempDir,
}

/// A diagnostic as Terraform shows it: severity, summary and the attribute's path (`a.b[0]`).
#[derive(Debug, Clone)]
pub struct Diag {
    /// An error (else a warning).
    pub error: bool,
    /// The summary and detail.
    pub text: String,
    /// The attribute's path, empty for none.
    pub path: String,
}

/// A plan's outcome.
#[derive(Debug)]
pub struct Planned {
    /// The planned new state.
    pub state: Value,
    /// The paths whose change replaces the resource.
    pub replaces: Vec<String>,
    /// Private data handed to the apply.
    pub private: Vec<u8>,
    /// Its diagnostics.
    pub diags: Vec<Diag>,
}

/// State as Terraform keeps it: the value and the provider's private data.
#[derive(Debug, Clone)]
pub struct Stored {
    /// The state value (null when the resource is gone).
    pub state: Value,
    /// Private data.
    pub private: Vec<u8>,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl InProcess {
    /// A server with workspaces `alice` (the token's default) and `bob`, the software environments
    /// `dask` and `other-env`, clusters ready at once, and a provider configured for it.
    pub async fn start() -> InProcess {
        let dir = tempfile::tempdir().unwrap();
        let store = coiled_local::store::Store::open(dir.path()).unwrap();
        store.seed("alice", "alice", TOKEN).unwrap();
        store.add_membership("alice", "bob", true).unwrap();
        store.set_default_membership("alice", Some("alice")).unwrap();
        for (ws, name) in [("alice", "dask"), ("alice", "other-env"), ("bob", "dask")] {
            store.ensure_software_env(ws, name).unwrap();
        }
        let config = coiled_local::Config {
            provision_delay: std::time::Duration::ZERO,
            stop_delay: std::time::Duration::ZERO,
            software_envs: vec!["dask".into(), "other-env".into()],
            ..Default::default()
        };
        let state = Arc::new(coiled_local::State {
            store,
            config,
            faults: coiled_local::faults::Faults::new(Default::default()),
            wake: Default::default(),
            stats: Default::default(),
            requests: Default::default(),
            dask: None,
            vary: None,
        });
        let stop = CancellationToken::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(coiled_local::lifecycle::run(state.clone()));
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(coiled_local::serve::serve(
            listener,
            coiled_local::app::app(state.clone()),
            shutdown,
        ));
        let provider = Arc::new(CoiledProvider::default());
        let schemas =
            provider.resources().iter().map(|r| (r.type_name().to_string(), r.schema())).collect();
        let provider_ty = provider.schema().object_type();
        let service = PluginService::new(provider, stop.clone());
        let config =
            Value::object([("server", Value::string(url)), ("token", Value::string(TOKEN))]);
        let r = service
            .configure_provider(Request::new(pb::configure_provider::Request {
                config: dynamic(&config, &provider_ty),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
        InProcess { server: state, service, schemas, stop, _data: dir }
    }

    /// The schema of a resource type.
    pub fn schema(&self, type_name: &str) -> &Schema {
        &self
            .schemas
            .iter()
            .find(|(n, _)| n == type_name)
            .unwrap_or_else(|| panic!("no resource {type_name}"))
            .1
    }

    fn ty(&self, type_name: &str) -> Type {
        self.schema(type_name).object_type()
    }

    /// The requests that wrote something (every method but `GET`) since `from` in the log.
    pub fn writes_since(&self, from: usize) -> Vec<String> {
        let log = self.server.requests.snapshot();
        log.iter()
            .skip(from)
            .filter(|r| r.method != "GET")
            .map(|r| format!("{} {}", r.method, r.path))
            .collect()
    }

    /// What the requests since `from` wrote: path and body of each but `GET` and `DELETE`.
    pub fn sent_since(&self, from: usize) -> Vec<(String, serde_json::Value)> {
        let log = self.server.requests.snapshot();
        log.into_iter()
            .skip(from)
            .filter(|r| r.method != "GET" && r.method != "DELETE")
            .map(|r| (r.path, r.body))
            .collect()
    }

    /// How many requests the log holds.
    pub fn log_len(&self) -> usize {
        self.server.requests.snapshot().len()
    }

    /// `ValidateResourceConfig`.
    pub async fn validate(&self, type_name: &str, config: &Value) -> Vec<Diag> {
        let ty = self.ty(type_name);
        let r = self
            .service
            .validate_resource_config(Request::new(pb::validate_resource_config::Request {
                type_name: type_name.into(),
                config: dynamic(config, &ty),
                // As Terraform 1.11 and later: write-only values stay out of state.
                client_capabilities: Some(pb::ClientCapabilities {
                    write_only_attributes_allowed: true,
                    ..Default::default()
                }),
            }))
            .await
            .unwrap()
            .into_inner();
        diags(&r.diagnostics)
    }

    /// Validation, then `PlanResourceChange` from `prior` to `config` with the proposed new state
    /// Terraform would send.
    pub async fn plan(&self, type_name: &str, prior: &Stored, config: &Value) -> Planned {
        let mut found = self.validate(type_name, config).await;
        if found.iter().any(|d| d.error) {
            return Planned {
                state: Value::Null,
                replaces: Vec::new(),
                private: Vec::new(),
                diags: found,
            };
        }
        let (schema, ty) = (self.schema(type_name), self.ty(type_name));
        let proposed = if config.is_null() {
            Value::Null
        } else {
            proposed_new(&schema.block, &prior.state, config)
        };
        let r = self
            .service
            .plan_resource_change(Request::new(pb::plan_resource_change::Request {
                type_name: type_name.into(),
                prior_state: dynamic(&prior.state, &ty),
                proposed_new_state: dynamic(&proposed, &ty),
                config: dynamic(config, &ty),
                prior_private: prior.private.clone(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        found.extend(diags(&r.diagnostics));
        let state = decoded(r.planned_state, &ty);
        if !found.iter().any(|d| d.error) && !config.is_null() {
            assert_conforms(
                &config_as_planned(config, &schema.block),
                &state,
                "",
                "the plan does not keep the configuration",
            );
        }
        Planned {
            state,
            replaces: r.requires_replace.iter().map(path_text).collect(),
            private: r.planned_private,
            diags: found,
        }
    }

    /// `ApplyResourceChange` of a plan; checks that the new state keeps every value the plan knew.
    pub async fn apply(
        &self,
        type_name: &str,
        prior: &Stored,
        plan: &Planned,
        config: &Value,
    ) -> (Stored, Vec<Diag>) {
        let ty = self.ty(type_name);
        let r = self
            .service
            .apply_resource_change(Request::new(pb::apply_resource_change::Request {
                type_name: type_name.into(),
                prior_state: dynamic(&prior.state, &ty),
                planned_state: dynamic(&plan.state, &ty),
                config: dynamic(config, &ty),
                planned_private: plan.private.clone(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        let state = decoded(r.new_state, &ty);
        let found = diags(&r.diagnostics);
        if !found.iter().any(|d| d.error) {
            assert_conforms(&plan.state, &state, "", "the apply's result differs from its plan");
        }
        (Stored { state, private: r.private }, found)
    }

    /// A plan, then its apply; panics on an error in either.
    pub async fn converge(&self, type_name: &str, prior: &Stored, config: &Value) -> Stored {
        let plan = self.plan(type_name, prior, config).await;
        assert!(!plan.diags.iter().any(|d| d.error), "plan of {config:?}: {:?}", plan.diags);
        let (stored, found) = self.apply(type_name, prior, &plan, config).await;
        assert!(!found.iter().any(|d| d.error), "apply of {config:?}: {found:?}");
        stored
    }

    /// `ReadResource`.
    pub async fn read(&self, type_name: &str, current: &Stored) -> (Stored, Vec<Diag>) {
        let ty = self.ty(type_name);
        let r = self
            .service
            .read_resource(Request::new(pb::read_resource::Request {
                type_name: type_name.into(),
                current_state: dynamic(&current.state, &ty),
                private: current.private.clone(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        let state = decoded(r.new_state, &ty);
        (Stored { state, private: r.private }, diags(&r.diagnostics))
    }

    /// `ImportResourceState` of `id`, then the read Terraform makes of what it imported.
    pub async fn import(&self, type_name: &str, id: &str) -> (Stored, Vec<Diag>) {
        let ty = self.ty(type_name);
        let r = self
            .service
            .import_resource_state(Request::new(pb::import_resource_state::Request {
                type_name: type_name.into(),
                id: id.into(),
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        let mut found = diags(&r.diagnostics);
        let Some(imported) = r.imported_resources.into_iter().next() else {
            return (Stored { state: Value::Null, private: Vec::new() }, found);
        };
        let state = decoded(imported.state, &ty);
        let (read, more) = self.read(type_name, &Stored { state, private: imported.private }).await;
        found.extend(more);
        (read, found)
    }

    /// Destroys what `stored` holds, as `terraform destroy` does: the apply of a null plan.
    pub async fn destroy(&self, type_name: &str, stored: &Stored) {
        if stored.state.is_null() {
            return;
        }
        let plan = Planned {
            state: Value::Null,
            replaces: Vec::new(),
            private: stored.private.clone(),
            diags: Vec::new(),
        };
        let (_, found) = self.apply(type_name, stored, &plan, &Value::Null).await;
        assert!(!found.iter().any(|d| d.error), "destroy: {found:?}");
    }
}

/// A value as the protocol carries it.
pub fn dynamic(v: &Value, ty: &Type) -> Option<pb::DynamicValue> {
    Some(pb::DynamicValue { msgpack: value::to_msgpack(v, ty).unwrap(), json: Vec::new() })
}

/// A value the protocol carried; absent is null.
fn decoded(v: Option<pb::DynamicValue>, ty: &Type) -> Value {
    v.map_or(Value::Null, |v| value::from_msgpack(&v.msgpack, ty).unwrap())
}

fn diags(found: &[pb::Diagnostic]) -> Vec<Diag> {
    found
        .iter()
        .map(|d| Diag {
            error: d.severity == pb::diagnostic::Severity::Error as i32,
            text: format!("{}: {}", d.summary, d.detail),
            path: d.attribute.as_ref().map(path_text).unwrap_or_default(),
        })
        .collect()
}

/// `a.b[0]["k"]`.
fn path_text(p: &pb::AttributePath) -> String {
    use pb::attribute_path::step::Selector;
    let mut out = String::new();
    for step in &p.steps {
        match &step.selector {
            Some(Selector::AttributeName(n)) if out.is_empty() => out.push_str(n),
            Some(Selector::AttributeName(n)) => out.push_str(&format!(".{n}")),
            Some(Selector::ElementKeyString(k)) => out.push_str(&format!("[{k:?}]")),
            Some(Selector::ElementKeyInt(i)) => out.push_str(&format!("[{i}]")),
            None => {}
        }
    }
    out
}

/// The proposed new state Terraform sends with a plan (`objchange.ProposedNew`): the configuration's
/// values, and for a computed attribute the configuration leaves null the prior state's value (null
/// when there is no prior state: the provider marks what it does not plan unknown).
pub fn proposed_new(block: &Block, prior: &Value, config: &Value) -> Value {
    let mut out = Vec::new();
    for a in &block.attributes {
        let configured = config.get(a.name).cloned().unwrap_or(Value::Null);
        let v = if a.write_only {
            Value::Null
        } else if !configured.is_null()
            || !matches!(a.presence, Presence::Computed | Presence::OptionalComputed)
        {
            configured
        } else {
            prior.get(a.name).cloned().unwrap_or(Value::Null)
        };
        out.push((a.name, v));
    }
    for b in &block.blocks {
        let configured = config.get(b.name).cloned().unwrap_or(Value::Null);
        let v = match b.nesting {
            Nesting::Single if !configured.is_null() => proposed_new(
                &b.block,
                &prior.get(b.name).cloned().unwrap_or(Value::Null),
                &configured,
            ),
            _ => configured,
        };
        out.push((b.name, v));
    }
    Value::object(out)
}

/// The configuration as a plan must hold it: every attribute it sets, with the values it sets.
fn config_as_planned(config: &Value, block: &Block) -> Value {
    let mut out = Vec::new();
    for a in block.attributes.iter().filter(|a| !a.write_only) {
        out.push((
            a.name,
            config.get(a.name).cloned().filter(|v| !v.is_null()).unwrap_or(Value::Unknown),
        ));
    }
    for b in &block.blocks {
        let v = config.get(b.name).cloned().unwrap_or(Value::Null);
        out.push((
            b.name,
            if b.nesting == Nesting::Single && !v.is_null() {
                config_as_planned(&v, &b.block)
            } else {
                v
            },
        ));
    }
    Value::object(out)
}

/// Every known value of `expected` is in `actual` at the same path (sets compared whole, without
/// order); unknown values of `expected` may be anything.
pub fn assert_conforms(expected: &Value, actual: &Value, path: &str, what: &str) {
    match (expected, actual) {
        (Value::Unknown, _) => {}
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                let at = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                assert_conforms(v, a.get(k).unwrap_or(&Value::Null), &at, what);
            }
        }
        (Value::List(e), Value::List(a)) if e.len() == a.len() => {
            for (i, (x, y)) in e.iter().zip(a).enumerate() {
                assert_conforms(x, y, &format!("{path}[{i}]"), what);
            }
        }
        (e, a) if !e.is_wholly_known() => {
            assert_eq!(
                std::mem::discriminant(e),
                std::mem::discriminant(a),
                "{what}: {path}: {e:?} became {a:?}"
            )
        }
        (e, a) => assert!(e.same_as(a), "{what}: {path}: {e:?} became {a:?}"),
    }
}
