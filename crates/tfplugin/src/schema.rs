//! The schema model: attributes, nested attributes and nested blocks, with the descriptions that
//! the registry docs are generated from. Converts to tfplugin6 `Schema` messages and derives the
//! cty type of the objects a schema describes.

use crate::proto::tfplugin6 as pb;

use super::diag::Diagnostics;
use super::value::{AttrPath, Type, Value};

/// How an attribute's value is supplied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Presence {
    /// The configuration must set it.
    Required,
    /// The configuration may set it; otherwise null.
    Optional,
    /// The provider sets it; the configuration may not.
    Computed,
    /// The configuration may set it; otherwise the provider decides.
    OptionalComputed,
}

/// How nested attributes or blocks repeat, numbered as in both of tfplugin6's `NestingMode`s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nesting {
    /// At most one.
    Single = 1,
    /// An ordered list.
    List = 2,
    /// An unordered set.
    Set = 3,
}

impl Nesting {
    /// The type of a value nested this way, of objects of type `object`.
    fn wrap(self, object: Type) -> Type {
        match self {
            Nesting::Single => object,
            Nesting::List => Type::list(object),
            Nesting::Set => Type::set(object),
        }
    }
}

/// What an import learns of an attribute's value, and so what the first plan after an import does
/// with the configuration's value.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AfterImport {
    /// The API reports it: the import reads it, and a configuration that differs plans a change.
    #[default]
    Read,
    /// The API never reports it: the first plan after an import takes the configuration's value
    /// in place.
    FromConfiguration,
    /// The API may not report it: where the import read none, the first plan takes the
    /// configuration's value in place.
    FromConfigurationIfUnread,
    /// The API reports it in a form of its own: the resource's import compares it with the
    /// configuration by meaning, and takes the configuration's spelling of the same value.
    ComparedByMeaning,
    /// The API never reports it and cannot be trusted to hold it (a secret): the first apply after
    /// an import sends the configuration's value again.
    SentAgain,
}

/// One attribute of a block.
#[derive(Clone, Debug)]
pub struct Attribute {
    /// Its name in HCL.
    pub name: &'static str,
    /// Its value type (for nested attributes, the object's collection type).
    pub ty: Type,
    /// Nested attributes, when the attribute is an object or a collection of objects.
    pub nested: Option<(Nesting, Vec<Attribute>)>,
    /// Required, optional, computed.
    pub presence: Presence,
    /// Hidden in plan output and logs.
    pub sensitive: bool,
    /// Never stored in state or plan (Terraform ≥ 1.11).
    pub write_only: bool,
    /// Deprecation message, if deprecated.
    pub deprecated: Option<&'static str>,
    /// Markdown description, a full sentence, shown in the registry docs.
    pub description: &'static str,
    /// Plan rule: a change to this attribute replaces the resource.
    pub requires_replace: bool,
    /// Plan rule: a computed value that never changes once set stays known in plans ("use state for
    /// unknown").
    pub stable: bool,
    /// A change is recorded in state alone: the apply sends nothing to the server for it.
    pub state_only: bool,
    /// What an import learns of it.
    pub after_import: AfterImport,
    /// A check of its known values, run before the resource's own validation: `Err((summary,
    /// detail))` is an error on the attribute.
    pub check: Option<Check>,
    /// Plan rule: its value when the configuration leaves it out of a create; an update keeps what
    /// state holds (null where an import could not read it).
    pub default: Option<fn() -> Value>,
}

/// Builder methods that each set one field: `name: field = value;`.
macro_rules! setters {
    ($($(#[$doc:meta])* $name:ident: $field:ident = $value:expr;)*) => {
        $($(#[$doc])* pub fn $name(mut self) -> Self {
            self.$field = $value;
            self
        })*
    };
}

/// A check of one attribute's known value.
pub type Check = fn(&Value) -> Result<(), (&'static str, String)>;

impl Attribute {
    fn new(
        name: &'static str,
        ty: Type,
        presence: Presence,
        description: &'static str,
    ) -> Attribute {
        Attribute {
            name,
            ty,
            nested: None,
            presence,
            sensitive: false,
            write_only: false,
            deprecated: None,
            description,
            requires_replace: false,
            stable: false,
            state_only: false,
            after_import: AfterImport::Read,
            check: None,
            default: None,
        }
    }
    /// A required attribute.
    pub fn required(name: &'static str, ty: Type, description: &'static str) -> Attribute {
        Attribute::new(name, ty, Presence::Required, description)
    }
    /// An optional attribute.
    pub fn optional(name: &'static str, ty: Type, description: &'static str) -> Attribute {
        Attribute::new(name, ty, Presence::Optional, description)
    }
    /// A computed (read-only) attribute.
    pub fn computed(name: &'static str, ty: Type, description: &'static str) -> Attribute {
        Attribute::new(name, ty, Presence::Computed, description)
    }
    /// An optional attribute the provider fills in when the configuration leaves it out.
    pub fn optional_computed(name: &'static str, ty: Type, description: &'static str) -> Attribute {
        Attribute::new(name, ty, Presence::OptionalComputed, description)
    }
    /// A nested-attribute object (or collection of objects) of the given attributes.
    pub fn nested(
        name: &'static str,
        nesting: Nesting,
        attrs: Vec<Attribute>,
        presence: Presence,
        description: &'static str,
    ) -> Attribute {
        let ty = nesting.wrap(object_type(&attrs, &[]));
        Attribute {
            nested: Some((nesting, attrs)),
            ..Attribute::new(name, ty, presence, description)
        }
    }
    setters! {
        /// Marks the attribute sensitive.
        sensitive: sensitive = true;
        /// Marks the attribute write-only (never persisted; Terraform ≥ 1.11).
        write_only: write_only = true;
        /// A change to this attribute replaces the resource.
        requires_replace: requires_replace = true;
        /// Once known, this computed value is kept in plans instead of becoming "known after
        /// apply".
        stable: stable = true;
        /// A change to this attribute is recorded in state alone, with no request to the server.
        state_only: state_only = true;
        /// The API never reports it: after an import, the configuration's value is taken in place.
        import_from_configuration: after_import = AfterImport::FromConfiguration;
        /// The API may not report it: after an import that read none, the configuration's value is
        /// taken in place.
        import_from_configuration_if_unread: after_import = AfterImport::FromConfigurationIfUnread;
        /// After an import, the resource compares the value read with the configuration's by
        /// meaning.
        import_compared_by_meaning: after_import = AfterImport::ComparedByMeaning;
        /// The API never reports it: the first apply after an import sends the configuration's
        /// value.
        import_sends_configuration: after_import = AfterImport::SentAgain;
    }
    /// Checks its known values with `check` when a configuration is validated.
    pub fn validated(mut self, check: Check) -> Attribute {
        self.check = Some(check);
        self
    }
    /// Plan rule: `value()` when the configuration leaves it out of a create; an update keeps what
    /// state holds.
    pub fn defaulting_to(mut self, value: fn() -> Value) -> Attribute {
        self.default = Some(value);
        self
    }
    /// Marks the attribute deprecated.
    pub fn deprecated(mut self, message: &'static str) -> Attribute {
        self.deprecated = Some(message);
        self
    }
    /// Whether the configuration may set it.
    pub fn configurable(&self) -> bool {
        self.presence != Presence::Computed
    }
    /// Whether the provider may choose its value.
    pub fn computed_by_provider(&self) -> bool {
        matches!(self.presence, Presence::Computed | Presence::OptionalComputed)
    }

    fn to_proto(&self) -> pb::schema::Attribute {
        let (ty, nested_type) = match &self.nested {
            // Nested attributes carry `nested_type` and no `type` (both at once breaks Terraform).
            Some((nesting, attrs)) => (
                Vec::new(),
                Some(pb::schema::Object {
                    attributes: attrs.iter().map(Attribute::to_proto).collect(),
                    nesting: *nesting as i32,
                    ..Default::default()
                }),
            ),
            None => (self.ty.to_json().to_string().into_bytes(), None),
        };
        pb::schema::Attribute {
            name: self.name.to_string(),
            r#type: ty,
            nested_type,
            description: self.description.to_string(),
            description_kind: pb::StringKind::Markdown as i32,
            required: self.presence == Presence::Required,
            optional: matches!(self.presence, Presence::Optional | Presence::OptionalComputed),
            computed: self.computed_by_provider(),
            sensitive: self.sensitive,
            deprecated: self.deprecated.is_some(),
            deprecation_message: self.deprecated.unwrap_or_default().to_string(),
            write_only: self.write_only,
        }
    }
}

/// A nested block inside a block (`ingress { … }`).
#[derive(Clone, Debug)]
pub struct NestedBlock {
    /// The block type name in HCL.
    pub name: &'static str,
    /// How it repeats.
    pub nesting: Nesting,
    /// Its contents.
    pub block: Block,
    /// Minimum number of blocks.
    pub min_items: i64,
    /// Maximum number of blocks (0 = no limit).
    pub max_items: i64,
    /// Plan rule: a change inside these blocks replaces the resource.
    pub requires_replace: bool,
    /// What an import learns of their values.
    pub after_import: AfterImport,
    /// A change inside these blocks is recorded in state alone (as `timeouts`).
    pub state_only: bool,
}

impl NestedBlock {
    /// Blocks named `name` of this content, optional: at most one for [`Nesting::Single`], any
    /// number otherwise.
    pub fn new(name: &'static str, nesting: Nesting, block: Block) -> NestedBlock {
        let max_items = if nesting == Nesting::Single { 1 } else { 0 };
        NestedBlock {
            name,
            nesting,
            block,
            min_items: 0,
            max_items,
            requires_replace: false,
            after_import: AfterImport::Read,
            state_only: false,
        }
    }
    setters! {
        /// A change inside these blocks replaces the resource.
        requires_replace: requires_replace = true;
        /// A change inside these blocks is recorded in state alone, with no request to the server.
        state_only: state_only = true;
        /// After an import, the resource compares the values read with the configuration's by
        /// meaning.
        import_compared_by_meaning: after_import = AfterImport::ComparedByMeaning;
    }
}

/// A block: attributes and nested blocks.
#[derive(Clone, Debug, Default)]
pub struct Block {
    /// Attributes, in documentation order.
    pub attributes: Vec<Attribute>,
    /// Nested blocks.
    pub blocks: Vec<NestedBlock>,
    /// Markdown description.
    pub description: &'static str,
}

impl Block {
    /// The cty object type of values that this block describes.
    pub fn object_type(&self) -> Type {
        object_type(&self.attributes, &self.blocks)
    }
    /// Looks up a direct attribute by name.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.name == name)
    }
    /// Runs the checks its attributes declare ([`Attribute::validated`]) on the known values of
    /// `config`, this block's value, reporting errors at `path`; inside single and list blocks too,
    /// not inside set blocks, whose elements have no path but their whole value.
    pub fn check_declared(&self, config: &Value, path: &AttrPath, diags: &mut Diagnostics) {
        for a in &self.attributes {
            if let (Some(check), Some(v)) = (a.check, config.get(a.name))
                && !v.is_null()
                && v.is_wholly_known()
                && let Err((summary, detail)) = check(v)
            {
                diags.error_at(path.then(a.name), summary, detail);
            }
        }
        for b in &self.blocks {
            match (b.nesting, config.get(b.name)) {
                (Nesting::Single, Some(v @ Value::Object(_))) => {
                    b.block.check_declared(v, &path.then(b.name), diags)
                }
                (Nesting::List, Some(v)) => {
                    for (i, e) in v.as_elements().unwrap_or_default().iter().enumerate() {
                        b.block.check_declared(e, &path.then(b.name).index(i), diags);
                    }
                }
                _ => {}
            }
        }
    }
    /// Whether `planned` differs from `prior` (values of this block) only in attributes and blocks
    /// declared state only.
    pub fn differs_in_state_only(&self, prior: &Value, planned: &Value) -> bool {
        let same = |name: &str| {
            let (a, b) = (prior.get(name), planned.get(name));
            a.unwrap_or(&Value::Null).same_as(b.unwrap_or(&Value::Null))
        };
        self.attributes.iter().all(|a| a.state_only || same(a.name))
            && self.blocks.iter().all(|b| b.state_only || same(b.name))
    }
    /// Looks up a direct nested block by name.
    pub fn block(&self, name: &str) -> Option<&NestedBlock> {
        self.blocks.iter().find(|b| b.name == name)
    }

    fn to_proto(&self, version: i64) -> pb::schema::Block {
        pb::schema::Block {
            version,
            attributes: self.attributes.iter().map(Attribute::to_proto).collect(),
            block_types: self
                .blocks
                .iter()
                .map(|b| (b, b.nesting == Nesting::Single))
                .map(|(b, single)| pb::schema::NestedBlock {
                    type_name: b.name.to_string(),
                    block: Some(b.block.to_proto(0)),
                    nesting: b.nesting as i32,
                    // Terraform requires min = max in single mode: 1/1 when required, else 0/0.
                    min_items: if single { b.min_items.min(1) } else { b.min_items },
                    max_items: if single { b.min_items.min(1) } else { b.max_items },
                })
                .collect(),
            description: self.description.to_string(),
            description_kind: pb::StringKind::Markdown as i32,
            deprecated: false,
            deprecation_message: String::new(),
        }
    }
}

fn object_type(attrs: &[Attribute], blocks: &[NestedBlock]) -> Type {
    let attrs = attrs.iter().map(|a| (a.name, a.ty.clone()));
    let blocks = blocks.iter().map(|b| (b.name, b.nesting.wrap(b.block.object_type())));
    Type::object(attrs.chain(blocks))
}

/// A versioned schema of a provider, resource or data source.
#[derive(Clone, Debug)]
pub struct Schema {
    /// Bumped when the state layout changes; state upgrades go from older versions to this one.
    pub version: i64,
    /// The top-level block.
    pub block: Block,
}

impl Schema {
    /// The tfplugin6 message.
    pub fn to_proto(&self) -> pb::Schema {
        pb::Schema { version: self.version, block: Some(self.block.to_proto(self.version)) }
    }
    /// The cty type of the objects this schema describes.
    pub fn object_type(&self) -> Type {
        self.block.object_type()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_attributes_have_nested_type_and_no_type() {
        let a = Attribute::nested(
            "rules",
            Nesting::Set,
            vec![Attribute::computed("port", Type::Number, "The port.")],
            Presence::Computed,
            "Rules.",
        );
        let p = a.to_proto();
        assert!(p.r#type.is_empty());
        assert_eq!(p.nested_type.unwrap().attributes.len(), 1);
        assert_eq!(a.ty, Type::set(Type::object([("port", Type::Number)])));
    }

    #[test]
    fn block_type_includes_nested_blocks() {
        let cidr = Attribute::required("cidr", Type::String, "CIDR.");
        let ingress = Block { attributes: vec![cidr], ..Default::default() };
        let b = Block {
            attributes: vec![Attribute::required("name", Type::String, "Name.")],
            blocks: vec![NestedBlock::new("ingress", Nesting::Set, ingress)],
            description: "",
        };
        let ingress_ty = Type::set(Type::object([("cidr", Type::String)]));
        let expected = Type::object([("name", Type::String), ("ingress", ingress_ty)]);
        assert_eq!(b.object_type(), expected);
        let p = b.to_proto(1);
        assert_eq!(p.block_types[0].nesting, pb::schema::nested_block::NestingMode::Set as i32);
        let attr = &p.attributes[0];
        assert!(attr.required && !attr.optional && !attr.computed);
        assert_eq!(attr.r#type, b"\"string\"");
    }

    #[test]
    fn nesting_numbers_are_tfplugin6s() {
        use pb::schema::{nested_block, object};
        for (nesting, attribute, block) in [
            (Nesting::Single, object::NestingMode::Single, nested_block::NestingMode::Single),
            (Nesting::List, object::NestingMode::List, nested_block::NestingMode::List),
            (Nesting::Set, object::NestingMode::Set, nested_block::NestingMode::Set),
        ] {
            assert_eq!((nesting as i32, nesting as i32), (attribute as i32, block as i32));
        }
    }
}
