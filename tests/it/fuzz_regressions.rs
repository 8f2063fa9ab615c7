//! Replays every saved fuzz input (`fuzz/regressions/<target>/`) through its harness, and checks that
//! malformed protocol messages get diagnostics or gRPC errors rather than crashing the provider.

use std::path::Path;

use coiled_fuzz_harness as fuzzing;
use tfplugin::proto::tfplugin6 as pb;
use tfplugin::proto::tfplugin6::provider_server::Provider as _;

#[test]
fn saved_fuzz_inputs_still_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut replayed = 0;
    for (target, harness) in [
        ("value_msgpack", fuzzing::msgpack_round_trip as fn(&[u8])),
        ("value_json", fuzzing::json_decode),
        ("ingress", fuzzing::ingress),
        ("rpc", fuzzing::rpc),
    ] {
        for entry in std::fs::read_dir(root.join(target)).unwrap().filter_map(Result::ok) {
            let data = std::fs::read(entry.path()).unwrap();
            harness(&data);
            replayed += 1;
        }
    }
    assert!(replayed >= 6, "only {replayed} inputs");
}

#[tokio::test]
async fn malformed_protocol_messages_get_diagnostics_not_crashes() {
    let service = tfplugin::server::PluginService::new(
        std::sync::Arc::new(terraform_provider_coiled::provider::CoiledProvider::default()),
        Default::default(),
    );
    let garbage: [&[u8]; 5] = [
        b"\xc1",
        b"\x92\xa1",
        b"\xdd\xff\xff\xff\xff",
        b"\x81\xa7unknown\xc0",
        b"not msgpack at all",
    ];
    for bytes in garbage {
        let r = service
            .validate_resource_config(tonic::Request::new(pb::validate_resource_config::Request {
                type_name: "coiled_cluster".into(),
                config: Some(pb::DynamicValue { msgpack: bytes.to_vec(), json: vec![] }),
                client_capabilities: None,
            }))
            .await
            .expect("an answer, not a transport error");
        let d = &r.get_ref().diagnostics;
        assert!(
            d.iter().any(|d| d.severity == pb::diagnostic::Severity::Error as i32
                && d.summary == "Invalid Value From Terraform"),
            "{bytes:?}: {d:?}"
        );
    }
    let unknown = service
        .validate_resource_config(tonic::Request::new(pb::validate_resource_config::Request {
            type_name: "coiled_nope".into(),
            config: None,
            client_capabilities: None,
        }))
        .await;
    assert_eq!(unknown.unwrap_err().code(), tonic::Code::NotFound);
    let json = service
        .upgrade_resource_state(tonic::Request::new(pb::upgrade_resource_state::Request {
            type_name: "coiled_cluster".into(),
            version: 0,
            raw_state: Some(pb::RawState { json: b"{\"id\": [".to_vec(), ..Default::default() }),
        }))
        .await
        .unwrap();
    assert_eq!(json.get_ref().diagnostics[0].summary, "Unreadable Resource State");
    let newer = service
        .upgrade_resource_state(tonic::Request::new(pb::upgrade_resource_state::Request {
            type_name: "coiled_cluster".into(),
            version: 9,
            raw_state: Some(pb::RawState { json: b"{}".to_vec(), ..Default::default() }),
        }))
        .await
        .unwrap();
    assert_eq!(newer.get_ref().diagnostics[0].summary, "State From a Newer Provider");
}

/// `GetProviderSchema` and `GetMetadata` advertise exactly the list resources and actions the
/// provider serves, and a service it does not offer (state storage) answers UNIMPLEMENTED, saying so.
#[tokio::test]
async fn the_schema_advertises_exactly_what_is_served() {
    let service = tfplugin::server::PluginService::new(
        std::sync::Arc::new(terraform_provider_coiled::provider::CoiledProvider::default()),
        Default::default(),
    );
    let schema = service.schema_response();
    let mut lists: Vec<&String> = schema.list_resource_schemas.keys().collect();
    lists.sort();
    assert_eq!(lists, ["coiled_cluster", "coiled_software_environment"]);
    let mut actions: Vec<&String> = schema.action_schemas.keys().collect();
    actions.sort();
    assert_eq!(actions, ["coiled_cluster_scale", "coiled_cluster_stop"]);
    assert!(schema.state_store_schemas.is_empty());
    for list in lists {
        assert!(
            schema.resource_schemas.contains_key(list),
            "a list resource finds a managed resource type: {list}"
        );
    }
    let meta = service
        .get_metadata(tonic::Request::new(pb::get_metadata::Request {}))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(meta.list_resources.len(), 2);
    assert_eq!(meta.actions.len(), 2);
    let refused = service
        .lock_state(tonic::Request::new(pb::lock_state::Request::default()))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unimplemented);
    assert!(refused.message().contains("not offered by this provider"), "{}", refused.message());
    // An action nobody declared answers with a diagnostic, not a crash or a silent success.
    let unknown = service
        .plan_action(tonic::Request::new(pb::plan_action::Request {
            action_type: "coiled_nope".into(),
            config: None,
            client_capabilities: None,
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(unknown.diagnostics.iter().any(|d| d.summary == "Unknown Action"));
}
