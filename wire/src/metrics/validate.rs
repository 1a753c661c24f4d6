//! What makes a [`DriftSnapshot`] fit to send and to store.
//!
//! The collector applies these rules to every snapshot it reads back, and the device applies
//! the same rules before it sends, so a snapshot the collector would refuse is left out on the
//! device instead of failing the whole export for the other model versions.

use crate::drift::DriftSnapshot;

use super::error::MetricsError;

/// Shares may miss 1 by rounding.
const SHARE_SUM_TOLERANCE: f64 = 1e-6;

/// Checks `s`: a non-empty model version; times in order; bounds finite and strictly
/// ascending; one bucket (and one expected share) more than bounds; buckets adding up to
/// `count`; at most `count` anomalies; a finite sum; a finite, non-negative drift index; rates
/// and shares in `[0, 1]`, shares adding up to 1; quantiles in `[0, 1]`, ascending, with finite
/// values.
pub fn validate(s: &DriftSnapshot) -> Result<(), MetricsError> {
    let version = s.model_version.as_str();
    let range = |field: &str, reason: String| MetricsError::OutOfRange {
        path: format!("{version}.{field}"),
        reason,
    };
    let finite = |field: &str, v: f64| {
        if v.is_finite() {
            Ok(())
        } else {
            Err(MetricsError::NonFinite { path: format!("{version}.{field}") })
        }
    };
    let mismatch =
        |reason: String| MetricsError::BucketMismatch { model_version: version.to_owned(), reason };
    if version.is_empty() {
        return Err(MetricsError::MissingModelVersion { path: "snapshot".to_owned() });
    }
    if s.start_time_unix_nano > s.time_unix_nano {
        return Err(range("startTimeUnixNano", "after timeUnixNano".to_owned()));
    }
    for (i, &b) in s.bounds.iter().enumerate() {
        finite(&format!("explicitBounds[{i}]"), b)?;
    }
    if s.bounds.windows(2).any(|w| w[0] >= w[1]) {
        return Err(range("explicitBounds", "not strictly ascending".to_owned()));
    }
    if s.bucket_counts.len() != s.bounds.len() + 1 {
        return Err(mismatch(format!(
            "{} bucket counts for {} bounds (want bounds + 1)",
            s.bucket_counts.len(),
            s.bounds.len()
        )));
    }
    if s.expected_shares.len() != s.bucket_counts.len() {
        return Err(mismatch(format!(
            "{} expected shares for {} buckets",
            s.expected_shares.len(),
            s.bucket_counts.len()
        )));
    }
    let total = s.bucket_counts.iter().try_fold(0u64, |acc, &n| acc.checked_add(n));
    if total != Some(s.count) {
        return Err(mismatch(format!(
            "bucket counts add up to {}, count is {}",
            total.map_or_else(|| "more than 2^64".to_owned(), |t| t.to_string()),
            s.count
        )));
    }
    if s.anomalies > s.count {
        return Err(range("anomalies", format!("{} anomalies of {}", s.anomalies, s.count)));
    }
    finite("sum", s.sum)?;
    finite("psi", s.psi)?;
    if s.psi < 0.0 {
        return Err(range("psi", format!("{} is negative", s.psi)));
    }
    unit(s.expected_anomaly_rate).map_err(|r| range("expectedAnomalyRate", r))?;
    for (i, &share) in s.expected_shares.iter().enumerate() {
        unit(share).map_err(|r| range(&format!("expectedShares[{i}]"), r))?;
    }
    let shares: f64 = s.expected_shares.iter().sum();
    if (shares - 1.0).abs() > SHARE_SUM_TOLERANCE {
        return Err(range("expectedShares", format!("add up to {shares}, not 1")));
    }
    for (i, &(q, v)) in s.quantiles.iter().enumerate() {
        unit(q).map_err(|r| range(&format!("quantileValues[{i}].quantile"), r))?;
        finite(&format!("quantileValues[{i}].value"), v)?;
    }
    if s.quantiles.windows(2).any(|w| w[0].0 >= w[1].0) {
        return Err(range("quantileValues", "quantiles not strictly ascending".to_owned()));
    }
    Ok(())
}

/// Ok for a value in `[0, 1]`; else why not.
fn unit(v: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(format!("{v} is not in [0, 1]"))
    }
}
