//! Micro-benchmarks: the value codec on a resource with 1000 ingress rules, and ingress normalisation.

use criterion::{Criterion, criterion_group, criterion_main};
use std::hint::black_box;
use terraform_provider_coiled::provider::ingress;
use tfplugin::diag::Diagnostics;
use tfplugin::framework::Resource as _;
use tfplugin::value::{self, AttrPath, Value};

fn config_with_rules(n: usize) -> Value {
    let rules: Vec<Value> = (0..n)
        .map(|i| {
            Value::object([
                ("cidr", Value::string(format!("10.{}.{}.0/24", i / 256, i % 256))),
                (
                    "ports",
                    Value::Set(vec![
                        Value::int(8786),
                        Value::int(8787),
                        Value::int(1000 + i as i64),
                    ]),
                ),
            ])
        })
        .collect();
    Value::object([
        ("backend", Value::string("aws")),
        ("aws_access_key_id", Value::string("AKIA")),
        ("aws_secret_access_key", Value::string("s")),
        ("ingress", Value::Set(rules)),
    ])
}

fn codec(c: &mut Criterion) {
    let schema = terraform_provider_coiled::provider::backend_options::BackendOptionsResource::new(
        Default::default(),
    )
    .schema();
    let ty = schema.object_type();
    let v = config_with_rules(1000);
    let bytes = value::to_msgpack(&v, &ty).unwrap();
    c.bench_function("msgpack encode, 1000 ingress rules", |b| {
        b.iter(|| value::to_msgpack(black_box(&v), &ty).unwrap())
    });
    c.bench_function("msgpack decode, 1000 ingress rules", |b| {
        b.iter(|| value::from_msgpack(black_box(&bytes), &ty).unwrap())
    });
}

fn normalisation(c: &mut Criterion) {
    // A configuration holds at most ingress::MAX_RULES blocks; the pure functions below it take any number.
    let v = config_with_rules(ingress::MAX_RULES);
    let set = v.get("ingress").unwrap().clone();
    c.bench_function(
        "ingress blocks parsed, validated and merged, 100 blocks (the maximum)",
        |b| {
            b.iter(|| {
                let mut d = Diagnostics::new();
                match ingress::read(
                    black_box(&set),
                    &ingress::Reading::validating(AttrPath::attr("ingress"), true),
                    &mut d,
                ) {
                    ingress::Parsed::Rules(r) => r.rules().len(),
                    _ => panic!("the benchmark input is valid"),
                }
            })
        },
    );
    let texts: Vec<String> =
        (0..1000).map(|i| format!("10.{}.{}.7/24", i / 256, i % 256)).collect();
    c.bench_function("CIDR canonicalisation, 1000 blocks", |b| {
        b.iter(|| {
            texts.iter().filter_map(|t| coiled_firewall::parse_cidr(black_box(t)).ok()).count()
        })
    });
    let rules: Vec<_> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| coiled_firewall::rule_from_wire(&[8786, 8787, 1000 + i as i64], t).unwrap())
        .collect();
    c.bench_function("merge + firewall rows, 1000 rules", |b| {
        b.iter(|| coiled_firewall::firewall_rows(black_box(&rules)).len())
    });
}

criterion_group!(benches, codec, normalisation);
criterion_main!(benches);
