//! The page for people at `/`: workspaces, each one's backend options with its firewall table, and its
//! clusters with state, addresses and effective rules.

use axum::extract::State as AxState;
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use super::Shared;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn rules_of(ingress: Option<&Value>) -> Vec<coiled_firewall::Rule> {
    ingress
        .and_then(Value::as_array)
        .map(|rules| {
            rules
                .iter()
                .filter_map(|r| {
                    let ports: Vec<i64> = r.get("ports")?.as_array()?.iter().filter_map(Value::as_i64).collect();
                    coiled_firewall::rule_from_wire(&ports, r.get("cidr")?.as_str()?)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn table(rules: &[coiled_firewall::Rule]) -> String {
    if rules.is_empty() {
        return "<p class=\"muted\">No ingress rules set.</p>".into();
    }
    let mut s = String::from("<table class=\"rules\"><tr><th>Protocol</th><th>Port</th><th>Source</th></tr>");
    for row in coiled_firewall::firewall_rows(rules) {
        s.push_str(&format!("<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>", row.protocol, row.port, esc(&row.source)));
    }
    s.push_str("</table>");
    s
}

/// Renders the page.
pub async fn page(AxState(state): AxState<Shared>) -> Response {
    let mut body = String::new();
    for ws in state.store.workspaces().unwrap_or_default() {
        body.push_str(&format!("<section><h2>Workspace <code>{}</code></h2>", esc(&ws)));
        match state.store.backend_options(&ws).ok().flatten() {
            Some(data) => {
                let o = data.get("options").cloned().unwrap_or(Value::Null);
                let cloud = o.get("provider_name").and_then(Value::as_str).unwrap_or("?");
                let region = o.get("aws_region_name").or_else(|| o.get("gcp_region_name")).and_then(Value::as_str).unwrap_or("?");
                body.push_str(&format!(
                    "<h3>Account backend options</h3><p>Cloud <b>{}</b>, region <b>{}</b>. Default ingress for new clusters:</p>",
                    esc(cloud),
                    esc(region)
                ));
                body.push_str(&table(&rules_of(o.get("firewall_spec").and_then(|f| f.get("ingress")))));
            }
            None => body.push_str(
                "<h3>Account backend options</h3><p class=\"muted\">Not configured: new clusters get the server's default ingress.</p>",
            ),
        }
        body.push_str("<h3>Clusters</h3>");
        let clusters = state.store.clusters(Some(&ws), None, 200, 0).unwrap_or_default();
        if clusters.is_empty() {
            body.push_str("<p class=\"muted\">No clusters.</p>");
        }
        for c in clusters {
            let running = state.store.workers(c.id).unwrap_or_default().iter().filter(|w| w.state == "started").count();
            let reason = if c.reason.is_empty() {
                String::new()
            } else {
                let label = if c.state == "error" { "Failure reason" } else { "Reason" };
                format!("<p>{label}: {}</p>", esc(&c.reason))
            };
            let plural = if c.desired_workers == 1 { "" } else { "s" };
            let workers = match c.state.as_str() {
                "stopped" | "stopping" | "error" => format!("Wanted {} worker{plural}; none running.", c.desired_workers),
                _ => format!("{running} of {} worker{plural} running.", c.desired_workers),
            };
            body.push_str(&format!(
                "<div class=\"cluster\"><h4>#{} <code>{}</code> <span class=\"state {}\">{}</span></h4><p class=\"muted\">Created {}, last change {}.</p>{reason}<p>{workers} Scheduler private <code>{}:{}</code>, public <code>{}</code>. Ingress from the {} settings:</p>{}</div>",
                c.id,
                esc(&c.name),
                esc(&c.state),
                esc(&c.state),
                esc(&c.created),
                esc(&c.updated),
                esc(&c.private_ip),
                c.scheduler_port,
                if c.give_public_ip { esc(&c.public_ip) } else { "none".into() },
                esc(&c.firewall_source),
                table(&rules_of(Some(&c.firewall))),
            ));
        }
        body.push_str("</section>");
    }
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>coiled-local</title><meta http-equiv=\"refresh\" content=\"5\"><style>\
body{{font-family:system-ui,sans-serif;margin:2em;max-width:60em;color:#222}}h1{{font-size:1.5em}}code{{background:#f3f3f3;padding:0 .2em}}\
table.rules{{border-collapse:collapse;margin:.5em 0}}table.rules td,table.rules th{{border:1px solid #ccc;padding:.2em .8em;text-align:left}}\
.muted{{color:#777}}.cluster{{border-left:3px solid #ddd;padding-left:1em;margin:1em 0}}.state{{font-size:.8em;padding:.1em .5em;border-radius:.5em;background:#eee}}\
.state.ready{{background:#c8f0c8}}.state.error{{background:#f5c2c2}}.state.pending,.state.starting{{background:#fbeec0}}</style></head>\
<body><h1>coiled-local: a Coiled control plane on this machine</h1>{body}</body></html>"
    ))
    .into_response()
}
