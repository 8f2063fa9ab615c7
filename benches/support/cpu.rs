//! Where a plan's CPU goes, by process: Terraform's own work, the provider's, and the control plane's.
//!
//! The provider binary in a mirror is replaced by a wrapper that runs it and appends the CPU it used
//! (bash's `times`) to a log, so that its share is measured exactly, whatever Terraform starts. The
//! whole (Terraform and every provider process it waited for) is this process's children's CPU.

use std::path::{Path, PathBuf};

/// Clock ticks per second of `/proc`'s CPU counters, asked once.
fn ticks_per_s() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// The fields of `/proc/<pid>/stat` after the command name (which may hold spaces): field 3 first.
fn stat_fields(path: &Path) -> Vec<f64> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let rest = text.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    rest.split_whitespace().map(|f| f.parse().unwrap_or(0.0)).collect()
}

/// CPU seconds (user + system) of the children this process has waited for.
pub fn children_cpu_s() -> f64 {
    let f = stat_fields(Path::new("/proc/self/stat"));
    // cutime and cstime are fields 16 and 17; the list starts at field 3.
    (f.get(13).copied().unwrap_or(0.0) + f.get(14).copied().unwrap_or(0.0)) / ticks_per_s()
}

/// CPU seconds (user + system) process `pid` has used so far.
pub fn process_cpu_s(pid: u32) -> f64 {
    let f = stat_fields(&PathBuf::from(format!("/proc/{pid}/stat")));
    // utime and stime are fields 14 and 15.
    (f.get(11).copied().unwrap_or(0.0) + f.get(12).copied().unwrap_or(0.0)) / ticks_per_s()
}

/// Puts a wrapper in place of the provider binary `bin`: it runs the real one (moved beside it) with
/// the same arguments, standard streams and environment, then appends bash's `times` to `log`: the
/// wrapper's own CPU on one line, then that of the provider it waited for.
pub fn wrap_provider(bin: &Path, log: &Path) {
    let real = bin.with_extension("real");
    std::fs::rename(bin, &real).unwrap();
    let script = format!(
        "#!/bin/bash\n\"{}\" \"$@\"\nrc=$?\ntimes >> \"{}\"\nexit $rc\n",
        real.display(),
        log.display()
    );
    write_script(bin, &script);
}

/// Writes an executable script at `path`.
pub fn write_script(path: &Path, script: &str) {
    std::fs::write(path, script).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// The CPU seconds of the providers the wrappers ran, summed: the second line (`0m0.081s 0m0.012s`,
/// user and system) of each pair `times` wrote.
pub fn logged_cpu_s(log: &Path) -> f64 {
    let seconds = |t: &str| -> f64 {
        let t = t.trim_end_matches('s');
        let (m, s) = t.split_once('m').unwrap_or(("0", t));
        m.parse::<f64>().unwrap_or(0.0) * 60.0 + s.parse::<f64>().unwrap_or(0.0)
    };
    let text = std::fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .skip(1)
        .step_by(2)
        .flat_map(|l| l.split_whitespace().map(seconds).collect::<Vec<_>>())
        .sum()
}
