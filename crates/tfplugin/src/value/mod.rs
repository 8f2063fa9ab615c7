//! Terraform values (cty) and their wire encodings.
//!
//! Terraform hands providers values as msgpack (and, for raw state, JSON) without type tags: the
//! schema says what each value is. This module holds the type model ([`Type`]), the value model
//! ([`Value`], with null and unknown allowed at any depth), and the codecs in both directions.
//! Decoding errors carry the [`AttrPath`] of the offending value so diagnostics can point at it.

mod json;
mod msgpack;
mod path;

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value as Json;

pub use json::{from_json, to_json};
pub use msgpack::{from_msgpack, infer_type, to_msgpack};
pub(crate) use path::fail;
pub use path::{AttrPath, DecodeError, PathStep};

/// A cty type, as schemas describe it (JSON type constraints such as `["set","number"]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Type {
    /// `string`
    String,
    /// `number`: arbitrary precision.
    Number,
    /// `bool`
    Bool,
    /// `dynamic`: the value carries its own type on the wire.
    Dynamic,
    /// `["list", T]`
    List(Box<Type>),
    /// `["set", T]`
    Set(Box<Type>),
    /// `["map", T]`
    Map(Box<Type>),
    /// `["object", {name: T}]`
    Object(BTreeMap<String, Type>),
    /// `["tuple", [T…]]`
    Tuple(Vec<Type>),
}

impl Type {
    /// `["list", elem]`
    pub fn list(elem: Type) -> Type {
        Type::List(Box::new(elem))
    }
    /// `["set", elem]`
    pub fn set(elem: Type) -> Type {
        Type::Set(Box::new(elem))
    }
    /// `["map", elem]`
    pub fn map(elem: Type) -> Type {
        Type::Map(Box::new(elem))
    }
    /// An object type from `(name, type)` pairs.
    pub fn object<I: IntoIterator<Item = (S, Type)>, S: Into<String>>(attrs: I) -> Type {
        Type::Object(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// The JSON type constraint Terraform expects in a schema (`"string"`, `["list","number"]`, …).
    pub fn to_json(&self) -> Json {
        match self {
            Type::String => Json::from("string"),
            Type::Number => Json::from("number"),
            Type::Bool => Json::from("bool"),
            Type::Dynamic => Json::from("dynamic"),
            Type::List(e) => Json::Array(vec!["list".into(), e.to_json()]),
            Type::Set(e) => Json::Array(vec!["set".into(), e.to_json()]),
            Type::Map(e) => Json::Array(vec!["map".into(), e.to_json()]),
            Type::Object(attrs) => Json::Array(vec![
                "object".into(),
                Json::Object(attrs.iter().map(|(k, t)| (k.clone(), t.to_json())).collect()),
            ]),
            Type::Tuple(elems) => Json::Array(vec![
                "tuple".into(),
                Json::Array(elems.iter().map(Type::to_json).collect()),
            ]),
        }
    }

    /// Parses a JSON type constraint, as found inside dynamic values.
    pub fn from_json(json: &Json) -> Result<Type, String> {
        match json {
            Json::String(s) => match s.as_str() {
                "string" => Ok(Type::String),
                "number" => Ok(Type::Number),
                "bool" => Ok(Type::Bool),
                "dynamic" => Ok(Type::Dynamic),
                other => Err(format!("unknown primitive type {other:?}")),
            },
            Json::Array(parts) if parts.len() == 2 => {
                let kind = parts[0].as_str().ok_or("type kind must be a string")?;
                match kind {
                    "list" => Ok(Type::list(Type::from_json(&parts[1])?)),
                    "set" => Ok(Type::set(Type::from_json(&parts[1])?)),
                    "map" => Ok(Type::map(Type::from_json(&parts[1])?)),
                    "object" => {
                        let attrs =
                            parts[1].as_object().ok_or("object type needs an attribute map")?;
                        let mut out = BTreeMap::new();
                        for (k, v) in attrs {
                            out.insert(k.clone(), Type::from_json(v)?);
                        }
                        Ok(Type::Object(out))
                    }
                    "tuple" => {
                        let elems =
                            parts[1].as_array().ok_or("tuple type needs an element list")?;
                        elems.iter().map(Type::from_json).collect::<Result<_, _>>().map(Type::Tuple)
                    }
                    other => Err(format!("unknown collection type {other:?}")),
                }
            }
            // Objects with optional attributes list them in a third element, not needed to decode.
            Json::Array(parts) if parts.len() == 3 && parts[0] == "object" => {
                Type::from_json(&Json::Array(parts[..2].to_vec()))
            }
            other => Err(format!("malformed type constraint {other}")),
        }
    }
}

/// A number of arbitrary precision, kept in its canonical decimal text.
///
/// Terraform numbers are big floats; this provider only needs to carry them faithfully and read
/// small integers out of them, so the decimal string is the representation, with no arithmetic.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Number(String);

impl Number {
    /// Parses decimal text (`42`, `-1.5`, `1e400`), normalising it so equal numbers compare equal.
    pub fn parse(text: &str) -> Option<Number> {
        let text = text.trim();
        if let Ok(i) = text.parse::<i64>() {
            return Some(Number(i.to_string()));
        }
        // The syntax of Rust's floats (digits with an optional fraction and exponent, signed) is
        // that of a JSON-style number, but for `inf` and `nan`, which no letter but `e` lets in.
        let number = |b: u8| b.is_ascii_digit() || b"+-.eE".contains(&b);
        let parsed = text.parse::<f64>().ok().filter(|_| text.bytes().all(number))?;
        // Up to 15 significant digits an f64 holds the decimal exactly, and its shortest form is
        // canonical; beyond that the text itself is kept so no precision is lost.
        let mantissa = text.split(['e', 'E']).next().unwrap_or_default();
        let significant = mantissa.chars().filter(char::is_ascii_digit).collect::<String>();
        let significant = significant.trim_start_matches('0').trim_end_matches('0');
        match parsed {
            f if f.is_finite() && significant.len() <= 15 => Number::from_f64(f),
            _ => Some(Number(text.trim_start_matches('+').to_string())),
        }
    }

    /// A number from a machine integer.
    pub fn from_i64(i: i64) -> Number {
        Number(i.to_string())
    }

    /// A number from a finite float (`None` for NaN and infinities, which Terraform cannot hold).
    pub fn from_f64(f: f64) -> Option<Number> {
        if !f.is_finite() {
            return None;
        }
        if f.fract() == 0.0 && f.abs() < 9.0e15 {
            return Some(Number((f as i64).to_string()));
        }
        Some(Number(format!("{f}")))
    }

    /// The value as an `i64`, when it is an integer in range.
    pub fn as_i64(&self) -> Option<i64> {
        self.0.parse().ok()
    }

    /// The value as an `f64` (rounded when it has more precision).
    pub fn as_f64(&self) -> Option<f64> {
        self.0.parse().ok()
    }

    /// The `f64` whose exact value is this number, if there is one (`0.5`, not `0.3`).
    ///
    /// Terraform sends a number as a float only when it is exactly a float, and as its decimal text
    /// otherwise: a `0.3` from the configuration arrives as the text `"0.3"`. Answering it as the
    /// float nearest 0.3 would hand back a different number, which Terraform would see as changed.
    pub fn exact_f64(&self) -> Option<f64> {
        let f = self.as_f64().filter(|f| Number::from_f64(*f).as_ref() == Some(self))?;
        // A float is m·2^e with m odd; for e < 0 its exact decimal has exactly -e fractional
        // digits, and the canonical text is that exact decimal only if it has as many.
        let bits = f.to_bits();
        let biased = ((bits >> 52) & 0x7ff) as i32;
        let fraction = bits & ((1 << 52) - 1);
        let (m, e) =
            if biased == 0 { (fraction, -1074) } else { (fraction | (1 << 52), biased - 1075) };
        let e = e + m.trailing_zeros() as i32;
        let digits = self.0.split_once('.').map_or(0, |(_, frac)| frac.len() as i32);
        (m == 0 || e >= 0 || digits == -e).then_some(f)
    }

    /// The canonical decimal text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A Terraform value. Any value, at any depth, may be null or unknown ("known after apply").
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// Not yet known: it will be decided during apply.
    Unknown,
    /// Absent.
    Null,
    /// A string.
    String(String),
    /// A number.
    Number(Number),
    /// A boolean.
    Bool(bool),
    /// An ordered list.
    List(Vec<Value>),
    /// A set: element order carries no meaning, duplicates are removed when encoding.
    Set(Vec<Value>),
    /// A map with string keys.
    Map(BTreeMap<String, Value>),
    /// An object: every attribute of its type is present.
    Object(BTreeMap<String, Value>),
    /// A tuple.
    Tuple(Vec<Value>),
    /// A value of type `dynamic` carrying its concrete type.
    Dynamic(Type, Box<Value>),
}

impl Value {
    /// A known string.
    pub fn string(s: impl Into<String>) -> Value {
        Value::String(s.into())
    }
    /// A known integer number.
    pub fn int(i: i64) -> Value {
        Value::Number(Number::from_i64(i))
    }
    /// An object from `(name, value)` pairs.
    pub fn object<I: IntoIterator<Item = (S, Value)>, S: Into<String>>(attrs: I) -> Value {
        Value::Object(attrs.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }
    /// Whether this is null.
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }
    /// Whether this value itself is unknown (not its contents).
    pub fn is_unknown(&self) -> bool {
        matches!(self, Value::Unknown)
    }
    /// Whether this value is known all the way down (no unknown at any depth).
    pub fn is_wholly_known(&self) -> bool {
        match self {
            Value::Unknown => false,
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => {
                v.iter().all(Value::is_wholly_known)
            }
            Value::Map(m) | Value::Object(m) => m.values().all(Value::is_wholly_known),
            Value::Dynamic(_, v) => v.is_wholly_known(),
            _ => true,
        }
    }
    /// An attribute of an object (`None` if this is not an object or the attribute is absent).
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Object(m) | Value::Map(m) => m.get(name),
            Value::Dynamic(_, v) => v.get(name),
            _ => None,
        }
    }
    /// A mutable attribute of an object.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Value> {
        if let Value::Object(m) | Value::Map(m) = self { m.get_mut(name) } else { None }
    }
    /// Sets an attribute of an object (no effect on other values).
    pub(crate) fn set_attr(&mut self, name: &str, value: Value) {
        if let Value::Object(m) = self {
            m.insert(name.to_string(), value);
        }
    }
    /// The string, if this is a known string.
    pub fn as_str(&self) -> Option<&str> {
        if let Value::String(s) = self { Some(s) } else { None }
    }
    /// The boolean, if this is a known bool.
    pub fn as_bool(&self) -> Option<bool> {
        if let Value::Bool(b) = self { Some(*b) } else { None }
    }
    /// The number, if this is a known number.
    pub fn as_number(&self) -> Option<&Number> {
        if let Value::Number(n) = self { Some(n) } else { None }
    }
    /// The elements, if this is a known list, set or tuple.
    pub fn as_elements(&self) -> Option<&[Value]> {
        if let Value::List(v) | Value::Set(v) | Value::Tuple(v) = self { Some(v) } else { None }
    }
    /// The entries, if this is a known map or object.
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        if let Value::Map(m) | Value::Object(m) = self { Some(m) } else { None }
    }

    /// Semantic equality: sets compare without regard to order or duplicates.
    pub fn same_as(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Set(a), Value::Set(b)) => {
                a.iter().all(|x| b.iter().any(|y| x.same_as(y)))
                    && b.iter().all(|y| a.iter().any(|x| x.same_as(y)))
            }
            (Value::List(a), Value::List(b)) | (Value::Tuple(a), Value::Tuple(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.same_as(y))
            }
            (Value::Map(a), Value::Map(b)) | (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len() && a.iter().all(|(k, x)| b.get(k).is_some_and(|y| x.same_as(y)))
            }
            (Value::Dynamic(ta, a), Value::Dynamic(tb, b)) => ta == tb && a.same_as(b),
            _ => self == other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn num(text: &str) -> Value {
        Value::Number(Number::parse(text).unwrap())
    }

    fn ingress_type() -> Type {
        Type::object([("cidr", Type::String), ("ports", Type::set(Type::Number))])
    }

    /// A number goes as a float exactly when its decimal text is the float's exact value: checked
    /// against the float's full decimal expansion, written out digit by digit.
    #[test]
    fn a_number_is_a_float_only_when_the_float_is_exactly_it() {
        let exact_expansion = |f: f64| {
            let text = format!("{f:.1100}");
            text.trim_end_matches('0').trim_end_matches('.').to_string()
        };
        let mut values = vec![0.5, 0.3, 0.1, -0.75, 0.125, 1e-7, 123.456, 2.5e-8, 0.015625, 5e-324];
        values.push(2.2250738585072014e-308);
        values.extend((1..=60).map(|k| 2f64.powi(-k)));
        values.extend((1..=60).map(|k| 3.0 * 2f64.powi(-k)));
        values.extend((1..=40).map(|k| 1.0 / f64::from(k)));
        for f in values {
            let n = Number::from_f64(f).unwrap();
            let exact = exact_expansion(f) == n.as_str();
            assert_eq!(n.exact_f64(), exact.then_some(f), "{f:e} as {n}");
            let bytes = to_msgpack(&Value::Number(n.clone()), &Type::Number).unwrap();
            assert_eq!(
                from_msgpack(&bytes, &Type::Number).unwrap(),
                Value::Number(n.clone()),
                "{n} round trip"
            );
            if n.as_i64().is_none() {
                assert_eq!(bytes[0] == 0xcb, exact, "{n} goes as a float only when exact");
            }
        }
    }

    /// Named fixtures, each checked in both directions.
    #[test]
    fn fixtures_round_trip() {
        let cases: Vec<(&str, Type, Value, &str)> = vec![
            ("null string", Type::String, Value::Null, "c0"),
            ("unknown", Type::String, Value::Unknown, "d4 00 00"),
            ("empty string", Type::String, Value::string(""), "a0"),
            ("short string", Type::String, Value::string("aws"), "a3 617773"),
            ("true", Type::Bool, Value::Bool(true), "c3"),
            ("small int", Type::Number, Value::int(8786), "cd 2252"),
            ("negative int", Type::Number, Value::int(-1), "ff"),
            ("fixint", Type::Number, Value::int(22), "16"),
            ("exact float", Type::Number, num("0.5"), "cb 3fe0000000000000"),
            ("exact negative float", Type::Number, num("-2.375"), "cb c003000000000000"),
            ("decimal that no float is", Type::Number, num("0.3"), "a3 302e33"),
            (
                "big number as string",
                Type::Number,
                num("123456789012345678901234567890"),
                "be 313233343536373839303132333435363738393031323334353637383930",
            ),
            (
                "list of strings",
                Type::list(Type::String),
                Value::List(vec![Value::string("a"), Value::Unknown]),
                "92 a161 d40000",
            ),
            (
                "set of numbers",
                Type::set(Type::Number),
                Value::Set(vec![Value::int(8786), Value::int(8787)]),
                "92 cd2252 cd2253",
            ),
            (
                "object with every attribute",
                ingress_type(),
                Value::object([("cidr", Value::string("10.1.0.0/16")), ("ports", Value::Null)]),
                "82 a463696472 ab31302e312e302e302f3136 a5706f727473 c0",
            ),
            (
                "map",
                Type::map(Type::String),
                Value::Map([("team".to_string(), Value::string("etl"))].into()),
                "81 a47465616d a365746c",
            ),
            (
                "dynamic string",
                Type::Dynamic,
                Value::Dynamic(Type::String, Box::new(Value::string("x"))),
                "92 a8 22737472696e6722 a178",
            ),
        ];
        for (name, ty, value, bytes) in cases {
            let bytes = hex(bytes);
            assert_eq!(to_msgpack(&value, &ty).unwrap(), bytes, "encode {name}");
            assert_eq!(from_msgpack(&bytes, &ty).unwrap(), value, "decode {name}");
        }
    }

    #[test]
    fn refined_unknown_extension_decodes_as_unknown() {
        // Terraform ≥ 1.6: ext type 12 with a refinement payload (here: "not null").
        let bytes = hex("c7 03 0c 81 01 c2");
        assert_eq!(from_msgpack(&bytes, &Type::String).unwrap(), Value::Unknown);
        let nested = hex("92 a161 c7030c8101c2");
        assert_eq!(
            from_msgpack(&nested, &Type::list(Type::String)).unwrap(),
            Value::List(vec![Value::string("a"), Value::Unknown])
        );
    }

    #[test]
    fn missing_object_attributes_decode_as_null_and_encode_present() {
        let ty = ingress_type();
        let v = from_msgpack(&hex("81 a463696472 a0"), &ty).unwrap();
        assert_eq!(v.get("ports"), Some(&Value::Null));
        let encoded = to_msgpack(&Value::object([("cidr", Value::string(""))]), &ty).unwrap();
        assert_eq!(encoded[0], 0x82, "both attributes written");
    }

    #[test]
    fn decode_errors_carry_the_path() {
        let ty = Type::object([("ingress", Type::set(ingress_type()))]);
        // ingress[0].cidr is a number instead of a string
        let bytes = hex("81 a7696e6772657373 91 82 a463696472 01 a5706f727473 c0");
        let e = from_msgpack(&bytes, &ty).unwrap_err();
        assert_eq!(e.path.to_string(), "ingress[0].cidr");
        assert!(e.message.contains("string"));
    }

    #[test]
    fn hostile_input_is_an_error_not_a_panic() {
        for bytes in
            [&b""[..], &[0xdd, 0xff, 0xff, 0xff, 0xff], &[0xc1], &[0xa5, b'a'], &[0x91, 0x91, 0x91]]
        {
            assert!(from_msgpack(bytes, &Type::list(Type::list(Type::String))).is_err());
        }
        let deep: Vec<u8> = std::iter::repeat_n(0x91u8, 200).chain([0xc0]).collect();
        let mut ty = Type::String;
        for _ in 0..200 {
            ty = Type::list(ty);
        }
        assert!(from_msgpack(&deep, &ty).is_err());
        assert!(from_msgpack(&hex("c0 c0"), &Type::String).is_err(), "trailing bytes");
    }

    #[test]
    fn sets_are_deduplicated_on_encode_and_compared_without_order() {
        let a = Value::Set(vec![Value::int(1), Value::int(2), Value::int(1)]);
        let b = Value::Set(vec![Value::int(2), Value::int(1)]);
        assert!(a.same_as(&b));
        assert_eq!(to_msgpack(&a, &Type::set(Type::Number)).unwrap(), hex("92 01 02"));
    }

    #[test]
    fn numbers_normalise() {
        assert_eq!(Number::parse("8786.0").unwrap(), Number::from_i64(8786));
        assert_eq!(Number::parse("1e3").unwrap(), Number::from_i64(1000));
        assert_eq!(Number::parse("0.30").unwrap().as_str(), "0.3");
        assert!(Number::parse("abc").is_none());
        assert!(Number::parse("1e").is_none());
        assert!(Number::parse("").is_none());
    }

    #[test]
    fn json_raw_state_decodes_with_absent_attributes_null() {
        let ty = Type::object([
            ("id", Type::String),
            ("ingress", Type::set(ingress_type())),
            ("n", Type::Number),
        ]);
        let json: Json = serde_json::json!({"id": "x", "ingress": [{"cidr": "10.0.0.0/8", "ports": [22]}], "n": 3});
        let v = from_json(&json, &ty).unwrap();
        assert_eq!(v.get("id"), Some(&Value::string("x")));
        let json2: Json = serde_json::json!({"id": "x"});
        assert_eq!(from_json(&json2, &ty).unwrap().get("ingress"), Some(&Value::Null));
        assert_eq!(from_json(&to_json(&v), &ty).unwrap(), v);
        let bad: Json = serde_json::json!({"ingress": [{"cidr": [1]}]});
        assert_eq!(from_json(&bad, &ty).unwrap_err().path.to_string(), "ingress[0].cidr");
    }

    #[test]
    fn type_constraints_round_trip_as_json() {
        let ty = Type::object([
            ("a", Type::list(Type::set(Type::map(Type::Bool)))),
            ("t", Type::Tuple(vec![Type::String, Type::Dynamic])),
        ]);
        assert_eq!(Type::from_json(&ty.to_json()).unwrap(), ty);
    }
}
