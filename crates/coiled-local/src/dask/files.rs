//! What root writes on the host for real clusters, and how it is removed:
//! - locks, in a root-only directory, that give one server a `--lab` prefix and a block of cluster
//!   user ids;
//! - a fresh run directory under `/run`, root-owned, made for each run and never reused;
//! - files written in it with `O_EXCL | O_NOFOLLOW`, so that nothing planted in advance is followed;
//! - trees removed without following links and without recursion, one open directory at a time, with
//!   every error reported.
//!
//! Nothing here is writable by a cluster user: cluster code writes only to its private `/tmp`
//! (see [`super::contain`]).

use std::ffi::OsString;
use std::fs::File;
use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg, OFlag, openat};
use nix::sys::stat::{Mode, SFlag, fstatat};
use nix::unistd::{UnlinkatFlags, unlinkat};

/// Where the locks live: root's own directory.
fn lock_dir() -> Result<PathBuf, String> {
    let dir = Path::new("/run/coiled-local").to_path_buf();
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(format!("{}: {e}", dir.display())),
    }
    owned_by_root(&dir, true)?;
    Ok(dir)
}

/// Checks that `path` is a directory (or file) of root's that nobody else may write, and no link.
fn owned_by_root(path: &Path, dir: bool) -> Result<(), String> {
    let meta = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let kind_ok = if dir { meta.file_type().is_dir() } else { meta.file_type().is_file() };
    if !kind_ok || meta.uid() != 0 || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "{} is not root's own {}; remove it and start again",
            path.display(),
            if dir { "directory" } else { "file" }
        ));
    }
    Ok(())
}

/// An exclusive lock, held while this value lives.
#[derive(Debug)]
pub struct Lock {
    _file: Flock<File>,
    /// What it locks, for messages.
    pub name: String,
}

impl Lock {
    /// A number kept in the lock's file (0 when there is none yet).
    pub fn counter(&self) -> u32 {
        use std::os::unix::fs::FileExt;
        let mut buf = [0u8; 16];
        let n = self._file.read_at(&mut buf, 0).unwrap_or(0);
        std::str::from_utf8(&buf[..n]).ok().and_then(|t| t.trim().parse().ok()).unwrap_or(0)
    }

    /// Keeps `n` in the lock's file, for the next holder of the lock.
    pub fn set_counter(&self, n: u32) -> Result<(), String> {
        use std::os::unix::fs::FileExt;
        let text = format!("{n:<15}\n");
        self._file.write_all_at(text.as_bytes(), 0).map_err(|e| format!("{}: {e}", self.name))
    }
}

/// Takes lock `name` without waiting; `None` when another process holds it.
fn try_lock(name: &str) -> Result<Option<Lock>, String> {
    let path = lock_dir()?.join(format!("{name}.lock"));
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .mode(0o600)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(file) => Ok(Some(Lock { _file: file, name: name.to_string() })),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => Ok(None),
        Err((_, e)) => Err(format!("locking {}: {e}", path.display())),
    }
}

/// The `--lab` prefix, for this server alone: a second server with the same prefix is refused
/// instead of removing the first one's namespaces.
pub fn lock_prefix(prefix: &str) -> Result<Lock, String> {
    try_lock(&format!("lab-{prefix}"))?.ok_or_else(|| {
        format!(
            "--lab {prefix}: another coiled-local runs with this prefix; stop \
            it, or choose another --lab"
        )
    })
}

/// How many user ids one server's block holds, and how many blocks there are.
pub const UID_BLOCK: u32 = 65_536;
const UID_BLOCKS: u32 = 64;

/// The first free block of cluster user ids from `base`, locked for this server: two servers never
/// share one. Returns the lock and the block's first id.
pub fn lock_uid_block(base: u32) -> Result<(Lock, u32), String> {
    for slot in 0..UID_BLOCKS {
        let first = base
            .checked_add(slot * UID_BLOCK)
            .filter(|f| f.checked_add(UID_BLOCK).is_some_and(|end| end < u32::MAX - 1));
        let Some(first) = first else { break };
        if let Some(lock) = try_lock(&format!("uids-{first}"))? {
            return Ok((lock, first));
        }
    }
    Err(format!(
        "--cluster-uids {base}: every block of {UID_BLOCKS} is taken by another coiled-local"
    ))
}

/// Makes a fresh run directory, `/run/coiled-local-{prefix}.{random}`, root's, mode 0711, after
/// removing those that earlier runs with this prefix left (the prefix lock says they are not in use).
/// It is under `/run`, not `/tmp`: a cluster's processes have a `/tmp` of their own.
pub fn fresh_run_dir(prefix: &str) -> Result<PathBuf, String> {
    let tmp = PathBuf::from("/run");
    owned_by_root(&tmp, true)
        .map_err(|e| format!("--clusters dask keeps its files in /run: {e}"))?;
    let stem = format!("coiled-local-{prefix}.");
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let is_ours = name.as_bytes().starts_with(stem.as_bytes())
                && owned_by_root(&entry.path(), true).is_ok();
            if is_ours {
                tracing::warn!(dir = %entry.path().display(), "removing a run directory a \
                    previous run left behind");
                remove_tree(&entry.path())?;
            }
        }
    }
    for _ in 0..16 {
        let path = tmp.join(format!("{stem}{:016x}", rand::random::<u64>()));
        match std::fs::DirBuilder::new().mode(0o711).create(&path) {
            Ok(()) => {
                set_mode(&path, 0o711)?;
                owned_by_root(&path, true)?;
                return Ok(path);
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(format!("{}: {e}", path.display())),
        }
    }
    Err(format!("{}: cannot make a fresh run directory", tmp.display()))
}

/// Makes directory `name` in `dir` (which must not exist yet), root's with group `gid` and `mode`.
pub fn make_dir(dir: &Path, name: &str, gid: u32, mode: u32) -> Result<PathBuf, String> {
    let path = dir.join(name);
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    std::os::unix::fs::lchown(&path, Some(nix::unistd::geteuid().as_raw()), Some(gid))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    set_mode(&path, mode)?;
    Ok(path)
}

/// Writes a new file `name` in `dir`: never through a link, never over an existing file; root's with
/// group `gid` and `mode`.
pub fn write_new(
    dir: &Path,
    name: &str,
    text: &str,
    gid: u32,
    mode: u32,
) -> Result<PathBuf, String> {
    let path = dir.join(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(OFlag::O_NOFOLLOW.bits())
        .open(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(text.as_bytes()).map_err(|e| format!("{}: {e}", path.display()))?;
    std::os::unix::fs::fchown(&file, Some(nix::unistd::geteuid().as_raw()), Some(gid))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    use std::os::unix::fs::PermissionsExt;
    file.set_permissions(std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

fn set_mode(path: &Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Removes the tree at `path`: links are removed, never followed; the walk keeps one directory
/// open and its path on the heap, so neither depth nor the open-files limit stops it. The first
/// error ends it, and is returned with the path it concerns.
pub fn remove_tree(path: &Path) -> Result<(), String> {
    let parent = path.parent().ok_or_else(|| format!("{}: no parent", path.display()))?;
    let name =
        path.file_name().ok_or_else(|| format!("{}: no name", path.display()))?.to_os_string();
    let dir_flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let top = nix::fcntl::open(parent, dir_flags, Mode::empty())
        .map_err(|e| format!("{}: {e}", parent.display()))?;
    let at = |below: &[OsString], e: nix::errno::Errno| {
        let mut p = path.to_path_buf();
        p.extend(below);
        format!("removing {}: {e}", p.display())
    };
    match fstatat(&top, name.as_os_str(), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
        Err(nix::errno::Errno::ENOENT) => return Ok(()),
        Err(e) => return Err(at(&[], e)),
        Ok(st) if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT != SFlag::S_IFDIR => {
            return unlinkat(&top, name.as_os_str(), UnlinkatFlags::NoRemoveDir)
                .map_err(|e| at(&[], e));
        }
        Ok(_) => {}
    }
    let mut below: Vec<OsString> = Vec::new();
    let mut current: OwnedFd =
        openat(&top, name.as_os_str(), dir_flags, Mode::empty()).map_err(|e| at(&[], e))?;
    loop {
        match empty_files(&current).map_err(|e| at(&below, e))? {
            Some(sub) => {
                let next = openat(&current, sub.as_os_str(), dir_flags, Mode::empty())
                    .map_err(|e| at(&below, e))?;
                below.push(sub);
                current = next;
            }
            None => {
                let Some(done) = below.pop() else { break };
                let up =
                    openat(&current, "..", dir_flags, Mode::empty()).map_err(|e| at(&below, e))?;
                unlinkat(&up, done.as_os_str(), UnlinkatFlags::RemoveDir).map_err(|e| {
                    below.push(done.clone());
                    at(&below, e)
                })?;
                current = up;
            }
        }
    }
    drop(current);
    unlinkat(&top, name.as_os_str(), UnlinkatFlags::RemoveDir).map_err(|e| at(&[], e))
}

/// Removes every entry of `dir` but directories; returns one subdirectory left, if any.
fn empty_files(dir: &OwnedFd) -> Result<Option<OsString>, nix::errno::Errno> {
    let fd =
        openat(dir, ".", OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC, Mode::empty())?;
    let mut listing = nix::dir::Dir::from_fd(fd)?;
    let mut subdir = None;
    for entry in listing.iter() {
        let entry = entry?;
        let name = std::ffi::OsStr::from_bytes(entry.file_name().to_bytes()).to_os_string();
        if name == "." || name == ".." {
            continue;
        }
        let st = fstatat(dir.as_fd(), name.as_os_str(), nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)?;
        if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR {
            subdir.get_or_insert(name);
        } else {
            unlinkat(dir, name.as_os_str(), UnlinkatFlags::NoRemoveDir)?;
        }
    }
    Ok(subdir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deep_tree_with_links_is_removed_without_following_them() {
        let scratch = tempfile::tempdir().unwrap();
        let outside = scratch.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(outside.join("keep"), "x").unwrap();
        let tree = scratch.path().join("tree");
        std::fs::create_dir(&tree).unwrap();
        std::os::unix::fs::symlink(&outside, tree.join("link-to-dir")).unwrap();
        // Deeper than a path may be long, than a recursive walk's stack, or than the open-files limit.
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
        let mut fd = nix::fcntl::open(&tree, flags, Mode::empty()).unwrap();
        for _ in 0..3000 {
            nix::sys::stat::mkdirat(&fd, "d", Mode::from_bits_truncate(0o755)).unwrap();
            fd = openat(&fd, "d", flags, Mode::empty()).unwrap();
        }
        nix::unistd::symlinkat(&outside.join("keep"), &fd, "link-to-file").unwrap();
        let file =
            openat(&fd, "file", OFlag::O_WRONLY | OFlag::O_CREAT, Mode::from_bits_truncate(0o644))
                .unwrap();
        drop((file, fd));
        remove_tree(&tree).unwrap();
        assert!(!tree.exists());
        assert_eq!(
            std::fs::read_to_string(outside.join("keep")).unwrap(),
            "x",
            "a link's target is left alone"
        );
        remove_tree(&tree).unwrap();
        let link = scratch.path().join("top-link");
        std::os::unix::fs::symlink(&outside, &link).unwrap();
        remove_tree(&link).unwrap();
        assert!(
            outside.join("keep").exists() && !link.exists(),
            "a link given as the tree is removed, not followed"
        );
    }

    /// The next user id of a block outlives the server that held its lock. Needs root (the locks live
    /// in `/run/coiled-local`); skipped without it.
    #[test]
    fn a_lock_keeps_its_counter_for_the_next_holder() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let name = format!("unit-counter-{}", std::process::id());
        let first = try_lock(&name).unwrap().expect("free");
        assert!(try_lock(&name).unwrap().is_none(), "held: a second holder is refused");
        assert_eq!(first.counter(), 0);
        first.set_counter(41).unwrap();
        first.set_counter(7).unwrap();
        drop(first);
        let again = try_lock(&name).unwrap().expect("free again");
        assert_eq!(again.counter(), 7, "the last value written, not a mix of two");
        drop(again);
        std::fs::remove_file(lock_dir().unwrap().join(format!("{name}.lock"))).unwrap();
    }

    #[test]
    fn a_new_file_is_never_written_through_a_link_or_over_a_file() {
        let scratch = tempfile::tempdir().unwrap();
        let target = scratch.path().join("target");
        std::fs::write(&target, "root's").unwrap();
        std::os::unix::fs::symlink(&target, scratch.path().join("cert.pem")).unwrap();
        let uid = nix::unistd::getuid().as_raw();
        assert!(write_new(scratch.path(), "cert.pem", "planted", uid, 0o640).is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "root's");
        assert!(write_new(scratch.path(), "target", "again", uid, 0o640).is_err());
        let made = write_new(scratch.path(), "key.pem", "k", nix::unistd::getgid().as_raw(), 0o640)
            .unwrap();
        assert_eq!(std::fs::metadata(made).unwrap().mode() & 0o777, 0o640);
    }
}
