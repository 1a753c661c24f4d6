//! [`MemoryStore`]: the in-memory [`OutboxStore`], for native tests and as the reference the
//! IndexedDB store is checked against (both pass [`super::conformance`]).
//!
//! Its state sits behind an `Rc<RefCell<…>>`, so [`MemoryStore::reopen`] can hand out a second
//! handle on the same state: what a restarted worker would see after reopening its database. No
//! borrow is held across an await (the methods do not await), so the `RefCell` never conflicts.
//!
//! [`MemoryStore::limit_records`] gives it a storage quota (in records), so the full-storage
//! path ([`StoreError::QuotaExceeded`]) runs natively too; [`MemoryStore::space_not_reclaimed`]
//! makes that quota behave like Chromium's IndexedDB, where deleted records keep their space
//! until the database compacts and every write counts against the quota.
//!
//! [`MemoryStore::commits_asynchronously`] makes each append wait a turn of the executor before
//! it commits, as an IndexedDB transaction does, so callers that overlap writes can be tested;
//! [`MemoryStore::appends`] counts the append transactions.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;

use super::error::StoreError;
use super::record::{Entry, Record, Seq};
use super::settings::SyncSettings;
use super::store::{
    Ack, AppendOutcome, Batch, DeadBatch, DeadLetter, Failure, OutboxStats, OutboxStore,
    RetryState, READING_IDS_KEPT,
};

/// An [`OutboxStore`] held in memory. Clones share the same state.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Rc<RefCell<State>>,
}

#[derive(Debug)]
struct State {
    device_id: Option<String>,
    next_seq: Seq,
    /// Queue position of the next record to join the queue.
    next_pos: u64,
    /// Keyed by queue position: the front of the queue is the first entry.
    queue: BTreeMap<u64, Record>,
    /// Where each queued seq sits in `queue`.
    pos_of: HashMap<Seq, u64>,
    inflight: Option<Batch>,
    /// Keyed by the batch's first seq, so the oldest dead batch is the first entry.
    dead: BTreeMap<Seq, DeadBatch>,
    /// Recent reading ids and the seq each was recorded under; `reading_order` holds the same
    /// ids oldest first, for pruning.
    reading_ids: HashMap<String, Seq>,
    reading_order: VecDeque<(Seq, String)>,
    reading_ids_kept: u64,
    /// Most records (queued, inflight and dead) storage can hold; `None`: unlimited.
    record_quota: Option<u64>,
    /// With a quota: whether deleting a record gives its room back at once. When not, `used`
    /// counts every record written (moves between stores included) until
    /// [`MemoryStore::reclaim_space`].
    reclaims_space: bool,
    used: u64,
    settings: Option<SyncSettings>,
    /// The app's own values ([`OutboxStore::app_value`]).
    app_values: BTreeMap<String, String>,
    /// Whether an append yields to the executor once before committing.
    yields: bool,
    /// Append transactions committed.
    appends: u64,
    /// Only the running totals are kept here; current counts are computed in `stats`.
    totals: OutboxStats,
}

impl Default for State {
    fn default() -> State {
        State {
            device_id: None,
            next_seq: 0,
            next_pos: 0,
            queue: BTreeMap::new(),
            pos_of: HashMap::new(),
            inflight: None,
            dead: BTreeMap::new(),
            reading_ids: HashMap::new(),
            reading_order: VecDeque::new(),
            reading_ids_kept: READING_IDS_KEPT,
            record_quota: None,
            reclaims_space: true,
            used: 0,
            settings: None,
            app_values: BTreeMap::new(),
            yields: false,
            appends: 0,
            totals: OutboxStats::default(),
        }
    }
}

impl State {
    fn held(&self) -> u64 {
        let inflight = self.inflight.as_ref().map_or(0, |b| b.records.len());
        let dead: usize = self.dead.values().map(|d| d.records.len()).sum();
        (self.queue.len() + inflight + dead) as u64
    }

    /// Whether storage has room to write `puts` more records while `frees` are deleted in the
    /// same step; `QuotaExceeded` if not. Counts the write when space is not reclaimed.
    fn make_room(&mut self, puts: u64, frees: u64) -> Result<(), StoreError> {
        let Some(quota) = self.record_quota else { return Ok(()) };
        if self.reclaims_space {
            if (self.held() + puts).saturating_sub(frees) > quota {
                return Err(StoreError::QuotaExceeded(format!("{quota} records")));
            }
            return Ok(());
        }
        if puts > 0 && self.used + puts > quota {
            return Err(StoreError::QuotaExceeded(format!("{quota} records written")));
        }
        self.used += puts;
        Ok(())
    }

    fn enqueue(&mut self, record: Record) {
        let pos = self.next_pos;
        self.next_pos += 1;
        self.pos_of.insert(record.seq, pos);
        self.queue.insert(pos, record);
    }

    fn pop_front(&mut self) -> bool {
        match self.queue.pop_first() {
            Some((_, record)) => {
                self.pos_of.remove(&record.seq);
                true
            }
            None => false,
        }
    }

    fn remember(&mut self, id: &str, seq: Seq) {
        self.reading_ids.insert(id.to_owned(), seq);
        self.reading_order.push_back((seq, id.to_owned()));
    }

    /// Forgets the reading ids of records older than the last `reading_ids_kept` seqs.
    fn forget_old_reading_ids(&mut self) {
        let horizon = self.next_seq.saturating_sub(self.reading_ids_kept);
        while self.reading_order.front().is_some_and(|(seq, _)| *seq < horizon) {
            if let Some((_, old)) = self.reading_order.pop_front() {
                self.reading_ids.remove(&old);
            }
        }
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    /// This (new) store with room for only `quota` records (queued, inflight and dead): an
    /// append that would need more fails with [`StoreError::QuotaExceeded`], like a browser
    /// whose storage quota is used up.
    pub fn limit_records(self, quota: u64) -> MemoryStore {
        self.state.borrow_mut().record_quota = Some(quota);
        self
    }

    /// This (new, quota-limited) store without giving a deleted record's room back until
    /// [`MemoryStore::reclaim_space`]: every record written counts against the quota, moving a
    /// batch to inflight or the dead letters included; deletes always succeed.
    pub fn space_not_reclaimed(self) -> MemoryStore {
        self.state.borrow_mut().reclaims_space = false;
        self
    }

    /// Changes the quota (in records), as a browser does when the disk fills up or frees.
    pub fn set_record_quota(&self, quota: u64) {
        self.state.borrow_mut().record_quota = Some(quota);
    }

    /// Gives the room of deleted records back, as a database compaction does.
    pub fn reclaim_space(&self) {
        let mut state = self.state.borrow_mut();
        state.used = state.held();
    }

    /// This (new) store remembering the reading ids of only the last `kept` seqs instead of
    /// [`READING_IDS_KEPT`].
    pub fn keep_reading_ids(self, kept: u64) -> MemoryStore {
        self.state.borrow_mut().reading_ids_kept = kept;
        self
    }

    /// This (new) store with appends that yield to the executor once before they commit.
    pub fn commits_asynchronously(self) -> MemoryStore {
        self.state.borrow_mut().yields = true;
        self
    }

    /// Append transactions committed so far.
    pub fn appends(&self) -> u64 {
        self.state.borrow().appends
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

    async fn next_seq(&self) -> Result<Seq, StoreError> {
        Ok(self.state.borrow().next_seq)
    }

    async fn append_entries(
        &self,
        entries: &[Entry],
        capacity: u64,
    ) -> Result<AppendOutcome, StoreError> {
        if self.state.borrow().yields {
            YieldOnce(false).await;
        }
        let mut state = self.state.borrow_mut();
        state.appends += 1;
        // Decide everything first, so a refusal changes nothing.
        let first_seq = state.next_seq;
        let mut seen: HashMap<&str, Seq> = HashMap::new();
        let mut already = Vec::new();
        let mut fresh = Vec::new();
        let mut next = first_seq;
        for (index, entry) in entries.iter().enumerate() {
            if let Some(id) = entry.reading_id.as_deref() {
                if let Some(&seq) = state.reading_ids.get(id).or_else(|| seen.get(id)) {
                    already.push((index, seq));
                    continue;
                }
                seen.insert(id, next);
            }
            fresh.push((next, entry));
            next += 1;
        }
        let stored = fresh.len() as u64;
        let end = first_seq
            .checked_add(stored)
            .ok_or_else(|| StoreError::Backend("sequence counter overflow".into()))?;
        let queued_after = state.queue.len() as u64 + stored;
        let evict = queued_after.saturating_sub(capacity);
        state.make_room(stored, evict)?;
        for (seq, entry) in fresh {
            if let Some(id) = entry.reading_id.as_deref() {
                state.remember(id, seq);
            }
            state.enqueue(Record::new(seq, entry.clone()));
        }
        state.next_seq = end;
        state.forget_old_reading_ids();
        let mut evicted = 0;
        while state.queue.len() as u64 > capacity && state.pop_front() {
            evicted += 1;
        }
        state.totals.evicted_total += evicted;
        Ok(AppendOutcome { first_seq, stored, evicted, already })
    }

    async fn evict_for_quota(&self, max: u64) -> Result<u64, StoreError> {
        let mut state = self.state.borrow_mut();
        let mut evicted = 0;
        while evicted < max && state.pop_front() {
            evicted += 1;
        }
        state.totals.evicted_total += evicted;
        state.totals.evicted_quota_total += evicted;
        Ok(evicted)
    }

    async fn oldest(&self, max: usize) -> Result<Vec<Record>, StoreError> {
        Ok(self.state.borrow().queue.values().take(max).cloned().collect())
    }

    async fn queued(&self) -> Result<u64, StoreError> {
        Ok(self.state.borrow().queue.len() as u64)
    }

    async fn begin_inflight(&self, batch: &Batch) -> Result<(), StoreError> {
        let mut state = self.state.borrow_mut();
        if let Some(current) = &state.inflight {
            return Err(StoreError::Conflict(format!("batch {} is already inflight", current.key)));
        }
        if let Some(missing) = batch.records.iter().find(|r| !state.pos_of.contains_key(&r.seq)) {
            return Err(StoreError::Conflict(format!(
                "record {} is no longer queued",
                missing.seq
            )));
        }
        let n = batch.records.len() as u64;
        state.make_room(n, n)?;
        for record in &batch.records {
            if let Some(pos) = state.pos_of.remove(&record.seq) {
                state.queue.remove(&pos);
            }
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
        state.totals.count_sent(batch.records.len() as u64, ack);
        Ok(true)
    }

    async fn ack_queued(&self, batch: &Batch, ack: &Ack) -> Result<u64, StoreError> {
        let mut state = self.state.borrow_mut();
        let mut deleted = 0;
        for record in &batch.records {
            if let Some(pos) = state.pos_of.remove(&record.seq) {
                state.queue.remove(&pos);
                deleted += 1;
            }
        }
        state.totals.count_sent(deleted, ack);
        Ok(deleted)
    }

    async fn release_inflight(&self, key: &str) -> Result<bool, StoreError> {
        let mut state = self.state.borrow_mut();
        let n = match &state.inflight {
            Some(b) if b.key == key => b.records.len() as u64,
            _ => return Ok(false),
        };
        // Back ahead of every queued record, where the positions before the front allow.
        let front = state.queue.first_key_value().map_or(state.next_pos, |(&pos, _)| pos);
        let Some(base) = front.checked_sub(n) else { return Ok(false) };
        state.make_room(n, n)?;
        let Some(batch) = state.inflight.take() else { return Ok(false) };
        for (pos, record) in (base..).zip(batch.records) {
            state.pos_of.insert(record.seq, pos);
            state.queue.insert(pos, record);
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
        match &state.inflight {
            Some(b) if b.key == key => {
                let n = b.records.len() as u64;
                state.make_room(n, n)?;
            }
            _ => return Ok(false),
        }
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
        let n = state.dead.get(&first).map_or(0, |d| d.records.len() as u64);
        state.make_room(n, n)?;
        let Some(dead) = state.dead.remove(&first) else { return Ok(None) };
        for record in dead.records {
            state.enqueue(record);
        }
        Ok(Some(n))
    }

    async fn count_dropped(&self, reason: &str, n: u64) -> Result<(), StoreError> {
        *self.state.borrow_mut().totals.dropped.entry(reason.to_owned()).or_default() += n;
        Ok(())
    }

    async fn sync_settings(&self) -> Result<Option<SyncSettings>, StoreError> {
        Ok(self.state.borrow().settings.clone())
    }

    async fn set_sync_settings(&self, settings: &SyncSettings) -> Result<(), StoreError> {
        self.state.borrow_mut().settings = Some(settings.clone());
        Ok(())
    }

    async fn app_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.state.borrow().app_values.get(key).cloned())
    }

    async fn set_app_value(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.state.borrow_mut().app_values.insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    async fn stats(&self) -> Result<OutboxStats, StoreError> {
        let state = self.state.borrow();
        Ok(OutboxStats {
            queued: state.queue.len() as u64,
            inflight_records: state.inflight.as_ref().map_or(0, |b| b.records.len() as u64),
            dead_letter_batches: state.dead.len() as u64,
            dead_letter_records: state.dead.values().map(|d| d.records.len() as u64).sum(),
            ..state.totals.clone()
        })
    }
}

/// Pending once (waking itself), then ready: one turn of the executor.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            return std::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}
