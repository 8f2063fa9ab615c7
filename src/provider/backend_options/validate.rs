//! Checks of a `coiled_backend_options` configuration that need no API call: the backend and its
//! credentials, write-only versions, the workspace, the network and the ingress rules.

use tfplugin::diag::Diagnostics;
use tfplugin::value::{AttrPath, Value};

use super::super::ingress;

/// Every check.
pub(super) fn validate_config(config: &Value, diags: &mut Diagnostics) {
    let backend = config.get("backend").unwrap_or(&Value::Null);
    if let Some(b) = backend.as_str()
        && !matches!(b, "aws" | "gcp")
    {
        diags.error_at(AttrPath::attr("backend"), "Invalid Backend", format!("backend is {b:?}; it must be \"aws\" or \"gcp\"."));
    }
    match backend.as_str() {
        Some("aws") => aws_credentials(config, diags),
        Some("gcp") => gcp_credentials(config, diags),
        _ => {}
    }
    rest(config, diags);
    crate::provider::duration::validate_timeouts(config, &["create", "update"], diags);
}

fn set(config: &Value, name: &str) -> bool {
    config.get(name).is_some_and(|v| !v.is_null())
}

/// Known to be unset (an unknown value may still turn out set).
fn known_null(config: &Value, name: &str) -> bool {
    config.get(name).is_none_or(Value::is_null)
}

/// The aws backend: both keys, and nothing of gcp's.
fn aws_credentials(config: &Value, diags: &mut Diagnostics) {
    let set = |name: &str| set(config, name);
    let known_null = |name: &str| known_null(config, name);
    let no_key = known_null("aws_access_key_id");
    let no_secret = known_null("aws_secret_access_key") && known_null("aws_secret_access_key_wo");
    if no_key || no_secret {
        let (path, missing) = match (no_key, no_secret) {
            (true, true) => ("aws_access_key_id", "aws_access_key_id and aws_secret_access_key are missing"),
            (true, false) => ("aws_access_key_id", "aws_access_key_id is missing"),
            _ => ("aws_secret_access_key", "aws_secret_access_key is missing"),
        };
        diags.error_at(
            AttrPath::attr(path),
            "Missing AWS Credentials",
            format!("The aws backend needs both aws_access_key_id and aws_secret_access_key (or aws_secret_access_key_wo with Terraform 1.11 or later): {missing}."),
        );
    }
    for gcp in ["gcp_service_account_json", "gcp_service_account_json_wo", "gcp_project_id"] {
        if set(gcp) {
            diags.error_at(
                AttrPath::attr(gcp),
                "Conflicting Cloud Settings",
                format!("{gcp} is for the gcp backend; this resource uses aws."),
            );
        }
    }
}

/// The gcp backend: a usable service account key, and nothing of aws's.
fn gcp_credentials(config: &Value, diags: &mut Diagnostics) {
    let set = |name: &str| set(config, name);
    let known_null = |name: &str| known_null(config, name);
    if known_null("gcp_service_account_json") && known_null("gcp_service_account_json_wo") {
        diags.error_at(
            AttrPath::attr("gcp_service_account_json"),
            "Missing GCP Credentials",
            "The gcp backend needs gcp_service_account_json (or gcp_service_account_json_wo).",
        );
    }
    for aws in ["aws_access_key_id", "aws_secret_access_key", "aws_secret_access_key_wo"] {
        if set(aws) {
            diags.error_at(
                AttrPath::attr(aws),
                "Conflicting Cloud Settings",
                format!("{aws} is for the aws backend; this resource uses gcp."),
            );
        }
    }
    for name in ["gcp_service_account_json", "gcp_service_account_json_wo"] {
        if let Some(text) = config.get(name).and_then(Value::as_str) {
            match serde_json::from_str::<serde_json::Value>(text) {
                Ok(v) if v.get("project_id").and_then(|p| p.as_str()).is_some() || set("gcp_project_id") => {}
                Ok(_) => diags.error_at(
                    AttrPath::attr(name),
                    "Invalid GCP Credentials",
                    "The service account key has no project_id; set gcp_project_id.",
                ),
                // Never echo the text: it is a credential.
                Err(e) => diags.error_at(
                    AttrPath::attr(name),
                    "Invalid GCP Credentials",
                    format!("The service account key is not valid JSON (syntax error at line {}, column {}).", e.line(), e.column()),
                ),
            }
        }
    }
}

/// Write-only versions, the workspace, the network and the ingress.
fn rest(config: &Value, diags: &mut Diagnostics) {
    let set = |name: &str| set(config, name);
    let known_null = |name: &str| known_null(config, name);
    for (value, version) in [
        ("aws_secret_access_key_wo", "aws_secret_access_key_wo_version"),
        ("gcp_service_account_json_wo", "gcp_service_account_json_wo_version"),
    ] {
        if set(version) && known_null(value) {
            diags.error_at(
                AttrPath::attr(version),
                "Version Without Value",
                format!("{version} only has a meaning together with {value}."),
            );
        }
    }
    if let Some(ws) = config.get("workspace").and_then(Value::as_str)
        && (ws.is_empty() || ws.contains('/'))
    {
        diags.error_at(AttrPath::attr("workspace"), "Invalid Workspace", format!("{ws:?} is not a workspace slug."));
    }
    if let Some(net) = config.get("network").filter(|n| !n.is_null()) {
        for key in ["network_id", "scheduler_subnet_id", "worker_subnet_id", "firewall_id"] {
            if net.get(key).and_then(Value::as_str).is_some_and(|s| s.trim().is_empty()) {
                diags.error_at(
                    AttrPath::attr("network").then(key),
                    "Empty Network Identifier",
                    format!("{key} is empty; remove it or give an identifier."),
                );
            }
        }
    }
    let ack = config.get("acknowledge_world_open_ingress").and_then(Value::as_bool).unwrap_or(false);
    ingress::parse(config.get("ingress").unwrap_or(&Value::Null), &AttrPath::attr("ingress"), ack, true, diags);
}
