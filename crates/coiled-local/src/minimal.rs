//! `--minimal-echo`: answers carry only the fields the public `coiled` client reads (the provider's
//! wire ledger, `docs/wire-ledger.md`, lists them with the client function that reads each). A client
//! that needs anything else from a terse server fails against this mode.
//!
//! Each shape is JSON: an object keeps exactly its keys (each projected by its value), `1` keeps the
//! value whole, and an array's one element projects every element.

use serde_json::{Value, json};

const PROCESS: &str = r#"{"name": 1, "current_state": {"state": 1, "reason": 1}, "dashboard_address": 1,
  "instance": {"public_ip_address": 1, "private_ip_address": 1, "current_state": {"state": 1, "reason": 1}}}"#;

/// The shape of the answer to `route` (`METHOD /path` with ids as `{}`), if it is one the minimal mode trims.
pub fn shape_for(route: &str) -> Option<Value> {
    let process: Value = serde_json::from_str(PROCESS).expect("valid shape");
    Some(match route {
        "GET /api/v2/user/me" => json!({"username": 1}),
        "GET /api/v2/user/me/memberships" => {
            json!([{"account": {"slug": 1}, "is_admin": 1, "is_default_account": 1}])
        }
        "GET /api/v1/{}/backend_options/" => json!({"backend": 1, "options": {"provider_name": 1}}),
        "POST /api/v2/clusters/account/{}/" => json!({"id": 1, "existing": 1}),
        "GET /api/v2/clusters/account/{}/" => {
            json!([{"id": 1, "name": 1, "updated": 1, "current_state": {"state": 1}}])
        }
        "GET /api/v2/clusters/account/{}/name/{}" => json!({"id": 1}),
        "GET /api/v2/clusters/account/{}/id/{}" => json!({
            "id": 1, "name": 1, "created": 1, "current_state": {"state": 1, "reason": 1}, "desired_workers": 1,
            "scheduler_port": 1, "scheduler": process, "workers": [process], "cluster_options": {"region_name": 1, "tls_cert": 1, "tls_key": 1},
            "cluster_infra": {"give_scheduler_public_ip": 1}, "senv_alias": {"name": 1},
        }),
        "GET /api/v2/workers/account/{}/cluster/{}/" => json!([process]),
        "POST /api/v2/software-environment/account/{}" => {
            json!({"id": 1, "latest_spec": {"id": 1, "latest_build": {"id": 1, "state": 1}}})
        }
        "GET /api/v2/software-environment/account/{}/build/{}" => json!({"state": 1, "reason": 1}),
        "GET /api/v2/software-environment/account/{}/build/logs/{}" => {
            json!({"events": [{"eventId": 1, "message": 1}], "nextToken": 1})
        }
        "GET /api/v2/software-environment/account/{}/alias/name/{}" => {
            json!({"latest_spec": {"id": 1}})
        }
        "GET /api/v2/software-environment/account/{}/alias" => {
            json!({"items": [{"name": 1}], "count": 1})
        }
        // Printed whole by the client, which reads none of its fields.
        "GET /api/v2/software-environment/account/{}/spec/{}" => json!({}),
        _ => return None,
    })
}

/// `value` trimmed to `shape`.
pub fn project(value: &Value, shape: &Value) -> Value {
    match (value, shape) {
        (Value::Object(v), Value::Object(s)) => Value::Object(
            s.iter()
                .filter_map(|(k, sub)| v.get(k).map(|x| (k.clone(), project(x, sub))))
                .collect(),
        ),
        (Value::Array(items), Value::Array(s)) if s.len() == 1 => {
            Value::Array(items.iter().map(|i| project(i, &s[0])).collect())
        }
        (v, Value::Number(_)) => v.clone(),
        // A value of another kind than the shape expects (null, say) is passed as it is.
        (v, _) => v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_keep_only_the_shape() {
        let shape = shape_for("GET /api/v2/clusters/account/{}/id/{}").unwrap();
        let full = json!({"id": 1, "name": "a", "tags": {"x": "y"}, "cluster_options": {"region_name": "r", "firewall_spec": {}},
            "workers": [{"name": "w", "id": 9, "instance": {"private_ip_address": "10.0.0.1", "id": 3}}], "scheduler": null});
        assert_eq!(
            project(&full, &shape),
            json!({"id": 1, "name": "a", "cluster_options": {"region_name": "r"},
                "workers": [{"name": "w", "instance": {"private_ip_address": "10.0.0.1"}}], "scheduler": null})
        );
        assert!(shape_for("GET /_local/requests").is_none());
    }
}
