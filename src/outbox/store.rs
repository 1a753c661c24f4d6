//! The durable store behind the outbox, as a trait the core owns.
//!
//! Shaped for IndexedDB: every method is one short transaction over a few object stores with
//! simple keys (the queue keyed by queue position, one `inflight` slot, `dead` keyed by first
//! seq, recent reading ids, a `meta` store for the device id, the seq and position counters, the
//! totals and the sync settings), and nothing holds a transaction across a network await.
//! Methods return `impl Future` without `Send`, because wasm futures are `!Send`. Each state
//! change of a record is a single method, so a worker killed at any await leaves the store
//! consistent:
//!
//! ```text
//! append_entries ─► queue ─begin_inflight─► inflight ─ack_inflight─► gone (sent_total += n)
//!                    ▲                         └─dead_letter_inflight─► dead ─┐
//!                    └─────────────── redrive_dead_letter ◄───────────────────┘
//! ```
//!
//! The queue has its own order, separate from seqs: a record joins at the end (a re-driven one
//! too, though its seq is old), [`OutboxStore::oldest`] reads from the front and the capacity
//! cap evicts from the front, so a re-driven record is never evicted before records queued after
//! it.
//!
//! [`super::MemoryStore`] implements it natively; [`super::conformance`] checks any
//! implementation against these rules.

use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;

use serde::{Deserialize, Serialize};

use super::error::StoreError;
use super::record::{Entry, Record, Seq};
use super::settings::SyncSettings;

/// A store remembers the reading ids of the records with the last this-many seqs (older ones
/// are forgotten, oldest first, in the transaction that stores new records). A page resends an
/// unanswered reading within seconds; this covers hours of a 10 Hz sensor.
pub const READING_IDS_KEPT: u64 = 100_000;

/// What [`OutboxStore::append_entries`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppendOutcome {
    /// Seq of the first stored entry; the stored entries got consecutive seqs from here, in
    /// their order in the call. When nothing was stored, the next seq to be assigned.
    pub first_seq: Seq,
    /// Entries stored as new records.
    pub stored: u64,
    /// Oldest queued records dropped to stay within the capacity (also added to
    /// [`OutboxStats::evicted_total`]).
    pub evicted: u64,
    /// Entries not stored because their reading id was already recorded: (index in the call,
    /// the seq it was recorded under).
    pub already: Vec<(usize, Seq)>,
}

impl AppendOutcome {
    /// The seq of each of the `entries` entries of the call, in order: a new one for each stored
    /// entry, the original one for each already recorded.
    pub fn seqs(&self, entries: usize) -> Vec<Seq> {
        let mut already = self.already.iter().peekable();
        let mut next = self.first_seq;
        (0..entries)
            .map(|i| match already.next_if(|(index, _)| *index == i) {
                Some(&(_, seq)) => seq,
                None => {
                    next += 1;
                    next - 1
                }
            })
            .collect()
    }
}

/// A batch taken out of the queue for sending: its idempotency key and exactly what is sent.
///
/// Persisted before the first send and resent byte for byte, under the same key, until the
/// collector answers (2xx or a non-retryable error), across restarts included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Batch {
    /// The `Idempotency-Key` header: unique per logical batch, never reused for another payload.
    pub key: String,
    /// The records in the batch, in queue order (seq order, but for re-driven records, which
    /// queue behind the records that were queued before their re-drive).
    pub records: Vec<Record>,
    /// The uncompressed OTLP JSON body, frozen when the batch was made.
    pub body: String,
    /// When the batch was made (ms since the epoch).
    pub created_at_ms: u64,
    /// Set after a retryable failure: when to try again.
    pub retry: Option<RetryState>,
}

impl Batch {
    /// Seq of the first record (0 for an empty batch, which the core never makes).
    pub fn first_seq(&self) -> Seq {
        self.records.first().map_or(0, |r| r.seq)
    }

    /// Seq of the last record.
    pub fn last_seq(&self) -> Seq {
        self.records.last().map_or(0, |r| r.seq)
    }
}

/// Backoff state of the inflight batch after a retryable failure; persisted so that a restarted
/// worker still honours the server's `Retry-After`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetryState {
    /// Failed attempts so far (1 after the first failure).
    pub attempts: u32,
    /// Do not send again before this time (ms since the epoch).
    pub not_before_ms: u64,
    /// Whether `not_before_ms` came from the server (`Retry-After`) rather than our backoff;
    /// only our own backoff is cut short when the network comes back.
    pub server_directed: bool,
    /// The last failure, for display.
    pub last_error: String,
    /// The collector refused our credentials (401/403): the batch waits for a new token (or
    /// the next periodic re-check), and the queue behind it is held, not dead-lettered.
    #[serde(default)]
    pub auth_needed: bool,
}

/// Why a batch was dead-lettered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// HTTP status of the rejection, if the server answered.
    pub status: Option<u16>,
    /// What the server said (truncated), or the error.
    pub message: String,
    /// When it was dead-lettered (ms since the epoch).
    pub at_ms: u64,
    /// Send attempts made, the rejected one included.
    pub attempts: u32,
}

/// A batch the collector refused for good: kept, counted and re-drivable, never dropped silently.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadBatch {
    /// The idempotency key it was sent under.
    pub key: String,
    /// Its records, in the order they were sent.
    pub records: Vec<Record>,
    /// Why it is here.
    pub failure: Failure,
}

/// A dead batch without its records, for listing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The idempotency key it was sent under; pass it to [`OutboxStore::redrive_dead_letter`].
    pub key: String,
    /// Seq of its first record.
    pub first_seq: Seq,
    /// Seq of its last record.
    pub last_seq: Seq,
    /// Number of records.
    pub records: u64,
    /// Why it is here.
    pub failure: Failure,
}

impl DeadBatch {
    /// The listing view of this batch.
    pub fn summary(&self) -> DeadLetter {
        DeadLetter {
            key: self.key.clone(),
            first_seq: self.records.first().map_or(0, |r| r.seq),
            last_seq: self.records.last().map_or(0, |r| r.seq),
            records: self.records.len() as u64,
            failure: self.failure.clone(),
        }
    }
}

/// A 2xx acknowledgement of the inflight batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    /// Key of the acknowledged batch.
    pub key: String,
    /// `partialSuccess.rejectedLogRecords`: records the collector accepted the batch without.
    pub rejected: u64,
    /// `partialSuccess.errorMessage`, if any.
    pub message: Option<String>,
}

/// Counts, current and since the store was created; every loss is in here, none is silent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)] // totals stored before a field existed read it as 0
pub struct OutboxStats {
    /// Records waiting in the queue.
    pub queued: u64,
    /// Records in the inflight batch (0 when none).
    pub inflight_records: u64,
    /// Batches in the dead-letter store.
    pub dead_letter_batches: u64,
    /// Records in the dead-letter store.
    pub dead_letter_records: u64,
    /// Queued records dropped to make room, ever: by the capacity cap or because storage was
    /// full (the latter also in `evicted_quota_total`).
    pub evicted_total: u64,
    /// Queued records dropped because storage was full, ever.
    pub evicted_quota_total: u64,
    /// Dead-lettered records dropped by the dead-letter cap, ever.
    pub dead_letter_evicted_total: u64,
    /// Records acknowledged by the collector, ever (partially rejected ones included).
    pub sent_records_total: u64,
    /// Batches acknowledged by the collector, ever.
    pub sent_batches_total: u64,
    /// Batches moved to the dead-letter store, ever (re-driven ones included).
    pub dead_lettered_batches_total: u64,
    /// Records the collector reported rejecting in partial successes, ever.
    pub rejected_records_total: u64,
    /// The latest partial-success message.
    pub last_rejection: Option<String>,
    /// Readings the app did not record, ever, by reason code (see
    /// [`OutboxStore::count_dropped`]).
    pub dropped: BTreeMap<String, u64>,
}

impl OutboxStats {
    /// Adds the running totals of `delta` (counts kept in memory while storage refused to
    /// write them) to these; the current counts (`queued`, …) are left as they are.
    pub fn add_totals(&mut self, delta: &OutboxStats) {
        self.evicted_total += delta.evicted_total;
        self.evicted_quota_total += delta.evicted_quota_total;
        self.dead_letter_evicted_total += delta.dead_letter_evicted_total;
        self.sent_records_total += delta.sent_records_total;
        self.sent_batches_total += delta.sent_batches_total;
        self.dead_lettered_batches_total += delta.dead_lettered_batches_total;
        self.rejected_records_total += delta.rejected_records_total;
        if delta.last_rejection.is_some() {
            self.last_rejection.clone_from(&delta.last_rejection);
        }
        for (reason, n) in &delta.dropped {
            *self.dropped.entry(reason.clone()).or_default() += n;
        }
    }

    /// Whether adding this with [`OutboxStats::add_totals`] would change anything.
    pub fn has_totals(&self) -> bool {
        let current_counts_only = OutboxStats {
            queued: self.queued,
            inflight_records: self.inflight_records,
            dead_letter_batches: self.dead_letter_batches,
            dead_letter_records: self.dead_letter_records,
            ..OutboxStats::default()
        };
        *self != current_counts_only
    }

    /// Counts an acknowledged batch of `records` records.
    pub fn count_sent(&mut self, records: u64, ack: &Ack) {
        self.sent_records_total += records;
        self.sent_batches_total += 1;
        self.rejected_records_total += ack.rejected;
        if let Some(message) = &ack.message {
            self.last_rejection = Some(message.clone());
        }
    }
}

/// Durable storage for the outbox. See the module docs for the life of a record.
///
/// Implementations: [`super::MemoryStore`] here, IndexedDB in the web layer. Every method is
/// atomic: either all of its effect is stored or none.
pub trait OutboxStore {
    /// The device id stored with the outbox, if one was set.
    fn device_id(&self) -> impl Future<Output = Result<Option<String>, StoreError>>;

    /// Stores `candidate` as the device id unless one is already stored, and returns the stored
    /// id (so two racing initializations agree). The id lives with the sequence counter so both
    /// are lost together: a cleared store gets a new id, and restarted seqs never collide with
    /// old record ids.
    fn init_device_id(&self, candidate: &str) -> impl Future<Output = Result<String, StoreError>>;

    /// The seq the next stored record will get (0 for a new store).
    fn next_seq(&self) -> impl Future<Output = Result<Seq, StoreError>>;

    /// Stores `entries` as records at the end of the queue, in one transaction with the seq
    /// counter: each new record gets the next seq, so seqs have no gaps. An entry whose
    /// `reading_id` was recorded within the last [`READING_IDS_KEPT`] seqs (earlier in this
    /// call included) is not stored again but reported in [`AppendOutcome::already`].
    /// Then evicts the oldest queued records while more than `capacity` are queued, counting
    /// them.
    ///
    /// Fails with [`StoreError::QuotaExceeded`] (storing nothing) when storage is full.
    fn append_entries(
        &self,
        entries: &[Entry],
        capacity: u64,
    ) -> impl Future<Output = Result<AppendOutcome, StoreError>>;

    /// Evicts up to `max` records from the front of the queue to free storage, counting them in
    /// `evicted_quota_total` and `evicted_total`; returns how many it evicted (0: nothing left).
    /// Succeeds when storage is full (see [`OutboxStore::ack_queued`]).
    fn evict_for_quota(&self, max: u64) -> impl Future<Output = Result<u64, StoreError>>;

    /// Up to `max` queued records, front of the queue first.
    fn oldest(&self, max: usize) -> impl Future<Output = Result<Vec<Record>, StoreError>>;

    /// Number of queued records.
    fn queued(&self) -> impl Future<Output = Result<u64, StoreError>>;

    /// Moves `batch.records` out of the queue into the inflight slot, atomically.
    ///
    /// Fails with [`StoreError::Conflict`] (changing nothing) when a batch is already inflight or
    /// a record of the batch is no longer queued (evicted meanwhile).
    fn begin_inflight(&self, batch: &Batch) -> impl Future<Output = Result<(), StoreError>>;

    /// The inflight batch, if any.
    fn inflight(&self) -> impl Future<Output = Result<Option<Batch>, StoreError>>;

    /// Records the backoff state of the inflight batch `key`. Returns false (changing nothing)
    /// when `key` is not the inflight batch.
    fn set_inflight_retry(
        &self,
        key: &str,
        retry: &RetryState,
    ) -> impl Future<Output = Result<bool, StoreError>>;

    /// Deletes the inflight batch `ack.key` and adds it to the sent and rejected counters (and
    /// `last_rejection` when `ack.message` is set). Returns false (changing nothing) when `key`
    /// is not the inflight batch, so a repeated ack is harmless. Succeeds when storage is full
    /// (see [`OutboxStore::ack_queued`]).
    fn ack_inflight(&self, ack: &Ack) -> impl Future<Output = Result<bool, StoreError>>;

    /// [`OutboxStore::ack_inflight`] of `ack`, then [`OutboxStore::begin_inflight`] of `next`, in
    /// one transaction where the store can (a drain then commits once per batch, not twice).
    /// Returns the acknowledgement's answer and the result of taking `next`, which may fail
    /// (a conflict, storage full) without undoing the acknowledgement. `Err` only when the
    /// acknowledgement fails, and then nothing changed.
    fn ack_and_begin(
        &self,
        ack: &Ack,
        next: &Batch,
    ) -> impl Future<Output = Result<(bool, Result<(), StoreError>), StoreError>> {
        async move {
            let acked = self.ack_inflight(ack).await?;
            Ok((acked, self.begin_inflight(next).await))
        }
    }

    /// Deletes the queued records of `batch` (those still queued) and adds them to the sent and
    /// rejected counters: the acknowledgement of a batch sent straight from the queue because
    /// storage was too full to persist it as inflight. Returns how many records it deleted.
    ///
    /// Must succeed when storage is full: it only frees space. A store that cannot write its
    /// counters then (a browser refuses every write over quota, deletes aside) deletes anyway
    /// and keeps the counts in memory until a later write succeeds.
    fn ack_queued(&self, batch: &Batch, ack: &Ack)
        -> impl Future<Output = Result<u64, StoreError>>;

    /// Gives up the inflight batch `key` unsent, its records queued again ahead of every queued
    /// record, in their order, as if the batch had never been made (a batch cut from them later
    /// gets a new key). For a batch the endpoint refused as too large: nothing of it was
    /// stored there. Returns false (changing nothing) when `key` is not the inflight batch, or
    /// when the queue has no free positions before its front for the records: a batch taken
    /// from the front of the queue, as the syncer takes them, always has them.
    fn release_inflight(&self, key: &str) -> impl Future<Output = Result<bool, StoreError>>;

    /// Moves the inflight batch `key` to the dead-letter store with `failure`, then evicts the
    /// oldest dead batches (lowest first seq) while they hold more than `max_dead_records`
    /// records, counting the records. Returns false (changing nothing) when `key` is not the
    /// inflight batch.
    fn dead_letter_inflight(
        &self,
        key: &str,
        failure: &Failure,
        max_dead_records: u64,
    ) -> impl Future<Output = Result<bool, StoreError>>;

    /// The dead batches, lowest first seq first, without their records.
    fn dead_letters(&self) -> impl Future<Output = Result<Vec<DeadLetter>, StoreError>>;

    /// Moves dead batch `key`'s records to the end of the queue (not subject to the capacity cap)
    /// so they are sent again in a new batch. Returns how many records moved, or `None` when
    /// there is no such dead batch.
    fn redrive_dead_letter(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>>;

    /// Adds `n` readings the app did not record to the persisted count for `reason` (a stable
    /// code), shown in [`OutboxStats::dropped`].
    fn count_dropped(&self, reason: &str, n: u64) -> impl Future<Output = Result<(), StoreError>>;

    /// The stored collector settings, if the page has set any.
    fn sync_settings(&self) -> impl Future<Output = Result<Option<SyncSettings>, StoreError>>;

    /// Stores the collector settings, replacing any earlier ones.
    fn set_sync_settings(
        &self,
        settings: &SyncSettings,
    ) -> impl Future<Output = Result<(), StoreError>>;

    /// Current counts and the running totals.
    fn stats(&self) -> impl Future<Output = Result<OutboxStats, StoreError>>;

    /// The running totals alone (`evicted_total`, `dropped`, …; the current counts such as
    /// `queued` may be 0): what a batch reports of the device's losses, read for every batch, so
    /// a store where counting the queue or reading the dead letters costs time overrides it.
    fn totals(&self) -> impl Future<Output = Result<OutboxStats, StoreError>> {
        self.stats()
    }

    /// A value the app keeps beside the outbox under `key` (its own state, e.g. the drift
    /// statistics, as JSON text), or `None` when none is stored. The default keeps nothing: a
    /// store that does not override it makes the app start that state afresh on every open.
    fn app_value(&self, key: &str) -> impl Future<Output = Result<Option<String>, StoreError>> {
        let _ = key;
        std::future::ready(Ok(None))
    }

    /// Stores `value` under `key`, replacing any earlier one, atomically. The default stores
    /// nothing (see [`OutboxStore::app_value`]).
    fn set_app_value(
        &self,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), StoreError>> {
        let _ = (key, value);
        std::future::ready(Ok(()))
    }
}

/// A shared handle is a store: the recorder and the syncer can hold the same one.
impl<S: OutboxStore + ?Sized> OutboxStore for Rc<S> {
    fn device_id(&self) -> impl Future<Output = Result<Option<String>, StoreError>> {
        (**self).device_id()
    }
    fn init_device_id(&self, candidate: &str) -> impl Future<Output = Result<String, StoreError>> {
        (**self).init_device_id(candidate)
    }
    fn next_seq(&self) -> impl Future<Output = Result<Seq, StoreError>> {
        (**self).next_seq()
    }
    fn append_entries(
        &self,
        entries: &[Entry],
        capacity: u64,
    ) -> impl Future<Output = Result<AppendOutcome, StoreError>> {
        (**self).append_entries(entries, capacity)
    }
    fn evict_for_quota(&self, max: u64) -> impl Future<Output = Result<u64, StoreError>> {
        (**self).evict_for_quota(max)
    }
    fn oldest(&self, max: usize) -> impl Future<Output = Result<Vec<Record>, StoreError>> {
        (**self).oldest(max)
    }
    fn queued(&self) -> impl Future<Output = Result<u64, StoreError>> {
        (**self).queued()
    }
    fn begin_inflight(&self, batch: &Batch) -> impl Future<Output = Result<(), StoreError>> {
        (**self).begin_inflight(batch)
    }
    fn inflight(&self) -> impl Future<Output = Result<Option<Batch>, StoreError>> {
        (**self).inflight()
    }
    fn set_inflight_retry(
        &self,
        key: &str,
        retry: &RetryState,
    ) -> impl Future<Output = Result<bool, StoreError>> {
        (**self).set_inflight_retry(key, retry)
    }
    fn ack_inflight(&self, ack: &Ack) -> impl Future<Output = Result<bool, StoreError>> {
        (**self).ack_inflight(ack)
    }
    fn ack_and_begin(
        &self,
        ack: &Ack,
        next: &Batch,
    ) -> impl Future<Output = Result<(bool, Result<(), StoreError>), StoreError>> {
        (**self).ack_and_begin(ack, next)
    }
    fn ack_queued(
        &self,
        batch: &Batch,
        ack: &Ack,
    ) -> impl Future<Output = Result<u64, StoreError>> {
        (**self).ack_queued(batch, ack)
    }
    fn release_inflight(&self, key: &str) -> impl Future<Output = Result<bool, StoreError>> {
        (**self).release_inflight(key)
    }
    fn dead_letter_inflight(
        &self,
        key: &str,
        failure: &Failure,
        max_dead_records: u64,
    ) -> impl Future<Output = Result<bool, StoreError>> {
        (**self).dead_letter_inflight(key, failure, max_dead_records)
    }
    fn dead_letters(&self) -> impl Future<Output = Result<Vec<DeadLetter>, StoreError>> {
        (**self).dead_letters()
    }
    fn redrive_dead_letter(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<u64>, StoreError>> {
        (**self).redrive_dead_letter(key)
    }
    fn count_dropped(&self, reason: &str, n: u64) -> impl Future<Output = Result<(), StoreError>> {
        (**self).count_dropped(reason, n)
    }
    fn sync_settings(&self) -> impl Future<Output = Result<Option<SyncSettings>, StoreError>> {
        (**self).sync_settings()
    }
    fn set_sync_settings(
        &self,
        settings: &SyncSettings,
    ) -> impl Future<Output = Result<(), StoreError>> {
        (**self).set_sync_settings(settings)
    }
    fn stats(&self) -> impl Future<Output = Result<OutboxStats, StoreError>> {
        (**self).stats()
    }
    fn totals(&self) -> impl Future<Output = Result<OutboxStats, StoreError>> {
        (**self).totals()
    }
    fn app_value(&self, key: &str) -> impl Future<Output = Result<Option<String>, StoreError>> {
        (**self).app_value(key)
    }
    fn set_app_value(
        &self,
        key: &str,
        value: &str,
    ) -> impl Future<Output = Result<(), StoreError>> {
        (**self).set_app_value(key, value)
    }
}
