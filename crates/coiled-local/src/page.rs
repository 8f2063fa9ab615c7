//! The page for people at `/`: workspaces, each one's backend options with its firewall table, and its
//! clusters with state, addresses and effective rules. The markup is `templates/page.html`, rendered by
//! askama, which checks the template at compile time and HTML-escapes every value it prints.

use askama::Template;
use axum::extract::State as AxState;
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use super::Shared;
use super::store::ClusterRow;

#[derive(Template)]
#[template(path = "page.html")]
struct Page {
    workspaces: Vec<WorkspaceView>,
}

struct WorkspaceView {
    name: String,
    options: Option<OptionsView>,
    clusters: Vec<ClusterView>,
}

struct OptionsView {
    cloud: String,
    region: String,
    rules: Vec<coiled_firewall::Row>,
}

struct ClusterView {
    id: i64,
    name: String,
    state: String,
    created: String,
    updated: String,
    /// The label ("Failure reason" for a cluster in error) and the reason, when there is one.
    reason: Option<(&'static str, String)>,
    workers: String,
    /// Each failed worker's name and why it failed.
    failed: Vec<(String, String)>,
    private_ip: String,
    scheduler_port: i64,
    public_ip: String,
    firewall_source: String,
    rules: Vec<coiled_firewall::Row>,
    /// The nftables ruleset in force, for a real cluster that is running.
    ruleset: Option<String>,
}

/// The firewall rows of a stored `ingress` list, merged and ordered as the firewall holds them.
fn rows_of(ingress: Option<&Value>) -> Vec<coiled_firewall::Row> {
    coiled_firewall::firewall_rows(&ingress.map(crate::wire::stored_rules).unwrap_or_default())
}

fn options_view(data: &Value) -> OptionsView {
    let o = data.get("options").cloned().unwrap_or(Value::Null);
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("?").to_string();
    OptionsView {
        cloud: text(o.get("provider_name")),
        region: text(o.get("aws_region_name").or_else(|| o.get("gcp_region_name"))),
        rules: rows_of(o.get("firewall_spec").and_then(|f| f.get("ingress"))),
    }
}

fn cluster_view(c: ClusterRow, workers: &[crate::store::WorkerRow]) -> ClusterView {
    let running = workers.iter().filter(|w| w.state == "started").count();
    let failed = workers
        .iter()
        .filter(|w| w.state == "error")
        .map(|w| {
            (
                w.name.clone(),
                Some(crate::wire::worker_reason(w))
                    .filter(|r| !r.is_empty())
                    .unwrap_or("no reason given")
                    .to_string(),
            )
        })
        .collect();
    let plural = if c.desired_workers == 1 { "" } else { "s" };
    let workers = match c.state.as_str() {
        "stopped" | "stopping" | "error" => {
            format!("Wanted {} worker{plural}; none running.", c.desired_workers)
        }
        _ => format!("{running} of {} worker{plural} running.", c.desired_workers),
    };
    let reason = (!c.reason.is_empty())
        .then(|| (if c.state == "error" { "Failure reason" } else { "Reason" }, c.reason.clone()));
    ClusterView {
        id: c.id,
        rules: rows_of(Some(&c.firewall)),
        public_ip: if c.give_public_ip { c.public_ip } else { "none".into() },
        name: c.name,
        state: c.state,
        created: c.created,
        updated: c.updated,
        reason,
        workers,
        failed,
        private_ip: c.private_ip,
        scheduler_port: c.scheduler_port,
        firewall_source: c.firewall_source,
        ruleset: None,
    }
}

/// Renders the page.
pub async fn page(
    AxState(state): AxState<Shared>,
    axum::Extension(crate::app::Admin(user)): axum::Extension<crate::app::Admin>,
) -> Response {
    // The workspaces of the token's user, and no other.
    let mine: Vec<String> = state
        .store
        .memberships(&user)
        .unwrap_or_default()
        .into_iter()
        .map(|(ws, _, _)| ws)
        .collect();
    let workspaces = state
        .store
        .workspaces()
        .unwrap_or_default()
        .into_iter()
        .filter(|name| mine.contains(name))
        .map(|name| {
            let options =
                state.store.backend_options(&name).ok().flatten().map(|data| options_view(&data));
            let clusters = state
                .store
                .clusters(Some(&name), None, 200, 0)
                .unwrap_or_default()
                .into_iter()
                .map(|c| {
                    let workers = state.store.workers(c.id).unwrap_or_default();
                    let live = !matches!(c.state.as_str(), "stopping" | "stopped" | "error");
                    let ruleset =
                        state.dask.as_ref().filter(|_| live).and_then(|rt| rt.firewall(c.id).ok());
                    ClusterView { ruleset, ..cluster_view(c, &workers) }
                })
                .collect();
            WorkspaceView { name, options, clusters }
        })
        .collect();
    match (Page { workspaces }).render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => (
            axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            format!("the page failed to render: {e}"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_printed_value_is_escaped() {
        let hostile = "<script>alert(1)</script>";
        let cluster = ClusterView {
            id: 1,
            name: hostile.into(),
            state: "error\"><b>".into(),
            created: String::new(),
            updated: String::new(),
            reason: Some(("Failure reason", hostile.into())),
            workers: String::new(),
            failed: Vec::new(),
            private_ip: String::new(),
            scheduler_port: 8786,
            public_ip: "none".into(),
            firewall_source: "cluster".into(),
            ruleset: Some("<script>nft</script>".into()),
            rules: Vec::new(),
        };
        let options =
            OptionsView { cloud: hostile.into(), region: "us-east-2".into(), rules: Vec::new() };
        let page = Page {
            workspaces: vec![WorkspaceView {
                name: hostile.into(),
                options: Some(options),
                clusters: vec![cluster],
            }],
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<script>") && !html.contains("\"><b>"), "{html}");
        assert_eq!(html.matches("alert(1)").count(), 4, "{html}");
        assert!(html.contains("No ingress rules set."));
    }
}
