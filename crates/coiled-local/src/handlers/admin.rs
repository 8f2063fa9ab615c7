//! The admin routes under `/_local` (faults, stats) and the STS stub the Python client calls.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State as AxState;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;

use crate::Shared;
use crate::app::{Resp, error};
use crate::faults::FaultConfig;

pub(crate) async fn sts_get_caller_identity() -> Resp {
    // Lets the Coiled client's AWS key check (boto3 STS GetCallerIdentity) run offline when
    // AWS_ENDPOINT_URL_STS points here.
    (
        [(header::CONTENT_TYPE, "text/xml")],
        "<GetCallerIdentityResponse \
            xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/coiled-local</Arn><UserId>AIDACOILEDLOCAL</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>0</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
    )
        .into_response()
}

pub(crate) async fn get_faults(AxState(state): AxState<Shared>) -> Resp {
    Json(state.faults.config()).into_response()
}

pub(crate) async fn put_faults(AxState(state): AxState<Shared>, body: Bytes) -> Resp {
    match serde_json::from_slice::<FaultConfig>(&body) {
        Ok(cfg) => {
            state.faults.set(cfg.clone());
            Json(cfg).into_response()
        }
        Err(e) => error(
            StatusCode::BAD_REQUEST,
            json!({"message": format!("Invalid fault configuration: {e}")}),
        ),
    }
}

pub(crate) async fn get_stats(AxState(state): AxState<Shared>) -> Resp {
    Json(state.stats.snapshot()).into_response()
}

pub(crate) async fn reset_stats(AxState(state): AxState<Shared>) -> Resp {
    state.stats.reset();
    Json(json!({})).into_response()
}

pub(crate) async fn get_requests(AxState(state): AxState<Shared>) -> Resp {
    Json(state.requests.snapshot()).into_response()
}

pub(crate) async fn clear_requests(AxState(state): AxState<Shared>) -> Resp {
    state.requests.clear();
    StatusCode::NO_CONTENT.into_response()
}

/// `GET /_local/clusters/{id}/firewall`: the nftables ruleset in force for a real cluster.
pub(crate) async fn get_cluster_firewall(
    AxState(state): AxState<Shared>,
    axum::extract::Path(id): axum::extract::Path<i64>,
) -> Resp {
    let Some(rt) = state.dask.clone() else {
        return error(
            StatusCode::CONFLICT,
            json!({"message": "clusters are simulated: no firewall is enforced (serve with --clusters dask)"}),
        );
    };
    match tokio::task::spawn_blocking(move || rt.firewall(id)).await {
        Ok(Ok(ruleset)) => Json(json!({"cluster": id, "ruleset": ruleset})).into_response(),
        Ok(Err(e)) => error(StatusCode::NOT_FOUND, json!({"message": e})),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, json!({"message": e.to_string()})),
    }
}

/// `PUT /_local/clusters/{id}/firewall` with `{"ingress": [{"ports": [...], "cidr": "..."}]}`: the rules a
/// simulated cluster reports from now on, as a change made outside Terraform would leave them. Refused
/// for real clusters, whose reported rules are the ones the kernel enforces.
pub(crate) async fn put_cluster_firewall(
    AxState(state): AxState<Shared>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    body: Bytes,
) -> Resp {
    if state.dask.is_some() {
        return error(
            StatusCode::CONFLICT,
            json!({"message": "clusters are real: the rules they report are the ones enforced, and are not edited here"}),
        );
    }
    let body: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                json!({"message": format!("The body is not JSON: {e}")}),
            );
        }
    };
    let rules = match crate::handlers::account::validate_ingress(&body["ingress"]) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                json!({"message": format!("Invalid ingress: {e}")}),
            );
        }
    };
    let wire = crate::handlers::account::rules_to_wire(&rules);
    match state.store.set_cluster_firewall(id, &wire) {
        Ok(true) => Json(json!({"cluster": id, "ingress": wire})).into_response(),
        Ok(false) => {
            error(StatusCode::NOT_FOUND, json!({"message": format!("There is no cluster {id}.")}))
        }
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, json!({"message": e.to_string()})),
    }
}

/// `GET /_local/lab`: the namespaces of the real clusters' network and its hosts.
pub(crate) async fn get_lab(AxState(state): AxState<Shared>) -> Resp {
    let Some(rt) = &state.dask else {
        return Json(json!({"clusters": "simulated"})).into_response();
    };
    let p = &rt.lab.prefix;
    let hosts: serde_json::Map<String, serde_json::Value> = if rt.lab.hosts {
        crate::dask::netlab::HOSTS
            .iter()
            .map(|(name, addr, gateway, _)| {
                (
                    (*name).to_string(),
                    json!({"namespace": format!("{p}-{name}"), "address": addr.to_string(), "gateway": gateway.to_string()}),
                )
            })
            .collect()
    } else {
        Default::default()
    };
    Json(json!({"clusters": "dask", "prefix": p, "router": rt.lab.router(), "hosts": hosts}))
        .into_response()
}
