//! Drift statistics as OTLP metrics: the `ExportMetricsServiceRequest` JSON a device posts to
//! `/v1/metrics`, and the reader the collector takes it back with.
//!
//! Each [`DriftSnapshot`] becomes, under data-point attribute [`attr::MODEL_VERSION`]:
//!
//! - a cumulative Histogram [`attr::METRIC_SCORE`]: `explicitBounds` = the snapshot's bounds,
//!   `bucketCounts`, `count`, `sum`, start and end times; the training distribution's shares
//!   per bucket ride along as attribute [`attr::EXPECTED_SHARES`];
//! - a Gauge [`attr::METRIC_PSI`]: the population stability index;
//! - a monotonic cumulative Sum [`attr::METRIC_ANOMALIES`], with the rate the model expects as
//!   attribute [`attr::EXPECTED_ANOMALY_RATE`];
//! - a Summary [`attr::METRIC_QUANTILES`] when the snapshot has quantiles.
//!
//! The two reference attributes are fixed per model version, so they never split a series.
//! A histogram, not a gauge per bucket, because that is the type every metrics backend reads
//! as a distribution (heat maps, quantile estimates, comparisons across devices). Cumulative
//! temporality makes delivery forgiving: a lost export is superseded by the next one, and a
//! repeated one says nothing new, so metrics need no outbox, idempotency key or retry queue.
//!
//! The resource is the one the logs carry (`device.id`, `service.name`, `service.version`).
//! Reading back is strict about what is ours (see [`decode`]) and counts what is not as
//! rejected data points rather than failing the request.

mod decode;
mod encode;
mod error;
mod validate;

pub use decode::{decode, DecodedMetrics, DeviceMetrics, Limits};
pub use encode::{encode, MetricsResource};
pub use error::MetricsError;
pub use validate::validate;

use crate::attr;
#[cfg(doc)]
use crate::drift::DriftSnapshot;

/// `AGGREGATION_TEMPORALITY_CUMULATIVE` as a number (the JSON mapping's integer form).
pub const CUMULATIVE: u64 = 2;
/// `AGGREGATION_TEMPORALITY_CUMULATIVE` by name (the JSON mapping accepts both forms).
pub const CUMULATIVE_NAME: &str = "AGGREGATION_TEMPORALITY_CUMULATIVE";

/// The metric names this module writes and reads, in the order they are written.
pub const METRIC_NAMES: [&str; 4] =
    [attr::METRIC_SCORE, attr::METRIC_PSI, attr::METRIC_ANOMALIES, attr::METRIC_QUANTILES];

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests;
