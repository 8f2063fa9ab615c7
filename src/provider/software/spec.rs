//! The package spec `coiled.create_software_environment(conda=..., pip=...)` sends, built as the
//! client builds it (`create_env_spec`, `parse_conda`, `parse_pip` in `coiled/software.py`,
//! `parse_conda_channel` in `coiled/types.py`), and its `md5` (`md5(json.dumps(spec,
//! sort_keys=True))` in `Cloud._create_software_environment_v2`).
//!
//! What the client reads from the machine it runs on, the provider does not: it sends no
//! credentials from `~/.netrc` or a keyring in channel and index URLs, uses
//! `https://pypi.org/simple` as the index where the client asks `pip config`, takes the Python
//! version of a spec without conda packages from `python_version` instead of the local interpreter,
//! and sends conda package names as written where the client maps some of them to PyPI names with
//! its table (`coiled/pypi_conda_map.py`).

use serde_json::{Map, Value as Json, json};

/// conda-forge, the channel of a spec that names none.
pub const CONDA_FORGE: &str = "https://conda.anaconda.org/conda-forge";
pub const ANACONDA_MAIN: &str = "https://repo.anaconda.com/pkgs/main";
/// The index the client uses when pip configures none.
pub const PYPI: &str = "https://pypi.org/simple";

/// conda's platform subdirectories, stripped from channel names as the client strips them.
const KNOWN_SUBDIRS: &[&str] = &[
    "noarch",
    "emscripten-wasm32",
    "wasi-wasm32",
    "freebsd-64",
    "linux-32",
    "linux-64",
    "linux-aarch64",
    "linux-armv6l",
    "linux-armv7l",
    "linux-ppc64",
    "linux-ppc64le",
    "linux-riscv64",
    "linux-s390x",
    "osx-64",
    "osx-arm64",
    "win-32",
    "win-64",
    "win-arm64",
    "zos-z",
];

/// The `conda` block.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Conda {
    /// Channels, conda-forge when absent.
    pub channels: Option<Vec<String>>,
    /// Package specs, e.g. `numpy>=1.26` or `conda-forge::xarray`.
    pub dependencies: Vec<String>,
}

/// What a spec is built from.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SpecInput {
    pub conda: Option<Conda>,
    /// pip requirement lines.
    pub pip: Option<Vec<String>>,
    /// The Python of a spec without conda packages.
    pub python_version: Option<String>,
}

/// The URL of a conda channel (`parse_conda_channel(name, channel, "noarch")[1]`).
pub fn channel_url(channel: &str) -> String {
    let kept: Vec<&str> = channel
        .split('/')
        .filter(|seg| !KNOWN_SUBDIRS.iter().any(|s| s.eq_ignore_ascii_case(seg)))
        .collect();
    let channel = kept.join("/");
    if channel.starts_with("http:") || channel.starts_with("https:") || channel.starts_with("file:")
    {
        return channel;
    }
    let domain = if channel.starts_with("pkgs/") {
        "repo.anaconda.com"
    } else if channel.starts_with("repo/") {
        "repo.anaconda.cloud"
    } else {
        "conda.anaconda.org"
    };
    format!("https://{domain}/{channel}")
}

fn package(
    name: &str,
    source: &str,
    channel: Option<String>,
    conda_name: Option<&str>,
    specifier: &str,
) -> Json {
    json!({"name": name, "source": source, "channel": channel, "conda_name": conda_name, "client_version": null,
        "include": true, "specifier": specifier, "file": null})
}

/// `parse_conda`: the packages, `raw_conda`, and pip lines (none: dependencies here are strings).
fn parse_conda(conda: &Conda) -> (Vec<Json>, Vec<String>, Vec<String>) {
    let given = conda.channels.clone().unwrap_or_else(|| vec![CONDA_FORGE.to_string()]);
    let mut channels: Vec<String> = given.iter().map(|c| channel_url(c)).collect();
    let mut packages = Vec::new();
    for dep in &conda.dependencies {
        let (channel, bare) =
            dep.split_once("::").map_or((None, dep.as_str()), |(c, d)| (Some(c), d));
        let split = bare
            .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
            .unwrap_or(bare.len());
        if split == 0 {
            continue;
        }
        let (name, specifier) = bare.split_at(split);
        let channel = channel.map(|c| {
            let url = channel_url(c);
            channels.push(url.clone());
            url
        });
        packages.push(package(name, "conda", channel, Some(name), specifier));
    }
    let mut seen = std::collections::HashSet::new();
    channels.retain(|c| seen.insert(c.clone()));
    (packages, channels, Vec::new())
}

/// One pip requirement line, read as `pip_requirements_parser` reads it for the client.
enum PipLine {
    /// Nothing (a blank line or a comment).
    Nothing,
    /// An option such as `--extra-index-url URL`: kept, before the requirements.
    Option(String),
    /// Kept as written, no package (a VCS URL).
    Raw(String),
    /// Dropped with a warning (editable or local requirements).
    Ignored(String),
    /// A named requirement: the line, the name and the specifier.
    Requirement(String, String, String),
}

fn read_pip_line(line: &str) -> PipLine {
    let line = line.split_once(" #").map_or(line, |(l, _)| l).trim();
    if line.is_empty() || line.starts_with('#') {
        return PipLine::Nothing;
    }
    if line.starts_with("-e ") || line.starts_with("--editable") {
        return PipLine::Ignored(line.to_string());
    }
    if line.starts_with('-') {
        return PipLine::Option(line.to_string());
    }
    if ["git+", "hg+", "svn+", "bzr+"].iter().any(|p| line.starts_with(p)) {
        return PipLine::Raw(line.to_string());
    }
    if line.starts_with('.')
        || line.starts_with('/')
        || line.starts_with("file:")
        || line.contains(" @ ")
        || line.contains("://")
    {
        return PipLine::Ignored(line.to_string());
    }
    let split = line
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')))
        .unwrap_or(line.len());
    let name = &line[..split];
    let mut rest = &line[split..];
    if rest.trim_start().starts_with('[') {
        rest = rest.split_once(']').map_or("", |(_, r)| r);
    }
    let spec = rest.split(';').next().unwrap_or_default();
    let specifier: String = spec
        .split(',')
        .map(|s| s.chars().filter(|c| !c.is_whitespace()).collect::<String>())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(",");
    PipLine::Requirement(line.to_string(), name.to_string(), specifier)
}

/// `parse_pip`: the packages, the raw lines (options first), and the lines dropped.
fn parse_pip(lines: &[String]) -> (Vec<Json>, Vec<String>, Vec<String>) {
    let (mut options, mut raw, mut packages, mut ignored) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for line in lines.iter().flat_map(|l| l.lines()) {
        match read_pip_line(line) {
            PipLine::Nothing => {}
            PipLine::Option(l) => options.push(l),
            PipLine::Raw(l) => raw.push(l),
            PipLine::Ignored(l) => ignored.push(l),
            PipLine::Requirement(l, name, specifier) => {
                raw.push(l);
                packages.push(package(&name, "pip", None, None, &specifier));
            }
        }
    }
    options.extend(raw);
    (packages, options, ignored)
}

/// The spec the client sends for `input` and the pip lines it would ignore, or what is missing.
pub fn env_spec(input: &SpecInput) -> Result<(Json, Vec<String>), String> {
    let pip = input.pip.as_ref().filter(|p| !p.is_empty());
    let conda = input.conda.as_ref().filter(|c| !c.dependencies.is_empty());
    if conda.is_none() && pip.is_none() {
        return Err(
            "at least one of `conda` (with dependencies) and `pip` must list packages".into()
        );
    }
    let (mut packages, mut channels, mut dependencies, mut raw_pip) = if let Some(conda) = conda {
        let (packages, channels, raw_pip) = parse_conda(conda);
        (packages, channels, conda.dependencies.clone(), Some(raw_pip))
    } else {
        let Some(python) = input.python_version.as_deref() else {
            return Err("a spec without conda packages needs `python_version`: Coiled's client \
                takes it from the local Python, which Terraform has not"
                .into());
        };
        let python_package =
            package("python", "conda", None, Some("python"), &format!("=={python}"));
        let channels = vec![CONDA_FORGE.to_string(), ANACONDA_MAIN.to_string()];
        (vec![python_package], channels, vec![format!("python=={python}")], None)
    };
    let mut ignored = Vec::new();
    if let Some(pip) = pip {
        let (p, lines, dropped) = parse_pip(pip);
        packages.extend(p);
        ignored = dropped;
        let mut all = raw_pip.take().unwrap_or_default();
        all.extend(lines);
        // The index URLs the lines name follow the default index, once each; then the other lines.
        let mut indexes = vec![PYPI.to_string()];
        for line in &all {
            if (line.starts_with("--index-url") || line.starts_with("--extra-index-url"))
                && let Some((_, url)) = line.split_once([' ', '='])
                && !indexes.iter().any(|i| i == url.trim())
            {
                indexes.push(url.trim().to_string());
            }
        }
        let mut out = vec![format!("--index-url {}", indexes[0])];
        out.extend(indexes[1..].iter().map(|u| format!("--extra-index-url {u}")));
        out.extend(
            all.into_iter()
                .filter(|l| !l.starts_with("--index-url") && !l.starts_with("--extra-index-url")),
        );
        raw_pip = Some(out);
    }
    let conda_pip = packages.iter().any(|p| p["name"] == "pip" && p["source"] == "conda");
    let pip_packages = packages.iter().any(|p| p["source"] == "pip");
    if !conda_pip && pip_packages {
        dependencies.push("pip".into());
        if !channels.iter().any(|c| {
            c.trim_end_matches('/').ends_with("/pkgs/main")
                || c.trim_end_matches('/').ends_with("/conda-forge")
        }) {
            channels.push(ANACONDA_MAIN.into());
        }
        packages.push(package("pip", "conda", None, Some("pip"), ""));
    }
    let spec = json!({
        "packages": packages,
        "raw_conda": {"channels": channels, "dependencies": dependencies},
        "raw_pip": raw_pip,
        "lockfile_name": null,
        "lockfile_content": null,
    });
    Ok((spec, ignored))
}

/// `json.dumps(value, sort_keys=True)` as Python writes it: `", "` and `": "` separators, non-ASCII
/// characters escaped.
pub fn python_dumps(value: &Json) -> String {
    let mut out = String::new();
    dump(value, &mut out);
    out
}

fn dump(value: &Json, out: &mut String) {
    match value {
        Json::Object(map) => {
            out.push('{');
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                dump_str(k, out);
                out.push_str(": ");
                dump(&map[k], out);
            }
            out.push('}');
        }
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                dump(item, out);
            }
            out.push(']');
        }
        Json::String(s) => dump_str(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn dump_str(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The `md5` the client sends: of `json.dumps(spec, sort_keys=True)`, or of `null` without a spec.
pub fn spec_md5(spec: Option<&Json>) -> String {
    use md5::{Digest, Md5};
    let text = spec.map_or_else(|| "null".to_string(), python_dumps);
    Md5::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// The spec's keys as the request carries them.
pub fn spec_fields(spec: &Json) -> Map<String, Json> {
    let mut fields = Map::new();
    for key in ["packages", "raw_conda", "raw_pip"] {
        fields.insert(key.into(), spec.get(key).cloned().unwrap_or(Json::Null));
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conda(channels: Option<&[&str]>, deps: &[&str]) -> Option<Conda> {
        Some(Conda {
            channels: channels.map(|c| c.iter().map(|s| s.to_string()).collect()),
            dependencies: deps.iter().map(|s| s.to_string()).collect(),
        })
    }

    /// The spec made for `input`, as Python's `json.dumps` writes it.
    fn dumps(input: &SpecInput) -> String {
        python_dumps(&env_spec(input).unwrap().0)
    }

    /// Each expected text is `json.dumps(await create_env_spec(...), sort_keys=True)` from coiled
    /// 1.135.6 (Python 3.11, no pip configuration).
    #[test]
    fn specs_match_the_client() {
        let deps = ["python=3.11", "numpy>=1.26", "conda-forge::xarray", "pip"];
        let input = SpecInput {
            conda: conda(Some(&["conda-forge"]), &deps),
            pip: Some(vec!["requests".into()]),
            python_version: None,
        };
        assert_eq!(
            dumps(&input),
            r#"{"lockfile_content": null, "lockfile_name": null, "packages": [{"channel": null, "client_version": null, "conda_name": "python", "file": null, "include": true, "name": "python", "source": "conda", "specifier": "=3.11"}, {"channel": null, "client_version": null, "conda_name": "numpy", "file": null, "include": true, "name": "numpy", "source": "conda", "specifier": ">=1.26"}, {"channel": "https://conda.anaconda.org/conda-forge", "client_version": null, "conda_name": "xarray", "file": null, "include": true, "name": "xarray", "source": "conda", "specifier": ""}, {"channel": null, "client_version": null, "conda_name": "pip", "file": null, "include": true, "name": "pip", "source": "conda", "specifier": ""}, {"channel": null, "client_version": null, "conda_name": null, "file": null, "include": true, "name": "requests", "source": "pip", "specifier": ""}], "raw_conda": {"channels": ["https://conda.anaconda.org/conda-forge"], "dependencies": ["python=3.11", "numpy>=1.26", "conda-forge::xarray", "pip"]}, "raw_pip": ["--index-url https://pypi.org/simple", "requests"]}"#
        );
        assert_eq!(
            dumps(&SpecInput { conda: conda(None, &["numpy"]), ..Default::default() }),
            r#"{"lockfile_content": null, "lockfile_name": null, "packages": [{"channel": null, "client_version": null, "conda_name": "numpy", "file": null, "include": true, "name": "numpy", "source": "conda", "specifier": ""}], "raw_conda": {"channels": ["https://conda.anaconda.org/conda-forge"], "dependencies": ["numpy"]}, "raw_pip": []}"#
        );
        let pip_only = SpecInput {
            pip: Some(vec!["dask".into()]),
            python_version: Some("3.11.7".into()),
            ..Default::default()
        };
        assert_eq!(
            dumps(&pip_only),
            r#"{"lockfile_content": null, "lockfile_name": null, "packages": [{"channel": null, "client_version": null, "conda_name": "python", "file": null, "include": true, "name": "python", "source": "conda", "specifier": "==3.11.7"}, {"channel": null, "client_version": null, "conda_name": null, "file": null, "include": true, "name": "dask", "source": "pip", "specifier": ""}, {"channel": null, "client_version": null, "conda_name": "pip", "file": null, "include": true, "name": "pip", "source": "conda", "specifier": ""}], "raw_conda": {"channels": ["https://conda.anaconda.org/conda-forge", "https://repo.anaconda.com/pkgs/main"], "dependencies": ["python==3.11.7", "pip"]}, "raw_pip": ["--index-url https://pypi.org/simple", "dask"]}"#
        );
    }

    #[test]
    fn pip_lines_read_as_the_client_reads_them() {
        let lines: Vec<String> = [
            "dask[complete]>=2024.1,<2025",
            "--extra-index-url https://x.example/simple",
            "git+https://github.com/a/b.git",
            "pandas ; python_version>'3'",
            "dask >= 1.0 , < 2 # c",
            "-e ./x",
            "./local",
            "# c",
            "",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (packages, raw, ignored) = parse_pip(&lines);
        let specs: Vec<(&str, &str)> = packages
            .iter()
            .map(|p| (p["name"].as_str().unwrap(), p["specifier"].as_str().unwrap()))
            .collect();
        assert_eq!(specs, [("dask", ">=2024.1,<2025"), ("pandas", ""), ("dask", ">=1.0,<2")]);
        assert_eq!(
            raw,
            [
                "--extra-index-url https://x.example/simple",
                "dask[complete]>=2024.1,<2025",
                "git+https://github.com/a/b.git",
                "pandas ; python_version>'3'",
                "dask >= 1.0 , < 2"
            ]
        );
        assert_eq!(ignored, ["-e ./x", "./local"]);
    }

    #[test]
    fn channels_become_urls() {
        assert_eq!(channel_url("conda-forge"), CONDA_FORGE);
        assert_eq!(channel_url("pkgs/main"), ANACONDA_MAIN);
        assert_eq!(channel_url("conda-forge/linux-64"), CONDA_FORGE);
        assert_eq!(channel_url("https://prefix.dev/x"), "https://prefix.dev/x");
    }

    #[test]
    fn md5_of_python_json() {
        // `md5(json.dumps(None).encode()).hexdigest()`.
        assert_eq!(spec_md5(None), "37a6259cc0c1dae299a7866489dff0bd");
        assert_eq!(
            python_dumps(&json!({"b": "é", "a": [1, null]})),
            r#"{"a": [1, null], "b": "\u00e9"}"#
        );
    }

    #[test]
    fn a_spec_needs_packages_and_a_python() {
        assert!(env_spec(&SpecInput::default()).unwrap_err().contains("at least one"));
        let pip_only = SpecInput { pip: Some(vec!["dask".into()]), ..Default::default() };
        assert!(env_spec(&pip_only).unwrap_err().contains("python_version"));
    }
}
