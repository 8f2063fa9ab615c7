//! The JSON the local control plane speaks, written from the API facts (see the module docs).

use serde::Deserialize;
use serde_json::{Value, json};

use super::store::{ClusterRow, WorkerRow};

/// A create request: the fields the server uses; everything else is accepted and ignored.
#[derive(Debug, Deserialize)]
pub struct CreateCluster {
    /// Name (optional `<workspace>/` prefix).
    pub name: Option<String>,
    /// Initial worker count.
    #[serde(default)]
    pub workers: Option<i64>,
    /// Worker instance types.
    #[serde(default)]
    pub worker_instance_types: Option<Vec<String>>,
    /// Scheduler instance types.
    #[serde(default)]
    pub scheduler_instance_types: Option<Vec<String>>,
    /// Scheduler options (`port`, `idle_timeout`).
    #[serde(default)]
    pub scheduler_options: Option<Value>,
    /// Tags.
    #[serde(default)]
    pub tags: Option<Value>,
    /// Software environment name (current clients).
    #[serde(default)]
    pub env_name: Option<String>,
    /// Package-sync build id.
    #[serde(default)]
    pub env_id: Option<i64>,
    /// Software environment name (2023 clients).
    #[serde(default)]
    pub software_environment: Option<String>,
    /// Backend options (`firewall_spec`, `region_name`, …).
    #[serde(default)]
    pub options: Option<Value>,
}

/// The instance state that goes with a process state.
fn instance_state(process_state: &str) -> &'static str {
    match process_state {
        "pending" => "queued",
        "starting" => "starting",
        "started" => "ready",
        "stopping" => "stopping",
        "stopped" => "stopped",
        _ => "error",
    }
}

/// Why a worker is in `error`, as its state's reason says.
pub fn worker_reason(w: &WorkerRow) -> &str {
    match (w.state.as_str(), w.fate.as_deref()) {
        ("error", Some("fail")) => {
            "coiled-local: this worker was set to fail (tag coiled-local/failed-workers)"
        }
        ("error", Some(fate)) => fate.strip_prefix("error: ").unwrap_or(""),
        _ => "",
    }
}

/// A worker as the API reports it.
pub fn worker_json(w: &WorkerRow) -> Value {
    json!({
        "id": w.id,
        "name": w.name,
        "created": w.created,
        "current_state": {"state": w.state, "reason": worker_reason(w), "updated": w.updated},
        "instance": {
            "id": w.id, "name": format!("{}-instance", w.name), "created": w.created,
            "public_ip_address": null, "private_ip_address": w.private_ip, "instance_type_id": null,
            "current_state": {"state": instance_state(&w.state), "reason": "", "updated": w.updated},
        },
    })
}

/// The full cluster details object (`GET …/id/{id}`).
pub fn cluster_json(c: &ClusterRow, workers: &[WorkerRow], tls: (&str, &str)) -> Value {
    let tagged = |tag: &str| c.tags.get(tag).filter(|v| v.is_string()).cloned();
    let proc_state = c.scheduler_state.as_str();
    let inst_state = instance_state(proc_state);
    let scheduler_reason = if proc_state == "error" { c.reason.as_str() } else { "" };
    let mut options = c.options.clone();
    if !options.is_object() {
        options = json!({});
    }
    let o = options.as_object_mut().expect("object");
    o.insert("firewall_spec".into(), json!({"ingress": c.firewall}));
    o.insert("tls_cert".into(), tls.0.into());
    o.insert("tls_key".into(), tls.1.into());
    o.entry("region_name").or_insert("us-east-1".into());
    o.entry("zone_name").or_insert("us-east-1a".into());
    json!({
        "id": c.id,
        "name": c.name,
        "workspace": c.workspace,
        "account": c.workspace,
        "created": c.created,
        "updated": c.updated,
        "current_state": {"state": c.state, "reason": c.reason, "updated": c.updated},
        "desired_workers": c.desired_workers,
        "scheduler_port": c.scheduler_port,
        "scheduler": {
            "id": c.id,
            "name": format!("{}-scheduler", c.name),
            "created": c.created,
            "current_state": {"state": proc_state, "reason": scheduler_reason, "updated": c.updated},
            "dashboard_address": dashboard_address(c, tls.1),
            "instance": {
                "id": c.id, "name": format!("{}-scheduler-instance", c.name), "created": c.created,
                // A cluster tagged `coiled-local/no-public-ip` is given a public IP that its
                // instance does not report, as a VM still without one would be.
                "public_ip_address": match (tagged("coiled-local/scheduler-ip"), c.give_public_ip && tagged("coiled-local/no-public-ip").is_none()) {
                    (Some(ip), true) => ip,
                    (None, true) => Value::from(c.public_ip.clone()),
                    (_, false) => Value::Null,
                },
                // A cluster tagged `coiled-local/scheduler-ip` reports that address for its scheduler
                // (a loopback one, for tests of a scheduler nothing listens on).
                "private_ip_address": tagged("coiled-local/scheduler-ip").unwrap_or_else(|| Value::from(c.private_ip.clone())),
                "instance_type_id": c.scheduler_instance_types.get(0).cloned().unwrap_or(Value::Null),
                "current_state": {"state": inst_state, "reason": "", "updated": c.updated},
            },
        },
        "workers": workers.iter().filter(|w| w.state != "stopped").map(worker_json).collect::<Vec<_>>(),
        "cluster_options": options,
        "cluster_infra": {
            "give_scheduler_public_ip": c.give_public_ip,
            "firewall_source": c.firewall_source,
            "security_group_rules": security_group_rules(&c.firewall),
        },
        "tags": c.tags,
        "senv_alias": {"name": c.software},
        "backend_type": "vm_aws",
        "coiled_hosted": false,
        "cost_per_hour": 0.0, "total_cost": 0.0, "billable_time": 0,
    })
}

/// The effective rules as security-group rows: one per (protocol, port, source), as Coiled's docs
/// tabulate them.
/// Whether the dashboard is served over HTTPS: `use_dashboard_https`, which the client sends, true
/// unless turned off.
pub fn dashboard_https(c: &ClusterRow) -> bool {
    c.options.get("use_dashboard_https").and_then(Value::as_bool) != Some(false)
}

/// The address the dashboard is on: the scheduler's public one when the cluster has one, unless the
/// create asked for a private dashboard (`use_dashboard_public_ip = false`, which the client sends
/// for a private scheduler with HTTPS off); never the address a request named.
fn dashboard_host(c: &ClusterRow) -> String {
    let public = c.give_public_ip
        && c.options.get("use_dashboard_public_ip").and_then(Value::as_bool) != Some(false);
    let ip = if public { &c.public_ip } else { &c.private_ip };
    if ip.contains(':') { format!("[{ip}]") } else { ip.to_string() }
}

/// The dashboard's URL. As Coiled's client expects of the service (`Cluster.dashboard_link` in
/// `coiled/v2/cluster.py` moves a `token=` query into the path for notebooks), a simulated HTTPS
/// dashboard carries an access token in its query: here one drawn from the cluster's TLS key, its id
/// and creation time, so that it is secret and differs between clusters. A plain HTTP dashboard is on
/// port 8787 and carries none.
fn dashboard_address(c: &ClusterRow, tls_key: &str) -> String {
    let host = dashboard_host(c);
    if !dashboard_https(c) {
        return format!("http://{host}:8787/status");
    }
    let seed = format!("{tls_key}\n{}\n{}", c.id, c.created);
    let digest = ring::digest::digest(&ring::digest::SHA256, seed.as_bytes());
    let token: String = digest.as_ref()[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("https://{host}/status?token={token}")
}

/// A real cluster's dashboard: Dask's own, on port 8787 of the same address, over HTTPS with the
/// cluster's certificate when asked for. Dask's dashboard checks no token, so none is shown.
pub fn real_dashboard_address(c: &ClusterRow) -> String {
    let scheme = if dashboard_https(c) { "https" } else { "http" };
    format!("{scheme}://{}:8787/status", dashboard_host(c))
}

fn security_group_rules(firewall: &Value) -> Value {
    let rules = stored_rules(firewall);
    Value::Array(
        coiled_firewall::firewall_rows(&rules)
            .into_iter()
            .map(|r| json!({"protocol": r.protocol, "port": r.port, "source": r.source}))
            .collect(),
    )
}

/// The rules of a stored `[{ports, cidr}]` list (a cluster's effective rules, an ingress list), each
/// canonical; entries that are not rules are skipped.
pub fn stored_rules(list: &Value) -> Vec<coiled_firewall::Rule> {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|r| {
                    let ports: Vec<i64> =
                        r.get("ports")?.as_array()?.iter().filter_map(Value::as_i64).collect();
                    coiled_firewall::rule_from_wire(&ports, r.get("cidr")?.as_str()?)
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A list entry (`GET …/clusters/account/{ws}/`).
pub fn cluster_list_item(c: &ClusterRow) -> Value {
    json!({"id": c.id, "name": c.name, "created": c.created, "updated": c.updated, "current_state": {"state": c.state, "reason": c.reason, "updated": c.updated}})
}

/// Parses JSON that may contain Python's bare `Infinity`, `-Infinity` and `NaN` tokens (the Coiled client
/// sends them in `dask_config`): outside strings they are read as `null`.
pub fn parse_lenient(body: &[u8]) -> Result<Value, serde_json::Error> {
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(first) => {
            let text = String::from_utf8_lossy(body);
            let mut out = String::with_capacity(text.len());
            let mut in_str = false;
            let mut escaped = false;
            let mut rest = text.as_ref();
            while let Some(ch) = rest.chars().next() {
                if in_str {
                    out.push(ch);
                    if escaped {
                        escaped = false;
                    } else if ch == '\\' {
                        escaped = true;
                    } else if ch == '"' {
                        in_str = false;
                    }
                    rest = &rest[ch.len_utf8()..];
                    continue;
                }
                if ch == '"' {
                    in_str = true;
                    out.push(ch);
                    rest = &rest[1..];
                    continue;
                }
                let mut replaced = false;
                for token in ["-Infinity", "Infinity", "NaN"] {
                    if rest.starts_with(token) {
                        out.push_str("null");
                        rest = &rest[token.len()..];
                        replaced = true;
                        break;
                    }
                }
                if !replaced {
                    out.push(ch);
                    rest = &rest[ch.len_utf8()..];
                }
            }
            serde_json::from_str(&out).map_err(|_| first)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_infinity_is_accepted_outside_strings_only() {
        let v = parse_lenient(br#"{"a": Infinity, "b": -Infinity, "c": NaN, "d": "Infinity NaN", "e": [1, Infinity]}"#).unwrap();
        assert_eq!(v["a"], Value::Null);
        assert_eq!(v["b"], Value::Null);
        assert_eq!(v["d"], "Infinity NaN");
        assert_eq!(v["e"][1], Value::Null);
        assert!(parse_lenient(b"{bad").is_err());
    }
}
