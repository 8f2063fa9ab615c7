//! The msgpack codec of Terraform's values over gRPC. Unknown values are the extension `d4 00 00`;
//! any extension decodes as unknown (type 12 is a refined unknown). Hostile input is an error,
//! never a panic: nesting is bounded and lengths are checked against the bytes left.
//!
//! Both directions walk the value once with no per-attribute allocation beyond the value's own: an
//! error's path is assembled only when there is one, as it travels up ([`DecodeError::within`]).

use std::collections::BTreeMap;

use rmp::decode::{Bytes, RmpRead as _};
use serde_json::Value as Json;

use super::{DecodeError, Number, PathStep, Type, Value, fail};

/// Encodes a value of type `ty` as msgpack, the way Terraform expects it.
pub fn to_msgpack(value: &Value, ty: &Type) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(256);
    encode(&mut out, value, ty)?;
    Ok(out)
}

/// The msgpack encoding of an unknown value: extension type 0 with a single zero byte.
const UNKNOWN: [u8; 3] = [0xd4, 0x00, 0x00];

/// Writing to a `Vec` cannot fail; should it, the error says so rather than panicking.
fn written<T, E: std::fmt::Display>(r: Result<T, E>) -> Result<(), DecodeError> {
    r.map(|_| ()).or_else(|e| fail(e.to_string()))
}

fn encode(out: &mut Vec<u8>, value: &Value, ty: &Type) -> Result<(), DecodeError> {
    use rmp::encode as e;
    match (value, ty) {
        (Value::Unknown, _) => out.extend_from_slice(&UNKNOWN),
        (Value::Null, _) => out.push(0xc0),
        (v, Type::Dynamic) => {
            let (inner_ty, inner) = match v {
                Value::Dynamic(t, v) => (t.clone(), v.as_ref()),
                other => (infer_type(other), other),
            };
            written(e::write_array_len(out, 2))?;
            written(e::write_str(out, &inner_ty.to_json().to_string()))?;
            encode(out, inner, &inner_ty)?;
        }
        (Value::String(s), Type::String) => written(e::write_str(out, s))?,
        (Value::Number(n), Type::Number) => {
            if let Some(i) = n.as_i64() {
                written(e::write_sint(out, i))?;
            } else if let Some(f) = n.exact_f64() {
                written(e::write_f64(out, f))?;
            } else {
                written(e::write_str(out, n.as_str()))?;
            }
        }
        (Value::Bool(b), Type::Bool) => written(e::write_bool(out, *b))?,
        (Value::List(items), Type::List(et)) => {
            written(e::write_array_len(out, items.len() as u32))?;
            for (i, item) in items.iter().enumerate() {
                encode(out, item, et).map_err(|x| x.within(PathStep::Index(i as i64)))?;
            }
        }
        (Value::Set(items), Type::Set(et)) => encode_set(out, items, et)?,
        (Value::Tuple(items), Type::Tuple(types)) => {
            if items.len() != types.len() {
                return fail(format!(
                    "tuple has {} elements, its type {}",
                    items.len(),
                    types.len()
                ));
            }
            written(e::write_array_len(out, items.len() as u32))?;
            for (i, (item, t)) in items.iter().zip(types).enumerate() {
                encode(out, item, t).map_err(|x| x.within(PathStep::Index(i as i64)))?;
            }
        }
        (Value::Map(entries), Type::Map(et)) => {
            written(e::write_map_len(out, entries.len() as u32))?;
            for (k, v) in entries {
                written(e::write_str(out, k))?;
                encode(out, v, et).map_err(|x| x.within(PathStep::Key(k.clone())))?;
            }
        }
        (Value::Object(attrs), Type::Object(types)) => encode_object(out, attrs, types)?,
        (v, t) => return fail(format!("a {} cannot be encoded as {}", kind_of(v), t.to_json())),
    }
    Ok(())
}

/// A set: elements are encoded once each; identical encodings are written once. (Terraform also
/// collapses equal elements when it reads a set, so this is about size, not correctness.)
fn encode_set(out: &mut Vec<u8>, items: &[Value], et: &Type) -> Result<(), DecodeError> {
    let mut buf = Vec::new();
    let mut spans = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let start = buf.len();
        encode(&mut buf, item, et).map_err(|x| x.within(PathStep::Index(i as i64)))?;
        spans.push(start..buf.len());
    }
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    let unique: Vec<&[u8]> =
        spans.into_iter().map(|span| &buf[span]).filter(|item| seen.insert(*item)).collect();
    written(rmp::encode::write_array_len(out, unique.len() as u32))?;
    for item in unique {
        out.extend_from_slice(item);
    }
    Ok(())
}

/// An object: every attribute of the type is written, null where the value lacks it, as Terraform
/// requires; an attribute outside the type is an error.
fn encode_object(
    out: &mut Vec<u8>,
    attrs: &BTreeMap<String, Value>,
    types: &BTreeMap<String, Type>,
) -> Result<(), DecodeError> {
    written(rmp::encode::write_map_len(out, types.len() as u32))?;
    for (name, t) in types {
        written(rmp::encode::write_str(out, name))?;
        encode(out, attrs.get(name).unwrap_or(&Value::Null), t)
            .map_err(|x| x.within(PathStep::Attr(name.clone())))?;
    }
    if let Some(extra) = attrs.keys().find(|k| !types.contains_key(*k)) {
        return fail(format!("attribute {extra:?} is not in the schema"));
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

/// The natural type of an untyped value (for values placed in `dynamic` attributes).
pub fn infer_type(v: &Value) -> Type {
    match v {
        Value::String(_) | Value::Null | Value::Unknown => Type::String,
        Value::Number(_) => Type::Number,
        Value::Bool(_) => Type::Bool,
        Value::List(items) => Type::list(items.first().map(infer_type).unwrap_or(Type::Dynamic)),
        Value::Set(items) => Type::set(items.first().map(infer_type).unwrap_or(Type::Dynamic)),
        Value::Tuple(items) => Type::Tuple(items.iter().map(infer_type).collect()),
        Value::Map(m) => Type::map(m.values().next().map(infer_type).unwrap_or(Type::Dynamic)),
        Value::Object(m) => {
            Type::Object(m.iter().map(|(k, v)| (k.clone(), infer_type(v))).collect())
        }
        Value::Dynamic(t, _) => t.clone(),
    }
}

/// Decodes msgpack bytes as a value of type `ty`. Trailing bytes are an error.
pub fn from_msgpack(bytes: &[u8], ty: &Type) -> Result<Value, DecodeError> {
    let mut cur = Bytes::new(bytes);
    let v = decode(&mut cur, ty, 0)?;
    if !cur.remaining_slice().is_empty() {
        return fail(format!("{} unexpected trailing bytes", cur.remaining_slice().len()));
    }
    Ok(v)
}

/// Nesting deeper than this is refused rather than risking the stack on hostile input.
pub(super) const MAX_DEPTH: usize = 64;

/// The reader: `rmp`'s byte-slice reader, which checks every length against the bytes left.
type Cursor<'a> = Bytes<'a>;

/// Takes the next `n` bytes of a string, binary or extension payload.
fn take<'a>(cur: &mut Cursor<'a>, n: usize) -> Result<&'a [u8], DecodeError> {
    let rest = cur.remaining_slice();
    if rest.len() < n {
        return fail("msgpack value is truncated");
    }
    *cur = Bytes::new(&rest[n..]);
    Ok(&rest[..n])
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

/// Reads a marker and the length or scalar that follows it, with `rmp`'s reader.
fn head(cur: &mut Cursor<'_>) -> Result<Head, DecodeError> {
    use rmp::Marker as M;
    let marker = whole(rmp::decode::read_marker(cur))?;
    Ok(match marker {
        M::FixPos(n) => Head::Int(i128::from(n)),
        M::FixNeg(n) => Head::Int(i128::from(n)),
        M::Null => Head::Nil,
        M::True => Head::Bool(true),
        M::False => Head::Bool(false),
        M::U8 => Head::Int(i128::from(whole(cur.read_data_u8())?)),
        M::U16 => Head::Int(i128::from(whole(cur.read_data_u16())?)),
        M::U32 => Head::Int(i128::from(whole(cur.read_data_u32())?)),
        M::U64 => Head::Int(i128::from(whole(cur.read_data_u64())?)),
        M::I8 => Head::Int(i128::from(whole(cur.read_data_i8())?)),
        M::I16 => Head::Int(i128::from(whole(cur.read_data_i16())?)),
        M::I32 => Head::Int(i128::from(whole(cur.read_data_i32())?)),
        M::I64 => Head::Int(i128::from(whole(cur.read_data_i64())?)),
        M::F32 => Head::Float(f64::from(whole(cur.read_data_f32())?)),
        M::F64 => Head::Float(whole(cur.read_data_f64())?),
        M::FixStr(n) => Head::Str(usize::from(n)),
        M::Str8 | M::Str16 | M::Str32 => Head::Str(sized(cur, marker)?),
        M::Bin8 | M::Bin16 | M::Bin32 => Head::Bin(sized(cur, marker)?),
        M::FixArray(n) => Head::Array(usize::from(n)),
        M::Array16 | M::Array32 => Head::Array(sized(cur, marker)?),
        M::FixMap(n) => Head::Map(usize::from(n)),
        M::Map16 | M::Map32 => Head::Map(sized(cur, marker)?),
        // An extension's payload is its type byte and its data: FixExt1 (0xd4) to FixExt16 (0xd8)
        // hold 1, 2, 4, 8 or 16 bytes of data.
        M::FixExt1 | M::FixExt2 | M::FixExt4 | M::FixExt8 | M::FixExt16 => {
            Head::Ext(1 + (1 << (marker.to_u8() - 0xd4)))
        }
        M::Ext8 | M::Ext16 | M::Ext32 => Head::Ext(sized(cur, marker)? + 1),
        M::Reserved => return fail("invalid msgpack marker 0xc1"),
    })
}

/// A read that ran out of bytes is a truncated value.
fn whole<T, E>(r: Result<T, E>) -> Result<T, DecodeError> {
    r.or_else(|_| fail("msgpack value is truncated"))
}

/// The length after a sized marker: one, two or four bytes by the marker's width.
fn sized(cur: &mut Cursor<'_>, marker: rmp::Marker) -> Result<usize, DecodeError> {
    use rmp::Marker as M;
    let n = match marker {
        M::Str8 | M::Bin8 | M::Ext8 => cur.read_data_u8().map(u32::from),
        M::Str16 | M::Bin16 | M::Ext16 | M::Array16 | M::Map16 => {
            cur.read_data_u16().map(u32::from)
        }
        _ => cur.read_data_u32(),
    };
    whole(n).map(|n| n as usize)
}

fn read_str<'a>(cur: &mut Cursor<'a>, n: usize) -> Result<&'a str, DecodeError> {
    std::str::from_utf8(take(cur, n)?).or_else(|_| fail("string is not valid UTF-8"))
}

/// A map key or attribute name.
fn read_key<'a>(cur: &mut Cursor<'a>) -> Result<&'a str, DecodeError> {
    match head(cur)? {
        Head::Str(n) => read_str(cur, n),
        _ => fail("map keys and attribute names must be strings"),
    }
}

fn decode(cur: &mut Cursor<'_>, ty: &Type, depth: usize) -> Result<Value, DecodeError> {
    if depth > MAX_DEPTH {
        return fail("value is nested too deeply");
    }
    match (head(cur)?, ty) {
        // Any extension is unknown: type 0 is plain unknown, type 12 a refined unknown (TF ≥ 1.6).
        (Head::Ext(n), _) => take(cur, n).map(|_| Value::Unknown),
        (Head::Nil, _) => Ok(Value::Null),
        (h, Type::Dynamic) => decode_dynamic(cur, h, depth),
        (Head::Str(n), Type::String) => Ok(Value::String(read_str(cur, n)?.to_owned())),
        (_, Type::String) => fail("expected a string"),
        (Head::Bool(b), Type::Bool) => Ok(Value::Bool(b)),
        (_, Type::Bool) => fail("expected a bool"),
        (h, Type::Number) => decode_number(cur, h),
        (Head::Array(n), Type::List(et) | Type::Set(et)) => {
            let mut items = Vec::with_capacity(n.min(4096));
            for i in 0..n {
                items.push(
                    decode(cur, et, depth + 1).map_err(|e| e.within(PathStep::Index(i as i64)))?,
                );
            }
            Ok(if matches!(ty, Type::Set(_)) { Value::Set(items) } else { Value::List(items) })
        }
        (Head::Array(n), Type::Tuple(types)) => {
            if n != types.len() {
                return fail(format!("tuple has {n} elements, its type {}", types.len()));
            }
            let items = types.iter().enumerate().map(|(i, t)| {
                decode(cur, t, depth + 1).map_err(|e| e.within(PathStep::Index(i as i64)))
            });
            items.collect::<Result<_, _>>().map(Value::Tuple)
        }
        (_, Type::List(_) | Type::Set(_) | Type::Tuple(_)) => fail("expected an array"),
        (h, Type::Map(et)) => decode_map(cur, h, et, depth).map(Value::Map),
        (h, Type::Object(types)) => decode_object(cur, h, types, depth).map(Value::Object),
    }
}

fn decode_dynamic(cur: &mut Cursor<'_>, h: Head, depth: usize) -> Result<Value, DecodeError> {
    let Head::Array(2) = h else { return fail("a dynamic value must be a [type, value] pair") };
    let type_json = match head(cur)? {
        Head::Str(n) | Head::Bin(n) => take(cur, n)?,
        _ => return fail("a dynamic value's type must be JSON text"),
    };
    let json: Json =
        serde_json::from_slice(type_json).or_else(|e| fail(format!("dynamic type: {e}")))?;
    let inner_ty = Type::from_json(&json).or_else(fail)?;
    let v = decode(cur, &inner_ty, depth + 1)?;
    Ok(Value::Dynamic(inner_ty, Box::new(v)))
}

fn decode_number(cur: &mut Cursor<'_>, h: Head) -> Result<Value, DecodeError> {
    match h {
        Head::Int(i) => Ok(Value::Number(match i64::try_from(i) {
            Ok(small) => Number::from_i64(small),
            Err(_) => Number::parse(&i.to_string()).expect("integers are numbers"),
        })),
        Head::Float(f) => {
            Number::from_f64(f).map(Value::Number).map_or_else(|| fail("number is not finite"), Ok)
        }
        Head::Str(n) => {
            let s = read_str(cur, n)?;
            Number::parse(s)
                .map(Value::Number)
                .map_or_else(|| fail(format!("{s:?} is not a number")), Ok)
        }
        _ => fail("expected a number"),
    }
}

fn decode_map(
    cur: &mut Cursor<'_>,
    h: Head,
    et: &Type,
    depth: usize,
) -> Result<BTreeMap<String, Value>, DecodeError> {
    let Head::Map(n) = h else { return fail("expected a map or object") };
    let mut m = BTreeMap::new();
    for _ in 0..n {
        let key = read_key(cur)?;
        let v = decode(cur, et, depth + 1).map_err(|e| e.within(PathStep::Key(key.to_owned())))?;
        m.insert(key.to_owned(), v);
    }
    Ok(m)
}

/// An object's attributes, every one of its type present (null where the bytes leave it out).
/// The map is built from all entries at once: Terraform writes attributes in name order, which the
/// build sorts in one pass, without comparing keys again to insert them.
fn decode_object(
    cur: &mut Cursor<'_>,
    h: Head,
    types: &BTreeMap<String, Type>,
    depth: usize,
) -> Result<BTreeMap<String, Value>, DecodeError> {
    let Head::Map(n) = h else { return fail("expected a map or object") };
    let mut entries: Vec<(String, Value)> = Vec::with_capacity(types.len().max(n.min(4096)));
    for _ in 0..n {
        let key = read_key(cur)?;
        let Some((name, t)) = types.get_key_value(key) else {
            return fail(format!("unsupported attribute {key:?}"));
        };
        let v = decode(cur, t, depth + 1).map_err(|e| e.within(PathStep::Attr(name.clone())))?;
        entries.push((name.clone(), v));
    }
    let mut m: BTreeMap<String, Value> = entries.into_iter().collect();
    if m.len() < types.len() {
        for name in types.keys() {
            m.entry(name.clone()).or_insert(Value::Null);
        }
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(v: &Value) -> String {
        let Value::Number(n) = v else { panic!("{v:?} is not a number") };
        n.as_str().to_string()
    }

    #[test]
    fn every_marker_width_decodes() {
        let positive = [0i64, 127, 128, 255, 256, 65_535, 65_536, 4_294_967_296];
        let negative = [-1, -32, -33, -129, -32_769, -2_147_483_649];
        for i in positive.into_iter().chain(negative) {
            let mut buf = Vec::new();
            rmp::encode::write_sint(&mut buf, i).unwrap();
            assert_eq!(number(&from_msgpack(&buf, &Type::Number).unwrap()), i.to_string());
        }
        let mut buf = Vec::new();
        rmp::encode::write_u64(&mut buf, u64::MAX).unwrap();
        assert_eq!(number(&from_msgpack(&buf, &Type::Number).unwrap()), u64::MAX.to_string());
        for n in [3usize, 31, 32, 255, 256, 65_536] {
            let text = "x".repeat(n);
            let mut buf = Vec::new();
            rmp::encode::write_str(&mut buf, &text).unwrap();
            assert_eq!(from_msgpack(&buf, &Type::String).unwrap(), Value::String(text));
        }
        for n in [15u32, 16, 70_000] {
            let mut buf = Vec::new();
            rmp::encode::write_array_len(&mut buf, n).unwrap();
            buf.extend(std::iter::repeat_n(0xc3, n as usize));
            let Value::List(items) = from_msgpack(&buf, &Type::list(Type::Bool)).unwrap() else {
                panic!()
            };
            assert_eq!(items.len(), n as usize);
        }
        let mut buf = Vec::new();
        rmp::encode::write_f32(&mut buf, 1.5).unwrap();
        assert_eq!(number(&from_msgpack(&buf, &Type::Number).unwrap()), "1.5");
        // A refined unknown (extension 12 with a payload) is unknown; so is the plain one.
        assert_eq!(
            from_msgpack(&[0xc7, 0x02, 0x0c, 0x81, 0x01], &Type::String).unwrap(),
            Value::Unknown
        );
        assert_eq!(from_msgpack(&UNKNOWN, &Type::Number).unwrap(), Value::Unknown);
    }

    #[test]
    fn lengths_beyond_the_input_are_errors() {
        for bytes in [
            &[0xdb, 0xff, 0xff, 0xff, 0xff][..],
            &[0xdd, 0xff, 0xff, 0xff, 0xff],
            &[0xc9, 0xff, 0xff, 0xff, 0xff, 0],
            &[0xcd, 0x01],
            &[0xc1],
        ] {
            let ty = match bytes[0] {
                0xdd => Type::list(Type::Bool),
                0xcd => Type::Number,
                _ => Type::String,
            };
            assert!(from_msgpack(bytes, &ty).is_err(), "{bytes:02x?}");
        }
    }
}
