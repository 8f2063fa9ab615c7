//! The HTTP and WebSocket routes of the local control plane. `app(state)` builds the router, so tests can
//! serve it on `127.0.0.1:0` in-process.

use std::collections::BTreeSet;

use axum::body::{Body, Bytes};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, RawQuery, Request, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::faults::{Fault, FaultConfig};
use super::store::NewCluster;
use super::{Shared, unix_now, wire};

/// The router with every route of the API, the admin routes under `/_local`, and the page.
pub fn app(state: Shared) -> Router {
    let api = Router::new()
        .route("/api/v1/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/api/v2/user/me", get(user_me))
        .route("/api/v2/user/me/memberships", get(user_memberships))
        .route("/api/v1/users/me/", get(users_me_v1))
        .route("/api/v1/{ws}/backend_options/", get(get_backend_options))
        .route("/ws/api/v1/{ws}/cluster-info/", get(backend_options_socket))
        .route("/api/v2/clusters/account/{ws}/", get(list_clusters).post(create_cluster))
        .route("/api/v2/clusters/account/{ws}/id/{id}", get(get_cluster).delete(stop_cluster))
        .route("/api/v2/clusters/account/{ws}/id/{id}/state", get(get_cluster_state))
        .route("/api/v2/clusters/account/{ws}/id/{id}/states", get(get_cluster_states))
        .route("/api/v2/clusters/account/{ws}/name/{name}", get(get_cluster_by_name))
        .route("/api/v2/workers/account/{ws}/cluster/{id}/", get(list_workers).post(add_workers).delete(remove_workers))
        .route("/api/v2/interactions/interaction", post(|| async { Json(json!({})) }))
        .route("/api/v2/clusters/id/{id}/event", post(|| async { Json(json!({})) }))
        .route("/api/v2/user/workspace/{ws}/dask-config-overrides", get(|| async { Json(json!({})) }))
        .route("/api/v2/packages/", get(|| async { Json(json!([])) }))
        .route("/", post(sts_get_caller_identity))
        .layer(middleware::from_fn_with_state(state.clone(), faults_and_stats));
    Router::new()
        .merge(api)
        .route("/", get(super::page::page))
        .route("/_local/faults", get(get_faults).put(put_faults))
        .route("/_local/stats", get(get_stats).delete(reset_stats))
        .with_state(state)
}

type Resp = Response;

fn error(status: StatusCode, body: Value) -> Resp {
    (status, Json(body)).into_response()
}

fn detail(status: StatusCode, text: &str) -> Resp {
    error(status, json!({"detail": text}))
}

fn internal(e: impl std::fmt::Display) -> Resp {
    tracing::error!(error = %e, "internal error");
    error(StatusCode::INTERNAL_SERVER_ERROR, json!({"message": "Internal server error; see the coiled-local log."}))
}

/// Counts API requests and injects the configured faults.
async fn faults_and_stats(AxState(state): AxState<Shared>, request: Request, next: Next) -> Resp {
    let route = format!("{} {}", request.method(), route_of(request.uri().path()));
    state.stats.count(route);
    let (latency, fault) = state.faults.decide();
    if latency > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(latency)).await;
    }
    match fault {
        Some(Fault::Drop) => {
            state.stats.fault("drop");
            dropped_connection()
        }
        Some(Fault::Status(code, retry_after)) => {
            state.stats.fault(&code.to_string());
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut resp = error(status, json!({"detail": format!("injected fault: HTTP {code}")}));
            if let Some(secs) = retry_after {
                resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
            }
            resp
        }
        None => next.run(request).await,
    }
}

/// A response whose body fails at once: the client sees the connection drop without a complete answer.
fn dropped_connection() -> Resp {
    let stream = futures_util::stream::once(async { Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped on purpose")) });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from_stream(stream))
        .unwrap_or_default()
}

/// The path with ids and names replaced, for counting.
fn route_of(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').collect();
    let mut out = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let prev = if i > 0 { parts[i - 1] } else { "" };
        let generic = matches!(prev, "account" | "id" | "name" | "cluster" | "workspace")
            || (prev == "v1" && i == 3 && *p != "health" && *p != "users");
        out.push(if generic && !p.is_empty() { "{}" } else { p });
    }
    out.join("/")
}

/// The user behind the request's token, or the 401 to answer.
fn authenticate(state: &Shared, headers: &HeaderMap) -> Result<String, Resp> {
    let value = headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let token = value.strip_prefix("ApiToken ").or_else(|| value.strip_prefix("Token ")).unwrap_or_default().trim();
    if token.is_empty() {
        return Err(detail(StatusCode::UNAUTHORIZED, "Authentication credentials were not provided."));
    }
    match state.store.user_for_token(token) {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(detail(StatusCode::UNAUTHORIZED, "Invalid token.")),
        Err(e) => Err(internal(e)),
    }
}

/// Checks membership of `ws`; returns whether the user administers it.
fn authorize(state: &Shared, headers: &HeaderMap, ws: &str) -> Result<(String, bool), Resp> {
    let user = authenticate(state, headers)?;
    let memberships = state.store.memberships(&user).map_err(internal)?;
    match memberships.iter().find(|(w, _, _)| w == ws) {
        Some((_, admin, _)) => Ok((user, *admin)),
        None => Err(detail(StatusCode::FORBIDDEN, &format!("You aren't a member of the {ws} workspace."))),
    }
}

macro_rules! tri {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(r) => return r,
        }
    };
}

async fn user_me(AxState(state): AxState<Shared>, headers: HeaderMap) -> Resp {
    let user = tri!(authenticate(&state, &headers));
    let memberships = tri!(state.store.memberships(&user).map_err(internal));
    let default = memberships.iter().find(|m| m.2).map(|m| m.0.clone());
    Json(json!({"id": 1, "username": user, "email": format!("{user}@localhost"), "default_account": default.map(|d| json!({"slug": d, "name": d}))})).into_response()
}

async fn user_memberships(AxState(state): AxState<Shared>, headers: HeaderMap) -> Resp {
    let user = tri!(authenticate(&state, &headers));
    let memberships = tri!(state.store.memberships(&user).map_err(internal));
    Json(
        memberships
            .iter()
            .map(|(ws, admin, default)| json!({"account": {"slug": ws, "name": ws}, "is_admin": admin, "is_default_account": default}))
            .collect::<Vec<_>>(),
    )
    .into_response()
}

async fn users_me_v1(AxState(state): AxState<Shared>, headers: HeaderMap) -> Resp {
    let user = tri!(authenticate(&state, &headers));
    let memberships = tri!(state.store.memberships(&user).map_err(internal));
    Json(json!({"username": user, "membership_set": memberships.iter().map(|(ws, admin, _)| json!({"account": {"slug": ws, "name": ws}, "is_admin": admin})).collect::<Vec<_>>()}))
        .into_response()
}

/// Backend options as read back: credentials are never returned.
fn redacted_backend_options(data: Option<Value>) -> Value {
    let mut data = data.unwrap_or_else(|| json!({"backend": "vm", "options": {"provider_name": "aws", "type": "aws_cloudbridge_backend_options", "aws_region_name": "us-east-1", "firewall_spec": {}}}));
    if let Some(o) = data.get_mut("options").and_then(Value::as_object_mut) {
        o.remove("credentials");
        o.remove("gcp_service_creds_dict");
    }
    if let Some(r) = data.get_mut("registry").and_then(Value::as_object_mut) {
        r.remove("credentials");
        r.remove("password");
    }
    data
}

async fn get_backend_options(AxState(state): AxState<Shared>, headers: HeaderMap, Path(ws): Path<String>) -> Resp {
    tri!(authorize(&state, &headers, &ws));
    let data = tri!(state.store.backend_options(&ws).map_err(internal));
    Json(redacted_backend_options(data)).into_response()
}

/// Checks an ingress list on the wire; the error says which rule and why.
fn validate_ingress(ingress: &Value) -> Result<Vec<coiled_firewall::Rule>, String> {
    let Some(rules) = ingress.as_array() else { return Err("ingress must be a list of {ports, cidr} rules".into()) };
    let mut out = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let cidr = r.get("cidr").and_then(Value::as_str).ok_or(format!("ingress rule {i}: cidr is required"))?;
        let c = coiled_firewall::parse_cidr(cidr).map_err(|e| format!("ingress rule {i}: {e}"))?;
        let ports = r.get("ports").and_then(Value::as_array).ok_or(format!("ingress rule {i}: ports must be a list"))?;
        if ports.is_empty() {
            return Err(format!("ingress rule {i}: ports must not be empty"));
        }
        let mut set = BTreeSet::new();
        for p in ports {
            let port =
                p.as_i64().filter(|p| (1..=65535).contains(p)).ok_or(format!("ingress rule {i}: {p} is not a port from 1 to 65535"))?;
            set.insert(port as u16);
        }
        out.push(coiled_firewall::Rule { cidr: c.net, ports: set });
    }
    Ok(out)
}

fn rules_to_wire(rules: &[coiled_firewall::Rule]) -> Value {
    Value::Array(
        coiled_firewall::merge(rules)
            .0
            .iter()
            .map(|r| json!({"ports": r.ports.iter().collect::<Vec<_>>(), "cidr": r.cidr.to_string()}))
            .collect(),
    )
}

/// Checks an `update_options` payload as the service would; returns the data to store.
fn validate_backend_options(data: &Value) -> Result<Value, String> {
    let backend = data.get("backend").and_then(Value::as_str).ok_or("backend is required")?;
    if !matches!(backend, "vm" | "vm_aws" | "vm_gcp") {
        return Err(format!("unsupported backend {backend:?}"));
    }
    let options = data.get("options").and_then(Value::as_object).ok_or("options must be an object")?;
    let provider = options.get("provider_name").and_then(Value::as_str).ok_or("options.provider_name is required")?;
    if !matches!(provider, "aws" | "gcp") {
        return Err(format!("unsupported cloud provider {provider:?}; expected aws or gcp"));
    }
    if provider == "aws" {
        let creds = options.get("credentials").cloned().unwrap_or(Value::Null);
        let key = creds.get("aws_access_key").or_else(|| creds.get("aws_access_key_id")).and_then(Value::as_str).unwrap_or_default();
        let secret = creds.get("aws_secret_key").or_else(|| creds.get("aws_secret_access_key")).and_then(Value::as_str).unwrap_or_default();
        if key.is_empty() || secret.is_empty() {
            return Err("AWS credentials are required: aws_access_key_id and aws_secret_access_key".into());
        }
    } else if options.get("gcp_service_creds_dict").and_then(|d| d.get("project_id")).is_none() {
        return Err("GCP service account credentials with a project_id are required".into());
    }
    let mut stored = data.clone();
    if let Some(spec) = options.get("firewall_spec")
        && let Some(ingress) = spec.get("ingress")
    {
        let rules = validate_ingress(ingress).map_err(|e| format!("Invalid firewall_spec: {e}"))?;
        stored["options"]["firewall_spec"] = json!({"ingress": rules_to_wire(&rules)});
    }
    // The service keeps only meaningful fields; empty placeholders are dropped.
    if let Some(o) = stored.get_mut("options").and_then(Value::as_object_mut) {
        o.retain(|_, v| !(v.is_null() || v.as_str() == Some("")));
    }
    Ok(stored)
}

async fn backend_options_socket(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path(ws): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Resp {
    match authorize(&state, &headers, &ws) {
        Ok((_, true)) => upgrade.on_upgrade(move |socket| update_options_session(state, ws, socket)),
        Ok((_, false)) => detail(StatusCode::FORBIDDEN, "Only workspace admins can edit backend options."),
        Err(r) if r.status() == StatusCode::UNAUTHORIZED => upgrade.on_upgrade(|mut socket| async move {
            let _ = socket.send(Message::Close(Some(CloseFrame { code: 4403, reason: "Unauthorized".into() }))).await;
        }),
        Err(r) => r,
    }
}

async fn update_options_session(state: Shared, ws: String, mut socket: WebSocket) {
    let say = |message: &str, is_error: bool| {
        Message::Text(json!({"type": "update_options", "message": message, "is_error": is_error}).to_string().into())
    };
    if socket
        .send(Message::Text(json!({"type": "greeting", "message": format!("connected to workspace {ws}")}).to_string().into()))
        .await
        .is_err()
    {
        return;
    }
    while let Some(Ok(msg)) = socket.recv().await {
        let Message::Text(text) = msg else {
            if matches!(msg, Message::Close(_)) {
                return;
            }
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(&text) else { continue };
        if v.get("type").and_then(Value::as_str) != Some("update_options") {
            continue;
        }
        let _ = socket.send(say("CONFIGURING_BACKEND", false)).await;
        let _ = socket.send(say("Validating options...", false)).await;
        match validate_backend_options(v.get("data").unwrap_or(&Value::Null)) {
            Ok(data) => match state.store.set_backend_options(&ws, &data) {
                Ok(()) => {
                    let _ = socket.send(say("Backend options saved.", false)).await;
                    let _ = socket.send(say("FINISHED", false)).await;
                }
                Err(e) => {
                    tracing::error!(error = %e, "saving backend options failed");
                    let _ = socket.send(say("Internal error while saving backend options.", true)).await;
                }
            },
            Err(e) => {
                let _ = socket.send(say(&e, true)).await;
            }
        }
        let _ = socket.send(Message::Close(Some(CloseFrame { code: 1000, reason: "done".into() }))).await;
        return;
    }
}

fn tls_pair() -> &'static (String, String) {
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

fn server_base(headers: &HeaderMap) -> String {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1");
    format!("http://{host}")
}

fn cluster_response(state: &Shared, headers: &HeaderMap, c: &super::store::ClusterRow) -> Resp {
    let workers = tri!(state.store.workers(c.id).map_err(internal));
    let (cert, key) = tls_pair();
    Json(wire::cluster_json(c, &workers, &server_base(headers), (cert, key))).into_response()
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 128 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn create_cluster(AxState(state): AxState<Shared>, headers: HeaderMap, Path(ws): Path<String>, body: Bytes) -> Resp {
    tri!(authorize(&state, &headers, &ws));
    let raw = match wire::parse_lenient(&body) {
        Ok(v) => v,
        Err(e) => return error(StatusCode::BAD_REQUEST, json!({"message": format!("Request body is not JSON: {e}")})),
    };
    let req: wire::CreateCluster = match serde_json::from_value(raw) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, json!({"message": format!("Invalid cluster request: {e}")})),
    };
    let name = match req.name.as_deref() {
        Some(n) => n.rsplit('/').next().unwrap_or(n).to_string(),
        None => format!("{ws}-{:06x}", rand::random::<u32>() & 0xff_ffff),
    };
    if !valid_name(&name) {
        return error(
            StatusCode::BAD_REQUEST,
            json!({"name": [format!("{name:?} is not a valid cluster name: use letters, digits, '-' and '_' (at most 128).")]}),
        );
    }
    let workers = req.workers.unwrap_or(0);
    if !(0..=1000).contains(&workers) {
        return error(StatusCode::BAD_REQUEST, json!({"workers": ["Must be between 0 and 1000."]}));
    }
    let mut options = req.options.clone().unwrap_or_else(|| json!({}));
    let cluster_ingress = options.get("firewall_spec").and_then(|s| s.get("ingress")).cloned();
    let (rules, source) = match cluster_ingress {
        Some(ingress) => match validate_ingress(&ingress) {
            Ok(rules) => (rules, "cluster"),
            Err(e) => return error(StatusCode::BAD_REQUEST, json!({"message": format!("Invalid firewall_spec: {e}")})),
        },
        None => {
            let account = tri!(state.store.backend_options(&ws).map_err(internal));
            let account_rules = account
                .as_ref()
                .and_then(|d| d.get("options"))
                .and_then(|o| o.get("firewall_spec"))
                .and_then(|s| s.get("ingress"))
                .and_then(|i| validate_ingress(i).ok());
            match account_rules {
                Some(r) => (r, "account"),
                None => (state.config.default_ingress.clone(), "default"),
            }
        }
    };
    if let Some(o) = options.as_object_mut() {
        o.remove("firewall_spec");
    }
    let tags = req.tags.clone().unwrap_or_else(|| json!({}));
    let fail_reason = tags.get("coiled-local/fail").and_then(Value::as_str).map(str::to_string);
    let port = req.scheduler_options.as_ref().and_then(|o| o.get("port")).and_then(Value::as_i64).unwrap_or(state.config.scheduler_port);
    let half = state.config.provision_delay.as_secs_f64() / 2.0;
    let new = NewCluster {
        workspace: ws.clone(),
        name,
        workers,
        scheduler_port: port,
        give_public_ip: true,
        options,
        firewall: rules_to_wire(&rules),
        firewall_source: source.to_string(),
        tags,
        software: req.env_name.or(req.software_environment),
        worker_instance_types: json!(req.worker_instance_types.unwrap_or_else(|| vec!["m6i.xlarge".into()])),
        scheduler_instance_types: json!(req.scheduler_instance_types.unwrap_or_else(|| vec!["m6i.xlarge".into()])),
        phase_at: unix_now() + half,
        fail_reason,
    };
    let (id, existing) = tri!(state.store.create_cluster(&new).map_err(internal));
    if !existing {
        state.stats.created();
        state.wake.notify_one();
    }
    if !existing && state.faults.take_lost_create() {
        state.stats.fault("lost_create");
        return dropped_connection();
    }
    (StatusCode::CREATED, Json(json!({"id": id, "existing": existing}))).into_response()
}

/// The cluster `id` of workspace `ws`, once the caller is checked to be a member; else the 401, 403
/// or 404 to answer.
fn workspace_cluster(state: &Shared, headers: &HeaderMap, ws: &str, id: i64) -> Result<super::store::ClusterRow, Resp> {
    authorize(state, headers, ws)?;
    state.store.cluster(ws, id).map_err(internal)?.ok_or_else(|| detail(StatusCode::NOT_FOUND, "Not found."))
}

async fn get_cluster(AxState(state): AxState<Shared>, headers: HeaderMap, Path((ws, id)): Path<(String, i64)>) -> Resp {
    let c = tri!(workspace_cluster(&state, &headers, &ws, id));
    cluster_response(&state, &headers, &c)
}

async fn get_cluster_state(AxState(state): AxState<Shared>, headers: HeaderMap, Path((ws, id)): Path<(String, i64)>) -> Resp {
    let c = tri!(workspace_cluster(&state, &headers, &ws, id));
    Json(json!({"state": c.state, "reason": c.reason, "updated": c.updated})).into_response()
}

async fn get_cluster_states(AxState(state): AxState<Shared>, headers: HeaderMap, Path((ws, id)): Path<(String, i64)>) -> Resp {
    tri!(workspace_cluster(&state, &headers, &ws, id));
    let mut out = serde_json::Map::new();
    for e in tri!(state.store.states(id).map_err(internal)) {
        let list = out.entry(e.kind).or_insert_with(|| json!([]));
        if let Some(a) = list.as_array_mut() {
            a.push(json!({"updated": e.updated, "state": e.state, "reason": e.reason, "stateful_object": {"name": e.name}}));
        }
    }
    Json(Value::Object(out)).into_response()
}

async fn get_cluster_by_name(AxState(state): AxState<Shared>, headers: HeaderMap, Path((ws, name)): Path<(String, String)>) -> Resp {
    // `include_paused` is accepted and has no effect: clusters here are never paused.
    tri!(authorize(&state, &headers, &ws));
    match tri!(state.store.active_cluster_by_name(&ws, &name).map_err(internal)) {
        Some(c) => cluster_response(&state, &headers, &c),
        None => detail(StatusCode::NOT_FOUND, "Not found."),
    }
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<i64>,
    offset: Option<i64>,
    name: Option<String>,
}

async fn list_clusters(AxState(state): AxState<Shared>, headers: HeaderMap, Path(ws): Path<String>, Query(q): Query<ListQuery>) -> Resp {
    tri!(authorize(&state, &headers, &ws));
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let rows = tri!(state.store.clusters(Some(&ws), q.name.as_deref(), limit, q.offset.unwrap_or(0).max(0)).map_err(internal));
    Json(rows.iter().map(wire::cluster_list_item).collect::<Vec<_>>()).into_response()
}

async fn stop_cluster(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path((ws, id)): Path<(String, i64)>,
    RawQuery(query): RawQuery,
) -> Resp {
    let c = tri!(workspace_cluster(&state, &headers, &ws, id));
    if !matches!(c.state.as_str(), "stopping" | "stopped" | "error") {
        let reason = query
            .as_deref()
            .and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "reason").map(|(_, v)| v.into_owned()))
            .unwrap_or_else(|| "stopped by request".into());
        let at = unix_now() + state.config.stop_delay.as_secs_f64();
        tri!(state.store.set_cluster_state(id, "stopping", &reason, Some(at)).map_err(internal));
        tri!(state.store.set_workers_state(id, "stopping", Some(at)).map_err(internal));
        state.wake.notify_one();
    }
    Json(json!({"id": id, "state": "stopping"})).into_response()
}

async fn list_workers(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path((ws, id)): Path<(String, i64)>,
    Query(q): Query<ListQuery>,
) -> Resp {
    tri!(workspace_cluster(&state, &headers, &ws, id));
    let workers: Vec<_> =
        tri!(state.store.workers(id).map_err(internal)).into_iter().filter(|w| !matches!(w.state.as_str(), "stopped")).collect();
    let offset = q.offset.unwrap_or(0).max(0) as usize;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000) as usize;
    Json(workers.iter().skip(offset).take(limit).map(wire::worker_json).collect::<Vec<_>>()).into_response()
}

#[derive(Deserialize)]
struct ScaleUp {
    n_workers: i64,
}

async fn add_workers(AxState(state): AxState<Shared>, headers: HeaderMap, Path((ws, id)): Path<(String, i64)>, body: Bytes) -> Resp {
    let c = tri!(workspace_cluster(&state, &headers, &ws, id));
    if matches!(c.state.as_str(), "stopping" | "stopped" | "error") {
        return error(StatusCode::BAD_REQUEST, json!({"message": format!("Cluster {id} is {}; it cannot be scaled.", c.state)}));
    }
    let req: ScaleUp = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, json!({"message": format!("Invalid scale request: {e}")})),
    };
    if !(1..=1000).contains(&req.n_workers) {
        return error(StatusCode::BAD_REQUEST, json!({"n_workers": ["Must be between 1 and 1000."]}));
    }
    let half = state.config.provision_delay.as_secs_f64() / 2.0;
    let added = tri!(state.store.add_workers(id, req.n_workers, unix_now() + half).map_err(internal));
    state.wake.notify_one();
    (StatusCode::CREATED, Json(added.iter().map(wire::worker_json).collect::<Vec<_>>())).into_response()
}

async fn remove_workers(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path((ws, id)): Path<(String, i64)>,
    RawQuery(query): RawQuery,
) -> Resp {
    let c = tri!(workspace_cluster(&state, &headers, &ws, id));
    // Coiled's client shortens names by the "<cluster>-worker" prefix: "-3" means "<cluster>-worker-3".
    let names: Vec<String> = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .filter(|(k, _)| k == "name")
        .map(|(_, v)| if v.starts_with('-') { format!("{}-worker{v}", c.name) } else { v.into_owned() })
        .collect();
    let at = unix_now() + state.config.stop_delay.as_secs_f64();
    let n = tri!(state.store.stop_workers(id, &names, at).map_err(internal));
    state.wake.notify_one();
    Json(json!({"stopped": n})).into_response()
}

async fn sts_get_caller_identity() -> Resp {
    // Lets the Coiled client's AWS key check (boto3 STS GetCallerIdentity) run offline when
    // AWS_ENDPOINT_URL_STS points here.
    (
        [(header::CONTENT_TYPE, "text/xml")],
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/coiled-local</Arn><UserId>AIDACOILEDLOCAL</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>0</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
    )
        .into_response()
}

async fn get_faults(AxState(state): AxState<Shared>) -> Resp {
    Json(state.faults.config()).into_response()
}

async fn put_faults(AxState(state): AxState<Shared>, body: Bytes) -> Resp {
    match serde_json::from_slice::<FaultConfig>(&body) {
        Ok(cfg) => {
            state.faults.set(cfg.clone());
            Json(cfg).into_response()
        }
        Err(e) => error(StatusCode::BAD_REQUEST, json!({"message": format!("Invalid fault configuration: {e}")})),
    }
}

async fn get_stats(AxState(state): AxState<Shared>) -> Resp {
    Json(state.stats.snapshot()).into_response()
}

async fn reset_stats(AxState(state): AxState<Shared>) -> Resp {
    state.stats.reset();
    Json(json!({})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_counted_without_ids() {
        assert_eq!(route_of("/api/v2/clusters/account/alice/id/7"), "/api/v2/clusters/account/{}/id/{}");
        assert_eq!(route_of("/api/v1/alice/backend_options/"), "/api/v1/{}/backend_options/");
        assert_eq!(route_of("/api/v1/health"), "/api/v1/health");
    }

    #[test]
    fn backend_options_validation() {
        let ok = json!({"backend": "vm", "options": {"provider_name": "aws", "credentials": {"aws_access_key": "k", "aws_secret_key": "s"}, "zone": null, "account_role": "",
            "firewall_spec": {"ingress": [{"ports": [8787, 8786], "cidr": "10.1.0.2/16"}]}}});
        let stored = validate_backend_options(&ok).unwrap();
        assert_eq!(stored["options"]["firewall_spec"]["ingress"], json!([{"ports": [8786, 8787], "cidr": "10.1.0.0/16"}]));
        assert!(stored["options"].get("zone").is_none() && stored["options"].get("account_role").is_none());
        let mut bad = ok.clone();
        bad["options"]["firewall_spec"]["ingress"][0]["cidr"] = json!("10.1.0.300/16");
        assert!(validate_backend_options(&bad).unwrap_err().contains("ingress rule 0"));
        let mut bad = ok.clone();
        bad["options"]["firewall_spec"]["ingress"][0]["ports"] = json!([]);
        assert!(validate_backend_options(&bad).is_err());
        let mut bad = ok;
        bad["options"]["credentials"] = json!({});
        assert!(validate_backend_options(&bad).unwrap_err().contains("AWS credentials"));
    }

    #[test]
    fn read_back_never_carries_credentials() {
        let v = redacted_backend_options(Some(
            json!({"backend": "vm", "options": {"credentials": {"aws_secret_key": "s"}}, "registry": {"credentials": {"x": 1}}}),
        ));
        assert!(!v.to_string().contains("aws_secret_key"));
    }
}
