//! `docgen`: writes the Registry documentation under `docs/` from the provider's schema, `templates/`
//! and `examples/`. `docgen --check` only reports stale pages (exit 1).

use std::path::Path;
use std::process::ExitCode;

use terraform_provider_coiled::provider::CoiledProvider;

fn main() -> ExitCode {
    let check = std::env::args().any(|a| a == "--check");
    let root = &Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let pages = match docgen::generate(&CoiledProvider::default(), root) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("docgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stale = 0;
    for page in pages {
        let path = root.join(&page.path);
        if std::fs::read_to_string(&path).ok().as_deref() == Some(page.content.as_str()) {
            continue;
        }
        stale += 1;
        if check {
            eprintln!("stale: {}", page.path.display());
        } else {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Err(e) = std::fs::write(&path, &page.content) {
                eprintln!("docgen: {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
            eprintln!("wrote {}", page.path.display());
        }
    }
    if check && stale > 0 {
        eprintln!("docgen: {stale} page(s) stale; run `cargo run --bin docgen`");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
