//! The reference pages' "What a change does" tables, held to: every argument a resource's schema
//! marks as changing state only (and its `timeouts`) changes Terraform's state alone: the apply
//! sends the server nothing, and the plan after it is empty. A cluster's `n_workers`, which changes
//! it in place, is planned as an update, not a replacement.

use std::collections::BTreeSet;

use terraform_provider_coiled::provider::CoiledProvider;
use tfplugin::framework::Provider;

use crate::common::{Scenario, clis};

/// A resource's configuration, open at its end, and a changed value for each argument that changes
/// state only (a block written whole).
struct Case {
    resource: &'static str,
    open: &'static str,
    changes: &'static [(&'static str, &'static str)],
}

const CASES: &[Case] = &[
    Case {
        resource: "coiled_cluster",
        open: "resource \"coiled_cluster\" \"c\" {\n  name      = \"changes\"\n  software  = \"dask\"\n  n_workers = 1\n",
        changes: &[
            ("use_scheduler_public_ip", "  use_scheduler_public_ip = false\n"),
            ("wait_for_workers", "  wait_for_workers = 0.5\n"),
            ("when_stopped", "  when_stopped = \"keep\"\n"),
            ("acknowledge_world_open_ingress", "  acknowledge_world_open_ingress = true\n"),
            ("timeouts", "  timeouts {\n    create = \"25m\"\n  }\n"),
        ],
    },
    Case {
        resource: "coiled_backend_options",
        open: "resource \"coiled_backend_options\" \"b\" {\n  backend               = \"aws\"\n  aws_access_key_id     = \"AKIAEXAMPLE\"\n  aws_secret_access_key = \"SECRET-SENTINEL-CHANGES\"\n  ingress {\n    ports = [443]\n    cidr  = \"10.1.0.0/16\"\n  }\n",
        changes: &[
            ("acknowledge_world_open_ingress", "  acknowledge_world_open_ingress = true\n"),
            ("timeouts", "  timeouts {\n    update = \"25m\"\n  }\n"),
        ],
    },
    Case {
        resource: "coiled_software_environment",
        open: "resource \"coiled_software_environment\" \"e\" {\n  name      = \"changes-env\"\n  container = \"ghcr.io/dask/dask:latest\"\n",
        changes: &[("timeouts", "  timeouts {\n    create = \"25m\"\n  }\n")],
    },
];

/// The arguments of `resource` whose change the schema says is recorded in state only.
fn state_only(resource: &str) -> BTreeSet<String> {
    let provider = CoiledProvider::default();
    let found = provider
        .resources()
        .into_iter()
        .find(|r| r.type_name() == resource)
        .expect("a resource of that name");
    let block = found.schema().block;
    let attrs = block.attributes.iter().filter(|a| a.state_only).map(|a| a.name.to_string());
    attrs.chain(block.blocks.iter().filter(|b| b.state_only).map(|b| b.name.to_string())).collect()
}

#[test]
fn every_resource_has_its_state_only_arguments_tried() {
    let provider = CoiledProvider::default();
    let tried: BTreeSet<&str> = CASES.iter().map(|c| c.resource).collect();
    let resources: BTreeSet<&str> = provider.resources().iter().map(|r| r.type_name()).collect();
    assert_eq!(tried, resources);
    for case in CASES {
        let names: BTreeSet<String> = case.changes.iter().map(|(n, _)| n.to_string()).collect();
        assert_eq!(
            names,
            state_only(case.resource),
            "{}: a changed value for each state-only argument",
            case.resource
        );
    }
}

#[test]
fn state_only_arguments_change_state_alone() {
    for cli in clis() {
        for case in CASES {
            let mut config = case.open.to_string();
            let s = Scenario::new(
                cli,
                &["--provision-delay", "0s", "--stop-delay", "0s"],
                &format!("{config}}}\n"),
            );
            s.apply();
            for (name, line) in case.changes {
                config.push_str(line);
                s.set(&format!("{config}}}\n"));
                let plan = s.plan_changes();
                assert!(
                    plan.contains("update in-place") && !plan.contains("replace"),
                    "{} {name}: {plan}",
                    case.resource
                );
                s.apply_state_only();
                s.assert_no_changes();
            }
        }
    }
}

#[test]
fn a_change_of_workers_updates_the_cluster_in_place() {
    let open = CASES[0].open;
    let s = Scenario::new(
        &clis()[0],
        &["--provision-delay", "0s", "--stop-delay", "0s"],
        &format!("{open}}}\n"),
    );
    s.apply();
    let id = s.state_text();
    s.set(&format!("{}}}\n", open.replace("n_workers = 1", "n_workers = 2")));
    let plan = s.plan_changes();
    assert!(plan.contains("update in-place") && !plan.contains("replace"), "{plan}");
    s.apply();
    s.assert_no_changes();
    let before: serde_json::Value = serde_json::from_str(&id).unwrap();
    let after: serde_json::Value = serde_json::from_str(&s.state_text()).unwrap();
    assert_eq!(
        before["resources"][0]["instances"][0]["attributes"]["id"],
        after["resources"][0]["instances"][0]["attributes"]["id"]
    );
}
