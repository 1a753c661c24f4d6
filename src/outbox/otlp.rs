//! The wire format: OTLP/HTTP JSON logs (`ExportLogsServiceRequest`), one log record per reading.
//!
//! Hand-written serde types for the few messages we send, following the protobuf JSON mapping:
//! camelCase field names, 64-bit integers as decimal strings, `AnyValue` as a one-key object,
//! non-finite doubles as `"NaN"` / `"Infinity"` / `"-Infinity"`. A pulled-in OTLP crate would
//! bring protobuf and tonic along for five structs. Attribute names and the non-finite encoding
//! come from [`edge_wire`], which the collector reads with; what acknowledges a batch is
//! [`edge_wire::response`].

use std::collections::BTreeMap;

use edge_wire::{attr, double, record_id};
use serde::{Serialize, Serializer};

use super::error::OutboxError;
use super::record::{Record, Scoring};
use super::store::OutboxStats;

/// `service.name` and the instrumentation scope name.
pub const SERVICE_NAME: &str = attr::SERVICE_NAME;
/// The log record body: every record is a score (or a reading awaiting one).
pub const BODY: &str = "anomaly score";
/// `SEVERITY_NUMBER_INFO`: a normal reading, scored or not.
pub const SEVERITY_INFO: i32 = 9;
/// `SEVERITY_NUMBER_WARN`: a reading the device flagged as an anomaly.
pub const SEVERITY_WARN: i32 = 13;

/// Who is sending: the resource every batch is attributed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The device id (`device.id`; also the prefix of every record id).
    pub device_id: String,
    /// The app version (`service.version`).
    pub service_version: String,
    /// What the device lost so far, sent with every batch so the collector can tell a seq gap
    /// it can explain (an eviction) from one it cannot.
    pub losses: Losses,
    /// The device's model state and history, sent with every batch.
    pub model: ModelTelemetry,
}

/// What a batch says of the device's model updates, as resource attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ModelTelemetry {
    /// The active model version (`edge.model.active`).
    pub active: Option<String>,
    /// Releases activated (`edge.model.activations_total`).
    pub activations: u64,
    /// Packages refused (`edge.model.refusals_total`).
    pub refusals: u64,
    /// Rollbacks (`edge.model.rollbacks_total`).
    pub rollbacks: u64,
    /// The latest event, `"<kind> <CODE> <version>"` (`edge.model.last_event`).
    pub last_event: Option<String>,
}

impl ModelTelemetry {
    fn attributes(&self) -> impl Iterator<Item = KeyValue> + '_ {
        let strings =
            [(attr::MODEL_ACTIVE, &self.active), (attr::MODEL_LAST_EVENT, &self.last_event)]
                .into_iter()
                .filter_map(|(key, v)| v.as_deref().map(|v| kv(key, string(v))));
        let counts = [
            (attr::MODEL_ACTIVATIONS_TOTAL, self.activations),
            (attr::MODEL_REFUSALS_TOTAL, self.refusals),
            (attr::MODEL_ROLLBACKS_TOTAL, self.rollbacks),
        ]
        .into_iter()
        .filter(|&(_, n)| n > 0)
        .map(|(key, n)| kv(key, int(n)));
        strings.chain(counts)
    }
}

impl Origin {
    /// A device that has lost nothing (yet).
    pub fn new(device_id: impl Into<String>, service_version: impl Into<String>) -> Origin {
        Origin {
            device_id: device_id.into(),
            service_version: service_version.into(),
            losses: Losses::default(),
            model: ModelTelemetry::default(),
        }
    }
}

/// Cumulative loss counters of a device, as resource attributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Losses {
    /// Readings not recorded at all, by reason code (`edge.dropped.<REASON>`).
    pub dropped: BTreeMap<String, u64>,
    /// Recorded readings evicted before they were sent (`edge.outbox.evicted_total`).
    pub evicted: u64,
    /// Dead-lettered readings dropped at the dead-letter cap
    /// (`edge.outbox.dead_letter_evicted_total`).
    pub dead_letter_evicted: u64,
}

impl Losses {
    /// The counters of a store's stats.
    pub fn of(stats: &OutboxStats) -> Losses {
        Losses {
            dropped: stats.dropped.clone(),
            evicted: stats.evicted_total,
            dead_letter_evicted: stats.dead_letter_evicted_total,
        }
    }

    /// The resource attributes: zero counters are left out, so a device that lost nothing sends
    /// none of them.
    fn attributes(&self) -> impl Iterator<Item = KeyValue> + '_ {
        let named = [
            (attr::EVICTED_TOTAL, self.evicted),
            (attr::DEAD_LETTER_EVICTED_TOTAL, self.dead_letter_evicted),
        ]
        .into_iter()
        .map(|(key, n)| (key.to_owned(), n));
        let dropped = self
            .dropped
            .iter()
            .map(|(reason, &n)| (format!("{}{reason}", attr::DROPPED_PREFIX), n));
        named.chain(dropped).filter(|&(_, n)| n > 0).map(|(key, n)| KeyValue { key, value: int(n) })
    }
}

/// `opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExportLogsServiceRequest {
    /// One entry: all our records share one resource.
    pub resource_logs: Vec<ResourceLogs>,
}

/// `ResourceLogs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceLogs {
    /// The device.
    pub resource: Resource,
    /// One entry: all our records share one scope.
    pub scope_logs: Vec<ScopeLogs>,
}

/// `Resource`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Resource {
    /// `service.name`, `service.version`, `device.id`.
    pub attributes: Vec<KeyValue>,
}

/// `ScopeLogs`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScopeLogs {
    /// The instrumentation scope: this crate.
    pub scope: Scope,
    /// One per reading.
    pub log_records: Vec<LogRecord>,
}

/// `InstrumentationScope`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Scope {
    /// Always [`SERVICE_NAME`].
    pub name: String,
    /// This crate's version.
    pub version: String,
}

/// `LogRecord`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogRecord {
    /// When the reading was taken, in ns, as a decimal string (fixed64).
    pub time_unix_nano: String,
    /// Same instant: the device observed the reading when it was taken.
    pub observed_time_unix_nano: String,
    /// [`SEVERITY_INFO`] or [`SEVERITY_WARN`].
    pub severity_number: i32,
    /// `"INFO"` or `"WARN"`.
    pub severity_text: String,
    /// Always [`BODY`].
    pub body: AnyValue,
    /// The `edge.*` attributes.
    pub attributes: Vec<KeyValue>,
}

/// `KeyValue`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyValue {
    /// Attribute name.
    pub key: String,
    /// Attribute value.
    pub value: AnyValue,
}

/// `AnyValue`: serializes as `{"stringValue": …}`, `{"intValue": "…"}` and so on.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum AnyValue {
    /// A string.
    StringValue(String),
    /// A boolean.
    BoolValue(bool),
    /// An int64, as its decimal string.
    IntValue(String),
    /// A double (kept as the f32 we have, which prints shorter and parses to the same float).
    DoubleValue(Double),
    /// An array of values.
    ArrayValue(ArrayValue),
}

/// `ArrayValue`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArrayValue {
    /// The elements.
    pub values: Vec<AnyValue>,
}

/// A double in the protobuf JSON mapping: a number, or `"NaN"`, `"Infinity"`, `"-Infinity"`
/// (plain JSON cannot carry those, and serde_json would write `null`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Double(pub f32);

impl Serialize for Double {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match double::non_finite_str(f64::from(self.0)) {
            Some(spelling) => s.serialize_str(spelling),
            None => s.serialize_f32(self.0),
        }
    }
}

fn kv(key: &str, value: AnyValue) -> KeyValue {
    KeyValue { key: key.to_owned(), value }
}

fn string(s: &str) -> AnyValue {
    AnyValue::StringValue(s.to_owned())
}

fn int(i: u64) -> AnyValue {
    AnyValue::IntValue(i.to_string())
}

/// The log record for one outbox record.
pub fn log_record(record: &Record, device_id: &str) -> LogRecord {
    // u64 holds nanoseconds until the year 2554; formatting a u128 costs several times more.
    let nanos = match record.timestamp_ms.checked_mul(1_000_000) {
        Some(ns) => ns.to_string(),
        None => (u128::from(record.timestamp_ms) * 1_000_000).to_string(),
    };
    let (severity_number, severity_text) =
        if record.is_anomaly() { (SEVERITY_WARN, "WARN") } else { (SEVERITY_INFO, "INFO") };
    let mut attributes = vec![
        kv(attr::RECORD_ID, string(&record_id::format(device_id, record.seq))),
        kv(attr::SEQ, int(record.seq)),
        kv(attr::SCORED, AnyValue::BoolValue(record.is_scored())),
    ];
    match &record.result {
        Scoring::Scored { score, anomaly, .. } => {
            attributes.push(kv(attr::SCORE, AnyValue::DoubleValue(Double(*score))));
            attributes.push(kv(attr::ANOMALY, AnyValue::BoolValue(*anomaly)));
        }
        Scoring::Unscored { .. } => attributes.push(kv(attr::ANOMALY, AnyValue::BoolValue(false))),
    }
    if let Some(version) = &record.model_version {
        attributes.push(kv(attr::MODEL_VERSION, string(version)));
    }
    attributes.push(kv(attr::LATENCY_US, int(record.latency_us)));
    let reading = match &record.result {
        Scoring::Scored { reading, .. } => reading.as_deref(),
        Scoring::Unscored { reading, .. } => Some(reading.as_slice()),
    };
    if let Some(reading) = reading {
        let values = reading.iter().map(|&v| AnyValue::DoubleValue(Double(v))).collect();
        attributes.push(kv(attr::READING, AnyValue::ArrayValue(ArrayValue { values })));
    }
    if let Scoring::Unscored { reason, .. } = &record.result {
        attributes.push(kv(attr::UNSCORED_REASON, string(reason)));
    }
    if let Scoring::Scored { contributions: Some(c), .. } = &record.result {
        let array = |values| AnyValue::ArrayValue(ArrayValue { values });
        let names = c.channels.iter().map(|c| string(&c.channel)).collect();
        let shares = c.channels.iter().map(|c| AnyValue::DoubleValue(Double(c.share))).collect();
        attributes.push(kv(attr::CONTRIBUTION_CHANNELS, array(names)));
        attributes.push(kv(attr::CONTRIBUTION_SHARES, array(shares)));
    }
    LogRecord {
        time_unix_nano: nanos.clone(),
        observed_time_unix_nano: nanos,
        severity_number,
        severity_text: severity_text.to_owned(),
        body: string(BODY),
        attributes,
    }
}

/// The request carrying `records` from `origin`.
pub fn request(records: &[Record], origin: &Origin) -> ExportLogsServiceRequest {
    let mut attributes = vec![
        kv(attr::SERVICE_NAME_KEY, string(SERVICE_NAME)),
        kv(attr::SERVICE_VERSION, string(&origin.service_version)),
        kv(attr::DEVICE_ID, string(&origin.device_id)),
    ];
    attributes.extend(origin.losses.attributes());
    attributes.extend(origin.model.attributes());
    let resource = Resource { attributes };
    let scope =
        Scope { name: SERVICE_NAME.to_owned(), version: env!("CARGO_PKG_VERSION").to_owned() };
    let log_records = records.iter().map(|r| log_record(r, &origin.device_id)).collect();
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource,
            scope_logs: vec![ScopeLogs { scope, log_records }],
        }],
    }
}

/// The compact JSON body for `records`.
pub fn encode(records: &[Record], origin: &Origin) -> Result<String, OutboxError> {
    to_json(&request(records, origin))
}

/// Sizes of bodies before building them, for cutting batches at a byte cap.
///
/// Compact JSON puts records in one array, so a body of records `r1..rn` is exactly
/// `envelope + Σ len(ri) + (n − 1)` bytes (the commas).
#[derive(Debug, Clone)]
pub struct BodySizer {
    origin: Origin,
    envelope: usize,
}

impl BodySizer {
    /// Measures the envelope (a body with no records) for `origin`.
    pub fn new(origin: &Origin) -> Result<BodySizer, OutboxError> {
        let envelope = encode(&[], origin)?.len();
        Ok(BodySizer { origin: origin.clone(), envelope })
    }

    /// Bytes of the body with no records.
    pub fn envelope(&self) -> usize {
        self.envelope
    }

    /// Bytes `record` adds to a body (its JSON; a comma comes on top when it is not the first).
    pub fn record_len(&self, record: &Record) -> Result<usize, OutboxError> {
        Ok(to_json(&log_record(record, &self.origin.device_id))?.len())
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<String, OutboxError> {
    serde_json::to_string(value).map_err(|e| OutboxError::Encode(e.to_string()))
}
