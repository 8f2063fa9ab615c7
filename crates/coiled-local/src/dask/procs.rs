//! Starting and watching Dask processes. Every process is started by one long-lived thread, so that
//! its parent-death signal (which follows the thread that forked it) fires only when `coiled-local`
//! ends; each gets its own process group, so that stopping it stops anything it started.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;

use tokio::sync::mpsc::UnboundedSender;

/// Which process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Who {
    /// The scheduler.
    Scheduler,
    /// The worker of this name.
    Worker(String),
}

/// What happened to a process.
#[derive(Clone, Debug)]
pub struct Event {
    /// Its cluster.
    pub cluster: i64,
    /// Which process.
    pub who: Who,
    /// `None` when it came up (the scheduler listens, the worker registered), else why it ended.
    pub ended: Option<String>,
}

/// A process to start.
pub struct Spec {
    /// Its cluster.
    pub cluster: i64,
    /// Which process.
    pub who: Who,
    /// The namespace it runs in.
    pub ns: String,
    /// The Python to run.
    pub python: PathBuf,
    /// Its home and working directory.
    pub home: PathBuf,
    /// Arguments after the Python.
    pub args: Vec<String>,
}

type Request = (Spec, UnboundedSender<Event>, mpsc::Sender<Result<i32, String>>);

/// The thread that starts processes.
pub struct Spawner {
    tx: mpsc::Sender<Request>,
}

impl Default for Spawner {
    fn default() -> Self {
        Spawner::new()
    }
}

impl Spawner {
    /// Starts the thread; it lives as long as the process.
    pub fn new() -> Spawner {
        let (tx, rx) = mpsc::channel::<Request>();
        std::thread::Builder::new()
            .name("dask-spawner".into())
            .spawn(move || {
                for (spec, events, reply) in rx {
                    let _ = reply.send(start(spec, events));
                }
            })
            .expect("spawner thread");
        Spawner { tx }
    }

    /// Starts a process; its events go to `events`. Returns its pid (also its process group).
    pub fn spawn(&self, spec: Spec, events: UnboundedSender<Event>) -> Result<i32, String> {
        let (reply, answer) = mpsc::channel();
        self.tx.send((spec, events, reply)).map_err(|_| "the spawner thread is gone".to_string())?;
        answer.recv().map_err(|_| "the spawner thread is gone".to_string())?
    }
}

fn start(spec: Spec, events: UnboundedSender<Event>) -> Result<i32, String> {
    let home = spec.home.display().to_string();
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &spec.ns, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--pdeathsig", "KILL", "--"])
        .args(["env", "-i", &format!("HOME={home}"), "PATH=/usr/bin:/bin", "PYTHONUNBUFFERED=1"])
        .arg(&spec.python)
        .args(&spec.args)
        .current_dir(&spec.home)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("starting {:?}: {e}", spec.who))?;
    let pid = child.id() as i32;
    let stderr = child.stderr.take();
    let (cluster, who) = (spec.cluster, spec.who);
    std::thread::Builder::new()
        .name(format!("dask-{pid}"))
        .spawn(move || {
            let marker = match who {
                Who::Scheduler => "Scheduler at:",
                Who::Worker(_) => "Registered to:",
            };
            let mut last: Vec<String> = Vec::new();
            if let Some(err) = stderr {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    tracing::debug!(cluster, pid, "{line}");
                    if line.contains(marker) {
                        let _ = events.send(Event { cluster, who: who.clone(), ended: None });
                    }
                    last.push(line);
                    if last.len() > 3 {
                        last.remove(0);
                    }
                }
            }
            let status = child.wait().map(|s| s.to_string()).unwrap_or_else(|e| e.to_string());
            let tail = last.iter().rev().find(|l| l.contains("Error") || l.contains("error")).or(last.last()).cloned().unwrap_or_default();
            let _ = events.send(Event { cluster, who, ended: Some(format!("the process ended ({status}): {}", tail.trim())) });
        })
        .map_err(|e| e.to_string())?;
    Ok(pid)
}

/// Signals a process group.
pub fn kill_group(pid: i32, signal: nix::sys::signal::Signal) {
    let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), signal);
}
