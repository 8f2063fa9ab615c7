//! The HTTP and WebSocket routes of the local control plane: `app(state)` builds the router (so tests
//! can serve it on `127.0.0.1:0` in-process), with the middleware that injects faults and counts
//! requests, authentication, and the error type handlers return. The handlers live in
//! [`crate::handlers`].

use axum::body::{Body, Bytes};
use axum::extract::{Request, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::Shared;
use crate::faults::Fault;
use crate::handlers::{account, admin, clusters, software};

/// The router with every route of the API, the admin routes under `/_local`, and the page.
pub fn app(state: Shared) -> Router {
    let api = Router::new()
        .route("/api/v1/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/api/v2/user/me", get(account::user_me))
        .route("/api/v2/user/me/memberships", get(account::user_memberships))
        .route("/api/v1/users/me/", get(account::users_me_v1))
        .route("/api/v1/{ws}/backend_options/", get(account::get_backend_options))
        .route("/ws/api/v1/{ws}/cluster-info/", get(account::backend_options_socket))
        .route(
            "/api/v2/clusters/account/{ws}/",
            get(clusters::list_clusters).post(clusters::create_cluster),
        )
        .route(
            "/api/v2/clusters/account/{ws}/id/{id}",
            get(clusters::get_cluster).delete(clusters::stop_cluster),
        )
        .route("/api/v2/clusters/account/{ws}/id/{id}/state", get(clusters::get_cluster_state))
        .route("/api/v2/clusters/account/{ws}/id/{id}/states", get(clusters::get_cluster_states))
        .route("/api/v2/clusters/account/{ws}/name/{name}", get(clusters::get_cluster_by_name))
        .route(
            "/api/v2/workers/account/{ws}/cluster/{id}/",
            get(clusters::list_workers)
                .post(clusters::add_workers)
                .delete(clusters::remove_workers),
        )
        .route("/api/v2/interactions/interaction", post(|| async { Json(json!({})) }))
        .route("/api/v2/clusters/id/{id}/event", post(|| async { Json(json!({})) }))
        .route("/api/v2/user/workspace/{ws}/dask-config-overrides", get(dask_config_overrides))
        .route("/api/v2/software-environment/account/{ws}", post(software::create_software_env))
        .route(
            "/api/v2/software-environment/account/{ws}/build/{id}",
            get(software::get_software_build),
        )
        .route(
            "/api/v2/software-environment/account/{ws}/build/logs/{id}",
            get(software::get_software_build_logs),
        )
        .route("/api/v2/software-environment/account/{ws}/alias", get(software::list_aliases))
        .route(
            "/api/v2/software-environment/account/{ws}/alias/name/{name}",
            get(software::get_alias_by_name).delete(software::delete_alias),
        )
        .route("/api/v2/software-environment/account/{ws}/spec/{id}", get(software::get_spec))
        .route("/api/v2/packages/", get(|| async { Json(json!([])) }))
        .route("/", post(admin::sts_get_caller_identity))
        .layer(middleware::from_fn_with_state(state.clone(), faults_and_stats));
    let admin = Router::new()
        .route("/", get(super::page::page))
        .route("/_local/faults", get(admin::get_faults).put(admin::put_faults))
        .route("/_local/stats", get(admin::get_stats).delete(admin::reset_stats))
        .route("/_local/requests", get(admin::get_requests).delete(admin::clear_requests))
        .route(
            "/_local/clusters/{id}/firewall",
            get(admin::get_cluster_firewall).put(admin::put_cluster_firewall),
        )
        .route("/_local/lab", get(admin::get_lab))
        .layer(middleware::from_fn_with_state(state.clone(), admin_guard));
    Router::new().merge(api).merge(admin).with_state(state)
}

/// The user an admin route or the page serves, once [`admin_guard`] let the request through.
#[derive(Clone, Debug)]
pub struct Admin(pub String);

/// Guards the page and the `/_local` routes: they answer only requests whose `Host` is an IP address
/// or `localhost` (a page of another site that rebinds its name to this address is refused), and that
/// carry a token of this server, in `Authorization` as the API takes it or, for the page in a browser,
/// as `?token=`.
async fn admin_guard(AxState(state): AxState<Shared>, mut request: Request, next: Next) -> Resp {
    let host =
        request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or_default();
    if !host_is_local_name(host) {
        return detail(
            StatusCode::FORBIDDEN,
            "coiled-local serves its page and admin routes only to a Host that is an IP address \
                or localhost.",
        );
    }
    let from_query = (request.uri().path() == "/")
        .then(|| {
            request.uri().query().and_then(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "token")
                    .map(|(_, v)| v.into_owned())
            })
        })
        .flatten();
    let user = match from_query {
        Some(token) => match state.store.user_for_token(&token) {
            Ok(Some(user)) => user,
            Ok(None) => return detail(StatusCode::UNAUTHORIZED, "Invalid token."),
            Err(e) => return internal(e),
        },
        None => match authenticate(&state, request.headers()) {
            Ok(user) => user,
            Err(refused) => return refused,
        },
    };
    request.extensions_mut().insert(Admin(user));
    next.run(request).await
}

/// Whether a `Host` header names this machine by address or as `localhost`, with or without a port.
fn host_is_local_name(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

/// A response.
pub type Resp = Response;

/// A handler's answer: the error side is an answer too (in Coiled's error shape), so that a handler
/// returns it early with `?`.
pub type Answer = Result<Resp, Resp>;

pub(crate) fn error(status: StatusCode, body: Value) -> Resp {
    (status, Json(body)).into_response()
}

pub(crate) fn detail(status: StatusCode, text: &str) -> Resp {
    error(status, json!({"detail": text}))
}

/// Coiled's answer for what does not exist, or is not the caller's to see.
pub(crate) fn not_found() -> Resp {
    detail(StatusCode::NOT_FOUND, "Not found.")
}

/// What a read found, answered as JSON, or [`not_found`].
pub(crate) fn found<T>(row: Option<T>, to_json: impl FnOnce(T) -> Value) -> Answer {
    Ok(row.map_or_else(not_found, |r| Json(to_json(r)).into_response()))
}

pub(crate) fn internal(e: impl std::fmt::Display) -> Resp {
    tracing::error!(error = %e, "internal error");
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        json!({"message": "Internal server error; see the coiled-local log."}),
    )
}

/// Records and counts API requests, delays their answers by the configured round trip, and injects
/// the configured faults.
async fn faults_and_stats(AxState(state): AxState<Shared>, request: Request, next: Next) -> Resp {
    let route = format!("{} {}", request.method(), route_of(request.uri().path()));
    // Tests inspect whole records even from a terse server: this header (never sent by a client)
    // asks for the full answer.
    let full = request.headers().contains_key(FULL_ANSWER);
    state.stats.count(route.clone());
    let (parts, body) = request.into_parts();
    // A body that does not arrive within the timeout holds nothing open.
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await
    {
        Ok(Ok(b)) => b,
        Ok(Err(_)) => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"detail": "Request body too large."}),
            );
        }
        Err(_) => {
            return error(
                StatusCode::REQUEST_TIMEOUT,
                json!({"detail": "The request body did not arrive in time."}),
            );
        }
    };
    // Only what an authenticated client sent is recorded: nobody fills the log without the token.
    if authenticate(&state, &parts.headers).is_ok() {
        state.requests.record(parts.method.as_str(), parts.uri.path(), parts.uri.query(), &bytes);
    }
    let request = Request::from_parts(parts, Body::from(bytes));
    let (latency, fault) = state.faults.decide();
    let latency = state.config.latency + std::time::Duration::from_millis(latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
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
        None if state.config.minimal_echo && !full => {
            minimal_answer(&route, next.run(request).await).await
        }
        None => match state.vary.as_ref().filter(|_| !full) {
            Some(vary) => varied_answer(vary, &route, next.run(request).await).await,
            None => next.run(request).await,
        },
    }
}

/// The answer trimmed to what the public client reads (`--minimal-echo`), when it is a JSON answer to a
/// route the minimal mode knows.
async fn minimal_answer(route: &str, resp: Resp) -> Resp {
    let Some(shape) = crate::minimal::shape_for(route) else { return resp };
    if !resp.status().is_success() {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else { return dropped_connection() };
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) => Body::from(crate::minimal::project(&v, &shape).to_string()),
        Err(_) => Body::from(bytes),
    };
    let mut resp = Response::from_parts(parts, body);
    resp.headers_mut().remove(header::CONTENT_LENGTH);
    resp
}

/// The answer varied within what the client tolerates (`--vary`): after a latency, a JSON answer to a
/// route the client reads is varied, and a 404 takes one of the shapes the client reads.
async fn varied_answer(vary: &crate::vary::Vary, route: &str, resp: Resp) -> Resp {
    let key = vary.next_key(route);
    tokio::time::sleep(std::time::Duration::from_millis(vary.latency_ms(&key))).await;
    let known = crate::minimal::shape_for(route).is_some();
    let not_found = resp.status() == StatusCode::NOT_FOUND;
    let varied = not_found || (known && resp.status().is_success());
    if !varied {
        return resp;
    }
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else { return dropped_connection() };
    let body = match serde_json::from_slice::<Value>(&bytes) {
        Ok(v) if not_found => Body::from(vary.not_found(&key, &v).to_string()),
        Ok(v) => Body::from(vary.answer(route, &key, v).to_string()),
        Err(_) => Body::from(bytes),
    };
    let mut resp = Response::from_parts(parts, body);
    resp.headers_mut().remove(header::CONTENT_LENGTH);
    resp
}

/// `GET /api/v2/user/workspace/{ws}/dask-config-overrides`: the `--dask-config-overrides` file, `{}` without one.
async fn dask_config_overrides(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    axum::extract::Path(ws): axum::extract::Path<String>,
) -> Resp {
    let injected = state.faults.config().overrides_status;
    match authorize(&state, &headers, &ws) {
        Ok(_) if injected >= 400 => error(
            StatusCode::from_u16(injected).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            json!({"detail": "injected fault: the overrides could not be read"}),
        ),
        Ok(_) => Json(state.config.dask_config_overrides.clone()).into_response(),
        Err(r) => r,
    }
}

/// The request header that exempts an answer from `--minimal-echo`.
pub const FULL_ANSWER: &str = "x-coiled-local-full";

/// The largest request body accepted (the Python client's create bodies are a few kilobytes).
const MAX_BODY: usize = 8 * 1024 * 1024;
/// How long a request's body may take to arrive.
const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A response whose body fails at once: the client sees the connection drop without a complete answer.
pub(crate) fn dropped_connection() -> Resp {
    let stream = futures_util::stream::once(async {
        Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped on purpose"))
    });
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
        let generic =
            matches!(prev, "account" | "id" | "name" | "cluster" | "workspace" | "spec" | "logs")
                || (prev == "build" && *p != "logs")
                || (prev == "v1" && i == 3 && *p != "health" && *p != "users");
        out.push(if generic && !p.is_empty() { "{}" } else { p });
    }
    out.join("/")
}

/// The user behind the request's token, or the 401 to answer.
pub(crate) fn authenticate(state: &Shared, headers: &HeaderMap) -> Result<String, Resp> {
    let value =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let token = value
        .strip_prefix("ApiToken ")
        .or_else(|| value.strip_prefix("Token "))
        .unwrap_or_default()
        .trim();
    if token.is_empty() {
        return Err(detail(
            StatusCode::UNAUTHORIZED,
            "Authentication credentials were not provided.",
        ));
    }
    match state.store.user_for_token(token) {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(detail(StatusCode::UNAUTHORIZED, "Invalid token.")),
        Err(e) => Err(internal(e)),
    }
}

/// Checks membership of `ws`; returns whether the user administers it.
pub(crate) fn authorize(
    state: &Shared,
    headers: &HeaderMap,
    ws: &str,
) -> Result<(String, bool), Resp> {
    let user = authenticate(state, headers)?;
    let memberships = state.store.memberships(&user).map_err(internal)?;
    match memberships.iter().find(|(w, _, _)| w == ws) {
        Some((_, admin, _)) => Ok((user, *admin)),
        None => Err(detail(
            StatusCode::FORBIDDEN,
            &format!("You aren't a member of the {ws} workspace."),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::account::{redacted_backend_options, validate_backend_options};

    #[test]
    fn routes_are_counted_without_ids() {
        assert_eq!(
            route_of("/api/v2/clusters/account/alice/id/7"),
            "/api/v2/clusters/account/{}/id/{}"
        );
        assert_eq!(route_of("/api/v1/alice/backend_options/"), "/api/v1/{}/backend_options/");
        assert_eq!(route_of("/api/v1/health"), "/api/v1/health");
    }

    #[test]
    fn backend_options_validation() {
        let ok = json!({"backend": "vm", "options": {"provider_name": "aws", "credentials": {"aws_access_key": "k", "aws_secret_key": "s"}, "zone": null, "account_role": "",
            "firewall_spec": {"ingress": [{"ports": [8787, 8786], "cidr": "10.1.0.2/16"}]}}});
        let stored = validate_backend_options(&ok).unwrap();
        assert_eq!(
            stored["options"]["firewall_spec"]["ingress"],
            json!([{"ports": [8786, 8787], "cidr": "10.1.0.0/16"}])
        );
        assert!(
            stored["options"].get("zone").is_none()
                && stored["options"].get("account_role").is_none()
        );
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
