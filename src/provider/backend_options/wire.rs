//! The backend options' wire forms: the `update_options` payload built from a plan, exactly as
//! Coiled's `set_backend_options` builds it, and the state built from what `GET backend_options`
//! reports, with the descriptions that name drift and takeovers.

use std::collections::BTreeMap;

use coiled_firewall::Rule;
use tfplugin::diag::Diagnostics;
use tfplugin::value::{AttrPath, Value};

use super::super::ingress::{self, Parsed};
use crate::api::{
    AwsKeys, AwsOptions, BackendOptionsData, BackendOptionsRead, CloudOptions, EmptyAwsKeys, FirewallSpecOut, GcpOptions, Registry,
};

/// Default regions, as Coiled's client picks them.
pub(crate) const AWS_DEFAULT_REGION: &str = "us-east-1";
pub(crate) const GCP_DEFAULT_REGION: &str = "us-east1";

pub(crate) fn str_attr<'a>(v: &'a Value, name: &str) -> Option<&'a str> {
    v.get(name).and_then(Value::as_str)
}

/// A secret from its sensitive attribute, else its write-only variant.
pub(crate) fn secret<'a>(config: &'a Value, planned: &'a Value, name: &str, wo: &str) -> Option<&'a str> {
    str_attr(planned, name).or_else(|| str_attr(config, name)).or_else(|| str_attr(config, wo)).filter(|s| !s.is_empty())
}

/// Builds the `update_options` payload exactly as Coiled's `set_backend_options` does.
pub fn payload(planned: &Value, config: &Value, rules: &[Rule]) -> Result<BackendOptionsData, String> {
    let backend = str_attr(planned, "backend").unwrap_or("aws");
    let zone = str_attr(planned, "zone").map(str::to_string);
    let network: BTreeMap<String, String> = planned
        .get("network")
        .filter(|n| !n.is_null())
        .map(|n| {
            ["network_id", "scheduler_subnet_id", "worker_subnet_id", "firewall_id"]
                .iter()
                .filter_map(|key| str_attr(n, key).map(|v| (key.to_string(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    let firewall_spec = FirewallSpecOut { ingress: (!rules.is_empty()).then(|| ingress::to_wire(rules)) };
    match backend {
        "aws" => {
            let region = str_attr(planned, "region").unwrap_or(AWS_DEFAULT_REGION).to_string();
            let key = secret(config, planned, "aws_access_key_id", "").ok_or("aws_access_key_id is required for the aws backend")?;
            let secret = secret(config, planned, "aws_secret_access_key", "aws_secret_access_key_wo")
                .ok_or("aws_secret_access_key (or aws_secret_access_key_wo) is required for the aws backend")?;
            let ecr = BTreeMap::from([
                ("aws_access_key_id".to_string(), key.to_string()),
                ("aws_secret_access_key".to_string(), secret.to_string()),
            ]);
            Ok(BackendOptionsData {
                backend: "vm",
                options: CloudOptions::Aws(AwsOptions {
                    aws_region_name: region.clone(),
                    account_role: String::new(),
                    credentials: AwsKeys { aws_access_key: key.to_string(), aws_secret_key: secret.to_string() },
                    firewall: BTreeMap::new(),
                    firewall_spec,
                    network,
                    zone,
                    provider_name: "aws",
                    kind: "aws_cloudbridge_backend_options",
                }),
                registry: Registry { kind: "ecr", credentials: ecr, public_ecr: false, region },
            })
        }
        "gcp" => {
            let region = str_attr(planned, "region").unwrap_or(GCP_DEFAULT_REGION).to_string();
            let creds_text = secret(config, planned, "gcp_service_account_json", "gcp_service_account_json_wo")
                .ok_or("gcp_service_account_json (or gcp_service_account_json_wo) is required for the gcp backend")?;
            let creds: serde_json::Value =
                serde_json::from_str(creds_text).map_err(|e| format!("gcp_service_account_json is not JSON: {e}"))?;
            let project = str_attr(planned, "gcp_project_id")
                .map(str::to_string)
                .or_else(|| creds.get("project_id").and_then(|p| p.as_str()).map(str::to_string));
            Ok(BackendOptionsData {
                backend: "vm",
                options: CloudOptions::Gcp(GcpOptions {
                    aws_region_name: AWS_DEFAULT_REGION.to_string(),
                    account_role: String::new(),
                    credentials: EmptyAwsKeys::default(),
                    firewall: BTreeMap::new(),
                    firewall_spec,
                    network,
                    zone: zone.clone(),
                    gcp_service_creds_dict: creds,
                    provider_name: "gcp",
                    kind: "gcp_cloudbridge_backend_options",
                    gcp_project_name: project,
                    gcp_region_name: region,
                    gcp_zone_name: zone,
                    instance_service_account: None,
                }),
                registry: Registry { kind: "ecr", credentials: BTreeMap::new(), public_ecr: false, region: AWS_DEFAULT_REGION.to_string() },
            })
        }
        other => Err(format!("unsupported backend {other:?}")),
    }
}

/// The state after reading `server`'s answer on top of `prior`: what the server reports replaces what it
/// contradicts; credentials (never returned) and anything the server does not report are kept.
pub fn state_from_server(prior: &Value, server: &BackendOptionsRead) -> Value {
    let mut state = prior.clone();
    if let Some(p) = server.provider_name() {
        state.set_attr("backend", Value::string(p));
    }
    if let Some(r) = server.region() {
        state.set_attr("region", Value::string(r));
    }
    if let Some(zone) = server.zone() {
        state.set_attr("zone", zone.map(Value::string).unwrap_or(Value::Null));
    }
    if let Some(project) = server.gcp_project_name() {
        state.set_attr("gcp_project_id", Value::string(project));
    }
    if let Some(net) = server.network() {
        let keys = ["network_id", "scheduler_subnet_id", "worker_subnet_id", "firewall_id"];
        let value = if net.iter().all(Option::is_none) {
            Value::Null
        } else {
            Value::object(keys.iter().zip(net).map(|(k, v)| (*k, v.map(Value::string).unwrap_or(Value::Null))))
        };
        state.set_attr("network", value);
    }
    if let Some(wire) = server.ingress() {
        let rules = ingress::from_wire(&wire);
        let prior_ingress = prior.get("ingress").cloned().unwrap_or(Value::Null);
        state.set_attr("ingress", ingress::state_value(&rules, &prior_ingress));
    }
    let rules = match ingress::parse(state.get("ingress").unwrap_or(&Value::Null), &AttrPath::root(), true, false, &mut Diagnostics::new())
    {
        Parsed::Rules(r) => r,
        _ => Vec::new(),
    };
    state.set_attr("firewall_rules", ingress::rows_value(&rules));
    state
}

/// The settings one workspace's options hold, in words, for comparing two of them: backend, region,
/// zone, ingress rules and network.
pub(crate) fn describe(state: &Value) -> Vec<(&'static str, String)> {
    let text = |name: &str| str_attr(state, name).unwrap_or("(unset)").to_string();
    let rules = match ingress::parse(state.get("ingress").unwrap_or(&Value::Null), &AttrPath::root(), true, false, &mut Diagnostics::new())
    {
        Parsed::Rules(r) if !r.is_empty() => r
            .iter()
            .map(|r| format!("{} → {}", r.cidr, r.ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",")))
            .collect::<Vec<_>>()
            .join("; "),
        _ => "none (Coiled's default rules apply)".to_string(),
    };
    let network = match state.get("network") {
        Some(Value::Object(n)) => n.iter().filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}"))).collect::<Vec<_>>().join(", "),
        _ => String::new(),
    };
    vec![
        ("backend", text("backend")),
        ("region", text("region")),
        ("zone", text("zone")),
        ("ingress", rules),
        ("network", if network.is_empty() { "Coiled-managed".to_string() } else { network }),
    ]
}

/// What differs between two descriptions, as `name: before → after` lines.
pub(crate) fn differences(before: &[(&str, String)], after: &[(&str, String)]) -> Vec<String> {
    before.iter().zip(after).filter(|(b, a)| b.1 != a.1).map(|(b, a)| format!("  {}: {} → {}", b.0, b.1, a.1)).collect()
}

/// Whether options as read are Coiled's defaults for a workspace nobody has configured.
pub(crate) fn is_default(described: &[(&str, String)]) -> bool {
    let default = describe(&Value::object([
        ("backend", Value::string("aws")),
        ("region", Value::string(AWS_DEFAULT_REGION)),
        ("zone", Value::Null),
        ("ingress", Value::Null),
        ("network", Value::Null),
    ]));
    described == default.as_slice()
}
