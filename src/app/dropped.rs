//! [`DroppedCounts`]: readings the app could not record, counted by reason so no refusal is
//! silent (wrong length, a store failure, …).
//!
//! Counts go to the store's persisted counter. When the store itself is what fails, they wait
//! here, in memory, and are written with the next successful store call; [`DroppedCounts::merged`]
//! adds the waiting ones to what the store reports, so the status is never short.

use std::cell::RefCell;
use std::collections::BTreeMap;

/// Readings not recorded, by reason code, not yet in the store.
#[derive(Debug, Default)]
pub struct DroppedCounts {
    pending: RefCell<BTreeMap<String, u64>>,
}

impl DroppedCounts {
    /// Counts `n` readings not recorded for `reason`.
    pub fn add(&self, reason: &str, n: u64) {
        *self.pending.borrow_mut().entry(reason.to_owned()).or_default() += n;
    }

    /// Takes the waiting counts (to write them to the store; [`Self::restore`] on failure).
    pub fn take(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.pending.borrow_mut())
    }

    /// Puts back counts that could not be written.
    pub fn restore(&self, counts: BTreeMap<String, u64>) {
        for (reason, n) in counts {
            self.add(&reason, n);
        }
    }

    /// `stored` plus the counts still waiting here.
    pub fn merged(&self, stored: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
        let mut out = stored.clone();
        for (reason, n) in self.pending.borrow().iter() {
            *out.entry(reason.clone()).or_default() += n;
        }
        out
    }
}
