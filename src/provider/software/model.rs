//! `coiled_software_environment`'s values, the create request made from them, and its private data.

use std::sync::LazyLock;
use std::time::Duration;

use tfplugin::model::Field;
use tfplugin::value::Value;

use super::super::duration::WriteTimeouts;
use super::spec::{self, Conda, SpecInput};
use crate::api::{CreateSoftwareEnv, JsonObject};
use crate::provider::{Checked, not_empty, refuse, workspace_slug};

/// Default create and update timeout: builds of large specs take a while.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// The client's default architecture.
pub const DEFAULT_ARCHITECTURE: &str = "x86_64";
/// The architectures Coiled builds for.
pub const ARCHITECTURES: &[&str] = &["x86_64", "aarch64"];

tfplugin::model! {
    /// The resource's configuration, plan or state.
    pub struct SoftwareEnvModel {
        /// Coiled's id of the environment (its alias).
        #[attribute(computed, stable)]
        id: String,
        /// Name: lower-case letters, digits, `-` and `_`. Clusters name it in `software`.
        #[attribute(required, requires_replace, validated(env_name))]
        name: String,
        /// Workspace (formerly account) to create it in. Defaults to the provider's workspace.
        #[attribute(optional_computed, requires_replace, stable, validated(workspace_slug))]
        workspace: String,
        /// A container image, e.g. `ghcr.io/dask/dask:latest`; images outside Docker Hub by
        /// registry URL. Conflicts with `conda` and `pip`.
        #[attribute(optional)]
        container: String,
        /// conda packages, as `conda={"channels": [...], "dependencies": [...]}` in
        /// `coiled.create_software_environment`.
        #[block(Single)]
        conda: CondaModel,
        /// pip requirement lines, e.g. `["dask[complete]", "xgboost>=2"]`; option lines such as
        /// `--extra-index-url URL` are kept. Editable and local-path requirements are ignored, as
        /// by the client. Sensitive: index URLs often carry credentials.
        #[attribute(optional, sensitive)]
        pip: Vec<String>,
        /// Python version of an environment without `conda` packages, e.g. `3.12`. Coiled's client
        /// takes it from the local interpreter; a configuration states it. Not with `conda`: list
        /// `python` among its dependencies instead.
        #[attribute(optional, validated(python_3))]
        python_version: String,
        /// Build with CUDA for GPUs. Default `false`.
        #[attribute(optional_computed, defaulting_to(|| Value::Bool(false)))]
        gpu_enabled: bool,
        /// CPU architecture: `x86_64` (default) or `aarch64` (ARM).
        #[attribute(
            optional_computed,
            defaulting_to(|| Value::string(DEFAULT_ARCHITECTURE)),
            validated(architecture)
        )]
        architecture: String,
        /// Whether clusters use the image's entrypoint. Default `true`.
        #[attribute(optional_computed, defaulting_to(|| Value::Bool(true)))]
        use_entrypoint: bool,
        /// Cloud region to store the environment in. Coiled's default when absent (us-east-1 on
        /// AWS, us-east1 on Google Cloud).
        #[attribute(optional, validated(|v| not_empty(v, "region_name")))]
        region_name: String,
        /// Install pip packages with uv. Default `true`.
        #[attribute(optional_computed, defaulting_to(|| Value::Bool(true)))]
        use_uv_installer: bool,
        /// Id of the spec this configuration built; a new build changes it.
        #[attribute(computed)]
        spec_id: String,
        /// Id of that spec's build.
        #[attribute(computed)]
        build_id: String,
        /// State of the environment's build: `built`, or `error` when it failed (`queued` or
        /// `building` while it runs, if a create was interrupted).
        #[attribute(computed)]
        status: String,
        /// Operation timeouts, as durations such as `90s`, `20m` or `1h`.
        #[block(with = timeouts_block)]
        timeouts: WriteTimeouts,
    }
}

tfplugin::model! {
    /// The `conda` block.
    pub struct CondaModel {
        /// conda channels, by name (`conda-forge`) or URL. Default `["conda-forge"]`.
        #[attribute(optional)]
        channels: Vec<String>,
        /// conda package specs, e.g. `python=3.12`, `dask>=2025.1` or `conda-forge::xarray`.
        #[attribute(required)]
        dependencies: Vec<String>,
    }
}

/// `name`: as Coiled's client accepts a new environment's name.
fn env_name(v: &Value) -> Checked {
    let bad = v.as_str().filter(|name| !super::validate::valid_env_name(name));
    refuse(bad, "Invalid Software Environment Name", |name| {
        format!(
            "{name:?} is not a software environment name: use lower-case letters, digits, `-` \
            and `_` (at most 128), as Coiled's client requires."
        )
    })
}

/// `python_version`: a Python 3 version.
fn python_3(v: &Value) -> Checked {
    let is_version = |v: &str| {
        v.split('.').count() <= 3
            && v.split('.').all(|p| !p.is_empty() && p.chars().all(|ch| ch.is_ascii_digit()))
            && v.starts_with('3')
    };
    refuse(v.as_str().filter(|v| !is_version(v)), "Invalid Python Version", |v| {
        format!("{v:?} is not a Python 3 version such as \"3.12\" or \"3.12.4\".")
    })
}

/// `architecture`: one Coiled builds for.
fn architecture(v: &Value) -> Checked {
    refuse(v.as_str().filter(|a| !ARCHITECTURES.contains(a)), "Invalid Architecture", |arch| {
        format!("{arch:?} is not an architecture Coiled builds for: use \"x86_64\" or \"aarch64\".")
    })
}

fn timeouts_block(name: &'static str, description: &'static str) -> tfplugin::schema::NestedBlock {
    super::super::duration::timeouts_block(
        name,
        description,
        &[
            ("create", "How long to wait for the build of a new environment. Default `30m`."),
            ("update", "How long to wait for a new build. Default `30m`."),
        ],
    )
}

/// The arguments whose change asks for a new build: every one the schema declares neither
/// replacing the environment nor changing state only (`timeouts`).
static SPEC_ARGUMENTS: LazyLock<Vec<&'static str>> = LazyLock::new(|| {
    let block = SoftwareEnvModel::schema_block("");
    let attributes = block
        .attributes
        .iter()
        .filter(|a| a.configurable() && !a.requires_replace && !a.state_only);
    let blocks = block.blocks.iter().filter(|b| !b.state_only);
    attributes.map(|a| a.name).chain(blocks.map(|b| b.name)).collect()
});

/// Private data of a state: an import could not read the spec (it is taken from the configuration
/// at the next plan), or the alias's latest spec is no longer the one this state built.
#[derive(serde::Serialize, serde::Deserialize, Default, Debug, PartialEq)]
pub struct Marks {
    #[serde(default)]
    pub imported: bool,
    /// The alias's latest spec, when a read found it differs from `spec_id`.
    #[serde(default)]
    pub latest_spec: Option<i64>,
    /// What the imported environment's spec says, where the server echoes it: checked against the
    /// configuration at the first plan after the import.
    #[serde(default)]
    pub imported_spec: Option<crate::api::SpecRead>,
}

impl Marks {
    /// The marks in private data (none when empty or unreadable).
    pub fn read(private: &[u8]) -> Marks {
        serde_json::from_slice(private).unwrap_or_default()
    }

    /// As private data: empty when there is nothing to mark.
    pub fn write(&self) -> Vec<u8> {
        if *self == Marks::default() {
            Vec::new()
        } else {
            serde_json::to_vec(self).unwrap_or_default()
        }
    }
}

impl SoftwareEnvModel {
    /// The settings the spec of an imported environment contradicts in this configuration's request
    /// (only what the server echoed is compared), or `None` when it echoed nothing to compare.
    pub fn contradicted_by(&self, spec: &crate::api::SpecRead) -> Option<Vec<&'static str>> {
        let body = self.request().ok()?;
        if *spec == crate::api::SpecRead::default() {
            return None;
        }
        let mut differ = Vec::new();
        match (&spec.container, &body.container) {
            (Some(theirs), Some(ours)) if theirs != ours => differ.push("container"),
            // Built from an image and configured with packages, or the other way round.
            (Some(_), None) => differ.push("container"),
            (None, Some(_)) if spec.md5.is_some() => differ.push("container"),
            (None, None) if spec.md5.as_ref().is_some_and(|m| *m != body.md5) => {
                differ.push("conda / pip")
            }
            _ => {}
        }
        if spec.architecture.as_ref().is_some_and(|a| *a != body.architecture) {
            differ.push("architecture");
        }
        if spec.gpu_enabled.is_some_and(|g| g != body.gpu_enabled) {
            differ.push("gpu_enabled");
        }
        Some(differ)
    }

    /// The timeout of the operation `which` picks (`|t| &t.create`).
    pub fn timeout(&self, which: fn(&WriteTimeouts) -> &Field<String>) -> Duration {
        crate::provider::duration::timeout_of(&self.timeouts, which, DEFAULT_TIMEOUT)
    }

    /// Whether it names an image or packages (null when it keeps an existing environment as it is).
    pub fn has_spec(&self) -> bool {
        !self.container.is_null() || !self.conda.is_null() || !self.pip.is_null()
    }

    /// What the package spec is built from.
    pub fn spec_input(&self) -> SpecInput {
        SpecInput {
            conda: self.conda.known().map(|c| Conda {
                channels: c.channels.known().cloned(),
                dependencies: c.dependencies.known().cloned().unwrap_or_default(),
            }),
            pip: self.pip.known().cloned(),
            python_version: self.python_version.known().cloned(),
        }
    }

    /// The create request, as `coiled.create_software_environment` sends it for the same arguments;
    /// an error (for `conda`) when the spec is incomplete.
    pub fn request(&self) -> Result<CreateSoftwareEnv, String> {
        let (md5, fields) = match self.container.known() {
            Some(_) => (spec::spec_md5(None), JsonObject::new()),
            None => {
                let (spec, _) = spec::env_spec(&self.spec_input())?;
                (spec::spec_md5(Some(&spec)), spec::spec_fields(&spec))
            }
        };
        Ok(CreateSoftwareEnv {
            name: self.name.known().cloned().unwrap_or_default(),
            container: self.container.known().cloned(),
            force_rebuild: false,
            md5,
            use_entrypoint: self.use_entrypoint.known().copied().unwrap_or(true),
            gpu_enabled: self.gpu_enabled.known().copied().unwrap_or(false),
            architecture: self
                .architecture
                .known()
                .cloned()
                .unwrap_or_else(|| DEFAULT_ARCHITECTURE.into()),
            region_name: self.region_name.known().cloned(),
            enable_experimental_installer: self.use_uv_installer.known().copied().unwrap_or(true),
            lockfile_content: None,
            lockfile_name: None,
            spec: fields,
        })
    }

    /// Whether a plan from `self` to `planned` asks for a new build.
    pub fn spec_changes(&self, planned: &SoftwareEnvModel) -> bool {
        let (a, b) = (self.encode(), planned.encode());
        SPEC_ARGUMENTS
            .iter()
            .any(|k| !a.get(k).unwrap_or(&Value::Null).same_as(b.get(k).unwrap_or(&Value::Null)))
    }
}

/// `Field::Known` of an id.
pub fn id_field(id: Option<i64>) -> Field<String> {
    Field::from_option(id.map(|i| i.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_requests_hash_no_spec() {
        let m = SoftwareEnvModel::decode(&Value::object([
            ("name", Value::string("img")),
            ("container", Value::string("ghcr.io/dask/dask:latest")),
        ]));
        let body = serde_json::to_value(m.request().unwrap()).unwrap();
        assert_eq!(body["md5"], "37a6259cc0c1dae299a7866489dff0bd");
        assert_eq!(body["architecture"], "x86_64");
        assert!(body.get("packages").is_none(), "a container sends no spec keys");
    }

    #[test]
    fn marks_round_trip_and_vanish_when_empty() {
        assert!(Marks::default().write().is_empty());
        let m = Marks { latest_spec: Some(9), ..Marks::default() };
        assert_eq!(Marks::read(&m.write()), m);
    }
}
