//! Waiting for a software environment's build as `Cloud._tail_software_build_logs` waits (state
//! polled each second until `built` or `error`), and its log's tail for a failure's diagnostic.

use std::time::Duration;

use crate::api::{ApiError, Client, Op, SoftwareBuild};

/// How many log lines a failure shows.
pub const TAIL_LINES: usize = 25;
/// At most this many log pages are read for a tail.
const MAX_PAGES: usize = 40;

/// Whether a build state is final.
pub fn ended(state: &str) -> bool {
    state == "built" || state == "error"
}

/// Polls `build` each second until it ends; the last state seen travels with an error.
pub async fn wait(
    client: &Client,
    op: &Op,
    ws: &str,
    mut build: SoftwareBuild,
) -> Result<SoftwareBuild, (ApiError, SoftwareBuild)> {
    while !ended(&build.state) {
        if let Err(e) = op.sleep(Duration::from_secs(1)).await {
            return Err((e, build));
        }
        match client.software_build(op, ws, build.id).await {
            Ok(b) => build = SoftwareBuild { id: build.id, ..b },
            Err(e) => return Err((e, build)),
        }
    }
    Ok(build)
}

/// The last [`TAIL_LINES`] lines of a build's log; empty when it cannot be read.
pub async fn log_tail(client: &Client, op: &Op, ws: &str, build: i64) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut token: Option<String> = None;
    for _ in 0..MAX_PAGES {
        let Ok(page) = client.software_build_logs(op, ws, build, token.as_deref()).await else {
            break;
        };
        let before = lines.len();
        for e in page.events {
            if seen.insert(e.event_id.to_string()) {
                lines.push(e.message);
            }
        }
        if lines.len() == before || page.next_token.is_none() || page.next_token == token {
            break;
        }
        token = page.next_token;
    }
    let skip = lines.len().saturating_sub(TAIL_LINES);
    lines.split_off(skip)
}

/// A failed build's diagnostic text: what was built, the server's reason, and the log's tail.
pub fn failure_detail(what: &str, build: &SoftwareBuild, tail: &[String]) -> String {
    let mut text = format!(
        "Coiled could not build {what} (build {}): {}.",
        build.id,
        build.reason.as_deref().filter(|r| !r.is_empty()).unwrap_or("the server gave no reason")
    );
    if tail.is_empty() {
        text.push_str(" The build's log could not be read.");
    } else {
        text.push_str(&format!(
            "\n\nThe end of the build's log:\n{}",
            tail.iter().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n")
        ));
    }
    text
}
