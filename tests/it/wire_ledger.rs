//! The wire ledger (`docs/wire-ledger.md`) and the API client agree: every field the client deserialises
//! or reads from a free-form object is listed with the `coiled` client function that shows it, and every
//! field listed is still read.

use std::collections::BTreeSet;
use std::path::Path;

/// `Type.field` for every field of a `Deserialize` struct in `src/api/types.rs`, and every key read from a
/// free-form object there (`.get("key")`, `option_str("key")`, `option_text("key")`).
fn read_by_the_code() -> (BTreeSet<String>, BTreeSet<String>) {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/api/types.rs"))
            .unwrap();
    let mut typed = BTreeSet::new();
    let mut pending_derive = false;
    let mut current: Option<String> = None;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("#[derive(") {
            pending_derive = t.contains("Deserialize");
        } else if let Some(rest) = t.strip_prefix("pub struct ") {
            current = pending_derive
                .then(|| rest.split([' ', '{', '(']).next().unwrap_or_default().to_string());
            pending_derive = false;
        } else if t == "}" {
            current = None;
        } else if let (Some(ty), Some(rest)) = (&current, t.strip_prefix("pub "))
            && let Some((field, _)) = rest.split_once(':')
        {
            typed.insert(format!("{ty}.{field}"));
        }
    }
    let mut keys = BTreeSet::new();
    for call in [".get(\"", "option_str(\"", "option_text(\""] {
        for piece in text.split(call).skip(1) {
            if let Some((key, _)) = piece.split_once('"') {
                keys.insert(key.to_string());
            }
        }
    }
    (typed, keys)
}

/// The ledger's response fields: two-part names are typed fields, longer ones free-form keys.
fn listed() -> (BTreeSet<String>, BTreeSet<String>) {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/wire-ledger.md"))
            .unwrap();
    let section = text.split("## Response fields").nth(1).expect("a Response fields section");
    let section = section.split("\n## ").next().unwrap_or_default();
    let mut typed = BTreeSet::new();
    let mut keys = BTreeSet::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let name = line.split('`').nth(1).unwrap_or_default();
        let parts: Vec<&str> = name.split('.').collect();
        let client = line.split('|').nth(2).unwrap_or_default().trim();
        assert!(!client.is_empty(), "{name}: no client function");
        assert!(
            client.contains("`") || line.contains("**optional**"),
            "{name}: name the client function, or mark it optional"
        );
        match parts.len() {
            2 => typed.insert(name.to_string()),
            n if n > 2 => keys.insert(parts[n - 1].to_string()),
            _ => panic!("{name:?} is not Type.field or Type.object.key"),
        };
    }
    (typed, keys)
}

#[test]
fn the_ledger_lists_exactly_what_the_client_reads() {
    let (code_typed, code_keys) = read_by_the_code();
    let (ledger_typed, ledger_keys) = listed();
    let unlisted: Vec<_> = code_typed.difference(&ledger_typed).collect();
    let stale: Vec<_> = ledger_typed.difference(&code_typed).collect();
    assert!(unlisted.is_empty(), "fields read but not in docs/wire-ledger.md: {unlisted:?}");
    assert!(
        stale.is_empty(),
        "fields in docs/wire-ledger.md that the code no longer reads: {stale:?}"
    );
    let unlisted: Vec<_> = code_keys.difference(&ledger_keys).collect();
    let stale: Vec<_> = ledger_keys.difference(&code_keys).collect();
    assert!(
        unlisted.is_empty(),
        "free-form keys read but not in docs/wire-ledger.md: {unlisted:?}"
    );
    assert!(
        stale.is_empty(),
        "free-form keys in docs/wire-ledger.md that the code no longer reads: {stale:?}"
    );
}

/// The name of every `(rule `name`)` in the provider's sources.
fn rules_in_the_code() -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for piece in text.split("(rule `").skip(1) {
                    let name = piece.split('`').next().unwrap_or_default();
                    assert!(
                        piece[name.len()..].starts_with("`)"),
                        "{}: a rule marker is `(rule `name`)`",
                        path.display()
                    );
                    found.insert(name.to_string());
                }
            }
        }
    }
    found
}

/// The Rules table: each rule, which must name the client function it follows or say **ours** why.
fn rules_listed() -> BTreeSet<String> {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/wire-ledger.md"))
            .unwrap();
    let section = text.split("\n## Rules\n").nth(1).expect("a Rules section");
    let section = section.split("\n## ").next().unwrap_or_default();
    let mut names = BTreeSet::new();
    for line in section.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.split(" | ").collect();
        let name = line.split('`').nth(1).unwrap_or_default();
        let why = cells.last().copied().unwrap_or_default();
        let client = why.contains(".py` `");
        let ours = why
            .split("**ours**")
            .nth(1)
            .is_some_and(|reason| reason.trim_start_matches([':', ' ']).len() > 20);
        assert!(
            client || ours,
            "{name}: name the client function (`file.py` `function`), or say **ours** and why"
        );
        assert!(cells.len() == 3 && cells[1].len() > 20, "{name}: say what is decided");
        assert!(names.insert(name.to_string()), "{name} is listed twice");
    }
    names
}

#[test]
fn the_rules_table_lists_exactly_the_rules_in_the_code() {
    let (code, listed) = (rules_in_the_code(), rules_listed());
    let unlisted: Vec<_> = code.difference(&listed).collect();
    let stale: Vec<_> = listed.difference(&code).collect();
    assert!(
        unlisted.is_empty(),
        "rules in the code but not in docs/wire-ledger.md's Rules table: {unlisted:?}"
    );
    assert!(
        stale.is_empty(),
        "rules in docs/wire-ledger.md that no code names any more: {stale:?}"
    );
    assert!(code.len() >= 15, "every decision taken from an answer is a rule: {code:?}");
}
