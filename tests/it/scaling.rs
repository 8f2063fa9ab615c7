//! Scaling a running cluster through real Terraform CLIs against `coiled-local`, whose clusters stay
//! `ready` while new workers go pending → starting → started over the provisioning delay, as a real
//! cluster does while it grows.

use serde_json::json;

use crate::common::{Scenario, clis, flat};

/// A cluster of `n` workers waiting for the fraction `wait` (the default when `None`), with `extra`
/// arguments inside the resource block.
fn cluster(n: i64, wait: Option<f64>, extra: &str) -> String {
    let wait = wait.map(|w| format!("  wait_for_workers = {w}\n")).unwrap_or_default();
    format!(
        r#"
resource "coiled_cluster" "c" {{
  name      = "scaleme"
  software  = "dask"
  n_workers = {n}
{wait}{extra}}}
"#
    )
}

/// The cluster's details and its workers, as the server holds them.
fn server_cluster(s: &Scenario) -> (serde_json::Value, Vec<String>) {
    let id = s.server.running_named("scaleme")[0]["id"].clone();
    let (_, d) = s.server.get(&format!("/api/v2/clusters/account/alice/id/{id}"));
    let states = d["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["current_state"]["state"].as_str().unwrap().to_string())
        .collect();
    (d, states)
}

/// How many started workers a wait for `fraction` of `n` needs, as Coiled's client computes it.
fn needed(n: i64, fraction: f64) -> usize {
    ((fraction * n as f64) - 1e-9).ceil().max(0.0) as usize
}

/// Every step from one size to the next, up by more than is running (so that new workers must start)
/// and down, with the default wait and with waits for all of them: each apply waits for the workers
/// it needs, records the size asked for, and is followed by an empty plan.
#[test]
fn scaling_up_waits_for_the_new_workers_of_a_ready_cluster() {
    // (workers, wait_for_workers): 0 → 1, 1 → 2, 2 → 10 with the default fraction, 10 → 5 down, then
    // 5 → 8 with every worker waited for.
    let steps: [(i64, Option<f64>); 6] =
        [(0, None), (1, None), (2, None), (10, None), (5, Some(1.0)), (8, Some(1.0))];
    for cli in clis() {
        let s = Scenario::new(
            cli,
            &["--provision-delay", "1s", "--stop-delay", "0s"],
            &cluster(steps[0].0, steps[0].1, ""),
        );
        for (i, &(n, wait)) in steps.iter().enumerate() {
            s.set(&cluster(n, wait, ""));
            let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
            assert_eq!(
                out.code,
                0,
                "{}: step {i} to {n} workers failed:\n{}",
                cli.version,
                out.all()
            );
            let (d, states) = server_cluster(&s);
            assert_eq!(d["desired_workers"], n, "{}: step {i}", cli.version);
            assert_eq!(
                d["current_state"]["state"], "ready",
                "the cluster stays ready while it grows"
            );
            let started = states.iter().filter(|w| *w == "started").count();
            assert!(
                started >= needed(n, wait.unwrap_or(0.3)),
                "{}: step {i} ended with {started} started of {n}: {states:?}",
                cli.version
            );
            assert_eq!(s.instance("coiled_cluster")["attributes"]["n_workers"], n);
            s.assert_no_changes();
        }
    }
}

/// A scale whose workers have not started when the update timeout passes fails, and state keeps the
/// size it had: the next plan shows the scale again, and applying it asks for no worker twice.
#[test]
fn a_scale_that_times_out_is_not_recorded_as_done() {
    let timeouts = "  timeouts {\n    update = \"1s\"\n  }\n";
    for cli in clis() {
        let s = Scenario::new(
            cli,
            &["--provision-delay", "5s", "--stop-delay", "0s"],
            &cluster(1, None, timeouts),
        );
        s.apply();
        s.set(&cluster(3, Some(1.0), timeouts));
        let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
        let text = flat(&out.all());
        assert_ne!(out.code, 0, "{}: {text}", cli.version);
        assert!(
            text.contains("Cluster Failed to Scale") && text.contains("update timeout"),
            "{text}"
        );
        assert!(!text.contains("Coiled reports"), "the reason is the provider's own: {text}");
        assert_eq!(
            s.instance("coiled_cluster")["attributes"]["n_workers"],
            1,
            "state keeps the size it had"
        );
        let plan = s.plan_changes();
        assert!(plan.contains("1 -> 3") && plan.contains("updated in-place"), "{plan}");
        // The workers asked for start; the next apply asks for none again and only waits.
        s.set(&cluster(3, Some(1.0), ""));
        s.reset_stats();
        s.apply();
        let stats = s.server.get("/_local/stats").1;
        assert!(
            stats["by_route"].get("POST /api/v2/workers/account/{}/cluster/{}/").is_none(),
            "no worker asked for again: {stats}"
        );
        assert_eq!(server_cluster(&s).0["desired_workers"], 3);
        s.assert_no_changes();
    }
}

/// A plan that asks for another count than a scale left unfinished changes what Coiled is asked for
/// although state still holds the count from before the scale: it says so, and the apply does it.
#[test]
fn going_back_on_an_unfinished_scale_is_shown() {
    let timeouts = "  timeouts {\n    update = \"1s\"\n  }\n";
    for cli in clis() {
        let server_args = ["--provision-delay", "5s", "--stop-delay", "0s"];
        let s = Scenario::new(cli, &server_args, &cluster(1, None, timeouts));
        s.apply();
        s.set(&cluster(3, Some(1.0), timeouts));
        let out = s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
        assert_ne!(out.code, 0, "{}: {}", cli.version, out.all());
        assert_eq!(server_cluster(&s).0["desired_workers"], 3);
        s.set(&cluster(1, None, ""));
        let plan = s.tf.terraform(&["plan", "-no-color"]).ok();
        let text = flat(&plan.all());
        assert!(
            text.contains("Unfinished Scale Changed") && text.contains("This apply asks for 1"),
            "{}: {text}",
            cli.version
        );
        s.apply();
        assert_eq!(server_cluster(&s).0["desired_workers"], 1);
        s.assert_no_changes();
    }
}

/// A cluster scaled down elsewhere (the scale action, Coiled's client) shows the change as drift, not
/// as workers that failed.
#[test]
fn a_scale_down_made_elsewhere_is_drift_not_failure() {
    for cli in clis() {
        let s = Scenario::new(
            cli,
            &["--provision-delay", "0s", "--stop-delay", "0s"],
            &cluster(3, None, ""),
        );
        s.apply();
        let id = s.server.running_named("scaleme")[0]["id"].clone();
        s.server.delete(&format!("/api/v2/workers/account/alice/cluster/{id}/?name=-3"));
        let plan = s.tf.terraform(&["plan", "-no-color"]).ok().all();
        let text = flat(&plan);
        assert!(text.contains("2 -> 3"), "{}: {plan}", cli.version);
        assert!(!text.contains("Fewer Workers Than Asked For"), "{}: {plan}", cli.version);
    }
}

/// A scale-up whose answer is lost, or answered 502 by a gateway after the workers were added, is
/// made safe as a create is: the workers are counted again and only those still missing are asked for.
#[test]
fn a_scale_up_whose_answer_is_lost_asks_only_for_what_is_missing() {
    for cli in clis() {
        let s = Scenario::new(
            cli,
            &["--provision-delay", "300ms", "--stop-delay", "0s"],
            &cluster(1, None, ""),
        );
        s.apply();
        for (fault, n) in [("lose_scale_responses", 4), ("scale_then_502", 7)] {
            s.server.put("/_local/faults", &json!({ fault: 1 }));
            s.set(&cluster(n, None, ""));
            let text = flat(&s.apply().all());
            let (d, states) = server_cluster(&s);
            assert_eq!(d["desired_workers"], n, "{}: after {fault}: {text}", cli.version);
            assert_eq!(
                states.len() as i64,
                n,
                "{}: no worker asked for twice after {fault}: {states:?}",
                cli.version
            );
            let faults = s.server.get("/_local/stats").1["faults"].clone();
            assert!(
                faults.get(fault.replace("lose_scale_responses", "lost_scale").as_str()).is_some(),
                "the fault struck: {faults}"
            );
            s.assert_no_changes();
        }
    }
}

/// The scale action's documented example (2 → 20, `wait_for_workers = 0.5`, `terraform apply
/// -invoke`) waits for the new workers and succeeds.
#[test]
fn the_scale_action_waits_for_new_workers() {
    let config = format!(
        "{}{}",
        cluster(2, None, ""),
        r#"
action "coiled_cluster_scale" "burst" {
  config {
    cluster_id       = coiled_cluster.c.id
    n_workers        = 20
    wait_for_workers = 0.5
  }
}
"#
    );
    for cli in clis().iter().filter(|c| c.at_least(1, 14)) {
        let s = Scenario::new(cli, &["--provision-delay", "1s", "--stop-delay", "0s"], &config);
        s.apply();
        let out = s.tf.terraform(&[
            "apply",
            "-auto-approve",
            "-no-color",
            "-invoke=action.coiled_cluster_scale.burst",
        ]);
        let text = flat(&out.all());
        assert_eq!(out.code, 0, "{text}");
        let (d, states) = server_cluster(&s);
        assert_eq!(d["desired_workers"], 20);
        assert!(states.iter().filter(|w| *w == "started").count() >= 10, "{states:?}");
        assert!(!text.contains("Failed to Scale"), "{text}");
    }
}

/// A scale-down whose scheduler cannot be reached from where Terraform runs (here a loopback address
/// nothing listens on): the plan warns that the removed workers' data is lost and that the apply
/// removes them without retiring them; the apply does, with a warning, as Coiled's client does.
#[test]
fn a_scale_down_warns_when_the_scheduler_cannot_be_reached() {
    let dead =
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().ip().to_string();
    for cli in clis() {
        let s = Scenario::new(cli, &["--provision-delay", "0s", "--stop-delay", "0s"], "");
        let config = |n: i64| {
            format!(
                "{}provider \"coiled\" {{\n  server = \"{}\"\n  token  = \"{}\"\n}}\n{}",
                crate::common::HEADER,
                s.server.url,
                s.server.token,
                cluster(
                    n,
                    None,
                    &format!(
                        "  tags      = {{ \"coiled-local/scheduler-ip\" = \"{dead}\" }}\n  scheduler_port = 9\n  use_scheduler_public_ip = false\n"
                    )
                )
            )
        };
        s.tf.write("main.tf", &config(3));
        s.apply();
        s.tf.write("main.tf", &config(1));
        let plan = flat(&s.tf.terraform(&["plan", "-no-color"]).ok().all());
        assert!(
            plan.contains("Workers Will Be Removed Without Retiring")
                && plan.contains("removes 2 worker(s)"),
            "{plan}"
        );
        let text = flat(&s.apply().all());
        assert!(text.contains("Workers Removed Without Retiring"), "{text}");
        assert_eq!(server_cluster(&s).0["desired_workers"], 1);
    }
}

/// A cluster with failed workers, scaled up: Coiled's client asks for what its count of live workers
/// lacks (so the failed ones are replaced too, and the server's `desired_workers` counts them), and the
/// plan after the apply is empty all the same.
#[test]
fn scaling_a_cluster_with_failed_workers_settles() {
    let tags = "  tags      = { \"coiled-local/failed-workers\" = \"2\" }\n";
    for cli in clis() {
        let s = Scenario::new(
            cli,
            &["--provision-delay", "400ms", "--stop-delay", "0s"],
            &cluster(4, Some(0.5), tags),
        );
        s.apply();
        s.assert_no_changes();
        // A refresh says that two of the four are missing, and why.
        let plan = s.tf.terraform(&["plan", "-no-color"]).ok().stdout;
        let flat = crate::common::flat(&plan);
        assert!(
            flat.contains("Fewer Workers Than Asked For")
                && flat.contains("runs 2 of the 4 workers"),
            "{plan}"
        );
        assert!(
            flat.contains("scaleme-worker-1 (coiled-local: this worker was set to fail"),
            "{plan}"
        );
        s.set(&cluster(6, Some(0.5), tags));
        s.apply();
        let (_, states) = server_cluster(&s);
        assert_eq!(
            states.iter().filter(|w| *w != "error").count(),
            6,
            "six live workers: {states:?}"
        );
        s.assert_no_changes();
        // Scaled outside Terraform, the change shows.
        let id = s.server.running_named("scaleme")[0]["id"].clone();
        s.server.post(
            &format!("/api/v2/workers/account/alice/cluster/{id}/"),
            &json!({"n_workers": 1}),
        );
        assert!(s.plan_changes().contains("n_workers"), "drift is seen");
    }
}
