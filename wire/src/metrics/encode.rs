//! Snapshots → `ExportMetricsServiceRequest` JSON (the protobuf JSON mapping: camelCase
//! fields, 64-bit integers as decimal strings, non-finite doubles spelled as in
//! [`crate::double`]).
//!
//! One resource (the device), one scope, and one metric of each kind with a data point per
//! snapshot; see the module above for what each metric carries.

use serde::{Serialize, Serializer};

use crate::attr;
use crate::double;
use crate::drift::DriftSnapshot;

use super::error::MetricsError;
use super::CUMULATIVE;

/// The resource attributes of an export: the same ones the device's logs carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsResource {
    /// `device.id`.
    pub device_id: String,
    /// `service.version`: the app version (also the scope version).
    pub service_version: String,
}

/// The compact JSON body carrying `snapshots` from `resource`. A snapshot without quantiles
/// gets no Summary data point. Snapshots are written as given: check them with
/// [`super::validate`] first.
pub fn encode(
    snapshots: &[DriftSnapshot],
    resource: &MetricsResource,
) -> Result<String, MetricsError> {
    serde_json::to_string(&request(snapshots, resource))
        .map_err(|e| MetricsError::Encode(e.to_string()))
}

fn request(snapshots: &[DriftSnapshot], resource: &MetricsResource) -> Request {
    let attributes = vec![
        kv(attr::SERVICE_NAME_KEY, string(attr::SERVICE_NAME)),
        kv(attr::SERVICE_VERSION, string(&resource.service_version)),
        kv(attr::DEVICE_ID, string(&resource.device_id)),
    ];
    let histogram = snapshots.iter().map(histogram_point).collect();
    let psi =
        snapshots.iter().map(|s| number_point(s, Vec::new(), Number::AsDouble(Double(s.psi))));
    let anomalies = snapshots.iter().map(|s| {
        let rate =
            kv(attr::EXPECTED_ANOMALY_RATE, AnyValue::Double(Double(s.expected_anomaly_rate)));
        number_point(s, vec![rate], Number::AsInt(s.anomalies.to_string()))
    });
    let quantiles: Vec<_> =
        snapshots.iter().filter(|s| !s.quantiles.is_empty()).map(summary_point).collect();
    let mut metrics = vec![
        Metric {
            name: attr::METRIC_SCORE,
            description: "Anomaly scores per model version, over the training quantiles",
            unit: "1",
            data: Data::Histogram { aggregation_temporality: CUMULATIVE, data_points: histogram },
        },
        Metric {
            name: attr::METRIC_PSI,
            description: "Population stability index of the scores against training",
            unit: "1",
            data: Data::Gauge { data_points: psi.collect() },
        },
        Metric {
            name: attr::METRIC_ANOMALIES,
            description: "Readings flagged as anomalies",
            unit: "{reading}",
            data: Data::Sum {
                aggregation_temporality: CUMULATIVE,
                is_monotonic: true,
                data_points: anomalies.collect(),
            },
        },
    ];
    if !quantiles.is_empty() {
        metrics.push(Metric {
            name: attr::METRIC_QUANTILES,
            description: "Quantiles of the anomaly scores (streaming sketch)",
            unit: "1",
            data: Data::Summary { data_points: quantiles },
        });
    }
    Request {
        resource_metrics: [ResourceMetrics {
            resource: Resource { attributes },
            scope_metrics: [ScopeMetrics {
                scope: Scope {
                    name: attr::SERVICE_NAME,
                    version: resource.service_version.clone(),
                },
                metrics,
            }],
        }],
    }
}

fn version_attr(s: &DriftSnapshot) -> KeyValue {
    kv(attr::MODEL_VERSION, string(&s.model_version))
}

fn histogram_point(s: &DriftSnapshot) -> HistogramPoint {
    let shares = s.expected_shares.iter().map(|&v| AnyValue::Double(Double(v))).collect();
    HistogramPoint {
        attributes: vec![
            version_attr(s),
            kv(attr::EXPECTED_SHARES, AnyValue::Array { values: shares }),
        ],
        start_time_unix_nano: s.start_time_unix_nano.to_string(),
        time_unix_nano: s.time_unix_nano.to_string(),
        count: s.count.to_string(),
        sum: Double(s.sum),
        bucket_counts: s.bucket_counts.iter().map(u64::to_string).collect(),
        explicit_bounds: s.bounds.iter().copied().map(Double).collect(),
    }
}

fn number_point(s: &DriftSnapshot, extra: Vec<KeyValue>, value: Number) -> NumberPoint {
    let mut attributes = vec![version_attr(s)];
    attributes.extend(extra);
    NumberPoint {
        attributes,
        start_time_unix_nano: s.start_time_unix_nano.to_string(),
        time_unix_nano: s.time_unix_nano.to_string(),
        value,
    }
}

fn summary_point(s: &DriftSnapshot) -> SummaryPoint {
    SummaryPoint {
        attributes: vec![version_attr(s)],
        start_time_unix_nano: s.start_time_unix_nano.to_string(),
        time_unix_nano: s.time_unix_nano.to_string(),
        count: s.count.to_string(),
        sum: Double(s.sum),
        quantile_values: s
            .quantiles
            .iter()
            .map(|&(q, v)| Quantile { quantile: Double(q), value: Double(v) })
            .collect(),
    }
}

fn kv(key: &'static str, value: AnyValue) -> KeyValue {
    KeyValue { key, value }
}

fn string(s: &str) -> AnyValue {
    AnyValue::String(s.to_owned())
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Request {
    resource_metrics: [ResourceMetrics; 1],
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResourceMetrics {
    resource: Resource,
    scope_metrics: [ScopeMetrics; 1],
}

#[derive(Serialize)]
struct Resource {
    attributes: Vec<KeyValue>,
}

#[derive(Serialize)]
struct ScopeMetrics {
    scope: Scope,
    metrics: Vec<Metric>,
}

#[derive(Serialize)]
struct Scope {
    name: &'static str,
    version: String,
}

#[derive(Serialize)]
struct Metric {
    name: &'static str,
    description: &'static str,
    unit: &'static str,
    /// Written as one member named after the type: `"histogram": {…}`.
    #[serde(flatten)]
    data: Data,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Data {
    #[serde(rename_all = "camelCase")]
    Histogram { aggregation_temporality: u64, data_points: Vec<HistogramPoint> },
    #[serde(rename_all = "camelCase")]
    Gauge { data_points: Vec<NumberPoint> },
    #[serde(rename_all = "camelCase")]
    Sum { aggregation_temporality: u64, is_monotonic: bool, data_points: Vec<NumberPoint> },
    #[serde(rename_all = "camelCase")]
    Summary { data_points: Vec<SummaryPoint> },
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HistogramPoint {
    attributes: Vec<KeyValue>,
    start_time_unix_nano: String,
    time_unix_nano: String,
    count: String,
    sum: Double,
    bucket_counts: Vec<String>,
    explicit_bounds: Vec<Double>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct NumberPoint {
    attributes: Vec<KeyValue>,
    start_time_unix_nano: String,
    time_unix_nano: String,
    #[serde(flatten)]
    value: Number,
}

/// `NumberDataPoint.value`: `"asDouble": 0.1` or `"asInt": "5"`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
enum Number {
    AsDouble(Double),
    AsInt(String),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SummaryPoint {
    attributes: Vec<KeyValue>,
    start_time_unix_nano: String,
    time_unix_nano: String,
    count: String,
    sum: Double,
    quantile_values: Vec<Quantile>,
}

#[derive(Serialize)]
struct Quantile {
    quantile: Double,
    value: Double,
}

#[derive(Serialize)]
struct KeyValue {
    key: &'static str,
    value: AnyValue,
}

/// `AnyValue`: `{"stringValue": …}` and so on.
#[derive(Serialize)]
enum AnyValue {
    #[serde(rename = "stringValue")]
    String(String),
    #[serde(rename = "doubleValue")]
    Double(Double),
    #[serde(rename = "arrayValue")]
    Array { values: Vec<AnyValue> },
}

/// A double in the protobuf JSON mapping: a number, or its non-finite spelling.
#[derive(Clone, Copy)]
struct Double(f64);

impl Serialize for Double {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match double::non_finite_str(self.0) {
            Some(spelling) => s.serialize_str(spelling),
            None => s.serialize_f64(self.0),
        }
    }
}
