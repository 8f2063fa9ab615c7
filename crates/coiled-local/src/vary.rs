//! `--vary SEED`: answers and timings vary, deterministically for a seed, within what the public
//! `coiled` client (1.135.6) tolerates, so that a client relying on one behaviour of this server
//! (rather than on what the real service may do) fails. Every variation, with the client code that
//! allows it, is listed in [`VARIATIONS`] and in docs/guides/local-development.md.
//!
//! Each choice is drawn from the seed, what is varied and a key (a route and how many times it was
//! answered, or a cluster or worker id), so the same requests in the same order get the same answers.

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Value, json};

/// Each variation: its name, what it does, and the client code that tolerates it.
pub const VARIATIONS: [(&str, &str, &str); 10] = [
    (
        "unknown-fields",
        "every object of an answer may gain a field the client does not know",
        "the client reads answers by key (`dict[...]`, `.get()`), never by their whole set of keys",
    ),
    (
        "unread-fields",
        "fields the client does not read (outside `--minimal-echo`'s shapes) may be absent or null",
        "the client never reads them: `--minimal-echo`'s shapes (`minimal.rs`) are what it reads, \
            each field listed with its client function in the provider's wire ledger",
    ),
    (
        "list-order",
        "a list of clusters or workers that fits in one page comes in any order",
        "`v2/core.py` `_depaginate_list` concatenates pages; `_get_worker_names` makes a set",
    ),
    (
        "alias-pages",
        "a page of software environments may hold fewer items than asked for",
        "`core.py` `_depaginate_v2` asks from `offset = len(results_all)` until it has `count`",
    ),
    (
        "null-list-state",
        "a listed cluster's `current_state.state` may be null",
        "`cli/cluster/list.py` shows a missing state as `unknown`; `_list_clusters_page` reads no \
            state",
    ),
    (
        "no-default-membership",
        "no membership is marked the default",
        "`core.py` `Cloud.default_workspace` falls back to the only membership, then the one \
            named as the user",
    ),
    (
        "not-found-shapes",
        "a 404's body is `{\"detail\": …}`, `{\"message\": …}` or both",
        "`v2/core.py` `handle_api_exception` reads `message`, else `detail`",
    ),
    (
        "latency",
        "each answer may wait up to 150 ms",
        "the client waits for answers (`aiohttp` without a read timeout of its own)",
    ),
    (
        "phase-times",
        "simulated schedulers and workers stay `pending`/`starting` from half to 2.5 times the \
            provisioning delay, and a stop lingers up to 3 times the stop delay",
        "`v2/cluster.py` `Cluster._wait_until_ready` and `_wait_for_workers` poll until their \
            condition holds",
    ),
    (
        "late-ready",
        "a simulated cluster may stay `starting` a while after its scheduler has started",
        "`Cluster._wait_until_ready` waits for the cluster's state, not only its scheduler's",
    ),
];

/// Keys whose objects hold the user's own data.
const USER_DATA: [&str; 6] = ["tags", "dask_config", "environ", "conda", "pip", "raw_conda"];

/// The variations in force, with their random source.
pub struct Vary {
    seed: u64,
    answered: Mutex<HashMap<String, u64>>,
}

/// A number in [0, 1) from the seed and the parts named.
fn unit(seed: u64, parts: &[&str]) -> f64 {
    let mut text = seed.to_string();
    for p in parts {
        text.push('\u{1f}');
        text.push_str(p);
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(&digest.as_ref()[..8]);
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

impl Vary {
    /// Variations drawn from `seed`.
    pub fn new(seed: u64) -> Vary {
        Vary { seed, answered: Mutex::default() }
    }

    /// Whether a coin with probability `p` lands for `what` of `key`.
    pub fn coin(&self, p: f64, what: &str, key: &str) -> bool {
        unit(self.seed, &[what, key]) < p
    }

    /// A factor in `[low, high)` for `what` of `key`.
    pub fn factor(&self, low: f64, high: f64, what: &str, key: &str) -> f64 {
        low + (high - low) * unit(self.seed, &[what, key])
    }

    /// The key of the next answer to `route`: the route and how many times it has been answered.
    pub fn next_key(&self, route: &str) -> String {
        let mut answered = self.answered.lock().unwrap_or_else(|p| p.into_inner());
        let n = answered.entry(route.to_string()).or_insert(0);
        *n += 1;
        format!("{route}#{n}")
    }

    /// How long the answer of `key` waits (`latency`).
    pub fn latency_ms(&self, key: &str) -> u64 {
        (self.factor(0.0, 150.0, "latency", key)) as u64
    }

    /// A successful JSON answer to `route`, varied (`unknown-fields`, `unread-fields`, `list-order`,
    /// `alias-pages`, `null-list-state`, `no-default-membership`).
    pub fn answer(&self, route: &str, key: &str, mut value: Value) -> Value {
        if let Some(shape) = crate::minimal::shape_for(route) {
            value = self.unread(&value, &shape, key, "");
        }
        match route {
            "GET /api/v2/clusters/account/{}/" | "GET /api/v2/workers/account/{}/cluster/{}/" => {
                if let Value::Array(items) = &mut value
                    && items.len() < 100
                {
                    self.shuffle(items, key);
                }
                if route.starts_with("GET /api/v2/clusters")
                    && let Value::Array(items) = &mut value
                {
                    for (i, item) in items.iter_mut().enumerate() {
                        if self.coin(0.2, "null-list-state", &format!("{key}/{i}")) {
                            item["current_state"]["state"] = Value::Null;
                        }
                    }
                }
            }
            "GET /api/v2/software-environment/account/{}/alias" => {
                if let Some(items) = value.get_mut("items").and_then(Value::as_array_mut)
                    && items.len() > 1
                {
                    let keep = 1
                        + (self.factor(0.0, items.len() as f64, "alias-pages", key) as usize)
                            .min(items.len() - 1);
                    items.truncate(keep);
                }
            }
            "GET /api/v2/user/me/memberships" => {
                for m in value.as_array_mut().into_iter().flatten() {
                    m["is_default_account"] = json!(false);
                }
            }
            _ => {}
        }
        self.unknown(&mut value, key, "");
        value
    }

    /// A 404's body in one of the shapes the client reads (`not-found-shapes`).
    pub fn not_found(&self, key: &str, body: &Value) -> Value {
        let text = body
            .get("detail")
            .or_else(|| body.get("message"))
            .cloned()
            .unwrap_or_else(|| json!("Not found."));
        match (unit(self.seed, &["not-found-shapes", key]) * 3.0) as u8 {
            0 => json!({"detail": text}),
            1 => json!({"message": text}),
            _ => json!({"message": text, "detail": text}),
        }
    }

    /// `value` with the fields outside `shape` absent or null, each by its own draw.
    fn unread(&self, value: &Value, shape: &Value, key: &str, at: &str) -> Value {
        match (value, shape) {
            (Value::Object(v), Value::Object(s)) => Value::Object(
                v.iter()
                    .filter_map(|(k, x)| {
                        let here = format!("{at}.{k}");
                        match s.get(k) {
                            Some(sub) => Some((k.clone(), self.unread(x, sub, key, &here))),
                            None => match (unit(self.seed, &["unread-fields", key, &here]) * 3.0)
                                as u8
                            {
                                0 => None,
                                1 => Some((k.clone(), Value::Null)),
                                _ => Some((k.clone(), x.clone())),
                            },
                        }
                    })
                    .collect(),
            ),
            (Value::Array(items), Value::Array(s)) if s.len() == 1 => Value::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, x)| self.unread(x, &s[0], key, &format!("{at}[{i}]")))
                    .collect(),
            ),
            (v, _) => v.clone(),
        }
    }

    /// Adds an unknown field to some objects of `value`, never to a map of the user's own (tags, Dask
    /// configuration, environment variables, package lists), where a new key would be data.
    fn unknown(&self, value: &mut Value, key: &str, at: &str) {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut().filter(|(k, _)| !USER_DATA.contains(&k.as_str())) {
                    self.unknown(v, key, &format!("{at}.{k}"));
                }
                if self.coin(0.5, "unknown-fields", &format!("{key}{at}")) {
                    map.insert("x_coiled_local_vary".into(), json!({"seed": self.seed, "at": at}));
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter_mut().enumerate() {
                    self.unknown(v, key, &format!("{at}[{i}]"));
                }
            }
            _ => {}
        }
    }

    /// Shuffles `items` (Fisher–Yates, from the seed).
    fn shuffle(&self, items: &mut [Value], key: &str) {
        for i in (1..items.len()).rev() {
            let j =
                (unit(self.seed, &["list-order", key, &i.to_string()]) * (i + 1) as f64) as usize;
            items.swap(i, j.min(i));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_varies_the_same_way_and_another_differently() {
        let answer = json!([{"id": 1, "name": "a", "updated": "t", "current_state": {"state": "ready"}, "tags": {"k": "v"}},
            {"id": 2, "name": "b", "updated": "t", "current_state": {"state": "ready"}, "tags": {}}]);
        let route = "GET /api/v2/clusters/account/{}/";
        let one = |seed| {
            (0..20)
                .map(|n| Vary::new(seed).answer(route, &format!("{route}#{n}"), answer.clone()))
                .collect::<Vec<_>>()
        };
        assert_eq!(one(1), one(1));
        assert_ne!(one(1), one(2));
        for varied in one(3) {
            let items = varied.as_array().unwrap();
            assert_eq!(items.len(), 2, "nothing the client reads is lost: {varied}");
            assert!(items.iter().all(|i| i["id"].is_number() && i["name"].is_string()), "{varied}");
        }
    }

    #[test]
    fn every_variation_names_the_client_code_that_allows_it() {
        for (name, what, why) in VARIATIONS {
            assert!(!what.is_empty() && why.contains('`'), "{name}");
        }
        let v = Vary::new(7);
        let shapes: std::collections::BTreeSet<String> = (0..30)
            .map(|n| v.not_found(&n.to_string(), &json!({"detail": "x"})).to_string())
            .collect();
        assert_eq!(shapes.len(), 3, "{shapes:?}");
    }
}
