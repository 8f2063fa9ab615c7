//! Random operation sequences, as teams run them, through the real `terraform` binary against a
//! `coiled-local --vary` that may fail requests, with invariants checked after every step; a failing
//! sequence is shrunk (proptest) and printed with the command that replays it. `scripts/test.sh` runs a
//! fixed-seed batch; `scripts/soak.sh --minutes N [--seed S]` runs batches with fresh seeds.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::common::{LocalServer, Scenario, Workdir, clis};

/// Rules a configuration may give the cluster (port, source).
const RULES: [(u16, &str); 3] = [(8786, "10.1.0.0/16"), (8787, "10.32.0.0/16"), (443, "10.1.0.0/16")];

/// One generated configuration: a cluster (named `soak`, or not named), and maybe a software
/// environment `soak-env` it runs, built from packages or an image.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Conf {
    named: bool,
    /// `None`: the cluster runs `dask`; else the environment's spec, packages (false) or an image (true).
    env: Option<bool>,
    n_workers: u8,
    /// Which of [`RULES`] its ingress holds (none: the cluster inherits).
    rules: Vec<bool>,
    tagged: bool,
    keep_stopped: bool,
    wait_for_workers: Option<u8>,
}

/// What a team does.
#[derive(Clone, Debug, Serialize, Deserialize)]
enum Op {
    /// Applies a configuration.
    Apply(Conf),
    /// Adds workers through the API, as someone scaling by hand.
    ScaleOutside(u8),
    /// Stops the cluster through the API.
    StopOutside,
    /// Forgets the cluster and imports it again by id.
    Reimport,
    /// Restarts `coiled-local` on the same data.
    Restart,
    /// A second Terraform directory (a teammate's) applies a configuration of the same names.
    Teammate(Conf),
    /// Turns request faults (503s, dropped connections) on or off.
    Faults(bool),
}

fn conf() -> impl Strategy<Value = Conf> {
    let shape = (any::<bool>(), prop::option::of(any::<bool>()), 0u8..=8);
    let options = (prop::collection::vec(any::<bool>(), 3), any::<bool>(), any::<bool>(), prop::option::of(1u8..=4));
    (shape, options).prop_map(|((named, env, n_workers), (rules, tagged, keep_stopped, wait_for_workers))| Conf {
        named,
        env,
        n_workers,
        rules,
        tagged,
        keep_stopped,
        wait_for_workers,
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => conf().prop_map(Op::Apply),
        1 => (1u8..=3).prop_map(Op::ScaleOutside),
        1 => Just(Op::StopOutside),
        1 => Just(Op::Reimport),
        1 => Just(Op::Restart),
        1 => conf().prop_map(Op::Teammate),
        1 => any::<bool>().prop_map(Op::Faults),
    ]
}

impl Conf {
    fn resources(&self) -> String {
        let mut out = String::new();
        let software = match self.env {
            None => "\"dask\"".to_string(),
            Some(image) => {
                let spec = if image {
                    "  container = \"ghcr.io/dask/dask:2025.1.0\"\n"
                } else {
                    "  conda {\n    dependencies = [\"python=3.12\", \"dask\"]\n  }\n"
                };
                out.push_str(&format!("resource \"coiled_software_environment\" \"soak\" {{\n  name = \"soak-env\"\n{spec}}}\n"));
                "coiled_software_environment.soak.name".to_string()
            }
        };
        out.push_str(&format!("resource \"coiled_cluster\" \"soak\" {{\n  software  = {software}\n  n_workers = {}\n", self.n_workers));
        if self.named {
            out.push_str("  name      = \"soak\"\n");
        }
        if self.tagged {
            out.push_str("  tags = { team = \"data\" }\n");
        }
        if self.keep_stopped {
            out.push_str("  when_stopped = \"keep\"\n");
        }
        if let Some(w) = self.wait_for_workers {
            out.push_str(&format!("  wait_for_workers = {}\n", f64::from(w) / 4.0));
        }
        let rules: Vec<_> = RULES.iter().zip(&self.rules).filter(|(_, on)| **on).map(|(r, _)| r).collect();
        if !rules.is_empty() {
            out.push_str("  backend_options {\n");
            for (port, cidr) in rules {
                out.push_str(&format!("    ingress {{\n      ports = [{port}]\n      cidr  = \"{cidr}\"\n    }}\n"));
            }
            out.push_str("  }\n");
        }
        out.push_str("  timeouts {\n    create = \"2m\"\n    update = \"2m\"\n  }\n}\n");
        out
    }
}

/// One sequence's world: a server (restartable on its data), a Terraform directory, and a colleague's
/// cluster that no step may touch.
struct World {
    s: Scenario,
    /// A teammate's Terraform directory, against the same server.
    teammate: Workdir,
    teammate_resources: String,
    /// The colleague's software environment's alias id and spec id, which must not change.
    colleague_env: (Value, Value),
    data: tempfile::TempDir,
    args: Vec<String>,
    resources: String,
    colleague: i64,
}

impl World {
    fn new(vary: u64) -> World {
        let data = tempfile::tempdir().unwrap();
        let args: Vec<String> =
            ["--provision-delay", "300ms", "--stop-delay", "0s", "--vary", &vary.to_string()].iter().map(|s| s.to_string()).collect();
        let server = LocalServer::start_in(data.path(), &args.iter().map(String::as_str).collect::<Vec<_>>());
        let cli = clis().last().unwrap();
        let tf = Workdir::new(cli, &Scenario::config(&server, ""));
        let s = Scenario { server, tf };
        let (_, made) =
            s.server.post("/api/v2/clusters/account/alice/", &crate::common::client_body(&json!({"name": "colleague", "workers": 1})));
        let colleague = made["id"].as_i64().expect("the colleague's cluster");
        let env = json!({"name": "colleague-env", "container": "ghcr.io/dask/dask:2025.1.0", "use_entrypoint": true});
        assert!(s.server.post("/api/v2/software-environment/account/alice", &env).0 < 300);
        let teammate = Workdir::new(cli, &Scenario::config(&s.server, ""));
        let (resources, teammate_resources, colleague_env) = (String::new(), String::new(), (Value::Null, Value::Null));
        let mut world = World { s, teammate, teammate_resources, colleague_env, data, args, resources, colleague };
        world.colleague_env = world.colleague_env_now();
        world
    }

    /// The colleague's environment as the server holds it: alias id and spec id.
    fn colleague_env_now(&self) -> (Value, Value) {
        let (_, alias) = self.s.server.get("/api/v2/software-environment/account/alice/alias/name/colleague-env");
        (alias["id"].clone(), alias["latest_spec"]["id"].clone())
    }

    /// The cluster id in `dir`'s state.
    fn id_in(dir: &Workdir) -> Option<i64> {
        let text = std::fs::read_to_string(dir.path().join("terraform.tfstate")).ok()?;
        let state: Value = serde_json::from_str(&text).ok()?;
        let r = state["resources"].as_array()?.iter().find(|r| r["type"] == "coiled_cluster")?.clone();
        r["instances"][0]["attributes"]["id"].as_str()?.parse().ok()
    }

    fn cluster_id(&self) -> Option<i64> {
        World::id_in(&self.s.tf)
    }

    /// Runs one step; the output of what it ran, and whether it was an apply that succeeded.
    fn step(&mut self, op: &Op) -> Result<(String, bool), String> {
        match op {
            Op::Apply(conf) => {
                self.resources = conf.resources();
                self.s.set(&self.resources);
                let out = self.s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
                if out.code != 0 && !out.all().contains("Error:") {
                    return Err(format!("a failed apply says why:\n{}", out.all()));
                }
                Ok((out.all(), out.code == 0))
            }
            Op::ScaleOutside(n) => {
                if let Some(id) = self.cluster_id() {
                    self.s.server.post(&format!("/api/v2/workers/account/alice/cluster/{id}/"), &json!({"n_workers": n}));
                }
                Ok((String::new(), false))
            }
            Op::StopOutside => {
                if let Some(id) = self.cluster_id() {
                    let _ = self.s.server.send("DELETE", &format!("/api/v2/clusters/account/alice/id/{id}?reason=soak"), &Value::Null);
                }
                Ok((String::new(), false))
            }
            Op::Reimport => {
                let Some(id) = self.cluster_id() else { return Ok((String::new(), false)) };
                let _ = self.s.tf.terraform(&["state", "rm", "-no-color", "coiled_cluster.soak"]);
                let out = self.s.tf.terraform(&["import", "-no-color", "coiled_cluster.soak", &id.to_string()]);
                Ok((out.all(), false))
            }
            Op::Restart => {
                self.s.server.stop();
                self.s.server = LocalServer::start_in(self.data.path(), &self.args.iter().map(String::as_str).collect::<Vec<_>>());
                self.s.set(&self.resources);
                self.teammate.write("main.tf", &Scenario::config(&self.s.server, &self.teammate_resources));
                Ok((String::new(), false))
            }
            Op::Teammate(conf) => {
                self.teammate_resources = conf.resources();
                self.teammate.write("main.tf", &Scenario::config(&self.s.server, &self.teammate_resources));
                let out = self.teammate.terraform(&["apply", "-auto-approve", "-no-color"]);
                if out.code != 0 && !out.all().contains("Error:") {
                    return Err(format!("a teammate's failed apply says why:\n{}", out.all()));
                }
                Ok((out.all(), false))
            }
            Op::Faults(on) => {
                let faults = if *on { json!({"rate_503": 0.15, "rate_drop": 0.05, "seed": 7}) } else { json!({}) };
                self.s.server.put("/_local/faults", &faults);
                Ok((String::new(), false))
            }
        }
    }

    /// Every invariant, after a step whose output is `text`.
    fn check(&self, text: &str, applied: bool) -> Result<(), String> {
        // No secret in what Terraform printed.
        let token = &self.s.server.token;
        if text.contains(token.as_str()) {
            return Err(format!("the API token was printed:\n{text}"));
        }
        // Checked without faults: the invariants are about what exists, not about one request.
        self.s.server.put("/_local/faults", &json!({}));
        let plan = self.s.tf.terraform(&["plan", "-detailed-exitcode", "-no-color"]);
        if plan.all().contains(token.as_str()) {
            return Err(format!("the API token was printed by a plan:\n{}", plan.all()));
        }
        match (applied, plan.code) {
            (true, 0) | (false, 0 | 2) => {}
            // Only outputs may change after an apply, as a read answer varies.
            (true, 2) if !plan.stdout.contains("Plan: ") => {}
            (true, _) => return Err(format!("a successful apply is followed by an empty plan:\n{}", plan.all())),
            (false, _) => return Err(format!("the plan after a step fails:\n{}", plan.all())),
        }
        self.check_server(&format!("{text}{}", plan.all()))
    }

    /// What the server holds agrees with state: one cluster of the name at most, the colleague's
    /// untouched and never in state, the cluster in state known, its dashboard token only where it
    /// belongs (`printed` is everything Terraform printed).
    fn check_server(&self, printed: &str) -> Result<(), String> {
        let all = self.s.server.clusters();
        let live = |c: &Value| !matches!(c["current_state"]["state"].as_str(), Some("stopped" | "error"));
        let mut names: Vec<&str> = all.iter().filter(|c| live(c)).filter_map(|c| c["name"].as_str()).collect();
        names.sort();
        if let Some(twice) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("one name is two running clusters: {twice:?}"));
        }
        if self.colleague_env_now() != self.colleague_env {
            return Err(format!("the colleague's environment was rebuilt or deleted: {:?}", self.colleague_env_now()));
        }
        let theirs = World::id_in(&self.teammate);
        if theirs.is_some() && theirs == self.cluster_id() {
            return Err(format!("one cluster is in two directories' states: {theirs:?}"));
        }
        let (_, colleague) = self.s.server.get(&format!("/api/v2/clusters/account/alice/id/{}", self.colleague));
        if !live(&colleague) || colleague["desired_workers"] != 1 {
            return Err(format!("the colleague's cluster was touched: {colleague}"));
        }
        let Some(id) = self.cluster_id() else { return Ok(()) };
        if id == self.colleague {
            return Err("the colleague's cluster was written into state".into());
        }
        let (code, d) = self.s.server.get(&format!("/api/v2/clusters/account/alice/id/{id}"));
        if code != 200 {
            return Err(format!("state holds cluster {id}, which the server does not know ({code})"));
        }
        if let Some(dash) = d["scheduler"]["dashboard_address"].as_str().and_then(|a| a.split("token=").nth(1)) {
            let state = self.s.state_text().replace(&format!("token={dash}"), "");
            if state.contains(dash) || printed.contains(dash) {
                return Err("the dashboard token appears outside `dashboard_address`".into());
            }
        }
        Ok(())
    }
}

/// Runs a sequence from a fresh world; the first broken invariant, with the step that broke it.
fn run_sequence(ops: &[Op], vary: u64) -> Result<(), String> {
    let mut world = World::new(vary);
    for (i, op) in ops.iter().enumerate() {
        let (text, applied) = world.step(op).map_err(|e| format!("step {i} ({op:?}): {e}"))?;
        world.check(&text, applied).map_err(|e| format!("after step {i} ({op:?}): {e}"))?;
    }
    // Destroy leaves nothing of ours running and the colleague's cluster as it was.
    world.s.server.put("/_local/faults", &json!({}));
    for dir in [&world.s.tf, &world.teammate] {
        let out = dir.terraform(&["destroy", "-auto-approve", "-no-color"]);
        if out.code != 0 {
            return Err(format!("destroy failed:\n{}", out.all()));
        }
    }
    world.check("", false)
}

fn seed() -> u64 {
    std::env::var("SOAK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261206)
}

/// A batch of random sequences (`SOAK_CASES`, default 3, from `SOAK_SEED`): every invariant holds
/// after every step, or the shrunk sequence is printed with the command that replays it.
#[test]
fn random_sequences_keep_every_invariant() {
    let (seed, cases) = (seed(), std::env::var("SOAK_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(3));
    let config = Config { cases, max_shrink_iters: 24, failure_persistence: None, ..Config::default() };
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let mut runner = TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let result = runner.run(&prop::collection::vec(op(), 1..7), |ops| run_sequence(&ops, seed).map_err(TestCaseError::fail));
    match result {
        Ok(()) => {}
        Err(TestError::Fail(why, ops)) => {
            let replay = serde_json::to_string(&ops).unwrap();
            panic!(
                "an invariant broke (seed {seed}): {why}\nshrunk sequence: {ops:?}\nreplay: SOAK_SEED={seed} SOAK_REPLAY='{replay}' cargo nextest run --test it soak::replay_a_sequence"
            );
        }
        Err(e) => panic!("{e}"),
    }
}

/// Replays the sequence `SOAK_REPLAY` (JSON, as a failure prints it) with `SOAK_SEED`.
#[test]
fn replay_a_sequence() {
    let Ok(json) = std::env::var("SOAK_REPLAY") else { return };
    let ops: Vec<Op> = serde_json::from_str(&json).expect("SOAK_REPLAY is a sequence as a failure prints it");
    if let Err(why) = run_sequence(&ops, seed()) {
        panic!("{why}");
    }
}
