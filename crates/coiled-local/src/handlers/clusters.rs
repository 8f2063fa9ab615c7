//! Clusters and workers: create, read, states, lookup, list, stop and scale.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, RawQuery, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::{Answer, Resp, authorize, dropped_connection, error, internal, not_found};
use crate::faults::{AfterWork, Work};
use crate::handlers::account::{rules_to_wire, validate_ingress};
use crate::handlers::software::check_software;
use crate::store::NewCluster;
use crate::{Shared, unix_now, wire};

pub(crate) fn tls_pair() -> &'static (String, String) {
    static PAIR: std::sync::OnceLock<(String, String)> = std::sync::OnceLock::new();
    PAIR.get_or_init(|| {
        let made = (|| -> Result<(String, String), rcgen::Error> {
            let key = rcgen::KeyPair::generate()?;
            let mut params = rcgen::CertificateParams::new(vec!["localhost".into()])?;
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let cert = params.self_signed(&key)?;
            Ok((cert.pem(), key.serialize_pem()))
        })();
        made.unwrap_or_default()
    })
}

pub(crate) fn cluster_response(state: &Shared, c: &crate::store::ClusterRow) -> Answer {
    let workers = state.store.workers(c.id).map_err(internal)?;
    let own = state.dask.as_ref().and_then(|rt| rt.tls(c.id));
    let (cert, key) = own.as_ref().map_or_else(
        || (tls_pair().0.as_str(), tls_pair().1.as_str()),
        |(c, k)| (c.as_str(), k.as_str()),
    );
    let mut v = wire::cluster_json(c, &workers, (cert, key));
    if state.dask.is_some() {
        v["scheduler"]["dashboard_address"] = wire::real_dashboard_address(c).into();
    }
    Ok(Json(v).into_response())
}

/// When new clusters and workers take their first step: half the provisioning delay from now, or, for
/// real clusters, never by timer (their processes move them; the far-off time only keeps a timer from
/// racing the processes' start).
fn first_phase(state: &Shared) -> f64 {
    match state.dask {
        Some(_) => unix_now() + 1e9,
        None => unix_now() + state.config.provision_delay.as_secs_f64() / 2.0,
    }
}

/// Cluster (and software environment) names as Coiled accepts them.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(crate) async fn create_cluster(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path(ws): Path<String>,
    body: Bytes,
) -> Answer {
    authorize(&state, &headers, &ws)?;
    let new = match new_cluster(&state, &ws, &body) {
        Ok(new) => new,
        Err(refusal) => return Ok(refusal),
    };
    let running = state.store.active_clusters(&ws).map_err(internal)?;
    if running >= state.config.max_clusters {
        let message = format!(
            "Workspace {ws} has {running} clusters running, the most coiled-local allows \
                (--max-clusters); stop some first."
        );
        return Ok(error(StatusCode::BAD_REQUEST, json!({"message": message})));
    }
    let (id, existing) = state.store.create_cluster(&new).map_err(internal)?;
    if !existing {
        state.stats.created();
        state.wake.notify_one();
        let idle = new.idle_timeout.as_deref().unwrap_or(crate::idle::DEFAULT_IDLE);
        state.store.set_idle_limit(id, idle).map_err(internal)?;
        crate::dask::hooks::on_create(&state, id);
        if let Some(struck) = fault_after(&state, Work::Create) {
            return Ok(struck);
        }
    }
    Ok((StatusCode::CREATED, Json(json!({"id": id, "existing": existing}))).into_response())
}

/// The cluster a create body asks for, or the answer that refuses it (a 400, or a 500 when the store
/// fails).
fn new_cluster(state: &Shared, ws: &str, body: &[u8]) -> Result<NewCluster, Resp> {
    let bad = |body: Value| Err(error(StatusCode::BAD_REQUEST, body));
    let raw = match wire::parse_lenient(body) {
        Ok(v) => v,
        Err(e) => return bad(json!({"message": format!("Request body is not JSON: {e}")})),
    };
    let req: wire::CreateCluster = match serde_json::from_value(raw) {
        Ok(r) => r,
        Err(e) => return bad(json!({"message": format!("Invalid cluster request: {e}")})),
    };
    let name = match req.name.as_deref() {
        Some(n) => n.rsplit('/').next().unwrap_or(n).to_string(),
        None => format!("{ws}-{:06x}", rand::random::<u32>() & 0xff_ffff),
    };
    if !valid_name(&name) {
        return bad(
            json!({"name": [format!("{name:?} is not a valid cluster name: use letters, digits, '-' and '_' (at most 128).")]}),
        );
    }
    // What Coiled's client always sends: refused when missing, as a server that relies on it would.
    let (Some(worker_types), Some(scheduler_types)) =
        (req.worker_instance_types.clone(), req.scheduler_instance_types.clone())
    else {
        return bad(
            json!({"message": "coiled-local: worker_instance_types and scheduler_instance_types must be lists; Coiled's client always sends them."}),
        );
    };
    let software = check_software(
        state,
        ws,
        req.env_name.as_deref().or(req.software_environment.as_deref()),
        req.env_id,
    )?;
    let workers = req.workers.unwrap_or(0);
    if !(0..=1000).contains(&workers) {
        return bad(json!({"workers": ["Must be between 0 and 1000."]}));
    }
    if let Some(rt) = &state.dask
        && workers > rt.config.max_workers
    {
        return bad(
            json!({"message": format!("coiled-local runs real clusters of at most {} workers on this machine (--max-workers); {workers} asked for.", rt.config.max_workers)}),
        );
    }
    let mut options = req.options.clone().unwrap_or_else(|| json!({}));
    let (rules, source) = effective_rules(state, ws, &options)?;
    if let Some(o) = options.as_object_mut() {
        o.remove("firewall_spec");
    }
    let tags = req.tags.clone().unwrap_or_else(|| json!({}));
    let count = |key: &str| {
        tags.get(key)
            .and_then(Value::as_str)
            .and_then(|n| n.parse::<i64>().ok())
            .unwrap_or(0)
            .max(0)
    };
    let port = req
        .scheduler_options
        .as_ref()
        .and_then(|o| o.get("port"))
        .and_then(Value::as_i64)
        .unwrap_or(state.config.scheduler_port);
    let idle_timeout = req
        .scheduler_options
        .as_ref()
        .and_then(|o| o.get("idle_timeout"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if let Some(t) = &idle_timeout
        && crate::idle::parse_timedelta(t).is_none()
    {
        return bad(
            json!({"message": format!("coiled-local: idle_timeout {t:?} is not a Dask time delta such as \"20 minutes\".")}),
        );
    }
    Ok(NewCluster {
        workspace: ws.to_string(),
        name,
        workers,
        scheduler_port: port,
        idle_timeout,
        // An account may give schedulers no public IP (`give_scheduler_public_ip`, its setting).
        give_public_ip: tags.get("coiled-local/private-scheduler").and_then(Value::as_str)
            != Some("true"),
        options,
        firewall: rules_to_wire(&rules),
        firewall_source: source.to_string(),
        software,
        worker_instance_types: json!(worker_types),
        scheduler_instance_types: json!(scheduler_types),
        phase_at: first_phase(state),
        stuck_workers: count("coiled-local/stuck-workers"),
        failed_workers: count("coiled-local/failed-workers"),
        fail_reason: tags.get("coiled-local/fail").and_then(Value::as_str).map(str::to_string),
        tags,
    })
}

/// The rules a new cluster gets, and where they come from: its own `firewall_spec`, else the account's
/// at this moment, else the server default; or the answer that refuses an invalid `firewall_spec`.
fn effective_rules(
    state: &Shared,
    ws: &str,
    options: &Value,
) -> Result<(Vec<coiled_firewall::Rule>, &'static str), Resp> {
    if let Some(ingress) = options.get("firewall_spec").and_then(|s| s.get("ingress")) {
        return match validate_ingress(ingress) {
            Ok(rules) => Ok((rules, "cluster")),
            Err(e) => Err(error(
                StatusCode::BAD_REQUEST,
                json!({"message": format!("Invalid firewall_spec: {e}")}),
            )),
        };
    }
    let account = state.store.backend_options(ws).map_err(internal)?;
    let account_rules = account
        .as_ref()
        .and_then(|d| d.get("options"))
        .and_then(|o| o.get("firewall_spec"))
        .and_then(|s| s.get("ingress"))
        .and_then(|i| validate_ingress(i).ok());
    Ok(match account_rules {
        Some(r) => (r, "account"),
        None => (state.config.default_ingress.clone(), "default"),
    })
}

/// The cluster `id` of workspace `ws`, once the caller is checked to be a member; else the 401, 403
/// or 404 to answer.
pub(crate) fn workspace_cluster(
    state: &Shared,
    headers: &HeaderMap,
    ws: &str,
    id: i64,
) -> Result<crate::store::ClusterRow, Resp> {
    authorize(state, headers, ws)?;
    state.store.cluster(ws, id).map_err(internal)?.ok_or_else(not_found)
}

pub(crate) async fn get_cluster(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path((ws, id)): Path<(String, i64)>,
) -> Answer {
    let c = workspace_cluster(&state, &headers, &ws, id)?;
    cluster_response(&state, &c)
}

pub(crate) async fn get_cluster_state(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path((ws, id)): Path<(String, i64)>,
) -> Answer {
    let c = workspace_cluster(&state, &headers, &ws, id)?;
    Ok(Json(json!({"state": c.state, "reason": c.reason, "updated": c.updated})).into_response())
}

pub(crate) async fn get_cluster_states(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path((ws, id)): Path<(String, i64)>,
) -> Answer {
    workspace_cluster(&state, &headers, &ws, id)?;
    let mut out = serde_json::Map::new();
    for e in state.store.states(id).map_err(internal)? {
        let list = out.entry(e.kind).or_insert_with(|| json!([]));
        if let Some(a) = list.as_array_mut() {
            a.push(json!({"updated": e.updated, "state": e.state, "reason": e.reason, "stateful_object": {"name": e.name}}));
        }
    }
    Ok(Json(Value::Object(out)).into_response())
}

pub(crate) async fn get_cluster_by_name(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path((ws, name)): Path<(String, String)>,
) -> Answer {
    // `include_paused` is accepted and has no effect: clusters here are never paused.
    authorize(&state, &headers, &ws)?;
    match state.store.active_cluster_by_name(&ws, &name).map_err(internal)? {
        Some(c) => cluster_response(&state, &c),
        None => Ok(not_found()),
    }
}

#[derive(Deserialize)]
pub(crate) struct ListQuery {
    limit: Option<i64>,
    offset: Option<i64>,
    name: Option<String>,
}

pub(crate) async fn list_clusters(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path(ws): Path<String>,
    Query(q): Query<ListQuery>,
) -> Answer {
    authorize(&state, &headers, &ws)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let offset = q.offset.unwrap_or(0).max(0);
    let rows =
        state.store.clusters(Some(&ws), q.name.as_deref(), limit, offset).map_err(internal)?;
    let every = i64::from(state.faults.config().null_list_state_every);
    let mut items: Vec<Value> = rows.iter().map(wire::cluster_list_item).collect();
    for (i, item) in items.iter_mut().enumerate() {
        if every > 0 && (offset + i as i64 + 1) % every == 0 {
            item["current_state"]["state"] = Value::Null;
        }
    }
    Ok(Json(items).into_response())
}

pub(crate) async fn stop_cluster(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path((ws, id)): Path<(String, i64)>,
    RawQuery(query): RawQuery,
) -> Answer {
    let c = workspace_cluster(&state, &headers, &ws, id)?;
    if !matches!(c.state.as_str(), "stopping" | "stopped" | "error") {
        let reason = query
            .as_deref()
            .and_then(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "reason")
                    .map(|(_, v)| v.into_owned())
            })
            .unwrap_or_else(|| "stopped by request".into());
        begin_stop(&state, id, &reason).map_err(internal)?;
    }
    Ok(Json(json!({"id": id, "state": "stopping"})).into_response())
}

/// Puts a cluster, its scheduler and its workers in `stopping`. Simulated, they stop after the stop
/// delay; real, once their processes and instance are gone.
pub(crate) fn begin_stop(
    state: &Shared,
    id: i64,
    reason: &str,
) -> Result<(), crate::store::StoreError> {
    // `--vary`'s `phase-times`: a stop lingers up to three times its delay (half a second at least).
    let delay = match state.vary {
        Some(_) => {
            state.config.stop_delay.as_secs_f64().max(0.5)
                * state.phase_factor(1.0, 3.0, "stopping", id)
        }
        None => state.config.stop_delay.as_secs_f64(),
    };
    let at = state.dask.is_none().then(|| unix_now() + delay);
    state.store.set_cluster_state(id, "stopping", reason, at)?;
    state.store.set_workers_state(id, "stopping", at)?;
    state.store.set_scheduler_state(id, "stopping", reason)?;
    crate::dask::hooks::on_stop(state, id);
    state.wake.notify_one();
    Ok(())
}

pub(crate) async fn list_workers(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path((ws, id)): Path<(String, i64)>,
    Query(q): Query<ListQuery>,
) -> Answer {
    workspace_cluster(&state, &headers, &ws, id)?;
    let workers: Vec<_> = state
        .store
        .workers(id)
        .map_err(internal)?
        .into_iter()
        .filter(|w| !matches!(w.state.as_str(), "stopped"))
        .collect();
    let offset = q.offset.unwrap_or(0).max(0) as usize;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000) as usize;
    Ok(Json(workers.iter().skip(offset).take(limit).map(wire::worker_json).collect::<Vec<_>>())
        .into_response())
}

#[derive(Deserialize)]
pub(crate) struct ScaleUp {
    n_workers: i64,
}

pub(crate) async fn add_workers(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path((ws, id)): Path<(String, i64)>,
    body: Bytes,
) -> Answer {
    let c = workspace_cluster(&state, &headers, &ws, id)?;
    if matches!(c.state.as_str(), "stopping" | "stopped" | "error") {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            json!({"message": format!("Cluster {id} is {}; it cannot be scaled.", c.state)}),
        ));
    }
    let req: ScaleUp = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return Ok(error(
                StatusCode::BAD_REQUEST,
                json!({"message": format!("Invalid scale request: {e}")}),
            ));
        }
    };
    if !(1..=1000).contains(&req.n_workers) {
        return Ok(error(
            StatusCode::BAD_REQUEST,
            json!({"n_workers": ["Must be between 1 and 1000."]}),
        ));
    }
    if let Some(rt) = &state.dask {
        let active = state
            .store
            .workers(id)
            .map_err(internal)?
            .iter()
            .filter(|w| !matches!(w.state.as_str(), "stopping" | "stopped" | "error"))
            .count() as i64;
        if active + req.n_workers > rt.config.max_workers {
            return Ok(error(
                StatusCode::BAD_REQUEST,
                json!({"message": format!("coiled-local runs real clusters of at most {} workers on this machine (--max-workers); {active} running and {} asked for.", rt.config.max_workers, req.n_workers)}),
            ));
        }
    }
    let added =
        state.store.add_workers(id, req.n_workers, first_phase(&state)).map_err(internal)?;
    crate::dask::hooks::on_add_workers(
        &state,
        id,
        c.scheduler_port,
        added.iter().map(|w| w.name.clone()).collect(),
    );
    state.wake.notify_one();
    if let Some(struck) = fault_after(&state, Work::Scale) {
        return Ok(struck);
    }
    Ok((StatusCode::CREATED, Json(added.iter().map(wire::worker_json).collect::<Vec<_>>()))
        .into_response())
}

pub(crate) async fn remove_workers(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path((ws, id)): Path<(String, i64)>,
    RawQuery(query): RawQuery,
) -> Answer {
    let c = workspace_cluster(&state, &headers, &ws, id)?;
    // Coiled's client shortens names by the "<cluster>-worker" prefix: "-3" means "<cluster>-worker-3".
    let names: Vec<String> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "name")
        .map(
            |(_, v)| {
                if v.starts_with('-') { format!("{}-worker{v}", c.name) } else { v.into_owned() }
            },
        )
        .collect();
    let at = unix_now() + state.config.stop_delay.as_secs_f64();
    let n = state.store.stop_workers(id, &names, at).map_err(internal)?;
    crate::dask::hooks::on_remove_workers(&state, id, &names);
    state.wake.notify_one();
    Ok(Json(json!({"stopped": n})).into_response())
}

/// The answer of a request of kind `work` that a configured fault strikes once its work is done (a
/// lost answer, or a 502), counted.
fn fault_after(state: &Shared, work: Work) -> Option<Resp> {
    let (lost, then_502, done) = match work {
        Work::Create => ("lost_create", "create_then_502", "the cluster was created"),
        Work::Scale => ("lost_scale", "scale_then_502", "the workers were added"),
    };
    match state.faults.after_work(work)? {
        AfterWork::Lost => {
            state.stats.fault(lost);
            Some(dropped_connection())
        }
        AfterWork::BadGateway => {
            state.stats.fault(then_502);
            Some(error(
                StatusCode::BAD_GATEWAY,
                json!({"detail": format!("injected fault: HTTP 502 after {done}")}),
            ))
        }
    }
}
