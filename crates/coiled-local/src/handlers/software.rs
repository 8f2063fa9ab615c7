//! Software environments: `POST /api/v2/software-environment/account/{ws}` asks for a build of a
//! container image or a package spec (as `Cloud._create_software_environment_v2` sends it), which
//! ends half a provisioning delay later; the alias, its builds and their logs are read back, listed
//! and deleted as the public client reads them (see [`crate::software_store`]). The environments
//! `--software-env` names exist, built, from the start. A create that names an environment this
//! workspace does not have built is refused (see [`check_software`]); the wording and status of that
//! refusal, and of the 404s, are `coiled-local`'s own.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::Shared;
use crate::app::{Answer, Resp, authorize, error, found, internal, not_found};
use crate::software_store::Build;
use crate::store::{Store, StoreError};

impl Store {
    /// Makes `name` in `ws`, built, unless it exists (`--software-env`).
    pub fn ensure_software_env(&self, ws: &str, name: &str) -> Result<(), StoreError> {
        if self.latest_build(ws, name)?.is_none() {
            self.request_build(ws, name, &json!({"name": name, "container": null}), false, 0.0)?;
        }
        Ok(())
    }
}

/// The alias as the create answers it and `GET …/alias/name/{name}` reads it.
fn alias_json(b: &Build) -> Value {
    json!({"id": b.alias_id, "name": b.name, "latest_spec": {"id": b.id, "latest_build": b.to_json()}})
}

pub(crate) async fn create_software_env(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path(ws): Path<String>,
    body: Bytes,
) -> Answer {
    authorize(&state, &headers, &ws)?;
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let refuse = |m: &str| Ok(error(StatusCode::BAD_REQUEST, json!({"message": m})));
    let Some(name) = req.get("name").and_then(Value::as_str) else {
        return refuse("coiled-local: a software environment needs a `name`.");
    };
    if !crate::handlers::clusters::valid_name(name) || name.chars().any(|c| c.is_ascii_uppercase())
    {
        return refuse(
            "coiled-local: software environment names are lower-case letters, digits, '-' and '_'.",
        );
    }
    let container = req.get("container").and_then(Value::as_str);
    let packages = req.get("packages").and_then(Value::as_array).is_some_and(|p| !p.is_empty());
    match (container, packages) {
        (Some(_), true) => {
            return refuse(
                "The build backend does not support specifying both packages and a container",
            );
        }
        (None, false) => return refuse("coiled-local: send a `container` image or `packages`."),
        _ => {}
    }
    let force = req.get("force_rebuild").and_then(Value::as_bool).unwrap_or(false);
    let half = state.config.provision_delay.as_secs_f64() / 2.0;
    let build = state.store.request_build(&ws, name, &req, force, half).map_err(internal)?;
    state.wake.notify_one();
    Ok(Json(alias_json(&build)).into_response())
}

pub(crate) async fn get_software_build(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path((ws, id)): Path<(String, i64)>,
) -> Answer {
    authorize(&state, &headers, &ws)?;
    found(state.store.build(&ws, id).map_err(internal)?, |b| b.to_json())
}

/// `GET …/build/logs/{id}?limit=N&pageToken=T`: the log lines from `T` (a line count) on.
pub(crate) async fn get_software_build_logs(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path((ws, id)): Path<(String, i64)>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Answer {
    authorize(&state, &headers, &ws)?;
    let Some(b) = state.store.build(&ws, id).map_err(internal)? else { return Ok(not_found()) };
    let from: usize = q.get("pageToken").and_then(|t| t.parse().ok()).unwrap_or(0);
    let limit: usize = q.get("limit").and_then(|l| l.parse().ok()).unwrap_or(500).max(1);
    let lines = b.log();
    let events: Vec<Value> = lines
        .iter()
        .enumerate()
        .skip(from)
        .take(limit)
        .map(|(i, m)| json!({"eventId": format!("{id}-{i}"), "message": m, "timestamp": (b.started * 1000.0) as i64 + i as i64}))
        .collect();
    let next = (from + events.len()).to_string();
    Ok(Json(json!({"events": events, "nextToken": next})).into_response())
}

pub(crate) async fn get_alias_by_name(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path((ws, name)): Path<(String, String)>,
) -> Answer {
    authorize(&state, &headers, &ws)?;
    found(state.store.latest_build(&ws, &name).map_err(internal)?, |b| alias_json(&b))
}

pub(crate) async fn delete_alias(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path((ws, name)): Path<(String, String)>,
) -> Answer {
    authorize(&state, &headers, &ws)?;
    if state.store.delete_alias(&ws, &name).map_err(internal)? {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Ok(not_found())
    }
}

/// `GET …/alias?offset=N`: `{items, count}`, 50 to a page.
pub(crate) async fn list_aliases(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path(ws): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Answer {
    authorize(&state, &headers, &ws)?;
    let all = state.store.aliases(&ws).map_err(internal)?;
    let offset: usize = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
    let items: Vec<Value> = all.iter().skip(offset).take(50).map(alias_json).collect();
    Ok(Json(json!({"items": items, "count": all.len()})).into_response())
}

/// `GET …/spec/{id}`: what the build of that spec was asked for (the real service's spec shape is
/// not shown by the client; this one is `coiled-local`'s own).
pub(crate) async fn get_spec(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path((ws, id)): Path<(String, i64)>,
) -> Answer {
    authorize(&state, &headers, &ws)?;
    // The client prints a spec whole (`coiled env inspect`) and reads no field of it: here it is what
    // the create sent, with the spec's id.
    found(state.store.build(&ws, id).map_err(internal)?, |b| {
        let mut spec = b.spec.as_object().cloned().unwrap_or_default();
        spec.insert("id".into(), b.id.into());
        Value::Object(spec)
    })
}

/// Refuses a create whose software is missing: neither `env_name` nor `env_id`, or an `env_name` that
/// is not a built environment of the workspace (`workspace/name:revision` spellings are read as
/// `name`). `env_id` (a package-sync build) is taken as it comes.
pub(crate) fn check_software(
    state: &Shared,
    ws: &str,
    env_name: Option<&str>,
    env_id: Option<i64>,
) -> Result<Option<String>, Resp> {
    let refuse = |m: String| Err(error(StatusCode::BAD_REQUEST, json!({"message": m})));
    let Some(spelled) = env_name else {
        return match env_id {
            Some(_) => Ok(None),
            None => refuse(
                "coiled-local: a cluster needs a software environment: `env_name` and \
                `env_id` are both null."
                    .into(),
            ),
        };
    };
    let name = spelled.split(':').next().unwrap_or(spelled);
    let name = name.rsplit('/').next().unwrap_or(name);
    match state.store.latest_build(ws, name).map_err(internal)? {
        Some(b) if b.state() == "built" => Ok(Some(b.name)),
        Some(b) => refuse(format!(
            "coiled-local: software environment {spelled:?} is {}, not built.",
            b.state()
        )),
        None => refuse(format!(
            "coiled-local: software environment {spelled:?} does not exist in workspace {ws:?}."
        )),
    }
}
