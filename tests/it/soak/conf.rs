//! What a sequence is made of: generated configurations and the operations teams run, and the
//! Terraform text a configuration is.

use proptest::prelude::*;
use serde::{Deserialize, Serialize};

/// Rules a configuration may give the cluster (port, source).
const RULES: [(u16, &str); 3] =
    [(8786, "10.1.0.0/16"), (8787, "10.32.0.0/16"), (443, "10.1.0.0/16")];

/// The idle timeout a configuration may set; `coiled-local` runs with [`TIME_SCALE`], so it passes in
/// 15 s (the default of 20 minutes in 60 s).
pub const IDLE_TIMEOUT: &str = "5 minutes";
/// `--time-scale` of the sequences' server.
pub const TIME_SCALE: &str = "20";
/// Real seconds after which a cluster with [`IDLE_TIMEOUT`] is idle.
pub const IDLE_SECS: u64 = 16;
/// The AWS secret key a configuration's backend options carry, which must never be shown or stored
/// outside its sensitive attribute.
pub const SECRET: &str = "SOAK-SECRET-KEY-7d1f09";

/// One generated configuration: a cluster (named `soak`, or not named), and maybe a software
/// environment `soak-env` it runs, built from packages or an image; maybe provider `cluster_defaults`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Conf {
    pub named: bool,
    /// `None`: the cluster runs `dask`; else the environment's spec, packages (false) or an image (true).
    pub env: Option<bool>,
    pub n_workers: u8,
    /// Which of [`RULES`] its ingress holds (none: the cluster inherits).
    pub rules: Vec<bool>,
    pub tagged: bool,
    pub keep_stopped: bool,
    pub wait_for_workers: Option<u8>,
    /// The provider sets `cluster_defaults` (tags, a rule, a private scheduler address).
    pub defaults: bool,
    /// The cluster sets `idle_timeout` to [`IDLE_TIMEOUT`].
    pub idle: bool,
    /// The configuration also owns the workspace's backend options (with [`SECRET`]), its secret key
    /// write-only (`true`, on CLIs that have them) or not.
    pub account: Option<bool>,
}

/// How a forgotten cluster is found again.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum How {
    /// `terraform import ADDRESS ID`.
    Id,
    /// `terraform import ADDRESS NAME`.
    Name,
    /// An `import` block with the identity (Terraform 1.12 and later; by id before).
    Identity,
    /// `terraform query` lists it, then an `import` block with the identity it gives (Terraform 1.14
    /// and later; by id before).
    Query,
}

/// Who stops the cluster outside Terraform.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum Outside {
    /// A `DELETE` of the API, as a script would.
    Api,
    /// The public Python client (`coiled.delete_cluster`).
    Client,
}

/// Request faults of the server.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub enum Faults {
    Off,
    /// 503s and dropped connections.
    Errors,
    /// 429s, with `Retry-After`.
    Throttled,
    /// The next create and scale-up lose their answer, then the next ones are a 502, after the work.
    LostAnswers,
}

/// What a team does.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Op {
    /// Applies a configuration.
    Apply(Conf),
    /// Applies a configuration and presses Ctrl-C after this many milliseconds.
    Interrupted(Conf, u16),
    /// Adds workers through the API, as someone scaling by hand.
    ScaleOutside(u8),
    /// Stops the cluster outside Terraform.
    StopOutside(Outside),
    /// The public Python client deletes `soak-env`.
    DeleteEnvOutside,
    /// Time passes for a cluster with [`IDLE_TIMEOUT`] to be stopped as idle.
    Idle,
    /// Forgets the cluster and imports it again.
    Reimport(How),
    /// Restarts `coiled-local` on the same data.
    Restart,
    /// A second Terraform directory (a teammate's) applies a configuration of the same names.
    Teammate(Conf),
    /// Turns request faults on or off.
    Faults(Faults),
}

/// A sequence: the CLI it runs with and its operations.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sequence {
    /// With the oldest CLI (else the newest).
    pub oldest: bool,
    pub ops: Vec<Op>,
}

fn conf() -> impl Strategy<Value = Conf> {
    let shape =
        (any::<bool>(), prop::option::of(any::<bool>()), 0u8..=8, any::<bool>(), any::<bool>());
    let options = (
        prop::collection::vec(any::<bool>(), 3),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(1u8..=4),
        prop::option::of(any::<bool>()),
    );
    (shape, options).prop_map(
        |(
            (named, env, n_workers, defaults, idle),
            (rules, tagged, keep_stopped, wait_for_workers, account),
        )| Conf {
            named,
            env,
            n_workers,
            rules,
            tagged,
            keep_stopped,
            wait_for_workers,
            defaults,
            idle,
            account,
        },
    )
}

fn op() -> impl Strategy<Value = Op> {
    let how = prop_oneof![Just(How::Id), Just(How::Name), Just(How::Identity), Just(How::Query)];
    let outside = prop_oneof![Just(Outside::Api), Just(Outside::Client)];
    let faults = prop_oneof![
        Just(Faults::Off),
        Just(Faults::Errors),
        Just(Faults::Throttled),
        Just(Faults::LostAnswers)
    ];
    prop_oneof![
        6 => conf().prop_map(Op::Apply),
        2 => (conf(), 0u16..6000).prop_map(|(c, ms)| Op::Interrupted(c, ms)),
        1 => (1u8..=3).prop_map(Op::ScaleOutside),
        1 => outside.prop_map(Op::StopOutside),
        1 => Just(Op::DeleteEnvOutside),
        1 => Just(Op::Idle),
        2 => how.prop_map(Op::Reimport),
        1 => Just(Op::Restart),
        1 => conf().prop_map(Op::Teammate),
        2 => faults.prop_map(Op::Faults),
    ]
}

/// Sequences of 1 to `max` operations, with the oldest CLI one time in four.
pub fn sequence(max: usize) -> impl Strategy<Value = Sequence> {
    (prop::bool::weighted(0.25), prop::collection::vec(op(), 1..=max))
        .prop_map(|(oldest, ops)| Sequence { oldest, ops })
}

impl Conf {
    /// What the provider block adds.
    pub fn provider(&self) -> String {
        if !self.defaults {
            return String::new();
        }
        "  cluster_defaults {\n    use_scheduler_public_ip = false\n    tags = { managed-by = \"terraform\" }\n    ingress {\n      ports = [8786]\n      cidr  = \"10.7.0.0/16\"\n    }\n  }\n".into()
    }

    /// The resources; `write_only`: whether the CLI has write-only arguments.
    pub fn resources(&self, write_only: bool) -> String {
        let mut out = String::new();
        if let Some(wo) = self.account {
            let secret = if wo && write_only {
                format!(
                    "  aws_secret_access_key_wo         = \"{SECRET}\"\n  aws_secret_access_key_wo_version = 1\n"
                )
            } else {
                format!("  aws_secret_access_key = \"{SECRET}\"\n")
            };
            out.push_str(&format!(
                "resource \"coiled_backend_options\" \"soak\" {{\n  backend           = \"aws\"\n  aws_access_key_id = \"AKIASOAKEXAMPLE\"\n{secret}  ingress {{\n    ports = [443, 8786]\n    cidr  = \"10.5.0.0/16\"\n  }}\n}}\n"
            ));
        }
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
        out.push_str(&format!(
            "resource \"coiled_cluster\" \"soak\" {{\n  software  = {software}\n  n_workers = {}\n",
            self.n_workers
        ));
        if self.named {
            out.push_str("  name      = \"soak\"\n");
        }
        if self.tagged {
            out.push_str("  tags = { team = \"data\" }\n");
        }
        if self.keep_stopped {
            out.push_str("  when_stopped = \"keep\"\n");
        }
        if self.idle {
            out.push_str(&format!("  idle_timeout = \"{IDLE_TIMEOUT}\"\n"));
        }
        if let Some(w) = self.wait_for_workers {
            out.push_str(&format!("  wait_for_workers = {}\n", f64::from(w) / 4.0));
        }
        let rules: Vec<_> =
            RULES.iter().zip(&self.rules).filter(|(_, on)| **on).map(|(r, _)| r).collect();
        if !rules.is_empty() {
            out.push_str("  backend_options {\n");
            for (port, cidr) in rules {
                out.push_str(&format!(
                    "    ingress {{\n      ports = [{port}]\n      cidr  = \"{cidr}\"\n    }}\n"
                ));
            }
            out.push_str("  }\n");
        }
        out.push_str("  timeouts {\n    create = \"2m\"\n    update = \"2m\"\n  }\n}\n");
        out
    }
}

impl Faults {
    /// The server's fault configuration.
    pub fn config(self) -> serde_json::Value {
        use serde_json::json;
        match self {
            Faults::Off => json!({}),
            Faults::Errors => json!({"rate_503": 0.15, "rate_drop": 0.05, "seed": 7}),
            Faults::Throttled => json!({"rate_429": 0.3, "retry_after": 1, "seed": 7}),
            Faults::LostAnswers => {
                json!({"lose_create_responses": 1, "create_then_502": 1, "lose_scale_responses": 1, "scale_then_502": 1})
            }
        }
    }
}
