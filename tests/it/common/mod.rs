//! The shared test context: Terraform CLIs, a working directory with an offline filesystem mirror
//! holding the freshly built provider, and helpers to run commands and read their output.
#![allow(dead_code)] // each test module uses its own subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

pub mod http;
pub mod in_process;
mod local;
pub use local::*;

/// Whether this process runs as root (effective uid 0), as real clusters need.
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:").map(|u| u.split_whitespace().nth(1) == Some("0")))
        .unwrap_or(false)
}

/// The provider binary cargo built for this test run.
pub const PROVIDER_BIN: &str = env!("CARGO_BIN_EXE_terraform-provider-coiled");

/// One Terraform CLI to test against.
#[derive(Clone, Debug)]
pub struct Cli {
    /// Path of the executable.
    pub path: PathBuf,
    /// Its version, e.g. `1.0.3`.
    pub version: String,
}

impl Cli {
    /// Whether this CLI is at least `major.minor`.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        let mut parts = self.version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
        let (a, b) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        (a, b) >= (major, minor)
    }
}

/// The Terraform CLIs to run every scenario against: `COILED_TEST_TERRAFORM` (colon-separated paths),
/// else those `scripts/install-test-tools.sh` put in `.tools/`. Under CI a missing CLI fails the run.
pub fn clis() -> &'static [Cli] {
    static CLIS: OnceLock<Vec<Cli>> = OnceLock::new();
    CLIS.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let paths: Vec<PathBuf> = match std::env::var("COILED_TEST_TERRAFORM") {
            Ok(v) if !v.is_empty() => v.split(':').map(PathBuf::from).collect(),
            _ => ["1.0.3", "1.15.5"]
                .iter()
                .map(|v| root.join(format!(".tools/terraform-{v}/terraform")))
                .collect(),
        };
        let mut out = Vec::new();
        for p in paths {
            if !p.exists() {
                if std::env::var("CI").is_ok() {
                    panic!(
                        "Terraform CLI {} is missing: run scripts/install-test-tools.sh",
                        p.display()
                    );
                }
                eprintln!("skipping missing Terraform CLI {}", p.display());
                continue;
            }
            let o = Command::new(&p)
                .arg("version")
                .env("CHECKPOINT_DISABLE", "1")
                .env("TF_CLI_CONFIG_FILE", "/dev/null")
                .output()
                .expect("run terraform version");
            let text = String::from_utf8_lossy(&o.stdout);
            let version = text
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("Terraform v")
                .trim()
                .to_string();
            out.push(Cli { path: p, version });
        }
        assert!(!out.is_empty(), "no Terraform CLI found: run scripts/install-test-tools.sh");
        out
    })
}

/// The result of one command.
#[derive(Debug)]
pub struct Run {
    /// Exit code.
    pub code: i32,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
    /// stdout and stderr together.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
    /// Panics with the output unless the command exited 0.
    #[track_caller]
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "command failed:\n{}", self.all());
        self
    }
}

/// A Terraform working directory using one CLI and the built provider from an offline mirror.
pub struct Workdir {
    /// The CLI.
    pub cli: Cli,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Workdir {
    /// A fresh directory with `main.tf` = `config`, initialised.
    pub fn new(cli: &Cli, config: &str) -> Workdir {
        let w = Workdir::new_uninitialised(cli, config);
        w.terraform(&["init", "-no-color"]).ok();
        w
    }

    /// The provider mirror directory.
    pub fn mirror(&self) -> PathBuf {
        self.dir.path().join("mirror")
    }

    /// Lets the mirror serve more providers (e.g. `registry.terraform.io/hashicorp/*`).
    pub fn allow_mirror(&self, pattern: &str) {
        let rc = self.dir.path().join("cli.tfrc");
        let text = std::fs::read_to_string(&rc)
            .unwrap()
            .replace("include = [", &format!("include = [\"{pattern}\", "));
        std::fs::write(rc, text).unwrap();
    }

    /// A fresh directory with `main.tf` = `config`, not yet initialised.
    pub fn new_uninitialised(cli: &Cli, config: &str) -> Workdir {
        let dir = tempfile::Builder::new().prefix("tf-coiled-").tempdir().expect("tempdir");
        let mirror =
            dir.path().join("mirror/registry.terraform.io/coiled/coiled/0.1.0/linux_amd64");
        std::fs::create_dir_all(&mirror).unwrap();
        std::fs::copy(PROVIDER_BIN, mirror.join("terraform-provider-coiled_v0.1.0")).unwrap();
        let rc = dir.path().join("cli.tfrc");
        std::fs::write(
            &rc,
            format!("provider_installation {{\n  filesystem_mirror {{\n    path    = \"{}\"\n    include = [\"registry.terraform.io/coiled/*\"]\n  }}\n}}\n", dir.path().join("mirror").display()),
        )
        .unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        // A private TMPDIR: plugin socket directories stay inside the test's own directory.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp).unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        let env = vec![
            ("TF_CLI_CONFIG_FILE".to_string(), rc.display().to_string()),
            ("CHECKPOINT_DISABLE".to_string(), "1".to_string()),
            ("TF_IN_AUTOMATION".to_string(), "1".to_string()),
            ("TF_INPUT".to_string(), "0".to_string()),
            ("TMPDIR".to_string(), tmp.display().to_string()),
            ("HOME".to_string(), home.display().to_string()),
        ];
        let w = Workdir { cli: cli.clone(), dir, env };
        w.write("main.tf", config);
        w
    }

    /// The Terraform working directory.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// Writes a file in the working directory.
    pub fn write(&self, name: &str, content: &str) {
        std::fs::write(self.path().join(name), content).unwrap();
    }

    /// Replaces the CLI configuration (`TF_CLI_CONFIG_FILE`) with `text`.
    pub fn set_cli_config(&self, text: &str) {
        std::fs::write(self.dir.path().join("cli.tfrc"), text).unwrap();
    }

    /// Sets an environment variable for later commands.
    pub fn set_env(&mut self, k: &str, v: &str) {
        self.env.retain(|(key, _)| key != k);
        self.env.push((k.to_string(), v.to_string()));
    }

    /// Runs terraform with `args`.
    pub fn terraform(&self, args: &[&str]) -> Run {
        self.terraform_env(args, &[])
    }

    /// Runs terraform with `args` and extra environment variables.
    pub fn terraform_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(&self.cli.path);
        cmd.args(args).current_dir(self.path()).stdin(Stdio::null());
        for key in [
            "TF_LOG",
            "TF_LOG_PROVIDER",
            "TF_LOG_PATH",
            "COILED_SERVER",
            "COILED_TOKEN",
            "COILED_WORKSPACE",
            "DASK_COILED__TOKEN",
            "DASK_COILED__SERVER",
            "DASK_COILED__WORKSPACE",
            "DASK_COILED__ACCOUNT",
            "TF_REATTACH_PROVIDERS",
        ] {
            cmd.env_remove(key);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        for (k, v) in extra {
            cmd.env(k, v);
        }
        Run::from(cmd.output().expect("run terraform"))
    }
}

/// The `terraform { required_providers … }` header every configuration starts with.
pub const HEADER: &str =
    "terraform {\n  required_providers {\n    coiled = { source = \"coiled/coiled\" }\n  }\n}\n";

/// Output with Terraform's line wrapping undone.
pub fn flat(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A Terraform working directory whose provider points at its own `coiled-local`.
pub struct Scenario {
    /// The control plane.
    pub server: LocalServer,
    /// The Terraform directory.
    pub tf: Workdir,
}

impl Scenario {
    /// Starts a server (with `server_args`) and writes `resources` under a provider block pointing at it.
    pub fn new(cli: &Cli, server_args: &[&str], resources: &str) -> Scenario {
        let server = LocalServer::start(server_args);
        let tf = Workdir::new(cli, &Scenario::config(&server, resources));
        Scenario { server, tf }
    }

    /// The full configuration for `resources`.
    pub fn config(server: &LocalServer, resources: &str) -> String {
        Scenario::config_with(server, "", resources)
    }

    /// The full configuration for `resources`, with `provider` added to the provider block.
    pub fn config_with(server: &LocalServer, provider: &str, resources: &str) -> String {
        // No scale-down asks a scheduler to retire workers, nor a plan checks the way to one: a
        // simulated cluster's addresses lead nowhere, and a real one's are inside the lab's namespaces,
        // which this machine has no route to. The test that retires workers runs Terraform inside the
        // lab's VPN with a provider block of its own.
        format!(
            "{HEADER}provider \"coiled\" {{\n  server = \"{}\"\n  token  = \"{}\"\n  retire_workers = false\n{provider}}}\n{resources}",
            server.url, server.token
        )
    }

    /// Replaces the resources of the configuration.
    pub fn set(&self, resources: &str) {
        self.tf.write("main.tf", &Scenario::config(&self.server, resources));
    }

    /// `terraform apply -auto-approve`, which must succeed.
    #[track_caller]
    pub fn apply(&self) -> Run {
        self.tf.terraform(&["apply", "-auto-approve", "-no-color"]).ok()
    }

    /// Asserts that a plan shows no changes (`-detailed-exitcode` 0).
    #[track_caller]
    pub fn assert_no_changes(&self) {
        let out = self.tf.terraform(&["plan", "-detailed-exitcode", "-no-color"]);
        assert_eq!(out.code, 0, "expected an empty plan ({}):\n{}", self.tf.cli.version, out.all());
    }

    /// Asserts that a plan changes no resource: only outputs may change, as a data source reads an
    /// answer that varies (`--vary`).
    #[track_caller]
    pub fn assert_no_resource_changes(&self) {
        let out = self.tf.terraform(&["plan", "-detailed-exitcode", "-no-color"]);
        assert!(
            out.code == 0 || (out.code == 2 && !out.stdout.contains("Plan: ")),
            "expected no resource change ({}):\n{}",
            self.tf.cli.version,
            out.all()
        );
    }

    /// A plan that must show changes; returns its output.
    #[track_caller]
    pub fn plan_changes(&self) -> String {
        let out = self.tf.terraform(&["plan", "-detailed-exitcode", "-no-color"]);
        assert_eq!(out.code, 2, "expected changes ({}):\n{}", self.tf.cli.version, out.all());
        out.stdout
    }

    /// `terraform apply -auto-approve` that must change state only: the server sees reads, nothing else.
    #[track_caller]
    pub fn apply_state_only(&self) {
        self.reset_stats();
        self.server.delete("/_local/requests");
        self.apply();
        let routes = self.server.get("/_local/stats").1["by_route"].clone();
        let only_reads = routes.as_object().unwrap().keys().all(|r| r.starts_with("GET "));
        assert!(only_reads, "{}: the apply wrote to the server: {routes}", self.tf.cli.version);
        // A WebSocket opens with a GET: its messages (`update_options`) are writes too.
        let log = self.server.get("/_local/requests").1;
        let messages: Vec<&serde_json::Value> =
            log.as_array().into_iter().flatten().filter(|r| r["method"] == "WS").collect();
        assert!(
            messages.is_empty(),
            "{}: the apply wrote to the server over its WebSocket: {messages:?}",
            self.tf.cli.version
        );
    }

    /// Forgets the resource at `address` and imports it again by `id` (`terraform state rm`, then
    /// `terraform import`, which must succeed).
    #[track_caller]
    pub fn reimport(&self, address: &str, id: &str) -> Run {
        self.tf.terraform(&["state", "rm", "-no-color", address]).ok();
        self.tf.terraform(&["import", "-no-color", address, id]).ok()
    }

    /// `terraform output -json NAME`.
    pub fn output(&self, name: &str) -> serde_json::Value {
        let out = self.tf.terraform(&["output", "-json", name]).ok();
        serde_json::from_str(&out.stdout).unwrap()
    }

    /// The state file's text.
    pub fn state_text(&self) -> String {
        std::fs::read_to_string(self.tf.path().join("terraform.tfstate")).unwrap_or_default()
    }

    /// The first instance, in the state file, of the first resource of type `kind`.
    #[track_caller]
    pub fn instance(&self, kind: &str) -> serde_json::Value {
        let state: serde_json::Value = serde_json::from_str(&self.state_text()).unwrap();
        let resource =
            state["resources"].as_array().unwrap().iter().find(|r| r["type"] == kind).unwrap();
        resource["instances"][0].clone()
    }

    /// API requests the server has seen since the last reset.
    pub fn api_requests(&self) -> u64 {
        self.server.get("/_local/stats").1["requests"].as_u64().unwrap_or(0)
    }

    /// Asserts, for each `(name, resources, expected text)`, that `terraform plan` fails with an error
    /// diagnostic containing the text (line wrapping ignored), shows no panic or sentinel secret, and
    /// makes no API request at all.
    #[track_caller]
    pub fn assert_refused(&self, cases: &[(&str, String, &str)]) {
        for (name, config, expect) in cases {
            self.set(config);
            self.reset_stats();
            let started = std::time::Instant::now();
            let out = self.tf.terraform(&["plan", "-no-color"]);
            let flat = out.all().split_whitespace().collect::<Vec<_>>().join(" ");
            let v = &self.tf.cli.version;
            assert_ne!(out.code, 0, "{name} ({v}) was accepted:\n{}", out.all());
            assert!(flat.contains("Error:"), "{name} ({v}): no error diagnostic\n{}", out.all());
            assert!(flat.contains(expect), "{name} ({v}): expected {expect:?}\n{}", out.all());
            assert!(
                !flat.contains("panic") && !flat.contains("SECRET-SENTINEL"),
                "{name} ({v}):\n{}",
                out.all()
            );
            assert_eq!(self.api_requests(), 0, "{name} ({v}): the API was called");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(60),
                "{name} ({v}) took {:?}",
                started.elapsed()
            );
        }
    }

    /// Resets the server's request counters.
    pub fn reset_stats(&self) {
        self.server.delete("/_local/stats");
    }
}

impl Workdir {
    /// Starts terraform with `args` in the background, in its own process group (as a shell runs a
    /// foreground job, so that `interrupt` can signal it like Ctrl-C in a terminal does).
    pub fn spawn(&self, args: &[&str], extra: &[(&str, &str)]) -> std::process::Child {
        let mut cmd = Command::new(&self.cli.path);
        cmd.args(args)
            .current_dir(self.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in
            self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())).chain(extra.iter().copied())
        {
            cmd.env(k, v);
        }
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        cmd.spawn().expect("start terraform")
    }

    /// The environment every command of this directory runs with.
    pub fn env_pairs(&self) -> Vec<(String, String)> {
        self.env.clone()
    }
}

/// Sends SIGINT to a spawned command's process group, as Ctrl-C does (Terraform 1.0 runs itself under a
/// wrapper process that ignores SIGINT and relies on the whole group getting it).
pub fn interrupt(child: &std::process::Child) {
    Command::new("kill").args(["-INT", "--", &format!("-{}", child.id())]).status().unwrap();
}

/// Waits for a spawned command; returns its status and stdout + stderr.
pub fn finish(mut child: std::process::Child) -> (std::process::ExitStatus, String) {
    use std::io::Read;
    let status = child.wait().unwrap();
    let mut out = String::new();
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut out).unwrap();
    (status, out)
}

/// Writes `ca.pem`, and `cert.pem` / `key.pem` for `localhost` and 127.0.0.1 signed by that private CA,
/// into `dir`: a server certificate no platform trusts.
pub fn write_private_ca_certificate(dir: &Path) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "coiled-local test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    // `coiled.test` is the name a test reaches it by through a proxy (which resolves it to loopback).
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "coiled.test".to_string()])
            .unwrap();
    params.subject_alt_names.push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
    let cert = params.signed_by(&key, &ca, &ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).unwrap();
}

/// Starts the plugin as Terraform would (its cookie, and `env`), and reads its handshake line.
pub fn start_plugin(env: &[(&str, &str)]) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(PROVIDER_BIN)
        .env(tfplugin::serve::MAGIC_COOKIE_KEY, tfplugin::serve::MAGIC_COOKIE_VALUE)
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    (child, line)
}
