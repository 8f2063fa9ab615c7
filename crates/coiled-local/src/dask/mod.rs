//! `--clusters dask`: every cluster is a real Dask cluster. Its scheduler and workers are `dask`
//! processes from the `--python` environment inside the cluster's network namespace ([`netlab`]),
//! with TLS from a certificate made for the cluster and returned where the real API returns it. The
//! cluster's effective ingress is enforced there by nftables. States follow the processes: a
//! scheduler is `started` once it listens, a worker once it has registered with its scheduler, and
//! either is `error` with a reason when its process dies.
//!
//! Cluster code is untrusted. Each cluster runs as a user id of its own, from a block this server
//! locks ([`files::lock_uid_block`]); each process in mount and PID namespaces of its own with a
//! private `/tmp` ([`contain`]), in control groups that cap its memory and are killed whole when the
//! cluster stops ([`cgroups`]). What root writes for a cluster (its certificate and key) is in a fresh
//! run directory, root's, readable by that cluster's group alone ([`files`]). A cluster's network
//! reaches nothing but its own processes: its firewall drops every connection it opens elsewhere.

pub mod cgroups;
pub mod contain;
pub mod files;
pub mod hooks;
pub mod netlab;
pub mod procs;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use netlab::{Instance, Lab};
pub use procs::Event;

/// Settings of the dask mode.
#[derive(Clone, Debug)]
pub struct DaskConfig {
    /// The Python environment with `distributed` (and `bokeh` for dashboards).
    pub python: PathBuf,
    /// Prefix of every namespace.
    pub prefix: String,
    /// Whether to make the VPN, office and internet hosts (`--lab`).
    pub lab_hosts: bool,
    /// Most workers one cluster may have.
    pub max_workers: i64,
    /// Memory limit of each worker, as Dask reads it.
    pub worker_memory: String,
    /// The same, in bytes: what each process's control group allows.
    pub memory_bytes: u64,
    /// Where the blocks of cluster user ids start (`--cluster-uids`).
    pub uid_base: u32,
}

/// The default start of cluster user ids: far above the ids distributions give users and services,
/// in a range systemd leaves unused.
pub const DEFAULT_UID_BASE: u32 = 1_900_000_000;

/// What a server holds while it runs real clusters: its prefix, its user ids, its control groups.
#[derive(Debug)]
pub struct Claim {
    _prefix: files::Lock,
    /// The block's lock, whose file keeps the next user id to give, across runs.
    uids: files::Lock,
    /// The first user id of this server's block.
    pub first_uid: u32,
    /// The control groups.
    pub cgroups: cgroups::Cgroups,
}

/// Checks that the machine can run real clusters and claims what this server needs; the error names
/// what is missing or in use, and how to get it.
pub fn preflight(config: &DaskConfig) -> Result<Claim, String> {
    if !nix::unistd::geteuid().is_root() {
        return Err(
            "--clusters dask needs root, to create network namespaces and nftables rules; run it \
                as root, or use --clusters simulated"
                .into(),
        );
    }
    if netlab::run(&["ip", "-V"], None).is_err() {
        return Err("--clusters dask needs `ip` from iproute2: apt-get install iproute2".into());
    }
    if netlab::run(&["nft", "--version"], None).is_err() {
        return Err("--clusters dask needs `nft`: apt-get install nftables".into());
    }
    let prefix = files::lock_prefix(&config.prefix)?;
    let probe = format!("{}-probe", config.prefix);
    let _ = netlab::run(&["ip", "netns", "del", &probe], None);
    netlab::run(&["ip", "netns", "add", &probe], None).map_err(|e| {
        format!(
            "--clusters dask needs network namespaces, which this machine \
            refuses ({e}); it needs a kernel with CONFIG_NET_NS and the CAP_SYS_ADMIN capability"
        )
    })?;
    let _ = netlab::run(&["ip", "netns", "del", &probe], None);
    let cgroups = cgroups::Cgroups::detect(&config.prefix)?;
    let (uids, first_uid) = files::lock_uid_block(config.uid_base)?;
    check_python(&config.python, first_uid)?;
    Ok(Claim { _prefix: prefix, uids, first_uid, cgroups })
}

/// Checks that a cluster user can run `python` and import `distributed`; the error names the cause.
fn check_python(python: &Path, uid: u32) -> Result<(), String> {
    use std::os::unix::process::CommandExt;
    let py = python.display();
    let out = std::process::Command::new(python)
        .args(["-c", "import distributed"])
        .env_clear()
        .env("HOME", "/")
        .current_dir("/")
        .uid(uid)
        .gid(uid)
        .output();
    match out {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => {
            let err = String::from_utf8_lossy(&out.stderr);
            let last = err.lines().last().unwrap_or_default().trim();
            Err(format!(
                "--python {py}: a cluster user (uid {uid}) runs it, but `import distributed` \
                    fails: {last}; install it with {py} -m pip install distributed bokeh, and \
                    make the environment world-readable (chmod -R a+rX)"
            ))
        }
        Err(e) => {
            let cause = unreachable_part(python).unwrap_or_else(|| e.to_string());
            Err(format!(
                "--python {py}: a cluster user (uid {uid}) cannot run it: {cause}; use a Python \
                    every user can run, e.g. python3 -m venv DIR from /usr/bin/python3 \
                    (scripts/install-test-tools.sh makes .tools/dask-venv)"
            ))
        }
    }
}

/// The first directory on the way to `path` (or to what its links point at) that other users may not
/// enter, or the file itself when they may not execute it.
fn unreachable_part(path: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let mut ways = vec![path.to_path_buf()];
    if let Ok(real) = std::fs::canonicalize(path) {
        ways.push(real);
    }
    for way in ways {
        let mut dirs: Vec<&Path> = way.ancestors().skip(1).collect();
        dirs.reverse();
        for dir in dirs {
            let mode = std::fs::metadata(dir).ok()?.permissions().mode();
            if mode & 0o001 == 0 {
                return Some(format!(
                    "{} (mode {:o}) does not let other users in",
                    dir.display(),
                    mode & 0o777
                ));
            }
        }
        if std::fs::metadata(&way).is_ok_and(|m| m.permissions().mode() & 0o001 == 0) {
            return Some(format!("{} is not executable by other users", way.display()));
        }
    }
    None
}

/// One cluster's processes.
#[derive(Default)]
struct Running {
    instance: Option<Instance>,
    uid: u32,
    scheduler: Option<i32>,
    /// Each worker's pid and control group.
    workers: HashMap<String, (i32, String)>,
    started: u32,
    stopping: bool,
}

/// The real clusters.
pub struct Runtime {
    /// Settings.
    pub config: DaskConfig,
    /// The network.
    pub lab: Lab,
    claim: Claim,
    /// This run's directory.
    dir: PathBuf,
    running: Mutex<HashMap<i64, Running>>,
    uids: Mutex<BTreeMap<u32, i64>>,
    certs: Mutex<HashMap<i64, (String, String)>>,
    events: tokio::sync::mpsc::UnboundedSender<Event>,
    spawner: procs::Spawner,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Runtime {
    /// Builds the lab, after removing what an earlier run with this prefix left; events about
    /// processes arrive on the returned receiver.
    pub fn start(
        config: DaskConfig,
        claim: Claim,
    ) -> Result<(Runtime, tokio::sync::mpsc::UnboundedReceiver<Event>), String> {
        claim.cgroups.start()?;
        let lab = Lab::start(&config.prefix, config.lab_hosts)?;
        let dir = files::fresh_run_dir(&config.prefix)?;
        let (events, rx) = tokio::sync::mpsc::unbounded_channel();
        let runtime = Runtime {
            config,
            lab,
            claim,
            dir,
            running: Mutex::default(),
            uids: Mutex::default(),
            certs: Mutex::default(),
            events,
            spawner: procs::Spawner::new(),
        };
        Ok((runtime, rx))
    }

    /// The cluster's TLS certificate and key (PEM), made when it starts.
    pub fn tls(&self, id: i64) -> Option<(String, String)> {
        lock(&self.certs).get(&id).cloned()
    }

    /// The user id of cluster `id`, given when it starts and free again when it stops. Ids are given
    /// in turn through the block, across runs (the next one is kept with the block's lock), so that a
    /// later cluster gets an id no recent one had.
    fn take_uid(&self, id: i64) -> Result<u32, String> {
        let mut uids = lock(&self.uids);
        let block = files::UID_BLOCK;
        let start = self.claim.uids.counter() % block;
        let offset = (0..block)
            .map(|k| (start + k) % block)
            .find(|o| !uids.contains_key(&(self.claim.first_uid + o)))
            .ok_or("every user id of this server's block is in use")?;
        self.claim.uids.set_counter((offset + 1) % block)?;
        let uid = self.claim.first_uid + offset;
        uids.insert(uid, id);
        Ok(uid)
    }

    /// The scheduler stops itself once idle for `idle_seconds`; its dashboard is HTTPS with the
    /// cluster's certificate when `dashboard_https`.
    pub fn start_cluster(
        &self,
        id: i64,
        rules: &[coiled_firewall::Rule],
        port: i64,
        idle_seconds: Option<f64>,
        dashboard_https: bool,
    ) -> Result<Instance, String> {
        let uid = self.take_uid(id)?;
        lock(&self.running).insert(id, Running { uid, ..Default::default() });
        let instance = self.lab.add_cluster(id)?;
        self.lab.set_firewall(&instance.ns, &netlab::security_group(rules))?;
        let home = files::make_dir(&self.dir, &id.to_string(), uid, 0o750)?;
        let (cert, key) = cluster_certificate(&instance)?;
        files::write_new(&home, "cert.pem", &cert, uid, 0o640)?;
        files::write_new(&home, "key.pem", &key, uid, 0o640)?;
        lock(&self.certs).insert(id, (cert, key));
        lock(&self.running).entry(id).or_default().instance = Some(instance.clone());
        let env = if dashboard_https {
            vec![
                (
                    "DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__CERT".to_string(),
                    "cert.pem".to_string(),
                ),
                (
                    "DASK_DISTRIBUTED__SCHEDULER__DASHBOARD__TLS__KEY".to_string(),
                    "key.pem".to_string(),
                ),
            ]
        } else {
            Vec::new()
        };
        let (pid, _) =
            self.spawn(id, procs::Who::Scheduler, &self.scheduler_args(port, idle_seconds), env)?;
        lock(&self.running).entry(id).or_default().scheduler = Some(pid);
        Ok(instance)
    }

    /// Starts the named workers of cluster `id`.
    pub fn add_workers(&self, id: i64, port: i64, names: &[String]) -> Result<(), String> {
        for name in names {
            let (pid, group) = self.spawn(
                id,
                procs::Who::Worker(name.clone()),
                &self.worker_args(port, name),
                Vec::new(),
            )?;
            lock(&self.running).entry(id).or_default().workers.insert(name.clone(), (pid, group));
        }
        Ok(())
    }

    /// Stops the named workers of cluster `id` (their exit is expected): each control group is
    /// killed whole.
    pub fn remove_workers(&self, id: i64, names: &[String]) {
        let groups: Vec<String> = {
            let mut running = lock(&self.running);
            let Some(r) = running.get_mut(&id) else { return };
            names.iter().filter_map(|n| r.workers.remove(n)).map(|(_, group)| group).collect()
        };
        for group in groups {
            if let Err(e) = self.claim.cgroups.kill_tree(&format!("c{id}/{group}")) {
                tracing::error!(cluster = id, error = %e, "stopping a worker");
            }
        }
    }

    /// Whether a process exit was asked for (the cluster stopping, or the worker removed).
    pub fn expected_exit(&self, id: i64, who: &procs::Who) -> bool {
        let running = lock(&self.running);
        match (running.get(&id), who) {
            (None, _) => true,
            (Some(r), _) if r.stopping => true,
            (Some(r), procs::Who::Worker(name)) => !r.workers.contains_key(name),
            (Some(_), procs::Who::Scheduler) => false,
        }
    }

    /// Ends every process of cluster `id` (its control groups killed whole) and removes its
    /// instance and files; what cannot be removed is reported.
    pub fn stop_cluster(&self, id: i64) {
        let uid = {
            let mut running = lock(&self.running);
            let Some(r) = running.get_mut(&id) else { return };
            r.stopping = true;
            r.uid
        };
        let mut errors = Vec::new();
        if let Err(e) = self.claim.cgroups.kill_tree(&format!("c{id}")) {
            errors.push(e);
        }
        self.lab.remove_cluster(id);
        if let Err(e) = files::remove_tree(&self.dir.join(id.to_string())) {
            errors.push(e);
        }
        for e in &errors {
            tracing::error!(cluster = id, error = %e, "cleaning up a cluster");
        }
        if errors.is_empty() {
            lock(&self.uids).remove(&uid);
        }
        lock(&self.running).remove(&id);
    }

    /// The nftables ruleset in force for cluster `id`.
    pub fn firewall(&self, id: i64) -> Result<String, String> {
        self.lab.firewall(&self.lab.cluster_ns(id))
    }

    /// Ends everything: every process, namespace and file of the lab.
    pub fn shutdown(&self) {
        let ids: Vec<i64> = lock(&self.running).keys().copied().collect();
        for id in ids {
            self.stop_cluster(id);
        }
        self.lab.shutdown();
        for result in [self.claim.cgroups.kill_tree(""), files::remove_tree(&self.dir)] {
            if let Err(e) = result {
                tracing::error!(error = %e, "cleaning up the lab");
            }
        }
    }

    /// The certificate and key, named relative to the cluster's directory, where its processes start.
    fn tls_args(&self) -> Vec<String> {
        ["--tls-ca-file", "cert.pem", "--tls-cert", "cert.pem", "--tls-key", "key.pem"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    fn scheduler_args(&self, port: i64, idle_seconds: Option<f64>) -> Vec<String> {
        let mut args: Vec<String> = [
            "-m",
            "distributed.cli.dask_scheduler",
            "--protocol",
            "tls",
            "--dashboard-address",
            ":8787",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend(["--port".into(), port.to_string()]);
        if let Some(seconds) = idle_seconds {
            args.extend(["--idle-timeout".into(), format!("{seconds:.3}s")]);
        }
        args
    }

    fn worker_args(&self, port: i64, name: &str) -> Vec<String> {
        let mut args: Vec<String> = [
            "-m",
            "distributed.cli.dask_worker",
            "--nthreads",
            "1",
            "--host",
            "127.0.0.1",
            "--no-dashboard",
            "--no-nanny",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.extend([format!("tls://127.0.0.1:{port}"), "--name".into(), name.to_string()]);
        args.extend(["--memory-limit".into(), self.config.worker_memory.clone()]);
        args
    }

    /// Starts one contained process of cluster `id`; returns its pid and its control group's name.
    fn spawn(
        &self,
        id: i64,
        who: procs::Who,
        args: &[String],
        env: Vec<(String, String)>,
    ) -> Result<(i32, String), String> {
        let home = self.dir.join(id.to_string());
        let (uid, group) = {
            let mut running = lock(&self.running);
            let r = running.entry(id).or_default();
            r.started += 1;
            let group = match &who {
                procs::Who::Scheduler => "scheduler".to_string(),
                procs::Who::Worker(_) => format!("worker-{}", r.started),
            };
            (r.uid, group)
        };
        let cluster = format!("c{id}");
        let procs_files = self.claim.cgroups.make(&cluster, &group, self.config.memory_bytes)?;
        let mut command: Vec<std::ffi::OsString> =
            vec![self.config.python.clone().into_os_string()];
        command.extend(args.iter().chain(self.tls_args().iter()).map(std::ffi::OsString::from));
        let plan = contain::Plan {
            parent: std::process::id(),
            netns: self.lab.cluster_ns(id),
            cgroups: procs_files,
            uid,
            dir: home,
            env,
            command,
        };
        let (cgroups, memory) = (self.claim.cgroups.clone(), self.config.worker_memory.clone());
        let leaf = group.clone();
        let out_of_memory = Box::new(move || {
            (cgroups.oom_kills(&cluster, &leaf) > 0).then(|| {
                format!("the kernel killed it for using more memory than --worker-memory {memory}")
            })
        });
        let pid = self
            .spawner
            .spawn(procs::Spec { cluster: id, who, plan, out_of_memory }, self.events.clone())?;
        Ok((pid, group))
    }
}

/// Relays connections accepted in the lab to the API's own listener.
pub async fn relay(inside: tokio::net::TcpListener, api: std::net::SocketAddr) {
    while let Ok((mut from, _)) = inside.accept().await {
        tokio::spawn(async move {
            if let Ok(mut to) = tokio::net::TcpStream::connect(api).await {
                let _ = tokio::io::copy_bidirectional(&mut from, &mut to).await;
            }
        });
    }
}

/// A certificate for the cluster, its own CA, naming both addresses.
fn cluster_certificate(instance: &Instance) -> Result<(String, String), String> {
    let key = rcgen::KeyPair::generate().map_err(|e| e.to_string())?;
    let names =
        vec!["dask".to_string(), instance.private_ip.to_string(), instance.public_ip.to_string()];
    let mut params = rcgen::CertificateParams::new(names).map_err(|e| e.to_string())?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok((cert.pem(), key.serialize_pem()))
}
