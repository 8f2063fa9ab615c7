//! Control groups for real clusters: one group per cluster, one below it per process. A process's
//! group caps its memory (`--worker-memory`, swap included) and its tasks; a cluster's group is killed
//! whole when the cluster stops, so nothing its code started outlives it.
//!
//! cgroup v2 where the host has it (`memory.max`, `pids.max`, `cgroup.kill`); otherwise cgroup v1
//! with the `memory`, `pids` and `freezer` controllers, where a kill freezes the group, signals every
//! task in it and thaws it, so that no task can fork away meanwhile.
//!
//! Every group lives under `coiled-local-{prefix}` beside this server's own group; a tree a killed run
//! left behind is killed and removed at the next start with the same prefix.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Which cgroup version, and where the server's groups live in each hierarchy it uses.
#[derive(Debug, Clone)]
pub enum Cgroups {
    /// The unified hierarchy: one base.
    V2 {
        /// `…/coiled-local-{prefix}`.
        base: PathBuf,
    },
    /// Separate hierarchies.
    V1 {
        /// In the memory hierarchy.
        memory: PathBuf,
        /// In the pids hierarchy.
        pids: PathBuf,
        /// In the freezer hierarchy.
        freezer: PathBuf,
    },
}

/// Most tasks (processes and threads) one Dask process and what it starts may have.
const TASKS_PER_PROCESS: u32 = 1024;

/// Where each cgroup hierarchy is mounted: (filesystem type, options, mount point).
fn mounts() -> Vec<(String, String, PathBuf)> {
    super::contain::mountinfo()
        .unwrap_or_default()
        .into_iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .map(|m| (m.fstype, m.super_options, PathBuf::from(m.point)))
        .collect()
}

/// This process's group in a hierarchy (`""` for v2), as `/proc/self/cgroup` names it.
fn own_path(controller: &str) -> String {
    let text = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
    text.lines()
        .find_map(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, list, path) = (parts.next()?, parts.next()?, parts.next()?);
            (list.split(',').any(|c| c == controller))
                .then(|| path.trim_start_matches('/').to_string())
        })
        .unwrap_or_default()
}

/// The base beside this server's own group at `mount`, or at the mount's root when that group is
/// not visible here (a container's view).
fn base_at(mount: &Path, own: &str, name: &str) -> PathBuf {
    let own_dir = mount.join(own);
    if !own.is_empty() && own_dir.is_dir() { own_dir.join(name) } else { mount.join(name) }
}

impl Cgroups {
    /// Finds the hierarchies; the error says what the host lacks.
    pub fn detect(prefix: &str) -> Result<Cgroups, String> {
        let name = format!("coiled-local-{prefix}");
        let all = mounts();
        let v2 = all.iter().find(|(t, _, _)| t == "cgroup2").filter(|(_, _, point)| {
            let controllers =
                std::fs::read_to_string(point.join("cgroup.controllers")).unwrap_or_default();
            ["memory", "pids"].iter().all(|c| controllers.split_whitespace().any(|have| have == *c))
        });
        if let Some((_, _, point)) = v2 {
            return Ok(Cgroups::V2 { base: base_at(point, &own_path(""), &name) });
        }
        let v1 = |controller: &str| {
            all.iter()
                .find(|(t, options, _)| {
                    t == "cgroup" && options.split(',').any(|o| o == controller)
                })
                .map(|(_, _, point)| base_at(point, &own_path(controller), &name))
        };
        match (v1("memory"), v1("pids"), v1("freezer")) {
            (Some(memory), Some(pids), Some(freezer)) => Ok(Cgroups::V1 { memory, pids, freezer }),
            _ => Err("--clusters dask needs control groups: cgroup v2 with the memory and pids \
                controllers, or cgroup v1 with memory, pids and freezer mounted"
                .into()),
        }
    }

    /// Every hierarchy's base.
    fn bases(&self) -> Vec<&Path> {
        match self {
            Cgroups::V2 { base } => vec![base],
            Cgroups::V1 { memory, pids, freezer } => vec![memory, pids, freezer],
        }
    }

    /// Makes the bases, after killing and removing whatever an earlier run with this prefix left.
    pub fn start(&self) -> Result<(), String> {
        self.kill_tree("")?;
        if let Cgroups::V2 { base } = self {
            // Controllers reach a group only when its parent hands them down.
            let parent = base.parent().ok_or("no parent group")?;
            enable_controllers(parent)?;
        }
        for base in self.bases() {
            std::fs::create_dir_all(base).map_err(|e| format!("{}: {e}", base.display()))?;
        }
        if let Cgroups::V2 { base } = self {
            enable_controllers(base)?;
        }
        Ok(())
    }

    /// Makes group `cluster/process` with its limits; returns the `cgroup.procs` files a process
    /// writes itself into.
    pub fn make(&self, cluster: &str, process: &str, memory: u64) -> Result<Vec<PathBuf>, String> {
        let mut procs = Vec::new();
        for base in self.bases() {
            let group = base.join(cluster);
            if !group.is_dir() {
                std::fs::create_dir(&group).map_err(|e| format!("{}: {e}", group.display()))?;
                if let Cgroups::V2 { .. } = self {
                    enable_controllers(&group)?;
                }
            }
            let leaf = group.join(process);
            std::fs::create_dir(&leaf).map_err(|e| format!("{}: {e}", leaf.display()))?;
            procs.push(leaf.join("cgroup.procs"));
        }
        let memory = memory.to_string();
        match self {
            Cgroups::V2 { base } => {
                let leaf = base.join(cluster).join(process);
                write(&leaf.join("memory.max"), &memory)?;
                if leaf.join("memory.swap.max").exists() {
                    write(&leaf.join("memory.swap.max"), "0")?;
                }
                write(&leaf.join("pids.max"), &TASKS_PER_PROCESS.to_string())?;
            }
            Cgroups::V1 { memory: m, pids, .. } => {
                let leaf = m.join(cluster).join(process);
                write(&leaf.join("memory.limit_in_bytes"), &memory)?;
                // With swap accounting, the limit covers memory and swap together.
                if leaf.join("memory.memsw.limit_in_bytes").exists() {
                    write(&leaf.join("memory.memsw.limit_in_bytes"), &memory)?;
                }
                write(
                    &pids.join(cluster).join(process).join("pids.max"),
                    &TASKS_PER_PROCESS.to_string(),
                )?;
            }
        }
        Ok(procs)
    }

    /// How many times the kernel killed a task of group `cluster/process` for want of memory.
    pub fn oom_kills(&self, cluster: &str, process: &str) -> u64 {
        let (file, dir) = match self {
            Cgroups::V2 { base } => ("memory.events", base.join(cluster).join(process)),
            Cgroups::V1 { memory, .. } => {
                ("memory.oom_control", memory.join(cluster).join(process))
            }
        };
        let text = std::fs::read_to_string(dir.join(file)).unwrap_or_default();
        text.lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Kills every task in group `path` (relative to the bases; `""` is everything) and removes the
    /// groups. Errors are returned, never ignored.
    pub fn kill_tree(&self, path: &str) -> Result<(), String> {
        let present: Vec<PathBuf> =
            self.bases().iter().map(|b| b.join(path)).filter(|p| p.is_dir()).collect();
        if present.is_empty() {
            return Ok(());
        }
        match self {
            Cgroups::V2 { base } => {
                let group = base.join(path);
                if group.join("cgroup.kill").exists() {
                    write(&group.join("cgroup.kill"), "1")?;
                } else {
                    kill_listed(&group)?;
                }
            }
            Cgroups::V1 { freezer, .. } => {
                let group = freezer.join(path);
                if group.is_dir() {
                    write(&group.join("freezer.state"), "FROZEN")?;
                    wait_for(&group, |g| {
                        std::fs::read_to_string(g.join("freezer.state"))
                            .is_ok_and(|s| s.trim() == "FROZEN")
                    })?;
                    let killed = kill_listed(&group);
                    write(&group.join("freezer.state"), "THAWED")?;
                    killed?;
                }
            }
        }
        for group in present {
            wait_for(&group, |g| tasks(g).is_empty())?;
            remove_groups(&group)?;
        }
        Ok(())
    }
}

/// Hands the memory and pids controllers down from `group` to its children.
fn enable_controllers(group: &Path) -> Result<(), String> {
    write(&group.join("cgroup.subtree_control"), "+memory +pids").map_err(|e| {
        format!(
            "{e}: cgroup v2 hands controllers down only from a group without processes of its \
            own; run coiled-local in a group of its own (e.g. `systemd-run --scope coiled-local \
            …`)"
        )
    })
}

fn write(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Every group in the tree at `group`, parents before children.
fn groups(group: &Path) -> Vec<PathBuf> {
    let mut all = vec![group.to_path_buf()];
    let mut i = 0;
    while i < all.len() {
        if let Ok(entries) = std::fs::read_dir(&all[i]) {
            all.extend(
                entries
                    .flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
        i += 1;
    }
    all
}

/// The processes in the tree at `group`.
fn tasks(group: &Path) -> Vec<i32> {
    groups(group)
        .iter()
        .flat_map(|g| {
            std::fs::read_to_string(g.join("cgroup.procs"))
                .unwrap_or_default()
                .lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<i32>>()
        })
        .collect()
}

/// Sends SIGKILL to every process in the tree at `group`.
fn kill_listed(group: &Path) -> Result<(), String> {
    for pid in tasks(group) {
        match nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        ) {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
            Err(e) => return Err(format!("killing process {pid} of {}: {e}", group.display())),
        }
    }
    Ok(())
}

/// Removes the groups of the tree at `group`, children first.
fn remove_groups(group: &Path) -> Result<(), String> {
    for g in groups(group).iter().rev() {
        std::fs::remove_dir(g)
            .map_err(|e| format!("removing control group {}: {e}", g.display()))?;
    }
    Ok(())
}

/// Waits up to ten seconds for `done(group)`.
fn wait_for(group: &Path, done: impl Fn(&Path) -> bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done(group) {
        if Instant::now() > deadline {
            return Err(format!(
                "control group {}: its processes did not end within 10 s",
                group.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// Bytes in a memory size as Dask writes them (`1GiB`, `512 MB`, `2e9`).
pub fn parse_memory(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.trim_end_matches(|c: char| c.is_ascii_alphabetic()).len();
    let (number, unit) = (t[..split].trim(), t[split..].trim().to_ascii_lowercase());
    let number: f64 =
        number.parse().map_err(|_| format!("{text:?} is not a memory size such as 1GiB"))?;
    let scale: f64 = match unit.as_str() {
        "" | "b" => 1.0,
        "kb" | "k" => 1e3,
        "mb" | "m" => 1e6,
        "gb" | "g" => 1e9,
        "tb" | "t" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024f64.powi(2),
        "gib" => 1024f64.powi(3),
        "tib" => 1024f64.powi(4),
        _ => return Err(format!("{text:?}: unknown unit {unit:?}")),
    };
    let bytes = number * scale;
    if !(64.0 * 1024.0 * 1024.0..1e15).contains(&bytes) {
        return Err(format!("{text:?}: a worker needs at least 64MiB"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use std::os::unix::process::ExitStatusExt;

    use super::*;

    /// cgroup v2's kill, on the unified hierarchy a host with cgroup v1 also mounts (it has no
    /// controllers there, so only the kill and the removal are tried). Needs root; skipped without
    /// such a hierarchy.
    #[test]
    fn a_v2_group_is_killed_whole_with_what_its_processes_started_and_removed() {
        let unified = mounts()
            .into_iter()
            .find(|(t, _, p)| t == "cgroup2" && p.join("cgroup.procs").exists())
            .map(|(_, _, p)| p);
        let Some(unified) = unified.filter(|_| nix::unistd::geteuid().is_root()) else {
            eprintln!("skipped: needs root and a cgroup2 hierarchy");
            return;
        };
        let base = unified.join(format!("coiled-local-unit-{}", std::process::id()));
        let leaf = base.join("c1").join("worker-1");
        std::fs::create_dir_all(&leaf).unwrap();
        if !base.join("c1").join("cgroup.kill").exists() {
            remove_groups(&base).unwrap();
            eprintln!("skipped: this kernel has no cgroup.kill");
            return;
        }
        use std::io::Write;
        // The shell waits for a line, so that it is in the group before it starts anything.
        let mut shell = std::process::Command::new("sh")
            .args(["-c", "read go; setsid sleep 600 & sleep 600"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        std::fs::write(leaf.join("cgroup.procs"), shell.id().to_string()).unwrap();
        shell.stdin.take().unwrap().write_all(b"go\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while tasks(&leaf).len() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(tasks(&leaf).len(), 3, "the shell and both sleeps are in the group");
        let cgroups = Cgroups::V2 { base: base.clone() };
        cgroups.kill_tree("c1").unwrap();
        assert!(shell.wait().unwrap().signal() == Some(9), "killed");
        assert!(!base.join("c1").exists(), "the groups are removed");
        cgroups.kill_tree("").unwrap();
        assert!(!base.exists());
    }

    #[test]
    fn memory_sizes_read_as_dask_writes_them() {
        assert_eq!(parse_memory("1GiB"), Ok(1 << 30));
        assert_eq!(parse_memory("512 MB"), Ok(512_000_000));
        assert_eq!(parse_memory("2e9"), Ok(2_000_000_000));
        assert!(parse_memory("1 parsec").is_err());
        assert!(parse_memory("1KiB").is_err(), "too small to run a worker");
        assert!(parse_memory("lots").is_err());
    }
}
