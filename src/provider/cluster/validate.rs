//! Checks of a `coiled_cluster` configuration that need no API call. Only known values are judged:
//! unknown ones are checked again at apply.

use tfplugin::diag::Diagnostics;
use tfplugin::value::{AttrPath, Value};

use super::super::ingress;
use super::model::*;

/// Every check, in the order the attributes appear in the schema.
pub(super) fn validate_config(config: &Value, diags: &mut Diagnostics) {
    names_and_places(config, diags);
    sizes(config, diags);
    durations(config, diags);
    tags_and_environment(config, diags);
    backend_options_block(config, diags);
}

/// `name`, `workspace`, `software`.
fn names_and_places(config: &Value, diags: &mut Diagnostics) {
    if let Some(name) = s(config, "name")
        && !valid_name(name)
    {
        diags.error_at(
            AttrPath::attr("name"),
            "Invalid Cluster Name",
            format!("{name:?} is not a valid cluster name: use letters, digits, `-` and `_`, at most 128 characters."),
        );
    }
    if let Some(sw) = s(config, "software")
        && sw.trim().is_empty()
    {
        diags.error_at(
            AttrPath::attr("software"),
            "Empty Software Environment",
            "software is empty; remove it or name a software environment.",
        );
    }
    if let Some(ws) = s(config, "workspace")
        && (ws.is_empty() || ws.contains('/'))
    {
        diags.error_at(AttrPath::attr("workspace"), "Invalid Workspace", format!("{ws:?} is not a workspace slug."));
    }
}

/// `n_workers`, `wait_for_workers`, the VM type lists.
fn sizes(config: &Value, diags: &mut Diagnostics) {
    if let Some(n) = config.get("n_workers").and_then(Value::as_number) {
        match n.as_i64() {
            Some(n) if (0..=1000).contains(&n) => {}
            _ => diags.error_at(
                AttrPath::attr("n_workers"),
                "Invalid Worker Count",
                format!("n_workers is {n}; it must be a whole number from 0 to 1000."),
            ),
        }
    }
    if let Some(f) = config.get("wait_for_workers").and_then(Value::as_number)
        && !f.as_f64().is_some_and(|f| (0.0..=1.0).contains(&f))
    {
        {
            diags.error_at(
                AttrPath::attr("wait_for_workers"),
                "Invalid Wait Fraction",
                format!("wait_for_workers is {f}; it must be from 0 (do not wait for workers) to 1 (wait for all)."),
            );
        }
    }
    for list in ["worker_vm_types", "scheduler_vm_types"] {
        if let Some(items) = config.get(list).and_then(Value::as_elements) {
            if items.is_empty() {
                diags.error_at(
                    AttrPath::attr(list),
                    "Empty VM Type List",
                    format!("{list} is empty; remove it to let Coiled choose, or name at least one type."),
                );
            }
            if items.iter().any(|i| i.as_str().is_some_and(|s| s.trim().is_empty())) {
                diags.error_at(AttrPath::attr(list), "Empty VM Type", format!("{list} contains an empty name."));
            }
        }
    }
}

/// `timeouts` and `idle_timeout`.
fn durations(config: &Value, diags: &mut Diagnostics) {
    crate::provider::duration::validate_timeouts(config, &["create", "update", "delete"], diags);
    if let Some(idle) = s(config, "idle_timeout")
        && let Err(e) = crate::provider::duration::parse_dask_timedelta(idle)
    {
        diags.error_at(AttrPath::attr("idle_timeout"), "Invalid Idle Timeout", e);
    }
}

/// `tags` and `environ`.
fn tags_and_environment(config: &Value, diags: &mut Diagnostics) {
    if let Some(tags) = config.get("tags").and_then(Value::as_map) {
        for (k, v) in tags {
            if k.is_empty() || k.len() > 128 {
                diags.error_at(AttrPath::attr("tags").key(k), "Invalid Tag", "Tag keys must have 1 to 128 characters.");
            }
            if v.as_str().is_some_and(|v| v.len() > 256) {
                diags.error_at(AttrPath::attr("tags").key(k), "Invalid Tag", "Tag values may have at most 256 characters.");
            }
        }
    }
    if let Some(env) = config.get("environ").and_then(Value::as_map) {
        for k in env.keys() {
            if k.is_empty() || k.contains('=') || k.contains('\0') {
                diags.error_at(
                    AttrPath::attr("environ"),
                    "Invalid Environment Variable",
                    format!("{k:?} is not a valid environment variable name."),
                );
            }
        }
    }
}

/// `backend_options`: non-empty region and zone, and valid ingress.
fn backend_options_block(config: &Value, diags: &mut Diagnostics) {
    let bo = backend_options(config);
    if !bo.is_null() {
        for key in ["region", "zone"] {
            if s(bo, key).is_some_and(|v| v.trim().is_empty()) {
                diags.error_at(
                    AttrPath::attr("backend_options").then(key),
                    "Empty Value",
                    format!("backend_options.{key} is empty; remove it or give a value."),
                );
            }
        }
        let ack = config.get("acknowledge_world_open_ingress").and_then(Value::as_bool).unwrap_or(false);
        ingress::parse(bo.get("ingress").unwrap_or(&Value::Null), &AttrPath::attr("backend_options").then("ingress"), ack, true, diags);
    }
}
