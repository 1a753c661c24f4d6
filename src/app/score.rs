//! [`score_rows`]: one outcome per reading of a request, so no reading is refused for its
//! neighbours' sake; [`Scorer`]: what scores them.
//!
//! Readings with a NaN or infinite value (a sensor dropped out) are not scored but recorded raw
//! with the reason `NON_FINITE`; the finite readings of the same request are scored together. When
//! the model cannot score at all (none loaded, inference failed, a sandbox out of fuel) every
//! reading is recorded raw with the scorer's reason code. Only a request the model cannot read (wrong number of values per
//! reading) is refused, as a whole.
//!
//! A flagged reading also gets its contributions — which channels its score is about — when the
//! scorer is the engine and the model's score can be broken down; that costs a search per
//! flagged reading, never anything for normal ones, and is left out of the latency figures.

use serde::Serialize;

use crate::engine::{ChannelMap, Contributions, Engine, EngineError, ModelSlot};
use crate::outbox::Entry;

/// Reason recorded with a reading that has a NaN or infinite value.
pub const NON_FINITE: &str = "NON_FINITE";

/// What the page learns about one reading.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RowOutcome {
    /// The anomaly score, or `None` when the reading was recorded unscored.
    pub score: Option<f32>,
    /// Why it was not scored (`NON_FINITE`, `NOT_LOADED`, `INFERENCE`), or `None`.
    pub reason: Option<String>,
    /// Whether the score crossed the model's threshold (false when unscored).
    pub anomaly: bool,
    /// For a flagged reading, every channel's share of its score, largest first; `None` for
    /// normal readings and where the scorer cannot say.
    pub contributions: Option<Contributions>,
}

/// The readings of one request, ready to record, and what to tell the page.
#[derive(Debug)]
pub struct ScoredRows {
    /// One entry per reading, in order.
    pub entries: Vec<Entry>,
    /// One outcome per reading, in order.
    pub outcomes: Vec<RowOutcome>,
    /// Time spent in the engine, µs.
    pub elapsed_us: f64,
}

/// Why a scorer scored nothing: a reason code (an engine code such as `NOT_LOADED` or
/// `INFERENCE`, or a host's own such as `SANDBOX_FUEL`) recorded with each reading, and a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreError {
    /// The reason code recorded with the readings.
    pub code: &'static str,
    /// What went wrong, for logs.
    pub message: String,
}

impl From<EngineError> for ScoreError {
    fn from(e: EngineError) -> Self {
        ScoreError { code: e.code(), message: e.to_string() }
    }
}

/// Scores finite readings with the active model: the engine in the model slot, or a host's
/// stand-in for it (the gateway's sandbox) holding the same model.
pub trait Scorer {
    /// Values per reading the model takes; `None` when no model is loaded.
    fn features(&self) -> Option<usize>;

    /// Most readings one call takes.
    fn max_rows(&self) -> usize;

    /// One score per reading of `rows` (row-major, [`Self::features`] values each, all finite).
    fn score(&self, rows: &[f32]) -> Result<Vec<f32>, ScoreError>;

    /// The engine behind the scores, when there is one in this process to break a score down
    /// by channel (a sandboxed model has none).
    fn engine(&self) -> Option<&Engine> {
        None
    }
}

impl Scorer for ModelSlot {
    fn features(&self) -> Option<usize> {
        self.engine().ok().map(|e| e.features())
    }

    fn max_rows(&self) -> usize {
        self.engine().map_or(1, |e| e.max_rows().max(1))
    }

    fn score(&self, rows: &[f32]) -> Result<Vec<f32>, ScoreError> {
        Ok(ModelSlot::score(self, rows)?)
    }

    fn engine(&self) -> Option<&Engine> {
        ModelSlot::engine(self).ok()
    }
}

/// What [`score_rows`] needs besides the readings.
pub struct ScoreContext<'a> {
    /// What scores (the slot's engine, possibly none, or a sandbox).
    pub scorer: &'a dyn Scorer,
    /// The loaded model's version.
    pub version: Option<String>,
    /// Scores above this are anomalies.
    pub threshold: f32,
    /// When the readings were taken (ms since the epoch).
    pub timestamp_ms: u64,
    /// A monotonic clock in ms, for the latency figures.
    pub now_ms: &'a dyn Fn() -> f64,
    /// Whether scored entries keep their reading ([`crate::outbox::SyncSettings::send_readings`]).
    pub send_readings: bool,
    /// The loaded model's channels, for the contributions of flagged readings.
    pub channels: Option<&'a ChannelMap>,
}

/// Scores `rows` (row-major, `features` values each) reading by reading, as the module docs say.
///
/// `Err` only when the request cannot be split into readings the model takes
/// ([`EngineError::WrongLength`]); nothing is recorded then.
pub fn score_rows(
    rows: &[f32],
    features: usize,
    ctx: &ScoreContext<'_>,
) -> Result<ScoredRows, EngineError> {
    if features == 0 || rows.is_empty() || !rows.len().is_multiple_of(features) {
        return Err(EngineError::WrongLength { len: rows.len(), features });
    }
    if let Some(wanted) = ctx.scorer.features() {
        if wanted != features {
            return Err(EngineError::WrongLength { len: rows.len(), features: wanted });
        }
    }
    let readings: Vec<&[f32]> = rows.chunks(features).collect();
    let finite: Vec<usize> =
        (0..readings.len()).filter(|&i| readings[i].iter().all(|v| v.is_finite())).collect();
    let t0 = (ctx.now_ms)();
    let scores = score_finite(ctx.scorer, &readings, &finite);
    let elapsed_us = (((ctx.now_ms)() - t0) * 1000.0).max(0.0);
    let per_row_us = (elapsed_us / finite.len().max(1) as f64).round() as u64;
    let mut entries = Vec::with_capacity(readings.len());
    let mut outcomes = Vec::with_capacity(readings.len());
    let mut next_finite = finite.iter().copied().enumerate().peekable();
    for (i, reading) in readings.iter().enumerate() {
        let scored_at = next_finite.next_if(|&(_, row)| row == i).map(|(k, _)| k);
        let (entry, outcome) = match (scored_at, &scores) {
            (Some(k), Ok(scores)) => {
                let score = scores[k];
                let anomaly = score > ctx.threshold;
                let v = ctx.version.clone().unwrap_or_default();
                let mut entry = Entry::scored(ctx.timestamp_ms, v, score, anomaly, per_row_us);
                if ctx.send_readings {
                    entry = entry.with_reading(reading);
                }
                let contributions = if anomaly { contributions(ctx, reading) } else { None };
                if let Some(c) = &contributions {
                    entry = entry.with_contributions(c.clone());
                }
                (entry, RowOutcome { score: Some(score), reason: None, anomaly, contributions })
            }
            (Some(_), Err(e)) => unscored(ctx, reading, e.code),
            (None, _) => unscored(ctx, reading, NON_FINITE),
        };
        entries.push(entry);
        outcomes.push(outcome);
    }
    Ok(ScoredRows { entries, outcomes, elapsed_us })
}

fn unscored(ctx: &ScoreContext<'_>, reading: &[f32], reason: &str) -> (Entry, RowOutcome) {
    let entry = Entry::unscored(ctx.timestamp_ms, ctx.version.clone(), reading.to_vec(), reason);
    let outcome = RowOutcome {
        score: None,
        reason: Some(reason.to_owned()),
        anomaly: false,
        contributions: None,
    };
    (entry, outcome)
}

/// A flagged reading's channels, when the scorer's engine and the model's metadata allow; a
/// model whose score cannot be broken down simply has none.
fn contributions(ctx: &ScoreContext<'_>, reading: &[f32]) -> Option<Contributions> {
    let (engine, channels) = (ctx.scorer.engine()?, ctx.channels?);
    channels.contributions(engine, reading).ok()
}

/// Scores the readings at `finite`, in scorer-sized batches; one score per index.
fn score_finite(
    scorer: &dyn Scorer,
    readings: &[&[f32]],
    finite: &[usize],
) -> Result<Vec<f32>, ScoreError> {
    if finite.is_empty() {
        return Ok(Vec::new());
    }
    let mut scores = Vec::with_capacity(finite.len());
    for batch in finite.chunks(scorer.max_rows()) {
        let rows: Vec<f32> = batch.iter().flat_map(|&i| readings[i].iter().copied()).collect();
        let batch_scores = scorer.score(&rows)?;
        if batch_scores.len() != batch.len() {
            let message = format!("{} scores for {} readings", batch_scores.len(), batch.len());
            return Err(ScoreError { code: "INFERENCE", message });
        }
        scores.extend(batch_scores);
    }
    Ok(scores)
}
