//! The provider's own time per RPC, without the gRPC transport: the tfplugin6 service's handlers called
//! directly, on a `coiled_cluster` made through them against a real `coiled-local` (so `ReadResource`
//! includes its HTTP read on loopback). These are the calls a `terraform plan` with refresh makes per
//! applied cluster; `scripts/bench.sh` runs this next to the end-to-end benchmarks.

#[path = "../tests/it/common/mod.rs"]
#[allow(unused_imports)]
mod common;

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use terraform_provider_coiled::provider::CoiledProvider;
use tfplugin::framework::Provider as _;
use tfplugin::proto::tfplugin6 as pb;
use tfplugin::proto::tfplugin6::provider_server::Provider as _;
use tfplugin::server::PluginService;
use tfplugin::value::{self, Type, Value};
use tokio_util::sync::CancellationToken;
use tonic::Request;

use common::in_process::dynamic;

/// A configured service, the cluster's type, its configuration and its applied state.
struct Fixture {
    service: PluginService,
    config: Value,
    state: Value,
    ty: Type,
}

async fn fixture(server: &common::LocalServer) -> Fixture {
    let provider = Arc::new(CoiledProvider::default());
    let provider_ty = provider.schema().object_type();
    let ty = provider
        .resources()
        .into_iter()
        .find(|r| r.type_name() == "coiled_cluster")
        .unwrap()
        .schema()
        .object_type();
    let service = PluginService::new(provider, CancellationToken::new());
    let pconfig = Value::object([
        ("server", Value::string(server.url.clone())),
        ("token", Value::string(server.token.clone())),
    ]);
    let r = service
        .configure_provider(Request::new(pb::configure_provider::Request {
            config: dynamic(&pconfig, &provider_ty),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
    let config = Value::object([
        ("name", Value::string("bench")),
        ("software", Value::string("dask")),
        ("n_workers", Value::int(0)),
    ]);
    let null = Value::Null;
    let plan = service
        .plan_resource_change(Request::new(pb::plan_resource_change::Request {
            type_name: "coiled_cluster".into(),
            prior_state: dynamic(&null, &ty),
            proposed_new_state: dynamic(&config, &ty),
            config: dynamic(&config, &ty),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(plan.diagnostics.iter().all(|d| d.severity != 1), "{:?}", plan.diagnostics);
    let applied = service
        .apply_resource_change(Request::new(pb::apply_resource_change::Request {
            type_name: "coiled_cluster".into(),
            prior_state: dynamic(&null, &ty),
            planned_state: plan.planned_state,
            config: dynamic(&config, &ty),
            ..Default::default()
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(applied.diagnostics.iter().all(|d| d.severity != 1), "{:?}", applied.diagnostics);
    let state = value::from_msgpack(&applied.new_state.unwrap().msgpack, &ty).unwrap();
    Fixture { service, config, state, ty }
}

fn rpc(c: &mut Criterion) {
    let server = common::LocalServer::start(&["--provision-delay", "0s"]);
    // The plugin's runtime (src/main.rs).
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let f = rt.block_on(fixture(&server));
    let (svc, ty) = (&f.service, &f.ty);
    let raw = serde_json::to_vec(&value::to_json(&f.state)).unwrap();
    // State as this provider writes it: of the schema's current version.
    let schemas = rt
        .block_on(svc.get_provider_schema(Request::new(Default::default())))
        .unwrap()
        .into_inner();
    let version = schemas.resource_schemas["coiled_cluster"].version;
    c.bench_function("UpgradeResourceState, one applied cluster", |b| {
        b.iter(|| {
            let req = pb::upgrade_resource_state::Request {
                type_name: "coiled_cluster".into(),
                version,
                raw_state: Some(pb::RawState { json: raw.clone(), ..Default::default() }),
            };
            black_box(rt.block_on(svc.upgrade_resource_state(Request::new(req))).unwrap())
        })
    });
    let current = dynamic(&f.state, ty);
    c.bench_function("ReadResource, one applied cluster, with its HTTP read", |b| {
        b.iter(|| {
            let req = pb::read_resource::Request {
                type_name: "coiled_cluster".into(),
                current_state: current.clone(),
                ..Default::default()
            };
            let out = rt.block_on(svc.read_resource(Request::new(req))).unwrap().into_inner();
            assert!(out.diagnostics.is_empty());
            black_box(out)
        })
    });
    let config = dynamic(&f.config, ty);
    c.bench_function("PlanResourceChange, one applied cluster, no change", |b| {
        b.iter(|| {
            let req = pb::plan_resource_change::Request {
                type_name: "coiled_cluster".into(),
                prior_state: current.clone(),
                proposed_new_state: current.clone(),
                config: config.clone(),
                ..Default::default()
            };
            let out =
                rt.block_on(svc.plan_resource_change(Request::new(req))).unwrap().into_inner();
            assert!(out.requires_replace.is_empty());
            black_box(out)
        })
    });
}

criterion_group!(benches, rpc);
criterion_main!(benches);
