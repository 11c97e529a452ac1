//! A serde `Deserializer` over a parsed `serde_json::Value` that reads every
//! struct from a JSON object, and only from one.
//!
//! `serde_json::Value`'s own deserializer also accepts a struct written as
//! an array (`[1, "a"]`), so every struct's generated `visit_seq` is compiled
//! into the wasm next to its `visit_map` — although the console never writes
//! a struct as an array. Reading through this one, `visit_seq` is
//! instantiated only for real sequences (`Vec`, tuples), which takes tens of
//! KB off the release bundle (ARCHITECTURE.md, "Wasm size"). Everything else
//! reads as with `serde_json::from_value`; the tests hold the two side by side.

use std::fmt;

use serde::de::value::StringDeserializer;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, Error as _, Expected, IntoDeserializer,
    MapAccess, SeqAccess, Unexpected, VariantAccess, Visitor,
};
use serde::forward_to_deserialize_any;
use serde_json::{Map, Number, Value};

/// `T` from a parsed JSON value, structs only from objects.
pub fn from_value<T: de::DeserializeOwned>(value: Value) -> Result<T, ReadError> {
    T::deserialize(Reader(value))
}

/// Why a value could not be read, in words.
///
/// Its own type rather than `serde_json::Error` for the wasm's sake too:
/// serde's default "invalid type" message writes the unexpected value with
/// `Display`, and for a float that is the standard library's float printer
/// (14 KB of wasm). Here a wrong value is named by its kind, not printed.
///
/// One pointer wide, like `serde_json::Error`: every `Result` the readers
/// pass around carries it, and a wider error made each of them bigger.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::box_collection)]
pub struct ReadError(Box<String>);

type Error = ReadError;

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ReadError {}

impl de::Error for ReadError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        ReadError(Box::new(msg.to_string()))
    }

    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        ReadError(Box::new(format!(
            "invalid type: {}, expected {exp}",
            kind(&unexp)
        )))
    }

    fn invalid_value(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        ReadError(Box::new(format!(
            "invalid value: {}, expected {exp}",
            kind(&unexp)
        )))
    }
}

impl From<serde_json::Error> for ReadError {
    fn from(e: serde_json::Error) -> Self {
        ReadError(Box::new(e.to_string()))
    }
}

fn kind(unexp: &Unexpected<'_>) -> String {
    match unexp {
        Unexpected::Bool(b) => format!("boolean `{b}`"),
        Unexpected::Unsigned(n) => format!("integer `{n}`"),
        Unexpected::Signed(n) => format!("integer `{n}`"),
        Unexpected::Float(_) => "a floating-point number".to_owned(),
        Unexpected::Char(c) => format!("character {c:?}"),
        Unexpected::Str(s) => format!("string {s:?}"),
        Unexpected::Bytes(_) => "bytes".to_owned(),
        Unexpected::Unit | Unexpected::Option => "null".to_owned(),
        Unexpected::NewtypeStruct | Unexpected::NewtypeVariant => "a value".to_owned(),
        Unexpected::Seq => "an array".to_owned(),
        Unexpected::Map => "an object".to_owned(),
        Unexpected::Enum
        | Unexpected::UnitVariant
        | Unexpected::TupleVariant
        | Unexpected::StructVariant => "an enum variant".to_owned(),
        Unexpected::Other(what) => (*what).to_owned(),
    }
}

struct Reader(Value);

/// The numeric `deserialize_*` methods, each handing its visitor to `$via`.
macro_rules! numbers_via {
    ($via:ident: $($method:ident)*) => {
        $(
            fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
                self.$via(visitor)
            }
        )*
    };
}

fn unexpected(value: &Value) -> Unexpected<'_> {
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(n) => match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Unexpected::Unsigned(u),
            (None, Some(i)) => Unexpected::Signed(i),
            _ => Unexpected::Other("a floating-point number"),
        },
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

fn wrong<'de, V: Visitor<'de>>(value: &Value, visitor: &V) -> Error {
    Error::invalid_type(unexpected(value), visitor)
}

fn visit_number<'de, V: Visitor<'de>>(n: Number, visitor: V) -> Result<V::Value, Error> {
    if let Some(u) = n.as_u64() {
        visitor.visit_u64(u)
    } else if let Some(i) = n.as_i64() {
        visitor.visit_i64(i)
    } else {
        // Finite by construction: JSON has no NaN or infinity.
        visitor.visit_f64(n.as_f64().unwrap_or_default())
    }
}

fn visit_object<'de, V: Visitor<'de>>(
    map: Map<String, Value>,
    visitor: V,
) -> Result<V::Value, Error> {
    let len = map.len();
    let mut access = Entries {
        iter: map.into_iter(),
        value: None,
        read: 0,
    };
    let out = visitor.visit_map(&mut access)?;
    if access.read == len {
        Ok(out)
    } else {
        Err(Error::invalid_length(len, &"fewer entries in the object"))
    }
}

fn visit_array<'de, V: Visitor<'de>>(items: Vec<Value>, visitor: V) -> Result<V::Value, Error> {
    let len = items.len();
    let mut access = Items {
        iter: items.into_iter(),
        read: 0,
    };
    let out = visitor.visit_seq(&mut access)?;
    if access.read == len {
        Ok(out)
    } else {
        Err(Error::invalid_length(len, &"fewer elements in the array"))
    }
}

impl<'de> Deserializer<'de> for Reader {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(b),
            Value::Number(n) => visit_number(n, visitor),
            Value::String(s) => visitor.visit_string(s),
            Value::Array(items) => visit_array(items, visitor),
            Value::Object(map) => visit_object(map, visitor),
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Bool(b) => visitor.visit_bool(b),
            other => Err(wrong(&other, &visitor)),
        }
    }

    numbers_via! {
        deserialize_number: deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_u8
        deserialize_u16 deserialize_u32 deserialize_u64 deserialize_f32 deserialize_f64
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::String(s) => visitor.visit_string(s),
            other => Err(wrong(&other, &visitor)),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_none(),
            value => visitor.visit_some(Reader(value)),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Null => visitor.visit_unit(),
            other => Err(wrong(&other, &visitor)),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Array(items) => visit_array(items, visitor),
            other => Err(wrong(&other, &visitor)),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Object(map) => visit_object(map, visitor),
            other => Err(wrong(&other, &visitor)),
        }
    }

    /// The point of this reader: objects only, so no struct's `visit_seq` is needed.
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.0 {
            // A unit variant: "production".
            Value::String(variant) => visitor.visit_enum(Variant {
                variant,
                value: None,
            }),
            // Any other variant: {"Ok": …}.
            Value::Object(map) if map.len() == 1 => match map.into_iter().next() {
                Some((variant, value)) => visitor.visit_enum(Variant {
                    variant,
                    value: Some(value),
                }),
                None => Err(Error::custom("an enum variant was expected")),
            },
            other => Err(wrong(&other, &visitor)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_string(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    forward_to_deserialize_any! { i128 u128 char bytes byte_buf }
}

impl Reader {
    fn deserialize_number<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Value::Number(n) => visit_number(n, visitor),
            other => Err(wrong(&other, &visitor)),
        }
    }
}

struct Items {
    iter: std::vec::IntoIter<Value>,
    read: usize,
}

impl<'de> SeqAccess<'de> for Items {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.iter.next() {
            Some(value) => {
                self.read += 1;
                seed.deserialize(Reader(value)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

struct Entries {
    iter: <Map<String, Value> as IntoIterator>::IntoIter,
    value: Option<Value>,
    read: usize,
}

impl<'de> MapAccess<'de> for Entries {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.iter.next() {
            Some((key, value)) => {
                self.read += 1;
                self.value = Some(value);
                seed.deserialize(Key(key)).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, Error> {
        match self.value.take() {
            Some(value) => seed.deserialize(Reader(value)),
            None => Err(Error::custom("a value was read before its key")),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// An object's key: text, or a number written as text (`{"3": …}` for a
/// map with integer keys), as serde_json writes them.
struct Key(String);

impl Key {
    fn number<T: std::str::FromStr>(&self) -> Result<T, Error> {
        self.0
            .parse()
            .map_err(|_| Error::custom(format!("expected a number as the key, not {:?}", self.0)))
    }

    fn unsigned_key<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_u64(self.number()?)
    }

    fn signed_key<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_i64(self.number()?)
    }
}

impl<'de> Deserializer<'de> for Key {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_string(self.0)
    }

    numbers_via! { unsigned_key: deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 }
    numbers_via! { signed_key: deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let name: StringDeserializer<Error> = self.0.into_deserializer();
        visitor.visit_enum(name)
    }

    forward_to_deserialize_any! {
        bool i128 u128 f32 f64 char str string bytes byte_buf option unit unit_struct seq tuple tuple_struct map
        struct identifier ignored_any
    }
}

struct Variant {
    variant: String,
    value: Option<Value>,
}

impl<'de> EnumAccess<'de> for Variant {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), Error> {
        let name: StringDeserializer<Error> = self.variant.clone().into_deserializer();
        Ok((seed.deserialize(name)?, self))
    }
}

impl<'de> VariantAccess<'de> for Variant {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.value {
            None | Some(Value::Null) => Ok(()),
            Some(other) => Err(Error::invalid_type(unexpected(&other), &"a unit variant")),
        }
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
        match self.value {
            Some(value) => seed.deserialize(Reader(value)),
            None => Err(Error::invalid_type(
                Unexpected::UnitVariant,
                &"a newtype variant",
            )),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.value {
            Some(value) => Reader(value).deserialize_seq(visitor),
            None => Err(Error::invalid_type(Unexpected::UnitVariant, &visitor)),
        }
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.value {
            Some(value) => Reader(value).deserialize_map(visitor),
            None => Err(Error::invalid_type(Unexpected::UnitVariant, &visitor)),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::de::DeserializeOwned;
    use serde::{Deserialize, Serialize};
    use serde_json::json;
    use switchyard_domain::operations::StepRecord;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    enum Colour {
        Blue,
        Green,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Tagged {
        Square { side: u8 },
        Empty,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum External {
        Unit,
        Newtype(String),
        Tuple(u8, bool),
        Struct { x: i64 },
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Inner {
        weight: f64,
        note: Option<String>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Name(String);

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Everything {
        id: i64,
        #[serde(rename = "colour_name")]
        colour: Colour,
        tagged: Vec<Tagged>,
        external: Vec<External>,
        #[serde(flatten)]
        inner: Inner,
        #[serde(default)]
        missing: Vec<u32>,
        by_number: BTreeMap<u32, String>,
        pair: (String, u64),
        name: Name,
        maybe: Option<Box<Everything>>,
        config: Value,
        unit: (),
    }

    fn both<T: DeserializeOwned + PartialEq + fmt::Debug>(value: Value) -> T {
        let ours: T = from_value(value.clone()).expect("this reader reads it");
        let theirs: T = serde_json::from_value(value).expect("serde_json reads it");
        assert_eq!(ours, theirs);
        ours
    }

    #[test]
    fn reads_what_serde_json_reads_from_objects() {
        let value = json!({
            "id": -7,
            "colour_name": "green",
            "tagged": [{"kind": "square", "side": 3}, {"kind": "empty"}],
            "external": ["Unit", {"Newtype": "n"}, {"Tuple": [1, true]}, {"Struct": {"x": 5}}],
            "weight": 2,
            "note": null,
            "by_number": {"3": "three"},
            "pair": ["p", 18446744073709551615u64],
            "name": "blue",
            "maybe": {
                "id": 1, "colour_name": "blue", "tagged": [], "external": [], "weight": 0.5, "note": "n",
                "by_number": {}, "pair": ["", 0], "name": "", "maybe": null, "config": {"a": [1, 2.5]}, "unit": null,
                "unknown": "ignored"
            },
            "config": {"batch": 16},
            "unit": null
        });
        let read: Everything = both(value);
        assert_eq!(read.inner.weight, 2.0);
        assert_eq!(
            read.maybe.as_ref().map(|m| m.inner.note.as_deref()),
            Some(Some("n"))
        );
    }

    #[test]
    fn reads_the_domain_step_records_as_serde_json_does() {
        let record = json!({"action": "shift", "weights": {"blue": 10, "green": 90}, "state": "done",
            "started_at": "2026-03-03T14:00:00Z", "finished_at": null, "note": "measured 2 ms"});
        let read: StepRecord = both(record.clone());
        assert_eq!(
            serde_json::to_value(&read).expect("writes"),
            json!({"action": "shift", "weights": {"blue": 10, "green": 90},
            "state": "done", "started_at": "2026-03-03T14:00:00.000000Z", "finished_at": null, "note": "measured 2 ms"})
        );
    }

    #[test]
    fn refuses_wrong_shapes_in_words_without_printing_floats() {
        let wrong = |value: Value| from_value::<Inner>(value).expect_err("refused").to_string();
        assert_eq!(
            wrong(json!({"weight": "heavy", "note": null})),
            "invalid type: string \"heavy\", expected f64"
        );
        assert_eq!(
            wrong(json!({"weight": 1, "note": 2.5})),
            "invalid type: a floating-point number, expected a string"
        );
        assert_eq!(wrong(json!({"note": null})), "missing field `weight`");
        // serde_json would read a struct from an array; the console never writes one.
        assert_eq!(
            wrong(json!([1.0, null])),
            "invalid type: an array, expected struct Inner"
        );
        assert!(from_value::<u8>(json!(300)).is_err());
        assert!(from_value::<Colour>(json!("red"))
            .expect_err("unknown")
            .to_string()
            .contains("unknown variant `red`"));
        assert!(from_value::<Tagged>(json!({"kind": "circle"})).is_err());
        assert!(from_value::<External>(json!({"Unit": 1, "Tuple": [1, true]})).is_err());
    }
}
