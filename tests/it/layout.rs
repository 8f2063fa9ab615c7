//! The provider's normal dependencies exclude the local control plane's server stack (SQLite).
//! File and function length is a guide for authors (CONTRIBUTING.md), not a test: a test made code
//! split by size rather than by topic.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`, recursively, appended to `out`.
pub(crate) fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let p = entry.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn the_provider_does_not_link_the_local_server_stack() {
    // The resolved tree, not the manifest: a dependency's default features can bring a crate in too.
    let out = std::process::Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "-p",
            "terraform-provider-coiled",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8(out.stdout).unwrap();
    let names: Vec<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(names.contains(&"tonic"), "the tree was not read: {tree}");
    for banned in ["rusqlite", "axum", "rcgen", "coiled-local", "docgen", "coiled-fuzz-harness"] {
        assert!(!names.contains(&banned), "{banned} is in the provider's normal dependency tree");
    }
}
