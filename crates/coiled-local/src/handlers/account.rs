//! Identity (`/api/v2/user/…`) and account backend options (REST read, `update_options` WebSocket).

use std::collections::BTreeSet;

use axum::Json;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, State as AxState};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde_json::{Value, json};

use crate::Shared;
use crate::app::{Answer, Resp, authenticate, authorize, detail, internal};

pub(crate) async fn user_me(AxState(state): AxState<Shared>, headers: HeaderMap) -> Answer {
    let user = authenticate(&state, &headers)?;
    let memberships = state.store.memberships(&user).map_err(internal)?;
    let default = memberships.iter().find(|m| m.2).map(|m| m.0.clone());
    Ok(Json(json!({"id": 1, "username": user, "email": format!("{user}@localhost"), "default_account": default.map(|d| json!({"slug": d, "name": d}))})).into_response())
}

pub(crate) async fn user_memberships(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
) -> Answer {
    let user = authenticate(&state, &headers)?;
    let memberships = state.store.memberships(&user).map_err(internal)?;
    let list: Vec<Value> = memberships
        .iter()
        .map(|(ws, admin, default)| json!({"account": {"slug": ws, "name": ws}, "is_admin": admin, "is_default_account": default}))
        .collect();
    Ok(Json(list).into_response())
}

pub(crate) async fn users_me_v1(AxState(state): AxState<Shared>, headers: HeaderMap) -> Answer {
    let user = authenticate(&state, &headers)?;
    let memberships = state.store.memberships(&user).map_err(internal)?;
    let membership_set: Vec<Value> = memberships
        .iter()
        .map(|(ws, admin, _)| json!({"account": {"slug": ws, "name": ws}, "is_admin": admin}))
        .collect();
    Ok(Json(json!({"username": user, "membership_set": membership_set})).into_response())
}

/// Backend options as read back: credentials are never returned.
pub(crate) fn redacted_backend_options(data: Option<Value>) -> Value {
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

pub(crate) async fn get_backend_options(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path(ws): Path<String>,
) -> Answer {
    authorize(&state, &headers, &ws)?;
    let data = state.store.backend_options(&ws).map_err(internal)?;
    Ok(Json(redacted_backend_options(data)).into_response())
}

/// Checks an ingress list on the wire; the error says which rule and why.
pub(crate) fn validate_ingress(ingress: &Value) -> Result<Vec<coiled_firewall::Rule>, String> {
    let Some(rules) = ingress.as_array() else {
        return Err("ingress must be a list of {ports, cidr} rules".into());
    };
    let mut out = Vec::new();
    for (i, r) in rules.iter().enumerate() {
        let cidr = r
            .get("cidr")
            .and_then(Value::as_str)
            .ok_or(format!("ingress rule {i}: cidr is required"))?;
        let c = coiled_firewall::parse_cidr(cidr).map_err(|e| format!("ingress rule {i}: {e}"))?;
        let ports = r
            .get("ports")
            .and_then(Value::as_array)
            .ok_or(format!("ingress rule {i}: ports must be a list"))?;
        if ports.is_empty() {
            return Err(format!("ingress rule {i}: ports must not be empty"));
        }
        let mut set = BTreeSet::new();
        for p in ports {
            let port = p
                .as_i64()
                .filter(|p| (1..=65535).contains(p))
                .ok_or(format!("ingress rule {i}: {p} is not a port from 1 to 65535"))?;
            set.insert(port as u16);
        }
        out.push(coiled_firewall::Rule { cidr: c.net, ports: set });
    }
    Ok(out)
}

pub(crate) fn rules_to_wire(rules: &[coiled_firewall::Rule]) -> Value {
    Value::Array(
        coiled_firewall::merge(rules)
            .0
            .iter()
            .map(|r| json!({"ports": r.ports.iter().collect::<Vec<_>>(), "cidr": r.cidr.to_string()}))
            .collect(),
    )
}

/// Checks an `update_options` payload as the service would; returns the data to store.
pub(crate) fn validate_backend_options(data: &Value) -> Result<Value, String> {
    let backend = data.get("backend").and_then(Value::as_str).ok_or("backend is required")?;
    if !matches!(backend, "vm" | "vm_aws" | "vm_gcp") {
        return Err(format!("unsupported backend {backend:?}"));
    }
    let options =
        data.get("options").and_then(Value::as_object).ok_or("options must be an object")?;
    let provider = options
        .get("provider_name")
        .and_then(Value::as_str)
        .ok_or("options.provider_name is required")?;
    if !matches!(provider, "aws" | "gcp") {
        return Err(format!("unsupported cloud provider {provider:?}; expected aws or gcp"));
    }
    if provider == "aws" {
        let creds = options.get("credentials").cloned().unwrap_or(Value::Null);
        let key = creds
            .get("aws_access_key")
            .or_else(|| creds.get("aws_access_key_id"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        let secret = creds
            .get("aws_secret_key")
            .or_else(|| creds.get("aws_secret_access_key"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if key.is_empty() || secret.is_empty() {
            return Err(
                "AWS credentials are required: aws_access_key_id and aws_secret_access_key".into(),
            );
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

pub(crate) async fn backend_options_socket(
    AxState(state): AxState<Shared>,
    headers: HeaderMap,
    Path(ws): Path<String>,
    upgrade: WebSocketUpgrade,
) -> Resp {
    match authorize(&state, &headers, &ws) {
        Ok((_, true)) => {
            upgrade.on_upgrade(move |socket| update_options_session(state, ws, socket))
        }
        Ok((_, false)) => {
            detail(StatusCode::FORBIDDEN, "Only workspace admins can edit backend options.")
        }
        Err(r) if r.status() == StatusCode::UNAUTHORIZED => {
            upgrade.on_upgrade(|mut socket| async move {
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code: 4403,
                        reason: "Unauthorized".into(),
                    })))
                    .await;
            })
        }
        Err(r) => r,
    }
}

pub(crate) async fn update_options_session(state: Shared, ws: String, mut socket: WebSocket) {
    let say = |message: &str, is_error: bool| {
        Message::Text(
            json!({"type": "update_options", "message": message, "is_error": is_error})
                .to_string()
                .into(),
        )
    };
    if socket
        .send(Message::Text(
            json!({"type": "greeting", "message": format!("connected to workspace {ws}")})
                .to_string()
                .into(),
        ))
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
        state.requests.record(
            "WS",
            &format!("/ws/api/v1/{ws}/cluster-info/"),
            None,
            text.as_bytes(),
        );
        // The answer travels a round trip after the message left the client.
        tokio::time::sleep(state.config.latency).await;
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
                    let _ = socket
                        .send(say("Internal error while saving backend options.", true))
                        .await;
                }
            },
            Err(e) => {
                let _ = socket.send(say(&e, true)).await;
            }
        }
        let _ = socket
            .send(Message::Close(Some(CloseFrame { code: 1000, reason: "done".into() })))
            .await;
        return;
    }
}
