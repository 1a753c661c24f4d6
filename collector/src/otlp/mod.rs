//! OTLP/HTTP JSON `ExportLogsServiceRequest` → typed [`Record`]s.
//!
//! The wire types ([`wire`]) follow the protobuf JSON mapping and are liberal: unknown fields are
//! ignored and every known field is optional. [`parse`] then checks the request against the
//! [`Limits`] and maps each log record onto the columns the store knows. The rules:
//! - a request over any limit is refused whole ([`ParseError::Limit`], answered 413);
//! - a record without a non-empty `edge.record_id` string makes the whole request malformed
//!   (the caller answers 400 and stores nothing);
//! - a record with a non-finite `edge.score` or `edge.latency_us` is rejected on its own and
//!   reported through OTLP `partialSuccess`; the others are stored. A non-finite element of
//!   `edge.reading` is *not* a reason to reject: a broken sensor value is exactly the kind of
//!   raw reading the device could not score, so it is stored (as `"NaN"`, `"Infinity"`, …);
//! - a record whose `edge.contributions.*` are not sound (one without the other, unequal
//!   lengths, a share outside `[0, 1]`, on an unscored record, …: see [`contributions`]) is
//!   rejected on its own in the same way, mistyped ones included;
//! - any other `edge.*` attribute with an unexpected value type does not fill its column and is
//!   kept in the leftover attributes instead, like any unknown attribute;
//! - a resource's leftover attributes are kept once per resource ([`Batch::resources`]), not
//!   copied into each of its records.

mod attributes;
pub mod contributions;
mod limits;
pub mod response;
mod wire;

use std::borrow::Cow;

use edge_wire::attr;
use serde_json::{Map, Value as Json};

use attributes::Attributes;
pub use contributions::{Contribution, ContributionError};
pub use limits::{Limits, MAX_CHANNEL_BYTES, MAX_CONTRIBUTIONS};
pub use response::Rejected;
use wire::{ExportLogsServiceRequest, LogRecord, Obj};

/// Record attribute: globally unique id `"{device_id}:{seq}"` (stringValue). Required.
pub const ATTR_RECORD_ID: &str = attr::RECORD_ID;
/// Record attribute: per-device sequence number (intValue).
pub const ATTR_SEQ: &str = attr::SEQ;
/// Record attribute: anomaly score (doubleValue); absent for unscored readings.
pub const ATTR_SCORE: &str = attr::SCORE;
/// Record attribute: whether the score crossed the threshold (boolValue).
pub const ATTR_ANOMALY: &str = attr::ANOMALY;
/// Record attribute: version of the model that scored the reading (stringValue).
pub const ATTR_MODEL_VERSION: &str = attr::MODEL_VERSION;
/// Record attribute: scoring latency in microseconds (intValue or doubleValue).
pub const ATTR_LATENCY_US: &str = attr::LATENCY_US;
/// Record attribute: false for a raw reading that still needs scoring in the cloud (boolValue).
pub const ATTR_SCORED: &str = attr::SCORED;
/// Record attribute: the raw reading (arrayValue of doubleValue).
pub const ATTR_READING: &str = attr::READING;
/// Resource attribute (or record attribute as a fallback): the device id (stringValue).
pub const ATTR_DEVICE_ID: &str = attr::DEVICE_ID;
/// Resource attribute: the app version (stringValue).
pub const ATTR_SERVICE_VERSION: &str = attr::SERVICE_VERSION;

/// A double as JSON the way protobuf JSON writes it: a number, or the string `"NaN"`,
/// `"Infinity"` or `"-Infinity"` (the shared encoding of [`edge_wire::double`]).
pub fn double_to_json(d: f64) -> Json {
    edge_wire::double::to_json(d)
}

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
    /// The request exceeds one of the [`Limits`].
    #[error("request over a limit: {0}")]
    Limit(String),
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
    /// `edge.contributions.channels` with `edge.contributions.shares`, largest share first.
    pub contributions: Option<Vec<Contribution>>,
    /// Record attributes not mapped to a column above, as plain JSON.
    pub attrs: Map<String, Json>,
    /// Index of the record's resource in [`Batch::resources`].
    pub resource: usize,
    /// The log record body, as plain JSON, if any.
    pub body: Option<Json>,
}

/// The outcome of parsing one request body.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Records to store, in request order.
    pub records: Vec<Record>,
    /// Each resource's attributes not mapped to a column, as plain JSON, one per
    /// `resourceLogs` entry.
    pub resources: Vec<Map<String, Json>>,
    /// Records rejected individually.
    pub rejected: Vec<Rejected>,
}

impl Batch {
    /// The OTLP/HTTP JSON response body for this batch as parsed (before storage adds any
    /// conflicts): `{}`, or `{"partialSuccess": {...}}` when some records were rejected.
    pub fn response_json(&self) -> String {
        response::body(&self.rejected)
    }
}

/// Parses a decoded (uncompressed) request body with the default [`Limits`].
pub fn parse(body: &[u8]) -> Result<Batch, ParseError> {
    parse_with(body, &Limits::default())
}

/// Parses a decoded (uncompressed) request body, refusing it if it exceeds `limits`.
pub fn parse_with(body: &[u8], limits: &Limits) -> Result<Batch, ParseError> {
    // One pass over the whole body checks its UTF-8, rather than one call per string.
    let text = std::str::from_utf8(body)
        .map_err(|e| ParseError::Json(format!("the body is not UTF-8: {e}")))?;
    let Obj(request): Obj<ExportLogsServiceRequest<'_>> = serde_json::from_str(text)?;
    check_limits(&request, limits).map_err(ParseError::Limit)?;
    let mut batch = Batch::default();
    for (ri, Obj(resource_logs)) in request.resource_logs.into_iter().enumerate() {
        let mut resource =
            Attributes::new(resource_logs.resource.map(|r| r.0.attributes).unwrap_or_default());
        let resource_device = resource.take_str(ATTR_DEVICE_ID);
        let service_version = resource.take_str(ATTR_SERVICE_VERSION);
        let resource_index = batch.resources.len();
        batch.resources.push(resource.into_json());
        for (si, Obj(scope_logs)) in resource_logs.scope_logs.into_iter().enumerate() {
            for (li, Obj(log)) in scope_logs.log_records.into_iter().enumerate() {
                let location = Location { ri, si, li };
                let context = ResourceContext {
                    index: resource_index,
                    device: resource_device.as_deref(),
                    service_version: service_version.as_deref(),
                };
                match map_record(log, &location, &context)? {
                    Ok(record) => batch.records.push(record),
                    Err(rejected) => batch.rejected.push(rejected),
                }
            }
        }
    }
    Ok(batch)
}

/// Every limit, checked before anything is mapped or copied.
fn check_limits(request: &ExportLogsServiceRequest<'_>, limits: &Limits) -> Result<(), String> {
    let mut records = 0usize;
    for (ri, Obj(resource_logs)) in request.resource_logs.iter().enumerate() {
        if let Some(Obj(resource)) = &resource_logs.resource {
            limits
                .check_attributes(&resource.attributes, &format!("resourceLogs[{ri}].resource"))?;
        }
        for (si, Obj(scope_logs)) in resource_logs.scope_logs.iter().enumerate() {
            records += scope_logs.log_records.len();
            if records > limits.max_records {
                return Err(format!("more than {} log records in one request", limits.max_records));
            }
            for (li, Obj(log)) in scope_logs.log_records.iter().enumerate() {
                let location = Location { ri, si, li };
                limits.check_attributes(&log.attributes, &location)?;
                if let Some(Obj(body)) = &log.body {
                    limits.check_value(body, &location)?;
                }
            }
        }
    }
    Ok(())
}

/// Where a log record sits in the request, written out only for an error message.
struct Location {
    ri: usize,
    si: usize,
    li: usize,
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Location { ri, si, li } = self;
        write!(f, "resourceLogs[{ri}].scopeLogs[{si}].logRecords[{li}]")
    }
}

/// What a record takes from its resource.
struct ResourceContext<'a> {
    index: usize,
    device: Option<&'a str>,
    service_version: Option<&'a str>,
}

fn map_record(
    log: LogRecord<'_>,
    location: &Location,
    resource: &ResourceContext<'_>,
) -> Result<Result<Record, Rejected>, ParseError> {
    let mut attrs = Attributes::new(log.attributes);
    let record_id = attrs
        .take_str(ATTR_RECORD_ID)
        .filter(|id| !id.is_empty())
        .ok_or_else(|| ParseError::MissingRecordId { location: location.to_string() })?
        .into_owned();
    let (id_device, id_seq) = split_record_id(&record_id);

    let record_device = attrs.take_str(ATTR_DEVICE_ID);
    let device_id = resource
        .device
        .map(str::to_owned)
        .or_else(|| record_device.map(Cow::into_owned))
        .or_else(|| id_device.map(str::to_owned));
    let seq = attrs.take_int(ATTR_SEQ).or(id_seq);
    let score = attrs.take_number(ATTR_SCORE);
    let anomaly = attrs.take_bool(ATTR_ANOMALY);
    let model_version = attrs.take_str(ATTR_MODEL_VERSION).map(Cow::into_owned);
    let latency_us = attrs.take_number(ATTR_LATENCY_US);
    let scored = attrs.take_bool(ATTR_SCORED).unwrap_or(score.is_some());
    let reading = attrs.take_double_array(ATTR_READING);
    let contributions = contributions::take(&mut attrs, scored);
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
    let contributions = match contributions {
        Ok(contributions) => contributions,
        Err(e) => return reject(&e.to_string()),
    };

    Ok(Ok(Record {
        record_id,
        device_id,
        seq,
        time_unix_nano,
        score,
        anomaly,
        model_version,
        latency_us,
        scored,
        service_version: resource.service_version.map(str::to_owned),
        reading,
        contributions,
        attrs: attrs.into_json(),
        resource: resource.index,
        body: log.body.map(|b| b.0.into_json()).filter(|b| !b.is_null()),
    }))
}

/// The device and seq a record id names, where it follows the shared
/// [`edge_wire::record_id`] form; either may be unusable.
fn split_record_id(id: &str) -> (Option<&str>, Option<i64>) {
    match edge_wire::record_id::parse(id) {
        Some((device, seq)) => (Some(device).filter(|d| !d.is_empty()), i64::try_from(seq).ok()),
        // No usable seq: the device part alone may still name the device.
        None => (id.rsplit_once(':').map(|(d, _)| d).filter(|d| !d.is_empty()), None),
    }
}

#[cfg(test)]
mod tests;
