//! Terraform values (cty) and their wire encodings.
//!
//! Terraform hands providers values as msgpack (and, for raw state, JSON) without type tags: the schema
//! says what each value is. This module holds the type model ([`Type`]), the value model ([`Value`],
//! with null and unknown allowed at any depth), and the codecs in both directions. Decoding errors carry
//! the [`AttrPath`] of the offending value so diagnostics can point at it.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value as Json;

/// A cty type, as Terraform describes it in schemas (JSON type constraints such as `["set","number"]`).
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
            Type::Object(attrs) => {
                Json::Array(vec!["object".into(), Json::Object(attrs.iter().map(|(k, t)| (k.clone(), t.to_json())).collect())])
            }
            Type::Tuple(elems) => Json::Array(vec!["tuple".into(), Json::Array(elems.iter().map(Type::to_json).collect())]),
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
                        let attrs = parts[1].as_object().ok_or("object type needs an attribute map")?;
                        let mut out = BTreeMap::new();
                        for (k, v) in attrs {
                            out.insert(k.clone(), Type::from_json(v)?);
                        }
                        Ok(Type::Object(out))
                    }
                    "tuple" => {
                        let elems = parts[1].as_array().ok_or("tuple type needs an element list")?;
                        Ok(Type::Tuple(elems.iter().map(Type::from_json).collect::<Result<_, _>>()?))
                    }
                    other => Err(format!("unknown collection type {other:?}")),
                }
            }
            // Optional-attribute objects have a third element; the attribute list is not needed to decode.
            Json::Array(parts) if parts.len() == 3 && parts[0] == "object" => Type::from_json(&Json::Array(parts[..2].to_vec())),
            other => Err(format!("malformed type constraint {other}")),
        }
    }
}

/// A number of arbitrary precision, kept in its canonical decimal text.
///
/// Terraform numbers are big floats; this provider only needs to carry them faithfully and read small
/// integers out of them, so the decimal string is the representation and arithmetic is not offered.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Number(String);

impl Number {
    /// Parses decimal text (`42`, `-1.5`, `1e400`), normalising it so equal numbers compare equal.
    pub fn parse(text: &str) -> Option<Number> {
        let text = text.trim();
        if let Ok(i) = text.parse::<i64>() {
            return Some(Number(i.to_string()));
        }
        // Validate the syntax of a JSON-style number, then normalise through f64 where that is exact.
        let valid = {
            let b = text.as_bytes();
            let mut i = 0;
            if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
                i += 1;
            }
            let digits_start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            let mut any = i > digits_start;
            if i < b.len() && b[i] == b'.' {
                i += 1;
                let f = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                any |= i > f;
            }
            if any && i < b.len() && (b[i] == b'e' || b[i] == b'E') {
                i += 1;
                if i < b.len() && (b[i] == b'-' || b[i] == b'+') {
                    i += 1;
                }
                let e = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                any &= i > e;
            }
            any && i == b.len()
        };
        if !valid {
            return None;
        }
        // Up to 15 significant digits an f64 holds the decimal exactly, and its shortest form is canonical;
        // beyond that the text itself is kept so no precision is lost.
        let mantissa = text.split(['e', 'E']).next().unwrap_or_default();
        let significant = mantissa.chars().filter(char::is_ascii_digit).collect::<String>();
        let significant = significant.trim_start_matches('0').trim_end_matches('0');
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() && significant.len() <= 15 => Number::from_f64(f),
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
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => v.iter().all(Value::is_wholly_known),
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
        match self {
            Value::Object(m) | Value::Map(m) => m.get_mut(name),
            _ => None,
        }
    }
    /// Sets an attribute of an object (no effect on other values).
    pub fn set_attr(&mut self, name: &str, value: Value) {
        if let Value::Object(m) = self {
            m.insert(name.to_string(), value);
        }
    }
    /// The string, if this is a known string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
    /// The boolean, if this is a known bool.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }
    /// The number, if this is a known number.
    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Value::Number(n) => Some(n),
            _ => None,
        }
    }
    /// The elements, if this is a known list, set or tuple.
    pub fn as_elements(&self) -> Option<&[Value]> {
        match self {
            Value::List(v) | Value::Set(v) | Value::Tuple(v) => Some(v),
            _ => None,
        }
    }
    /// The entries, if this is a known map or object.
    pub fn as_map(&self) -> Option<&BTreeMap<String, Value>> {
        match self {
            Value::Map(m) | Value::Object(m) => Some(m),
            _ => None,
        }
    }

    /// Semantic equality: sets compare without regard to order or duplicates.
    pub fn same_as(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Set(a), Value::Set(b)) => {
                a.iter().all(|x| b.iter().any(|y| x.same_as(y))) && b.iter().all(|y| a.iter().any(|x| x.same_as(y)))
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

    /// A null value shaped like `ty`: objects get every attribute, all null. Used for "no value at all".
    pub fn null_object(ty: &Type) -> Value {
        match ty {
            Type::Object(attrs) => Value::Object(attrs.keys().map(|k| (k.clone(), Value::Null)).collect()),
            _ => Value::Null,
        }
    }
}

/// One step of an attribute path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathStep {
    /// `.name`
    Attr(String),
    /// `[3]` in a list, tuple or (by position) a set.
    Index(i64),
    /// `["key"]` in a map.
    Key(String),
}

/// A path from the root of a resource to one of its values, as Terraform's diagnostics carry it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttrPath(pub Vec<PathStep>);

impl AttrPath {
    /// The empty path: the whole object.
    pub fn root() -> AttrPath {
        AttrPath(Vec::new())
    }
    /// A path of one attribute.
    pub fn attr(name: &str) -> AttrPath {
        AttrPath(vec![PathStep::Attr(name.to_string())])
    }
    /// This path followed by an attribute.
    pub fn then(&self, name: &str) -> AttrPath {
        let mut p = self.clone();
        p.0.push(PathStep::Attr(name.to_string()));
        p
    }
    /// This path followed by an index.
    pub fn index(&self, i: usize) -> AttrPath {
        let mut p = self.clone();
        p.0.push(PathStep::Index(i as i64));
        p
    }
    /// This path followed by a map key.
    pub fn key(&self, k: &str) -> AttrPath {
        let mut p = self.clone();
        p.0.push(PathStep::Key(k.to_string()));
        p
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, step) in self.0.iter().enumerate() {
            match step {
                PathStep::Attr(n) if i == 0 => write!(f, "{n}")?,
                PathStep::Attr(n) => write!(f, ".{n}")?,
                PathStep::Index(i) => write!(f, "[{i}]")?,
                PathStep::Key(k) => write!(f, "[{k:?}]")?,
            }
        }
        Ok(())
    }
}

/// A value could not be decoded: what was wrong, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}", if path.0.is_empty() { String::new() } else { format!(" at {path}") })]
pub struct DecodeError {
    /// Where in the value the problem is.
    pub path: AttrPath,
    /// What is wrong.
    pub message: String,
}

fn err<T>(path: &AttrPath, message: impl Into<String>) -> Result<T, DecodeError> {
    Err(DecodeError { path: path.clone(), message: message.into() })
}

// ---------------------------------------------------------------------------------------------------------
// msgpack

/// Encodes a value of type `ty` as msgpack, the way Terraform expects it.
pub fn to_msgpack(value: &Value, ty: &Type) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(64);
    encode(&mut out, value, ty, &AttrPath::root())?;
    Ok(out)
}

/// The msgpack encoding of an unknown value: extension type 0 with a single zero byte.
const UNKNOWN: [u8; 3] = [0xd4, 0x00, 0x00];

fn encode(out: &mut Vec<u8>, value: &Value, ty: &Type, path: &AttrPath) -> Result<(), DecodeError> {
    use rmp::encode as e;
    let io = |r: Result<(), _>| -> Result<(), DecodeError> {
        r.map_err(|x: rmp::encode::ValueWriteError| DecodeError { path: AttrPath::root(), message: x.to_string() })
    };
    match (value, ty) {
        (Value::Unknown, _) => out.extend_from_slice(&UNKNOWN),
        (Value::Null, _) => e::write_nil(out).map_err(|_| DecodeError { path: path.clone(), message: "write".into() })?,
        (v, Type::Dynamic) => {
            let (inner_ty, inner) = match v {
                Value::Dynamic(t, v) => (t.clone(), v.as_ref()),
                other => (infer_type(other), other),
            };
            io(e::write_array_len(out, 2).map(|_| ()))?;
            let json = inner_ty.to_json().to_string();
            io(e::write_str(out, &json))?;
            encode(out, inner, &inner_ty, path)?;
        }
        (Value::String(s), Type::String) => io(e::write_str(out, s))?,
        (Value::Number(n), Type::Number) => {
            if let Some(i) = n.as_i64() {
                e::write_sint(out, i).map_err(|x| DecodeError { path: path.clone(), message: x.to_string() })?;
            } else if let Some(f) = n.as_f64().filter(|f| Number::from_f64(*f).as_ref() == Some(n)) {
                e::write_f64(out, f).map_err(|x| DecodeError { path: path.clone(), message: x.to_string() })?;
            } else {
                io(e::write_str(out, n.as_str()))?;
            }
        }
        (Value::Bool(b), Type::Bool) => e::write_bool(out, *b).map_err(|x| DecodeError { path: path.clone(), message: x.to_string() })?,
        (Value::List(items), Type::List(et)) => {
            io(e::write_array_len(out, items.len() as u32).map(|_| ()))?;
            for (i, item) in items.iter().enumerate() {
                encode(out, item, et, &path.index(i))?;
            }
        }
        (Value::Set(items), Type::Set(et)) => {
            // Elements are encoded once each; identical encodings are written once. (Terraform also
            // collapses equal elements when it reads a set, so this is about size, not correctness.)
            let mut seen = std::collections::HashSet::with_capacity(items.len());
            let mut encoded: Vec<Vec<u8>> = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let mut buf = Vec::new();
                encode(&mut buf, item, et, &path.index(i))?;
                if seen.insert(buf.clone()) {
                    encoded.push(buf);
                }
            }
            io(e::write_array_len(out, encoded.len() as u32).map(|_| ()))?;
            for buf in encoded {
                out.extend_from_slice(&buf);
            }
        }
        (Value::Tuple(items), Type::Tuple(types)) => {
            if items.len() != types.len() {
                return err(path, format!("tuple has {} elements, its type {}", items.len(), types.len()));
            }
            io(e::write_array_len(out, items.len() as u32).map(|_| ()))?;
            for (i, (item, t)) in items.iter().zip(types).enumerate() {
                encode(out, item, t, &path.index(i))?;
            }
        }
        (Value::Map(entries), Type::Map(et)) => {
            io(e::write_map_len(out, entries.len() as u32).map(|_| ()))?;
            for (k, v) in entries {
                io(e::write_str(out, k))?;
                encode(out, v, et, &path.key(k))?;
            }
        }
        (Value::Object(attrs), Type::Object(types)) => {
            // Every attribute of the type is written, null where the value lacks it: Terraform requires it.
            io(e::write_map_len(out, types.len() as u32).map(|_| ()))?;
            for (name, t) in types {
                io(e::write_str(out, name))?;
                encode(out, attrs.get(name).unwrap_or(&Value::Null), t, &path.then(name))?;
            }
            if let Some(extra) = attrs.keys().find(|k| !types.contains_key(*k)) {
                return err(path, format!("attribute {extra:?} is not in the schema"));
            }
        }
        (v, t) => return err(path, format!("a {} cannot be encoded as {}", kind_of(v), t.to_json())),
    }
    Ok(())
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Unknown => "unknown value",
        Value::Null => "null",
        Value::String(_) => "string",
        Value::Number(_) => "number",
        Value::Bool(_) => "bool",
        Value::List(_) => "list",
        Value::Set(_) => "set",
        Value::Map(_) => "map",
        Value::Object(_) => "object",
        Value::Tuple(_) => "tuple",
        Value::Dynamic(..) => "dynamic value",
    }
}

/// The natural type of a value that carries no type (used for values placed in `dynamic` attributes).
pub fn infer_type(v: &Value) -> Type {
    match v {
        Value::String(_) | Value::Null | Value::Unknown => Type::String,
        Value::Number(_) => Type::Number,
        Value::Bool(_) => Type::Bool,
        Value::List(items) => Type::list(items.first().map(infer_type).unwrap_or(Type::Dynamic)),
        Value::Set(items) => Type::set(items.first().map(infer_type).unwrap_or(Type::Dynamic)),
        Value::Tuple(items) => Type::Tuple(items.iter().map(infer_type).collect()),
        Value::Map(m) => Type::map(m.values().next().map(infer_type).unwrap_or(Type::Dynamic)),
        Value::Object(m) => Type::Object(m.iter().map(|(k, v)| (k.clone(), infer_type(v))).collect()),
        Value::Dynamic(t, _) => t.clone(),
    }
}

/// Decodes msgpack bytes as a value of type `ty`. Trailing bytes are an error.
pub fn from_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, DecodeError> {
    let mut cur = Cursor { buf: bytes, pos: 0 };
    let v = decode(&mut cur, ty, &AttrPath::root(), 0)?;
    if cur.pos != bytes.len() {
        return err(&AttrPath::root(), format!("{} unexpected trailing bytes", bytes.len() - cur.pos));
    }
    Ok(v)
}

/// Nesting deeper than this is refused rather than risking the stack on hostile input.
const MAX_DEPTH: usize = 64;

struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize, path: &AttrPath) -> Result<&[u8], DecodeError> {
        if self.buf.len() - self.pos < n {
            return err(path, "msgpack value is truncated");
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn byte(&mut self, path: &AttrPath) -> Result<u8, DecodeError> {
        Ok(self.take(1, path)?[0])
    }
    fn be(&mut self, n: usize, path: &AttrPath) -> Result<u64, DecodeError> {
        Ok(self.take(n, path)?.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }
}

/// A msgpack item header, read before the schema decides what it must be.
enum Head {
    Nil,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(usize),
    Bin(usize),
    Array(usize),
    Map(usize),
    Ext(usize),
}

fn head(cur: &mut Cursor<'_>, path: &AttrPath) -> Result<Head, DecodeError> {
    let b = cur.byte(path)?;
    Ok(match b {
        0x00..=0x7f => Head::Int(i128::from(b)),
        0x80..=0x8f => Head::Map(usize::from(b & 0x0f)),
        0x90..=0x9f => Head::Array(usize::from(b & 0x0f)),
        0xa0..=0xbf => Head::Str(usize::from(b & 0x1f)),
        0xc0 => Head::Nil,
        0xc2 => Head::Bool(false),
        0xc3 => Head::Bool(true),
        0xc4 => Head::Bin(cur.be(1, path)? as usize),
        0xc5 => Head::Bin(cur.be(2, path)? as usize),
        0xc6 => Head::Bin(cur.be(4, path)? as usize),
        0xc7 => {
            let n = cur.be(1, path)? as usize;
            Head::Ext(n + 1)
        }
        0xc8 => {
            let n = cur.be(2, path)? as usize;
            Head::Ext(n + 1)
        }
        0xc9 => {
            let n = cur.be(4, path)? as usize;
            Head::Ext(n + 1)
        }
        0xca => Head::Float(f64::from(f32::from_bits(cur.be(4, path)? as u32))),
        0xcb => Head::Float(f64::from_bits(cur.be(8, path)?)),
        0xcc => Head::Int(i128::from(cur.be(1, path)?)),
        0xcd => Head::Int(i128::from(cur.be(2, path)?)),
        0xce => Head::Int(i128::from(cur.be(4, path)?)),
        0xcf => Head::Int(i128::from(cur.be(8, path)?)),
        0xd0 => Head::Int(i128::from(cur.be(1, path)? as u8 as i8)),
        0xd1 => Head::Int(i128::from(cur.be(2, path)? as u16 as i16)),
        0xd2 => Head::Int(i128::from(cur.be(4, path)? as u32 as i32)),
        0xd3 => Head::Int(i128::from(cur.be(8, path)? as i64)),
        0xd4 => Head::Ext(2),
        0xd5 => Head::Ext(3),
        0xd6 => Head::Ext(5),
        0xd7 => Head::Ext(9),
        0xd8 => Head::Ext(17),
        0xd9 => Head::Str(cur.be(1, path)? as usize),
        0xda => Head::Str(cur.be(2, path)? as usize),
        0xdb => Head::Str(cur.be(4, path)? as usize),
        0xdc => Head::Array(cur.be(2, path)? as usize),
        0xdd => Head::Array(cur.be(4, path)? as usize),
        0xde => Head::Map(cur.be(2, path)? as usize),
        0xdf => Head::Map(cur.be(4, path)? as usize),
        0xe0..=0xff => Head::Int(i128::from(b as i8)),
        0xc1 => return err(path, "invalid msgpack marker 0xc1"),
    })
}

fn read_str(cur: &mut Cursor<'_>, n: usize, path: &AttrPath) -> Result<String, DecodeError> {
    let bytes = cur.take(n, path)?;
    String::from_utf8(bytes.to_vec()).or_else(|_| err(path, "string is not valid UTF-8"))
}

fn decode(cur: &mut Cursor<'_>, ty: &Type, path: &AttrPath, depth: usize) -> Result<Value, DecodeError> {
    if depth > MAX_DEPTH {
        return err(path, "value is nested too deeply");
    }
    let h = head(cur, path)?;
    // Any extension is an unknown value: type 0 is plain unknown, type 12 a refined unknown (TF ≥ 1.6).
    if let Head::Ext(n) = h {
        cur.take(n, path)?;
        return Ok(Value::Unknown);
    }
    if let Head::Nil = h {
        return Ok(Value::Null);
    }
    match ty {
        Type::Dynamic => {
            let Head::Array(2) = h else { return err(path, "a dynamic value must be a [type, value] pair") };
            let type_json = match head(cur, path)? {
                Head::Str(n) | Head::Bin(n) => cur.take(n, path)?.to_vec(),
                _ => return err(path, "a dynamic value's type must be JSON text"),
            };
            let json: Json = serde_json::from_slice(&type_json).or_else(|e| err(path, format!("dynamic type: {e}")))?;
            let inner_ty = Type::from_json(&json).or_else(|e| err(path, e))?;
            let v = decode(cur, &inner_ty, path, depth + 1)?;
            Ok(Value::Dynamic(inner_ty, Box::new(v)))
        }
        Type::String => match h {
            Head::Str(n) => Ok(Value::String(read_str(cur, n, path)?)),
            _ => err(path, "expected a string"),
        },
        Type::Bool => match h {
            Head::Bool(b) => Ok(Value::Bool(b)),
            _ => err(path, "expected a bool"),
        },
        Type::Number => match h {
            Head::Int(i) => Ok(Value::Number(Number::parse(&i.to_string()).expect("integers are numbers"))),
            Head::Float(f) => Number::from_f64(f).map(Value::Number).map_or_else(|| err(path, "number is not finite"), Ok),
            Head::Str(n) => {
                let s = read_str(cur, n, path)?;
                Number::parse(&s).map(Value::Number).map_or_else(|| err(path, format!("{s:?} is not a number")), Ok)
            }
            _ => err(path, "expected a number"),
        },
        Type::List(et) | Type::Set(et) => {
            let Head::Array(n) = h else { return err(path, "expected an array") };
            let mut items = Vec::with_capacity(n.min(4096));
            for i in 0..n {
                items.push(decode(cur, et, &path.index(i), depth + 1)?);
            }
            Ok(if matches!(ty, Type::Set(_)) { Value::Set(items) } else { Value::List(items) })
        }
        Type::Tuple(types) => {
            let Head::Array(n) = h else { return err(path, "expected an array") };
            if n != types.len() {
                return err(path, format!("tuple has {n} elements, its type {}", types.len()));
            }
            let mut items = Vec::with_capacity(n);
            for (i, t) in types.iter().enumerate() {
                items.push(decode(cur, t, &path.index(i), depth + 1)?);
            }
            Ok(Value::Tuple(items))
        }
        Type::Map(et) => {
            let Head::Map(n) = h else { return err(path, "expected a map") };
            let mut m = BTreeMap::new();
            for _ in 0..n {
                let key = match head(cur, path)? {
                    Head::Str(n) => read_str(cur, n, path)?,
                    _ => return err(path, "map keys must be strings"),
                };
                let v = decode(cur, et, &path.key(&key), depth + 1)?;
                m.insert(key, v);
            }
            Ok(Value::Map(m))
        }
        Type::Object(types) => {
            let Head::Map(n) = h else { return err(path, "expected an object") };
            let mut m = BTreeMap::new();
            for _ in 0..n {
                let key = match head(cur, path)? {
                    Head::Str(n) => read_str(cur, n, path)?,
                    _ => return err(path, "object attribute names must be strings"),
                };
                let Some(t) = types.get(&key) else { return err(path, format!("unsupported attribute {key:?}")) };
                let v = decode(cur, t, &path.then(&key), depth + 1)?;
                m.insert(key, v);
            }
            for name in types.keys() {
                m.entry(name.clone()).or_insert(Value::Null);
            }
            Ok(Value::Object(m))
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// JSON (raw state and import)

/// Decodes Terraform's JSON encoding of a value of type `ty` (used by raw state in UpgradeResourceState).
/// JSON cannot express unknown values; attributes absent from an object decode as null.
pub fn from_json(json: &Json, ty: &Type) -> Result<Value, DecodeError> {
    from_json_at(json, ty, &AttrPath::root(), 0)
}

fn from_json_at(json: &Json, ty: &Type, path: &AttrPath, depth: usize) -> Result<Value, DecodeError> {
    if depth > MAX_DEPTH {
        return err(path, "value is nested too deeply");
    }
    if json.is_null() {
        return Ok(Value::Null);
    }
    match ty {
        Type::String => match json {
            Json::String(s) => Ok(Value::String(s.clone())),
            Json::Number(n) => Ok(Value::String(n.to_string())),
            Json::Bool(b) => Ok(Value::String(b.to_string())),
            _ => err(path, "expected a string"),
        },
        Type::Number => match json {
            Json::Number(n) => Number::parse(&n.to_string()).map(Value::Number).map_or_else(|| err(path, "bad number"), Ok),
            Json::String(s) => Number::parse(s).map(Value::Number).map_or_else(|| err(path, format!("{s:?} is not a number")), Ok),
            _ => err(path, "expected a number"),
        },
        Type::Bool => match json {
            Json::Bool(b) => Ok(Value::Bool(*b)),
            Json::String(s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
            _ => err(path, "expected a bool"),
        },
        Type::Dynamic => {
            let (Some(t), Some(v)) = (json.get("type"), json.get("value")) else {
                return err(path, "a dynamic value must be {\"type\":…, \"value\":…}");
            };
            let inner_ty = Type::from_json(t).or_else(|e| err(path, e))?;
            Ok(Value::Dynamic(inner_ty.clone(), Box::new(from_json_at(v, &inner_ty, path, depth + 1)?)))
        }
        Type::List(et) | Type::Set(et) => {
            let Json::Array(items) = json else { return err(path, "expected an array") };
            let items =
                items.iter().enumerate().map(|(i, j)| from_json_at(j, et, &path.index(i), depth + 1)).collect::<Result<Vec<_>, _>>()?;
            Ok(if matches!(ty, Type::Set(_)) { Value::Set(items) } else { Value::List(items) })
        }
        Type::Tuple(types) => {
            let Json::Array(items) = json else { return err(path, "expected an array") };
            if items.len() != types.len() {
                return err(path, "tuple length does not match its type");
            }
            let items = items
                .iter()
                .zip(types)
                .enumerate()
                .map(|(i, (j, t))| from_json_at(j, t, &path.index(i), depth + 1))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Value::Tuple(items))
        }
        Type::Map(et) => {
            let Json::Object(entries) = json else { return err(path, "expected an object") };
            let mut m = BTreeMap::new();
            for (k, v) in entries {
                m.insert(k.clone(), from_json_at(v, et, &path.key(k), depth + 1)?);
            }
            Ok(Value::Map(m))
        }
        Type::Object(types) => {
            let Json::Object(entries) = json else { return err(path, "expected an object") };
            let mut m = BTreeMap::new();
            for (name, t) in types {
                let v = match entries.get(name) {
                    Some(j) => from_json_at(j, t, &path.then(name), depth + 1)?,
                    None => Value::Null,
                };
                m.insert(name.clone(), v);
            }
            Ok(Value::Object(m))
        }
    }
}

/// Encodes a wholly known value as Terraform-style JSON (numbers as JSON numbers where exact).
pub fn to_json(value: &Value) -> Json {
    match value {
        Value::Unknown | Value::Null => Json::Null,
        Value::String(s) => Json::String(s.clone()),
        Value::Number(n) => serde_json::from_str(n.as_str()).unwrap_or_else(|_| Json::String(n.to_string())),
        Value::Bool(b) => Json::Bool(*b),
        Value::List(v) | Value::Set(v) | Value::Tuple(v) => Json::Array(v.iter().map(to_json).collect()),
        Value::Map(m) | Value::Object(m) => Json::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect()),
        Value::Dynamic(t, v) => serde_json::json!({"type": t.to_json(), "value": to_json(v)}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn ingress_type() -> Type {
        Type::object([("cidr", Type::String), ("ports", Type::set(Type::Number))])
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
            ("float", Type::Number, Value::Number(Number::parse("0.3").unwrap()), "cb 3fd3333333333333"),
            (
                "big number as string",
                Type::Number,
                Value::Number(Number::parse("123456789012345678901234567890").unwrap()),
                "be 313233343536373839303132333435363738393031323334353637383930",
            ),
            ("list of strings", Type::list(Type::String), Value::List(vec![Value::string("a"), Value::Unknown]), "92 a161 d40000"),
            ("set of numbers", Type::set(Type::Number), Value::Set(vec![Value::int(8786), Value::int(8787)]), "92 cd2252 cd2253"),
            (
                "object with every attribute",
                ingress_type(),
                Value::object([("cidr", Value::string("10.1.0.0/16")), ("ports", Value::Null)]),
                "82 a463696472 ab31302e312e302e302f3136 a5706f727473 c0",
            ),
            ("map", Type::map(Type::String), Value::Map([("team".to_string(), Value::string("etl"))].into()), "81 a47465616d a365746c"),
            ("dynamic string", Type::Dynamic, Value::Dynamic(Type::String, Box::new(Value::string("x"))), "92 a8 22737472696e6722 a178"),
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
        assert_eq!(from_msgpack(&nested, &Type::list(Type::String)).unwrap(), Value::List(vec![Value::string("a"), Value::Unknown]));
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
        for bytes in [&b""[..], &[0xdd, 0xff, 0xff, 0xff, 0xff], &[0xc1], &[0xa5, b'a'], &[0x91, 0x91, 0x91]] {
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
        let ty = Type::object([("id", Type::String), ("ingress", Type::set(ingress_type())), ("n", Type::Number)]);
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
        let ty = Type::object([("a", Type::list(Type::set(Type::map(Type::Bool)))), ("t", Type::Tuple(vec![Type::String, Type::Dynamic]))]);
        assert_eq!(Type::from_json(&ty.to_json()).unwrap(), ty);
    }
}
