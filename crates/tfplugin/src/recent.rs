//! Values the service answered recently, kept with the bytes it answered them as.
//!
//! Within one plan Terraform hands a resource's state back to the provider as it received it: the state
//! `UpgradeResourceState` answered comes back, byte for byte, as the current state of `ReadResource`,
//! and the state `ReadResource` answered as the prior state of `PlanResourceChange`. Decoding is a
//! function of the bytes and the type alone, so a value kept beside its exact bytes can stand in for
//! decoding them again. Anything else (other bytes, another type, an entry pushed out) is decoded as
//! usual.

use std::collections::VecDeque;
use std::sync::Mutex;

use crate::value::Value;

/// How many answers are kept: well over Terraform's default parallelism (10). An instance in flight
/// holds one entry at a time (its upgrade's answer until its read, then its read's until its plan);
/// the rest is room for entries no call took (a step skipped), until newer ones push them out.
const KEPT: usize = 32;

/// A small, bounded memory of (resource type, msgpack bytes, decoded value).
#[derive(Debug, Default)]
pub struct RecentValues {
    entries: Mutex<VecDeque<Entry>>,
}

#[derive(Debug)]
struct Entry {
    type_name: String,
    msgpack: Vec<u8>,
    value: Value,
}

impl RecentValues {
    /// Keeps `value`, the decoding of `msgpack` as `type_name`'s type; the oldest entry goes when full.
    pub fn keep(&self, type_name: &str, msgpack: &[u8], value: Value) {
        if msgpack.is_empty() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else { return };
        if entries.len() == KEPT {
            entries.pop_back();
        }
        entries.push_front(Entry {
            type_name: type_name.to_string(),
            msgpack: msgpack.to_vec(),
            value,
        });
    }

    /// The value kept for exactly these bytes of this type, taken out (each is answered once).
    pub fn take(&self, type_name: &str, msgpack: &[u8]) -> Option<Value> {
        if msgpack.is_empty() {
            return None;
        }
        let mut entries = self.entries.lock().ok()?;
        let at = entries.iter().position(|e| e.type_name == type_name && e.msgpack == msgpack)?;
        entries.remove(at).map(|e| e.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    #[test]
    fn answers_only_the_same_bytes_of_the_same_type_once() {
        let recent = RecentValues::default();
        recent.keep("a_thing", b"\x81\xa1x\xa1y", s("one"));
        assert_eq!(recent.take("other_thing", b"\x81\xa1x\xa1y"), None);
        assert_eq!(recent.take("a_thing", b"\x81\xa1x\xa1z"), None);
        assert_eq!(recent.take("a_thing", b"\x81\xa1x\xa1y"), Some(s("one")));
        assert_eq!(recent.take("a_thing", b"\x81\xa1x\xa1y"), None, "an entry is answered once");
    }

    #[test]
    fn keeps_the_newest_entries_and_nothing_for_empty_bytes() {
        let recent = RecentValues::default();
        recent.keep("a_thing", b"", s("empty"));
        assert_eq!(recent.take("a_thing", b""), None);
        for i in 0..=KEPT {
            recent.keep("a_thing", &[0xcc, i as u8], s(&i.to_string()));
        }
        assert_eq!(recent.take("a_thing", &[0xcc, 0]), None, "the oldest entry was pushed out");
        assert_eq!(recent.take("a_thing", &[0xcc, 1]), Some(s("1")));
        assert_eq!(recent.take("a_thing", &[0xcc, KEPT as u8]), Some(s(&KEPT.to_string())));
    }
}
