//! Terraform's JSON encoding of a value decoded straight from its text, with no intermediate tree:
//! the raw state of every `UpgradeResourceState` goes through here.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value as Json;

use super::msgpack::MAX_DEPTH;
use super::{Number, Type, Value};

/// Decodes the JSON text of a value of type `ty`: what [`super::from_json`] returns for the parsed
/// text, built without the parsed tree. `None` where the text is not valid JSON of that type: then
/// [`super::from_json`] on the parsed text says why, with the path.
pub fn from_json_text(text: &[u8], ty: &Type) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let value = Typed { ty, depth: 0 }.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(value)
}

/// A value of type `ty`, `depth` levels down.
#[derive(Clone, Copy)]
struct Typed<'t> {
    ty: &'t Type,
    depth: usize,
}

impl<'t> Typed<'t> {
    fn within(self, ty: &'t Type) -> Typed<'t> {
        Typed { ty, depth: self.depth + 1 }
    }

    /// A number given as JSON text: a number where the type wants one, its text where it wants a
    /// string, as [`super::from_json`] takes them.
    fn number<E: Error>(self, text: String) -> Result<Value, E> {
        match self.ty {
            Type::Number => {
                Number::parse(&text).map(Value::Number).ok_or_else(|| E::custom("bad number"))
            }
            Type::String => Ok(Value::String(text)),
            _ => Err(E::custom("unexpected number")),
        }
    }
}

impl<'de> DeserializeSeed<'de> for Typed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.depth > MAX_DEPTH {
            return Err(D::Error::custom("value is nested too deeply"));
        }
        if let Type::Dynamic = self.ty {
            // Its type may follow its value in the text: read the pair whole.
            let json = <Json as serde::Deserialize>::deserialize(d)?;
            return super::json::from_json_at(&json, self.ty, self.depth).map_err(D::Error::custom);
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Typed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "a value of type {:?}", self.ty)
    }

    fn visit_unit<E: Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E: Error>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E: Error>(self, b: bool) -> Result<Value, E> {
        match self.ty {
            Type::Bool => Ok(Value::Bool(b)),
            Type::String => Ok(Value::String(b.to_string())),
            _ => Err(E::custom("unexpected bool")),
        }
    }

    fn visit_u64<E: Error>(self, n: u64) -> Result<Value, E> {
        self.number(n.to_string())
    }

    fn visit_i64<E: Error>(self, n: i64) -> Result<Value, E> {
        self.number(n.to_string())
    }

    fn visit_f64<E: Error>(self, n: f64) -> Result<Value, E> {
        // The text serde_json gives a parsed float, as the tree would hold it.
        self.number(
            serde_json::Number::from_f64(n).ok_or_else(|| E::custom("bad number"))?.to_string(),
        )
    }

    fn visit_str<E: Error>(self, s: &str) -> Result<Value, E> {
        match self.ty {
            Type::String => Ok(Value::String(s.to_string())),
            Type::Number => {
                Number::parse(s).map(Value::Number).ok_or_else(|| E::custom("not a number"))
            }
            Type::Bool if s == "true" || s == "false" => Ok(Value::Bool(s == "true")),
            _ => Err(E::custom("unexpected string")),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        match self.ty {
            Type::List(et) | Type::Set(et) => {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(v) = seq.next_element_seed(self.within(et))? {
                    items.push(v);
                }
                Ok(if matches!(self.ty, Type::Set(_)) {
                    Value::Set(items)
                } else {
                    Value::List(items)
                })
            }
            Type::Tuple(types) => {
                let mut items = Vec::with_capacity(types.len());
                for t in types {
                    items.push(
                        seq.next_element_seed(self.within(t))?
                            .ok_or_else(|| A::Error::custom("tuple too short"))?,
                    );
                }
                match seq.next_element::<IgnoredAny>()? {
                    None => Ok(Value::Tuple(items)),
                    Some(_) => Err(A::Error::custom("tuple too long")),
                }
            }
            _ => Err(A::Error::custom("unexpected array")),
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        match self.ty {
            Type::Map(et) => {
                let mut m = BTreeMap::new();
                while let Some(k) = map.next_key::<String>()? {
                    let v = map.next_value_seed(self.within(et))?;
                    m.insert(k, v);
                }
                Ok(Value::Map(m))
            }
            Type::Object(types) => {
                let mut m = BTreeMap::new();
                // Keys are borrowed from the text where it has no escapes; attributes the type does not
                // have are skipped, as the tree decoder ignores them.
                while let Some(k) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match types.get_key_value(k.as_ref()) {
                        Some((name, t)) => {
                            drop(m.insert(name.clone(), map.next_value_seed(self.within(t))?))
                        }
                        None => drop(map.next_value::<IgnoredAny>()?),
                    }
                }
                if m.len() < types.len() {
                    for name in types.keys() {
                        m.entry(name.clone()).or_insert(Value::Null);
                    }
                }
                Ok(Value::Object(m))
            }
            _ => Err(A::Error::custom("unexpected object")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::value::from_json;

    /// Whether the text decodes, and to the same value, both ways.
    fn agrees(text: &str, ty: &Type) -> bool {
        let tree = serde_json::from_str::<Json>(text).ok().and_then(|j| from_json(&j, ty).ok());
        assert_eq!(from_json_text(text.as_bytes(), ty), tree, "{text}");
        tree.is_some()
    }

    #[test]
    fn decodes_as_the_tree_decoder_does() {
        let row = Type::Object(BTreeMap::from([
            ("port".to_string(), Type::Number),
            ("source".to_string(), Type::String),
        ]));
        let ty = Type::Object(BTreeMap::from([
            ("id".to_string(), Type::String),
            ("n".to_string(), Type::Number),
            ("on".to_string(), Type::Bool),
            ("rows".to_string(), Type::list(row.clone())),
            ("set".to_string(), Type::set(Type::Number)),
            ("tags".to_string(), Type::map(Type::String)),
            ("pair".to_string(), Type::Tuple(vec![Type::String, Type::Number])),
            ("any".to_string(), Type::Dynamic),
            ("nested".to_string(), row),
        ]));
        let decoded = [
            r#"{"id":"7","n":4,"on":true,"rows":[{"port":443,"source":"10.1.0.0/16"}],"set":[1,2,2],"tags":{"a":"b"},"pair":["x",1.5],"any":{"value":3,"type":"number"},"nested":null}"#,
            r#"{"id":7,"n":"12.50","on":"false","rows":null,"set":[],"tags":{},"pair":null,"any":null,"nested":{"port":-1}}"#,
            r#"{"id":true,"n":1e300,"extra":{"deep":[1,2,{"x":null}]},"id":"last wins"}"#,
            r#"{"n":0.1,"pair":["a",2,3]}"#,
            r#"{"n":18446744073709551615,"on":1}"#,
            r#"{"id":"caf\u00e9","n":-0.0,"rows":[{"port":"x"}]}"#,
            r#"{"id":"x"} trailing"#,
            r#"[1,2]"#,
            r#"null"#,
            r#"{"id":"unterminated"#,
        ]
        .map(|text| agrees(text, &ty));
        assert_eq!(decoded, [true, true, true, false, false, false, false, false, true, false]);
    }

    #[test]
    fn deep_nesting_is_refused_not_overflowed() {
        let mut ty = Type::String;
        for _ in 0..100 {
            ty = Type::list(ty);
        }
        let text = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert_eq!(from_json_text(text.as_bytes(), &ty), None);
    }
}
