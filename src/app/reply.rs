//! What the app answers: [`ScoreReply`] for each scoring request and [`AppStatus`] for the
//! dashboard (or the gateway's log). Both serialize to the JSON the page reads.

use std::collections::BTreeMap;

use edge_wire::drift::DriftSnapshot;
use serde::Serialize;

use super::score::RowOutcome;
use crate::engine::Contributions;
use crate::outbox::{DeadLetter, FlushOutcome, OutboxStats};
use crate::update::{ModelEvent, ModelInfo};

/// One entry per reading, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ScoreReply {
    /// Score per reading; `None` when recorded unscored.
    pub scores: Vec<Option<f32>>,
    /// Why a reading was not scored; `None` when scored.
    pub reasons: Vec<Option<String>>,
    /// Anomaly flag per reading, from the active model's threshold (false when unscored).
    pub anomalies: Vec<bool>,
    /// Per reading, for a flagged one, which channels its score is about (every channel,
    /// largest share first); `None` otherwise.
    pub contributions: Vec<Option<Contributions>>,
    /// Scorer time for the whole request, µs.
    pub latency_us: f64,
    /// Set when the readings were scored but could not be recorded (`STORE_QUOTA`: storage is
    /// full); they are counted under that reason. Absent when they were recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub not_recorded: Option<&'static str>,
    /// Set when these readings made the watch roll a new model back (the reason); a host that
    /// stores its active model points it back too.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rolled_back: Option<String>,
    /// The schedule wants a flush now (a write while the endpoint answers): the host starts
    /// one in the background.
    #[serde(skip)]
    pub flush_due: bool,
}

impl ScoreReply {
    pub(super) fn new(outcomes: Vec<RowOutcome>, latency_us: f64) -> Self {
        let mut reply = ScoreReply {
            scores: Vec::with_capacity(outcomes.len()),
            reasons: Vec::with_capacity(outcomes.len()),
            anomalies: Vec::with_capacity(outcomes.len()),
            contributions: Vec::with_capacity(outcomes.len()),
            latency_us,
            not_recorded: None,
            rolled_back: None,
            flush_due: false,
        };
        for o in outcomes {
            reply.scores.push(o.score);
            reply.reasons.push(o.reason);
            reply.anomalies.push(o.anomaly);
            reply.contributions.push(o.contributions);
        }
        reply
    }
}

impl ScoreReply {
    /// One reply per request of a group, `sizes` readings each, in order: each gets its
    /// readings' entries, the group's latency shared by readings, and the group's flags (a due
    /// flush only once).
    pub(super) fn split(self, sizes: &[usize]) -> Vec<ScoreReply> {
        let total = sizes.iter().sum::<usize>().max(1) as f64;
        let (mut scores, mut reasons) = (self.scores.into_iter(), self.reasons.into_iter());
        let (mut anomalies, mut contributions) =
            (self.anomalies.into_iter(), self.contributions.into_iter());
        sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| ScoreReply {
                scores: scores.by_ref().take(n).collect(),
                reasons: reasons.by_ref().take(n).collect(),
                anomalies: anomalies.by_ref().take(n).collect(),
                contributions: contributions.by_ref().take(n).collect(),
                latency_us: self.latency_us * n as f64 / total,
                not_recorded: self.not_recorded,
                rolled_back: self.rolled_back.clone(),
                flush_due: self.flush_due && i == 0,
            })
            .collect()
    }
}

/// The app's state: device, model, outbox and sync.
#[derive(Debug, Clone, Serialize)]
pub struct AppStatus {
    /// Stable across restarts; part of every record id.
    pub device_id: String,
    /// The host's version.
    pub app_version: String,
    /// Whether a model scores.
    pub model_loaded: bool,
    /// The active model's version.
    pub model_version: Option<String>,
    /// The active model's version and signed subject digest.
    pub model: Option<ModelInfo>,
    /// The model a rollback would go back to.
    pub previous_model: Option<ModelInfo>,
    /// Model activations, refusals and rollbacks, oldest first.
    pub model_events: Vec<ModelEvent>,
    /// Values per reading the model takes.
    pub features: Option<usize>,
    /// Which implementation scores: `"dense"` (the fused MLP kernel), `"tract"`, or the
    /// host's stand-in (`"sandbox"`).
    pub engine_backend: Option<&'static str>,
    /// Scores above this are anomalies.
    pub threshold: f32,
    /// Where batches go.
    pub endpoint: String,
    /// Whether scored records carry their reading (`App::set_send_readings`).
    pub send_readings: bool,
    /// Queue, inflight, dead letters and totals.
    pub outbox: OutboxStats,
    /// Readings the app did not record, by reason code, ever.
    pub dropped: BTreeMap<String, u64>,
    /// Batches the collector refused for good, waiting for a redrive.
    pub dead_letters: Vec<DeadLetter>,
    /// A flush is running.
    pub flushing: bool,
    /// The last flush's outcome.
    pub last_flush: Option<FlushOutcome>,
    /// The active model version's score statistics against its training distribution (empty
    /// `bounds`: the package states none, so `psi` means nothing).
    pub drift: Option<DriftView>,
    /// What the drift exports to `/v1/metrics` did (they never fail a flush).
    pub metrics_export: super::MetricsExportStats,
}

/// A [`DriftSnapshot`] as a host shows it: times in milliseconds (a nanosecond timestamp is
/// beyond what a JavaScript number holds exactly) and the derived rate and mean.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DriftView {
    /// The model version the statistics describe.
    pub model_version: String,
    /// When this version first scored a reading here (ms since the epoch).
    pub start_ms: f64,
    /// When the statistics were taken (ms since the epoch).
    pub time_ms: f64,
    /// Readings scored.
    pub count: u64,
    /// Of those, flagged.
    pub anomalies: u64,
    /// `anomalies / count`.
    pub anomaly_rate: f64,
    /// What the model's metadata expects that rate to be on normal data.
    pub expected_anomaly_rate: f64,
    /// Mean score (`None` before the first score).
    pub mean: Option<f64>,
    /// Bin edges: the training score quantiles.
    pub bounds: Vec<f64>,
    /// Scores seen per bin (`bounds.len() + 1`).
    pub bucket_counts: Vec<u64>,
    /// The training data's share per bin.
    pub expected_shares: Vec<f64>,
    /// Observed score quantiles, `(q, score)`.
    pub quantiles: Vec<(f64, f64)>,
    /// Population stability index against the training distribution.
    pub psi: f64,
}

impl From<DriftSnapshot> for DriftView {
    fn from(s: DriftSnapshot) -> Self {
        DriftView {
            anomaly_rate: s.anomaly_rate(),
            mean: s.mean(),
            start_ms: s.start_time_unix_nano as f64 / 1e6,
            time_ms: s.time_unix_nano as f64 / 1e6,
            model_version: s.model_version,
            count: s.count,
            anomalies: s.anomalies,
            expected_anomaly_rate: s.expected_anomaly_rate,
            bounds: s.bounds,
            bucket_counts: s.bucket_counts,
            expected_shares: s.expected_shares,
            quantiles: s.quantiles,
            psi: s.psi,
        }
    }
}
