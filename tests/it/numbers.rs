//! Every number a configuration can set, in every resource, data source and action, taken from the
//! provider's own schema: a fraction, a number beyond any integer and a negative number are either
//! accepted or refused with an error on that attribute, never read as null (which Terraform reports as
//! "Provider produced invalid plan", a provider bug).

use crate::common::{Scenario, clis, flat};

/// The smallest configuration of each block type, before the number under test is added.
fn base(kind: &str, name: &str) -> Option<&'static str> {
    Some(match (kind, name) {
        ("resource", "coiled_cluster") => "  software = \"dask\"\n",
        ("resource", "coiled_software_environment") => {
            "  name      = \"nums\"\n  container = \"ghcr.io/dask/dask:latest\"\n"
        }
        ("resource", "coiled_backend_options") => "  backend = \"aws\"\n",
        ("data", "coiled_cluster") => "  name = \"nums\"\n",
        ("data", _) => "",
        _ => return None,
    })
}

/// `(kind, type, attribute)` for every number attribute a configuration may set, from
/// `terraform providers schema -json`.
fn configurable_numbers(schema: &serde_json::Value) -> Vec<(&'static str, String, String)> {
    let provider = schema["provider_schemas"].as_object().unwrap().values().next().unwrap().clone();
    let mut out = Vec::new();
    for (kind, key) in [("resource", "resource_schemas"), ("data", "data_source_schemas")] {
        for (name, s) in provider[key].as_object().into_iter().flatten() {
            for (attr, a) in s["block"]["attributes"].as_object().into_iter().flatten() {
                let settable = a["required"] == true || a["optional"] == true;
                if settable && a["type"] == "number" {
                    out.push((kind, name.clone(), attr.clone()));
                }
            }
        }
    }
    out
}

#[test]
fn numbers_no_type_can_hold_are_attribute_errors_never_provider_bugs() {
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s"], "");
        let schema: serde_json::Value =
            serde_json::from_str(&s.tf.terraform(&["providers", "schema", "-json"]).ok().stdout)
                .unwrap();
        let numbers = configurable_numbers(&schema);
        assert!(numbers.iter().any(|(_, _, a)| a == "scheduler_port"), "{numbers:?}");
        for (kind, name, attr) in &numbers {
            let Some(base) = base(kind, name) else {
                panic!("no base configuration for {kind} {name}")
            };
            for value in ["8786.5", "1e20", "-1"] {
                s.set(&format!("{kind} \"{name}\" \"n\" {{\n{base}  {attr} = {value}\n}}\n"));
                let out = s.tf.terraform(&["plan", "-no-color"]);
                let text = flat(&out.all());
                let what = format!("{} {kind} {name}.{attr} = {value}", cli.version);
                assert!(
                    !text.contains("invalid plan")
                        && !text.contains("bug in the provider")
                        && !text.contains("panic"),
                    "{what}: {text}"
                );
                if out.code != 0 {
                    assert!(
                        text.contains(&format!("{attr} = {value}")),
                        "{what}: the error points at the attribute: {text}"
                    );
                }
                if attr == "scheduler_port" || attr == "n_workers" {
                    assert_ne!(out.code, 0, "{what} is refused: {text}");
                }
            }
        }
    }
}
