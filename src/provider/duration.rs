//! The two kinds of duration a configuration holds: Terraform-style timeouts (`90s`, `20m`,
//! `1h30m`) and Dask time deltas (`idle_timeout`, read as `dask.utils.parse_timedelta` reads them,
//! since the cluster's scheduler is the one that parses it).

use std::time::Duration;

use tfplugin::model::Field;
use tfplugin::value::{Type, Value};

/// Parses a timeout such as `90s`, `20m` or `1h30m`; the error is a sentence for a diagnostic.
pub fn parse_timeout(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text.trim()).map_err(|_| {
        format!(
            "{text:?} is not a duration: write a number and a unit, such as \
            \"90s\", \"20m\" or \"1h\"."
        )
    })
}

tfplugin::model! {
    /// A `timeouts` block with all three operations.
    pub struct Timeouts { create: String, update: String, delete: String }
}

tfplugin::model! {
    /// A `timeouts` block for a resource that only writes (create and update).
    pub struct WriteTimeouts { create: String, update: String }
}

/// The duration a `timeouts` value sets (`text`), else `default`.
pub fn timeout_or(text: Option<&str>, default: Duration) -> Duration {
    text.and_then(|t| parse_timeout(t).ok()).unwrap_or(default)
}

/// The duration a `timeouts` block sets for the operation `which` picks (`|t| &t.create`), else
/// `default`.
pub fn timeout_of<T>(
    timeouts: &Field<T>,
    which: fn(&T) -> &Field<String>,
    default: Duration,
) -> Duration {
    timeout_or(timeouts.known().and_then(|t| which(t).as_deref()), default)
}

/// The check of a `timeouts` value of operation `which`: a duration from 1 second to 24 hours.
fn timeout_value(which: &str, v: &Value) -> super::Checked {
    let Some(text) = v.as_str() else { return Ok(()) };
    match parse_timeout(text) {
        Ok(d) if d >= Duration::from_secs(1) && d <= Duration::from_secs(24 * 3600) => Ok(()),
        Ok(_) => Err((
            "Invalid Timeout",
            format!("{which} = {text:?}: a timeout must be from 1s to 24h."),
        )),
        Err(e) => Err(("Invalid Timeout", format!("{which} = {e}"))),
    }
}

/// A `timeouts` block with one optional duration per `(operation, description)`.
pub fn timeouts_block(
    name: &'static str,
    description: &'static str,
    operations: &[(&'static str, &'static str)],
) -> tfplugin::schema::NestedBlock {
    use tfplugin::schema::{Attribute, Block, Check, NestedBlock, Nesting};
    let check: fn(&str) -> Check = |name| match name {
        "create" => |v| timeout_value("create", v),
        "update" => |v| timeout_value("update", v),
        _ => |v| timeout_value("delete", v),
    };
    let attributes = operations
        .iter()
        .map(|(name, d)| Attribute::optional(name, Type::String, d).validated(check(name)))
        .collect();
    NestedBlock::new(name, Nesting::Single, Block { attributes, blocks: vec![], description })
        .state_only()
}

/// Seconds per unit, as Dask's `timedelta_sizes` (singular, plural and one-letter forms).
fn dask_unit(unit: &str) -> Option<f64> {
    let lower = unit.to_ascii_lowercase();
    // Dask accepts the names in lower case and in upper case only, not mixed.
    if unit != lower && unit != unit.to_ascii_uppercase() {
        return None;
    }
    Some(match lower.as_str() {
        "s" => 1.0,
        "ms" => 1e-3,
        "us" => 1e-6,
        "ns" => 1e-9,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        "w" => 604800.0,
        _ => {
            let singular = lower.strip_suffix('s').unwrap_or(&lower);
            match singular {
                "second" => 1.0,
                "minute" => 60.0,
                "hour" => 3600.0,
                "day" => 86400.0,
                "week" => 604800.0,
                "millisecond" => 1e-3,
                "microsecond" => 1e-6,
                "nanosecond" => 1e-9,
                _ => return None,
            }
        }
    })
}

/// Parses a Dask time delta (`"2 hours"`, `"20m"`, `"90"` meaning seconds) into seconds, as
/// `dask.utils.parse_timedelta` does: spaces are ignored, one number and one unit.
pub fn parse_dask_timedelta(text: &str) -> Result<f64, String> {
    let compact: String = text.chars().filter(|c| *c != ' ').collect();
    let bad = |why: &str| {
        format!(
            "{text:?} is not a duration Dask understands ({why}); write a number and a unit, such \
                as \"20 minutes\", \"2 hours\" or \"90s\"."
        )
    };
    if compact.is_empty() {
        return Err(bad("it is empty"));
    }
    // Dask would read "-5 minutes" as the number "1-5" (below) and fail on it: said plainly here.
    if compact.starts_with('-') {
        return Err(bad("it must be a positive number"));
    }
    let compact = if compact.starts_with(|c: char| c.is_ascii_digit()) {
        compact
    } else {
        format!("1{compact}")
    };
    let split = compact
        .char_indices()
        .rev()
        .find(|(_, c)| !c.is_ascii_alphabetic())
        .map(|(i, c)| i + c.len_utf8())
        .unwrap_or(0);
    let (number, unit) = compact.split_at(split);
    let n: f64 = number.parse().map_err(|_| bad(&format!("{number:?} is not a number")))?;
    if !n.is_finite() || n < 0.0 {
        return Err(bad("it must be a positive number"));
    }
    let unit = if unit.is_empty() { "s" } else { unit };
    let size = dask_unit(unit).ok_or_else(|| bad(&format!("{unit:?} is not a time unit")))?;
    Ok(n * size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dask_time_deltas() {
        for (text, seconds) in [
            ("2 hours", 7200.0),
            ("20 minutes", 1200.0),
            ("20m", 1200.0),
            ("90", 90.0),
            ("1.5h", 5400.0),
            ("hour", 3600.0),
            ("1 HOURS", 3600.0),
            ("500ms", 0.5),
            ("3 days", 259200.0),
        ] {
            assert_eq!(parse_dask_timedelta(text), Ok(seconds), "{text}");
        }
        for bad in ["forever", "", "1h30m", "2 fortnights", "-5s", "1 Hours"] {
            assert!(parse_dask_timedelta(bad).is_err(), "{bad}");
        }
        let negative = parse_dask_timedelta("-5 minutes").unwrap_err();
        assert!(negative.contains("positive") && !negative.contains("1-5"), "{negative}");
    }

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_timeout("1h30m"), Ok(Duration::from_secs(5400)));
        let e = parse_timeout("abc").unwrap_err();
        assert!(e.contains("is not a duration") && !e.contains("expected"), "{e}");
    }
}
