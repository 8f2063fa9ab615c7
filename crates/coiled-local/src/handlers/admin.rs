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
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><GetCallerIdentityResult><Arn>arn:aws:iam::123456789012:user/coiled-local</Arn><UserId>AIDACOILEDLOCAL</UserId><Account>123456789012</Account></GetCallerIdentityResult><ResponseMetadata><RequestId>0</RequestId></ResponseMetadata></GetCallerIdentityResponse>",
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
        Err(e) => error(StatusCode::BAD_REQUEST, json!({"message": format!("Invalid fault configuration: {e}")})),
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
