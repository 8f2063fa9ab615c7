//! How a cluster's process is contained. `coiled-local` starts each Dask process through its own
//! binary in two steps, so that no code runs between `fork` and `exec` in the server itself:
//!
//! 1. `coiled-local __contain …` (outside): dies with the server (parent-death signal), moves itself
//!    into the process's control groups, enters the cluster's network namespace, makes a new mount
//!    and PID namespace, and starts step 2, which becomes PID 1 there. It passes SIGTERM, SIGINT and
//!    SIGHUP on, and ends as step 2 ends.
//! 2. `coiled-local __init …` (PID 1 of the new namespace): mounts a private `/tmp`, `/var/tmp` and
//!    `/dev/shm`, its own `/proc` and `/sys`, forbids gaining privileges, and starts the Dask process
//!    as the cluster's own user with no supplementary groups. It reaps orphans, passes signals on,
//!    and when the Dask process ends it prints how on stderr and exits, at which the kernel kills
//!    everything else in the namespace (a `setsid` escape included).

use std::ffi::OsString;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use nix::mount::{MsFlags, mount};
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

/// The first word of the line step 2 prints when the Dask process ends.
pub const ENDED: &str = "coiled-local-ended:";

/// What to run, and where: the arguments of both steps.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Pid of the server, which must still be the parent when step 1 starts.
    pub parent: u32,
    /// The cluster's network namespace.
    pub netns: String,
    /// The `cgroup.procs` files to join.
    pub cgroups: Vec<PathBuf>,
    /// The cluster's user and group id.
    pub uid: u32,
    /// Working directory (the cluster's read-only directory, where its certificate and key are).
    pub dir: PathBuf,
    /// Environment variables beyond the fixed ones (`HOME`, `TMPDIR`, `PATH`, `PYTHONUNBUFFERED`).
    pub env: Vec<(String, String)>,
    /// The program and its arguments.
    pub command: Vec<OsString>,
}

impl Plan {
    /// The arguments of step 1 (after the program name).
    pub fn args(&self) -> Vec<OsString> {
        let mut out: Vec<OsString> = vec!["__contain".into(), "--parent".into(), self.parent.to_string().into()];
        out.extend(["--netns".into(), self.netns.clone().into()]);
        for c in &self.cgroups {
            out.extend(["--cgroup".into(), c.clone().into_os_string()]);
        }
        for (k, v) in &self.env {
            out.extend(["--env".into(), format!("{k}={v}").into()]);
        }
        out.extend(["--uid".into(), self.uid.to_string().into(), "--dir".into(), self.dir.clone().into_os_string(), "--".into()]);
        out.extend(self.command.iter().cloned());
        out
    }

    /// Reads the arguments after `__contain` or `__init`.
    pub fn parse(args: &[OsString]) -> Result<Plan, String> {
        let mut plan = Plan {
            parent: 0,
            netns: String::new(),
            cgroups: Vec::new(),
            uid: 0,
            dir: PathBuf::new(),
            env: Vec::new(),
            command: Vec::new(),
        };
        let mut it = args.iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().cloned().ok_or(format!("{arg:?} needs a value"));
            match arg.to_str() {
                Some("--parent") => plan.parent = value()?.to_string_lossy().parse().map_err(|_| "--parent")?,
                Some("--netns") => plan.netns = value()?.to_string_lossy().into_owned(),
                Some("--cgroup") => plan.cgroups.push(value()?.into()),
                Some("--uid") => plan.uid = value()?.to_string_lossy().parse().map_err(|_| "--uid")?,
                Some("--dir") => plan.dir = value()?.into(),
                Some("--env") => {
                    let pair = value()?.to_string_lossy().into_owned();
                    let (k, v) = pair.split_once('=').ok_or("--env takes KEY=VALUE")?;
                    plan.env.push((k.to_string(), v.to_string()));
                }
                Some("--") => {
                    plan.command = it.cloned().collect();
                    break;
                }
                _ => return Err(format!("unexpected {arg:?}")),
            }
        }
        if plan.uid == 0 || plan.command.is_empty() {
            return Err("a cluster process needs --uid (not root) and a command".into());
        }
        Ok(plan)
    }
}

/// Runs step 1 or step 2 when this process is one (`argv[1]` is `__contain` or `__init`); never
/// returns then.
pub fn run_if_asked() {
    let args: Vec<OsString> = std::env::args_os().collect();
    let step = args.get(1).and_then(|a| a.to_str()).unwrap_or_default();
    let result = match step {
        "__contain" => Plan::parse(&args[2..]).and_then(|p| outside(&p)),
        "__init" => Plan::parse(&args[2..]).and_then(|p| init(&p)),
        _ => return,
    };
    let Err(e) = result;
    eprintln!("{ENDED} could not start: {e}");
    std::process::exit(125);
}

fn fail<E: std::fmt::Display>(what: &str) -> impl Fn(E) -> String + '_ {
    move |e| format!("{what}: {e}")
}

/// Signals passed on to the child; with SIGCHLD, what the step waits for.
fn watched() -> SigSet {
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP, Signal::SIGCHLD] {
        set.add(s);
    }
    set
}

/// Step 1.
fn outside(plan: &Plan) -> Result<std::convert::Infallible, String> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(fail("parent-death signal"))?;
    if nix::unistd::getppid().as_raw() as u32 != plan.parent {
        return Err("the server ended before its process started".into());
    }
    for procs in &plan.cgroups {
        std::fs::write(procs, std::process::id().to_string()).map_err(fail(&procs.display().to_string()))?;
    }
    let netns = std::fs::File::open(format!("/run/netns/{}", plan.netns)).map_err(fail(&plan.netns))?;
    nix::sched::setns(&netns, CloneFlags::CLONE_NEWNET).map_err(fail("entering the network namespace"))?;
    drop(netns);
    nix::sched::unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID).map_err(fail("new mount and PID namespaces"))?;
    watched().thread_block().map_err(fail("blocking signals"))?;
    let mut args = plan.args();
    args[0] = "__init".into();
    // Standard library children start with an empty signal mask.
    let child = Command::new("/proc/self/exe").args(&args).stdin(Stdio::null()).spawn().map_err(fail("starting PID 1"))?;
    let pid = Pid::from_raw(child.id() as i32);
    let status = wait_passing_signals(pid)?;
    end_as(status)
}

/// Step 2: PID 1.
fn init(plan: &Plan) -> Result<std::convert::Infallible, String> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(fail("parent-death signal"))?;
    // The directory is entered before `/tmp` is hidden (it may be under it); the process names its
    // files relative to it.
    std::env::set_current_dir(&plan.dir).map_err(fail(&plan.dir.display().to_string()))?;
    let none: Option<&str> = None;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none).map_err(fail("making mounts private"))?;
    let private = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    for dir in ["/tmp", "/var/tmp", "/dev/shm"] {
        if std::path::Path::new(dir).is_dir() {
            mount(Some("tmpfs"), dir, Some("tmpfs"), private, Some("mode=1777")).map_err(fail(dir))?;
        }
    }
    mount(Some("proc"), "/proc", Some("proc"), private | MsFlags::MS_NOEXEC, none).map_err(fail("/proc"))?;
    // The network namespace's own devices, read-only, as `ip netns exec` shows them.
    let _ = nix::mount::umount2("/sys", nix::mount::MntFlags::MNT_DETACH);
    mount(Some("sysfs"), "/sys", Some("sysfs"), private | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY, none).map_err(fail("/sys"))?;
    nix::sys::prctl::set_no_new_privs().map_err(fail("no new privileges"))?;
    watched().thread_block().map_err(fail("blocking signals"))?;
    let (program, rest) = plan.command.split_first().ok_or("no command")?;
    let child = Command::new(program)
        .args(rest)
        .env_clear()
        .envs([("HOME", "/tmp"), ("TMPDIR", "/tmp"), ("PATH", "/usr/bin:/bin"), ("PYTHONUNBUFFERED", "1")])
        .envs(plan.env.iter().map(|(k, v)| (k, v)))
        .uid(plan.uid)
        .gid(plan.uid)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("{}: {e}", program.to_string_lossy()))?;
    let status = wait_passing_signals(Pid::from_raw(child.id() as i32))?;
    eprintln!("{ENDED} {}", describe(&status));
    end_as(status)
}

/// Passes signals to `child` and reaps every process that ends, until `child` does.
fn wait_passing_signals(child: Pid) -> Result<std::process::ExitStatus, String> {
    let set = watched();
    loop {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => return Ok(std::process::ExitStatus::from_raw((code & 0xff) << 8)),
                Ok(WaitStatus::Signaled(pid, signal, _)) if pid == child => return Ok(std::process::ExitStatus::from_raw(signal as i32)),
                Ok(WaitStatus::StillAlive) | Err(_) => break,
                Ok(_) => continue,
            }
        }
        match set.wait().map_err(fail("waiting for signals"))? {
            Signal::SIGCHLD => continue,
            other => {
                let _ = nix::sys::signal::kill(child, other);
            }
        }
    }
}

/// How a process ended, in words.
pub fn describe(status: &std::process::ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(n)) => match Signal::try_from(n) {
            Ok(s) => format!("killed by signal {n} ({})", s.as_str()),
            Err(_) => format!("killed by signal {n}"),
        },
        _ => status.to_string(),
    }
}

/// Ends this process as `status` says: the same exit code, or the same signal.
fn end_as(status: std::process::ExitStatus) -> Result<std::convert::Infallible, String> {
    if let Some(n) = status.signal().and_then(|n| Signal::try_from(n).ok()) {
        let mut one = SigSet::empty();
        one.add(n);
        let _ = one.thread_unblock();
        let _ = nix::sys::signal::kill(Pid::this(), n);
    }
    std::process::exit(status.code().unwrap_or(128 + status.signal().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_reads_back_as_written() {
        let plan = Plan {
            parent: 42,
            netns: "lab-c100".into(),
            cgroups: vec!["/sys/fs/cgroup/x/cgroup.procs".into()],
            uid: 1_900_000_100,
            dir: "/tmp/run/100".into(),
            env: vec![("A".into(), "b=c".into())],
            command: vec!["/venv/bin/python".into(), "-m".into(), "--uid".into()],
        };
        let args = plan.args();
        assert_eq!(args[0], "__contain");
        assert_eq!(Plan::parse(&args[1..]).unwrap(), plan);
        assert!(Plan::parse(&["--uid".into(), "0".into(), "--".into(), "x".into()]).is_err(), "never root");
    }
}
