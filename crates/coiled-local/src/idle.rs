//! Idle stops: Coiled stops a cluster that has been idle for its `idle_timeout` (the
//! `scheduler_options.idle_timeout` of its create, 20 minutes when none is sent, as the client's
//! documentation says). A real cluster's scheduler is given the timeout and closes itself when idle,
//! as Dask's scheduler does (a computation keeps it running); the cluster then stops. A simulated
//! cluster has no client activity to watch, so "idle" there is the time since it last became `ready`.
//! `--time-scale F` makes that time pass F times faster, so a test can wait for it. The stop's reason
//! text is `coiled-local`'s own.

use rusqlite::params;

use crate::store::{Store, StoreError};
use crate::{Shared, unix_now};

/// The table, made when the store opens.
pub(crate) const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS idle_limits(cluster_id INTEGER \
    PRIMARY KEY, seconds REAL NOT NULL, text TEXT NOT NULL);";

/// Coiled's idle timeout when a create sends none.
pub const DEFAULT_IDLE: &str = "20 minutes";

/// Seconds in a Dask time delta (`dask.utils.parse_timedelta`): a number with an optional unit
/// (`ms`, `s`, `m`, `h`, `d`, `w`, spelled short or long), no unit meaning seconds.
pub fn parse_timedelta(text: &str) -> Option<f64> {
    let t = text.trim().to_ascii_lowercase().replace(' ', "");
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let n: f64 = if number.is_empty() { 1.0 } else { number.parse().ok()? };
    let per = match unit {
        "" | "s" | "sec" | "secs" | "second" | "seconds" => 1.0,
        "ms" | "millisecond" | "milliseconds" => 0.001,
        "m" | "min" | "mins" | "minute" | "minutes" => 60.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3600.0,
        "d" | "day" | "days" => 86400.0,
        "w" | "wk" | "week" | "weeks" => 604800.0,
        _ => return None,
    };
    Some(n * per).filter(|s| s.is_finite() && *s >= 0.0)
}

impl Store {
    /// Records a new cluster's idle timeout.
    pub fn set_idle_limit(&self, cluster_id: i64, text: &str) -> Result<(), StoreError> {
        let seconds = parse_timedelta(text).unwrap_or(1200.0);
        self.with(|c| {
            c.execute(
                "INSERT OR REPLACE INTO idle_limits(cluster_id, seconds, text) VALUES (?1, ?2, ?3)",
                params![cluster_id, seconds, text],
            )?;
            Ok(())
        })
    }

    /// A cluster's idle limit: seconds, and as the create spelled it.
    pub fn idle_limit(&self, cluster_id: i64) -> Result<Option<(f64, String)>, StoreError> {
        self.with(|c| {
            let mut s = c.prepare("SELECT seconds, text FROM idle_limits WHERE cluster_id = ?1")?;
            let mut rows = s.query_map(params![cluster_id], |r| Ok((r.get(0)?, r.get(1)?)))?;
            rows.next().transpose()
        })
    }

    /// `ready` clusters with an idle limit: id, when they became ready (RFC 3339), seconds, text.
    fn ready_with_limits(&self) -> Result<Vec<(i64, String, f64, String)>, StoreError> {
        self.with(|c| {
            let mut s = c.prepare(
                "SELECT c.id, c.updated, l.seconds, l.text FROM clusters c JOIN idle_limits l ON \
                    l.cluster_id = c.id WHERE c.state = 'ready'",
            )?;
            s.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?.collect()
        })
    }
}

/// The reason an idle stop gives.
pub fn idle_reason(text: &str) -> String {
    format!("Cluster was idle for {text} (its idle_timeout)")
}

/// Stops every simulated cluster idle for its limit; returns when the next one is due. (Real
/// clusters' schedulers stop themselves.)
pub fn stop_idle(state: &Shared) -> Option<f64> {
    if state.dask.is_some() {
        return None;
    }
    let now = unix_now();
    let scale = state.config.time_scale;
    let mut next: Option<f64> = None;
    let rows = match state.store.ready_with_limits() {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "reading idle limits failed");
            return None;
        }
    };
    for (id, since, seconds, text) in rows {
        let Ok(since) = humantime::parse_rfc3339_weak(&since.replace("+00:00", "")) else {
            continue;
        };
        let since =
            since.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(now);
        let due = since + seconds / scale;
        if due > now {
            next = Some(next.map_or(due, |n: f64| n.min(due)));
            continue;
        }
        tracing::info!(cluster = id, idle_timeout = %text, "stopping an idle cluster");
        if let Err(e) = crate::handlers::clusters::begin_stop(state, id, &idle_reason(&text)) {
            tracing::error!(cluster = id, error = %e, "idle stop failed");
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_deltas_read_as_dask_reads_them() {
        assert_eq!(parse_timedelta("20 minutes"), Some(1200.0));
        assert_eq!(parse_timedelta("2h"), Some(7200.0));
        assert_eq!(parse_timedelta("90"), Some(90.0));
        assert_eq!(parse_timedelta("1.5 hours"), Some(5400.0));
        assert_eq!(parse_timedelta("soon"), None);
    }
}
