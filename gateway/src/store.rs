//! [`SqliteStore`]: the outbox store on SQLite, durable across `kill -9`.
//!
//! Each [`OutboxStore`] method that writes is one `BEGIN IMMEDIATE … COMMIT` transaction, and
//! returns only after it committed; the database runs in WAL mode with `synchronous = FULL`, so
//! a process killed at any instant leaves every method's effect stored entirely or not at all,
//! and a committed append survives power loss as far as SQLite and the disk promise. The layout
//! lives in [`schema`]; the statements in [`tables`]; this file holds the transactions. It passes
//! the same conformance suite as the in-memory and IndexedDB stores.
//!
//! The store owns one connection and is meant for one thread (a single-threaded runtime): each
//! method runs its SQLite calls synchronously inside its future, which never awaits. A second
//! process on the same file waits up to the busy timeout for the write lock.
//!
//! Full storage (`SQLITE_FULL`, from the disk or from [`SqliteStore::with_max_bytes`]) fails a
//! write with [`StoreError::QuotaExceeded`], storing nothing. SQLite reuses the pages of
//! deleted rows at once, so evicting or acknowledging makes room for the next write. The methods
//! that only free space must succeed even then; should writing their counts need a page that
//! is not there, they run again without the counts and keep those in memory (`pending`) until
//! the next write of the totals, as the IndexedDB store does. [`OutboxStore::stats`] shows them
//! meanwhile; a crash before that write loses them.

mod error;
mod schema;
mod tables;

use std::cell::Cell;
use std::collections::HashMap;
use std::path::Path;

use edge_anomaly::outbox::{
    Ack, AppendOutcome, Batch, DeadBatch, DeadLetter, Entry, Failure, OutboxStats, OutboxStore,
    Record, RetryState, Seq, StoreError, SyncSettings, READING_IDS_KEPT,
};
use rusqlite::{Connection, Transaction, TransactionBehavior};

use error::sql_error;
pub use error::OpenError;

/// The outbox in one SQLite database.
pub struct SqliteStore {
    /// Transactions are begun with [`Transaction::new_unchecked`] on this shared reference, so
    /// a (never intended) nested one is an error from SQLite rather than a panic.
    conn: Connection,
    /// Running totals counted while storage was too full to write them (see the module docs).
    pending: Cell<OutboxStats>,
}

/// Whether a counting method that fails for full storage runs again without writing its counts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum WhenFull {
    /// It only frees space, so it must succeed: keep its counts in memory.
    KeepCountsInMemory,
    /// It needs space itself: fail with [`StoreError::QuotaExceeded`].
    Fail,
}

impl SqliteStore {
    /// The schema version this build creates and the newest it opens.
    pub const SCHEMA_VERSION: u32 = schema::VERSION;

    /// `PRAGMA application_id` of an outbox database file.
    pub const APPLICATION_ID: i32 = schema::APPLICATION_ID;

    /// Opens the outbox database at `path`, creating it if there is none and migrating an older
    /// schema. Refuses, without writing to it, a file of a newer schema
    /// ([`OpenError::NewerSchema`]) or one that is not an outbox database
    /// ([`OpenError::Foreign`]).
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, OpenError> {
        let conn = Connection::open(path)?;
        schema::prepare(&conn, true)?;
        Ok(SqliteStore::over(conn))
    }

    /// A new outbox in memory, gone when the store is dropped (for tests).
    pub fn open_in_memory() -> Result<SqliteStore, OpenError> {
        let conn = Connection::open_in_memory()?;
        schema::prepare(&conn, false)?;
        Ok(SqliteStore::over(conn))
    }

    fn over(conn: Connection) -> SqliteStore {
        SqliteStore { conn, pending: Cell::new(OutboxStats::default()) }
    }

    /// This store with its database capped at about `max_bytes` (rounded down to whole pages,
    /// but never below the pages already in use): a write that needs more fails with
    /// [`StoreError::QuotaExceeded`], as when the disk is full. The cap holds for this
    /// connection only (`PRAGMA max_page_count`) and bounds the database's pages, not the
    /// write-ahead log.
    pub fn with_max_bytes(self, max_bytes: u64) -> Result<SqliteStore, StoreError> {
        let page_size: u32 =
            self.conn.pragma_query_value(None, "page_size", |row| row.get(0)).map_err(sql_error)?;
        let pages = tables::int((max_bytes / u64::from(page_size.max(1))).max(1))?;
        self.conn.pragma_update(None, "max_page_count", pages).map_err(sql_error)?;
        Ok(self)
    }

    /// Runs `work` in one write transaction and commits it; an error rolls everything back.
    fn write<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Immediate)
            .map_err(sql_error)?;
        let value = work(&tx)?;
        tx.commit().map_err(sql_error)?;
        Ok(value)
    }

    /// Runs `work` in one read transaction, so what it reads is one consistent state.
    fn read<T>(
        &self,
        work: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let tx = Transaction::new_unchecked(&self.conn, TransactionBehavior::Deferred)
            .map_err(sql_error)?;
        work(&tx)
    }

    /// Runs `work`, a write that counts something in the totals (it returns its value and its
    /// counts), adding its counts and the pending ones to the stored totals in the same
    /// transaction. See [`WhenFull`] for a failure for full storage; after any other failure
    /// the pending counts stay pending.
    fn counting<T>(
        &self,
        when_full: WhenFull,
        work: impl Fn(&Connection) -> Result<(T, OutboxStats), StoreError>,
    ) -> Result<T, StoreError> {
        let pending = self.pending.take();
        let error = match self.write(|tx| {
            let (value, counts) = work(tx)?;
            tables::add_totals(tx, &pending, &counts)?;
            Ok(value)
        }) {
            Ok(value) => return Ok(value),
            Err(e) => e,
        };
        self.add_pending(&pending);
        if !(when_full == WhenFull::KeepCountsInMemory
            && matches!(error, StoreError::QuotaExceeded(_)))
        {
            return Err(error);
        }
        let (value, counts) = self.write(&work)?;
        self.add_pending(&counts);
        Ok(value)
    }

    fn add_pending(&self, counts: &OutboxStats) {
        let mut pending = self.pending.take();
        pending.add_totals(counts);
        self.pending.set(pending);
    }
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.conn.path()).finish_non_exhaustive()
    }
}

/// The append of [`OutboxStore::append_entries`], inside its transaction.
fn append(
    tx: &Connection,
    entries: &[Entry],
    capacity: u64,
) -> Result<(AppendOutcome, OutboxStats), StoreError> {
    let (first_seq, mut pos) = tables::counters(tx)?;
    // Decide first which entries are new and the seq each gets.
    let mut seen: HashMap<&str, Seq> = HashMap::new();
    let mut already = Vec::new();
    let mut fresh = Vec::new();
    let mut next = first_seq;
    for (index, entry) in entries.iter().enumerate() {
        if let Some(id) = entry.reading_id.as_deref() {
            let known = match seen.get(id) {
                Some(&seq) => Some(seq),
                None => tables::reading_seq(tx, id)?,
            };
            if let Some(seq) = known {
                already.push((index, seq));
                continue;
            }
            seen.insert(id, next);
        }
        fresh.push((next, entry));
        next = next
            .checked_add(1)
            .ok_or_else(|| StoreError::Backend("sequence counter overflow".into()))?;
    }
    let stored = fresh.len() as u64;
    let queued = tables::queued(tx)?;
    let excess = (queued + stored).saturating_sub(capacity);
    // Evict for the cap before storing, so the pages it frees hold the new records; what the
    // cap still wants gone after that is the front of the new records.
    let mut evicted = tables::delete_front(tx, excess.min(queued))?;
    for (seq, entry) in fresh {
        if let Some(id) = entry.reading_id.as_deref() {
            tables::remember_reading(tx, id, seq)?;
        }
        tables::enqueue(tx, pos, &Record::new(seq, entry.clone()))?;
        pos += 1;
    }
    if stored > 0 {
        tables::set_counters(tx, next, pos)?;
    }
    tables::forget_readings_before(tx, next.saturating_sub(READING_IDS_KEPT))?;
    evicted += tables::delete_front(tx, excess - evicted)?;
    let counts = OutboxStats { evicted_total: evicted, ..OutboxStats::default() };
    Ok((AppendOutcome { first_seq, stored, evicted, already }, counts))
}

impl OutboxStore for SqliteStore {
    async fn device_id(&self) -> Result<Option<String>, StoreError> {
        tables::device_id(&self.conn)
    }

    async fn init_device_id(&self, candidate: &str) -> Result<String, StoreError> {
        self.write(|tx| match tables::device_id(tx)? {
            Some(id) => Ok(id),
            None => {
                tables::set_device_id(tx, candidate)?;
                Ok(candidate.to_owned())
            }
        })
    }

    async fn next_seq(&self) -> Result<Seq, StoreError> {
        Ok(tables::counters(&self.conn)?.0)
    }

    async fn append_entries(
        &self,
        entries: &[Entry],
        capacity: u64,
    ) -> Result<AppendOutcome, StoreError> {
        self.counting(WhenFull::Fail, |tx| append(tx, entries, capacity))
    }

    async fn evict_for_quota(&self, max: u64) -> Result<u64, StoreError> {
        self.counting(WhenFull::KeepCountsInMemory, |tx| {
            let evicted = tables::delete_front(tx, max)?;
            let counts = OutboxStats {
                evicted_total: evicted,
                evicted_quota_total: evicted,
                ..OutboxStats::default()
            };
            Ok((evicted, counts))
        })
    }

    async fn oldest(&self, max: usize) -> Result<Vec<Record>, StoreError> {
        if max == 0 {
            return Ok(Vec::new());
        }
        tables::oldest(&self.conn, max)
    }

    async fn queued(&self) -> Result<u64, StoreError> {
        tables::queued(&self.conn)
    }

    async fn begin_inflight(&self, batch: &Batch) -> Result<(), StoreError> {
        self.write(|tx| {
            if let Some((key, _)) = tables::inflight_summary(tx)? {
                return Err(StoreError::Conflict(format!("batch {key} is already inflight")));
            }
            for record in &batch.records {
                if !tables::dequeue(tx, record.seq)? {
                    // Returning the error rolls back the records already taken out.
                    return Err(StoreError::Conflict(format!(
                        "record {} is no longer queued",
                        record.seq
                    )));
                }
            }
            tables::put_inflight(tx, batch)
        })
    }

    async fn inflight(&self) -> Result<Option<Batch>, StoreError> {
        tables::inflight(&self.conn)
    }

    async fn set_inflight_retry(&self, key: &str, retry: &RetryState) -> Result<bool, StoreError> {
        self.write(|tx| tables::set_inflight_retry(tx, key, retry))
    }

    async fn ack_inflight(&self, ack: &Ack) -> Result<bool, StoreError> {
        self.counting(WhenFull::KeepCountsInMemory, |tx| {
            let mut counts = OutboxStats::default();
            let Some(records) = tables::delete_inflight(tx, &ack.key)? else {
                return Ok((false, counts));
            };
            counts.count_sent(records, ack);
            Ok((true, counts))
        })
    }

    async fn ack_queued(&self, batch: &Batch, ack: &Ack) -> Result<u64, StoreError> {
        self.counting(WhenFull::KeepCountsInMemory, |tx| {
            let mut deleted = 0;
            for record in &batch.records {
                if tables::dequeue(tx, record.seq)? {
                    deleted += 1;
                }
            }
            let mut counts = OutboxStats::default();
            counts.count_sent(deleted, ack);
            Ok((deleted, counts))
        })
    }

    async fn release_inflight(&self, key: &str) -> Result<bool, StoreError> {
        self.write(|tx| {
            let Some(batch) = tables::inflight(tx)?.filter(|b| b.key == key) else {
                return Ok(false);
            };
            // Back ahead of every queued record, where the positions before the front allow.
            let front = match tables::front(tx)? {
                Some(pos) => pos,
                None => tables::counters(tx)?.1,
            };
            let n = batch.records.len() as u64;
            let Some(base) = front.checked_sub(n) else { return Ok(false) };
            tables::delete_inflight(tx, key)?;
            for (pos, record) in (base..).zip(&batch.records) {
                tables::enqueue(tx, pos, record)?;
            }
            Ok(true)
        })
    }

    async fn dead_letter_inflight(
        &self,
        key: &str,
        failure: &Failure,
        max_dead_records: u64,
    ) -> Result<bool, StoreError> {
        self.counting(WhenFull::Fail, |tx| {
            let Some(batch) = tables::inflight(tx)?.filter(|b| b.key == key) else {
                return Ok((false, OutboxStats::default()));
            };
            tables::delete_inflight(tx, key)?;
            let dead =
                DeadBatch { key: batch.key, records: batch.records, failure: failure.clone() };
            tables::put_dead(tx, &dead)?;
            let dead_letter_evicted_total = tables::evict_dead(tx, max_dead_records)?;
            let counts = OutboxStats {
                dead_lettered_batches_total: 1,
                dead_letter_evicted_total,
                ..OutboxStats::default()
            };
            Ok((true, counts))
        })
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        tables::dead_letters(&self.conn)
    }

    async fn redrive_dead_letter(&self, key: &str) -> Result<Option<u64>, StoreError> {
        self.write(|tx| {
            let Some(records) = tables::take_dead(tx, key)? else { return Ok(None) };
            let (_, mut pos) = tables::counters(tx)?;
            for record in &records {
                tables::enqueue(tx, pos, record)?;
                pos += 1;
            }
            tables::set_next_pos(tx, pos)?;
            Ok(Some(records.len() as u64))
        })
    }

    async fn count_dropped(&self, reason: &str, n: u64) -> Result<(), StoreError> {
        self.counting(WhenFull::KeepCountsInMemory, |_| {
            let mut counts = OutboxStats::default();
            counts.dropped.insert(reason.to_owned(), n);
            Ok(((), counts))
        })
    }

    async fn sync_settings(&self) -> Result<Option<SyncSettings>, StoreError> {
        tables::sync_settings(&self.conn)
    }

    async fn set_sync_settings(&self, settings: &SyncSettings) -> Result<(), StoreError> {
        self.write(|tx| tables::set_sync_settings(tx, settings))
    }

    async fn stats(&self) -> Result<OutboxStats, StoreError> {
        let pending = self.pending.take();
        let stats = self.read(|tx| {
            let (dead_letter_batches, dead_letter_records) = tables::dead_counts(tx)?;
            let mut totals = tables::totals(tx)?;
            totals.add_totals(&pending);
            Ok(OutboxStats {
                queued: tables::queued(tx)?,
                inflight_records: tables::inflight_summary(tx)?.map_or(0, |(_, n)| n),
                dead_letter_batches,
                dead_letter_records,
                ..totals
            })
        });
        self.pending.set(pending);
        stats
    }
}
