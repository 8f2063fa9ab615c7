//! Typed models of a schema's values: a struct per resource (or nested block) whose fields are
//! [`Field`]s, decoded from a configuration, plan or state [`Value`] once per RPC and encoded once.
//!
//! ```
//! tfplugin::model! {
//!     /// A server.
//!     pub struct Server {
//!         name: String,
//!         size: i64,
//!         tags: std::collections::BTreeMap<String, String>,
//!     }
//! }
//! let planned = tfplugin::value::Value::object([("name", tfplugin::value::Value::string("a"))]);
//! let mut server = Server::decode(&planned);
//! assert_eq!(server.name.known().map(String::as_str), Some("a"));
//! assert!(server.size.is_null());
//! server.size = tfplugin::model::Field::Known(2);
//! assert_eq!(tfplugin::attr!(Server, size), "size");
//! # let _ = server.encode();
//! ```
//!
//! Attribute names are the field names: the string-keyed access to a value lives in the code the
//! [`model!`](crate::model!) macro writes, and [`attr!`](crate::attr!) names one attribute with a
//! compile-time check that the field exists.

use std::collections::BTreeMap;

use super::diag::Diagnostics;
use super::value::{AttrPath, Number, Type, Value};

/// One attribute's value as Terraform has it: null, not yet known, or known.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Field<T> {
    /// Null: unset in the configuration, or absent.
    #[default]
    Null,
    /// Known only after apply.
    Unknown,
    /// A known value.
    Known(T),
    /// A collection or object that holds unknown values: kept as it is, to be encoded unchanged.
    Partly(Value),
}

impl<T> Field<T> {
    /// The known value.
    pub fn known(&self) -> Option<&T> {
        if let Field::Known(v) = self { Some(v) } else { None }
    }

    /// The known value, owned.
    pub fn into_known(self) -> Option<T> {
        if let Field::Known(v) = self { Some(v) } else { None }
    }

    /// Whether the value is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Field::Null)
    }

    /// Whether the value is unknown, wholly or in part.
    pub fn is_unknown(&self) -> bool {
        matches!(self, Field::Unknown | Field::Partly(_))
    }

    /// `Known` for `Some`, `Null` for `None`.
    pub fn from_option(v: Option<T>) -> Field<T> {
        v.map_or(Field::Null, Field::Known)
    }

    /// Fills a null or unknown value from `other`; a known value stays.
    #[must_use]
    pub fn or(self, other: Field<T>) -> Field<T> {
        if matches!(self, Field::Known(_)) { self } else { other }
    }
}

impl<T: Attr> Field<T> {
    /// Reads an attribute: absent and null are null, an extension is unknown, a value that holds
    /// unknowns `T` cannot hold is kept as it is, and a value of another kind than `T` (which
    /// Terraform's own type checking rules out) is null.
    pub fn decode(v: Option<&Value>) -> Field<T> {
        match v {
            None | Some(Value::Null) => Field::Null,
            Some(Value::Unknown) => Field::Unknown,
            Some(v) => match T::decode(v) {
                Some(t) => Field::Known(t),
                None if !v.is_wholly_known() => Field::Partly(v.clone()),
                None => Field::Null,
            },
        }
    }

    /// The attribute's value.
    pub fn encode(&self) -> Value {
        match self {
            Field::Null => Value::Null,
            Field::Unknown => Value::Unknown,
            Field::Known(v) => v.encode(),
            Field::Partly(v) => v.clone(),
        }
    }
}

impl Field<String> {
    /// The known text.
    pub fn as_deref(&self) -> Option<&str> {
        self.known().map(String::as_str)
    }
}

/// A resource's model: the struct [`model!`](crate::model!) declares for its attributes, in which
/// a typed [`Resource`](crate::framework::Resource) takes and returns values.
pub trait Model: Clone + Default + PartialEq + Send + Sync + 'static {
    /// Reads a configuration, plan or state value (null reads as every field null).
    fn decode(value: &Value) -> Self;
    /// The value, as an object with every attribute.
    fn encode(&self) -> Value;
}

/// A Rust type that holds one kind of known attribute value.
pub trait Attr: Sized {
    /// What values it holds, for an error about one it cannot: "a whole number", "text", …
    const HOLDS: &'static str;
    /// The Terraform type of the values it holds: a declared attribute has the type of its field,
    /// so that the two cannot disagree.
    fn schema_type() -> Type;
    /// The value, or `None` when it is of another kind.
    fn decode(v: &Value) -> Option<Self>;
    /// The value.
    fn encode(&self) -> Value;
    /// Reports a known value at `path` that this type cannot hold (a fraction for a whole number, a
    /// number beyond its range) as an error on that attribute, so that no value is silently read as
    /// null. Null, unknown and partly unknown values are left to later checks.
    fn check(v: &Value, path: &AttrPath, diags: &mut Diagnostics) {
        if !v.is_null() && v.is_wholly_known() && Self::decode(v).is_none() {
            let shown = v.as_number().map_or_else(|| "this value".to_string(), |n| n.to_string());
            diags.error_at(
                path.clone(),
                "Invalid Value",
                format!("{shown} is not {}.", Self::HOLDS),
            );
        }
    }
}

/// `impl Attr` for a scalar type: what it holds, its Terraform type, and its decoding and encoding.
macro_rules! scalar_attr {
    ($($ty:ty: $holds:literal, $schema:ident, |$v:ident| $decode:expr, |$s:ident| $encode:expr;)*) => {
        $(impl Attr for $ty {
            const HOLDS: &'static str = $holds;
            fn schema_type() -> Type {
                Type::$schema
            }
            fn decode($v: &Value) -> Option<Self> {
                $decode
            }
            fn encode(&self) -> Value {
                let $s = self;
                $encode
            }
        })*
    };
}

// `Number` keeps a number as Terraform wrote it (no float round trip); `Value` keeps nested values
// whose own elements may be unknown (a set of blocks while planning), or blocks passed through.
scalar_attr! {
    String: "text", String, |v| v.as_str().map(str::to_string), |s| Value::String(s.clone());
    bool: "true or false", Bool, |v| v.as_bool(), |s| Value::Bool(*s);
    i64: "a whole number from -9223372036854775808 to 9223372036854775807", Number,
        |v| v.as_number().and_then(Number::as_i64), |s| Value::int(*s);
    Number: "a number", Number, |v| v.as_number().cloned(), |s| Value::Number(s.clone());
    f64: "a number", Number, |v| v.as_number().and_then(Number::as_f64),
        |s| Number::from_f64(*s).map_or(Value::Null, Value::Number);
    Value: "a value", Dynamic, |v| Some(v.clone()), |s| s.clone();
}

/// A list (a set decodes too), encoded as a list; one with unknown elements is [`Field::Partly`].
impl<T: Attr> Attr for Vec<T> {
    const HOLDS: &'static str = "a list";
    fn check(v: &Value, path: &AttrPath, diags: &mut Diagnostics) {
        for (i, e) in v.as_elements().unwrap_or_default().iter().enumerate() {
            T::check(e, &path.index(i), diags);
        }
    }
    fn schema_type() -> Type {
        Type::list(T::schema_type())
    }
    fn decode(v: &Value) -> Option<Self> {
        v.as_elements()?.iter().map(T::decode).collect()
    }
    fn encode(&self) -> Value {
        Value::List(self.iter().map(Attr::encode).collect())
    }
}

impl<T: Attr> Attr for BTreeMap<String, T> {
    const HOLDS: &'static str = "a map";
    fn check(v: &Value, path: &AttrPath, diags: &mut Diagnostics) {
        for (k, e) in v.as_map().into_iter().flatten() {
            T::check(e, &path.key(k), diags);
        }
    }
    fn schema_type() -> Type {
        Type::map(T::schema_type())
    }
    fn decode(v: &Value) -> Option<Self> {
        v.as_map()?.iter().map(|(k, v)| Some((k.clone(), T::decode(v)?))).collect()
    }
    fn encode(&self) -> Value {
        Value::Map(self.iter().map(|(k, v)| (k.clone(), v.encode())).collect())
    }
}

/// Declares a model struct: each field is a [`Field`] of the given type, named as its attribute.
/// The struct gets `decode(&Value)` and `encode() -> Value` (an object holding every field), and
/// implements [`Attr`] so that a nested block can be a field of another model.
///
/// A field may also declare its place in the schema, beside its documentation, which becomes the
/// attribute's description (one paragraph): `#[attribute(PRESENCE, FLAG…)]` makes an
/// [`Attribute`](crate::schema::Attribute) of the field's type with the constructor `PRESENCE`
/// (`required`, `optional`, `computed`, `optional_computed`) and the builder methods `FLAG…`
/// (`requires_replace`, `state_only`, `sensitive`, `import_from_configuration`,
/// `validated(FUNCTION)`, …);
/// `#[block(NESTING, FLAG…)]` makes a [`NestedBlock`](crate::schema::NestedBlock) of a field
/// whose type is itself a model. `with = FUNCTION` instead of the presence or nesting builds what
/// the field's type cannot say (nested attributes, blocks held as raw values) from the name and
/// description. `schema_block(description)` is the block of the declared attributes and blocks.
///
/// ```
/// tfplugin::model! {
///     /// A server.
///     pub struct Server {
///         /// The server's name.
///         #[attribute(required, requires_replace)]
///         name: String,
///         /// How many CPUs it has.
///         #[attribute(optional_computed)]
///         size: i64,
///     }
/// }
/// let block = Server::schema_block("A server.");
/// assert_eq!(block.attribute("size").unwrap().ty, tfplugin::value::Type::Number);
/// assert_eq!(block.attribute("name").unwrap().description, "The server's name.");
/// assert!(block.attribute("name").unwrap().requires_replace);
/// ```
#[macro_export]
macro_rules! model {
    (@attribute $field:ident, $ty:ty, $description:expr, with = $make:expr $(, $flag:ident $(($($arg:expr),*))?)*) => {
        ($make)(stringify!($field), $description)$(.$flag($($($arg),*)?))*
    };
    (@attribute $field:ident, $ty:ty, $description:expr, $presence:ident $(, $flag:ident $(($($arg:expr),*))?)*) => {
        $crate::schema::Attribute::$presence(
            stringify!($field),
            <$ty as $crate::model::Attr>::schema_type(),
            $description,
        )$(.$flag($($($arg),*)?))*
    };
    (@block $field:ident, $ty:ty, $description:expr, with = $make:expr $(, $flag:ident)*) => {
        ($make)(stringify!($field), $description)$(.$flag())*
    };
    (@block $field:ident, $ty:ty, $description:expr, $nesting:ident $(, $flag:ident)*) => {
        $crate::schema::NestedBlock::new(
            stringify!($field),
            $crate::schema::Nesting::$nesting,
            <$ty>::schema_block($description),
        )$(.$flag())*
    };
    ($(#[$meta:meta])* $vis:vis struct $name:ident {
        $(
            $(#[doc = $doc:literal])*
            $(#[attribute($($attribute:tt)*)])?
            $(#[block($($block:tt)*)])?
            $field:ident : $ty:ty
        ),* $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Clone, Debug, Default, PartialEq)]
        $vis struct $name {
            $(
                $(#[doc = $doc])*
                pub $field: $crate::model::Field<$ty>,
            )*
        }

        // A model need not use every method the macro writes for it.
        #[allow(dead_code)]
        impl $name {
            /// Every attribute name, in declaration order.
            pub const ATTRIBUTES: &'static [&'static str] = &[$(stringify!($field)),*];

            /// Reads a configuration, plan or state value (null reads as every field null).
            pub fn decode(value: &$crate::value::Value) -> Self {
                Self { $($field: $crate::model::Field::decode(value.get(stringify!($field))),)* }
            }

            /// The value, as an object with every attribute.
            pub fn encode(&self) -> $crate::value::Value {
                $crate::value::Value::object([$((stringify!($field), self.$field.encode())),*])
            }

            /// Reports each known value that its field's type cannot hold as an error on its
            /// attribute (see [`Attr::check`]); a validation calls it first.
            pub fn check_values(value: &$crate::value::Value, diags: &mut $crate::diag::Diagnostics) {
                <Self as $crate::model::Attr>::check(value, &$crate::value::AttrPath::root(), diags);
            }

            /// Every value not (wholly) known taken from `other`: a planned value applied without
            /// a remote call keeps what the prior state knew.
            #[must_use]
            pub fn known_from(mut self, other: &Self) -> Self {
                $(if self.$field.is_unknown() {
                    self.$field = other.$field.clone();
                })*
                self
            }

            /// The schema block of the attributes and nested blocks the fields declare.
            pub fn schema_block(description: &'static str) -> $crate::schema::Block {
                $crate::schema::Block {
                    attributes: vec![$($($crate::model!(
                        @attribute $field, $ty, Self::description_of(stringify!($field)), $($attribute)*
                    ),)?)*],
                    blocks: vec![$($($crate::model!(
                        @block $field, $ty, Self::description_of(stringify!($field)), $($block)*
                    ),)?)*],
                    description,
                }
            }

            /// A field's documentation, which is its attribute's description.
            fn description_of(field: &str) -> &'static str {
                match field {
                    $(stringify!($field) => concat!("" $(, $doc)*).trim_start(),)*
                    _ => "",
                }
            }
        }

        impl $crate::model::Model for $name {
            fn decode(value: &$crate::value::Value) -> Self {
                $name::decode(value)
            }
            fn encode(&self) -> $crate::value::Value {
                $name::encode(self)
            }
        }

        impl $crate::model::Attr for $name {
            const HOLDS: &'static str = "a block";
            fn schema_type() -> $crate::value::Type {
                Self::schema_block("").object_type()
            }
            fn check(value: &$crate::value::Value, path: &$crate::value::AttrPath, diags: &mut $crate::diag::Diagnostics) {
                $(if let Some(v) = value.get(stringify!($field)) {
                    <$ty as $crate::model::Attr>::check(v, &path.then(stringify!($field)), diags);
                })*
            }
            fn decode(value: &$crate::value::Value) -> Option<Self> {
                matches!(value, $crate::value::Value::Object(_)).then(|| $name::decode(value))
            }
            fn encode(&self) -> $crate::value::Value {
                $name::encode(self)
            }
        }
    };
}

/// A model field's attribute name, checked at compile time: `attr!(ClusterModel, n_workers)`.
#[macro_export]
macro_rules! attr {
    ($model:ty, $field:ident) => {{
        fn _exists(m: &$model) -> &dyn ::std::any::Any {
            &m.$field
        }
        stringify!($field)
    }};
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::model! {
        struct Inner { cidr: String, ports: Vec<i64> }
    }

    crate::model! {
        struct Outer { name: String, count: i64, ratio: f64, on: bool, tags: BTreeMap<String, String>, inner: Inner, raw: Value }
    }

    #[test]
    fn decode_then_encode_gives_back_the_value() {
        let value = Value::object([
            ("name", Value::string("a")),
            ("count", Value::int(3)),
            ("ratio", Value::Number(Number::from_f64(0.5).unwrap())),
            ("on", Value::Unknown),
            ("tags", Value::Map([("k".to_string(), Value::string("v"))].into())),
            (
                "inner",
                Value::object([
                    ("cidr", Value::string("10.0.0.0/8")),
                    ("ports", Value::List(vec![Value::int(22)])),
                ]),
            ),
            ("raw", Value::Set(vec![Value::Unknown])),
        ]);
        let m = Outer::decode(&value);
        assert_eq!(m.count, Field::Known(3));
        assert!(m.on.is_unknown());
        assert_eq!(m.inner.known().and_then(|i| i.ports.known()).cloned(), Some(vec![22]));
        assert_eq!(m.encode(), value);
        assert_eq!(Outer::ATTRIBUTES.len(), 7);
        assert_eq!(crate::attr!(Outer, ratio), "ratio");
    }

    #[test]
    fn null_and_absent_read_as_null_and_unknown_elements_are_not_a_known_list() {
        let m = Outer::decode(&Value::Null);
        assert_eq!(m, Outer::default());
        let v = Value::object([
            ("cidr", Value::Null),
            ("ports", Value::List(vec![Value::int(1), Value::Unknown])),
        ]);
        let inner = Inner::decode(&v);
        assert!(inner.ports.is_unknown() && inner.ports.known().is_none());
        assert_eq!(inner.encode(), v, "kept as it was");
        assert_eq!(Field::from_option(None::<i64>).or(Field::Known(4)), Field::Known(4));
        let planned = Inner { cidr: Field::Unknown, ports: Field::Known(vec![1]) };
        let prior = Inner { cidr: Field::Known("10.0.0.0/8".into()), ports: Field::Known(vec![2]) };
        assert_eq!(
            planned.known_from(&prior),
            Inner { cidr: Field::Known("10.0.0.0/8".into()), ports: Field::Known(vec![1]) }
        );
    }

    #[test]
    fn values_a_field_cannot_hold_are_attribute_errors() {
        crate::model! {
            struct Inner { port: i64 }
        }
        crate::model! {
            struct Outer { port: i64, ports: Vec<i64>, inner: Inner, ratio: Number, name: String }
        }
        let num = |t: &str| Value::Number(Number::parse(t).unwrap());
        let config = Value::object([
            ("port", num("8786.5")),
            ("ports", Value::List(vec![num("1"), num("1e20")])),
            ("inner", Value::object([("port", num("-3.25"))])),
            ("ratio", num("0.5")),
            ("name", Value::Unknown),
        ]);
        let mut diags = Diagnostics::new();
        Outer::check_values(&config, &mut diags);
        let paths: Vec<String> = diags.0.iter().map(|d| format!("{:?}", d.path)).collect();
        assert_eq!(diags.0.len(), 3, "{paths:?}");
        assert!(
            diags
                .0
                .iter()
                .all(|d| d.summary == "Invalid Value" && d.detail.contains("whole number")),
            "{:?}",
            diags.0
        );
        let mut quiet = Diagnostics::new();
        let valid = Value::object([("port", num("443")), ("ports", Value::Unknown)]);
        Outer::check_values(&valid, &mut quiet);
        assert!(quiet.0.is_empty());
    }
}
