//! `ExportMetricsServiceRequest` JSON → snapshots, per device: the subset [`super::encode`]
//! writes, read strictly.
//!
//! A request is refused whole (nothing to store) when it is not JSON, has the wrong shape,
//! lacks a device id or a model version, carries a bad count or value in one of our metrics
//! (see [`super::validate`]), or is over a [`Limits`] cap. Two things are not errors but
//! rejected data points, reported back as an OTLP partial success: metrics that are not ours
//! (another instrumentation's, or one of ours under a type we do not read), and a model
//! version that lacks one of the three metrics a snapshot needs (histogram, drift index,
//! anomalies).
//!
//! Integers are read from decimal strings or JSON integers; doubles from numbers, decimal
//! strings or the non-finite spellings; the temporality from its number or its name.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::attr;
use crate::double;
use crate::drift::DriftSnapshot;

use super::error::MetricsError;
use super::validate::validate;
use super::{CUMULATIVE, CUMULATIVE_NAME};

/// Caps on what one request may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// `resourceMetrics` entries.
    pub max_resources: usize,
    /// Data points in the whole request (ours and others').
    pub max_data_points: usize,
    /// Entries of one list: attributes, bounds, bucket counts, shares, quantiles, metrics.
    pub max_list_len: usize,
    /// Bytes of a device id or a model version.
    pub max_string_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_resources: 16,
            max_data_points: 4_096,
            max_list_len: 1_024,
            max_string_bytes: 256,
        }
    }
}

/// One device's snapshots.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceMetrics {
    /// `device.id`.
    pub device_id: String,
    /// `service.version`, when sent.
    pub service_version: Option<String>,
    /// One per model version, ordered by version.
    pub snapshots: Vec<DriftSnapshot>,
}

/// What a request said.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DecodedMetrics {
    /// One entry per resource.
    pub devices: Vec<DeviceMetrics>,
    /// Data points read but not turned into snapshots (OTLP `rejectedDataPoints`).
    pub rejected_data_points: u64,
    /// Why, one line per cause.
    pub messages: Vec<String>,
}

impl DecodedMetrics {
    /// The OTLP `errorMessage` for the rejected points (`None` when none were).
    pub fn error_message(&self) -> Option<String> {
        (!self.messages.is_empty()).then(|| self.messages.join("; "))
    }

    /// Snapshots over all devices.
    pub fn snapshot_count(&self) -> usize {
        self.devices.iter().map(|d| d.snapshots.len()).sum()
    }
}

/// Reads `body` under `limits`.
pub fn decode(body: &[u8], limits: &Limits) -> Result<DecodedMetrics, MetricsError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| MetricsError::Json(e.to_string()))?;
    let top = object(&value, "request")?;
    let mut reader = Reader { limits, points: 0, out: DecodedMetrics::default() };
    let resources = list(top, "resourceMetrics", "request", limits)?;
    if resources.len() > limits.max_resources {
        return Err(MetricsError::TooLarge { what: "resources", limit: limits.max_resources });
    }
    for (i, resource) in resources.iter().enumerate() {
        let device = reader.resource(resource, &format!("resourceMetrics[{i}]"))?;
        reader.out.devices.push(device);
    }
    Ok(reader.out)
}

/// One model version's parts, as they are found.
#[derive(Default)]
struct Parts {
    histogram: Option<Histogram>,
    psi: Option<f64>,
    anomalies: Option<(u64, f64)>,
    quantiles: Option<Vec<(f64, f64)>>,
    /// Data points seen for this version (rejected together if a part is missing).
    points: u64,
}

struct Histogram {
    start: u64,
    time: u64,
    count: u64,
    sum: f64,
    bounds: Vec<f64>,
    buckets: Vec<u64>,
    shares: Vec<f64>,
}

struct Reader<'l> {
    limits: &'l Limits,
    points: usize,
    out: DecodedMetrics,
}

impl Reader<'_> {
    fn resource(&mut self, value: &Value, path: &str) -> Result<DeviceMetrics, MetricsError> {
        let resource = object(value, path)?;
        let attrs_path = format!("{path}.resource");
        let attrs = match resource.get("resource") {
            Some(r) => attributes(object(r, &attrs_path)?, &attrs_path, self.limits)?,
            None => Vec::new(),
        };
        let device_id = string_attr(&attrs, attr::DEVICE_ID)
            .filter(|d| !d.is_empty())
            .ok_or_else(|| MetricsError::MissingDeviceId { path: path.to_owned() })?;
        self.check_string(device_id)?;
        let service_version = string_attr(&attrs, attr::SERVICE_VERSION).map(str::to_owned);
        let mut versions: BTreeMap<String, Parts> = BTreeMap::new();
        for (j, scope) in list(resource, "scopeMetrics", path, self.limits)?.iter().enumerate() {
            let scope_path = format!("{path}.scopeMetrics[{j}]");
            let scope = object(scope, &scope_path)?;
            for (k, metric) in list(scope, "metrics", &scope_path, self.limits)?.iter().enumerate()
            {
                self.metric(metric, &format!("{scope_path}.metrics[{k}]"), &mut versions)?;
            }
        }
        let mut snapshots = Vec::new();
        for (version, parts) in versions {
            match (parts.histogram, parts.psi, parts.anomalies) {
                (Some(h), Some(psi), Some((anomalies, rate))) => {
                    let snapshot = DriftSnapshot {
                        model_version: version,
                        start_time_unix_nano: h.start,
                        time_unix_nano: h.time,
                        count: h.count,
                        anomalies,
                        sum: h.sum,
                        bounds: h.bounds,
                        bucket_counts: h.buckets,
                        expected_shares: h.shares,
                        quantiles: parts.quantiles.unwrap_or_default(),
                        psi,
                        expected_anomaly_rate: rate,
                    };
                    validate(&snapshot)?;
                    snapshots.push(snapshot);
                }
                _ => {
                    self.out.rejected_data_points += parts.points;
                    self.out.messages.push(format!(
                        "model version {version:?} of {device_id:?}: a snapshot needs {}, {} and {}",
                        attr::METRIC_SCORE,
                        attr::METRIC_PSI,
                        attr::METRIC_ANOMALIES
                    ));
                }
            }
        }
        Ok(DeviceMetrics { device_id: device_id.to_owned(), service_version, snapshots })
    }

    fn metric(
        &mut self,
        value: &Value,
        path: &str,
        versions: &mut BTreeMap<String, Parts>,
    ) -> Result<(), MetricsError> {
        let metric = object(value, path)?;
        let name = metric
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| shape(format!("{path}.name"), "a string"))?;
        let (kind, expected) = match name {
            n if n == attr::METRIC_SCORE => ("histogram", "Histogram"),
            n if n == attr::METRIC_PSI => ("gauge", "Gauge"),
            n if n == attr::METRIC_ANOMALIES => ("sum", "Sum"),
            n if n == attr::METRIC_QUANTILES => ("summary", "Summary"),
            _ => return self.foreign(metric, name, path),
        };
        let data_path = format!("{path}.{kind}");
        let data = match metric.get(kind) {
            Some(data) => object(data, &data_path)?,
            None => {
                return Err(MetricsError::WrongType { metric: name.to_owned(), expected });
            }
        };
        if kind == "histogram" || kind == "sum" {
            cumulative(data, name)?;
        }
        if kind == "sum" && data.get("isMonotonic") != Some(&Value::Bool(true)) {
            return Err(MetricsError::Temporality { metric: name.to_owned() });
        }
        let points = list(data, "dataPoints", &data_path, self.limits)?;
        self.count_points(points.len())?;
        for (i, point) in points.iter().enumerate() {
            let point_path = format!("{data_path}.dataPoints[{i}]");
            let point = object(point, &point_path)?;
            let attrs = attributes(point, &point_path, self.limits)?;
            let version = string_attr(&attrs, attr::MODEL_VERSION)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| MetricsError::MissingModelVersion { path: point_path.clone() })?;
            self.check_string(version)?;
            let parts = versions.entry(version.to_owned()).or_default();
            parts.points += 1;
            let duplicate = || MetricsError::Duplicate {
                metric: name.to_owned(),
                model_version: version.to_owned(),
            };
            let p = &point_path;
            match kind {
                "histogram" => {
                    let h = self.histogram(point, &attrs, p)?;
                    parts.histogram.replace(h).map_or(Ok(()), |_| Err(duplicate()))?;
                }
                "gauge" => {
                    let psi = number(point, p)?;
                    parts.psi.replace(psi).map_or(Ok(()), |_| Err(duplicate()))?;
                }
                "sum" => {
                    let anomalies = match point.get("asInt") {
                        Some(v) => count(v, &format!("{p}.asInt"))?,
                        None => return Err(shape(format!("{p}.asInt"), "an integer count")),
                    };
                    let rate = double_attr(&attrs, attr::EXPECTED_ANOMALY_RATE, p)?;
                    parts
                        .anomalies
                        .replace((anomalies, rate))
                        .map_or(Ok(()), |_| Err(duplicate()))?;
                }
                _ => {
                    let q = self.quantiles(point, p)?;
                    parts.quantiles.replace(q).map_or(Ok(()), |_| Err(duplicate()))?;
                }
            }
        }
        Ok(())
    }

    /// A metric that is not ours: its data points are counted as rejected.
    fn foreign(
        &mut self,
        metric: &Map<String, Value>,
        name: &str,
        path: &str,
    ) -> Result<(), MetricsError> {
        let mut n = 0;
        for kind in ["gauge", "sum", "histogram", "exponentialHistogram", "summary"] {
            if let Some(Value::Object(data)) = metric.get(kind) {
                n += list(data, "dataPoints", path, self.limits)?.len();
            }
        }
        self.count_points(n)?;
        self.out.rejected_data_points += n as u64;
        self.out.messages.push(format!("{path}: metric {name:?} is not one this collector reads"));
        Ok(())
    }

    fn histogram(
        &self,
        point: &Map<String, Value>,
        attrs: &[(&str, &Value)],
        p: &str,
    ) -> Result<Histogram, MetricsError> {
        let field = |name: &str| format!("{p}.{name}");
        let required = |name: &str| point.get(name).ok_or_else(|| shape(field(name), "a value"));
        // Proto3 JSON may leave out a zero count or sum; the times are always set.
        let zero = Value::from(0);
        let or_zero = |name: &str| point.get(name).unwrap_or(&zero);
        let bounds = list(point, "explicitBounds", p, self.limits)?
            .iter()
            .enumerate()
            .map(|(i, v)| float(v, &format!("{p}.explicitBounds[{i}]")))
            .collect::<Result<_, _>>()?;
        let buckets = list(point, "bucketCounts", p, self.limits)?
            .iter()
            .enumerate()
            .map(|(i, v)| count(v, &format!("{p}.bucketCounts[{i}]")))
            .collect::<Result<_, _>>()?;
        let shares_path = format!("{p}.attributes.{}", attr::EXPECTED_SHARES);
        let shares = match any_value(attrs, attr::EXPECTED_SHARES) {
            Some(Value::Object(v)) => match v.get("arrayValue") {
                Some(Value::Object(array)) => list(array, "values", &shares_path, self.limits)?
                    .iter()
                    .enumerate()
                    .map(|(i, v)| double_value(v, &format!("{shares_path}[{i}]")))
                    .collect::<Result<_, _>>()?,
                _ => return Err(shape(shares_path, "an arrayValue of doubleValue")),
            },
            _ => return Err(shape(shares_path, "an arrayValue of doubleValue")),
        };
        Ok(Histogram {
            start: count(required("startTimeUnixNano")?, &field("startTimeUnixNano"))?,
            time: count(required("timeUnixNano")?, &field("timeUnixNano"))?,
            count: count(or_zero("count"), &field("count"))?,
            sum: float(or_zero("sum"), &field("sum"))?,
            bounds,
            buckets,
            shares,
        })
    }

    fn quantiles(
        &self,
        point: &Map<String, Value>,
        p: &str,
    ) -> Result<Vec<(f64, f64)>, MetricsError> {
        list(point, "quantileValues", p, self.limits)?
            .iter()
            .enumerate()
            .map(|(i, q)| {
                let qp = format!("{p}.quantileValues[{i}]");
                let q = object(q, &qp)?;
                // Proto3 JSON leaves out zeros: a missing quantile or value is 0.
                let get = |name: &str| match q.get(name) {
                    Some(v) => float(v, &format!("{qp}.{name}")),
                    None => Ok(0.0),
                };
                Ok((get("quantile")?, get("value")?))
            })
            .collect()
    }

    fn count_points(&mut self, n: usize) -> Result<(), MetricsError> {
        self.points += n;
        if self.points > self.limits.max_data_points {
            return Err(MetricsError::TooLarge {
                what: "data points",
                limit: self.limits.max_data_points,
            });
        }
        Ok(())
    }

    fn check_string(&self, s: &str) -> Result<(), MetricsError> {
        if s.len() > self.limits.max_string_bytes {
            return Err(MetricsError::TooLarge {
                what: "bytes in a device id or model version",
                limit: self.limits.max_string_bytes,
            });
        }
        Ok(())
    }
}

fn shape(path: String, expected: &'static str) -> MetricsError {
    MetricsError::Shape { path, expected }
}

fn object<'v>(value: &'v Value, path: &str) -> Result<&'v Map<String, Value>, MetricsError> {
    value.as_object().ok_or_else(|| shape(path.to_owned(), "an object"))
}

/// The array `name` of `parent` (absent or null: empty), at most `max_list_len` long.
fn list<'v>(
    parent: &'v Map<String, Value>,
    name: &str,
    path: &str,
    limits: &Limits,
) -> Result<&'v [Value], MetricsError> {
    let items = match parent.get(name) {
        None | Some(Value::Null) => return Ok(&[]),
        Some(Value::Array(items)) => items.as_slice(),
        Some(_) => return Err(shape(format!("{path}.{name}"), "an array")),
    };
    // Resources and data points have their own caps.
    if name != "resourceMetrics" && name != "dataPoints" && items.len() > limits.max_list_len {
        return Err(MetricsError::TooLarge {
            what: "entries in one list",
            limit: limits.max_list_len,
        });
    }
    Ok(items)
}

/// `attributes` of `parent` as `(key, AnyValue object)` pairs.
fn attributes<'v>(
    parent: &'v Map<String, Value>,
    path: &str,
    limits: &Limits,
) -> Result<Vec<(&'v str, &'v Value)>, MetricsError> {
    list(parent, "attributes", path, limits)?
        .iter()
        .enumerate()
        .map(|(i, kv)| {
            let kv_path = format!("{path}.attributes[{i}]");
            let kv = object(kv, &kv_path)?;
            let key = kv
                .get("key")
                .and_then(Value::as_str)
                .ok_or_else(|| shape(format!("{kv_path}.key"), "a string"))?;
            Ok((key, kv.get("value").unwrap_or(&Value::Null)))
        })
        .collect()
}

fn any_value<'v>(attrs: &[(&str, &'v Value)], key: &str) -> Option<&'v Value> {
    attrs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

fn string_attr<'v>(attrs: &[(&str, &'v Value)], key: &str) -> Option<&'v str> {
    any_value(attrs, key)?.get("stringValue")?.as_str()
}

/// A required `doubleValue` attribute.
fn double_attr(attrs: &[(&str, &Value)], key: &str, path: &str) -> Result<f64, MetricsError> {
    let path = format!("{path}.attributes.{key}");
    match any_value(attrs, key) {
        Some(v) => double_value(v, &path),
        None => Err(shape(path, "a doubleValue")),
    }
}

/// An `AnyValue` holding a double (`doubleValue`, or `intValue` for a whole number).
fn double_value(value: &Value, path: &str) -> Result<f64, MetricsError> {
    let expected = "a doubleValue";
    match (value.get("doubleValue"), value.get("intValue")) {
        (Some(v), _) => float(v, path),
        (None, Some(v)) => count(v, path).map(|n| n as f64),
        (None, None) => Err(shape(path.to_owned(), expected)),
    }
}

/// `NumberDataPoint.value` as a double.
fn number(point: &Map<String, Value>, path: &str) -> Result<f64, MetricsError> {
    match (point.get("asDouble"), point.get("asInt")) {
        (Some(v), _) => float(v, &format!("{path}.asDouble")),
        (None, Some(v)) => count(v, &format!("{path}.asInt")).map(|n| n as f64),
        (None, None) => Err(shape(format!("{path}.asDouble"), "a number")),
    }
}

fn float(value: &Value, path: &str) -> Result<f64, MetricsError> {
    double::from_json(value).ok_or_else(|| shape(path.to_owned(), "a number"))
}

/// A non-negative integer: a decimal string or a JSON integer.
fn count(value: &Value, path: &str) -> Result<u64, MetricsError> {
    let parsed = match value {
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        Value::Number(n) => n.as_u64(),
        _ => None,
    };
    parsed.ok_or_else(|| MetricsError::BadCount { path: path.to_owned(), value: value.to_string() })
}

fn cumulative(data: &Map<String, Value>, metric: &str) -> Result<(), MetricsError> {
    let ok = match data.get("aggregationTemporality") {
        Some(Value::Number(n)) => n.as_u64() == Some(CUMULATIVE),
        Some(Value::String(s)) => s == CUMULATIVE_NAME,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(MetricsError::Temporality { metric: metric.to_owned() })
    }
}
