//! The msgpack codec: how Terraform sends and expects values over gRPC. Unknown values are the
//! extension `d4 00 00`; any extension decodes as unknown (type 12 is a refined unknown). Hostile input
//! is an error, never a panic: nesting is bounded and lengths are checked against the bytes left.

use std::collections::BTreeMap;

use serde_json::Value as Json;

use super::{AttrPath, DecodeError, Number, Type, Value, err};

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
        (Value::Set(items), Type::Set(et)) => encode_set(out, items, et, path)?,
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
        (Value::Object(attrs), Type::Object(types)) => encode_object(out, attrs, types, path)?,
        (v, t) => return err(path, format!("a {} cannot be encoded as {}", kind_of(v), t.to_json())),
    }
    Ok(())
}

fn write_error(path: &AttrPath) -> impl Fn(rmp::encode::ValueWriteError) -> DecodeError + '_ {
    move |x| DecodeError { path: path.clone(), message: x.to_string() }
}

/// A set: elements are encoded once each; identical encodings are written once. (Terraform also
/// collapses equal elements when it reads a set, so this is about size, not correctness.)
fn encode_set(out: &mut Vec<u8>, items: &[Value], et: &Type, path: &AttrPath) -> Result<(), DecodeError> {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    let mut encoded: Vec<Vec<u8>> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let mut buf = Vec::new();
        encode(&mut buf, item, et, &path.index(i))?;
        if seen.insert(buf.clone()) {
            encoded.push(buf);
        }
    }
    rmp::encode::write_array_len(out, encoded.len() as u32).map_err(write_error(path))?;
    for buf in encoded {
        out.extend_from_slice(&buf);
    }
    Ok(())
}

/// An object: every attribute of the type is written, null where the value lacks it, as Terraform
/// requires; an attribute outside the type is an error.
fn encode_object(
    out: &mut Vec<u8>,
    attrs: &BTreeMap<String, Value>,
    types: &BTreeMap<String, Type>,
    path: &AttrPath,
) -> Result<(), DecodeError> {
    rmp::encode::write_map_len(out, types.len() as u32).map_err(write_error(path))?;
    for (name, t) in types {
        rmp::encode::write_str(out, name).map_err(write_error(path))?;
        encode(out, attrs.get(name).unwrap_or(&Value::Null), t, &path.then(name))?;
    }
    if let Some(extra) = attrs.keys().find(|k| !types.contains_key(*k)) {
        return err(path, format!("attribute {extra:?} is not in the schema"));
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
pub(super) const MAX_DEPTH: usize = 64;

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
        Type::Dynamic => decode_dynamic(cur, h, path, depth),
        Type::String => match h {
            Head::Str(n) => Ok(Value::String(read_str(cur, n, path)?)),
            _ => err(path, "expected a string"),
        },
        Type::Bool => match h {
            Head::Bool(b) => Ok(Value::Bool(b)),
            _ => err(path, "expected a bool"),
        },
        Type::Number => decode_number(cur, h, path),
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
        Type::Map(et) => decode_entries(cur, h, path, depth, |_| Some(&**et)).map(Value::Map),
        Type::Object(types) => {
            let mut m = decode_entries(cur, h, path, depth, |key| types.get(key))?;
            for name in types.keys() {
                m.entry(name.clone()).or_insert(Value::Null);
            }
            Ok(Value::Object(m))
        }
    }
}

fn decode_dynamic(cur: &mut Cursor<'_>, h: Head, path: &AttrPath, depth: usize) -> Result<Value, DecodeError> {
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

fn decode_number(cur: &mut Cursor<'_>, h: Head, path: &AttrPath) -> Result<Value, DecodeError> {
    match h {
        Head::Int(i) => Ok(Value::Number(Number::parse(&i.to_string()).expect("integers are numbers"))),
        Head::Float(f) => Number::from_f64(f).map(Value::Number).map_or_else(|| err(path, "number is not finite"), Ok),
        Head::Str(n) => {
            let s = read_str(cur, n, path)?;
            Number::parse(&s).map(Value::Number).map_or_else(|| err(path, format!("{s:?} is not a number")), Ok)
        }
        _ => err(path, "expected a number"),
    }
}

/// The entries of a map or object; `type_of` gives each key's type (`None`: not allowed).
fn decode_entries<'t>(
    cur: &mut Cursor<'_>,
    h: Head,
    path: &AttrPath,
    depth: usize,
    type_of: impl Fn(&str) -> Option<&'t Type>,
) -> Result<BTreeMap<String, Value>, DecodeError> {
    let Head::Map(n) = h else { return err(path, "expected a map or object") };
    let mut m = BTreeMap::new();
    for _ in 0..n {
        let key = match head(cur, path)? {
            Head::Str(n) => read_str(cur, n, path)?,
            _ => return err(path, "map keys and attribute names must be strings"),
        };
        let Some(t) = type_of(&key) else { return err(path, format!("unsupported attribute {key:?}")) };
        let v = decode(cur, t, &path.then(&key), depth + 1)?;
        m.insert(key, v);
    }
    Ok(m)
}
