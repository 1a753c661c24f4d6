//! Cloud scoring: the collector scores the readings a device recorded unscored (no model, an
//! engine error), with the same engine crate the devices run, natively.
//!
//! A background task wakes every [`POLL_INTERVAL`], takes up to [`BATCH`] waiting records from
//! the store's pending index (oldest first), scores them off the async workers, and writes the
//! results in one short transaction; it repeats while full batches come back. Ingest never waits
//! for it: finding work is a read on the reader connection, scoring holds no database lock, and
//! the write is one transaction like an ingest. Results go to the `cloud_*` columns, marked with
//! the release that scored them (see [`models`] for which one), and the stats and fleet view
//! count them. A reading no release can score (a non-finite value, a width no release has) is
//! marked failed with a code and not tried again; with no release published, records wait.

pub mod models;

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::log;
use crate::state::AppState;
use crate::store::{CloudOutcome, CloudResult, Pending, StoreError};
pub use models::{CloudModel, CloudModels};

/// How often the task looks for waiting records.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// Records taken per round trip to the store.
pub const BATCH: u32 = 256;

/// Failure code: the reading holds NaN or an infinity.
pub const NON_FINITE: &str = "NON_FINITE";
/// Failure code: no release takes readings of this width.
pub const WRONG_WIDTH: &str = "WRONG_WIDTH";
/// Failure code: the engine refused the reading.
pub const ENGINE: &str = "ENGINE";

/// Scores `pending` with the releases in `models`. Records no release is held for yet (none is
/// published) are left out of the result, so they stay waiting.
pub fn score(models: &CloudModels, pending: &[Pending]) -> Vec<CloudResult> {
    let mut results = Vec::with_capacity(pending.len());
    for p in pending {
        let wanted = [p.model_version.as_deref(), p.active_model.as_deref()];
        let Some(model) = models.pick(&wanted) else { continue };
        results.push(CloudResult { record_id: p.record_id.clone(), outcome: score_one(model, p) });
    }
    results
}

fn score_one(model: &CloudModel, p: &Pending) -> CloudOutcome {
    let failed = |reason: &str| CloudOutcome::Failed {
        reason: reason.to_owned(),
        model_version: Some(model.version.clone()),
    };
    if p.reading.iter().any(|v| !v.is_finite()) {
        return failed(NON_FINITE);
    }
    if p.reading.len() != model.engine.features() {
        return failed(WRONG_WIDTH);
    }
    let row: Vec<f32> = p.reading.iter().map(|&v| v as f32).collect();
    match model.engine.score(&row).as_deref() {
        Ok([score]) if score.is_finite() => CloudOutcome::Scored {
            score: f64::from(*score),
            anomaly: *score > model.threshold,
            model_version: model.version.clone(),
        },
        Ok(_) => failed(NON_FINITE),
        Err(_) => failed(ENGINE),
    }
}

/// One pass: scores waiting records until none is left that a held release can score. Returns
/// how many records it stored a result for.
pub async fn run_once(
    state: &AppState,
    models: &Arc<Mutex<CloudModels>>,
) -> Result<usize, StoreError> {
    let mut stored = 0;
    loop {
        let pending = state.store(|s| s.cloud_pending(BATCH)).await?;
        let full = pending.len() == BATCH as usize;
        let models = Arc::clone(models);
        let results = tokio::task::spawn_blocking(move || {
            let mut models = models.lock().map_err(|_| StoreError::Poisoned)?;
            models.refresh();
            Ok::<_, StoreError>(score(&models, &pending))
        })
        .await
        .map_err(|e| StoreError::Task(e.to_string()))??;
        if results.is_empty() {
            return Ok(stored);
        }
        let now = now_ms();
        stored += state.store(move |s| s.record_cloud_results(&results, now)).await?;
        if !full {
            return Ok(stored);
        }
    }
}

/// Runs [`run_once`] every [`POLL_INTERVAL`] until the process ends.
pub fn spawn(state: AppState, models: CloudModels) -> tokio::task::JoinHandle<()> {
    let models = Arc::new(Mutex::new(models));
    tokio::spawn(async move {
        loop {
            match run_once(&state, &models).await {
                Ok(0) => {}
                Ok(n) => log::info(format_args!("cloud scoring: scored {n} records")),
                Err(e) => log::warn(format_args!("cloud scoring: {e}")),
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    })
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}
