//! The create request as `coiled.Cluster` builds it (`Cluster._start` in `coiled/v2/cluster.py`,
//! then `CloudV2._create_cluster` in `coiled/v2/core.py`): VM types from the cloud's defaults when
//! unset, the workspace's Dask configuration overrides applied where the client applies them, tags
//! as the client merges them, and an ad hoc software environment for a container image.

use std::collections::BTreeMap;

use serde_json::Value as Json;
use sha1::{Digest, Sha1};

use super::super::ingress::RuleSet;
use super::model::ClusterModel;
use crate::api::{ClusterOptions, CreateCluster, CreateSoftwareEnv, FirewallSpecOut, JsonObject};

/// The workspace's Dask configuration overrides, read as `dask.config.get` reads its configuration:
/// dotted keys and nested objects alike, `-` and `_` the same.
#[derive(Clone, Debug, Default)]
pub struct Overrides(pub JsonObject);

impl Overrides {
    /// The value at a dotted path such as `coiled.worker.vm-types`.
    pub fn get(&self, path: &str) -> Option<&Json> {
        let segments: Vec<String> = path.split('.').map(canonical).collect();
        lookup(&self.0, &segments).filter(|v| !v.is_null())
    }

    fn text(&self, path: &str) -> Option<String> {
        self.get(path).and_then(Json::as_str).map(str::to_string)
    }

    fn object(&self, path: &str) -> JsonObject {
        self.get(path).and_then(Json::as_object).cloned().unwrap_or_default()
    }

    fn flag(&self, path: &str, default: bool) -> bool {
        self.get(path).and_then(Json::as_bool).unwrap_or(default)
    }

    /// A VM type preference: one name or a list of names, as the client accepts them.
    fn vm_types(&self, path: &str) -> Option<Vec<String>> {
        match self.get(path)? {
            Json::String(s) => Some(vec![s.clone()]),
            Json::Array(items) => items
                .iter()
                .map(|i| i.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()
                .filter(|v| !v.is_empty()),
            _ => None,
        }
    }
}

fn canonical(segment: &str) -> String {
    segment.replace('_', "-")
}

fn lookup<'a>(node: &'a JsonObject, path: &[String]) -> Option<&'a Json> {
    let mut found = None;
    for (key, value) in node {
        let key: Vec<String> = key.split('.').map(canonical).collect();
        if key.len() > path.len() || key[..] != path[..key.len()] {
            continue;
        }
        let hit = if key.len() == path.len() {
            Some(value)
        } else {
            value.as_object().and_then(|o| lookup(o, &path[key.len()..]))
        };
        found = hit.or(found);
    }
    found
}

/// The VM types `CloudV2._get_default_instance_types` (`coiled/v2/core.py`) gives a cluster without
/// GPUs, by the workspace's cloud and the architecture (`arm`).
pub fn default_vm_types(provider: &str, arm: bool) -> Result<Vec<String>, String> {
    let names: &[&str] = match (provider, arm) {
        ("aws", false) => &["m6i.xlarge", "m5.xlarge"],
        ("aws", true) => &["m7g.xlarge", "m6g.xlarge"],
        ("gcp", false) => &["e2-standard-4"],
        ("gcp", true) => &["t2a-standard-4"],
        ("azure", false) => &["Standard_D4_v5"],
        ("azure", true) => return Err("Coiled has no default ARM VM type on Azure".into()),
        ("", _) => return Err("the workspace's backend options name no cloud provider".into()),
        (other, _) => {
            return Err(format!(
                "the workspace's cloud provider is {other:?}, which has no default VM types"
            ));
        }
    };
    Ok(names.iter().map(|n| n.to_string()).collect())
}

/// The worker and scheduler VM types to send: the configuration's, else the overrides'
/// (`coiled.worker.vm-types`, `coiled.scheduler.vm-types`), else the cloud's defaults.
pub fn vm_types(
    planned: &ClusterModel,
    provider: &str,
    overrides: &Overrides,
) -> Result<(Vec<String>, Vec<String>), String> {
    let chosen =
        |types: Option<&Vec<String>>, key: &str| types.cloned().or_else(|| overrides.vm_types(key));
    let worker = chosen(planned.worker_vm_types.known(), "coiled.worker.vm-types");
    let scheduler = chosen(planned.scheduler_vm_types.known(), "coiled.scheduler.vm-types");
    match (worker, scheduler) {
        (Some(w), Some(s)) => Ok((w, s)),
        (w, s) => {
            let defaults =
                default_vm_types(provider, planned.arm.known().copied().unwrap_or(false))?;
            Ok((w.unwrap_or_else(|| defaults.clone()), s.unwrap_or(defaults)))
        }
    }
}

/// The client's refusal of `arm = true` with VM types that are not all ARM (`Requested cluster
/// architecture ... does not match architecture of some instance types`), if it applies.
pub fn arm_mismatch<'a>(
    planned: &ClusterModel,
    provider: &str,
    types: impl IntoIterator<Item = &'a String>,
) -> Option<String> {
    let types: Vec<&String> = types.into_iter().collect();
    (planned.arm.known() == Some(&true)
        && architecture(provider, types.iter().copied()) != "aarch64")
        .then(|| {
            format!(
                "`arm = true` asks for an ARM cluster, but not every VM type is an ARM one on \
                {provider}: {}. Name ARM types only (e.g. m7g on AWS, t2a on Google Cloud), or \
                leave the VM types out to get the cloud's ARM defaults.",
                types.iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
            )
        })
}

/// The workspace's `coiled.scheduler_port` (which the client reads as `scheduler_port`'s default).
pub fn override_port(o: &Overrides) -> Option<i64> {
    o.get("coiled.scheduler_port").and_then(Json::as_i64)
}

/// Values a new cluster takes from the workspace's Dask configuration where `config` leaves them
/// out (a plan leaves them unknown: the apply reads that configuration), as the client reads them
/// at its start: `use_dashboard_https` (`coiled.use_dashboard_https`, else `true`) and
/// `use_scheduler_public_ip` (`coiled.use_scheduler_public_ip`, else `true`; the provider's
/// `cluster_defaults` come first) (rule `workspace-choices`).
pub fn take_workspace_choices(config: &ClusterModel, planned: &mut ClusterModel, o: &Overrides) {
    use tfplugin::model::Field;
    if config.use_dashboard_https.is_null() && planned.use_dashboard_https.is_unknown() {
        planned.use_dashboard_https = Field::Known(o.flag("coiled.use_dashboard_https", true));
    }
    if config.use_scheduler_public_ip.is_null() && planned.use_scheduler_public_ip.is_unknown() {
        planned.use_scheduler_public_ip =
            Field::Known(o.flag("coiled.use_scheduler_public_ip", true));
    }
}

/// The port the scheduler will listen on: `scheduler_port`, else the workspace's
/// `coiled.scheduler_port`, else its `coiled.scheduler-options.port`, else Coiled's default.
pub fn scheduler_port(planned: &ClusterModel, o: &Overrides) -> i64 {
    planned
        .scheduler_port
        .known()
        .copied()
        .or_else(|| override_port(o))
        .or_else(|| o.get("coiled.scheduler-options.port").and_then(Json::as_i64))
        .unwrap_or(super::model::DEFAULT_SCHEDULER_PORT)
}

/// The architecture the client infers: `aarch64` when every VM type is an ARM one (AWS names with a
/// `g` after the generation digit, GCP `t2a`/`c4a`), else `x86_64`.
pub fn architecture<'a>(
    provider: &str,
    types: impl IntoIterator<Item = &'a String>,
) -> &'static str {
    let arm = |t: &str| match provider {
        "aws" => {
            let family = t.split('.').next().unwrap_or_default().to_ascii_lowercase();
            let digit =
                family.char_indices().skip(1).find(|(_, c)| c.is_ascii_digit()).map(|(i, _)| i);
            family.chars().all(|c| c.is_alphanumeric() || c == '_')
                && digit.is_some_and(|i| family[i + 1..].contains('g'))
        }
        "gcp" => matches!(
            t.split('-').next().unwrap_or_default().to_ascii_lowercase().as_str(),
            "t2a" | "c4a"
        ),
        _ => false,
    };
    if types.into_iter().all(|t| arm(t)) { "aarch64" } else { "x86_64" }
}

/// The software environment name `coiled.Cluster(container=...)` makes for an image:
/// `{image:tag}-{arch}-{uuid5(DNS, image)}`, every character outside `[A-Za-z0-9_-]` turned into
/// `_`, lower-cased.
pub fn container_env_name(container: &str, arch: &str) -> String {
    let image_and_tag = container.rsplit('/').next().unwrap_or(container);
    let raw = format!("{image_and_tag}-{arch}-{}", uuid5_dns(container));
    raw.chars()
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect::<String>()
        .to_lowercase()
}

/// Whether `name` has the form of a name `container_env_name` makes: `…-{x86_64|aarch64}-{UUID}`.
pub fn looks_like_container_env(name: &str) -> bool {
    let Some(cut) = name.len().checked_sub(36).filter(|&c| name.is_char_boundary(c)) else {
        return false;
    };
    let (rest, uuid) = name.split_at(cut);
    let groups: Vec<&str> = uuid.split('-').collect();
    let shaped = groups.len() == 5
        && [8, 4, 4, 4, 12]
            .iter()
            .zip(&groups)
            .all(|(n, g)| g.len() == *n && g.bytes().all(|b| b.is_ascii_hexdigit()));
    shaped && (rest.ends_with("-x86_64-") || rest.ends_with("-aarch64-"))
}

/// Whether `software` is the environment the client makes for `container` (on either architecture).
pub fn container_env_named(container: &str, software: &str) -> bool {
    let bare = software.rsplit('/').next().unwrap_or(software);
    ["x86_64", "aarch64"].iter().any(|arch| container_env_name(container, arch) == bare)
}

/// Version 5 UUID (RFC 4122) of `name`, as Python's `uuid.uuid5(NAMESPACE_DNS, name)`.
fn uuid5_dns(name: &str) -> String {
    const DNS: [u8; 16] = [
        0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1, 0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30,
        0xc8,
    ];
    let digest = Sha1::new().chain_update(DNS).chain_update(name.as_bytes()).finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// The body that makes the software environment for `container`, as the client sends it.
pub fn container_env_body(
    container: &str,
    arch: &'static str,
    region: Option<String>,
) -> CreateSoftwareEnv {
    CreateSoftwareEnv {
        name: container_env_name(container, arch),
        container: Some(container.to_string()),
        force_rebuild: false,
        // `md5(json.dumps(None))`: the client hashes the package spec, and a container has none.
        md5: crate::provider::software::spec::spec_md5(None),
        use_entrypoint: true,
        gpu_enabled: false,
        architecture: arch.to_string(),
        region_name: region,
        enable_experimental_installer: true,
        lockfile_content: None,
        lockfile_name: None,
        spec: JsonObject::new(),
    }
}

/// Whether a software environment name is one the client accepts (`parse_identifier` in
/// `coiled/utils.py`): `(workspace/)name(:revision)`, workspace and name of lower-case ASCII
/// letters, digits, `-` and `_`.
pub fn valid_software_name(name: &str) -> bool {
    let part = |p: &str, upper: bool| {
        !p.is_empty()
            && p.chars().all(|c| {
                c.is_ascii_lowercase()
                    || c.is_ascii_digit()
                    || c == '-'
                    || c == '_'
                    || (upper && c.is_ascii_uppercase())
            })
    };
    let (rest, revision) = name.split_once(':').map_or((name, None), |(r, v)| (r, Some(v)));
    let (ws, bare) = rest.split_once('/').map_or((None, rest), |(w, b)| (Some(w), b));
    part(bare, false) && ws.is_none_or(|w| part(w, false)) && revision.is_none_or(|r| part(r, true))
}

/// The pieces of a create the server is asked for first: the VM types, the software environment's
/// name, and the workspace's overrides.
pub struct Resolved {
    pub worker_vm_types: Vec<String>,
    pub scheduler_vm_types: Vec<String>,
    pub env_name: String,
    pub overrides: Overrides,
}

/// The create request for `planned`, with the cluster's own rules as read once from the plan.
pub fn create_body(
    planned: &ClusterModel,
    own: Option<&RuleSet>,
    resolved: Resolved,
) -> CreateCluster {
    let bo = planned.backend();
    let o = &resolved.overrides;
    let zone = bo.zone.known().cloned();
    let (spot, fallback) = planned.spot_options();
    let https = planned.dashboard_https();
    let options = ClusterOptions {
        region_name: bo.region.known().cloned(),
        // `use_best_zone` defaults to true unless a zone is named, and then asks for `multizone`.
        multizone: zone.is_none().then_some(true),
        zone_name: zone,
        spot,
        spot_on_demand_fallback: fallback,
        use_dashboard_public_ip: (!planned.use_public_ip() && !https).then_some(false),
        use_dashboard_https: (!https).then_some(false),
        firewall_spec: own.map(|rules| {
            // The firewall `scheduler_port` / `allow_ingress_from` make, as the client writes it.
            let port = override_port(o);
            let network = RuleSet::of_state(&planned.ingress()).is_none()
                && planned.network_rules(port).is_some_and(|n| n.same_as(rules));
            let wire = if network {
                planned.network_wire(port).unwrap_or_default()
            } else {
                rules.to_wire()
            };
            FirewallSpecOut { ingress: Some(wire) }
        }),
    };
    let mut scheduler_options = o.object("coiled.scheduler-options");
    if let Some(port) = planned.scheduler_port.known().copied().or_else(|| override_port(o)) {
        scheduler_options.insert("port".into(), Json::from(port));
    }
    let lifetime =
        planned.cluster_timeout.known().cloned().or_else(|| o.text("coiled.cluster-timeout"));
    let idle = planned.idle_timeout.known().cloned();
    if let Some(t) = idle.or_else(|| o.text("distributed.scheduler.idle-timeout")) {
        scheduler_options.insert("idle_timeout".into(), Json::String(t));
    }
    // `{**coiled.tags, **{k: str(v) for k, v in tags.items() if v}}`.
    let mut tags: BTreeMap<String, String> = o
        .object("coiled.tags")
        .into_iter()
        .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_string)))
        .collect();
    if let Some(configured) = planned.tags.known() {
        let non_empty = configured.iter().filter(|(_, v)| !v.is_empty());
        tags.extend(non_empty.map(|(k, v)| (k.clone(), v.clone())));
    }
    CreateCluster {
        name: planned.name.as_deref().unwrap_or_default().to_string(),
        workers: planned.workers(),
        worker_instance_types: resolved.worker_vm_types,
        scheduler_instance_types: resolved.scheduler_vm_types,
        worker_options: o.object("coiled.worker-options"),
        worker_class: o.text("coiled.worker.class"),
        worker_disk_size: planned.worker_disk_size.known().copied(),
        scheduler_options,
        environ: planned.environ.known().cloned().unwrap_or_default(),
        tags,
        private_to_creator: o.flag("coiled.private-to-creator", false),
        env_name: resolved.env_name,
        use_aws_creds_endpoint: o.flag("coiled.use-aws-creds-endpoint", true),
        cluster_timeout_seconds: lifetime
            .and_then(|t| crate::provider::duration::parse_dask_timedelta(&t).ok())
            .map(|secs| secs as i64),
        coiled_cloud_env_image: o.text("coiled.cloud-env-image"),
        dask_config: resolved.overrides.0,
        options: Some(options),
        // The rest the client sends as null, or false: not set from Terraform.
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_names_match_the_client() {
        // Computed with coiled 1.135.6's own expression under Python 3.11.
        assert_eq!(
            container_env_name("ghcr.io/dask/dask:2024.1.0", "x86_64"),
            "dask_2024_1_0-x86_64-17e95dff-2fc9-5dc9-835a-6a4409761519"
        );
    }

    proptest::proptest! {
        /// Every name the client makes for an image has the form a query looks for, on either
        /// architecture, and is that image's.
        #[test]
        fn every_container_env_name_is_recognised(image in "\\PC{0,60}", arm in proptest::bool::ANY) {
            let name = container_env_name(&image, if arm { "aarch64" } else { "x86_64" });
            proptest::prop_assert!(looks_like_container_env(&name), "{name}");
            proptest::prop_assert!(container_env_named(&image, &name));
        }
    }

    #[test]
    fn names_not_made_for_an_image_are_not_taken_for_one() {
        for name in [
            "dask",
            "etl-env",
            "x86_64-17e95dff-2fc9-5dc9-835a-6a4409761519",
            "a-x86_64-17e95dff-2fc9-5dc9-835a-6a440976151z",
            "a-arm64-17e95dff-2fc9-5dc9-835a-6a4409761519",
            "é",
        ] {
            assert!(!looks_like_container_env(name), "{name}");
        }
    }

    #[test]
    fn overrides_read_as_dask_reads_them() {
        let text =
            r#"{"coiled": {"worker": {"vm_types": "m7g.large"}}, "coiled.tags": {"a": "b"}}"#;
        let o = Overrides(serde_json::from_str(text).unwrap());
        assert_eq!(o.vm_types("coiled.worker.vm-types"), Some(vec!["m7g.large".to_string()]));
        assert_eq!(o.get("coiled.tags.a"), Some(&Json::String("b".into())));
        assert!(o.get("coiled.scheduler.vm-types").is_none());
    }

    #[test]
    fn architecture_follows_every_vm_type() {
        let arch = |provider: &str, types: &[&str]| {
            architecture(provider, &types.iter().map(|t| t.to_string()).collect::<Vec<_>>())
        };
        assert_eq!(arch("aws", &["m7g.xlarge", "c6gn.large"]), "aarch64");
        assert_eq!(arch("aws", &["m7g.xlarge", "m6i.xlarge"]), "x86_64");
        assert_eq!(arch("aws", &["g4dn.xlarge"]), "x86_64");
        assert_eq!(arch("gcp", &["t2a-standard-4"]), "aarch64");
    }

    #[test]
    fn software_names_as_the_client_parses_them() {
        for ok in ["my-env", "coiled/xgboost", "xgboost:1efD456", "a_b-1"] {
            assert!(valid_software_name(ok), "{ok}");
        }
        for bad in ["", "My-Env", "ghcr.io/dask/dask:latest", "a/b/c", "/x", "x:"] {
            assert!(!valid_software_name(bad), "{bad}");
        }
    }

    #[test]
    fn default_vm_types_need_a_cloud() {
        assert_eq!(default_vm_types("aws", false).unwrap(), ["m6i.xlarge", "m5.xlarge"]);
        assert_eq!(default_vm_types("aws", true).unwrap(), ["m7g.xlarge", "m6g.xlarge"]);
        assert!(default_vm_types("", false).unwrap_err().contains("no cloud provider"));
        assert!(default_vm_types("azure", true).is_err());
    }
}
