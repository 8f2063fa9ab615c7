//! How a cluster's process is contained. `coiled-local` starts each Dask process through its own
//! binary in two steps, so that no code runs between `fork` and `exec` in the server itself:
//!
//! 1. `coiled-local __contain …` (outside): dies with the server (parent-death signal), moves itself
//!    into the process's control groups, enters the cluster's network namespace, makes new mount,
//!    PID, IPC, UTS and cgroup namespaces, and starts step 2, which becomes PID 1 there. It passes
//!    SIGTERM, SIGINT and SIGHUP on, and ends as step 2 ends.
//! 2. `coiled-local __init …` (PID 1 of the new namespaces): makes every mount read-only, mounts a
//!    private `/tmp`, `/var/tmp`, `/dev/shm` and `/run/lock` (the only places the process may write),
//!    its own `/proc` and `/sys`, forbids gaining privileges, and starts the Dask process as the
//!    cluster's own user with no supplementary groups. It reaps orphans, passes signals on,
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
        let mut out: Vec<OsString> =
            vec!["__contain".into(), "--parent".into(), self.parent.to_string().into()];
        out.extend(["--netns".into(), self.netns.clone().into()]);
        for c in &self.cgroups {
            out.extend(["--cgroup".into(), c.clone().into_os_string()]);
        }
        for (k, v) in &self.env {
            out.extend(["--env".into(), format!("{k}={v}").into()]);
        }
        out.extend([
            "--uid".into(),
            self.uid.to_string().into(),
            "--dir".into(),
            self.dir.clone().into_os_string(),
            "--".into(),
        ]);
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
                Some("--parent") => {
                    plan.parent = value()?.to_string_lossy().parse().map_err(|_| "--parent")?
                }
                Some("--netns") => plan.netns = value()?.to_string_lossy().into_owned(),
                Some("--cgroup") => plan.cgroups.push(value()?.into()),
                Some("--uid") => {
                    plan.uid = value()?.to_string_lossy().parse().map_err(|_| "--uid")?
                }
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
        std::fs::write(procs, std::process::id().to_string())
            .map_err(fail(&procs.display().to_string()))?;
    }
    let netns =
        std::fs::File::open(format!("/run/netns/{}", plan.netns)).map_err(fail(&plan.netns))?;
    nix::sched::setns(&netns, CloneFlags::CLONE_NEWNET)
        .map_err(fail("entering the network namespace"))?;
    drop(netns);
    // System V IPC and POSIX message queues, the host name and the view of control groups are the
    // process's own too: nothing it makes there is seen by, or outlives, anyone else.
    let own = CloneFlags::CLONE_NEWNS
        | CloneFlags::CLONE_NEWPID
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWCGROUP;
    nix::sched::unshare(own).map_err(fail("new namespaces"))?;
    watched().thread_block().map_err(fail("blocking signals"))?;
    let mut args = plan.args();
    args[0] = "__init".into();
    // Standard library children start with an empty signal mask.
    let child = Command::new("/proc/self/exe")
        .args(&args)
        .stdin(Stdio::null())
        .spawn()
        .map_err(fail("starting PID 1"))?;
    let pid = Pid::from_raw(child.id() as i32);
    let status = wait_passing_signals(pid)?;
    end_as(status)
}

/// `path`, and each path its symbolic links lead through: every link among its ancestors followed, in
/// turn, lexically (at most 40 paths, as the kernel follows at most 40 links).
fn link_chain(path: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = vec![path.to_path_buf()];
    let mut i = 0;
    while i < out.len() && out.len() < 40 {
        let current = out[i].clone();
        for link in current.ancestors() {
            let Ok(target) = std::fs::read_link(link) else { continue };
            let rest = current.strip_prefix(link).unwrap_or(std::path::Path::new(""));
            let resolved = lexical(
                &link.parent().unwrap_or(std::path::Path::new("/")).join(target).join(rest),
            );
            if !out.contains(&resolved) {
                out.push(resolved);
            }
        }
        i += 1;
    }
    out
}

/// `path` with `.` and `..` taken out, without looking at the file system.
fn lexical(path: &std::path::Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Step 2: PID 1.
fn init(plan: &Plan) -> Result<std::convert::Infallible, String> {
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(fail("parent-death signal"))?;
    // The directory is entered before `/tmp` is hidden (it may be under it); the process names its
    // files relative to it.
    std::env::set_current_dir(&plan.dir).map_err(fail(&plan.dir.display().to_string()))?;
    let none: Option<&str> = None;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(fail("making mounts private"))?;
    read_only_everywhere()?;
    // A `--python` under a directory made private below (a checkout in /tmp, say) stays visible: its
    // top directory there is held open now and bound back, read-only, once the private one is mounted;
    // so is every such directory its symbolic links lead through (a venv linked from elsewhere in /tmp).
    let program = std::path::Path::new(plan.command.first().ok_or("no command")?);
    let mut kept: Vec<(std::path::PathBuf, std::fs::File)> = Vec::new();
    for path in link_chain(program) {
        for dir in WRITABLE {
            let Some(first) = path.strip_prefix(dir).ok().and_then(|rest| rest.components().next())
            else {
                continue;
            };
            let top = std::path::Path::new(dir).join(first);
            if kept.iter().all(|(held, _)| *held != top)
                && let Ok(file) = std::fs::File::open(&top)
            {
                kept.push((top, file));
            }
        }
    }
    let private = MsFlags::MS_NOSUID | MsFlags::MS_NODEV;
    for dir in WRITABLE {
        let real = std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir());
        if real {
            mount(Some("tmpfs"), dir, Some("tmpfs"), private, Some("mode=1777"))
                .map_err(fail(dir))?;
        }
    }
    for (top, held) in &kept {
        use std::os::fd::AsRawFd;
        std::fs::create_dir_all(top).map_err(fail(&top.display().to_string()))?;
        let source = format!("/proc/self/fd/{}", held.as_raw_fd());
        mount(Some(source.as_str()), top, none, MsFlags::MS_BIND | MsFlags::MS_REC, none)
            .map_err(fail(&top.display().to_string()))?;
        let read_only = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | private;
        mount(none, top, none, read_only, none).map_err(fail(&top.display().to_string()))?;
    }
    drop(kept);
    if std::path::Path::new("/dev/mqueue").is_dir() {
        mount(Some("mqueue"), "/dev/mqueue", Some("mqueue"), private | MsFlags::MS_NOEXEC, none)
            .map_err(fail("/dev/mqueue"))?;
    }
    mount(Some("proc"), "/proc", Some("proc"), private | MsFlags::MS_NOEXEC, none)
        .map_err(fail("/proc"))?;
    // The network namespace's own devices, read-only, as `ip netns exec` shows them.
    let _ = nix::mount::umount2("/sys", nix::mount::MntFlags::MNT_DETACH);
    mount(
        Some("sysfs"),
        "/sys",
        Some("sysfs"),
        private | MsFlags::MS_NOEXEC | MsFlags::MS_RDONLY,
        none,
    )
    .map_err(fail("/sys"))?;
    nix::sys::prctl::set_no_new_privs().map_err(fail("no new privileges"))?;
    watched().thread_block().map_err(fail("blocking signals"))?;
    let (program, rest) = plan.command.split_first().ok_or("no command")?;
    let child = Command::new(program)
        .args(rest)
        .env_clear()
        .envs([
            ("HOME", "/tmp"),
            ("TMPDIR", "/tmp"),
            ("PATH", "/usr/bin:/bin"),
            ("PYTHONUNBUFFERED", "1"),
        ])
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

/// Where a cluster's process may write: each a private, empty `tmpfs` (whose pages count against its
/// memory limit), gone with it. Everything else is read-only.
const WRITABLE: [&str; 4] = ["/tmp", "/var/tmp", "/dev/shm", "/run/lock"];

/// Filesystems whose mounts need not be made read-only (nothing there is a file a process could
/// fill or leave behind), where a remount may be refused.
const PSEUDO: [&str; 12] = [
    "proc",
    "sysfs",
    "cgroup",
    "cgroup2",
    "nsfs",
    "autofs",
    "binfmt_misc",
    "bpf",
    "tracefs",
    "debugfs",
    "securityfs",
    "pstore",
];

/// Makes every mount of this private mount namespace read-only, keeping its other flags: a cluster
/// writes nothing on the host's filesystems (world-writable directories included).
fn read_only_everywhere() -> Result<(), String> {
    let all = mountinfo().map_err(fail("/proc/self/mountinfo"))?;
    for Mount { point, options, fstype, .. } in all {
        let options: Vec<&str> = options.split(',').collect();
        if options.contains(&"ro") {
            continue;
        }
        let mut flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        for (name, flag) in [
            ("nosuid", MsFlags::MS_NOSUID),
            ("nodev", MsFlags::MS_NODEV),
            ("noexec", MsFlags::MS_NOEXEC),
            ("noatime", MsFlags::MS_NOATIME),
            ("nodiratime", MsFlags::MS_NODIRATIME),
            ("relatime", MsFlags::MS_RELATIME),
        ] {
            if options.contains(&name) {
                flags |= flag;
            }
        }
        let none: Option<&str> = None;
        match mount(none, point.as_str(), none, flags, none) {
            Ok(()) => {}
            Err(_) if PSEUDO.contains(&fstype.as_str()) => {}
            Err(e) => return Err(format!("making {point} ({fstype}) read-only: {e}")),
        }
    }
    Ok(())
}

/// One line of `/proc/self/mountinfo`.
pub(crate) struct Mount {
    /// Where it is mounted, escapes undone.
    pub(crate) point: String,
    /// The mount's own options (`rw,nosuid,…`).
    pub(crate) options: String,
    /// The filesystem type.
    pub(crate) fstype: String,
    /// The filesystem's options (for cgroup v1, its controllers).
    pub(crate) super_options: String,
}

/// This process's mounts, as `/proc/self/mountinfo` lists them.
pub(crate) fn mountinfo() -> std::io::Result<Vec<Mount>> {
    let text = std::fs::read_to_string("/proc/self/mountinfo")?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split_whitespace().collect();
            let mut right = right.split_whitespace();
            let fstype = right.next()?.to_string();
            let super_options = right.nth(1).unwrap_or_default().to_string();
            Some(Mount {
                point: unescape(fields.get(4)?),
                options: fields.get(5)?.to_string(),
                fstype,
                super_options,
            })
        })
        .collect())
}

/// A mount point as `/proc/self/mountinfo` writes it, with `\ooo` escapes undone.
fn unescape(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| bytes[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Passes signals to `child` and reaps every process that ends, until `child` does.
fn wait_passing_signals(child: Pid) -> Result<std::process::ExitStatus, String> {
    let set = watched();
    loop {
        loop {
            match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::Exited(pid, code)) if pid == child => {
                    return Ok(std::process::ExitStatus::from_raw((code & 0xff) << 8));
                }
                Ok(WaitStatus::Signaled(pid, signal, _)) if pid == child => {
                    return Ok(std::process::ExitStatus::from_raw(signal as i32));
                }
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
    fn mount_points_are_read_with_their_escapes_undone() {
        assert_eq!(unescape("/mnt/with\\040space"), "/mnt/with space");
        assert_eq!(unescape("/plain"), "/plain");
        assert_eq!(unescape("/odd\\"), "/odd\\");
    }

    #[test]
    fn a_link_chain_follows_every_link_among_the_ancestors() {
        let root = tempfile::tempdir().unwrap();
        let (a, b, real) = (root.path().join("a"), root.path().join("b"), root.path().join("real"));
        for d in [&a, &b, &real.join("bin")] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::os::unix::fs::symlink(&real, b.join("venv")).unwrap();
        std::os::unix::fs::symlink("../b/venv", a.join("venv")).unwrap();
        let chain = link_chain(&a.join("venv/bin/python"));
        assert_eq!(
            chain,
            [a.join("venv/bin/python"), b.join("venv/bin/python"), real.join("bin/python")]
        );
        assert_eq!(
            lexical(std::path::Path::new("/tmp/a/../b/./c")),
            std::path::PathBuf::from("/tmp/b/c")
        );
    }

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
        assert!(
            Plan::parse(&["--uid".into(), "0".into(), "--".into(), "x".into()]).is_err(),
            "never root"
        );
    }
}
