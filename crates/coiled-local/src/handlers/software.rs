//! Software environments: the ones `--software-env` names start built, and `POST
//! /api/v2/software-environment/account/{ws}` makes one for a container image, as
//! `coiled.Cluster(container=...)` asks for it. A build becomes `built` half a provisioning delay after
//! it was asked for; an image whose reference contains `coiled-local-fail-build` fails to build. A
//! create that names an environment this workspace does not have is refused (see
//! [`check_software`]); the wording and status of that refusal are `coiled-local`'s own.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use rusqlite::{OptionalExtension, params};
use serde_json::{Value, json};

use crate::app::{Failure, Resp, authorize, detail, error, internal};
use crate::store::{Store, StoreError};
use crate::{Shared, unix_now};

/// The table, made when the store opens.
pub(crate) const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS software_envs(id INTEGER PRIMARY KEY AUTOINCREMENT, workspace TEXT NOT NULL,
  name TEXT NOT NULL, container TEXT, built_at REAL NOT NULL, failed TEXT, UNIQUE(workspace, name));";

/// One environment (and its single build: the build id is the environment's id).
#[derive(Clone, Debug)]
pub struct SoftwareEnv {
    /// Id, also its build's id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// When its build ends.
    pub built_at: f64,
    /// Why its build failed, if it did.
    pub failed: Option<String>,
}

impl SoftwareEnv {
    /// `queued`, `built` or `error`, as the client's build states go.
    pub fn state(&self) -> &'static str {
        match (&self.failed, unix_now() >= self.built_at) {
            (_, false) => "queued",
            (Some(_), true) => "error",
            (None, true) => "built",
        }
    }
}

impl Store {
    /// Makes `name` in `ws` unless it exists; returns it.
    pub fn ensure_software_env(&self, ws: &str, name: &str, container: Option<&str>, built_at: f64) -> Result<SoftwareEnv, StoreError> {
        let failed = container
            .filter(|c| c.contains("coiled-local-fail-build"))
            .map(|c| format!("coiled-local: image {c:?} is set to fail its build"));
        self.with(|c| {
            c.execute(
                "INSERT OR IGNORE INTO software_envs(workspace, name, container, built_at, failed) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![ws, name, container, built_at, failed],
            )?;
            c.query_row("SELECT id, name, built_at, failed FROM software_envs WHERE workspace = ?1 AND name = ?2", params![ws, name], row)
        })
    }

    /// The environment `name` of `ws`.
    pub fn software_env(&self, ws: &str, name: &str) -> Result<Option<SoftwareEnv>, StoreError> {
        self.with(|c| {
            c.query_row("SELECT id, name, built_at, failed FROM software_envs WHERE workspace = ?1 AND name = ?2", params![ws, name], row)
                .optional()
        })
    }

    /// The environment whose build is `id`.
    pub fn software_build(&self, ws: &str, id: i64) -> Result<Option<SoftwareEnv>, StoreError> {
        self.with(|c| {
            c.query_row("SELECT id, name, built_at, failed FROM software_envs WHERE workspace = ?1 AND id = ?2", params![ws, id], row)
                .optional()
        })
    }
}

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SoftwareEnv> {
    Ok(SoftwareEnv { id: r.get(0)?, name: r.get(1)?, built_at: r.get(2)?, failed: r.get(3)? })
}

fn build_json(env: &SoftwareEnv) -> Value {
    json!({"id": env.id, "state": env.state(), "reason": env.failed})
}

pub(crate) async fn create_software_env(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path(ws): Path<String>,
    body: Bytes,
) -> Result<Resp, Failure> {
    authorize(&state, &headers, &ws)?;
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let (Some(name), Some(container)) = (req.get("name").and_then(Value::as_str), req.get("container").and_then(Value::as_str)) else {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            json!({"message": "coiled-local makes software environments for container images only: send `name` and `container`."}),
        ));
    };
    let half = state.config.provision_delay.as_secs_f64() / 2.0;
    let env = state.store.ensure_software_env(&ws, name, Some(container), unix_now() + half).map_err(internal)?;
    Ok(Json(json!({"id": env.id, "name": env.name, "latest_spec": {"latest_build": build_json(&env)}})).into_response())
}

pub(crate) async fn get_software_build(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path((ws, id)): Path<(String, i64)>,
) -> Result<Resp, Failure> {
    authorize(&state, &headers, &ws)?;
    match state.store.software_build(&ws, id).map_err(internal)? {
        Some(env) => Ok(Json(build_json(&env)).into_response()),
        None => Ok(detail(StatusCode::NOT_FOUND, "Not found.")),
    }
}

/// Refuses a create whose software is missing: neither `env_name` nor `env_id`, or an `env_name` that
/// is not a built environment of the workspace (`workspace/name:revision` spellings are read as
/// `name`). `env_id` (a package-sync build) is taken as it comes.
pub(crate) fn check_software(state: &Shared, ws: &str, env_name: Option<&str>, env_id: Option<i64>) -> Result<Option<String>, Resp> {
    let refuse = |m: String| Err(error(StatusCode::BAD_REQUEST, json!({"message": m})));
    let Some(spelled) = env_name else {
        return match env_id {
            Some(_) => Ok(None),
            None => refuse("coiled-local: a cluster needs a software environment: `env_name` and `env_id` are both null.".into()),
        };
    };
    let name = spelled.split(':').next().unwrap_or(spelled);
    let name = name.rsplit('/').next().unwrap_or(name);
    match state.store.software_env(ws, name).map_err(internal)? {
        Some(env) if env.state() == "built" => Ok(Some(env.name)),
        Some(env) => refuse(format!("coiled-local: software environment {spelled:?} is {}, not built.", env.state())),
        None => refuse(format!("coiled-local: software environment {spelled:?} does not exist in workspace {ws:?}.")),
    }
}
