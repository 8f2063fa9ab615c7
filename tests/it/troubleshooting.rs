//! The troubleshooting guide lists every diagnostic title the provider can show, and nothing else: a
//! title is found in the code as a string literal given to a diagnostic (or written in title case,
//! for the titles chosen before the call), and on the page as the first cell of a `| title |` table.

use std::collections::BTreeSet;
use std::path::Path;

use crate::layout::rust_files;

/// Words a title keeps in lower case.
const SMALL: [&str; 18] = [
    "of", "the", "to", "a", "an", "in", "on", "for", "and", "or", "but", "with", "from", "at",
    "by", "as", "pip", "conda",
];

/// Where diagnostics are made: the call, then whether a path comes before the title.
const CALLS: [(&str, bool); 7] = [
    (".error(", false),
    (".warning(", false),
    (".bug(", false),
    (".error_at(", true),
    (".warning_at(", true),
    (".report(", true),
    ("ownership::unfinished(", true),
];

/// The string literals of Rust source `text`, outside comments and tests, with where each starts.
fn literals(text: &str) -> Vec<(usize, String)> {
    let text = text.split("#[cfg(test)]").next().unwrap_or_default();
    let bytes = text.as_bytes();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < bytes.len() {
        match bytes[i] {
            b'/' if bytes.get(i + 1) == Some(&b'/') => {
                i = text[i..].find('\n').map_or(bytes.len(), |n| i + n)
            }
            b'\'' if bytes.get(i + 1) == Some(&b'"') && bytes.get(i + 2) == Some(&b'\'') => i += 3,
            b'"' => {
                let start = i;
                let mut s = String::new();
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' {
                        i += 1;
                    }
                    s.push(bytes[i] as char);
                    i += 1;
                }
                out.push((start, s));
                i += 1;
            }
            _ => i += 1,
        }
    }
    out
}

/// Whether `s` reads as a title: capitalised words, small words and identifiers, at most eight.
fn title_case(s: &str) -> bool {
    let words: Vec<&str> = s.split(' ').collect();
    words.len() <= 8
        && s.starts_with(|c: char| c.is_ascii_uppercase())
        && words.iter().all(|w| {
            let plain = !w.is_empty()
                && w.chars().all(|c| c.is_ascii_alphabetic() || c == '\'' || c == '-');
            let ident = w.contains('_') && w.chars().all(|c| c.is_ascii_lowercase() || c == '_');
            (plain && (w.starts_with(|c: char| c.is_ascii_uppercase()) || SMALL.contains(w)))
                || ident
        })
}

/// Whether the literal at `start` is the title argument of a diagnostic call.
fn is_call_title(text: &str, start: usize) -> bool {
    let before = &text[start.saturating_sub(160)..start];
    CALLS.iter().any(|(call, path_first)| {
        before.rfind(call).is_some_and(|at| {
            let between = &before[at + call.len()..];
            !between.contains('"')
                && !between.contains(';')
                && (*path_first || between.trim().is_empty())
        })
    })
}

/// Every diagnostic title of the provider and its plugin framework.
fn titles_in_code() -> BTreeSet<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    rust_files(&root.join("crates/tfplugin/src"), &mut files);
    let mut titles = BTreeSet::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (start, s) in literals(&text) {
            let words = s.split(' ').count();
            if title_case(&s) && (words >= 2 || is_call_title(&text, start)) {
                titles.insert(s);
            }
        }
    }
    titles
}

/// The first cells of the page's `| title |` tables.
fn titles_on_page() -> BTreeSet<String> {
    let page = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/guides/troubleshooting.md"),
    )
    .unwrap();
    let mut titles = BTreeSet::new();
    let mut in_table = false;
    for line in page.lines() {
        if line.starts_with("| title |") {
            in_table = true;
        } else if !line.starts_with('|') {
            in_table = false;
        } else if in_table && !line.starts_with("|---") {
            titles.insert(line.split('|').nth(1).unwrap_or_default().trim().to_string());
        }
    }
    titles
}

#[test]
fn the_troubleshooting_guide_lists_every_diagnostic_title() {
    let (code, page) = (titles_in_code(), titles_on_page());
    assert!(code.len() > 100, "the scan found only {} titles: {code:?}", code.len());
    let missing: Vec<_> = code.difference(&page).collect();
    let stale: Vec<_> = page.difference(&code).collect();
    assert!(
        missing.is_empty(),
        "docs/guides/troubleshooting.md lacks these titles the provider shows: {missing:?}"
    );
    assert!(
        stale.is_empty(),
        "docs/guides/troubleshooting.md lists titles the provider no longer shows: {stale:?}"
    );
}

#[test]
fn the_scan_tells_titles_from_other_text() {
    assert!(
        title_case("Not a Member of the Workspace")
            && title_case("Invalid when_stopped")
            && title_case("No pip Requirements")
    );
    assert!(!title_case("the cluster is ready") && !title_case("Cluster 12 failed."));
    let text = "diags.warning(\n    \"Interrupted\",\n    detail);\nlet state = \"Ready\";";
    let found: Vec<_> = literals(text)
        .into_iter()
        .filter(|(at, s)| title_case(s) && is_call_title(text, *at))
        .map(|(_, s)| s)
        .collect();
    assert_eq!(found, ["Interrupted"]);
}
