//! Software environments in storage: an alias (workspace and name) with its builds, the newest being
//! its latest spec. A build is `queued` for a quarter of the build time, `building` until it ends, then
//! `built` or `error`; its log grows as it goes.
//!
//! What the public client shows of the real service is the alias `{id, name, latest_spec: {id,
//! latest_build: {id, state}}}`, the build `{state, reason}` and the log page `{events: [{eventId,
//! message}], nextToken}`. Everything else here is `coiled-local`'s own: one spec per build (the spec's
//! id is its build's), the log lines, and when a new build is made (below).

use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};

use crate::recorder::hide_url_credentials as hidden;
use crate::store::{Store, StoreError};
use crate::unix_now;

/// The tables, made when the store opens.
pub(crate) const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS software_aliases(id INTEGER PRIMARY KEY AUTOINCREMENT, workspace TEXT NOT NULL,
  name TEXT NOT NULL, UNIQUE(workspace, name));
CREATE TABLE IF NOT EXISTS software_builds(id INTEGER PRIMARY KEY AUTOINCREMENT, alias_id INTEGER NOT NULL, signature TEXT NOT NULL,
  spec TEXT NOT NULL, started REAL NOT NULL, built_at REAL NOT NULL, failed TEXT);";

/// Marks a build that fails: an image reference or a package (conda or pip) that contains it.
pub const FAIL_BUILD: &str = "coiled-local-fail-build";

/// One build (the spec it builds shares its id).
#[derive(Clone, Debug)]
pub struct Build {
    /// Id.
    pub id: i64,
    /// The alias it belongs to.
    pub alias_id: i64,
    /// The environment's name.
    pub name: String,
    /// What was asked for (the request body, as sent).
    pub spec: Value,
    /// What makes two requests the same environment.
    pub signature: String,
    /// When it was asked for.
    pub started: f64,
    /// When it ends.
    pub built_at: f64,
    /// Why it fails, if it does.
    pub failed: Option<String>,
}

impl Build {
    /// `queued`, `building`, `built` or `error`, the client's build states.
    pub fn state(&self) -> &'static str {
        let now = unix_now();
        let queued_until = self.started + (self.built_at - self.started) / 4.0;
        match (&self.failed, now) {
            (_, t) if t < queued_until => "queued",
            (_, t) if t < self.built_at => "building",
            (Some(_), _) => "error",
            (None, _) => "built",
        }
    }

    /// The build as `GET …/build/{id}` answers it.
    pub fn to_json(&self) -> Value {
        let state = self.state();
        json!({"id": self.id, "state": state, "reason": if state == "error" { self.failed.clone() } else { None }})
    }

    /// The log lines written so far.
    pub fn log(&self) -> Vec<String> {
        let mut lines = vec![format!(
            "coiled-local: build {} of software environment {:?} queued",
            self.id, self.name
        )];
        let state = self.state();
        if state == "queued" {
            return lines;
        }
        let text = |key: &str| self.spec.get(key).and_then(Value::as_str).map(str::to_string);
        if let Some(image) = text("container") {
            lines.push(format!("Pulling image {image}"));
        } else {
            let list = |v: Option<&Value>| {
                v.and_then(Value::as_array).map(|a| {
                    a.iter()
                        .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                        .collect::<Vec<_>>()
                })
            };
            let conda = self.spec.get("raw_conda");
            let channels = list(conda.and_then(|c| c.get("channels"))).unwrap_or_default();
            let channels = channels.iter().map(|c| hidden(c)).collect::<Vec<_>>();
            lines.push(format!("Solving conda environment (channels: {})", channels.join(", ")));
            for dep in list(conda.and_then(|c| c.get("dependencies"))).unwrap_or_default() {
                lines.push(format!("  conda: {}", hidden(&dep)));
            }
            for line in list(self.spec.get("raw_pip")).unwrap_or_default() {
                lines.push(format!("  pip: {}", hidden(&line)));
            }
        }
        match (state, &self.failed) {
            ("building", _) => {}
            (_, Some(why)) => {
                lines.push(format!("error: {why}"));
                lines.push("Build failed".into());
            }
            _ => lines.push("Build successful".into()),
        }
        lines
    }
}

/// Why a build of `spec` fails, when it asks for the marker.
pub fn failure_of(spec: &Value) -> Option<String> {
    if let Some(image) =
        spec.get("container").and_then(Value::as_str).filter(|i| i.contains(FAIL_BUILD))
    {
        return Some(format!(
            "manifest for {image} not found: manifest unknown (coiled-local fails images named \
                {FAIL_BUILD})"
        ));
    }
    let packages = spec.get("packages").and_then(Value::as_array).cloned().unwrap_or_default();
    let named = packages
        .iter()
        .filter_map(|p| p.get("name").and_then(Value::as_str))
        .find(|n| n.contains(FAIL_BUILD));
    let raw = spec
        .get("raw_pip")
        .and_then(Value::as_array)
        .and_then(|l| l.iter().filter_map(Value::as_str).find(|l| l.contains(FAIL_BUILD)));
    named.or(raw).map(|p| {
        let p = hidden(p);
        format!("nothing provides requested {p} (coiled-local fails packages named {FAIL_BUILD})")
    })
}

/// What makes a request the same environment as an earlier build: everything but `force_rebuild`.
pub fn signature(spec: &Value) -> String {
    let mut s = spec.clone();
    if let Some(o) = s.as_object_mut() {
        o.remove("force_rebuild");
        o.remove("name");
    }
    s.to_string()
}

const BUILD_COLUMNS: &str =
    "b.id, b.alias_id, a.name, b.spec, b.signature, b.started, b.built_at, b.failed";

fn build_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Build> {
    let spec: String = r.get(3)?;
    Ok(Build {
        id: r.get(0)?,
        alias_id: r.get(1)?,
        name: r.get(2)?,
        spec: serde_json::from_str(&spec).unwrap_or(Value::Null),
        signature: r.get(4)?,
        started: r.get(5)?,
        built_at: r.get(6)?,
        failed: r.get(7)?,
    })
}

impl Store {
    /// The latest build of `name` in `ws`, if the alias exists (an alias always has one).
    pub fn latest_build(&self, ws: &str, name: &str) -> Result<Option<Build>, StoreError> {
        self.with(|c| {
            c.query_row(
                &format!(
                    "SELECT {BUILD_COLUMNS} FROM software_builds b JOIN software_aliases a \
                    ON a.id = b.alias_id WHERE a.workspace = ?1 AND a.name = ?2 ORDER BY b.id \
                    DESC LIMIT 1"
                ),
                params![ws, name],
                build_row,
            )
            .optional()
        })
    }

    /// Build `id` of `ws`.
    pub fn build(&self, ws: &str, id: i64) -> Result<Option<Build>, StoreError> {
        self.with(|c| {
            c.query_row(
                &format!(
                    "SELECT {BUILD_COLUMNS} FROM software_builds b JOIN software_aliases a \
                    ON a.id = b.alias_id WHERE a.workspace = ?1 AND b.id = ?2"
                ),
                params![ws, id],
                build_row,
            )
            .optional()
        })
    }

    /// Asks for `spec` as environment `name` of `ws`: a new build unless the latest one is of the same
    /// signature and did not fail (or `force` asks for one anyway). Returns the alias id and the build.
    pub fn request_build(
        &self,
        ws: &str,
        name: &str,
        spec: &Value,
        force: bool,
        build_time: f64,
    ) -> Result<Build, StoreError> {
        let sig = signature(spec);
        if let Some(latest) = self.latest_build(ws, name)?
            && !force
            && latest.signature == sig
            && latest.state() != "error"
        {
            return Ok(latest);
        }
        let now = unix_now();
        let failed = failure_of(spec);
        let id = self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO software_aliases(workspace, name) VALUES (?1, ?2)",
                params![ws, name],
            )?;
            let alias: i64 = c.query_row(
                "SELECT id FROM software_aliases WHERE workspace = ?1 AND name = ?2",
                params![ws, name],
                |r| r.get(0),
            )?;
            c.execute(
                "INSERT INTO software_builds(alias_id, signature, spec, started, built_at, \
                    failed) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![alias, sig, spec.to_string(), now, now + build_time, failed],
            )?;
            Ok(c.last_insert_rowid())
        })?;
        Ok(self.build(ws, id)?.expect("just made"))
    }

    /// Every alias of `ws` with its latest build, by name.
    pub fn aliases(&self, ws: &str) -> Result<Vec<Build>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {BUILD_COLUMNS} FROM software_builds b JOIN software_aliases a ON a.id = b.alias_id WHERE a.workspace = ?1
                 AND b.id = (SELECT MAX(id) FROM software_builds WHERE alias_id = a.id) ORDER BY a.name"
            ))?;
            stmt.query_map(params![ws], build_row)?.collect()
        })
    }

    /// Removes `name` of `ws` and its builds; whether it existed.
    pub fn delete_alias(&self, ws: &str, name: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            let id: Option<i64> = c
                .query_row(
                    "SELECT id FROM software_aliases WHERE workspace = ?1 AND name = ?2",
                    params![ws, name],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(id) = id else { return Ok(false) };
            c.execute("DELETE FROM software_builds WHERE alias_id = ?1", params![id])?;
            c.execute("DELETE FROM software_aliases WHERE id = ?1", params![id])?;
            Ok(true)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_hide_url_credentials() {
        assert_eq!(
            hidden("--extra-index-url https://bob:Pass1@pypi.example/simple"),
            "--extra-index-url https://bob:****@pypi.example/simple"
        );
        assert_eq!(
            hidden("git+https://t0k@github.com/o/r.git"),
            "git+https://****@github.com/o/r.git"
        );
        assert_eq!(hidden("dask==2025.1.0"), "dask==2025.1.0");
        assert_eq!(
            hidden("--index-url=https://u:p@h/simple"),
            "--index-url=https://u:****@h/simple"
        );
    }

    #[test]
    fn failures_follow_the_marker() {
        assert!(
            failure_of(&json!({"container": "ghcr.io/x/coiled-local-fail-build:1"}))
                .unwrap()
                .contains("manifest")
        );
        let spec = json!({"packages": [{"name": "numpy"}, {"name": "coiled-local-fail-build"}], "raw_pip": null});
        assert!(failure_of(&spec).unwrap().contains("nothing provides"));
        assert!(failure_of(&json!({"container": "ghcr.io/dask/dask"})).is_none());
    }

    #[test]
    fn the_signature_ignores_force_and_name() {
        assert_eq!(
            signature(&json!({"name": "a", "md5": "x", "force_rebuild": true})),
            signature(&json!({"name": "b", "md5": "x"}))
        );
        assert_ne!(signature(&json!({"md5": "x"})), signature(&json!({"md5": "y"})));
    }
}
