//! OTLP/HTTP JSON `ExportLogsServiceRequest` → typed [`Record`]s.
//!
//! The wire types follow the protobuf JSON mapping (camelCase keys, the original snake_case
//! names accepted as aliases, `null` read as the default, 64-bit integers as strings or numbers,
//! doubles as numbers or the strings `"NaN"`, `"Infinity"`, `"-Infinity"`). They are liberal:
//! unknown fields are ignored and every known field is optional.
//!
//! [`parse`] then maps each log record onto the columns the store knows. The rules:
//! - a record without a non-empty `edge.record_id` string makes the whole request malformed
//!   (the caller answers 400 and stores nothing);
//! - a record with a non-finite `edge.score` or `edge.latency_us` is rejected on its own and
//!   reported through OTLP `partialSuccess`; the others are stored. A non-finite element of
//!   `edge.reading` is *not* a reason to reject: a broken sensor value is exactly the kind of
//!   raw reading the device could not score, so it is stored (as `"NaN"`, `"Infinity"`, …);
//! - an `edge.*` attribute with an unexpected value type does not fill its column and is kept in
//!   the leftover attributes instead, like any unknown attribute.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use serde_json::{Map, Value as Json};

/// Record attribute: globally unique id `"{device_id}:{seq}"` (stringValue). Required.
pub const ATTR_RECORD_ID: &str = "edge.record_id";
/// Record attribute: per-device sequence number (intValue).
pub const ATTR_SEQ: &str = "edge.seq";
/// Record attribute: anomaly score (doubleValue); absent for unscored readings.
pub const ATTR_SCORE: &str = "edge.score";
/// Record attribute: whether the score crossed the threshold (boolValue).
pub const ATTR_ANOMALY: &str = "edge.anomaly";
/// Record attribute: version of the model that scored the reading (stringValue).
pub const ATTR_MODEL_VERSION: &str = "edge.model_version";
/// Record attribute: scoring latency in microseconds (intValue or doubleValue).
pub const ATTR_LATENCY_US: &str = "edge.latency_us";
/// Record attribute: false for a raw reading that still needs scoring in the cloud (boolValue).
pub const ATTR_SCORED: &str = "edge.scored";
/// Record attribute: the raw reading (arrayValue of doubleValue).
pub const ATTR_READING: &str = "edge.reading";
/// Resource attribute (or record attribute as a fallback): the device id (stringValue).
pub const ATTR_DEVICE_ID: &str = "device.id";
/// Resource attribute: the app version (stringValue).
pub const ATTR_SERVICE_VERSION: &str = "service.version";

/// Why a request body is not an acceptable `ExportLogsServiceRequest`.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    /// The body is not JSON at all (syntax error, truncated, not UTF-8).
    #[error("malformed JSON: {0}")]
    Json(String),
    /// The body is JSON but does not have the OTLP logs request structure.
    #[error("not an OTLP ExportLogsServiceRequest: {0}")]
    Structure(String),
    /// A log record carries no usable `edge.record_id`.
    #[error("{location}: missing edge.record_id (a non-empty stringValue attribute)")]
    MissingRecordId {
        /// Where the record sits, e.g. `resourceLogs[0].scopeLogs[0].logRecords[3]`.
        location: String,
    },
}

impl From<serde_json::Error> for ParseError {
    fn from(e: serde_json::Error) -> Self {
        match e.classify() {
            serde_json::error::Category::Data => ParseError::Structure(e.to_string()),
            _ => ParseError::Json(e.to_string()),
        }
    }
}

/// One log record mapped onto the store's columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// `edge.record_id`.
    pub record_id: String,
    /// Resource `device.id`, else record `device.id`, else the record id before its last `:`.
    pub device_id: Option<String>,
    /// `edge.seq`, else the record id after its last `:` if that is an integer.
    pub seq: Option<i64>,
    /// `timeUnixNano`, else `observedTimeUnixNano` (0 and absent both mean unknown).
    pub time_unix_nano: Option<i64>,
    /// `edge.score`.
    pub score: Option<f64>,
    /// `edge.anomaly`.
    pub anomaly: Option<bool>,
    /// `edge.model_version`.
    pub model_version: Option<String>,
    /// `edge.latency_us`.
    pub latency_us: Option<f64>,
    /// `edge.scored`, else whether a score is present.
    pub scored: bool,
    /// Resource `service.version`.
    pub service_version: Option<String>,
    /// `edge.reading`.
    pub reading: Option<Vec<f64>>,
    /// Record attributes not mapped to a column above, as plain JSON.
    pub attrs: Map<String, Json>,
    /// Resource attributes not mapped to a column above, as plain JSON.
    pub resource_attrs: Map<String, Json>,
    /// The log record body, as plain JSON, if any.
    pub body: Option<Json>,
}

/// A record rejected on its own (it is not stored; the rest of the batch is).
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// The rejected record's `edge.record_id`.
    pub record_id: String,
    /// Why it was rejected.
    pub reason: String,
}

/// The outcome of parsing one request body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Records to store, in request order.
    pub records: Vec<Record>,
    /// Records rejected individually.
    pub rejected: Vec<Rejected>,
}

impl Batch {
    /// The OTLP/HTTP JSON response body for this batch: `{}` when everything was accepted,
    /// `{"partialSuccess": {...}}` when some records were rejected.
    pub fn response_json(&self) -> String {
        if self.rejected.is_empty() {
            return "{}".to_owned();
        }
        let mut message = self
            .rejected
            .iter()
            .take(10)
            .map(|r| format!("{}: {}", r.record_id, r.reason))
            .collect::<Vec<_>>()
            .join("; ");
        if self.rejected.len() > 10 {
            message.push_str(&format!("; and {} more", self.rejected.len() - 10));
        }
        serde_json::json!({
            "partialSuccess": {
                "rejectedLogRecords": self.rejected.len().to_string(),
                "errorMessage": message,
            }
        })
        .to_string()
    }
}

/// Parses a decoded (uncompressed) request body.
pub fn parse(body: &[u8]) -> Result<Batch, ParseError> {
    let Obj(request): Obj<ExportLogsServiceRequest> = serde_json::from_slice(body)?;
    let mut batch = Batch::default();
    for (ri, Obj(resource_logs)) in request.resource_logs.into_iter().enumerate() {
        let mut resource =
            Attributes::new(resource_logs.resource.map(|r| r.0.attributes).unwrap_or_default());
        let resource_device = resource.take_string(ATTR_DEVICE_ID);
        let service_version = resource.take_string(ATTR_SERVICE_VERSION);
        let resource_attrs = resource.into_json();
        for (si, Obj(scope_logs)) in resource_logs.scope_logs.into_iter().enumerate() {
            for (li, Obj(log)) in scope_logs.log_records.into_iter().enumerate() {
                let location = format!("resourceLogs[{ri}].scopeLogs[{si}].logRecords[{li}]");
                let mapped = map_record(
                    log,
                    &location,
                    resource_device.as_deref(),
                    service_version.as_deref(),
                    &resource_attrs,
                )?;
                match mapped {
                    Ok(record) => batch.records.push(record),
                    Err(rejected) => batch.rejected.push(rejected),
                }
            }
        }
    }
    Ok(batch)
}

fn map_record(
    log: LogRecord,
    location: &str,
    resource_device: Option<&str>,
    service_version: Option<&str>,
    resource_attrs: &Map<String, Json>,
) -> Result<Result<Record, Rejected>, ParseError> {
    let mut attrs = Attributes::new(log.attributes);
    let record_id = attrs
        .take_string(ATTR_RECORD_ID)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ParseError::MissingRecordId { location: location.to_owned() })?;
    let (id_device, id_seq) = split_record_id(&record_id);

    let record_device = attrs.take_string(ATTR_DEVICE_ID);
    let device_id = resource_device
        .map(str::to_owned)
        .or(record_device)
        .or_else(|| id_device.map(str::to_owned));
    let seq = attrs.take_int(ATTR_SEQ).or(id_seq);
    let score = attrs.take_number(ATTR_SCORE);
    let anomaly = attrs.take_bool(ATTR_ANOMALY);
    let model_version = attrs.take_string(ATTR_MODEL_VERSION);
    let latency_us = attrs.take_number(ATTR_LATENCY_US);
    let scored = attrs.take_bool(ATTR_SCORED).unwrap_or(score.is_some());
    let reading = attrs.take_double_array(ATTR_READING);
    let time_unix_nano = [log.time_unix_nano, log.observed_time_unix_nano]
        .into_iter()
        .flatten()
        .map(|t| t.0)
        .find(|&t| t != 0);

    let reject = |reason: &str| {
        Ok(Err(Rejected { record_id: record_id.clone(), reason: reason.to_owned() }))
    };
    if score.is_some_and(|s| !s.is_finite()) {
        return reject("edge.score is not a finite number");
    }
    if latency_us.is_some_and(|l| !l.is_finite()) {
        return reject("edge.latency_us is not a finite number");
    }

    Ok(Ok(Record {
        record_id: record_id.clone(),
        device_id,
        seq,
        time_unix_nano,
        score,
        anomaly,
        model_version,
        latency_us,
        scored,
        service_version: service_version.map(str::to_owned),
        reading,
        attrs: attrs.into_json(),
        resource_attrs: resource_attrs.clone(),
        body: log.body.map(|b| b.0.into_json()).filter(|b| !b.is_null()),
    }))
}

/// Splits `"{device}:{seq}"` at its last colon; either half may be unusable.
fn split_record_id(id: &str) -> (Option<&str>, Option<i64>) {
    match id.rsplit_once(':') {
        Some((device, seq)) => (Some(device).filter(|d| !d.is_empty()), seq.parse().ok()),
        None => (None, None),
    }
}

/// A record's or resource's attribute list, from which known keys are taken one by one.
struct Attributes(Vec<(String, AnyValue)>);

impl Attributes {
    fn new(list: Vec<Obj<KeyValue>>) -> Self {
        Attributes(
            list.into_iter().map(|Obj(kv)| (kv.key, kv.value.unwrap_or_default().0)).collect(),
        )
    }

    /// Removes and returns the first attribute `key` if `pick` accepts its value.
    fn take<T>(&mut self, key: &str, pick: impl Fn(&AnyValue) -> Option<T>) -> Option<T> {
        let index = self.0.iter().position(|(k, _)| k == key)?;
        let value = pick(&self.0[index].1)?;
        self.0.remove(index);
        Some(value)
    }

    fn take_string(&mut self, key: &str) -> Option<String> {
        self.take(key, |v| v.string_value.clone())
    }

    fn take_bool(&mut self, key: &str) -> Option<bool> {
        self.take(key, |v| v.bool_value)
    }

    fn take_int(&mut self, key: &str) -> Option<i64> {
        self.take(key, |v| v.int_value.map(|i| i.0))
    }

    /// An intValue or a doubleValue, as f64.
    fn take_number(&mut self, key: &str) -> Option<f64> {
        // An i64 latency in microseconds is far below 2^53, so the conversion is exact.
        #[allow(clippy::cast_precision_loss)]
        self.take(key, |v| v.double_value.map(|d| d.0).or(v.int_value.map(|i| i.0 as f64)))
    }

    fn take_double_array(&mut self, key: &str) -> Option<Vec<f64>> {
        self.take(key, |v| {
            let values = &v.array_value.as_ref()?.0.values;
            values.iter().map(|e| e.0.double_value.map(|d| d.0)).collect()
        })
    }

    /// What is left, as a JSON object (a repeated key keeps its last value).
    fn into_json(self) -> Map<String, Json> {
        self.0.into_iter().map(|(k, v)| (k, v.into_json())).collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Wire types (protobuf JSON mapping of opentelemetry.proto.collector.logs.v1).

/// `ExportLogsServiceRequest`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExportLogsServiceRequest {
    #[serde(default, alias = "resource_logs", deserialize_with = "nullable")]
    resource_logs: Vec<Obj<ResourceLogs>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ResourceLogs {
    #[serde(default)]
    resource: Option<Obj<Resource>>,
    #[serde(default, alias = "scope_logs", deserialize_with = "nullable")]
    scope_logs: Vec<Obj<ScopeLogs>>,
}

#[derive(Debug, Deserialize)]
struct Resource {
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<Obj<KeyValue>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScopeLogs {
    #[serde(default, alias = "log_records", deserialize_with = "nullable")]
    log_records: Vec<Obj<LogRecord>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct LogRecord {
    #[serde(default, alias = "time_unix_nano")]
    time_unix_nano: Option<Fixed64>,
    #[serde(default, alias = "observed_time_unix_nano")]
    observed_time_unix_nano: Option<Fixed64>,
    #[serde(default)]
    body: Option<Obj<AnyValue>>,
    #[serde(default, deserialize_with = "nullable")]
    attributes: Vec<Obj<KeyValue>>,
}

#[derive(Debug, Deserialize)]
struct KeyValue {
    #[serde(default, deserialize_with = "nullable")]
    key: String,
    #[serde(default)]
    value: Option<Obj<AnyValue>>,
}

/// `AnyValue`: at most one of the fields is set; none set means an empty value.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AnyValue {
    #[serde(default, alias = "string_value")]
    string_value: Option<String>,
    #[serde(default, alias = "bool_value")]
    bool_value: Option<bool>,
    #[serde(default, alias = "int_value")]
    int_value: Option<Int64>,
    #[serde(default, alias = "double_value")]
    double_value: Option<Double>,
    #[serde(default, alias = "array_value")]
    array_value: Option<Obj<ArrayValue>>,
    #[serde(default, alias = "kvlist_value")]
    kvlist_value: Option<Obj<KeyValueList>>,
    #[serde(default, alias = "bytes_value")]
    bytes_value: Option<String>,
}

impl AnyValue {
    /// Plain JSON: strings, numbers, booleans, arrays and objects; bytes stay base64 strings,
    /// non-finite doubles become the strings `"NaN"`, `"Infinity"`, `"-Infinity"`.
    fn into_json(self) -> Json {
        if let Some(s) = self.string_value {
            Json::String(s)
        } else if let Some(b) = self.bool_value {
            Json::Bool(b)
        } else if let Some(i) = self.int_value {
            Json::from(i.0)
        } else if let Some(Double(d)) = self.double_value {
            double_to_json(d)
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

/// A double as JSON the way protobuf JSON writes it: a number, or the string `"NaN"`,
/// `"Infinity"` or `"-Infinity"`.
pub fn double_to_json(d: f64) -> Json {
    match serde_json::Number::from_f64(d) {
        Some(n) => Json::Number(n),
        None if d.is_nan() => Json::String("NaN".to_owned()),
        None if d > 0.0 => Json::String("Infinity".to_owned()),
        None => Json::String("-Infinity".to_owned()),
    }
}

#[derive(Debug, Deserialize)]
struct ArrayValue {
    #[serde(default, deserialize_with = "nullable")]
    values: Vec<Obj<AnyValue>>,
}

#[derive(Debug, Deserialize)]
struct KeyValueList {
    #[serde(default, deserialize_with = "nullable")]
    values: Vec<Obj<KeyValue>>,
}

/// A message that must be a JSON object. (Serde's derived structs also accept a JSON array of
/// their fields in order; protobuf JSON never does, and `[]` is not an empty request.)
#[derive(Debug, Default)]
struct Obj<T>(T);

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
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A JSON number or string, as the protobuf JSON mapping allows for 64-bit and double fields.
#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Number(serde_json::Number),
    String(String),
}

/// `int64` in protobuf JSON: a decimal string or an integer number.
#[derive(Debug, Clone, Copy)]
struct Int64(i64);

impl<'de> Deserialize<'de> for Int64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parsed = match NumberOrString::deserialize(d)? {
            NumberOrString::Number(n) => n.as_i64(),
            NumberOrString::String(s) => s.trim().parse().ok(),
        };
        parsed.map(Int64).ok_or_else(|| de::Error::custom("intValue is not a 64-bit integer"))
    }
}

/// `fixed64` nanoseconds in protobuf JSON, kept as i64 (SQLite's integer; good until 2262).
#[derive(Debug, Clone, Copy)]
struct Fixed64(i64);

impl<'de> Deserialize<'de> for Fixed64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parsed: Option<u64> = match NumberOrString::deserialize(d)? {
            NumberOrString::Number(n) => n.as_u64(),
            NumberOrString::String(s) => s.trim().parse().ok(),
        };
        parsed
            .and_then(|v| i64::try_from(v).ok())
            .map(Fixed64)
            .ok_or_else(|| de::Error::custom("timeUnixNano is not an unsigned integer below 2^63"))
    }
}

/// `double` in protobuf JSON: a number, a numeric string, or `"NaN"`/`"Infinity"`/`"-Infinity"`.
#[derive(Debug, Clone, Copy)]
struct Double(f64);

impl<'de> Deserialize<'de> for Double {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let parsed = match NumberOrString::deserialize(d)? {
            NumberOrString::Number(n) => n.as_f64(),
            NumberOrString::String(s) => match s.trim() {
                "NaN" => Some(f64::NAN),
                "Infinity" => Some(f64::INFINITY),
                "-Infinity" => Some(f64::NEG_INFINITY),
                other => other.parse().ok(),
            },
        };
        parsed.map(Double).ok_or_else(|| de::Error::custom("doubleValue is not a number"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn record(attrs: Json) -> Json {
        serde_json::json!({
            "resourceLogs": [{
                "resource": {"attributes": [
                    {"key": "device.id", "value": {"stringValue": "dev-a"}},
                    {"key": "service.version", "value": {"stringValue": "1.2.3"}},
                    {"key": "host.arch", "value": {"stringValue": "wasm32"}}
                ]},
                "scopeLogs": [{"logRecords": [{
                    "timeUnixNano": "1700000000000000000",
                    "body": {"stringValue": "reading"},
                    "attributes": attrs
                }]}]
            }]
        })
    }

    fn kv(key: &str, value: Json) -> Json {
        serde_json::json!({"key": key, "value": value})
    }

    #[test]
    fn maps_every_known_attribute() {
        let body = record(serde_json::json!([
            kv("edge.record_id", serde_json::json!({"stringValue": "dev-a:7"})),
            kv("edge.seq", serde_json::json!({"intValue": "7"})),
            kv("edge.score", serde_json::json!({"doubleValue": 0.25})),
            kv("edge.anomaly", serde_json::json!({"boolValue": true})),
            kv("edge.model_version", serde_json::json!({"stringValue": "shuttle-int8"})),
            kv("edge.latency_us", serde_json::json!({"intValue": 130})),
            kv("edge.scored", serde_json::json!({"boolValue": true})),
            kv(
                "custom",
                serde_json::json!({"kvlistValue": {"values": [kv("a", serde_json::json!({"intValue": "1"}))]}})
            ),
        ]));
        let batch = parse(body.to_string().as_bytes()).unwrap();
        assert!(batch.rejected.is_empty());
        let r = &batch.records[0];
        assert_eq!(r.record_id, "dev-a:7");
        assert_eq!(r.device_id.as_deref(), Some("dev-a"));
        assert_eq!(r.seq, Some(7));
        assert_eq!(r.time_unix_nano, Some(1_700_000_000_000_000_000));
        assert_eq!(r.score, Some(0.25));
        assert_eq!(r.anomaly, Some(true));
        assert_eq!(r.model_version.as_deref(), Some("shuttle-int8"));
        assert_eq!(r.latency_us, Some(130.0));
        assert!(r.scored);
        assert_eq!(r.service_version.as_deref(), Some("1.2.3"));
        assert_eq!(Json::Object(r.attrs.clone()), serde_json::json!({"custom": {"a": 1}}));
        assert_eq!(
            Json::Object(r.resource_attrs.clone()),
            serde_json::json!({"host.arch": "wasm32"})
        );
        assert_eq!(r.body, Some(Json::String("reading".into())));
    }

    #[test]
    fn unscored_reading_and_fallbacks() {
        let mut body = record(serde_json::json!([
            kv("edge.record_id", serde_json::json!({"stringValue": "dev-b:42"})),
            kv("edge.scored", serde_json::json!({"boolValue": false})),
            kv(
                "edge.reading",
                serde_json::json!({"arrayValue": {"values": [{"doubleValue": 1.5}, {"doubleValue": "2"}]}})
            ),
            kv("edge.seq", serde_json::json!({"stringValue": "not an int"})),
        ]));
        body["resourceLogs"][0]["resource"] = Json::Null;
        let batch = parse(body.to_string().as_bytes()).unwrap();
        let r = &batch.records[0];
        assert_eq!(r.device_id.as_deref(), Some("dev-b"), "device from the record id");
        assert_eq!(r.seq, Some(42), "seq from the record id");
        assert_eq!(r.score, None);
        assert!(!r.scored);
        assert_eq!(r.reading, Some(vec![1.5, 2.0]));
        assert_eq!(
            r.attrs.get("edge.seq"),
            Some(&Json::String("not an int".into())),
            "mistyped kept"
        );
    }

    #[test]
    fn table_of_malformed_bodies() {
        let cases: &[(&str, &str)] = &[
            ("{", "malformed JSON"),
            ("not json", "malformed JSON"),
            ("[]", "not an OTLP"),
            (r#"{"resourceLogs": [[]]}"#, "not an OTLP"),
            (
                r#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": [["k", {}]]}]}]}]}"#,
                "not an OTLP",
            ),
            (r#"{"resourceLogs": {}}"#, "not an OTLP"),
            (
                r#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": {"a": 1}}]}]}]}"#,
                "not an OTLP",
            ),
            (
                r#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "12ab"}]}]}]}"#,
                "not an OTLP",
            ),
            (
                r#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": []}]}]}]}"#,
                "missing edge.record_id",
            ),
            (
                r#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": [{"key": "edge.record_id", "value": {"intValue": "3"}}]}]}]}]}"#,
                "missing edge.record_id",
            ),
        ];
        for (body, expected) in cases {
            let err = parse(body.as_bytes()).unwrap_err().to_string();
            assert!(err.contains(expected), "{body}: {err}");
        }
    }

    #[test]
    fn non_finite_reading_elements_are_kept() {
        let body = serde_json::json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": [
            kv("edge.record_id", serde_json::json!({"stringValue": "d:1"})),
            kv("edge.reading", serde_json::json!({"arrayValue": {"values": [
                {"doubleValue": "NaN"}, {"doubleValue": "Infinity"}, {"doubleValue": "-Infinity"}, {"doubleValue": 0.5}
            ]}})),
        ]}]}]}]});
        let batch = parse(body.to_string().as_bytes()).unwrap();
        assert!(batch.rejected.is_empty());
        let reading = batch.records[0].reading.clone().unwrap();
        assert!(reading[0].is_nan());
        assert_eq!(&reading[1..], [f64::INFINITY, f64::NEG_INFINITY, 0.5]);
        let json: Vec<Json> = reading.into_iter().map(double_to_json).collect();
        assert_eq!(Json::Array(json), serde_json::json!(["NaN", "Infinity", "-Infinity", 0.5]));
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let nested = |depth: usize| {
            let mut value = r#"{"doubleValue": 1}"#.to_owned();
            for _ in 0..depth {
                value = format!(r#"{{"arrayValue": {{"values": [{value}]}}}}"#);
            }
            format!(
                r#"{{"resourceLogs": [{{"scopeLogs": [{{"logRecords": [{{"attributes": [
                    {{"key": "edge.record_id", "value": {{"stringValue": "d:1"}}}},
                    {{"key": "deep", "value": {value}}}]}}]}}]}}]}}"#
            )
        };
        // Within serde_json's recursion limit: parsed and kept.
        let batch = parse(nested(35).as_bytes()).unwrap();
        assert!(batch.records[0].attrs.contains_key("deep"));
        // Far beyond it: a 400, not a stack overflow.
        for depth in [100, 1_000] {
            let err = parse(nested(depth).as_bytes()).unwrap_err().to_string();
            assert!(err.contains("recursion limit"), "{err}");
        }
    }

    #[test]
    fn empty_request_is_valid() {
        for body in ["{}", r#"{"resourceLogs": null}"#, r#"{"resourceLogs": []}"#] {
            assert_eq!(parse(body.as_bytes()).unwrap(), Batch::default());
        }
    }

    #[test]
    fn non_finite_values_reject_only_their_record() {
        for (attr, value) in [
            ("edge.score", serde_json::json!({"doubleValue": "NaN"})),
            ("edge.latency_us", serde_json::json!({"doubleValue": "Infinity"})),
            ("edge.score", serde_json::json!({"doubleValue": "-Infinity"})),
        ] {
            let body = serde_json::json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
                {"attributes": [kv("edge.record_id", serde_json::json!({"stringValue": "d:1"})), kv(attr, value)]},
                {"attributes": [kv("edge.record_id", serde_json::json!({"stringValue": "d:2"}))]}
            ]}]}]});
            let batch = parse(body.to_string().as_bytes()).unwrap();
            assert_eq!(batch.records.len(), 1, "{attr}");
            assert_eq!(batch.records[0].record_id, "d:2");
            assert_eq!(batch.rejected.len(), 1);
            assert!(batch.rejected[0].reason.contains(attr), "{attr}");
            let response: Json = serde_json::from_str(&batch.response_json()).unwrap();
            assert_eq!(response["partialSuccess"]["rejectedLogRecords"], "1");
        }
    }
}
