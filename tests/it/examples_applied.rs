//! Every example runs as written: each directory under `examples/` (without its import blocks, which
//! name objects of the reader's) and each `terraform` block of the guides and of the function,
//! ephemeral resource and action pages is applied on a fresh state against `coiled-local`, planned
//! again (nothing to change) and destroyed, with the oldest Terraform that has its features. A block
//! that cannot run here says why in a comment just before it: `<!-- not applied: REASON -->`.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::common::{HEADER, LocalServer, Workdir, clis};
use crate::docs_examples::{code_blocks_after, needs, root};

/// The page comment that exempts the block after it.
const NOT_APPLIED: &str = "<!-- not applied: ";

/// One example: where it comes from, and its configuration.
struct Example {
    from: String,
    config: String,
}

/// The examples of `examples/` (import blocks left out): a resource's or data source's files each on
/// its own (they are alternatives, as its page shows them), every other directory as one configuration.
fn example_dirs() -> Vec<Example> {
    let mut out = Vec::new();
    for dir in crate::docs_examples::example_dirs() {
        let mut files: Vec<PathBuf> =
            std::fs::read_dir(&dir).unwrap().filter_map(Result::ok).map(|e| e.path()).collect();
        files.sort();
        let tf: Vec<&PathBuf> = files
            .iter()
            .filter(|p| {
                p.extension().is_some_and(|e| e == "tf")
                    && !p.file_name().unwrap().to_string_lossy().starts_with("import")
            })
            .collect();
        let from = |p: &Path| p.strip_prefix(root()).unwrap().display().to_string();
        let read = |p: &&PathBuf| std::fs::read_to_string(p).unwrap() + "\n";
        let alternatives = ["resources", "data-sources"]
            .iter()
            .any(|kind| dir.parent() == Some(&root().join("examples").join(kind)));
        if alternatives {
            out.extend(tf.iter().map(|p| Example { from: from(p), config: read(p) }));
        } else if !tf.is_empty() {
            out.push(Example { from: from(&dir), config: tf.iter().map(read).collect() });
        }
    }
    out.sort_by(|a, b| a.from.cmp(&b.from));
    out
}

/// Files the examples read, as a reader would have them: a conda `environment.yml` with pip packages.
pub(crate) fn write_fixtures(w: &Workdir) {
    w.write("environment.yml", "channels:\n  - conda-forge\ndependencies:\n  - python=3.12\n  - dask\n  - pip:\n      - xgboost>=2\n");
    w.write("requirements.txt", "xgboost>=2\npandas\n");
}

/// The `terraform` blocks of the Markdown pages in `dirs`, but those after a [`NOT_APPLIED`] comment.
fn page_blocks(dirs: &[&str]) -> Vec<Example> {
    let mut out = Vec::new();
    for dir in dirs {
        let mut pages: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
            .unwrap()
            .filter_map(Result::ok)
            .map(|e| e.path())
            .collect();
        pages.sort();
        for page in pages {
            let text = std::fs::read_to_string(&page).unwrap();
            for (n, (before, config)) in
                code_blocks_after(&text, "terraform").into_iter().enumerate()
            {
                let from =
                    format!("{} block {}", page.strip_prefix(root()).unwrap().display(), n + 1);
                match before.strip_prefix(NOT_APPLIED) {
                    Some(note) => assert!(
                        note.trim_end_matches("-->").trim().len() > 15,
                        "{from}: say why it is not applied"
                    ),
                    None => out.push(Example { from, config }),
                }
            }
        }
    }
    out
}

/// Applies `example` on a fresh state and server, plans (nothing to change) and destroys it.
fn apply(example: &Example) {
    let needed = needs(&example.config);
    let Some(cli) = clis().iter().find(|c| c.at_least(needed.0, needed.1)) else { return };
    // The names the examples use: the workspace `my-team`, and environments built elsewhere.
    let server = LocalServer::start(&[
        "--provision-delay",
        "0s",
        "--stop-delay",
        "0s",
        "--workspace",
        "my-team",
        "--software-env",
        "etl-env",
        "--software-env",
        "team-base",
    ]);
    if example.config.contains("data \"coiled_cluster\"") {
        server.create("my-team", &json!({"name": "etl", "workers": 1}));
    }
    // The local development guide's server is the URL coiled-local printed.
    let mut config = example.config.replace("http://127.0.0.1:8000", &server.url);
    if !config.contains("required_providers") {
        config = format!("{HEADER}{config}");
    }
    let mut w = Workdir::new_uninitialised(cli, &config);
    write_fixtures(&w);
    w.terraform(&["init", "-no-color"]).ok();
    for (k, v) in [
        ("COILED_SERVER", server.url.as_str()),
        ("COILED_TOKEN", server.token.as_str()),
        ("TF_VAR_aws_access_key_id", "AKIAEXAMPLE"),
        ("TF_VAR_aws_secret_access_key", "example-secret"),
        ("TF_VAR_aws_secret_access_key_wo", "example-secret-wo"),
    ] {
        w.set_env(k, v);
    }
    let from = format!("{} (Terraform {})", example.from, cli.version);
    let applied = w.terraform(&["apply", "-auto-approve", "-no-color"]);
    assert_eq!(applied.code, 0, "{from} does not apply:\n{}\n{}", example.config, applied.all());
    assert!(
        !applied.all().contains("Scheduler Port Not Open"),
        "{from} opens no port its scheduler listens on:\n{}",
        applied.all()
    );
    let plan = w.terraform(&["plan", "-detailed-exitcode", "-no-color"]);
    assert_eq!(plan.code, 0, "{from}: the plan after the apply is not empty:\n{}", plan.all());
    let destroyed = w.terraform(&["destroy", "-auto-approve", "-no-color"]);
    assert_eq!(destroyed.code, 0, "{from} does not destroy:\n{}", destroyed.all());
}

#[test]
fn every_example_directory_applies() {
    let examples = example_dirs();
    assert!(
        examples.len() >= 10,
        "examples missing: {:?}",
        examples.iter().map(|e| &e.from).collect::<Vec<_>>()
    );
    examples.iter().for_each(apply);
}

#[test]
fn every_guide_example_applies() {
    let blocks = page_blocks(&["docs/guides"]);
    assert!(blocks.len() >= 8, "guide examples missing");
    blocks.iter().for_each(apply);
}

#[test]
fn every_function_ephemeral_and_action_example_applies() {
    let blocks = page_blocks(&["docs/functions", "docs/ephemeral-resources", "docs/actions"]);
    assert!(blocks.len() >= 5, "examples missing");
    blocks.iter().for_each(apply);
}

/// The module people copy passes its own `terraform test` files: with a mocked provider, and against
/// `coiled-local`.
#[test]
fn the_dask_platform_module_passes_its_tests() {
    let Some(cli) = clis().iter().find(|c| c.at_least(1, 7)) else { return };
    let server = LocalServer::start(&["--provision-delay", "0s", "--stop-delay", "0s"]);
    let module = root().join("examples/modules/dask-platform");
    let mut w = Workdir::new_uninitialised(cli, "");
    std::fs::create_dir_all(w.path().join("tests")).unwrap();
    for sub in ["", "tests"] {
        for entry in std::fs::read_dir(module.join(sub))
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.path().is_file())
        {
            std::fs::copy(entry.path(), w.path().join(sub).join(entry.file_name())).unwrap();
        }
    }
    w.terraform(&["init", "-no-color"]).ok();
    w.set_env("COILED_SERVER", &server.url);
    w.set_env("COILED_TOKEN", &server.token);
    let out = w.terraform(&["test", "-no-color"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("5 passed, 0 failed"), "{}", out.stdout);
}
