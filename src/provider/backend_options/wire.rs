//! The backend options' wire forms: the `update_options` payload built from a plan, exactly as
//! Coiled's `set_backend_options` builds it, and the state built from what `GET backend_options`
//! reports, with the descriptions that name drift and takeovers.

use std::collections::BTreeMap;

use tfplugin::model::Field;
use tfplugin::value::{Number, Value};

use super::super::duration::WriteTimeouts;
use super::super::ingress::{self, RuleSet};
use crate::api::{
    AwsKeys, AwsOptions, BackendOptionsData, BackendOptionsRead, CloudOptions, EmptyAwsKeys,
    FirewallSpecOut, GcpOptions, Registry,
};
use crate::provider::{Checked, not_empty, refuse, workspace_slug};

/// Default regions, as Coiled's client picks them.
pub(crate) const AWS_DEFAULT_REGION: &str = "us-east-1";
pub(crate) const GCP_DEFAULT_REGION: &str = "us-east1";
/// The zone Coiled's client picks on GCP when given neither region nor zone.
const GCP_DEFAULT_ZONE: &str = "us-east1-c";

/// The region Coiled's client uses when none is given: AWS's default, or on GCP the one the zone
/// implies ([`gcp_region_zone`]).
pub(crate) fn default_region(backend: Option<&str>, zone: Option<&str>) -> String {
    if backend == Some("gcp") { gcp_region_zone(None, zone).0 } else { AWS_DEFAULT_REGION.into() }
}

/// The GCP region and `gcp_zone_name` Coiled's client sends for a region and zone as given
/// (`utils.py` `parse_gcp_region_zone`): with neither, `us-east1` and `us-east1-c`; a one-letter
/// zone goes after the region (`us-east1` when none is given); a zone without a region gives the
/// region (the zone less its last two characters); a region without a zone sends no zone.
pub(crate) fn gcp_region_zone(
    region: Option<&str>,
    zone: Option<&str>,
) -> (String, Option<String>) {
    match (region, zone) {
        (None, None) => (GCP_DEFAULT_REGION.into(), Some(GCP_DEFAULT_ZONE.into())),
        (region, Some(z)) if z.chars().count() == 1 => {
            let region = region.unwrap_or(GCP_DEFAULT_REGION);
            (region.into(), Some(format!("{region}-{z}")))
        }
        (None, Some(z)) => {
            let cut = z.char_indices().rev().nth(1).map_or(0, |(i, _)| i);
            (z[..cut].into(), Some(z.into()))
        }
        (Some(r), z) => (r.into(), z.map(str::to_string)),
    }
}

tfplugin::model! {
    /// `coiled_backend_options`'s configuration, plan or state.
    pub struct BackendOptionsModel {
        /// The workspace slug.
        #[attribute(computed, stable)]
        id: String,
        /// Workspace (formerly account) whose options these are. Defaults to the provider's
        /// workspace. Changing it manages another workspace's options.
        #[attribute(optional_computed, requires_replace, stable, validated(workspace_slug))]
        workspace: String,
        /// Cloud provider: `aws` or `gcp`.
        #[attribute(required, validated(aws_or_gcp))]
        backend: String,
        /// Cloud region for clusters. Defaults to `us-east-1` on AWS and `us-east1` on GCP.
        #[attribute(optional_computed, validated(|v| not_empty(v, "region")))]
        region: String,
        /// Availability zone for clusters. Left out, Coiled chooses on AWS; on GCP the zone
        /// Coiled's client derives is sent: none when `region` is set, `us-east1-c` when neither is
        /// (a one-letter zone such as `b` goes after the region).
        #[attribute(optional, validated(|v| not_empty(v, "zone")))]
        zone: String,
        /// AWS access key ID Coiled uses to create clusters. Required with the `aws` backend,
        /// together with `aws_secret_access_key` or `aws_secret_access_key_wo`.
        #[attribute(optional, sensitive, validated(|v| not_empty(v, "aws_access_key_id")))]
        aws_access_key_id: String,
        /// AWS secret access key (`aws` backend). Stored in Terraform state (as a sensitive value);
        /// with Terraform 1.11 or later prefer `aws_secret_access_key_wo`. Never read back from
        /// Coiled.
        #[attribute(
            optional,
            sensitive,
            import_sends_configuration,
            validated(|v| not_empty(v, "aws_secret_access_key"))
        )]
        aws_secret_access_key: String,
        /// Write-only AWS secret access key (Terraform 1.11 or later): sent to Coiled but never
        /// stored in state or plan. Bump `aws_secret_access_key_wo_version` to send a new value.
        #[attribute(
            optional,
            sensitive,
            write_only,
            validated(|v| not_empty(v, "aws_secret_access_key_wo"))
        )]
        aws_secret_access_key_wo: String,
        /// Any number; changing it sends `aws_secret_access_key_wo` again.
        #[attribute(optional, import_sends_configuration)]
        aws_secret_access_key_wo_version: Number,
        /// GCP project (`gcp` backend). Defaults to the `project_id` of the service account key.
        #[attribute(optional_computed, validated(|v| not_empty(v, "gcp_project_id")))]
        gcp_project_id: String,
        /// GCP service account key, as JSON text (`gcp` backend). Stored in state as a sensitive
        /// value; with Terraform 1.11 or later prefer `gcp_service_account_json_wo`.
        #[attribute(optional, sensitive, import_sends_configuration)]
        gcp_service_account_json: String,
        /// Write-only GCP service account key (Terraform 1.11 or later): never stored in state or
        /// plan. Bump `gcp_service_account_json_wo_version` to send a new value.
        #[attribute(optional, sensitive, write_only)]
        gcp_service_account_json_wo: String,
        /// Any number; changing it sends `gcp_service_account_json_wo` again.
        #[attribute(optional, import_sends_configuration)]
        gcp_service_account_json_wo_version: Number,
        /// Silences the warning about rules open to the whole internet.
        #[attribute(with = ingress::acknowledge_attribute)]
        acknowledge_world_open_ingress: bool,
        /// Bring your own network: existing network, subnets and firewall for clusters in this
        /// workspace.
        #[block(Single)]
        network: Network,
        /// Operation timeouts, as durations such as `90s`, `20m` or `1h`.
        #[block(with = timeouts_block)]
        timeouts: WriteTimeouts,
        /// Default ingress rule for clusters created in the workspace afterwards. Repeat the block
        /// for several CIDR blocks. With none, Coiled's default applies. A cluster's own
        /// `backend_options { ingress }` overrides these.
        #[block(with = ingress::ingress_block)]
        ingress: Value,
    }
}

tfplugin::model! {
    /// The `network` block (the data source's `network` attribute has the same shape).
    pub struct Network {
        /// Existing VPC (AWS) or network (GCP) to create clusters in.
        #[attribute(optional)]
        network_id: String,
        /// Existing subnet for schedulers.
        #[attribute(optional)]
        scheduler_subnet_id: String,
        /// Existing subnet for workers.
        #[attribute(optional)]
        worker_subnet_id: String,
        /// Existing security group (AWS) or firewall (GCP) to attach to clusters instead of one
        /// Coiled creates.
        #[attribute(optional)]
        firewall_id: String,
    }
}

/// `backend`: `aws` or `gcp`.
fn aws_or_gcp(v: &Value) -> Checked {
    refuse(v.as_str().filter(|b| !matches!(*b, "aws" | "gcp")), "Invalid Backend", |b| {
        format!("backend is {b:?}; it must be \"aws\" or \"gcp\".")
    })
}

/// The `timeouts` block: how long a write may take.
fn timeouts_block(name: &'static str, description: &'static str) -> tfplugin::schema::NestedBlock {
    super::super::duration::timeouts_block(
        name,
        description,
        &[
            (
                "create",
                "How long the first write (the `update_options` exchange and its read-back) may take, \
             e.g. `30m`. Default `20m`.",
            ),
            ("update", "How long a later write may take. Default `20m`."),
        ],
    )
}

impl Network {
    /// The identifiers set, by name, as Coiled's options hold them.
    fn as_options(&self) -> BTreeMap<String, String> {
        let fields = [
            (tfplugin::attr!(Network, network_id), &self.network_id),
            (tfplugin::attr!(Network, scheduler_subnet_id), &self.scheduler_subnet_id),
            (tfplugin::attr!(Network, worker_subnet_id), &self.worker_subnet_id),
            (tfplugin::attr!(Network, firewall_id), &self.firewall_id),
        ];
        fields
            .into_iter()
            .filter_map(|(k, v)| v.known().map(|v| (k.to_string(), v.clone())))
            .collect()
    }
}

impl BackendOptionsModel {
    /// The backend, `aws` when not known.
    pub fn backend_name(&self) -> &str {
        self.backend.as_deref().unwrap_or("aws")
    }

    /// The workspace these options belong to.
    pub fn workspace_name(&self) -> Option<&str> {
        self.workspace.as_deref().or(self.id.as_deref())
    }

    /// The `ingress` value, null when unset.
    pub fn ingress_value(&self) -> Value {
        self.ingress.encode()
    }
}

/// A secret from its sensitive attribute (planned, else configured), else its write-only variant.
fn secret<'a>(
    planned: &'a Field<String>,
    configured: &'a Field<String>,
    write_only: Option<&'a Field<String>>,
) -> Option<&'a str> {
    planned
        .as_deref()
        .or(configured.as_deref())
        .or(write_only.and_then(Field::as_deref))
        .filter(|s| !s.is_empty())
}

/// Builds the `update_options` payload exactly as Coiled's `set_backend_options` does.
pub fn payload(
    planned: &BackendOptionsModel,
    config: &BackendOptionsModel,
    rules: &RuleSet,
) -> Result<BackendOptionsData, String> {
    let backend = planned.backend_name();
    let zone = planned.zone.known().cloned();
    let network = planned.network.known().map(Network::as_options).unwrap_or_default();
    let firewall_spec = FirewallSpecOut { ingress: (!rules.is_empty()).then(|| rules.to_wire()) };
    match backend {
        "aws" => {
            let region = planned.region.as_deref().unwrap_or(AWS_DEFAULT_REGION).to_string();
            let key = secret(&planned.aws_access_key_id, &config.aws_access_key_id, None)
                .ok_or("aws_access_key_id is required for the aws backend")?;
            let secret = secret(
                &planned.aws_secret_access_key,
                &config.aws_secret_access_key,
                Some(&config.aws_secret_access_key_wo),
            )
            .ok_or(
                "aws_secret_access_key (or aws_secret_access_key_wo) is required for the \
                    aws backend",
            )?;
            let ecr = BTreeMap::from([
                ("aws_access_key_id".to_string(), key.to_string()),
                ("aws_secret_access_key".to_string(), secret.to_string()),
            ]);
            Ok(BackendOptionsData {
                backend: "vm",
                options: CloudOptions::Aws(AwsOptions {
                    aws_region_name: region.clone(),
                    account_role: String::new(),
                    credentials: AwsKeys {
                        aws_access_key: key.to_string(),
                        aws_secret_key: secret.to_string(),
                    },
                    firewall: BTreeMap::new(),
                    firewall_spec,
                    network,
                    zone,
                    provider_name: "aws",
                    kind: "aws_cloudbridge_backend_options",
                }),
                registry: Registry { kind: "ecr", credentials: ecr, public_ecr: false, region },
            })
        }
        "gcp" => {
            // The user's region, or one the plan kept (after an import) the zone does not imply.
            let implied = gcp_region_zone(None, zone.as_deref()).0;
            let given =
                config.region.as_deref().or(planned.region.as_deref().filter(|r| **r != implied));
            let (region, gcp_zone) = gcp_region_zone(given, zone.as_deref());
            let creds_text = secret(
                &planned.gcp_service_account_json,
                &config.gcp_service_account_json,
                Some(&config.gcp_service_account_json_wo),
            )
            .ok_or(
                "gcp_service_account_json (or gcp_service_account_json_wo) is required \
                        for the gcp backend",
            )?;
            let creds: serde_json::Value = serde_json::from_str(creds_text)
                .map_err(|e| format!("gcp_service_account_json is not JSON: {e}"))?;
            let project =
                planned.gcp_project_id.known().cloned().or_else(|| {
                    creds.get("project_id").and_then(|p| p.as_str()).map(str::to_string)
                });
            Ok(BackendOptionsData {
                backend: "vm",
                options: CloudOptions::Gcp(GcpOptions {
                    aws_region_name: AWS_DEFAULT_REGION.to_string(),
                    account_role: String::new(),
                    credentials: EmptyAwsKeys::default(),
                    firewall: BTreeMap::new(),
                    firewall_spec,
                    network,
                    zone,
                    gcp_service_creds_dict: creds,
                    provider_name: "gcp",
                    kind: "gcp_cloudbridge_backend_options",
                    gcp_project_name: project,
                    gcp_region_name: region,
                    gcp_zone_name: gcp_zone,
                    instance_service_account: None,
                }),
                registry: Registry {
                    kind: "ecr",
                    credentials: BTreeMap::new(),
                    public_ecr: false,
                    region: AWS_DEFAULT_REGION.to_string(),
                },
            })
        }
        other => Err(format!("unsupported backend {other:?}")),
    }
}

/// `prior` updated with `server`'s answer: what the server reports replaces what it contradicts;
/// credentials (never returned) and anything the server does not report are kept.
pub fn state_from_server(
    prior: &BackendOptionsModel,
    server: &BackendOptionsRead,
) -> BackendOptionsModel {
    let mut state = prior.clone();
    if let Some(p) = server.provider_name() {
        state.backend = Field::Known(p.to_string());
    }
    if let Some(r) = server.region() {
        state.region = Field::Known(r.to_string());
    }
    if let Some(zone) = server.zone().filter(|z| !gcp_zone_implied(&state, server, z.as_deref())) {
        state.zone = Field::from_option(zone);
    }
    if let Some(project) = server.gcp_project_name() {
        state.gcp_project_id = Field::Known(project.to_string());
    }
    if let Some(ids) = server.network() {
        state.network = if ids.iter().all(Option::is_none) {
            Field::Null
        } else {
            let [network_id, scheduler_subnet_id, worker_subnet_id, firewall_id] =
                ids.map(Field::from_option);
            Field::Known(Network { network_id, scheduler_subnet_id, worker_subnet_id, firewall_id })
        };
    }
    if let Some(wire) = server.ingress() {
        state.ingress =
            Field::Known(ingress::state_value(&RuleSet::from_wire(&wire), &prior.ingress_value()));
    }
    state
}

/// Whether a GCP answer's zone, reported only as `gcp_zone_name`, is the one Coiled's client
/// derives from the state's region and zone (given or left to the default): then it is no change of
/// the zone the configuration gave, and none given stays none (rule `derived-zone`).
fn gcp_zone_implied(
    state: &BackendOptionsModel,
    server: &BackendOptionsRead,
    reported: Option<&str>,
) -> bool {
    if server.provider_name().as_deref() != Some("gcp") || server.options.get("zone").is_some() {
        return false;
    }
    let zone = state.zone.as_deref();
    let (implied_region, by_default) = gcp_region_zone(None, zone);
    let given = gcp_region_zone(state.region.as_deref(), zone).1;
    reported == given.as_deref()
        || (state.region.as_deref() == Some(implied_region.as_str())
            && reported == by_default.as_deref())
}

/// The settings one workspace's options hold, in words, for comparing two of them: backend, region,
/// zone, ingress rules and network.
pub(crate) fn describe(state: &BackendOptionsModel) -> Vec<(&'static str, String)> {
    let text = |v: &Field<String>| v.as_deref().unwrap_or("(unset)").to_string();
    let rules = match RuleSet::of_state(&state.ingress_value()) {
        Some(r) => r
            .rules()
            .iter()
            .map(|r| {
                format!(
                    "{} (ports {})",
                    r.cidr,
                    r.ports.iter().map(u16::to_string).collect::<Vec<_>>().join(",")
                )
            })
            .collect::<Vec<_>>()
            .join("; "),
        None => "none (Coiled's default rules apply)".to_string(),
    };
    let network = state
        .network
        .known()
        .map(|n| {
            n.as_options().iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", ")
        })
        .unwrap_or_default();
    vec![
        ("backend", text(&state.backend)),
        ("region", text(&state.region)),
        ("zone", text(&state.zone)),
        ("ingress", rules),
        ("network", if network.is_empty() { "Coiled-managed".to_string() } else { network }),
    ]
}

/// What differs between two descriptions, as `name: before → after` lines.
pub(crate) fn differences(before: &[(&str, String)], after: &[(&str, String)]) -> Vec<String> {
    before
        .iter()
        .zip(after)
        .filter(|(b, a)| b.1 != a.1)
        .map(|(b, a)| format!("  {}: {} → {}", b.0, b.1, a.1))
        .collect()
}

/// Whether options as read are Coiled's defaults for a workspace nobody has configured.
pub(crate) fn is_default(described: &[(&str, String)]) -> bool {
    let default = describe(&BackendOptionsModel {
        backend: Field::Known("aws".into()),
        region: Field::Known(AWS_DEFAULT_REGION.into()),
        ..BackendOptionsModel::default()
    });
    described == default.as_slice()
}

#[cfg(test)]
mod tests {
    use super::gcp_region_zone;

    /// `parse_gcp_region_zone` of Coiled's client 1.135.6, as written there, for comparison.
    fn client(region: Option<&str>, zone: Option<&str>) -> (Option<String>, Option<String>) {
        let (mut region, mut zone) = (region.map(str::to_string), zone.map(str::to_string));
        match (&region, &zone) {
            (None, None) => (region, zone) = (Some("us-east1".into()), Some("us-east1-c".into())),
            (Some(r), Some(z)) if z.len() == 1 => zone = Some(format!("{r}-{z}")),
            (None, Some(z)) if z.len() == 1 => {
                (region, zone) = (Some("us-east1".into()), Some(format!("us-east1-{z}")))
            }
            (None, Some(z)) => region = Some(z[..z.len().saturating_sub(2)].to_string()),
            _ => {}
        }
        (region, zone)
    }

    #[test]
    fn gcp_region_and_zone_are_derived_as_the_client_derives_them() {
        let regions = [None, Some("europe-west1"), Some("us-central1")];
        let zones = [None, Some("b"), Some("europe-west1-d"), Some("us-central1-a"), Some("c")];
        for region in regions {
            for zone in zones {
                let (r, z) = gcp_region_zone(region, zone);
                assert_eq!((Some(r), z), client(region, zone), "region {region:?}, zone {zone:?}");
            }
        }
    }
}
