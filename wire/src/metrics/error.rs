//! Why a metrics body (or a snapshot about to be sent) was refused.
//!
//! Every variant names where the problem is, so a 400 tells the sender what to fix. Hand-written
//! `Display` and `Error`: this crate depends on serde alone.

use std::fmt;

/// A metrics body that cannot be read, or a snapshot that must not be written.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricsError {
    /// The body is not JSON (syntax error, truncated, not UTF-8).
    Json(String),
    /// A field is missing or has the wrong JSON type.
    Shape {
        /// Where, e.g. `resourceMetrics[0].scopeMetrics[0].metrics[2].gauge`.
        path: String,
        /// What was expected there.
        expected: &'static str,
    },
    /// A resource carries no non-empty `device.id` string attribute.
    MissingDeviceId {
        /// Which resource, e.g. `resourceMetrics[0]`.
        path: String,
    },
    /// A data point carries no non-empty `edge.model_version` string attribute.
    MissingModelVersion {
        /// Which data point.
        path: String,
    },
    /// A count is negative, fractional, non-finite or not a number.
    BadCount {
        /// Which field.
        path: String,
        /// The value as sent.
        value: String,
    },
    /// A double that must be finite is NaN or infinite.
    NonFinite {
        /// Which field.
        path: String,
    },
    /// A value is outside its range (a negative drift index, a rate above 1, times reversed,
    /// bounds not ascending, more anomalies than readings, …).
    OutOfRange {
        /// Which field.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// `bucketCounts` (or the expected shares) do not have one entry more than
    /// `explicitBounds`, or the buckets do not add up to `count`.
    BucketMismatch {
        /// The model version.
        model_version: String,
        /// What does not match.
        reason: String,
    },
    /// A metric of ours is not cumulative (or a Sum not monotonic).
    Temporality {
        /// The metric name.
        metric: String,
    },
    /// A metric of ours has another type than the one it is defined with.
    WrongType {
        /// The metric name.
        metric: String,
        /// The type it must have.
        expected: &'static str,
    },
    /// One resource sends two data points of one metric for the same model version.
    Duplicate {
        /// The metric name.
        metric: String,
        /// The model version.
        model_version: String,
    },
    /// The body holds more than one of the [`super::Limits`] allows.
    TooLarge {
        /// What there is too much of.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// The body could not be serialized (not expected with these types).
    Encode(String),
}

impl MetricsError {
    /// A stable code for logs and counters.
    pub fn code(&self) -> &'static str {
        match self {
            MetricsError::Json(_) => "JSON",
            MetricsError::Shape { .. } => "SHAPE",
            MetricsError::MissingDeviceId { .. } => "MISSING_DEVICE_ID",
            MetricsError::MissingModelVersion { .. } => "MISSING_MODEL_VERSION",
            MetricsError::BadCount { .. } => "BAD_COUNT",
            MetricsError::NonFinite { .. } => "NON_FINITE",
            MetricsError::OutOfRange { .. } => "OUT_OF_RANGE",
            MetricsError::BucketMismatch { .. } => "BUCKET_MISMATCH",
            MetricsError::Temporality { .. } => "TEMPORALITY",
            MetricsError::WrongType { .. } => "WRONG_TYPE",
            MetricsError::Duplicate { .. } => "DUPLICATE",
            MetricsError::TooLarge { .. } => "TOO_LARGE",
            MetricsError::Encode(_) => "ENCODE",
        }
    }

    /// Whether the body was refused for its size (HTTP 413) rather than its content (400).
    pub fn is_too_large(&self) -> bool {
        matches!(self, MetricsError::TooLarge { .. })
    }
}

impl fmt::Display for MetricsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricsError::Json(e) => write!(f, "malformed JSON: {e}"),
            MetricsError::Shape { path, expected } => write!(f, "{path}: expected {expected}"),
            MetricsError::MissingDeviceId { path } => {
                write!(f, "{path}: missing device.id (a non-empty stringValue resource attribute)")
            }
            MetricsError::MissingModelVersion { path } => {
                write!(f, "{path}: missing edge.model_version (a non-empty stringValue attribute)")
            }
            MetricsError::BadCount { path, value } => {
                write!(f, "{path}: {value} is not a non-negative integer count")
            }
            MetricsError::NonFinite { path } => write!(f, "{path}: must be a finite number"),
            MetricsError::OutOfRange { path, reason } => write!(f, "{path}: {reason}"),
            MetricsError::BucketMismatch { model_version, reason } => {
                write!(f, "model version {model_version:?}: {reason}")
            }
            MetricsError::Temporality { metric } => {
                write!(f, "{metric}: must be cumulative (and monotonic for a Sum)")
            }
            MetricsError::WrongType { metric, expected } => {
                write!(f, "{metric}: must be a {expected}")
            }
            MetricsError::Duplicate { metric, model_version } => {
                write!(f, "{metric}: two data points for model version {model_version:?}")
            }
            MetricsError::TooLarge { what, limit } => {
                write!(f, "more than {limit} {what} in one request")
            }
            MetricsError::Encode(e) => write!(f, "cannot encode metrics: {e}"),
        }
    }
}

impl std::error::Error for MetricsError {}
