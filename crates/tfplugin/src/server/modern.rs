//! The services of newer Terraform: provider functions (1.8), ephemeral resources (1.10) and
//! resource identity (1.12). A child of the server module, sharing its state.

use std::collections::HashMap;

use super::super::diag::Diagnostics;
use super::super::function::{self, FunctionError};
use super::super::identity;
use super::super::value::{self, Value};
use super::{PluginService, decode, encode, named, pb};

/// How [`named`] reports an ephemeral resource type this provider does not have.
const UNKNOWN_EPHEMERAL: (&str, &str) = ("Unknown Ephemeral Resource", "ephemeral resource");

impl PluginService {
    /// The identity of `state` for resource type `name`, encoded, when it has one and it is known.
    pub(super) fn identity_of(
        &self,
        name: &str,
        state: &Value,
    ) -> Option<pb::ResourceIdentityData> {
        let (schema, ty) = self.identities.get(name)?;
        let value = identity::from_state(schema, state)?;
        let mut diags = Diagnostics::new();
        encode(&value, ty, &mut diags, "identity")
            .map(|dv| pb::ResourceIdentityData { identity_data: Some(dv) })
    }

    /// The import ID an `import` block's identity stands for: its values joined by `/`.
    pub(super) fn import_id_of(
        &self,
        name: &str,
        identity: &pb::ResourceIdentityData,
        diags: &mut Diagnostics,
    ) -> Option<String> {
        let Some((schema, ty)) = self.identities.get(name) else {
            diags.error(
                "Import by Identity Not Supported",
                format!("{name} has no resource identity: import it by ID."),
            );
            return None;
        };
        let value = decode(identity.identity_data.as_ref(), ty, diags, "identity")?;
        let mut parts = Vec::new();
        for a in &schema.attributes {
            match value.get(a.name).and_then(Value::as_str) {
                Some(v) if !v.is_empty() => parts.push(v.to_string()),
                _ if a.required_for_import => {
                    diags.error(
                        "Incomplete Identity",
                        format!("The identity of {name} needs `{}`.", a.name),
                    );
                    return None;
                }
                _ => {}
            }
        }
        Some(parts.join("/"))
    }

    pub(super) fn function_declarations(&self) -> HashMap<String, pb::Function> {
        self.functions
            .iter()
            .map(|(n, f)| (n.to_string(), function::to_proto(f.as_ref())))
            .collect()
    }

    /// Calls function `name` with the encoded arguments Terraform sent.
    pub fn call(&self, name: &str, arguments: &[pb::DynamicValue]) -> pb::call_function::Response {
        match self.call_result(name, arguments) {
            Ok(result) => pb::call_function::Response { result: Some(result), error: None },
            Err(e) => pb::call_function::Response { result: None, error: Some(e.to_proto()) },
        }
    }

    fn call_result(
        &self,
        name: &str,
        arguments: &[pb::DynamicValue],
    ) -> Result<pb::DynamicValue, FunctionError> {
        let text = |text: String| FunctionError { argument: None, text };
        let f = self.functions.get(name);
        let f = f.ok_or_else(|| text(format!("this provider has no function {name:?}")))?;
        let params = f.params();
        if arguments.len() != params.len() {
            let (want, got) = (params.len(), arguments.len());
            return Err(text(format!("{name} takes {want} argument(s), {got} given")));
        }
        let mut args = Vec::with_capacity(params.len());
        for (i, (dv, p)) in arguments.iter().zip(&params).enumerate() {
            let Some(v) = decode(Some(dv), &p.ty, &mut Diagnostics::new(), "argument") else {
                let why = format!("{} could not be read as {}", p.name, p.ty.to_json());
                return Err(FunctionError::argument(i, why));
            };
            if !v.is_wholly_known() || v.is_null() {
                let why = format!("{} must be a known, non-null value", p.name);
                return Err(FunctionError::argument(i, why));
            }
            args.push(v);
        }
        let v = f.call(&args)?;
        encode(&v, &f.returns(), &mut Diagnostics::new(), "result")
            .ok_or_else(|| text(format!("{name} produced a value it could not encode")))
    }

    /// `UpgradeResourceIdentity`: stored identities of this version or older, re-read by the
    /// schema.
    pub(super) fn upgrade_identity(
        &self,
        r: pb::upgrade_resource_identity::Request,
    ) -> pb::upgrade_resource_identity::Response {
        let mut diags = Diagnostics::new();
        let mut out = pb::upgrade_resource_identity::Response::default();
        let raw = r.raw_identity.map(|raw| raw.json).unwrap_or_default();
        let json = serde_json::from_slice(&raw).unwrap_or(serde_json::Value::Null);
        match self.identities.get(r.type_name.as_str()) {
            Some((schema, _)) if r.version > schema.version => diags.error(
                "Identity From a Newer Provider",
                format!(
                    "The identity of this {} was written by a newer provider (version {}).",
                    r.type_name, r.version
                ),
            ),
            Some((_, ty)) => match value::from_json(&json, ty) {
                Ok(v) => {
                    out.upgraded_identity = encode(&v, ty, &mut diags, "identity")
                        .map(|dv| pb::ResourceIdentityData { identity_data: Some(dv) })
                }
                Err(e) => diags.error(
                    "Unreadable Identity",
                    format!("The stored identity does not match the identity schema: {e}."),
                ),
            },
            None => {
                diags.error("No Identity", format!("{} has no resource identity.", r.type_name))
            }
        }
        out.diagnostics = diags.to_proto();
        out
    }

    /// `ValidateEphemeralResourceConfig`.
    pub(super) async fn validate_ephemeral(
        &self,
        r: pb::validate_ephemeral_resource_config::Request,
    ) -> pb::validate_ephemeral_resource_config::Response {
        let mut diags = Diagnostics::new();
        if let Some((e, schema, ty)) =
            named(&self.ephemerals, UNKNOWN_EPHEMERAL, &r.type_name, &mut diags)
            && let Some(config) = decode(r.config.as_ref(), ty, &mut diags, "configuration")
        {
            schema.block.check_declared(&config, &value::AttrPath::root(), &mut diags);
            e.validate(&self.ctx(None), &config, &mut diags).await;
        }
        pb::validate_ephemeral_resource_config::Response { diagnostics: diags.to_proto() }
    }

    /// `OpenEphemeralResource`: the values, read once, never stored by Terraform.
    pub(super) async fn open_ephemeral(
        &self,
        r: pb::open_ephemeral_resource::Request,
    ) -> pb::open_ephemeral_resource::Response {
        let mut diags = Diagnostics::new();
        let mut out = pb::open_ephemeral_resource::Response::default();
        let ctx = self.ctx(r.client_capabilities.as_ref());
        if let Some((e, _, ty)) =
            named(&self.ephemerals, UNKNOWN_EPHEMERAL, &r.type_name, &mut diags)
            && let Some(config) = decode(r.config.as_ref(), ty, &mut diags, "configuration")
            && let Some(result) = e.open(&ctx, &config, &mut diags).await
        {
            out.result = encode(&result, ty, &mut diags, "result");
        }
        out.diagnostics = diags.to_proto();
        out
    }
}
