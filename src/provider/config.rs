//! Where the provider's server, token and workspace come from, in order of precedence:
//! the provider block, then `COILED_*` variables, then the Coiled client's own `DASK_COILED__*`
//! variables, then the Coiled client's config file (`~/.config/dask/coiled.yaml`), then defaults.
//! Pure functions over an explicit environment, so every rule has a table test.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::api::Secret;

/// The default Coiled control plane.
pub const DEFAULT_SERVER: &str = "https://cloud.coiled.io";

/// The environment the settings are resolved from (a snapshot, so tests need not touch the
/// process).
#[derive(Clone, Debug, Default)]
pub struct Env {
    pub vars: HashMap<String, String>,
    /// The Coiled config file's `coiled:` section, when the file exists and parses.
    pub file: Option<serde_norway::Value>,
    /// The path the config file was looked for at (for messages).
    pub file_path: Option<PathBuf>,
}

impl Env {
    /// Reads the process environment and the Coiled config file; a file that exists but cannot be
    /// read or parsed is an error naming it, since silently ignoring it loses the token it holds.
    pub fn from_process() -> Result<Env, String> {
        let vars: HashMap<String, String> = std::env::vars().collect();
        let file_path = config_file_path(&vars);
        let file = match &file_path {
            Some(path) => read_config_file(path)?,
            None => None,
        };
        Ok(Env { vars, file, file_path })
    }

    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).map(|s| s.trim().to_string()).filter(|s| !s.is_empty())
    }

    /// The config file's path, as messages name it.
    pub(crate) fn file_shown(&self) -> String {
        let path = self.file_path.as_ref().map(|p| p.display().to_string());
        path.unwrap_or_else(|| "~/.config/dask/coiled.yaml".into())
    }

    fn file_key(&self, key: &str) -> Option<String> {
        match self.file.as_ref()?.get(key)? {
            serde_norway::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            _ => None,
        }
    }
}

/// The `coiled:` section of the Coiled config file at `path`, `None` when the file does not exist.
fn read_config_file(path: &std::path::Path) -> Result<Option<serde_norway::Value>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(format!(
                "Cannot read the Coiled configuration file {}: {e}.",
                path.display()
            ));
        }
    };
    parse_config_file(&text).map_err(|e| {
        format!(
            "The Coiled configuration file {} is not valid YAML: {e}. Fix or remove it (`coiled \
                login` writes a new one), or set the token with the provider's `token` argument \
                or COILED_TOKEN.",
            path.display()
        )
    })
}

/// The `coiled:` section of a config file's text (`None` when it has none).
pub fn parse_config_file(text: &str) -> Result<Option<serde_norway::Value>, String> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let doc: serde_norway::Value = serde_norway::from_str(text).map_err(|e| e.to_string())?;
    match &doc {
        serde_norway::Value::Null => Ok(None),
        serde_norway::Value::Mapping(_) => Ok(doc.get("coiled").cloned()),
        _ => Err("the file is not a mapping of settings".into()),
    }
}

/// `$DASK_CONFIG/coiled.yaml` when `DASK_CONFIG` is set, else `~/.config/dask/coiled.yaml`.
fn config_file_path(vars: &HashMap<String, String>) -> Option<PathBuf> {
    if let Some(dir) = vars.get("DASK_CONFIG").filter(|s| !s.is_empty()) {
        return Some(PathBuf::from(dir).join("coiled.yaml"));
    }
    vars.get("HOME")
        .filter(|s| !s.is_empty())
        .map(|h| PathBuf::from(h).join(".config/dask/coiled.yaml"))
}

/// A setting and where it came from (shown in logs and messages, never with a secret's value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sourced<T> {
    pub value: T,
    /// Where it was found, e.g. `the COILED_TOKEN environment variable`.
    pub source: String,
}

#[derive(Clone, Debug)]
pub struct Settings {
    /// The control plane's base URL, normalised.
    pub server: Sourced<String>,
    /// The API token, if found anywhere.
    pub token: Option<Sourced<Secret>>,
    /// The workspace, if named anywhere (otherwise the API's default is used).
    pub workspace: Option<Sourced<String>>,
}

/// The places a token is looked for, in order, for error messages.
pub const TOKEN_PLACES: &str = "the provider's `token` argument, the COILED_TOKEN environment \
    variable, the DASK_COILED__TOKEN environment variable, or `coiled.token` in \
    ~/.config/dask/coiled.yaml (written by `coiled login`)";

fn first<T>(candidates: Vec<(Option<T>, String)>) -> Option<Sourced<T>> {
    candidates.into_iter().find_map(|(v, source)| v.map(|value| Sourced { value, source }))
}

/// Resolves the settings from the provider block's values (`None` when unset) and the environment.
pub fn resolve(
    server: Option<&str>,
    token: Option<&str>,
    workspace: Option<&str>,
    env: &Env,
) -> Settings {
    let file = env.file_shown();
    let nonempty = |s: Option<&str>| s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
    let server = first(vec![
        (nonempty(server), "the provider's `server` argument".into()),
        (env.var("COILED_SERVER"), "the COILED_SERVER environment variable".into()),
        (env.var("DASK_COILED__SERVER"), "the DASK_COILED__SERVER environment variable".into()),
        (env.file_key("server"), format!("`coiled.server` in {file}")),
    ])
    .unwrap_or(Sourced { value: DEFAULT_SERVER.to_string(), source: "the default".into() });
    let token = first(vec![
        (nonempty(token), "the provider's `token` argument".into()),
        (env.var("COILED_TOKEN"), "the COILED_TOKEN environment variable".into()),
        (env.var("DASK_COILED__TOKEN"), "the DASK_COILED__TOKEN environment variable".into()),
        (env.file_key("token"), format!("`coiled.token` in {file}")),
    ])
    .map(|s| Sourced { value: Secret::new(s.value), source: s.source });
    let workspace = first(vec![
        (nonempty(workspace), "the provider's `workspace` argument".into()),
        (env.var("COILED_WORKSPACE"), "the COILED_WORKSPACE environment variable".into()),
        (
            env.var("DASK_COILED__WORKSPACE"),
            "the DASK_COILED__WORKSPACE environment variable".into(),
        ),
        (env.var("DASK_COILED__ACCOUNT"), "the DASK_COILED__ACCOUNT environment variable".into()),
        (env.file_key("workspace"), format!("`coiled.workspace` in {file}")),
        (env.file_key("account"), format!("`coiled.account` in {file}")),
    ]);
    Settings {
        server: Sourced { value: normalize_server(&server.value), source: server.source },
        token,
        workspace,
    }
}

/// Normalises a server URL as the Coiled client does: `http://` is added when no scheme is given,
/// trailing slashes are removed, and retired hostnames map to the current default.
pub fn normalize_server(raw: &str) -> String {
    let raw = raw.trim();
    let with_scheme = if raw.contains("://") { raw.to_string() } else { format!("http://{raw}") };
    let trimmed = with_scheme.trim_end_matches('/').to_string();
    for old in ["beta.coiledhq.com", "beta.coiled.io"] {
        if trimmed.ends_with(old) && trimmed.split("://").nth(1) == Some(old) {
            return DEFAULT_SERVER.to_string();
        }
    }
    trimmed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)], file: Option<&str>) -> Env {
        Env {
            vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            file: file.map(|f| {
                serde_norway::from_str::<serde_norway::Value>(f)
                    .unwrap()
                    .get("coiled")
                    .cloned()
                    .unwrap()
            }),
            file_path: Some(PathBuf::from("/home/u/.config/dask/coiled.yaml")),
        }
    }

    #[test]
    #[allow(clippy::type_complexity)]
    fn precedence_table() {
        let file = "coiled:\n  server: http://file:1\n  token: file-token\n  account: file-acct\n";
        let cases: Vec<(&str, Option<&str>, Env, (&str, Option<&str>, Option<&str>))> = vec![
            (
                "attribute wins",
                Some("http://attr"),
                env(&[("COILED_SERVER", "http://env"), ("COILED_TOKEN", "t-env")], Some(file)),
                ("http://attr", Some("t-env"), Some("file-acct")),
            ),
            (
                "COILED_ before DASK_",
                None,
                env(
                    &[
                        ("COILED_SERVER", "http://a"),
                        ("DASK_COILED__SERVER", "http://b"),
                        ("DASK_COILED__TOKEN", "dask-t"),
                    ],
                    None,
                ),
                ("http://a", Some("dask-t"), None),
            ),
            (
                "DASK_ before file",
                None,
                env(
                    &[("DASK_COILED__SERVER", "http://b"), ("DASK_COILED__ACCOUNT", "acct")],
                    Some(file),
                ),
                ("http://b", Some("file-token"), Some("acct")),
            ),
            (
                "file alone",
                None,
                env(&[], Some(file)),
                ("http://file:1", Some("file-token"), Some("file-acct")),
            ),
            ("nothing", None, env(&[], None), (DEFAULT_SERVER, None, None)),
            (
                "empty values are unset",
                Some(""),
                env(&[("COILED_SERVER", " ")], None),
                (DEFAULT_SERVER, None, None),
            ),
        ];
        for (name, attr_server, env, (server, token, ws)) in cases {
            let s = resolve(attr_server, None, None, &env);
            assert_eq!(s.server.value, server, "{name}: server");
            assert_eq!(s.token.as_ref().map(|t| t.value.expose()), token, "{name}: token");
            assert_eq!(s.workspace.as_ref().map(|w| w.value.as_str()), ws, "{name}: workspace");
        }
    }

    #[test]
    fn workspace_prefers_workspace_over_account() {
        let e = env(
            &[("DASK_COILED__WORKSPACE", "ws"), ("DASK_COILED__ACCOUNT", "acct")],
            Some("coiled:\n  workspace: fw\n"),
        );
        assert_eq!(resolve(None, None, None, &e).workspace.unwrap().value, "ws");
        let e = env(&[], Some("coiled:\n  workspace: fw\n  account: fa\n"));
        assert_eq!(resolve(None, None, None, &e).workspace.unwrap().value, "fw");
        assert_eq!(
            resolve(None, None, Some("attr"), &e).workspace.unwrap().source,
            "the provider's `workspace` argument"
        );
    }

    #[test]
    fn malformed_config_files_are_errors() {
        assert!(parse_config_file("coiled:\n  token: [unclosed\n").is_err());
        assert!(parse_config_file("just a string").is_err());
        assert_eq!(parse_config_file("").unwrap(), None);
        assert!(parse_config_file("coiled:\n  token: abc\n").unwrap().is_some());
    }

    #[test]
    fn servers_normalise_like_the_coiled_client() {
        assert_eq!(normalize_server("127.0.0.1:8000/"), "http://127.0.0.1:8000");
        assert_eq!(normalize_server("https://cloud.coiled.io/"), "https://cloud.coiled.io");
        assert_eq!(normalize_server("https://beta.coiled.io"), DEFAULT_SERVER);
    }

    #[test]
    fn token_source_is_named_but_value_is_not_printed() {
        let s = resolve(None, Some("abc-123"), None, &env(&[], None));
        let t = s.token.unwrap();
        assert_eq!(t.source, "the provider's `token` argument");
        assert!(!format!("{:?}", t.value).contains("abc-123"));
    }
}
