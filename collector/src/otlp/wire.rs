//! The OTLP logs request as it arrives: the protobuf JSON mapping of
//! `opentelemetry.proto.collector.logs.v1`, deserialized liberally.
//!
//! Every field is optional, unknown fields are ignored, `null` reads as the default, 64-bit
//! integers come as strings or numbers and doubles as numbers or `"NaN"`/`"Infinity"`/
//! `"-Infinity"`. Messages must be JSON objects ([`Obj`]).
//!
//! Keys and string values borrow from the request body where the JSON holds them unescaped
//! ([`Text`]), so parsing a record allocates little more than its lists.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value as Json;

use super::attributes::Attributes;

/// `ExportLogsServiceRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExportLogsServiceRequest<'a> {
    #[serde(borrow, default, alias = "resource_logs", deserialize_with = "nullable")]
    pub(crate) resource_logs: Vec<Obj<ResourceLogs<'a>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResourceLogs<'a> {
    #[serde(borrow, default)]
    pub(crate) resource: Option<Obj<Resource<'a>>>,
    #[serde(borrow, default, alias = "scope_logs", deserialize_with = "nullable")]
    pub(crate) scope_logs: Vec<Obj<ScopeLogs<'a>>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Resource<'a> {
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub(crate) attributes: Vec<Obj<KeyValue<'a>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ScopeLogs<'a> {
    #[serde(borrow, default, alias = "log_records", deserialize_with = "nullable")]
    pub(crate) log_records: Vec<Obj<LogRecord<'a>>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LogRecord<'a> {
    #[serde(default, alias = "time_unix_nano")]
    pub(crate) time_unix_nano: Option<Fixed64>,
    #[serde(default, alias = "observed_time_unix_nano")]
    pub(crate) observed_time_unix_nano: Option<Fixed64>,
    #[serde(borrow, default)]
    pub(crate) body: Option<Obj<AnyValue<'a>>>,
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub(crate) attributes: Vec<Obj<KeyValue<'a>>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct KeyValue<'a> {
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub(crate) key: Text<'a>,
    #[serde(borrow, default)]
    pub(crate) value: Option<Obj<AnyValue<'a>>>,
}

/// `AnyValue`: at most one of the fields is set; none set means an empty value.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AnyValue<'a> {
    #[serde(borrow, default, alias = "string_value")]
    pub(crate) string_value: Option<Text<'a>>,
    #[serde(default, alias = "bool_value")]
    pub(crate) bool_value: Option<bool>,
    #[serde(default, alias = "int_value")]
    pub(crate) int_value: Option<Int64>,
    #[serde(default, alias = "double_value")]
    pub(crate) double_value: Option<Double>,
    #[serde(borrow, default, alias = "array_value")]
    pub(crate) array_value: Option<Obj<ArrayValue<'a>>>,
    #[serde(borrow, default, alias = "kvlist_value")]
    pub(crate) kvlist_value: Option<Obj<KeyValueList<'a>>>,
    #[serde(borrow, default, alias = "bytes_value")]
    pub(crate) bytes_value: Option<Text<'a>>,
}

impl AnyValue<'_> {
    /// The elements of an arrayValue of doubleValues; `None` if it is anything else.
    pub(crate) fn doubles(&self) -> Option<Vec<f64>> {
        let values = &self.array_value.as_ref()?.0.values;
        values.iter().map(|e| e.0.double_value.map(|d| d.0)).collect()
    }

    /// The elements of an arrayValue of stringValues; `None` if it is anything else.
    pub(crate) fn strings(&self) -> Option<Vec<String>> {
        let values = &self.array_value.as_ref()?.0.values;
        values.iter().map(|e| e.0.string_value.as_ref().map(|s| s.0.clone().into_owned())).collect()
    }

    /// Plain JSON: strings, numbers, booleans, arrays and objects; bytes stay base64 strings,
    /// non-finite doubles become the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
    pub(crate) fn into_json(self) -> Json {
        if let Some(Text(s)) = self.string_value {
            Json::String(s.into_owned())
        } else if let Some(b) = self.bool_value {
            Json::Bool(b)
        } else if let Some(i) = self.int_value {
            Json::from(i.0)
        } else if let Some(Double(d)) = self.double_value {
            edge_wire::double::to_json(d)
        } else if let Some(Obj(a)) = self.array_value {
            Json::Array(a.values.into_iter().map(|v| v.0.into_json()).collect())
        } else if let Some(Obj(kv)) = self.kvlist_value {
            Json::Object(Attributes::new(kv.values).into_json())
        } else if let Some(Text(bytes)) = self.bytes_value {
            Json::String(bytes.into_owned())
        } else {
            Json::Null
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ArrayValue<'a> {
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub(crate) values: Vec<Obj<AnyValue<'a>>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct KeyValueList<'a> {
    #[serde(borrow, default, deserialize_with = "nullable")]
    pub(crate) values: Vec<Obj<KeyValue<'a>>>,
}

/// A JSON string, borrowed from the body when it holds no escapes (serde's own `Cow` support
/// borrows only a bare `Cow` field, not one inside an `Option`).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Text<'a>(pub(crate) Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Text<'de>, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        d.deserialize_str(TextVisitor)
    }
}

impl Text<'_> {
    /// Its length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }
}

/// A message that must be a JSON object. (Serde's derived structs also accept a JSON array of
/// their fields in order; protobuf JSON never does, and `[]` is not an empty request.)
#[derive(Debug, Default)]
pub(crate) struct Obj<T>(pub(crate) T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ObjectVisitor<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for ObjectVisitor<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_map(ObjectVisitor(PhantomData)).map(Obj)
    }
}

/// Protobuf JSON: a missing field and `null` both mean the default.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Reads a protobuf JSON 64-bit or double field: a JSON number goes through `number`, a string
/// through `text`, anything else is a type error. A visitor rather than an untagged enum, which
/// would buffer the value and copy every string first (it runs several times per log record).
fn number_or_string<'de, D, T>(
    d: D,
    number: impl FnOnce(serde_json::Number) -> Option<T>,
    text: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
{
    struct NumberOrString<N, S>(N, S);
    impl<'de, T, N, S> Visitor<'de> for NumberOrString<N, S>
    where
        N: FnOnce(serde_json::Number) -> Option<T>,
        S: FnOnce(&str) -> Option<T>,
    {
        type Value = Option<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number or a string")
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Option<T>, E> {
            Ok((self.0)(v.into()))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<T>, E> {
            Ok((self.0)(v.into()))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Option<T>, E> {
            Ok(serde_json::Number::from_f64(v).and_then(self.0))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<T>, E> {
            Ok((self.1)(v))
        }
    }
    d.deserialize_any(NumberOrString(number, text))
}

/// `int64` in protobuf JSON: a decimal string or an integer number.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Int64(pub(crate) i64);

impl<'de> Deserialize<'de> for Int64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parsed = number_or_string(d, |n| n.as_i64(), |s| s.trim().parse().ok())?;
        parsed.map(Int64).ok_or_else(|| de::Error::custom("intValue is not a 64-bit integer"))
    }
}

/// `fixed64` nanoseconds in protobuf JSON, kept as i64 (SQLite's integer; good until 2262).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Fixed64(pub(crate) i64);

impl<'de> Deserialize<'de> for Fixed64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parsed: Option<u64> = number_or_string(d, |n| n.as_u64(), |s| s.trim().parse().ok())?;
        parsed
            .and_then(|v| i64::try_from(v).ok())
            .map(Fixed64)
            .ok_or_else(|| de::Error::custom("timeUnixNano is not an unsigned integer below 2^63"))
    }
}

/// `double` in protobuf JSON: a number, a numeric string, or `"NaN"`/`"Infinity"`/`"-Infinity"`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Double(pub(crate) f64);

impl<'de> Deserialize<'de> for Double {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parsed = number_or_string(d, |n| n.as_f64(), edge_wire::double::parse_str)?;
        parsed.map(Double).ok_or_else(|| de::Error::custom("doubleValue is not a number"))
    }
}
