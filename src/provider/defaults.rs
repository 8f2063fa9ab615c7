//! Cluster defaults: the provider's `cluster_defaults` block, which every `coiled_cluster` that
//! sets no value of its own takes (and plans show), and the settings of the Coiled configuration
//! file and `DASK_COILED__*` variables that Coiled's Python client would apply to its clusters,
//! which the provider never applies (a plan must not depend on whose machine runs it) but names in
//! a warning when a cluster's value differs.

use std::collections::BTreeMap;

use tfplugin::diag::Diagnostics;
use tfplugin::schema::{NestedBlock, Nesting};
use tfplugin::value::{AttrPath, Value};

use super::config::Env;
use super::ingress::{self, Parsed, Reading, RuleSet};

/// The provider's `cluster_defaults` block, read.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClusterDefaults {
    pub use_scheduler_public_ip: Option<bool>,
    pub tags: Option<BTreeMap<String, String>>,
    /// The `ingress` blocks' rules.
    pub ingress: Option<RuleSet>,
}

tfplugin::model! {
    /// The `cluster_defaults` block, as declared.
    struct Declared {
        /// `use_scheduler_public_ip` of every cluster that does not set it (instead of the
        /// workspace's `coiled.use_scheduler_public_ip`, else `true`).
        #[attribute(optional)]
        use_scheduler_public_ip: bool,
        /// `tags` of every cluster that sets none of its own (a cluster's own tags replace these,
        /// they are not merged).
        #[attribute(optional)]
        tags: BTreeMap<String, String>,
        /// Ingress rule of every cluster with no firewall of its own (no `backend_options.ingress`,
        /// `scheduler_port` or `allow_ingress_from`): such clusters get exactly these rules instead
        /// of the workspace's account-level ones, and their `firewall_rules` show them at plan
        /// time.
        #[block(with = ingress::ingress_block)]
        ingress: Value,
    }
}

/// The block in the provider's schema, named `name`.
pub fn block(name: &'static str, description: &'static str) -> NestedBlock {
    NestedBlock::new(name, Nesting::Single, Declared::schema_block(description))
}

/// Reads the block from the provider configuration; invalid rules are reported at their path.
pub fn read(config: &Value, diags: &mut Diagnostics) -> super::DefaultsState {
    use super::DefaultsState;
    let block = config.get("cluster_defaults").cloned().unwrap_or(Value::Null);
    if block.is_null() {
        return DefaultsState::Absent;
    }
    if !block.is_wholly_known() {
        return DefaultsState::Unknown;
    }
    let path = AttrPath::attr("cluster_defaults").then("ingress");
    let value = block.get("ingress").cloned().unwrap_or(Value::Null);
    let ingress = match ingress::read(&value, &Reading::validating(path, true), diags) {
        Parsed::Rules(rules) if !rules.is_empty() => Some(rules),
        _ => None,
    };
    let tags = block.get("tags").and_then(|t| t.as_map()).map(|m| {
        m.iter()
            .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
            .collect::<BTreeMap<_, _>>()
    });
    DefaultsState::Set(ClusterDefaults {
        use_scheduler_public_ip: block.get("use_scheduler_public_ip").and_then(Value::as_bool),
        tags,
        ingress,
    })
}

/// A cluster setting the Coiled client would take from this machine, and where it was found.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalSetting<T> {
    pub value: T,
    /// The file or variable.
    pub source: String,
    /// The key, as written there.
    pub key: &'static str,
}

/// The client-side cluster settings found in the Coiled configuration file and `DASK_COILED__*`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LocalClusterSettings {
    /// `coiled.use_scheduler_public_ip`.
    pub use_scheduler_public_ip: Option<LocalSetting<bool>>,
    /// `coiled.backend-options.ingress`.
    pub ingress: Option<LocalSetting<RuleSet>>,
}

/// Reads them: a variable wins over the file, as in Dask's configuration.
pub fn local_settings(env: &Env) -> LocalClusterSettings {
    let file = env.file_shown();
    let section = env.file.as_ref();
    let pick = |names: &[&str]| section.and_then(|s| names.iter().find_map(|n| s.get(*n)).cloned());
    let var = |name: &str| {
        env.vars
            .get(name)
            .filter(|v| !v.trim().is_empty())
            .and_then(|v| serde_norway::from_str::<serde_norway::Value>(v).ok())
    };
    // The variable's value, else the file's, with where it came from.
    fn setting<T>(
        key: &'static str,
        (var, from_var): (&str, Option<T>),
        (file, from_file): (&str, Option<T>),
    ) -> Option<LocalSetting<T>> {
        let (value, source) = match (from_var, from_file) {
            (Some(value), _) => (value, format!("the {var} environment variable")),
            (None, Some(value)) => (value, file.to_string()),
            (None, None) => return None,
        };
        Some(LocalSetting { value, source, key })
    }
    let public_var = "DASK_COILED__USE_SCHEDULER_PUBLIC_IP";
    let use_scheduler_public_ip = setting(
        "coiled.use_scheduler_public_ip",
        (public_var, var(public_var).and_then(|v| yaml_bool(&v))),
        (
            &file,
            pick(&["use_scheduler_public_ip", "use-scheduler-public-ip"])
                .and_then(|v| yaml_bool(&v)),
        ),
    );
    let ingress_var = "DASK_COILED__BACKEND_OPTIONS__INGRESS";
    let file_ingress = pick(&["backend-options", "backend_options"])
        .and_then(|bo| bo.get("ingress").cloned())
        .and_then(|v| yaml_rules(&v));
    let ingress = setting(
        "coiled.backend-options.ingress",
        (ingress_var, var(ingress_var).and_then(|v| yaml_rules(&v))),
        (&file, file_ingress),
    );
    LocalClusterSettings { use_scheduler_public_ip, ingress }
}

fn yaml_bool(v: &serde_norway::Value) -> Option<bool> {
    match v {
        serde_norway::Value::Bool(b) => Some(*b),
        serde_norway::Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Ingress rules written as the seed's YAML (`[{ports: [...], cidr: ...}]`); `None` when
/// unreadable.
fn yaml_rules(v: &serde_norway::Value) -> Option<RuleSet> {
    let items = v.as_sequence()?;
    let mut rules = Vec::new();
    for item in items {
        let ports: Vec<i64> = item
            .get("ports")?
            .as_sequence()?
            .iter()
            .filter_map(serde_norway::Value::as_i64)
            .collect();
        let cidr = item.get("cidr")?.as_str()?;
        rules.push(coiled_firewall::rule_from_wire(&ports, cidr)?);
    }
    Some(RuleSet::new(&rules))
}

/// Ports of rules, for messages: `8786, 8787 from 10.1.0.0/16; …`.
pub fn describe(rules: &RuleSet) -> String {
    rules
        .rules()
        .iter()
        .map(|r| {
            format!(
                "{} from {}",
                r.ports.iter().map(u16::to_string).collect::<Vec<_>>().join(", "),
                r.cidr
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(file: &str, vars: &[(&str, &str)]) -> Env {
        Env {
            vars: vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            file: super::super::config::parse_config_file(file).unwrap(),
            file_path: Some("/home/u/.config/dask/coiled.yaml".into()),
        }
    }

    #[test]
    fn the_seed_file_is_read() {
        let text = "coiled:\n  use_scheduler_public_ip: false\n  backend-options:\n    ingress:\n      \
            - ports: [8786, 8787]\n        cidr: 10.1.0.0/16\n";
        let s = local_settings(&env(text, &[]));
        let public = s.use_scheduler_public_ip.unwrap();
        assert!(!public.value);
        assert_eq!(public.source, "/home/u/.config/dask/coiled.yaml");
        assert_eq!(describe(&s.ingress.unwrap().value), "8786, 8787 from 10.1.0.0/16");
    }

    #[test]
    fn variables_win_over_the_file() {
        let ingress = "[{'ports': [443], 'cidr': '10.0.0.0/8'}]";
        let vars = [
            ("DASK_COILED__USE_SCHEDULER_PUBLIC_IP", "True"),
            ("DASK_COILED__BACKEND_OPTIONS__INGRESS", ingress),
        ];
        let s = local_settings(&env("coiled:\n  use_scheduler_public_ip: false\n", &vars));
        let public = s.use_scheduler_public_ip.unwrap();
        assert!(public.value && public.source.contains("DASK_COILED__USE_SCHEDULER_PUBLIC_IP"));
        assert_eq!(describe(&s.ingress.unwrap().value), "443 from 10.0.0.0/8");
        assert_eq!(local_settings(&env("", &[])), LocalClusterSettings::default());
    }
}
