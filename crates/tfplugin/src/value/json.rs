//! Terraform's JSON encoding of values (raw state in `UpgradeResourceState`, import).

use serde_json::Value as Json;

use super::msgpack::MAX_DEPTH;
use super::{DecodeError, Number, PathStep, Type, Value, fail};

/// Decodes Terraform's JSON encoding of a value of type `ty` (raw state in UpgradeResourceState).
/// JSON cannot express unknown values; attributes absent from an object decode as null.
pub fn from_json(json: &Json, ty: &Type) -> Result<Value, DecodeError> {
    from_json_at(json, ty, 0)
}

pub(super) fn from_json_at(json: &Json, ty: &Type, depth: usize) -> Result<Value, DecodeError> {
    if depth > MAX_DEPTH {
        return fail("value is nested too deeply");
    }
    if json.is_null() {
        return Ok(Value::Null);
    }
    match ty {
        Type::String => match json {
            Json::String(s) => Ok(Value::String(s.clone())),
            Json::Number(n) => Ok(Value::String(n.to_string())),
            Json::Bool(b) => Ok(Value::String(b.to_string())),
            _ => fail("expected a string"),
        },
        Type::Number => match json {
            Json::Number(n) => Number::parse(&n.to_string())
                .map(Value::Number)
                .map_or_else(|| fail("bad number"), Ok),
            Json::String(s) => Number::parse(s)
                .map(Value::Number)
                .map_or_else(|| fail(format!("{s:?} is not a number")), Ok),
            _ => fail("expected a number"),
        },
        Type::Bool => match json {
            Json::Bool(b) => Ok(Value::Bool(*b)),
            Json::String(s) if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
            _ => fail("expected a bool"),
        },
        Type::Dynamic => {
            let (Some(t), Some(v)) = (json.get("type"), json.get("value")) else {
                return fail("a dynamic value must be {\"type\":…, \"value\":…}");
            };
            let inner_ty = Type::from_json(t).or_else(fail)?;
            Ok(Value::Dynamic(inner_ty.clone(), Box::new(from_json_at(v, &inner_ty, depth + 1)?)))
        }
        Type::List(et) | Type::Set(et) => {
            let Json::Array(items) = json else { return fail("expected an array") };
            let items = items.iter().enumerate().map(|(i, j)| {
                from_json_at(j, et, depth + 1).map_err(|e| e.within(PathStep::Index(i as i64)))
            });
            let items = items.collect::<Result<Vec<_>, _>>()?;
            Ok(if matches!(ty, Type::Set(_)) { Value::Set(items) } else { Value::List(items) })
        }
        Type::Tuple(types) => {
            let Json::Array(items) = json else { return fail("expected an array") };
            if items.len() != types.len() {
                return fail("tuple length does not match its type");
            }
            let items = items.iter().zip(types).enumerate().map(|(i, (j, t))| {
                from_json_at(j, t, depth + 1).map_err(|e| e.within(PathStep::Index(i as i64)))
            });
            items.collect::<Result<_, _>>().map(Value::Tuple)
        }
        Type::Map(et) => {
            let Json::Object(entries) = json else { return fail("expected an object") };
            let entries = entries.iter().map(|(k, j)| {
                let v = from_json_at(j, et, depth + 1);
                v.map(|v| (k.clone(), v)).map_err(|e| e.within(PathStep::Key(k.clone())))
            });
            entries.collect::<Result<_, DecodeError>>().map(Value::Map)
        }
        Type::Object(types) => {
            let Json::Object(entries) = json else { return fail("expected an object") };
            let attrs = types.iter().map(|(k, t)| {
                let v = entries.get(k).map_or(Ok(Value::Null), |j| from_json_at(j, t, depth + 1));
                v.map(|v| (k.clone(), v)).map_err(|e| e.within(PathStep::Attr(k.clone())))
            });
            attrs.collect::<Result<_, DecodeError>>().map(Value::Object)
        }
    }
}

/// Encodes a wholly known value as Terraform-style JSON (numbers as JSON numbers where exact).
pub fn to_json(value: &Value) -> Json {
    match value {
        Value::Unknown | Value::Null => Json::Null,
        Value::String(s) => Json::String(s.clone()),
        Value::Number(n) => {
            serde_json::from_str(n.as_str()).unwrap_or_else(|_| Json::String(n.to_string()))
        }
        Value::Bool(b) => Json::Bool(*b),
        Value::List(v) | Value::Set(v) | Value::Tuple(v) => {
            Json::Array(v.iter().map(to_json).collect())
        }
        Value::Map(m) | Value::Object(m) => {
            Json::Object(m.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
        Value::Dynamic(t, v) => serde_json::json!({"type": t.to_json(), "value": to_json(v)}),
    }
}
