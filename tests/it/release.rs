//! The release's binaries, each shown to work where it can run here: Linux builds are static and
//! serve Terraform (arm64 under `qemu-aarch64`), the Windows build under Wine where Wine can load it,
//! the macOS build links. `scripts/cross-build.sh` builds them (`scripts/test.sh` runs it).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{Workdir, clis};

/// The plugin built for `target` by `scripts/cross-build.sh`, or `None` (outside CI) when it is not.
fn built_for(target: &str) -> Option<PathBuf> {
    let exe = if target.contains("windows") { ".exe" } else { "" };
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(format!("target/{target}/debug/terraform-provider-coiled{exe}"));
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").is_err(),
        "{} is missing: run scripts/cross-build.sh",
        path.display()
    );
    eprintln!("skipping: {} is not built (scripts/cross-build.sh)", path.display());
    None
}

/// What an ELF file needs from the system: its interpreter, and the shared libraries it names.
fn elf_needs(bytes: &[u8]) -> (Option<String>, usize) {
    assert_eq!(&bytes[..4], b"\x7fELF", "not an ELF file");
    assert_eq!((bytes[4], bytes[5]), (2, 1), "64-bit little-endian");
    let u16_at = |o: usize| u16::from_le_bytes(bytes[o..o + 2].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(bytes[o..o + 8].try_into().unwrap()) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    let (mut interp, mut needed) = (None, 0);
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let kind = u32::from_le_bytes(bytes[ph..ph + 4].try_into().unwrap());
        let (offset, size) = (u64_at(ph + 8), u64_at(ph + 32));
        match kind {
            // PT_INTERP: the dynamic loader's path.
            3 => {
                interp = Some(
                    String::from_utf8_lossy(&bytes[offset..offset + size])
                        .trim_end_matches('\0')
                        .to_string(),
                )
            }
            // PT_DYNAMIC: (tag, value) pairs; DT_NEEDED (1) names a shared library.
            2 => needed += (0..size / 16).filter(|e| u64_at(offset + e * 16) == 1).count(),
            _ => {}
        }
    }
    (interp, needed)
}

#[test]
fn linux_builds_need_nothing_from_the_system() {
    for target in ["x86_64-unknown-linux-musl", "aarch64-unknown-linux-musl"] {
        let Some(bin) = built_for(target) else { continue };
        let (interp, needed) = elf_needs(&std::fs::read(&bin).unwrap());
        assert_eq!(
            (interp, needed),
            (None, 0),
            "{target}: no loader, no shared library (so no glibc of any version)"
        );
    }
    // And the host's own build, to show what the check sees in a dynamic binary.
    let (interp, needed) = elf_needs(&std::fs::read(crate::common::PROVIDER_BIN).unwrap());
    assert!(interp.is_some() && needed > 0, "the check sees a dynamic binary as one");
}

/// `terraform init` and `terraform providers schema` with the plugin run as `program` (a wrapper
/// script): the plugin handshake and `GetProviderSchema`, through the real CLI.
fn serves_schema(program: &str) {
    for cli in clis() {
        let w = Workdir::new_uninitialised(
            cli,
            &format!("{}provider \"coiled\" {{}}\n", crate::common::HEADER),
        );
        let plugin = w.mirror().join("registry.terraform.io/coiled/coiled/0.1.0/linux_amd64/terraform-provider-coiled_v0.1.0");
        std::fs::write(&plugin, format!("#!/bin/sh\nexec {program} \"$@\"\n")).unwrap();
        w.terraform(&["init", "-no-color"]).ok();
        let out = w.terraform(&["providers", "schema", "-json"]).ok();
        let schema: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
        let resources =
            &schema["provider_schemas"]["registry.terraform.io/coiled/coiled"]["resource_schemas"];
        assert!(resources["coiled_cluster"].is_object(), "{}: {}", cli.version, out.stdout);
    }
}

#[test]
fn the_static_amd64_build_serves_terraform() {
    if let Some(bin) = built_for("x86_64-unknown-linux-musl") {
        serves_schema(&bin.display().to_string());
    }
}

#[test]
fn the_arm64_build_serves_terraform_under_qemu() {
    let Some(bin) = built_for("aarch64-unknown-linux-musl") else { return };
    let Some(qemu) = on_path("qemu-aarch64") else {
        assert!(
            std::env::var("CI").is_err(),
            "qemu-aarch64 is missing: install Debian's qemu-user"
        );
        return eprintln!("skipping: no qemu-aarch64 (Debian's qemu-user)");
    };
    serves_schema(&format!("{} {}", qemu.display(), bin.display()));
}

/// The Windows build under Wine, where this machine's Wine can load it: Debian 12's Wine 8.0 lacks
/// `bcryptprimitives.dll`, which Rust's standard library imports, and the test says so and stops.
/// (The TCP transport it uses is tried on Linux by `plugin_core`.)
#[test]
fn the_windows_build_serves_terraform_under_wine() {
    let Some(exe) = built_for("x86_64-pc-windows-gnu") else { return };
    let Some(wine) = on_path("wine64")
        .or_else(|| Some(PathBuf::from("/usr/lib/wine/wine64")).filter(|p| p.exists()))
    else {
        return eprintln!("skipping: no Wine");
    };
    let prefix = tempfile::tempdir().unwrap();
    let run =
        format!("env WINEPREFIX={} WINEDEBUG=-all {}", prefix.path().display(), wine.display());
    let version = Command::new("sh")
        .arg("-c")
        .arg(format!("{run} {} --version", exe.display()))
        .output()
        .unwrap();
    if !version.status.success() {
        return eprintln!(
            "skipping: this Wine cannot load the Windows build (exit {:?})",
            version.status.code()
        );
    }
    serves_schema(&format!("{run} {}", exe.display()));
}

#[test]
fn the_macos_build_links() {
    let Some(bin) = built_for("aarch64-apple-darwin") else { return };
    let bytes = std::fs::read(&bin).unwrap();
    // MH_MAGIC_64, CPU_TYPE_ARM64, MH_EXECUTE: a linked executable, not an object.
    assert_eq!(&bytes[..8], &[0xcf, 0xfa, 0xed, 0xfe, 0x0c, 0x00, 0x00, 0x01]);
    assert_eq!(u32::from_le_bytes(bytes[12..16].try_into().unwrap()), 2);
    // The oldest macOS it loads on (LC_BUILD_VERSION's `minos`, as xxxx.yy.zz): Big Sur, as the
    // installation guide says, not the macOS of the linker's SDK.
    let word = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
    let (mut at, mut minos) = (32, None);
    for _ in 0..word(16) {
        if word(at) == 0x32 {
            minos = Some(word(at + 12));
        }
        at += word(at + 4) as usize;
    }
    let minos = minos.expect("an LC_BUILD_VERSION load command");
    assert_eq!(
        (minos >> 16, (minos >> 8) & 0xff),
        (11, 0),
        "minimum macOS {}.{}",
        minos >> 16,
        (minos >> 8) & 0xff
    );
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .and_then(|p| std::env::split_paths(&p).map(|d| d.join(name)).find(|f| f.is_file()))
}
