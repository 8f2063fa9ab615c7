//! The `coiled-local` each scenario runs: starting it, reading and writing through it, and what this
//! run's servers report (full, terse or varied answers).

use super::http::Http;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// `--vary SEED` when `COILED_LOCAL_VARY` lists seeds (`11,22,33`): each test takes one of them, by
/// its name, so that one pass covers all of them and a failure replays with the same seed.
fn vary_args() -> Vec<String> {
    let Ok(seeds) = std::env::var("COILED_LOCAL_VARY") else { return Vec::new() };
    let seeds: Vec<&str> = seeds.split(',').map(str::trim).filter(|s| !s.is_empty()).collect();
    let name = std::thread::current().name().unwrap_or_default().to_string();
    let pick = name.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(b as usize));
    match seeds.get(pick % seeds.len().max(1)) {
        Some(seed) => vec!["--vary".into(), seed.to_string()],
        None => Vec::new(),
    }
}

/// The control plane binary: `coiled-local` is a package of the same workspace, built into the same
/// target directory as this test binary (`cargo test --workspace` / `cargo nextest run --workspace`).
pub fn local_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test binary path");
        // target/<profile>/deps/it-<hash> → target/<profile>/coiled-local
        let bin = exe
            .parent()
            .and_then(Path::parent)
            .map(|d| d.join("coiled-local"))
            .expect("target directory");
        assert!(
            bin.exists(),
            "{} is missing: build the workspace (`cargo build --workspace`)",
            bin.display()
        );
        bin
    })
    .clone()
}

/// A running `coiled-local` on a free port with its own data directory; killed when dropped.
pub struct LocalServer {
    /// Base URL.
    pub url: String,
    /// The API token.
    pub token: String,
    /// The workspace.
    pub workspace: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    pub child: std::process::Child,
    _dir: Option<tempfile::TempDir>,
}

impl LocalServer {
    /// Starts one with `extra` arguments (e.g. `--provision-delay 0s`).
    pub fn start(extra: &[&str]) -> LocalServer {
        let dir = tempfile::Builder::new().prefix("coiled-local-").tempdir().unwrap();
        let data = dir.path().to_path_buf();
        let mut s = LocalServer::start_in(&data, extra);
        s._dir = Some(dir);
        s
    }

    /// Starts one on an existing data directory.
    pub fn start_in(data_dir: &Path, extra: &[&str]) -> LocalServer {
        use std::io::BufRead;
        let mut child = Command::new(local_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(["--token", "test-token-1", "--workspace", "alice"])
            // The software environment test configurations name.
            .args(["--software-env", "dask"])
            // The second pass of scripts/test.sh: a server that answers only what the client reads.
            .args(if minimal_echo() { &["--minimal-echo"][..] } else { &[] })
            // The third pass of scripts/test.sh: answers that vary within what the client tolerates.
            .args(vary_args())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start coiled-local");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
        let url = line.trim().to_string();
        assert!(
            url.starts_with("http://127.0.0.1:") || url.starts_with("https://127.0.0.1:"),
            "unexpected first line {url:?}"
        );
        let token = extra
            .iter()
            .position(|a| *a == "--token")
            .and_then(|i| extra.get(i + 1))
            .unwrap_or(&"test-token-1")
            .to_string();
        LocalServer {
            url,
            token,
            workspace: "alice".into(),
            data_dir: data_dir.to_path_buf(),
            child,
            _dir: None,
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().and_then(|p| p.parse().ok()).unwrap_or(0)
    }

    /// Stops it with SIGTERM and waits.
    pub fn stop(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        self.child.wait().unwrap()
    }

    /// An API client for it.
    pub fn client(&self) -> terraform_provider_coiled::api::Client {
        terraform_provider_coiled::api::Client::new(terraform_provider_coiled::api::ClientConfig {
            server: self.url.clone(),
            token: terraform_provider_coiled::api::Secret::new(self.token.clone()),
            allow_insecure_http: false,
            ca_bundle_pem: None,
            retry: terraform_provider_coiled::api::RetryPolicy {
                base: std::time::Duration::from_millis(20),
                max: std::time::Duration::from_millis(200),
                ..Default::default()
            },
        })
        .unwrap()
    }

    /// GET a JSON path (admin routes and raw checks), with the token.
    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.authorized(Http::get(&format!("{}{path}", self.url)))
            .header("X-Coiled-Local-Full", "1")
            .answer()
    }

    /// POST JSON with the token; the status and the JSON answer.
    pub fn post(&self, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        self.send("POST", path, body)
    }

    /// `method` with a JSON body and the token; the status and the JSON answer.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        self.authorized(Http::new(method, &format!("{}{path}", self.url))).json(body).answer()
    }

    /// `request` with this server's token.
    pub fn authorized(&self, request: Http) -> Http {
        request.header("Authorization", &format!("ApiToken {}", self.token))
    }

    /// Creates a cluster in `workspace` with a raw API call (with [`client_body`]'s defaults), which
    /// must be accepted; its id.
    pub fn create(&self, workspace: &str, body: &serde_json::Value) -> i64 {
        let (code, answer) =
            self.post(&format!("/api/v2/clusters/account/{workspace}/"), &client_body(body));
        assert!((200..300).contains(&code), "{answer}");
        answer["id"].as_i64().unwrap()
    }

    /// Waits up to `secs` for cluster `id` of `workspace` to reach a state in `states`; its details
    /// then (or at the deadline).
    pub fn wait_for(
        &self,
        workspace: &str,
        id: i64,
        states: &[&str],
        secs: u64,
    ) -> serde_json::Value {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            let (_, d) = self.get(&format!("/api/v2/clusters/account/{workspace}/id/{id}"));
            if states.iter().any(|s| d["current_state"]["state"] == *s)
                || std::time::Instant::now() > deadline
            {
                return d;
            }
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
    }

    /// PUT JSON to an admin route, which must accept it.
    pub fn put(&self, path: &str, body: &serde_json::Value) {
        self.accepted("PUT", path, body);
    }

    /// DELETE on an admin route (`/_local/requests`, `/_local/stats`) or an API one (a cluster, with
    /// its `?reason=`), which must accept it.
    pub fn delete(&self, path: &str) {
        self.accepted("DELETE", path, &serde_json::Value::Null);
    }

    fn accepted(&self, method: &str, path: &str, body: &serde_json::Value) {
        let (code, answer) = self.send(method, path, body);
        assert!((200..300).contains(&code), "{method} {path} failed with {code}: {answer}");
    }
}

impl LocalServer {
    /// Every cluster of workspace `alice`, newest first.
    pub fn clusters(&self) -> Vec<serde_json::Value> {
        self.get("/api/v2/clusters/account/alice/?limit=1000")
            .1
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// The clusters not stopped or failed.
    pub fn active_clusters(&self) -> Vec<serde_json::Value> {
        self.clusters()
            .into_iter()
            .filter(|c| !matches!(c["current_state"]["state"].as_str(), Some("stopped" | "error")))
            .collect()
    }

    /// The active clusters named `name`.
    pub fn running_named(&self, name: &str) -> Vec<serde_json::Value> {
        self.active_clusters().into_iter().filter(|c| c["name"] == name).collect()
    }
}

impl Drop for LocalServer {
    /// SIGTERM first, so that a server running real clusters removes its processes and namespaces;
    /// SIGKILL if it has not ended within ten seconds.
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.child.id().to_string()).status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether the servers of this run answer only what Coiled's client reads (`--minimal-echo`, the second
/// pass of scripts/test.sh): values the client never reads cannot be checked against them.
pub fn minimal_echo() -> bool {
    std::env::var_os("COILED_LOCAL_MINIMAL_ECHO").is_some()
}

/// What the test server reports beyond what Coiled's client reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Echo {
    /// Everything it holds.
    Full,
    /// Nothing (`--minimal-echo`).
    Terse,
    /// Any of it, absent or null, answer by answer (`--vary`).
    Varied,
}

/// What this run's test servers report beyond what the client reads.
pub fn echo() -> Echo {
    match (minimal_echo(), std::env::var_os("COILED_LOCAL_VARY").is_some()) {
        (true, _) => Echo::Terse,
        (false, true) => Echo::Varied,
        (false, false) => Echo::Full,
    }
}

/// `body` with what Coiled's client always sends and a test leaves out: the software environment
/// every test server has (`dask`) and the client's AWS default VM types.
pub fn client_body(body: &serde_json::Value) -> serde_json::Value {
    let mut body = body.clone();
    if let Some(o) = body.as_object_mut() {
        o.entry("env_name").or_insert("dask".into());
        o.entry("worker_instance_types").or_insert(serde_json::json!(["m6i.xlarge", "m5.xlarge"]));
        o.entry("scheduler_instance_types")
            .or_insert(serde_json::json!(["m6i.xlarge", "m5.xlarge"]));
    }
    body
}

/// Creates a cluster with a raw API call, with [`client_body`]'s defaults.
pub async fn create_cluster_raw(
    c: &terraform_provider_coiled::api::Client,
    body: &serde_json::Value,
) -> Result<terraform_provider_coiled::api::CreatedCluster, terraform_provider_coiled::api::ApiError>
{
    use terraform_provider_coiled::api::{Call, Op};
    let op = Op::new(std::time::Duration::from_secs(30), Default::default());
    let body = client_body(body);
    let text = c
        .request(
            &op,
            reqwest::Method::POST,
            "/api/v2/clusters/account/alice/",
            &[],
            Some(&body),
            Call::Create,
        )
        .await?;
    Ok(serde_json::from_str(&text).expect("create answer"))
}
