//! Checks of a `coiled_cluster` configuration that need no API call. Only known values are judged:
//! unknown ones are checked again at apply.

use tfplugin::diag::Diagnostics;
use tfplugin::value::{AttrPath, Number, Value};

use tfplugin::model::Field;

use super::super::ingress::{self, Reading, RuleSet};
use super::model::ClusterModel;

/// The checks beyond those each attribute declares: values that come with their own rules
/// (`n_workers`, lists and maps judged on their known elements, `ingress`) and the
/// combinations the client refuses, in the order the attributes appear in the schema.
pub(super) fn validate_config(config: &Value, diags: &mut Diagnostics) {
    ClusterModel::check_values(config, diags);
    let config = &ClusterModel::decode(config);
    software_or_container(config, diags);
    sizes(config, diags);
    tags_and_environment(config, diags);
    backend_options_block(config, diags);
    conflicts(config, diags);
}

/// The combinations the client refuses: `spot_policy` with `backend_options.spot`, and a firewall
/// of the cluster's own (`scheduler_port`, `allow_ingress_from`) with ingress blocks.
fn conflicts(config: &ClusterModel, diags: &mut Diagnostics) {
    if !config.spot_policy.is_null()
        && config.backend_options.known().is_some_and(|b| !b.spot.is_null())
    {
        diags.error_at(
            AttrPath::attr("spot_policy"),
            "Conflicting Spot Settings",
            "Set `spot_policy` or `backend_options.spot`, not both: `spot_policy` sets what \
                `spot` would (`spot_with_fallback` also allows on-demand fallback).",
        );
    }
    let own_ingress = config.has_ingress_blocks();
    for (name, field_set) in [
        ("scheduler_port", !config.scheduler_port.is_null()),
        ("allow_ingress_from", !config.allow_ingress_from.is_null()),
    ] {
        if field_set && own_ingress {
            diags.error_at(
                AttrPath::attr(name),
                "Conflicting Firewall Settings",
                format!(
                    "`{name}` cannot be used when `backend_options.ingress` is also set \
                    (Coiled's client refuses the same combination): it makes the cluster's \
                    firewall itself. Open the scheduler's port in the ingress blocks instead, or \
                    drop them."
                ),
            );
        }
    }
}

/// `n_workers` (a whole number from 0 to 1000) and `wait_for_workers` (from 0 to 1), where known:
/// the resource's and the scaling action's.
pub(super) fn worker_count_and_wait(
    n_workers: Option<&Number>,
    wait: Option<&Number>,
    diags: &mut Diagnostics,
) {
    if let Some(n) = n_workers
        && !n.as_i64().is_some_and(|n| (0..=1000).contains(&n))
    {
        diags.error_at(
            AttrPath::attr("n_workers"),
            "Invalid Worker Count",
            format!("n_workers is {n}; it must be a whole number from 0 to 1000."),
        );
    }
    if let Some(f) = wait
        && !f.as_f64().is_some_and(|f| (0.0..=1.0).contains(&f))
    {
        diags.error_at(
            AttrPath::attr("wait_for_workers"),
            "Invalid Wait Fraction",
            format!(
                "wait_for_workers is {f}; it must be from 0 (do not wait for workers) to 1 \
                (wait for all)."
            ),
        );
    }
}

/// `software` or `container`, exactly one. An unknown value may still be either.
fn software_or_container(config: &ClusterModel, diags: &mut Diagnostics) {
    let (software, container) = (&config.software, &config.container);
    if software.is_null() && container.is_null() {
        diags.error_at(
            AttrPath::attr("software"),
            "Missing Software Environment",
            super::prepare::MISSING_SOFTWARE,
        );
    }
    if !software.is_null() && !container.is_null() {
        diags.error_at(
            AttrPath::attr("container"),
            "Conflicting Software Settings",
            "Set `software` or `container`, not both: with `container`, the cluster runs the \
                software environment made for the image, and `software` shows its name.",
        );
    }
}

/// `n_workers`, `wait_for_workers`, the VM type lists.
fn sizes(config: &ClusterModel, diags: &mut Diagnostics) {
    worker_count_and_wait(config.n_workers.known(), config.wait_for_workers.known(), diags);
    // As values: a list with some elements unknown is judged on the known ones.
    let lists = [
        (tfplugin::attr!(ClusterModel, worker_vm_types), config.worker_vm_types.encode()),
        (tfplugin::attr!(ClusterModel, scheduler_vm_types), config.scheduler_vm_types.encode()),
    ];
    for (list, value) in lists {
        if let Some(items) = value.as_elements() {
            if items.is_empty() {
                diags.error_at(
                    AttrPath::attr(list),
                    "Empty VM Type List",
                    format!(
                        "{list} is empty; remove it to let Coiled choose, or name at least \
                        one type."
                    ),
                );
            }
            if items.iter().any(|i| i.as_str().is_some_and(|s| s.trim().is_empty())) {
                diags.error_at(
                    AttrPath::attr(list),
                    "Empty VM Type",
                    format!("{list} contains an empty name."),
                );
            }
        }
    }
}

/// `tags` and `environ`.
fn tags_and_environment(config: &ClusterModel, diags: &mut Diagnostics) {
    // As values: a map with some values unknown still has known keys.
    let (tags, environ) = (config.tags.encode(), config.environ.encode());
    if let Some(tags) = tags.as_map() {
        for (k, v) in tags {
            if k.is_empty() || k.len() > 128 {
                diags.error_at(
                    AttrPath::attr("tags").key(k),
                    "Invalid Tag",
                    "Tag keys must have 1 to 128 characters.",
                );
            }
            if v.as_str().is_some_and(|v| v.len() > 256) {
                diags.error_at(
                    AttrPath::attr("tags").key(k),
                    "Invalid Tag",
                    "Tag values may have at most 256 characters.",
                );
            }
        }
    }
    if let Some(env) = environ.as_map() {
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

/// `backend_options.ingress`: valid rules.
fn backend_options_block(config: &ClusterModel, diags: &mut Diagnostics) {
    let Some(bo) = config.backend_options.known() else { return };
    let ack = config.acknowledge_world_open_ingress.known().copied().unwrap_or(false);
    let path = AttrPath::attr("backend_options").then("ingress");
    ingress::read(&bo.ingress.encode(), &Reading::validating(path, ack), diags);
}

/// At plan: warns where the cluster's own firewall (`backend_options.ingress`, or the one
/// `allow_ingress_from` makes) admits only private networks while clients will use the scheduler's
/// public address: `use_scheduler_public_ip` as planned (from the configuration or
/// `cluster_defaults`), or, left to the workspace's Dask configuration, its default (public).
pub(super) fn private_ingress_on_public_address(
    config: &ClusterModel,
    planned: &ClusterModel,
    diags: &mut Diagnostics,
) {
    let public = match (&config.use_scheduler_public_ip, &planned.use_scheduler_public_ip) {
        (_, Field::Known(v)) => *v,
        (Field::Null, _) => true,
        _ => false,
    };
    if !public {
        return;
    }
    let from = planned.network_rules(None).filter(|_| !planned.allow_ingress_from.is_null());
    let own = [
        (AttrPath::attr("backend_options").then("ingress"), RuleSet::of_state(&planned.ingress())),
        (AttrPath::attr("allow_ingress_from"), from),
    ];
    for (path, rules) in own {
        let Some(rules) = rules else { continue };
        if !rules.rules().iter().all(|r| coiled_firewall::is_private(&r.cidr)) {
            continue;
        }
        diags.warning_at(
            path,
            "Private Ingress on a Public Address",
            "Every ingress source of this cluster is a private network, but clients will connect \
                to the scheduler's public address (`use_scheduler_public_ip` is true, or left to \
                the workspace, whose default is true). Traffic \
                from a private network to a public address arrives from a public, translated \
                address, which these rules do not admit, so those clients will be refused. Set \
                `use_scheduler_public_ip = false` to connect over the private network (VPN, \
                peering), or admit the public addresses your clients come from.",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the private-ingress warning is given for a cluster configured with `attrs`, planned
    /// with `use_scheduler_public_ip` as `planned_public` makes it.
    fn warned_at<const N: usize>(
        attrs: [(&str, Value); N],
        planned_public: Field<bool>,
    ) -> Vec<String> {
        let config = Value::object([("software", Value::string("dask"))].into_iter().chain(attrs));
        let config = ClusterModel::decode(&config);
        let planned = ClusterModel { use_scheduler_public_ip: planned_public, ..config.clone() };
        let mut diags = Diagnostics::new();
        private_ingress_on_public_address(&config, &planned, &mut diags);
        diags.0.iter().map(|d| d.path.as_ref().map(|p| p.to_string()).unwrap_or_default()).collect()
    }

    #[test]
    fn private_sources_on_a_public_address_warn_where_they_are_set() {
        let block = Value::object([
            ("cidr", Value::string("10.1.0.0/16")),
            ("ports", Value::Set(vec![Value::int(8786)])),
        ]);
        let ingress = Value::object([("ingress", Value::Set(vec![block]))]);
        let left = || Field::Unknown;
        assert_eq!(warned_at([("backend_options", ingress)], left()), ["backend_options.ingress"]);
        let private = ("allow_ingress_from", Value::string("10.1.0.0/16"));
        assert_eq!(warned_at([private.clone()], left()), ["allow_ingress_from"]);
        let own_false = ("use_scheduler_public_ip", Value::Bool(false));
        assert!(warned_at([private.clone(), own_false], Field::Known(false)).is_empty());
        assert!(warned_at([private], Field::Known(false)).is_empty(), "cluster_defaults' false");
        assert!(warned_at([("allow_ingress_from", Value::string("everyone"))], left()).is_empty());
    }
}
