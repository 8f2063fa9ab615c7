//! `coiled-local`: runs a Coiled control plane on this machine.
//!
//! `coiled-local serve --listen 127.0.0.1:0 --data-dir DIR [--token TOKEN] [--workspace NAME]
//! [--provision-delay 3s] [--stop-delay 1s] [--default-ingress PORTS@CIDR] [--faults JSON]
//! [--software-env NAME]... [--dask-config-overrides FILE] [--minimal-echo] [--time-scale F]
//! [--latency 150ms]`
//!
//! The first line on stdout is the base URL. SIGINT / SIGTERM stop it cleanly.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use coiled_local::{Config, State, app, faults, lifecycle, store};

struct Args {
    dask: Option<coiled_local::dask::DaskConfig>,
    listen: String,
    data_dir: PathBuf,
    token: Option<String>,
    workspace: String,
    /// More workspaces the user is a member of (`--member-of`), none of them the default.
    member_of: Vec<String>,
    /// No membership is marked the default (`--no-default-workspace`).
    no_default: bool,
    config: Config,
    faults: faults::FaultConfig,
    tls: Option<(PathBuf, PathBuf)>,
    /// `--vary SEED`.
    vary: Option<u64>,
}

const USAGE: &str = "usage: coiled-local serve --data-dir DIR [--listen 127.0.0.1:0] [--token-file FILE | --token TOKEN] [--workspace NAME]
                    [--provision-delay 3s] [--stop-delay 1s] [--default-ingress 443,8786,8787@0.0.0.0/0]
                    [--scheduler-port 443] [--time-scale 1] [--faults '{\"rate_503\":0.2,\"seed\":1}']
                    [--software-env NAME]... [--dask-config-overrides FILE.json] [--minimal-echo] [--vary SEED]
                    [--member-of WORKSPACE]... [--no-default-workspace] [--max-clusters 10000] [--latency 150ms]
                    [--clusters simulated|dask --python PY [--lab PREFIX] [--max-workers 8] [--worker-memory 1GiB]
                                        [--cluster-uids 1900000000]]
                    [--tls-cert CERT.pem --tls-key KEY.pem]";

fn parse_args() -> anyhow::Result<Args> {
    use lexopt::Arg::{Long, Short, Value};
    use lexopt::ValueExt;
    let mut parser = lexopt::Parser::from_env();
    let mut args = Args {
        listen: "127.0.0.1:0".into(),
        data_dir: PathBuf::new(),
        token: None,
        workspace: "local".into(),
        member_of: Vec::new(),
        no_default: false,
        config: Config::default(),
        faults: Default::default(),
        tls: None,
        dask: None,
        vary: None,
    };
    let mut d = DaskFlags::default();
    let (mut tls_cert, mut tls_key): (Option<PathBuf>, Option<PathBuf>) = (None, None);
    let mut saw_serve = false;
    while let Some(arg) = parser.next()? {
        match arg {
            Value(v) if v == "serve" && !saw_serve => saw_serve = true,
            Long("listen") => args.listen = parser.value()?.string()?,
            Long("data-dir") => args.data_dir = parser.value()?.into(),
            Long("token") => args.token = Some(parser.value()?.string()?),
            // A token on the command line is readable by every local user (`/proc/PID/cmdline`).
            Long("token-file") => {
                let path = PathBuf::from(parser.value()?);
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("--token-file {}", path.display()))?;
                let token = text.trim();
                if token.is_empty() {
                    bail!("--token-file {} holds no token", path.display());
                }
                args.token = Some(token.to_string());
            }
            Long("workspace") => args.workspace = parser.value()?.string()?,
            Long("provision-delay") => {
                args.config.provision_delay = humantime::parse_duration(&parser.value()?.string()?)
                    .context("--provision-delay")?
            }
            Long("stop-delay") => {
                args.config.stop_delay =
                    humantime::parse_duration(&parser.value()?.string()?).context("--stop-delay")?
            }
            Long("latency") => {
                args.config.latency =
                    humantime::parse_duration(&parser.value()?.string()?).context("--latency")?
            }
            Long("scheduler-port") => args.config.scheduler_port = parser.value()?.parse()?,
            Long("time-scale") => args.config.time_scale = time_scale(&parser.value()?.string()?)?,
            Long("default-ingress") => {
                args.config.default_ingress = default_ingress(&parser.value()?.string()?)?
            }
            Long("software-env") => args.config.software_envs.push(parser.value()?.string()?),
            Long("dask-config-overrides") => {
                args.config.dask_config_overrides = overrides(&PathBuf::from(parser.value()?))?
            }
            Long("minimal-echo") => args.config.minimal_echo = true,
            Long("vary") => {
                args.vary =
                    Some(parser.value()?.parse().context("--vary takes a seed, a whole number")?)
            }
            Long("max-clusters") => args.config.max_clusters = parser.value()?.parse()?,
            Long("member-of") => args.member_of.push(parser.value()?.string()?),
            Long("no-default-workspace") => args.no_default = true,
            Long("clusters") => d.clusters = parser.value()?.string()?,
            Long("python") => d.python = Some(parser.value()?.into()),
            Long("lab") => d.lab = Some(parser.value()?.string()?),
            Long("max-workers") => d.max_workers = parser.value()?.parse()?,
            Long("worker-memory") => d.worker_memory = parser.value()?.string()?,
            Long("cluster-uids") => {
                d.uid_base = parser
                    .value()?
                    .parse()
                    .context("--cluster-uids takes the first user id of the range")?
            }
            Long("tls-cert") => tls_cert = Some(parser.value()?.into()),
            Long("tls-key") => tls_key = Some(parser.value()?.into()),
            Long("faults") => {
                args.faults =
                    serde_json::from_str(&parser.value()?.string()?).context("--faults")?
            }
            Long("help") | Short('h') => {
                eprintln!("{USAGE}");
                std::process::exit(0);
            }
            _ => return Err(arg.unexpected().into()),
        }
    }
    args.tls = match (tls_cert, tls_key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => bail!("--tls-cert and --tls-key go together"),
    };
    args.dask = dask_config(d)?;
    if !saw_serve {
        bail!("{USAGE}");
    }
    if args.data_dir.as_os_str().is_empty() {
        bail!("--data-dir is required\n{USAGE}");
    }
    Ok(args)
}

fn default_ingress(text: &str) -> anyhow::Result<Vec<coiled_firewall::Rule>> {
    let mut rules = Vec::new();
    for part in text.split(';').filter(|p| !p.is_empty()) {
        let (ports, cidr) = part
            .split_once('@')
            .context("--default-ingress takes PORTS@CIDR, e.g. 8786,8787@0.0.0.0/0")?;
        let ports: Vec<i64> = ports
            .split(',')
            .map(|p| p.trim().parse())
            .collect::<Result<_, _>>()
            .context("--default-ingress ports")?;
        rules.push(
            coiled_firewall::rule_from_wire(&ports, cidr)
                .context("--default-ingress rule is invalid")?,
        );
    }
    Ok(rules)
}

/// `--time-scale`: a positive factor.
fn time_scale(text: &str) -> anyhow::Result<f64> {
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() && f > 0.0 => Ok(f),
        _ => bail!(
            "--time-scale takes a positive number, e.g. 60 for a minute of idle time a second"
        ),
    }
}

fn overrides(path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    if !value.is_object() {
        bail!("{}: the overrides must be a JSON object", path.display());
    }
    Ok(value)
}

/// The flags of `--clusters dask`, as given.
struct DaskFlags {
    clusters: String,
    python: Option<PathBuf>,
    lab: Option<String>,
    max_workers: i64,
    worker_memory: String,
    uid_base: u32,
}

impl Default for DaskFlags {
    fn default() -> Self {
        DaskFlags {
            clusters: "simulated".into(),
            python: None,
            lab: None,
            max_workers: 8,
            worker_memory: "1GiB".into(),
            uid_base: coiled_local::dask::DEFAULT_UID_BASE,
        }
    }
}

fn dask_config(d: DaskFlags) -> anyhow::Result<Option<coiled_local::dask::DaskConfig>> {
    match d.clusters.as_str() {
        "simulated" if d.python.is_some() || d.lab.is_some() => {
            bail!("--python and --lab go with --clusters dask")
        }
        "simulated" => Ok(None),
        "dask" => {
            let python = d.python.context(
                "--clusters dask needs --python PY, a Python environment with distributed",
            )?;
            // Cluster processes start in their own directories.
            let python = std::path::absolute(&python)
                .with_context(|| format!("--python {}", python.display()))?;
            let hosts = d.lab.is_some();
            let prefix = d.lab.unwrap_or_else(|| "coiled-local".into());
            if prefix.is_empty()
                || prefix.len() > 20
                || !prefix.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            {
                bail!("--lab {prefix:?}: use up to 20 letters, digits and '-'");
            }
            let memory_bytes = coiled_local::dask::cgroups::parse_memory(&d.worker_memory)
                .map_err(|e| anyhow::anyhow!("--worker-memory {e}"))?;
            Ok(Some(coiled_local::dask::DaskConfig {
                python,
                prefix,
                lab_hosts: hosts,
                max_workers: d.max_workers,
                worker_memory: d.worker_memory,
                memory_bytes,
                uid_base: d.uid_base,
            }))
        }
        other => bail!("--clusters {other:?}: simulated or dask"),
    }
}

/// The API token: given, kept in `DATA_DIR/token` (0600) from an earlier run, or made now and kept
/// there. Whether it was made now.
fn load_token(
    given: Option<&String>,
    data_dir: &std::path::Path,
) -> anyhow::Result<(String, bool)> {
    let token_path = data_dir.join("token");
    let (token, generated) = match given {
        Some(t) => (t.clone(), false),
        None => match std::fs::read_to_string(&token_path) {
            Ok(t) if !t.trim().is_empty() => (t.trim().to_string(), false),
            _ => (
                format!("local-{:016x}{:016x}", rand::random::<u64>(), rand::random::<u64>()),
                true,
            ),
        },
    };
    if generated {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        // Never through a link planted in its place.
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(&token_path)
            .with_context(|| format!("writing {}", token_path.display()))?;
        file.write_all(token.as_bytes())
            .with_context(|| format!("writing {}", token_path.display()))?;
    }
    Ok((token, generated))
}

#[allow(clippy::print_stdout)]
async fn run(args: Args) -> anyhow::Result<()> {
    let claim = match &args.dask {
        Some(config) => Some(coiled_local::dask::preflight(config).map_err(anyhow::Error::msg)?),
        None => None,
    };
    let store = store::Store::open(&args.data_dir)
        .with_context(|| format!("opening {}", args.data_dir.display()))?;
    let token_path = args.data_dir.join("token");
    let (token, generated) = load_token(args.token.as_ref(), &args.data_dir)?;
    store.seed(&args.workspace, &args.workspace, &token)?;
    for ws in &args.member_of {
        store.add_membership(&args.workspace, ws, true)?;
    }
    // Coiled need not mark a default membership; its client then falls back to the only one, else
    // the one named as the user.
    store.set_default_membership(
        &args.workspace,
        (!args.no_default).then_some(args.workspace.as_str()),
    )?;
    for name in &args.config.software_envs {
        if !coiled_local::handlers::clusters::valid_name(name) {
            bail!("--software-env {name:?}: use letters, digits, '-' and '_'");
        }
        store.ensure_software_env(&args.workspace, name)?;
    }
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    let (dask, events) = match (&args.dask, claim) {
        (Some(config), Some(claim)) => {
            let (runtime, events) = coiled_local::dask::Runtime::start(config.clone(), claim)
                .map_err(anyhow::Error::msg)?;
            let ended = store.fail_active_clusters(
                "coiled-local restarted: the cluster's processes ended with the previous run",
            )?;
            if !ended.is_empty() {
                eprintln!(
                    "coiled-local: {} cluster(s) of the previous run ended with it and are now in \
                        error",
                    ended.len()
                );
            }
            (Some(Arc::new(runtime)), Some(events))
        }
        _ => (None, None),
    };
    let state = Arc::new(State {
        store,
        config: args.config,
        faults: faults::Faults::new(args.faults),
        wake: Default::default(),
        stats: Default::default(),
        requests: Default::default(),
        dask: dask.clone(),
        vary: args.vary.map(coiled_local::vary::Vary::new),
    });
    if let (Some(runtime), Some(events)) = (&dask, events) {
        start_lab(runtime, &state, events, addr)?;
    }
    let scheme = if args.tls.is_some() { "https" } else { "http" };
    // Signals are taken over before the URL announces the server: a SIGTERM right after it must still
    // end it cleanly (removing real clusters' processes and namespaces).
    let signals = Signals::new()?;
    println!("{scheme}://{addr}");
    eprintln!(
        "coiled-local: serving workspace {:?} at {scheme}://{addr} (data in {})",
        args.workspace,
        args.data_dir.display()
    );
    if !state.config.latency.is_zero() {
        eprintln!(
            "coiled-local: every API request waits {} before it is handled (--latency)",
            humantime::format_duration(state.config.latency)
        );
    }
    if generated {
        eprintln!(
            "coiled-local: created an API token, saved in {}; use it with:",
            token_path.display()
        );
        eprintln!(
            "  export COILED_SERVER={scheme}://{addr} COILED_TOKEN=$(cat {})",
            token_path.display()
        );
    }
    tokio::spawn(lifecycle::run(state.clone()));
    let served = serve(args.tls.as_ref(), listener, state, signals).await;
    if let Some(runtime) = dask {
        runtime.shutdown();
    }
    served
}

/// Supervises the real clusters' processes, and makes the API reachable from the lab's networks (as
/// Coiled's is from anywhere): a listener in the router namespace relays to this one.
fn start_lab(
    runtime: &coiled_local::dask::Runtime,
    state: &coiled_local::Shared,
    events: tokio::sync::mpsc::UnboundedReceiver<coiled_local::dask::Event>,
    addr: std::net::SocketAddr,
) -> anyhow::Result<()> {
    tokio::spawn(coiled_local::dask::hooks::supervise(state.clone(), events));
    let inside = coiled_local::dask::netlab::listen_in(
        &runtime.lab.router(),
        ([0, 0, 0, 0], addr.port()).into(),
    )
    .map_err(anyhow::Error::msg)?;
    tokio::spawn(coiled_local::dask::relay(tokio::net::TcpListener::from_std(inside)?, addr));
    let port = addr.port();
    eprintln!(
        "coiled-local: real Dask clusters in namespaces {}-*; from the lab, the API is \
            http://10.1.0.1:{port} (vpn), http://10.32.0.1:{port} (office), \
            http://192.0.2.1:{port} (internet)",
        runtime.lab.prefix
    );
    Ok(())
}

/// SIGINT and SIGTERM, listened for from the moment this is made.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }
}

/// Serves the API until SIGINT or SIGTERM.
async fn serve(
    tls: Option<&(PathBuf, PathBuf)>,
    listener: tokio::net::TcpListener,
    state: coiled_local::Shared,
    mut signals: Signals,
) -> anyhow::Result<()> {
    let shutdown = async move {
        tokio::select! {
            _ = signals.int.recv() => {}
            _ = signals.term.recv() => {}
        }
        eprintln!("coiled-local: shutting down");
    };
    match tls {
        Some((cert, key)) => {
            let cert =
                std::fs::read(cert).with_context(|| format!("reading {}", cert.display()))?;
            let key = std::fs::read(key).with_context(|| format!("reading {}", key.display()))?;
            let tls = coiled_local::tls::TlsListener::new(listener, &cert, &key)
                .map_err(anyhow::Error::msg)?;
            coiled_local::serve::serve(tls, app::app(state), shutdown).await;
        }
        None => {
            use axum::serve::ListenerExt;
            // Without TCP_NODELAY small answers can wait ~40 ms for Nagle's algorithm.
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            coiled_local::serve::serve(listener, app::app(state), shutdown).await
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    // A real cluster's process is started through this binary, which contains it first.
    coiled_local::dask::contain::run_if_asked();
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("coiled-local: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_logging();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coiled-local: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, at the level `COILED_LOCAL_LOG` names (`error` … `trace`, default `info`).
fn init_logging() {
    let level = std::env::var("COILED_LOCAL_LOG")
        .ok()
        .and_then(|l| l.parse::<tracing::Level>().ok())
        .unwrap_or(tracing::Level::INFO);
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(level)
        .with_ansi(false)
        .init();
}
