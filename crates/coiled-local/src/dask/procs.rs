//! Starting and watching Dask processes. Every process is started, contained ([`super::contain`]), by
//! one long-lived thread, so that its parent-death signal (which follows the thread that forked it)
//! fires only when `coiled-local` ends.

use std::io::{BufRead, BufReader};
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
    /// Whether it ended by closing itself after its idle timeout (Dask's scheduler `idle_timeout`).
    pub idle: bool,
}

/// What Dask's scheduler logs when it closes itself after its idle timeout (`Scheduler.check_idle`).
const IDLE_CLOSE: &str = "Scheduler closing after being idle";

/// A process to start.
pub struct Spec {
    /// Its cluster.
    pub cluster: i64,
    /// Which process.
    pub who: Who,
    /// How it is contained, and what it runs.
    pub plan: super::contain::Plan,
    /// Once it has ended: why, when the kernel killed it for its memory.
    pub out_of_memory: Box<dyn Fn() -> Option<String> + Send>,
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
        self.tx
            .send((spec, events, reply))
            .map_err(|_| "the spawner thread is gone".to_string())?;
        answer.recv().map_err(|_| "the spawner thread is gone".to_string())?
    }
}

fn start(spec: Spec, events: UnboundedSender<Event>) -> Result<i32, String> {
    let mut child = Command::new("/proc/self/exe")
        .args(spec.plan.args())
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("starting {:?}: {e}", spec.who))?;
    let pid = child.id() as i32;
    let stderr = child.stderr.take();
    let (cluster, who, out_of_memory) = (spec.cluster, spec.who, spec.out_of_memory);
    std::thread::Builder::new()
        .name(format!("dask-{pid}"))
        .spawn(move || {
            let marker = match who {
                Who::Scheduler => "Scheduler at:",
                Who::Worker(_) => "Registered to:",
            };
            let (mut last, mut last_error, mut ended): (
                Option<String>,
                Option<String>,
                Option<String>,
            ) = (None, None, None);
            let mut idle = false;
            if let Some(err) = stderr {
                for line in BufReader::new(err).lines().map_while(Result::ok) {
                    tracing::debug!(cluster, pid, "{line}");
                    idle |= line.contains(IDLE_CLOSE);
                    if line.contains(marker) {
                        let _ = events.send(Event {
                            cluster,
                            who: who.clone(),
                            ended: None,
                            idle: false,
                        });
                    }
                    match line.strip_prefix(super::contain::ENDED) {
                        Some(how) => ended = Some(how.trim().to_string()),
                        None if line.contains("Error") || line.contains("error") => {
                            last_error = Some(line)
                        }
                        None => last = Some(line),
                    }
                }
            }
            let status = child
                .wait()
                .map(|s| super::contain::describe(&s))
                .unwrap_or_else(|e| e.to_string());
            let reason =
                why_it_ended(ended.unwrap_or(status), last_error.or(last), out_of_memory());
            let _ = events.send(Event { cluster, who, ended: Some(reason), idle });
        })
        .map_err(|e| e.to_string())?;
    Ok(pid)
}

/// Why a process ended, in the words its state's reason gives: how it ended (an exit status, or the
/// signal that killed it), then the cause when it is known (the kernel's memory limit, or the last
/// error it wrote).
pub fn why_it_ended(
    how: String,
    last_error: Option<String>,
    out_of_memory: Option<String>,
) -> String {
    match (out_of_memory, last_error) {
        (Some(oom), _) => format!("the process was {how}: {oom}"),
        (None, _) if how.starts_with("killed") => format!("the process was {how}"),
        (None, Some(line)) => format!("the process ended ({how}): {}", line.trim()),
        (None, None) => format!("the process ended ({how})"),
    }
}

#[cfg(test)]
mod tests {
    use super::why_it_ended;

    #[test]
    fn a_reason_says_how_and_why_a_process_ended() {
        let oom = Some(
            "the kernel killed it for using more memory than --worker-memory 1GiB".to_string(),
        );
        assert_eq!(
            why_it_ended("killed by signal 9 (SIGKILL)".into(), Some("INFO - ok".into()), oom),
            "the process was killed by signal 9 (SIGKILL): the kernel killed it for using more \
                memory than --worker-memory 1GiB"
        );
        assert_eq!(
            why_it_ended(
                "killed by signal 15 (SIGTERM)".into(),
                Some("INFO - unrelated".into()),
                None
            ),
            "the process was killed by signal 15 (SIGTERM)"
        );
        assert_eq!(
            why_it_ended("exit status 1".into(), Some("ValueError: x".into()), None),
            "the process ended (exit status 1): ValueError: x"
        );
    }
}
