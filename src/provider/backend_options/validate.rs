//! Checks of a `coiled_backend_options` configuration that need no API call: the backend and its
//! credentials, write-only versions, the workspace, the network and the ingress rules.

use tfplugin::attr;
use tfplugin::diag::Diagnostics;
use tfplugin::value::{AttrPath, Value};

use super::super::ingress::{self, Reading};
use super::wire::{BackendOptionsModel as M, Network};

/// Every check.
pub(super) fn validate_config(config: &Value, diags: &mut Diagnostics) {
    M::check_values(config, diags);
    let config = &M::decode(config);
    match config.backend.as_deref() {
        Some("aws") => aws_credentials(config, diags),
        Some("gcp") => gcp_credentials(config, diags),
        _ => {}
    }
    rest(config, diags);
}

/// The arguments of the other backend (`other`) set, or not known yet, for backend `own`.
fn foreign(arguments: [(&str, bool); 3], other: &str, own: &str, diags: &mut Diagnostics) {
    for (name, _) in arguments.into_iter().filter(|(_, set)| *set) {
        diags.error_at(
            AttrPath::attr(name),
            "Conflicting Cloud Settings",
            format!("{name} is for the {other} backend; this resource uses {own}."),
        );
    }
}

/// The aws backend: both keys, and nothing of gcp's.
fn aws_credentials(config: &M, diags: &mut Diagnostics) {
    let no_key = config.aws_access_key_id.is_null();
    let no_secret =
        config.aws_secret_access_key.is_null() && config.aws_secret_access_key_wo.is_null();
    if no_key || no_secret {
        let (path, missing) = match (no_key, no_secret) {
            (true, true) => {
                ("aws_access_key_id", "aws_access_key_id and aws_secret_access_key are missing")
            }
            (true, false) => ("aws_access_key_id", "aws_access_key_id is missing"),
            _ => ("aws_secret_access_key", "aws_secret_access_key is missing"),
        };
        diags.error_at(
            AttrPath::attr(path),
            "Missing AWS Credentials",
            format!(
                "The aws backend needs both aws_access_key_id and aws_secret_access_key (or \
                aws_secret_access_key_wo with Terraform 1.11 or later): {missing}."
            ),
        );
    }
    let gcp = [
        (attr!(M, gcp_service_account_json), !config.gcp_service_account_json.is_null()),
        (attr!(M, gcp_service_account_json_wo), !config.gcp_service_account_json_wo.is_null()),
        (attr!(M, gcp_project_id), !config.gcp_project_id.is_null()),
    ];
    foreign(gcp, "gcp", "aws", diags);
}

/// The gcp backend: a usable service account key, and nothing of aws's.
fn gcp_credentials(config: &M, diags: &mut Diagnostics) {
    if config.gcp_service_account_json.is_null() && config.gcp_service_account_json_wo.is_null() {
        diags.error_at(
            AttrPath::attr("gcp_service_account_json"),
            "Missing GCP Credentials",
            "The gcp backend needs gcp_service_account_json (or gcp_service_account_json_wo).",
        );
    }
    let aws = [
        (attr!(M, aws_access_key_id), !config.aws_access_key_id.is_null()),
        (attr!(M, aws_secret_access_key), !config.aws_secret_access_key.is_null()),
        (attr!(M, aws_secret_access_key_wo), !config.aws_secret_access_key_wo.is_null()),
    ];
    foreign(aws, "aws", "gcp", diags);
    for (name, value) in [
        (attr!(M, gcp_service_account_json), &config.gcp_service_account_json),
        (attr!(M, gcp_service_account_json_wo), &config.gcp_service_account_json_wo),
    ] {
        let Some(text) = value.known() else { continue };
        let detail = match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v)
                if v.get("project_id").and_then(|p| p.as_str()).is_some()
                    || !config.gcp_project_id.is_null() =>
            {
                continue;
            }
            Ok(_) => "The service account key has no project_id; set gcp_project_id.".to_string(),
            // Never echo the text: it is a credential.
            Err(e) => format!(
                "The service account key is not valid JSON (syntax error at line {}, \
                    column {}).",
                e.line(),
                e.column()
            ),
        };
        diags.error_at(AttrPath::attr(name), "Invalid GCP Credentials", detail);
    }
}

/// Write-only versions, the workspace, the network and the ingress.
fn rest(config: &M, diags: &mut Diagnostics) {
    let pairs = [
        (
            attr!(M, aws_secret_access_key_wo),
            &config.aws_secret_access_key_wo,
            attr!(M, aws_secret_access_key_wo_version),
            &config.aws_secret_access_key_wo_version,
        ),
        (
            attr!(M, gcp_service_account_json_wo),
            &config.gcp_service_account_json_wo,
            attr!(M, gcp_service_account_json_wo_version),
            &config.gcp_service_account_json_wo_version,
        ),
    ];
    for (value, v, version, ver) in pairs {
        if !ver.is_null() && v.is_null() {
            diags.error_at(
                AttrPath::attr(version),
                "Version Without Value",
                format!("{version} only has a meaning together with {value}."),
            );
        }
    }
    if let Some(net) = config.network.known() {
        let ids = [
            (attr!(Network, network_id), &net.network_id),
            (attr!(Network, scheduler_subnet_id), &net.scheduler_subnet_id),
            (attr!(Network, worker_subnet_id), &net.worker_subnet_id),
            (attr!(Network, firewall_id), &net.firewall_id),
        ];
        for (key, id) in ids {
            if id.known().is_some_and(|s| s.trim().is_empty()) {
                diags.error_at(
                    AttrPath::attr("network").then(key),
                    "Empty Network Identifier",
                    format!("{key} is empty; remove it or give an identifier."),
                );
            }
        }
    }
    let ack = config.acknowledge_world_open_ingress.known().copied().unwrap_or(false);
    ingress::read(
        &config.ingress_value(),
        &Reading::validating(AttrPath::attr("ingress"), ack),
        diags,
    );
}
