//! [`MemoryStore`]: the in-memory [`OutboxStore`], for native tests and as the reference the
//! IndexedDB store is checked against (both pass [`super::conformance`]).
//!
//! Its state sits behind an `Rc<RefCell<…>>`, so [`MemoryStore::reopen`] can hand out a second
//! handle on the same state: what a restarted worker would see after reopening its database. No
//! borrow is held across an await (the methods do not await), so the `RefCell` never conflicts.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use super::error::StoreError;
use super::record::{Record, Seq};
use super::store::{
    Ack, AppendOutcome, Batch, DeadBatch, DeadLetter, Failure, OutboxStats, OutboxStore, RetryState,
};

/// An [`OutboxStore`] held in memory. Clones share the same state.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Rc<RefCell<State>>,
}

#[derive(Debug, Default)]
struct State {
    device_id: Option<String>,
    next_seq: Seq,
    records: BTreeMap<Seq, Record>,
    inflight: Option<Batch>,
    /// Keyed by the batch's first seq, so the oldest dead batch is the first entry.
    dead: BTreeMap<Seq, DeadBatch>,
    /// Only the running totals are kept here; current counts are computed in `stats`.
    totals: OutboxStats,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// Another handle on the same state, as a restarted worker reopening its database gets.
    pub fn reopen(&self) -> MemoryStore {
        MemoryStore { state: Rc::clone(&self.state) }
    }
}

impl OutboxStore for MemoryStore {
    async fn device_id(&self) -> Result<Option<String>, StoreError> {
        Ok(self.state.borrow().device_id.clone())
    }

    async fn init_device_id(&self, candidate: &str) -> Result<String, StoreError> {
        Ok(self.state.borrow_mut().device_id.get_or_insert_with(|| candidate.to_owned()).clone())
    }

    async fn reserve_seqs(&self, count: u64) -> Result<Seq, StoreError> {
        let mut state = self.state.borrow_mut();
        let first = state.next_seq;
        state.next_seq = first
            .checked_add(count)
            .ok_or_else(|| StoreError::Backend("sequence counter overflow".into()))?;
        Ok(first)
    }

    async fn append(&self, records: &[Record], capacity: u64) -> Result<AppendOutcome, StoreError> {
        let mut state = self.state.borrow_mut();
        for record in records {
            state.records.insert(record.seq, record.clone());
        }
        let mut evicted = 0;
        while state.records.len() as u64 > capacity {
            state.records.pop_first();
            evicted += 1;
        }
        state.totals.evicted_total += evicted;
        Ok(AppendOutcome { evicted })
    }

    async fn oldest(&self, max: usize) -> Result<Vec<Record>, StoreError> {
        Ok(self.state.borrow().records.values().take(max).cloned().collect())
    }

    async fn queued(&self) -> Result<u64, StoreError> {
        Ok(self.state.borrow().records.len() as u64)
    }

    async fn begin_inflight(&self, batch: &Batch) -> Result<(), StoreError> {
        let mut state = self.state.borrow_mut();
        if let Some(current) = &state.inflight {
            return Err(StoreError::Conflict(format!("batch {} is already inflight", current.key)));
        }
        if let Some(missing) = batch.records.iter().find(|r| !state.records.contains_key(&r.seq)) {
            return Err(StoreError::Conflict(format!(
                "record {} is no longer queued",
                missing.seq
            )));
        }
        for record in &batch.records {
            state.records.remove(&record.seq);
        }
        state.inflight = Some(batch.clone());
        Ok(())
    }

    async fn inflight(&self) -> Result<Option<Batch>, StoreError> {
        Ok(self.state.borrow().inflight.clone())
    }

    async fn set_inflight_retry(&self, key: &str, retry: &RetryState) -> Result<bool, StoreError> {
        let mut state = self.state.borrow_mut();
        match &mut state.inflight {
            Some(batch) if batch.key == key => {
                batch.retry = Some(retry.clone());
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn ack_inflight(&self, ack: &Ack) -> Result<bool, StoreError> {
        let mut state = self.state.borrow_mut();
        let Some(batch) = state.inflight.take_if(|b| b.key == ack.key) else {
            return Ok(false);
        };
        let totals = &mut state.totals;
        totals.sent_records_total += batch.records.len() as u64;
        totals.sent_batches_total += 1;
        totals.rejected_records_total += ack.rejected;
        if let Some(message) = &ack.message {
            totals.last_rejection = Some(message.clone());
        }
        Ok(true)
    }

    async fn dead_letter_inflight(
        &self,
        key: &str,
        failure: &Failure,
        max_dead_records: u64,
    ) -> Result<bool, StoreError> {
        let mut state = self.state.borrow_mut();
        let Some(batch) = state.inflight.take_if(|b| b.key == key) else {
            return Ok(false);
        };
        let first = batch.first_seq();
        let dead = DeadBatch { key: batch.key, records: batch.records, failure: failure.clone() };
        state.dead.insert(first, dead);
        state.totals.dead_lettered_batches_total += 1;
        let mut held: u64 = state.dead.values().map(|d| d.records.len() as u64).sum();
        while held > max_dead_records {
            let Some((_, oldest)) = state.dead.pop_first() else { break };
            let n = oldest.records.len() as u64;
            held -= n;
            state.totals.dead_letter_evicted_total += n;
        }
        Ok(true)
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(self.state.borrow().dead.values().map(DeadBatch::summary).collect())
    }

    async fn redrive_dead_letter(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let mut state = self.state.borrow_mut();
        let Some(first) = state.dead.iter().find(|(_, d)| d.key == key).map(|(&s, _)| s) else {
            return Ok(None);
        };
        let Some(dead) = state.dead.remove(&first) else { return Ok(None) };
        let n = dead.records.len() as u64;
        for record in dead.records {
            state.records.insert(record.seq, record);
        }
        Ok(Some(n))
    }

    async fn stats(&self) -> Result<OutboxStats, StoreError> {
        let state = self.state.borrow();
        Ok(OutboxStats {
            queued: state.records.len() as u64,
            inflight_records: state.inflight.as_ref().map_or(0, |b| b.records.len() as u64),
            dead_letter_batches: state.dead.len() as u64,
            dead_letter_records: state.dead.values().map(|d| d.records.len() as u64).sum(),
            ..state.totals.clone()
        })
    }
}
