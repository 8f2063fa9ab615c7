//! One sequence's world — a server restartable on its data, our Terraform directory, a teammate's,
//! and a colleague's cluster and environment no step may touch — how each operation runs in it, and
//! the invariants checked after every step.

use std::time::Duration;

use serde_json::{Value, json};

use super::conf::{Conf, How, IDLE_SECS, Op, Outside, SECRET, TIME_SCALE};
use crate::common::{Cli, LocalServer, Scenario, Workdir, clis};

pub struct World {
    s: Scenario,
    cli: Cli,
    /// A teammate's Terraform directory, against the same server.
    teammate: Workdir,
    /// The configurations last written in ours and the teammate's directory.
    ours: Option<Conf>,
    theirs: Option<Conf>,
    /// The colleague's software environment's alias id and spec id, which must not change.
    colleague_env: (Value, Value),
    colleague: i64,
    /// Clusters taken out of state whose import failed: theirs to clean up, not Terraform's.
    forgotten: std::cell::RefCell<Vec<i64>>,
    data: tempfile::TempDir,
    args: Vec<String>,
}

/// What a step printed, and whether it was an apply that succeeded.
pub type Outcome = (String, bool);

impl World {
    pub fn new(vary: u64, oldest: bool) -> World {
        let data = tempfile::tempdir().unwrap();
        let args: Vec<String> = [
            "--provision-delay",
            "300ms",
            "--stop-delay",
            "0s",
            "--time-scale",
            TIME_SCALE,
            "--vary",
            &vary.to_string(),
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let server = LocalServer::start_in(
            data.path(),
            &args.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        let cli = if oldest { clis().first() } else { clis().last() }.unwrap().clone();
        let mut tf = Workdir::new(&cli, &Scenario::config(&server, ""));
        // Everything Terraform and the provider log, to check that no secret is in it.
        tf.set_env("TF_LOG", "debug");
        tf.set_env("TF_LOG_PATH", &tf.path().join("terraform.log").display().to_string());
        let s = Scenario { server, tf };
        let (_, made) =
            // Long-lived: the colleague's cluster must not idle out during a sequence (`--time-scale`).
            s.server.post(
                "/api/v2/clusters/account/alice/",
                &crate::common::client_body(&json!({"name": "colleague", "workers": 1, "scheduler_options": {"idle_timeout": "52 weeks"}})),
            );
        let colleague = made["id"].as_i64().expect("the colleague's cluster");
        let env = json!({"name": "colleague-env", "container": "ghcr.io/dask/dask:2025.1.0", "use_entrypoint": true});
        assert!(s.server.post("/api/v2/software-environment/account/alice", &env).0 < 300);
        let teammate = Workdir::new(&cli, &Scenario::config(&s.server, ""));
        let colleague_env = (Value::Null, Value::Null);
        let mut world = World {
            s,
            cli,
            teammate,
            ours: None,
            theirs: None,
            colleague_env,
            colleague,
            forgotten: Default::default(),
            data,
            args,
        };
        world.colleague_env = world.colleague_env_now();
        assert!(
            !world.colleague_env.0.is_null() && !world.colleague_env.1.is_null(),
            "the colleague's environment: {:?}",
            world.colleague_env
        );
        world
    }

    /// The colleague's environment as the server holds it: alias id and spec id.
    fn colleague_env_now(&self) -> (Value, Value) {
        let (_, alias) = self
            .s
            .server
            .get("/api/v2/software-environment/account/alice/alias/name/colleague-env");
        (alias["id"].clone(), alias["latest_spec"]["id"].clone())
    }

    /// The attributes of `kind` in `dir`'s state.
    fn in_state(dir: &Workdir, kind: &str) -> Option<Value> {
        let text = std::fs::read_to_string(dir.path().join("terraform.tfstate")).ok()?;
        let state: Value = serde_json::from_str(&text).ok()?;
        let r = state["resources"].as_array()?.iter().find(|r| r["type"] == kind)?.clone();
        Some(r["instances"][0]["attributes"].clone())
    }

    fn id_in(dir: &Workdir) -> Option<i64> {
        World::in_state(dir, "coiled_cluster")?["id"].as_str()?.parse().ok()
    }

    fn cluster_id(&self) -> Option<i64> {
        World::id_in(&self.s.tf)
    }

    fn write(&self, dir: &Workdir, conf: &Option<Conf>) {
        let write_only = self.cli.at_least(1, 11);
        let (provider, resources) =
            conf.as_ref().map(|c| (c.provider(), c.resources(write_only))).unwrap_or_default();
        dir.write("main.tf", &Scenario::config_with(&self.s.server, &provider, &resources));
    }

    /// Runs one step.
    pub fn step(&mut self, op: &Op) -> Result<Outcome, String> {
        match op {
            Op::Apply(conf) => {
                self.ours = Some(conf.clone());
                self.write(&self.s.tf, &self.ours);
                let out = self.s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
                says_why(&out, "an apply")?;
                Ok((out.all(), out.code == 0))
            }
            Op::Interrupted(conf, ms) => {
                self.ours = Some(conf.clone());
                self.write(&self.s.tf, &self.ours);
                let mut child = self.s.tf.spawn(&["apply", "-auto-approve", "-no-color"], &[]);
                std::thread::sleep(Duration::from_millis(u64::from(*ms)));
                let interrupted = child.try_wait().unwrap().is_none();
                if interrupted {
                    crate::common::interrupt(&child);
                }
                let (status, out) = crate::common::finish(child);
                if !status.success() && !out.contains("Error:") && !out.contains("nterrupt") {
                    return Err(format!("an interrupted apply says why:\n{out}"));
                }
                // An apply that ended before the Ctrl-C is an apply like any other.
                Ok((out, status.success() && !interrupted))
            }
            Op::ScaleOutside(n) => {
                if let Some(id) = self.cluster_id() {
                    self.without_faults(|| {
                        self.s.server.post(
                            &format!("/api/v2/workers/account/alice/cluster/{id}/"),
                            &json!({"n_workers": n}),
                        )
                    });
                }
                Ok((String::new(), false))
            }
            Op::StopOutside(who) => self.stop_outside(*who),
            Op::DeleteEnvOutside => {
                let exists = self.without_faults(|| {
                    self.s
                        .server
                        .get("/api/v2/software-environment/account/alice/alias/name/soak-env")
                        .0
                        == 200
                });
                if World::in_state(&self.s.tf, "coiled_software_environment").is_some() && exists {
                    self.client("import coiled; coiled.delete_software_environment('soak-env')")?;
                }
                Ok((String::new(), false))
            }
            Op::Idle => {
                std::thread::sleep(Duration::from_secs(IDLE_SECS));
                Ok((String::new(), false))
            }
            Op::Reimport(how) => self.reimport(*how),
            Op::Restart => {
                // Faults are the server's memory only: put back as they were.
                let faults = self.s.server.get("/_local/faults").1;
                self.s.server.stop();
                self.s.server = LocalServer::start_in(
                    self.data.path(),
                    &self.args.iter().map(String::as_str).collect::<Vec<_>>(),
                );
                self.s.server.put("/_local/faults", &faults);
                self.write(&self.s.tf, &self.ours);
                self.write(&self.teammate, &self.theirs);
                Ok((String::new(), false))
            }
            Op::Teammate(conf) => {
                self.theirs = Some(conf.clone());
                self.write(&self.teammate, &self.theirs);
                let out = self.teammate.terraform(&["apply", "-auto-approve", "-no-color"]);
                says_why(&out, "a teammate's apply")?;
                Ok((out.all(), false))
            }
            Op::Faults(f) => {
                self.s.server.put("/_local/faults", &f.config());
                Ok((String::new(), false))
            }
        }
    }

    fn stop_outside(&self, who: Outside) -> Result<Outcome, String> {
        let Some(id) = self.cluster_id() else { return Ok((String::new(), false)) };
        match who {
            Outside::Api => {
                self.without_faults(|| {
                    self.s.server.send(
                        "DELETE",
                        &format!("/api/v2/clusters/account/alice/id/{id}?reason=soak"),
                        &Value::Null,
                    )
                });
            }
            Outside::Client => {
                self.client(&format!("import coiled; coiled.delete_cluster(cluster_id={id})"))?
            }
        }
        Ok((String::new(), false))
    }

    /// Runs `code` with the public Python client (without faults: they are the provider's to meet).
    fn client(&self, code: &str) -> Result<(), String> {
        let Some(bin) = crate::python_client::venv() else { return Ok(()) };
        let (ok, out) = self.without_faults(|| {
            crate::python_client::run(&bin.join("python"), &self.s.server, &["-c", code], &[])
        });
        if ok { Ok(()) } else { Err(format!("the public client failed:\n{out}")) }
    }

    /// Runs `f` with the server's faults off, then puts them back as they were: what someone does
    /// outside Terraform, and what the checks read, are not the provider's requests to fault.
    fn without_faults<T>(&self, f: impl FnOnce() -> T) -> T {
        let faults = self.s.server.get("/_local/faults").1;
        self.s.server.put("/_local/faults", &json!({}));
        let out = f();
        self.s.server.put("/_local/faults", &faults);
        out
    }

    /// Forgets the cluster and finds it again `how`; the CLIs before identities and queries import by id.
    fn reimport(&self, how: How) -> Result<Outcome, String> {
        let Some(id) = self.cluster_id() else { return Ok((String::new(), false)) };
        let name = World::in_state(&self.s.tf, "coiled_cluster")
            .and_then(|a| a["name"].as_str().map(str::to_string))
            .unwrap_or_default();
        self.s.tf.terraform(&["state", "rm", "-no-color", "coiled_cluster.soak"]).ok();
        let outcome = self.import(id, &name, how);
        if self.cluster_id() != Some(id) {
            self.forgotten.borrow_mut().push(id);
        }
        outcome
    }

    fn import(&self, id: i64, name: &str, how: How) -> Result<Outcome, String> {
        let by_id = |key: &str| {
            let out = self.s.tf.terraform(&["import", "-no-color", "coiled_cluster.soak", key]);
            says_why(&out, "an import").map(|()| (out.all(), false))
        };
        match how {
            How::Id => by_id(&id.to_string()),
            How::Name => {
                // By name only where the name is that cluster's alone, as a team would check first.
                let running = self.s.server.running_named(name);
                if running.len() == 1 && running[0]["id"] == id {
                    by_id(name)
                } else {
                    by_id(&id.to_string())
                }
            }
            How::Identity if self.cli.at_least(1, 12) => self.import_identity(id, String::new()),
            How::Query if self.cli.at_least(1, 14) => {
                let list = format!(
                    "list \"coiled_cluster\" \"found\" {{\n  provider = coiled\n  config {{\n    name_prefix = \"{name}\"\n  }}\n}}\n"
                );
                self.s.tf.write("q.tfquery.hcl", &list);
                let out = self.s.tf.terraform(&["query", "-no-color"]);
                std::fs::remove_file(self.s.tf.path().join("q.tfquery.hcl")).unwrap();
                says_why(&out, "a query")?;
                if out.code == 0 && !out.stdout.contains(&format!("(id {id},")) {
                    let (_, d) = self.without_faults(|| {
                        self.s.server.get(&format!("/api/v2/clusters/account/alice/id/{id}"))
                    });
                    if !matches!(
                        d["current_state"]["state"].as_str(),
                        Some("stopping" | "stopped" | "error")
                    ) {
                        return Err(format!(
                            "a query for `{name}` does not list running cluster {id}:\n{}",
                            out.all()
                        ));
                    }
                }
                self.import_identity(id, out.all())
            }
            How::Identity | How::Query => by_id(&id.to_string()),
        }
    }

    /// Imports cluster `id` with an `import` block naming its identity, by an apply.
    fn import_identity(&self, id: i64, before: String) -> Result<Outcome, String> {
        let block = format!(
            "import {{\n  to       = coiled_cluster.soak\n  identity = {{ workspace = \"alice\", id = \"{id}\" }}\n}}\n"
        );
        self.s.tf.write("import.tf", &block);
        let out = self.s.tf.terraform(&["apply", "-auto-approve", "-no-color"]);
        std::fs::remove_file(self.s.tf.path().join("import.tf")).unwrap();
        says_why(&out, "an apply that imports")?;
        Ok((format!("{before}{}", out.all()), out.code == 0))
    }

    /// Every invariant, after a step whose output is `text`.
    pub fn check(&self, text: &str, applied: bool) -> Result<(), String> {
        let token = &self.s.server.token;
        if text.contains(token.as_str()) || text.contains(SECRET) {
            return Err(format!("the API token or the AWS secret key was printed:\n{text}"));
        }
        self.check_secrets_kept()?;
        // Checked without faults: the invariants are about what exists, not about one request.
        self.without_faults(|| {
            let plan = self.s.tf.terraform(&["plan", "-detailed-exitcode", "-no-color"]);
            self.check_plan(&plan, applied)
                .and_then(|()| self.check_server(&format!("{text}{}", plan.all())))
        })
    }

    /// Neither the API token nor the AWS secret key is in Terraform's log or `coiled-local`'s request
    /// log, and the key is in state only as the value of `aws_secret_access_key`.
    fn check_secrets_kept(&self) -> Result<(), String> {
        let log =
            std::fs::read_to_string(self.s.tf.path().join("terraform.log")).unwrap_or_default();
        if log.contains(self.s.server.token.as_str()) || log.contains(SECRET) {
            return Err("the API token or the AWS secret key is in Terraform's log".into());
        }
        let requests = self.s.server.get("/_local/requests").1.to_string();
        if requests.contains(SECRET) {
            return Err("the AWS secret key is in coiled-local's request log".into());
        }
        // Write-only, the key is nowhere in state; else only as `aws_secret_access_key`.
        let write_only =
            self.ours.as_ref().is_some_and(|c| c.account == Some(true)) && self.cli.at_least(1, 11);
        let state = self.s.state_text();
        let state = if write_only {
            state
        } else {
            state.replace(&format!("\"aws_secret_access_key\": \"{SECRET}\""), "")
        };
        if state.contains(SECRET) {
            return Err("the AWS secret key is in state where it does not belong".into());
        }
        Ok(())
    }

    fn check_plan(&self, plan: &crate::common::Run, applied: bool) -> Result<(), String> {
        if plan.all().contains(self.s.server.token.as_str()) || plan.all().contains(SECRET) {
            return Err(format!(
                "the API token or the AWS secret key was printed by a plan:\n{}",
                plan.all()
            ));
        }
        match (applied, plan.code) {
            (true, 0) | (false, 0 | 2) => Ok(()),
            // Only outputs may change after an apply, as a read answer varies; and Coiled may have
            // stopped the cluster as idle since.
            (true, 2) if !plan.stdout.contains("Plan: ") || self.stopped_as_idle() => Ok(()),
            (true, _) => {
                Err(format!("a successful apply is followed by an empty plan:\n{}", plan.all()))
            }
            (false, _) => Err(format!("the plan after a step fails:\n{}", plan.all())),
        }
    }

    /// Whether the cluster in state was stopped for being idle.
    fn stopped_as_idle(&self) -> bool {
        let Some(id) = self.cluster_id() else { return false };
        let (_, state) =
            self.s.server.get(&format!("/api/v2/clusters/account/alice/id/{id}/state"));
        state["reason"].as_str().is_some_and(|r| r.contains("idle"))
    }

    /// What the server holds agrees with state: one cluster of the name at most, the colleague's
    /// untouched and never in state, the cluster in state known, its dashboard token only where it
    /// belongs (`printed` is everything Terraform printed).
    fn check_server(&self, printed: &str) -> Result<(), String> {
        let all = self.s.server.clusters();
        let live =
            |c: &Value| !matches!(c["current_state"]["state"].as_str(), Some("stopped" | "error"));
        let mut names: Vec<&str> =
            all.iter().filter(|c| live(c)).filter_map(|c| c["name"].as_str()).collect();
        names.sort();
        if let Some(twice) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(format!("one name is two running clusters: {twice:?}"));
        }
        if self.colleague_env_now() != self.colleague_env {
            return Err(format!(
                "the colleague's environment was rebuilt or deleted: {:?}",
                self.colleague_env_now()
            ));
        }
        // Nothing is lost: every running cluster is the colleague's, or in one directory's state, or one a
        // failed import left out.
        let lost = self.unheld(&all, &["stopping", "stopped", "error"]);
        if !lost.is_empty() {
            return Err(format!("clusters run that no state holds: {lost:?}"));
        }
        let theirs = World::id_in(&self.teammate);
        if theirs.is_some() && theirs == self.cluster_id() {
            return Err(format!("one cluster is in two directories' states: {theirs:?}"));
        }
        let (_, colleague) =
            self.s.server.get(&format!("/api/v2/clusters/account/alice/id/{}", self.colleague));
        if !live(&colleague) || colleague["desired_workers"] != 1 {
            return Err(format!("the colleague's cluster was touched: {colleague}"));
        }
        let Some(id) = self.cluster_id() else { return Ok(()) };
        if id == self.colleague {
            return Err("the colleague's cluster was written into state".into());
        }
        let (code, d) = self.s.server.get(&format!("/api/v2/clusters/account/alice/id/{id}"));
        if code != 200 {
            return Err(format!(
                "state holds cluster {id}, which the server does not know ({code})"
            ));
        }
        if let Some(dash) =
            d["scheduler"]["dashboard_address"].as_str().and_then(|a| a.split("token=").nth(1))
        {
            let state = self.s.state_text().replace(&format!("token={dash}"), "");
            if state.contains(dash) || printed.contains(dash) {
                return Err("the dashboard token appears outside `dashboard_address`".into());
            }
        }
        Ok(())
    }

    /// The clusters of `all` not in one of the `ended` states that are neither the colleague's, nor in
    /// either directory's state, nor left out of state by a failed import.
    fn unheld(&self, all: &[Value], ended: &[&str]) -> Vec<i64> {
        let held = [self.cluster_id(), World::id_in(&self.teammate), Some(self.colleague)];
        let forgotten = self.forgotten.borrow();
        all.iter()
            .filter(|c| !c["current_state"]["state"].as_str().is_some_and(|s| ended.contains(&s)))
            .filter_map(|c| c["id"].as_i64())
            .filter(|id| !held.contains(&Some(*id)) && !forgotten.contains(id))
            .collect()
    }

    /// Destroys both directories' resources (without faults): nothing of theirs is left running, and
    /// the colleague's are as they were.
    pub fn destroy(&self) -> Result<(), String> {
        self.s.server.put("/_local/faults", &json!({}));
        for dir in [&self.s.tf, &self.teammate] {
            let out = dir.terraform(&["destroy", "-auto-approve", "-no-color"]);
            if out.code != 0 {
                return Err(format!("destroy failed:\n{}", out.all()));
            }
        }
        // Destroyed means stopped: a cluster still stopping counts as left.
        let left = self.unheld(&self.s.server.clusters(), &["stopped", "error"]);
        if !left.is_empty() {
            return Err(format!(
                "clusters Terraform made are left running after destroy: {left:?}"
            ));
        }
        self.check("", false)
    }
}

/// A failed command says why.
fn says_why(out: &crate::common::Run, what: &str) -> Result<(), String> {
    if out.all().contains("panic") || out.all().contains("crash") {
        return Err(format!("{what}: the provider crashed:\n{}", out.all()));
    }
    if out.code != 0 && !out.all().contains("Error:") {
        return Err(format!("{what} failed without saying why:\n{}", out.all()));
    }
    Ok(())
}
