//! Release packaging: the archives `scripts/package.sh` builds install from a filesystem mirror with
//! `terraform init`, and their checksums are right.

use std::path::Path;
use std::process::Command;

use crate::common::{HEADER, clis};

#[test]
fn packaged_zip_installs_from_a_filesystem_mirror() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dist = tempfile::tempdir().unwrap();
    let out = Command::new(root.join("scripts/package.sh"))
        .arg("0.1.0")
        .env("DIST", dist.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "package.sh failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let zip = dist.path().join("terraform-provider-coiled_0.1.0_linux_amd64.zip");
    assert!(zip.exists());
    assert_eq!(
        std::fs::read_to_string(dist.path().join("terraform-provider-coiled_0.1.0_manifest.json"))
            .unwrap(),
        std::fs::read_to_string(root.join("terraform-registry-manifest.json")).unwrap()
    );
    let sums = Command::new("sha256sum")
        .arg("-c")
        .arg("terraform-provider-coiled_0.1.0_SHA256SUMS")
        .current_dir(dist.path())
        .output()
        .unwrap();
    assert!(sums.status.success(), "{}", String::from_utf8_lossy(&sums.stdout));

    for cli in clis() {
        let dir = tempfile::tempdir().unwrap();
        // The "packed" mirror layout: HOST/NAMESPACE/TYPE/terraform-provider-TYPE_VERSION_OS_ARCH.zip
        let packed = dir.path().join("mirror/registry.terraform.io/coiled/coiled");
        std::fs::create_dir_all(&packed).unwrap();
        std::fs::copy(&zip, packed.join("terraform-provider-coiled_0.1.0_linux_amd64.zip"))
            .unwrap();
        let rc = dir.path().join("cli.tfrc");
        std::fs::write(
            &rc,
            format!(
                "provider_installation {{\n  filesystem_mirror {{\n    path = \"{}\"\n  }}\n}}\n",
                dir.path().join("mirror").display()
            ),
        )
        .unwrap();
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        std::fs::write(
            work.join("main.tf"),
            format!("{HEADER}provider \"coiled\" {{\n  server = \"http://127.0.0.1:9\"\n  token = \"t-1\"\n}}\n"),
        )
        .unwrap();
        let tf = |args: &[&str]| {
            Command::new(&cli.path)
                .args(args)
                .current_dir(&work)
                .env("TF_CLI_CONFIG_FILE", &rc)
                .env("CHECKPOINT_DISABLE", "1")
                .env("TMPDIR", dir.path())
                .output()
                .unwrap()
        };
        let init = tf(&["init", "-no-color"]);
        assert!(
            init.status.success(),
            "init ({}):\n{}{}",
            cli.version,
            String::from_utf8_lossy(&init.stdout),
            String::from_utf8_lossy(&init.stderr)
        );
        assert!(String::from_utf8_lossy(&init.stdout).contains("coiled/coiled v0.1.0"));
        let lock = std::fs::read_to_string(work.join(".terraform.lock.hcl")).unwrap();
        assert!(
            lock.contains("version = \"0.1.0\"") && lock.contains("\"h1:"),
            "the package hash is pinned: {lock}"
        );
        let schema = tf(&["providers", "schema", "-json"]);
        assert!(
            schema.status.success()
                && String::from_utf8_lossy(&schema.stdout).contains("coiled_cluster"),
            "{}",
            String::from_utf8_lossy(&schema.stderr)
        );
    }
}
