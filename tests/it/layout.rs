//! The code stays in files a reader can hold: no hand-written Rust file over 600 lines, no function
//! over 80 lines, and the provider's normal dependencies exclude the local control plane's server
//! stack (SQLite). Generated code (build output) is not under these directories.

use std::path::{Path, PathBuf};

const MAX_FILE_LINES: usize = 600;
const MAX_FN_LINES: usize = 80;

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

/// Functions longer than the limit, as `file:line (n lines)`. A function starts at a line beginning
/// (after indentation) with `fn`, `pub fn`, `async fn`… and ends at the `}` with the same indentation,
/// which is how rustfmt lays every function out.
fn long_functions(path: &Path, text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let rest = ["pub(crate) ", "pub(super) ", "pub "].iter().find_map(|p| trimmed.strip_prefix(p)).unwrap_or(trimmed);
        let rest = rest.strip_prefix("async ").unwrap_or(rest);
        if !rest.starts_with("fn ") || line.trim_end().ends_with(';') {
            continue;
        }
        let indent = &line[..line.len() - trimmed.len()];
        let closing = format!("{indent}}}");
        if let Some(end) = lines[i + 1..].iter().position(|l| *l == closing) {
            let n = end + 2;
            if n > MAX_FN_LINES {
                out.push(format!("{}:{} ({n} lines)", path.display(), i + 1));
            }
        }
    }
    out
}

#[test]
fn files_and_functions_stay_small() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "crates", "fuzz/harness/src", "tests", "benches"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut problems = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let n = text.lines().count();
        if n > MAX_FILE_LINES {
            problems.push(format!("{} has {n} lines (at most {MAX_FILE_LINES})", f.display()));
        }
        problems.extend(long_functions(f, &text).into_iter().map(|l| format!("function at {l} (at most {MAX_FN_LINES})")));
    }
    assert!(files.len() > 40, "only {} files found", files.len());
    assert!(problems.is_empty(), "split these:\n{}", problems.join("\n"));
}

#[test]
fn the_provider_does_not_link_the_local_server_stack() {
    // The resolved tree, not the manifest: a dependency's default features can bring a crate in too.
    let out = std::process::Command::new(env!("CARGO"))
        .args(["tree", "--offline", "-e", "normal", "-p", "terraform-provider-coiled", "--prefix", "none", "--format", "{p}"])
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
