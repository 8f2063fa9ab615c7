//! Logs as hclog JSON lines on stderr, which go-plugin re-logs under Terraform's `TF_LOG` filter.
//!
//! The level comes from `TF_LOG_PROVIDER`, else `TF_LOG` (`trace`, `debug`, `info`, `warn`,
//! `error`, `json` = trace, `off`); unset means warnings and errors only. stdout is never written:
//! it belongs to the handshake.

use std::fmt::Write as _;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::util::SubscriberInitExt;

/// The level implied by the environment, `None` for off.
pub fn level_from_env() -> Option<Level> {
    let var = |key: &str| std::env::var(key).ok().filter(|s| !s.is_empty());
    parse_level(var("TF_LOG_PROVIDER").or_else(|| var("TF_LOG")).as_deref())
}

fn parse_level(raw: Option<&str>) -> Option<Level> {
    match raw.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None => Some(Level::WARN),
        Some("trace" | "json") => Some(Level::TRACE),
        Some("debug") => Some(Level::DEBUG),
        Some("info") => Some(Level::INFO),
        Some("warn") => Some(Level::WARN),
        Some("error") => Some(Level::ERROR),
        Some("off") => None,
        Some(_) => Some(Level::TRACE), // Terraform treats unknown values as trace
    }
}

/// Installs the hclog JSON layer for `module` as the global subscriber. Only events whose target
/// starts with one of `targets` (crate names, e.g. `["my_provider", "tfplugin"]`) are written:
/// dependencies' own logs stay out of Terraform's log.
pub fn init(module: &'static str, targets: &'static [&'static str]) {
    let layer = HclogLayer { module, targets, max: level_from_env() };
    let _ = tracing_subscriber::registry().with(layer).try_init();
}

/// A tracing layer writing one hclog JSON object per event to stderr.
pub struct HclogLayer {
    module: &'static str,
    targets: &'static [&'static str],
    max: Option<Level>,
}

struct Fields {
    message: String,
    extra: serde_json::Map<String, serde_json::Value>,
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            self.extra.insert(field.name().to_string(), value.into());
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.extra.insert(field.name().to_string(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.extra.insert(field.name().to_string(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.extra.insert(field.name().to_string(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            self.extra.insert(field.name().to_string(), format!("{value:?}").into());
        }
    }
}

impl<S: Subscriber> Layer<S> for HclogLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        self.max.is_some_and(|max| *metadata.level() <= max)
            && self.targets.iter().any(|t| metadata.target().starts_with(t))
    }

    /// The level below which no event is even built: a `debug!` costs one comparison when TF_LOG is
    /// at INFO or unset.
    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.max.map_or(LevelFilter::OFF, LevelFilter::from_level))
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields { message: String::new(), extra: serde_json::Map::new() };
        event.record(&mut fields);
        let (level, now) = (*event.metadata().level(), std::time::SystemTime::now());
        let line = render(self.module, level, &fields.message, fields.extra, now);
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    }
}

fn render(
    module: &str,
    level: Level,
    message: &str,
    extra: serde_json::Map<String, serde_json::Value>,
    now: std::time::SystemTime,
) -> String {
    let mut obj = serde_json::Map::new();
    obj.insert("@level".into(), level.as_str().to_ascii_lowercase().into());
    obj.insert("@message".into(), message.into());
    obj.insert("@module".into(), module.into());
    obj.insert("@timestamp".into(), humantime::format_rfc3339_micros(now).to_string().into());
    for (k, v) in extra {
        obj.entry(k).or_insert(v);
    }
    let mut s = serde_json::Value::Object(obj).to_string();
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_terraform_names() {
        assert_eq!(parse_level(Some("DEBUG")), Some(Level::DEBUG));
        assert_eq!(parse_level(Some("json")), Some(Level::TRACE));
        assert_eq!(parse_level(Some("off")), None);
        assert_eq!(parse_level(None), Some(Level::WARN));
    }

    #[test]
    fn lines_are_hclog_json() {
        let mut extra = serde_json::Map::new();
        extra.insert("cluster_id".into(), 7.into());
        let line = render("example", Level::INFO, "ready", extra, std::time::UNIX_EPOCH);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["@level"], "info");
        assert_eq!(v["@message"], "ready");
        assert_eq!(v["@module"], "example");
        assert_eq!(v["@timestamp"], "1970-01-01T00:00:00.000000Z");
        assert_eq!(v["cluster_id"], 7);
    }
}
