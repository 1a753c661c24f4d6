//! The OTLP logs request as it arrives: the protobuf JSON mapping of
//! `opentelemetry.proto.collector.logs.v1`, deserialized liberally.
//!
//! Every field is optional, unknown fields are ignored, `null` reads as the default, 64-bit
//! integers come as strings or numbers and doubles as numbers or `"NaN"`/`"Infinity"`/
//! `"-Infinity"`. Messages must be JSON objects ([`Obj`]).

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::Value as Json;

use super::attributes::Attributes;

/// `ExportLogsServiceRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ExportLogsServiceRequest {
    #[serde(default, alias = "resource_logs", deserialize_with = "nullable")]
    pub(crate) resource_logs: Vec<Obj<ResourceLogs>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ResourceLogs {
    #[serde(default)]
    pub(crate) resource: Option<Obj<Resource>>,
    #[serde(default, alias = "scope_logs", deserialize_with = "nullable")]
    pub(crate) scope_logs: Vec<Obj<ScopeLogs>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Resource {
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) attributes: Vec<Obj<KeyValue>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ScopeLogs {
    #[serde(default, alias = "log_records", deserialize_with = "nullable")]
    pub(crate) log_records: Vec<Obj<LogRecord>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LogRecord {
    #[serde(default, alias = "time_unix_nano")]
    pub(crate) time_unix_nano: Option<Fixed64>,
    #[serde(default, alias = "observed_time_unix_nano")]
    pub(crate) observed_time_unix_nano: Option<Fixed64>,
    #[serde(default)]
    pub(crate) body: Option<Obj<AnyValue>>,
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) attributes: Vec<Obj<KeyValue>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct KeyValue {
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) key: String,
    #[serde(default)]
    pub(crate) value: Option<Obj<AnyValue>>,
}

/// `AnyValue`: at most one of the fields is set; none set means an empty value.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AnyValue {
    #[serde(default, alias = "string_value")]
    pub(crate) string_value: Option<String>,
    #[serde(default, alias = "bool_value")]
    pub(crate) bool_value: Option<bool>,
    #[serde(default, alias = "int_value")]
    pub(crate) int_value: Option<Int64>,
    #[serde(default, alias = "double_value")]
    pub(crate) double_value: Option<Double>,
    #[serde(default, alias = "array_value")]
    pub(crate) array_value: Option<Obj<ArrayValue>>,
    #[serde(default, alias = "kvlist_value")]
    pub(crate) kvlist_value: Option<Obj<KeyValueList>>,
    #[serde(default, alias = "bytes_value")]
    pub(crate) bytes_value: Option<String>,
}

impl AnyValue {
    /// The elements of an arrayValue of doubleValues; `None` if it is anything else.
    pub(crate) fn doubles(&self) -> Option<Vec<f64>> {
        let values = &self.array_value.as_ref()?.0.values;
        values.iter().map(|e| e.0.double_value.map(|d| d.0)).collect()
    }

    /// The elements of an arrayValue of stringValues; `None` if it is anything else.
    pub(crate) fn strings(&self) -> Option<Vec<String>> {
        let values = &self.array_value.as_ref()?.0.values;
        values.iter().map(|e| e.0.string_value.clone()).collect()
    }

    /// Plain JSON: strings, numbers, booleans, arrays and objects; bytes stay base64 strings,
    /// non-finite doubles become the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
    pub(crate) fn into_json(self) -> Json {
        if let Some(s) = self.string_value {
            Json::String(s)
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
        } else if let Some(bytes) = self.bytes_value {
            Json::String(bytes)
        } else {
            Json::Null
        }
    }
}

#[derive(Debug, Deserialize)]
pub(crate) struct ArrayValue {
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) values: Vec<Obj<AnyValue>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct KeyValueList {
    #[serde(default, deserialize_with = "nullable")]
    pub(crate) values: Vec<Obj<KeyValue>>,
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
