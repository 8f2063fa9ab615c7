//! Fuzz harnesses, shared by the `cargo fuzz` targets in `fuzz/` and by the regression test that replays
//! every saved input in `fuzz/regressions/`. Each one panics only when a property is violated.

use tfplugin::diag::Diagnostics;
use tfplugin::value::{self, AttrPath, Type, Value};

/// The types a harness decodes with: the provider's real schema types and a few deep shapes.
fn types() -> Vec<Type> {
    use tfplugin::framework::Provider as _;
    let p = terraform_provider_coiled::provider::CoiledProvider::default();
    let mut t: Vec<Type> = p.resources().iter().map(|r| r.schema().object_type()).collect();
    t.extend(p.data_sources().iter().map(|d| d.schema().object_type()));
    t.push(p.schema().object_type());
    t.push(Type::Dynamic);
    t.push(Type::list(Type::map(Type::set(Type::Number))));
    t.push(Type::Tuple(vec![Type::String, Type::Bool, Type::Dynamic]));
    t
}

/// msgpack: decoding never panics; whatever decodes re-encodes, and decodes again to the same value.
pub fn msgpack_round_trip(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let types = types();
    let ty = &types[usize::from(selector) % types.len()];
    if let Ok(v) = value::from_msgpack(bytes, ty) {
        let encoded = value::to_msgpack(&v, ty).expect("a decoded value re-encodes");
        let again = value::from_msgpack(&encoded, ty).expect("a re-encoded value decodes");
        assert!(again.same_as(&v), "round trip changed the value");
    }
}

/// JSON (raw state): decoding never panics.
pub fn json_decode(data: &[u8]) {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let types = types();
    let ty = &types[usize::from(selector) % types.len()];
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(bytes) {
        let _ = value::from_json(&json, ty);
    }
}

/// Ingress parsing and normalisation: never panics; valid rules are canonical, merge idempotently and
/// produce one firewall row per (port, source).
pub fn ingress(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let mut blocks = Vec::new();
    for line in text.lines().take(200) {
        let (cidr, ports) = line.split_once(' ').unwrap_or((line, ""));
        let ports: Vec<Value> = ports
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| {
                tfplugin::value::Number::parse(p)
                    .map(Value::Number)
                    .unwrap_or_else(|| Value::string(p))
            })
            .collect();
        blocks.push(Value::object([("cidr", Value::string(cidr)), ("ports", Value::Set(ports))]));
        if let Ok(c) = coiled_firewall::parse_cidr(cidr) {
            let again =
                coiled_firewall::parse_cidr(&c.canonical()).expect("a canonical CIDR parses");
            assert_eq!(again.net, c.net);
            assert!(!again.had_host_bits, "canonical form has no host bits");
        }
    }
    let mut diags = Diagnostics::new();
    use terraform_provider_coiled::provider::ingress::{self, Parsed, Reading};
    if let Parsed::Rules(set) = ingress::read(
        &Value::Set(blocks),
        &Reading::validating(AttrPath::attr("ingress"), false),
        &mut diags,
    ) {
        assert!(!diags.has_errors());
        let rules = set.rules();
        let (merged, _) = coiled_firewall::merge(rules);
        assert_eq!(merged, rules, "a rule set is merged");
        assert_eq!(coiled_firewall::merge(&merged).0, merged, "merging is idempotent");
        let rows = coiled_firewall::firewall_rows(rules);
        assert_eq!(rows.len(), merged.iter().map(|r| r.ports.len()).sum::<usize>());
    }
}

/// Protocol messages with arbitrary DynamicValue bytes: every RPC answers with diagnostics or a gRPC
/// status, never a panic.
pub fn rpc(data: &[u8]) {
    use tfplugin::proto::tfplugin6 as pb;
    use tfplugin::proto::tfplugin6::provider_server::Provider as _;
    let Some((&selector, bytes)) = data.split_first() else { return };
    let service = tfplugin::server::PluginService::new(
        std::sync::Arc::new(terraform_provider_coiled::provider::CoiledProvider::default()),
        Default::default(),
    );
    let dv = || {
        Some(pb::DynamicValue {
            msgpack: if selector & 1 == 0 { bytes.to_vec() } else { Vec::new() },
            json: if selector & 1 == 1 { bytes.to_vec() } else { Vec::new() },
        })
    };
    let type_name = ["coiled_cluster", "coiled_backend_options", "nope"]
        [usize::from(selector >> 1) % 3]
        .to_string();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    rt.block_on(async {
        let _ = service
            .validate_resource_config(tonic::Request::new(pb::validate_resource_config::Request {
                type_name: type_name.clone(),
                config: dv(),
                client_capabilities: None,
            }))
            .await;
        let _ = service
            .plan_resource_change(tonic::Request::new(pb::plan_resource_change::Request {
                type_name: type_name.clone(),
                prior_state: dv(),
                proposed_new_state: dv(),
                config: dv(),
                ..Default::default()
            }))
            .await;
        let _ = service
            .upgrade_resource_state(tonic::Request::new(pb::upgrade_resource_state::Request {
                type_name: type_name.clone(),
                version: i64::from(selector),
                raw_state: Some(pb::RawState { json: bytes.to_vec(), ..Default::default() }),
            }))
            .await;
        let _ = service
            .validate_provider_config(tonic::Request::new(pb::validate_provider_config::Request {
                config: dv(),
            }))
            .await;
        rpc_newer(&service, selector, bytes).await;
    });
}

/// The services of newer Terraform with the same arbitrary bytes: function calls, identity upgrades
/// and imports, ephemeral resources, list resources and actions answer with an error or diagnostics,
/// never a panic.
async fn rpc_newer(service: &tfplugin::server::PluginService, selector: u8, bytes: &[u8]) {
    use tfplugin::proto::tfplugin6 as pb;
    use tfplugin::proto::tfplugin6::provider_server::Provider as _;
    let dv = pb::DynamicValue {
        msgpack: if selector & 1 == 0 { bytes.to_vec() } else { Vec::new() },
        json: if selector & 1 == 1 { bytes.to_vec() } else { Vec::new() },
    };
    let function = ["firewall_rules", "canonical_cidr", "nope"][usize::from(selector >> 1) % 3];
    let answer = service.call(function, std::slice::from_ref(&dv));
    assert!(
        answer.result.is_some() != answer.error.is_some(),
        "a call answers a result or an error"
    );
    let type_name = ["coiled_cluster", "coiled_backend_options", "nope"]
        [usize::from(selector >> 3) % 3]
        .to_string();
    let _ = service
        .upgrade_resource_identity(tonic::Request::new(pb::upgrade_resource_identity::Request {
            type_name: type_name.clone(),
            version: i64::from(selector % 2),
            raw_identity: Some(pb::RawState { json: bytes.to_vec(), ..Default::default() }),
        }))
        .await;
    let identity = pb::ResourceIdentityData { identity_data: Some(dv.clone()) };
    let _ = service
        .import_resource_state(tonic::Request::new(pb::import_resource_state::Request {
            type_name,
            id: String::new(),
            client_capabilities: None,
            identity: Some(identity),
        }))
        .await;
    let _ = service
        .validate_ephemeral_resource_config(tonic::Request::new(
            pb::validate_ephemeral_resource_config::Request {
                type_name: "coiled_cluster_connection".into(),
                config: Some(dv.clone()),
            },
        ))
        .await;
    let _ = service
        .open_ephemeral_resource(tonic::Request::new(pb::open_ephemeral_resource::Request {
            type_name: "coiled_cluster_connection".into(),
            config: Some(dv.clone()),
            client_capabilities: None,
        }))
        .await;
    rpc_query(service, selector, dv).await;
}

/// List resources and actions with the same arbitrary bytes: diagnostics in the answer or the stream,
/// never a panic, and a stream that ends.
async fn rpc_query(
    service: &tfplugin::server::PluginService,
    selector: u8,
    dv: tfplugin::proto::tfplugin6::DynamicValue,
) {
    use tfplugin::proto::tfplugin6 as pb;
    use tfplugin::proto::tfplugin6::provider_server::Provider as _;
    use tokio_stream::StreamExt as _;
    let list = ["coiled_cluster", "coiled_software_environment", "nope"]
        [usize::from(selector >> 2) % 3]
        .to_string();
    let action = ["coiled_cluster_stop", "coiled_cluster_scale", "nope"]
        [usize::from(selector >> 4) % 3]
        .to_string();
    let _ = service
        .validate_list_resource_config(tonic::Request::new(
            pb::validate_list_resource_config::Request {
                type_name: list.clone(),
                config: Some(dv.clone()),
                include_resource_object: Some(dv.clone()),
                limit: Some(dv.clone()),
            },
        ))
        .await;
    if let Ok(stream) = service
        .list_resource(tonic::Request::new(pb::list_resource::Request {
            type_name: list,
            config: Some(dv.clone()),
            include_resource_object: selector & 1 == 1,
            limit: i64::from(selector),
        }))
        .await
    {
        let events: Vec<_> = stream.into_inner().collect().await;
        assert!(events.iter().all(Result::is_ok));
    }
    let _ = service
        .validate_action_config(tonic::Request::new(pb::validate_action_config::Request {
            type_name: action.clone(),
            config: Some(dv.clone()),
        }))
        .await;
    let _ = service
        .plan_action(tonic::Request::new(pb::plan_action::Request {
            action_type: action.clone(),
            config: Some(dv.clone()),
            client_capabilities: None,
        }))
        .await;
    if let Ok(stream) = service
        .invoke_action(tonic::Request::new(pb::invoke_action::Request {
            action_type: action,
            config: Some(dv),
            client_capabilities: None,
        }))
        .await
    {
        let events: Vec<_> = stream.into_inner().collect().await;
        let last = events.last().and_then(|e| e.as_ref().ok()).and_then(|e| e.r#type.as_ref());
        assert!(
            matches!(last, Some(pb::invoke_action::event::Type::Completed(_))),
            "an invocation ends with its outcome"
        );
    }
}
