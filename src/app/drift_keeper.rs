//! [`DriftKeeper`]: the app's [`DriftState`], kept in the outbox store so a restarted host (a
//! service worker the browser stopped) continues the totals.
//!
//! The state is written every [`SAVE_EVERY`] counted scores, at a flush and when a model is
//! installed; a host stopped in between loses at most the scores since the last write (the
//! records themselves are in the outbox either way). Drift never fails scoring: a failed write is
//! retried at the next occasion, and a stored state that does not decode is dropped for a fresh
//! one (its error is kept for the status).

use std::cell::{Cell, RefCell};

use edge_wire::drift::DriftSnapshot;

use super::drift::{DriftError, DriftState, Reference, STATE_KEY};
use super::score::RowOutcome;
use crate::outbox::{OutboxStore, StoreError};

/// Counted scores between two writes of the state.
pub const SAVE_EVERY: u64 = 100;

/// The drift state and what is not yet written of it.
pub struct DriftKeeper {
    state: RefCell<DriftState>,
    unsaved: Cell<u64>,
    discarded: Option<DriftError>,
}

impl DriftKeeper {
    /// Loads the state `store` keeps, or starts afresh (also when the stored one is corrupt).
    pub async fn open<S: OutboxStore>(store: &S) -> Result<Self, StoreError> {
        let (state, discarded) = match store.app_value(STATE_KEY).await? {
            None => (DriftState::default(), None),
            Some(text) => match DriftState::from_json(&text) {
                Ok(state) => (state, None),
                Err(e) => (DriftState::default(), Some(e)),
            },
        };
        Ok(DriftKeeper { state: RefCell::new(state), unsaved: Cell::new(0), discarded })
    }

    /// Why the stored state was dropped at open, if it was.
    pub fn discarded(&self) -> Option<&DriftError> {
        self.discarded.as_ref()
    }

    /// Counts the scored readings of `outcomes` under `version` (none without a version).
    pub fn observe(&self, version: Option<&str>, outcomes: &[RowOutcome], now_ms: u64) {
        let Some(version) = version else { return };
        let scores: Vec<(f32, bool)> =
            outcomes.iter().filter_map(|o| o.score.map(|s| (s, o.anomaly))).collect();
        let counted = self.state.borrow_mut().observe(version, &scores, now_ms);
        self.unsaved.set(self.unsaved.get() + counted);
    }

    /// Sets `version`'s training reference (a package was installed); written with the next
    /// save.
    pub fn set_reference(&self, version: &str, reference: Reference, now_ms: u64) {
        self.state.borrow_mut().set_reference(version, reference, now_ms);
        self.unsaved.set(self.unsaved.get() + 1);
    }

    /// The reference `metadata.json` (already verified) describes; a package whose quantiles
    /// cannot be bin edges is counted without bins rather than refused here.
    pub fn reference_of(meta: &crate::update::ModelMetadata) -> Reference {
        let rate = meta.expected_anomaly_rate;
        Reference::new(meta.score_quantiles.as_deref(), rate)
            .or_else(|_| Reference::new(None, rate))
            .unwrap_or_else(|_| Reference::unbinned())
    }

    /// Writes the state when [`SAVE_EVERY`] scores are unwritten.
    pub async fn save_if_due<S: OutboxStore>(&self, store: &S) {
        if self.unsaved.get() >= SAVE_EVERY {
            let _ = self.save(store).await;
        }
    }

    /// Writes the state if anything changed since the last write.
    pub async fn save<S: OutboxStore>(&self, store: &S) -> Result<(), StoreError> {
        let pending = self.unsaved.get();
        if pending == 0 {
            return Ok(());
        }
        let text =
            self.state.borrow_mut().to_json().map_err(|e| StoreError::Corrupt(e.to_string()))?;
        store.set_app_value(STATE_KEY, &text).await?;
        // Scores counted while the write was pending stay unwritten.
        self.unsaved.set(self.unsaved.get().saturating_sub(pending));
        Ok(())
    }

    /// Every kept version's snapshot at `now_ms`, most recently scored first.
    pub fn snapshots(&self, now_ms: u64) -> Vec<DriftSnapshot> {
        self.state.borrow().snapshots(now_ms)
    }

    /// `version`'s snapshot at `now_ms`, if kept.
    pub fn snapshot(&self, version: &str, now_ms: u64) -> Option<DriftSnapshot> {
        self.state.borrow().snapshot(version, now_ms)
    }
}
