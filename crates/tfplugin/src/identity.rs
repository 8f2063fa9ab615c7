//! Resource identity (protocol 6.9, Terraform 1.12 and later): a small, permanent object that names
//! a resource instance (for a cluster, its workspace and id), reported with every state the
//! provider returns and accepted by `import` blocks (`identity = { … }`) in place of an import ID.

use crate::proto::tfplugin6 as pb;
use crate::value::{Type, Value};

/// One identity attribute.
pub struct IdentityAttr {
    /// Its name.
    pub name: &'static str,
    /// Its type.
    pub ty: Type,
    /// Whether an `import` block must give it.
    pub required_for_import: bool,
    /// What it is.
    pub description: &'static str,
}

/// A resource type's identity schema.
pub struct IdentitySchema {
    /// Its version (0 until the identity's shape changes).
    pub version: i64,
    /// Its attributes.
    pub attributes: Vec<IdentityAttr>,
}

impl IdentitySchema {
    /// An identity of version 0 whose attributes are strings, each required for import, given as
    /// `(name, description)`.
    pub fn required_strings(attributes: &[(&'static str, &'static str)]) -> IdentitySchema {
        let attributes = attributes.iter().map(|&(name, description)| IdentityAttr {
            name,
            ty: Type::String,
            required_for_import: true,
            description,
        });
        IdentitySchema { version: 0, attributes: attributes.collect() }
    }

    /// The object type of identity values.
    pub fn object_type(&self) -> Type {
        Type::object(self.attributes.iter().map(|a| (a.name, a.ty.clone())))
    }

    /// The protocol message.
    pub fn to_proto(&self) -> pb::ResourceIdentitySchema {
        pb::ResourceIdentitySchema {
            version: self.version,
            identity_attributes: self
                .attributes
                .iter()
                .map(|a| pb::resource_identity_schema::IdentityAttribute {
                    name: a.name.to_string(),
                    r#type: a.ty.to_json().to_string().into_bytes(),
                    required_for_import: a.required_for_import,
                    optional_for_import: !a.required_for_import,
                    description: a.description.to_string(),
                })
                .collect(),
        }
    }
}

/// The identity of `state` as `object(attrs)`, when every attribute is known in it; `None`
/// otherwise (a resource being created has no identity until it exists).
pub fn from_state(schema: &IdentitySchema, state: &Value) -> Option<Value> {
    if state.is_null() {
        return None;
    }
    let attrs = schema.attributes.iter().map(|a| {
        let v = state.get(a.name).filter(|v| v.is_wholly_known() && !v.is_null())?;
        Some((a.name, v.clone()))
    });
    attrs.collect::<Option<Vec<_>>>().map(Value::object)
}
