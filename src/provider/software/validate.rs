//! Checks of a `coiled_software_environment` configuration that need no API call; unknown values
//! are judged at apply.

use tfplugin::diag::Diagnostics;
use tfplugin::value::{AttrPath, Value};

use super::model::SoftwareEnvModel;

/// The checks beyond those each attribute declares.
pub(super) fn validate_config(config: &Value, diags: &mut Diagnostics) {
    SoftwareEnvModel::check_values(config, diags);
    image_or_packages(&SoftwareEnvModel::decode(config), diags);
}

/// Why a new environment needs an image or packages.
pub(super) const MISSING_SPEC: &str = "Set `container` (an image), or packages in `conda` and/or \
    `pip`: a new environment is built from them. (Without any, the resource only keeps an \
    existing environment, such as an imported one, as it is.)";

/// Whether Coiled's client accepts `name` for a new environment.
pub fn valid_env_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// `container`, or packages (`conda`, `pip`), not both; each list well formed.
fn image_or_packages(c: &SoftwareEnvModel, diags: &mut Diagnostics) {
    let packages = !c.conda.is_null() || !c.pip.is_null();
    if !c.container.is_null() && packages {
        let at = if c.conda.is_null() { "pip" } else { "conda" };
        diags.error_at(
            AttrPath::attr(at),
            "Conflicting Software Spec",
            "Set `container`, or `conda` and `pip` packages, not both: Coiled's build backend \
                does not support specifying both packages and a container.",
        );
        return;
    }
    // Neither: an environment whose contents are kept as they are (imported); a create is refused
    // at plan time (see `MISSING_SPEC`).
    if let Some(image) = c.container.known()
        && (image.trim().is_empty() || image.chars().any(char::is_whitespace))
    {
        diags.error_at(
            AttrPath::attr("container"),
            "Invalid Container Image",
            format!("{image:?} is not an image reference."),
        );
    }
    let channels = c.conda.known().and_then(|conda| conda.channels.known());
    for (i, channel) in channels.into_iter().flatten().enumerate() {
        if channel.trim().is_empty() || channel.chars().any(char::is_whitespace) {
            diags.error_at(
                AttrPath::attr("conda").then("channels").index(i),
                "Invalid conda Channel",
                format!(
                    "{channel:?} is not a conda channel: name one (`conda-forge`) or give its URL."
                ),
            );
        }
    }
    if let Some(conda) = c.conda.known()
        && let Some(deps) = conda.dependencies.known()
    {
        if deps.is_empty() {
            diags.error_at(
                AttrPath::attr("conda").then("dependencies"),
                "No conda Dependencies",
                "List at least one conda package (Coiled's client refuses a conda spec without \
                    dependencies).",
            );
        }
        for (i, d) in deps.iter().enumerate() {
            if d.trim().is_empty()
                || d.trim_start().starts_with(|ch: char| !(ch.is_ascii_alphanumeric() || ch == '_'))
                    && !d.contains("::")
            {
                diags.error_at(
                    AttrPath::attr("conda").then("dependencies").index(i),
                    "Invalid conda Package",
                    format!("{d:?} is not a conda package spec such as \"numpy>=1.26\"."),
                );
            }
        }
    }
    if let Some(lines) = c.pip.known()
        && lines.iter().all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
    {
        diags.error_at(
            AttrPath::attr("pip"),
            "No pip Requirements",
            "List at least one pip requirement, or leave `pip` out.",
        );
    }
    if c.conda.is_null() && !c.pip.is_null() && c.python_version.is_null() {
        diags.error_at(
            AttrPath::attr("python_version"),
            "Missing Python Version",
            "An environment with only pip packages needs `python_version` (e.g. \"3.12\"): \
                Coiled's client takes it from the local Python, which a plan must not depend on. \
                Or list `python` in `conda`.",
        );
    }
    // With conda packages, the spec's Python is conda's: a version here would change nothing built.
    if !c.conda.is_null() && !c.python_version.is_null() {
        diags.error_at(
            AttrPath::attr("python_version"),
            "Python Version Set With Conda",
            "`python_version` is for an environment without conda packages; with `conda`, list \
                `python` among its dependencies (e.g. \"python=3.12\") and leave `python_version` \
                out.",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What validation reports: the checks the attributes declare, then the resource's.
    fn errors(config: Value) -> Vec<String> {
        let mut d = Diagnostics::new();
        let block = SoftwareEnvModel::schema_block("");
        block.check_declared(&config, &AttrPath::root(), &mut d);
        validate_config(&config, &mut d);
        d.0.iter()
            .map(|x| {
                let at = x.path.as_ref().map(|p| p.to_string()).unwrap_or_default();
                format!("{at}: {}", x.summary)
            })
            .collect()
    }

    /// An environment named `x` with `attrs`.
    fn env<const N: usize>(attrs: [(&str, Value); N]) -> Value {
        Value::object([("name", Value::string("x"))].into_iter().chain(attrs))
    }

    /// A list of strings.
    fn list(items: &[&str]) -> Value {
        Value::List(items.iter().map(|s| Value::string(*s)).collect())
    }

    #[test]
    fn bad_specs_are_refused_at_their_attribute() {
        let both = errors(env([
            ("container", Value::string("img")),
            ("conda", Value::object([("dependencies", list(&["numpy"]))])),
        ]));
        assert_eq!(both, ["conda: Conflicting Software Spec"]);
        assert!(errors(env([])).is_empty(), "an environment kept as it is");
        let pip_only = errors(env([("pip", list(&["dask"]))]));
        assert_eq!(pip_only, ["python_version: Missing Python Version"]);
        let bad = errors(Value::object([
            ("name", Value::string("My Env")),
            ("container", Value::string("img")),
            ("architecture", Value::string("arm")),
        ]));
        assert_eq!(
            bad,
            ["name: Invalid Software Environment Name", "architecture: Invalid Architecture"]
        );
        let empty = errors(env([("conda", Value::object([("dependencies", list(&[]))]))]));
        assert_eq!(empty, ["conda.dependencies: No conda Dependencies"]);
    }

    #[test]
    fn empty_values_are_refused_where_they_are() {
        let conda = Value::object([
            ("channels", list(&["conda-forge", ""])),
            ("dependencies", list(&["numpy"])),
        ]);
        let got = errors(env([("conda", conda), ("region_name", Value::string(" "))]));
        assert_eq!(got, ["region_name: Empty Value", "conda.channels[1]: Invalid conda Channel"]);
    }

    #[test]
    fn unknown_values_wait_for_apply() {
        assert!(
            errors(Value::object([("name", Value::Unknown), ("container", Value::Unknown)]))
                .is_empty()
        );
    }
}
