//! Score statistics per model version, as the device keeps them and the collector stores them.
//!
//! A device keeps, for each model version that scored its readings, cumulative statistics since
//! that version first scored there: how many readings, how many were flagged, the score sum,
//! the scores' distribution over bins whose edges are the training distribution's quantiles,
//! quantiles of the observed scores, and a drift measure (the population stability index of the
//! observed bins against the training ones). [`DriftSnapshot`] is that state at one moment; it is
//! what travels to the collector (as OTLP metrics) and what the collector keeps, latest per
//! device and model version. Cumulative values make a lost or repeated export harmless: the next
//! one carries the totals again.

use serde::{Deserialize, Serialize};

/// One model version's score statistics on one device, cumulative since `start_time_unix_nano`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftSnapshot {
    /// The model version the statistics describe.
    pub model_version: String,
    /// When this version first scored a reading on the device (ns since the epoch).
    pub start_time_unix_nano: u64,
    /// When the snapshot was taken (ns since the epoch).
    pub time_unix_nano: u64,
    /// Readings this version scored (finite scores only).
    pub count: u64,
    /// Of those, how many crossed the threshold.
    pub anomalies: u64,
    /// Sum of the scores.
    pub sum: f64,
    /// Bin edges, ascending: the training score distribution's quantiles (OTLP explicit bucket
    /// bounds). Bin `i` holds scores `<= bounds[i]` and `> bounds[i - 1]`.
    pub bounds: Vec<f64>,
    /// Scores per bin; `bounds.len() + 1` entries (the last bin is above every edge).
    pub bucket_counts: Vec<u64>,
    /// The training distribution's share of held-out normal scores per bin (sums to 1), the
    /// reference the drift measure compares against; same length as `bucket_counts`.
    pub expected_shares: Vec<f64>,
    /// Quantiles of the observed scores from the device's streaming sketch: `(q, score)` pairs,
    /// `q` in `[0, 1]` ascending.
    pub quantiles: Vec<(f64, f64)>,
    /// Population stability index of `bucket_counts` against `expected_shares` (0 = same
    /// distribution; above 0.25 is conventionally a significant shift).
    pub psi: f64,
    /// The anomaly rate the model's metadata expects on normal data.
    pub expected_anomaly_rate: f64,
}

impl DriftSnapshot {
    /// The observed anomaly rate (0 when nothing was scored).
    pub fn anomaly_rate(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.anomalies as f64 / self.count as f64
        }
    }

    /// The mean score (`None` when nothing was scored).
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}
