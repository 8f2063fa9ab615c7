//! `--clusters dask`: every cluster is a real Dask cluster. Its scheduler and workers are `dask`
//! processes from the `--python` environment, run as an unprivileged user (`nobody`) inside the
//! cluster's network namespace ([`netlab`]), with TLS from a certificate made for the cluster and
//! returned where the real API returns it. The cluster's effective ingress is enforced there by
//! nftables. States follow the processes: a scheduler is `started` once it listens, a worker once it
//! has registered with its scheduler, and either is `error` with a reason when its process dies.
//!
//! Processes get a parent-death signal and their own process group, so nothing outlives
//! `coiled-local`, even killed; namespaces a killed run left are removed at the next start.

pub mod hooks;
pub mod netlab;
pub mod procs;

use std::collections::HashMap;
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
}

/// The user Dask processes run as.
const NOBODY: u32 = 65534;

/// Checks that the machine can run real clusters; the error names what is missing and how to get it.
pub fn preflight(config: &DaskConfig) -> Result<(), String> {
    if !nix::unistd::geteuid().is_root() {
        return Err(
            "--clusters dask needs root, to create network namespaces and nftables rules; run it as root, or use --clusters simulated"
                .into(),
        );
    }
    if netlab::run(&["ip", "-V"], None).is_err() {
        return Err("--clusters dask needs `ip` from iproute2: apt-get install iproute2".into());
    }
    if netlab::run(&["nft", "--version"], None).is_err() {
        return Err("--clusters dask needs `nft`: apt-get install nftables".into());
    }
    let probe = format!("{}-probe", config.prefix);
    let _ = netlab::run(&["ip", "netns", "del", &probe], None);
    netlab::run(&["ip", "netns", "add", &probe], None)
        .map_err(|e| format!("--clusters dask needs network namespaces, which this machine refuses ({e}); it needs a kernel with CONFIG_NET_NS and the CAP_SYS_ADMIN capability"))?;
    let _ = netlab::run(&["ip", "netns", "del", &probe], None);
    let py = config.python.to_string_lossy().into_owned();
    let uid = format!("--reuid={NOBODY}");
    let gid = format!("--regid={NOBODY}");
    netlab::run(&["setpriv", &uid, &gid, "--clear-groups", &py, "-c", "import distributed"], None).map_err(|_| {
        format!("--python {py}: the user nobody cannot import `distributed` with it; make a world-readable environment: python3 -m venv DIR && DIR/bin/pip install distributed bokeh (scripts/install-test-tools.sh makes .tools/dask-venv)")
    })?;
    Ok(())
}

/// One cluster's processes.
#[derive(Default)]
struct Running {
    instance: Option<Instance>,
    scheduler: Option<i32>,
    workers: HashMap<String, i32>,
    stopping: bool,
}

/// The real clusters.
pub struct Runtime {
    /// Settings.
    pub config: DaskConfig,
    /// The network.
    pub lab: Lab,
    dir: PathBuf,
    running: Mutex<HashMap<i64, Running>>,
    certs: Mutex<HashMap<i64, (String, String)>>,
    events: tokio::sync::mpsc::UnboundedSender<Event>,
    spawner: procs::Spawner,
}

impl Runtime {
    /// Builds the lab; events about processes arrive on the returned receiver.
    pub fn start(config: DaskConfig) -> Result<(Runtime, tokio::sync::mpsc::UnboundedReceiver<Event>), String> {
        let lab = Lab::start(&config.prefix, config.lab_hosts)?;
        let dir = std::env::temp_dir().join(format!("{}-clusters", config.prefix));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        set_mode(&dir, 0o711)?;
        let (events, rx) = tokio::sync::mpsc::unbounded_channel();
        let runtime =
            Runtime { config, lab, dir, running: Mutex::default(), certs: Mutex::default(), events, spawner: procs::Spawner::new() };
        Ok((runtime, rx))
    }

    /// The cluster's TLS certificate and key (PEM), made when it starts.
    pub fn tls(&self, id: i64) -> Option<(String, String)> {
        self.certs.lock().unwrap_or_else(|p| p.into_inner()).get(&id).cloned()
    }

    /// Starts cluster `id`: its instance, its firewall, its scheduler and the named workers.
    pub fn start_cluster(&self, id: i64, rules: &[coiled_firewall::Rule], port: i64, workers: &[String]) -> Result<Instance, String> {
        let instance = self.lab.add_cluster(id)?;
        self.lab.set_firewall(&instance.ns, &netlab::security_group(rules))?;
        let home = self.dir.join(id.to_string());
        std::fs::create_dir_all(&home).map_err(|e| e.to_string())?;
        let (cert, key) = cluster_certificate(&instance)?;
        std::fs::write(home.join("cert.pem"), &cert).map_err(|e| e.to_string())?;
        std::fs::write(home.join("key.pem"), &key).map_err(|e| e.to_string())?;
        for f in ["", "cert.pem", "key.pem"] {
            chown_nobody(&home.join(f))?;
        }
        set_mode(&home.join("key.pem"), 0o600)?;
        self.certs.lock().unwrap_or_else(|p| p.into_inner()).insert(id, (cert, key));
        let pid = self.spawn(id, &instance.ns, procs::Who::Scheduler, &self.scheduler_args(port))?;
        {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            let r = running.entry(id).or_default();
            r.instance = Some(instance.clone());
            r.scheduler = Some(pid);
        }
        self.add_workers(id, port, workers)?;
        Ok(instance)
    }

    /// Starts the named workers of cluster `id`.
    pub fn add_workers(&self, id: i64, port: i64, names: &[String]) -> Result<(), String> {
        let ns = self.lab.cluster_ns(id);
        for name in names {
            let pid = self.spawn(id, &ns, procs::Who::Worker(name.clone()), &self.worker_args(port, name))?;
            self.running.lock().unwrap_or_else(|p| p.into_inner()).entry(id).or_default().workers.insert(name.clone(), pid);
        }
        Ok(())
    }

    /// Stops the named workers of cluster `id` (their exit is expected).
    pub fn remove_workers(&self, id: i64, names: &[String]) {
        let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = running.get_mut(&id) {
            for name in names {
                if let Some(pid) = r.workers.remove(name) {
                    procs::kill_group(pid, nix::sys::signal::Signal::SIGTERM);
                }
            }
        }
    }

    /// Whether a process exit was asked for (the cluster stopping, or the worker removed).
    pub fn expected_exit(&self, id: i64, who: &procs::Who) -> bool {
        let running = self.running.lock().unwrap_or_else(|p| p.into_inner());
        match (running.get(&id), who) {
            (None, _) => true,
            (Some(r), _) if r.stopping => true,
            (Some(r), procs::Who::Worker(name)) => !r.workers.contains_key(name),
            (Some(_), procs::Who::Scheduler) => false,
        }
    }

    /// Ends every process of cluster `id` and removes its instance.
    pub fn stop_cluster(&self, id: i64) {
        let pids: Vec<i32> = {
            let mut running = self.running.lock().unwrap_or_else(|p| p.into_inner());
            let Some(r) = running.get_mut(&id) else { return };
            r.stopping = true;
            r.scheduler.iter().chain(r.workers.values()).copied().collect()
        };
        for pid in pids {
            procs::kill_group(pid, nix::sys::signal::Signal::SIGKILL);
        }
        self.lab.remove_cluster(id);
        let _ = std::fs::remove_dir_all(self.dir.join(id.to_string()));
    }

    /// The nftables ruleset in force for cluster `id`.
    pub fn firewall(&self, id: i64) -> Result<String, String> {
        self.lab.firewall(&self.lab.cluster_ns(id))
    }

    /// Ends everything: every process, namespace and file of the lab.
    pub fn shutdown(&self) {
        let ids: Vec<i64> = self.running.lock().unwrap_or_else(|p| p.into_inner()).keys().copied().collect();
        for id in ids {
            self.stop_cluster(id);
        }
        self.lab.shutdown();
        let _ = std::fs::remove_dir_all(&self.dir);
    }

    fn tls_args(&self, home: &Path) -> Vec<String> {
        let (cert, key) = (home.join("cert.pem").display().to_string(), home.join("key.pem").display().to_string());
        vec!["--tls-ca-file".into(), cert.clone(), "--tls-cert".into(), cert, "--tls-key".into(), key]
    }

    fn scheduler_args(&self, port: i64) -> Vec<String> {
        let mut args: Vec<String> = ["-m", "distributed.cli.dask_scheduler", "--protocol", "tls", "--dashboard-address", ":8787"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        args.extend(["--port".into(), port.to_string()]);
        args
    }

    fn worker_args(&self, port: i64, name: &str) -> Vec<String> {
        let mut args: Vec<String> =
            ["-m", "distributed.cli.dask_worker", "--nthreads", "1", "--host", "127.0.0.1", "--no-dashboard", "--no-nanny"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        args.extend([format!("tls://127.0.0.1:{port}"), "--name".into(), name.to_string()]);
        args.extend(["--memory-limit".into(), self.config.worker_memory.clone()]);
        args
    }

    fn spawn(&self, id: i64, ns: &str, who: procs::Who, args: &[String]) -> Result<i32, String> {
        let home = self.dir.join(id.to_string());
        let mut all = args.to_vec();
        all.extend(self.tls_args(&home));
        self.spawner.spawn(
            procs::Spec { cluster: id, who, ns: ns.to_string(), python: self.config.python.clone(), home, args: all },
            self.events.clone(),
        )
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
    let names = vec!["dask".to_string(), instance.private_ip.to_string(), instance.public_ip.to_string()];
    let mut params = rcgen::CertificateParams::new(names).map_err(|e| e.to_string())?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    Ok((cert.pem(), key.serialize_pem()))
}

fn chown_nobody(path: &Path) -> Result<(), String> {
    std::os::unix::fs::chown(path, Some(NOBODY), Some(NOBODY)).map_err(|e| format!("chown {}: {e}", path.display()))
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| format!("{}: {e}", path.display()))
}
