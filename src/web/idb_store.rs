//! [`IdbStore`]: the outbox's [`OutboxStore`] over IndexedDB (via the `idb` crate), for the
//! service worker.
//!
//! Each trait method is one IndexedDB transaction over the stores it touches, so it is atomic
//! and a worker killed at any point leaves a consistent outbox; a method returns only after its
//! transaction committed (an aborted one is an error, "storage full" included). Nothing but
//! IndexedDB requests is awaited inside a transaction (awaiting `fetch` would auto-commit it).
//! The schema lives in [`super::idb_schema`] and the shapes in the core, so this file is only
//! the mapping. It passes the same conformance suite as [`crate::outbox::MemoryStore`].
//!
//! Full storage: Chromium refuses every transaction that writes anything while the origin is
//! over its quota, but lets transactions that only delete commit (and gives the space back only
//! when the database compacts, later). So the methods that free space (acknowledging, evicting)
//! and [`OutboxStore::count_dropped`] first try to write their counts with them; refused for
//! quota, they run again delete-only and keep the counts in memory (`pending`), which the next
//! transaction that writes the totals adds in and [`OutboxStore::stats`] shows meanwhile.
//!
//! The connection can be closed under the store: a newer worker's upgrade (`versionchange`) or
//! the user clearing site data. The next transaction then fails to open with
//! `InvalidStateError`; the store reopens the database once and carries on.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::{Future, IntoFuture};

use idb::request::futures::GetStoreRequestFuture;
use idb::{Database, KeyRange, ObjectStore, Query, Transaction, TransactionMode};
use js_sys::Reflect;
use serde::{de::DeserializeOwned, Serialize};
use wasm_bindgen::JsValue;

use super::idb_inflight::{self as inflight, Slot};
use super::idb_schema::{
    self as schema, commit, error_name, queue_value, store_error, DEAD, INFLIGHT, META, QUEUE,
    QUEUE_BY_SEQ, READING_IDS, READING_IDS_BY_ID, SENDING,
};
use crate::outbox::{
    stored, Ack, AppendOutcome, Batch, DeadBatch, DeadLetter, Entry, Failure, OutboxStats,
    OutboxStore, Record, RetryState, Seq, StoreError, SyncSettings, READING_IDS_KEPT,
};

/// The outbox in one IndexedDB database.
pub struct IdbStore {
    name: String,
    upgrade_timeout_ms: u32,
    db: RefCell<Database>,
    /// Running totals counted while storage refused to write them (see the module docs). Lost
    /// if the worker stops before a write succeeds, the price of deleting when nothing else can
    /// be written.
    pending: RefCell<OutboxStats>,
}

impl IdbStore {
    /// The schema version this build opens outbox databases at.
    pub const SCHEMA_VERSION: u32 = schema::VERSION;

    /// Opens (or creates, or upgrades) the outbox database `name`. Fails with
    /// [`StoreError::UpgradeBlocked`] when an upgrade waits on older connections for more than
    /// [`schema::UPGRADE_TIMEOUT_MS`].
    pub async fn open(name: &str) -> Result<IdbStore, StoreError> {
        IdbStore::open_with_timeout(name, schema::UPGRADE_TIMEOUT_MS).await
    }

    /// [`IdbStore::open`] with another upgrade deadline (also used when reopening).
    pub async fn open_with_timeout(
        name: &str,
        upgrade_timeout_ms: u32,
    ) -> Result<IdbStore, StoreError> {
        let db = schema::open(name, upgrade_timeout_ms).await?;
        Ok(IdbStore {
            name: name.to_owned(),
            upgrade_timeout_ms,
            db: RefCell::new(db),
            pending: RefCell::new(OutboxStats::default()),
        })
    }

    /// Runs `tx`, a transaction that counts something in the totals. It gets the pending totals
    /// to write with its own counts (`Some`), and returns its value and its counts. If it fails,
    /// the pending totals are kept; if it fails for quota and `delete_only_fallback` is set, it
    /// runs again told to write no totals (`None`), and its counts join the pending ones.
    async fn counting<T, F, Fut>(&self, delete_only_fallback: bool, tx: F) -> Result<T, StoreError>
    where
        F: Fn(Option<OutboxStats>) -> Fut,
        Fut: Future<Output = Result<(T, OutboxStats), StoreError>>,
    {
        let taken = self.pending.take();
        let error = match tx(Some(taken.clone())).await {
            Ok((value, _)) => return Ok(value),
            Err(e) => e,
        };
        self.pending.borrow_mut().add_totals(&taken);
        if !(delete_only_fallback && matches!(error, StoreError::QuotaExceeded(_))) {
            return Err(error);
        }
        let (value, counts) = tx(None).await?;
        self.pending.borrow_mut().add_totals(&counts);
        Ok(value)
    }

    /// A transaction over `stores`. When the connection was closed under us, reopens the
    /// database once (nothing was done yet, so nothing is repeated).
    async fn tx(&self, stores: &[&str], mode: TransactionMode) -> Result<Transaction, StoreError> {
        let first = self.db.borrow().transaction(stores, mode);
        match first {
            Ok(tx) => return Ok(tx),
            Err(e) if error_name(&e).as_deref() == Some("InvalidStateError") => {}
            Err(e) => return Err(store_error(&e)),
        }
        let fresh = schema::open(&self.name, self.upgrade_timeout_ms).await?;
        self.db.replace(fresh).close();
        let retry = self.db.borrow().transaction(stores, mode);
        retry.map_err(|e| store_error(&e))
    }
}

pub(super) fn err(e: idb::Error) -> StoreError {
    store_error(&e)
}

pub(super) fn key(n: u64) -> JsValue {
    // Exact below 2^53, far beyond any device's reading count.
    JsValue::from_f64(n as f64)
}

fn store(tx: &Transaction, name: &str) -> Result<ObjectStore, StoreError> {
    tx.object_store(name).map_err(err)
}

pub(super) fn encode<T: Serialize>(value: &T) -> Result<JsValue, StoreError> {
    Ok(JsValue::from_str(&stored::encode(value)?))
}

pub(super) fn decode<T: DeserializeOwned>(value: &JsValue) -> Result<T, StoreError> {
    let text =
        value.as_string().ok_or_else(|| StoreError::Corrupt("value is not a string".into()))?;
    stored::decode(&text)
}

fn field(value: &JsValue, name: &str) -> Result<JsValue, StoreError> {
    Reflect::get(value, &JsValue::from_str(name))
        .map_err(|_| StoreError::Corrupt(format!("no {name:?} in a stored value")))
}

fn number_field(value: &JsValue, name: &str) -> Result<u64, StoreError> {
    field(value, name)?
        .as_f64()
        .map(|n| n as u64)
        .ok_or_else(|| StoreError::Corrupt(format!("{name:?} is not a number")))
}

pub(super) fn queued_record(value: &JsValue) -> Result<Record, StoreError> {
    decode(&field(value, "record")?)
}

fn reading_id_value(id: &str, seq: Seq) -> Result<JsValue, StoreError> {
    let object = js_sys::Object::new();
    let set = |k: &str, v: &JsValue| {
        Reflect::set(&object, &JsValue::from_str(k), v)
            .map_err(|_| StoreError::Backend("cannot build a stored value".into()))
    };
    set("id", &JsValue::from_str(id))?;
    set("seq", &key(seq))?;
    Ok(object.into())
}

/// Issues a `get` of `k` in `store`, to be awaited (and [`decoded`]) after other requests.
fn issue_get(store: &ObjectStore, k: &str) -> Result<GetStoreRequestFuture, StoreError> {
    Ok(store.get(JsValue::from_str(k)).map_err(err)?.into_future())
}

/// The value an [`issue_get`] found, if any.
fn decoded<T: DeserializeOwned>(
    found: Result<Option<JsValue>, idb::Error>,
) -> Result<Option<T>, StoreError> {
    match found.map_err(err)? {
        Some(v) if !v.is_undefined() => decode(&v).map(Some),
        _ => Ok(None),
    }
}

async fn get<T: DeserializeOwned>(store: &ObjectStore, k: &str) -> Result<Option<T>, StoreError> {
    match store.get(JsValue::from_str(k)).map_err(err)?.await.map_err(err)? {
        Some(v) if !v.is_undefined() => decode(&v).map(Some),
        _ => Ok(None),
    }
}

async fn put<T: Serialize>(store: &ObjectStore, k: &str, value: &T) -> Result<(), StoreError> {
    store.put(&encode(value)?, Some(&JsValue::from_str(k))).map_err(err)?.await.map_err(err)?;
    Ok(())
}

async fn put_at(store: &ObjectStore, k: JsValue, value: &JsValue) -> Result<(), StoreError> {
    store.put(value, Some(&k)).map_err(err)?.await.map_err(err)?;
    Ok(())
}

async fn count(store: &ObjectStore) -> Result<u64, StoreError> {
    Ok(u64::from(store.count(None).map_err(err)?.await.map_err(err)?))
}

async fn totals(meta: &ObjectStore) -> Result<OutboxStats, StoreError> {
    Ok(get(meta, schema::META_TOTALS).await?.unwrap_or_default())
}

/// Where the record `seq` sits in the queue (its key there), or `None` when it is not queued.
async fn queue_position(by_seq: &idb::Index, seq: Seq) -> Result<Option<JsValue>, StoreError> {
    let pos = by_seq.get_key(key(seq)).map_err(err)?.await.map_err(err)?;
    Ok(pos.filter(|p| !p.is_undefined()))
}

/// Deletes the batch being sent if it is batch `key`, returning how many records it held and,
/// when `whole`, the batch itself (a range batch's records are read only then); `None`
/// (changing nothing) when another batch or none is being sent.
async fn take_inflight(
    tx: &Transaction,
    key: &str,
    whole: bool,
) -> Result<Option<(u64, Option<Batch>)>, StoreError> {
    let (queue, copied, sending) = (store(tx, QUEUE)?, store(tx, INFLIGHT)?, store(tx, SENDING)?);
    match inflight::read(&copied, &sending).await? {
        Some(Slot::Copied(batch)) if batch.key == key => {
            let slot = JsValue::from_str(schema::INFLIGHT_KEY);
            copied.delete(slot).map_err(err)?.await.map_err(err)?;
            Ok(Some((batch.records.len() as u64, Some(batch))))
        }
        Some(Slot::Range(head)) if head.key == key => {
            let n = head.records;
            let batch = if whole {
                Some(inflight::batch_of(&queue, &sending, head.clone()).await?)
            } else {
                None
            };
            inflight::delete(&queue, &sending, &head).await?;
            Ok(Some((n, batch)))
        }
        _ => Ok(None),
    }
}

/// The queue range of the batch being sent, if it is a range batch.
async fn sending_range(sending: &ObjectStore) -> Result<Option<(u64, u64)>, StoreError> {
    Ok(inflight::read_head(sending).await?.map(|h| (h.first_pos, h.last_pos)))
}

/// Queued records: the queue's entries less a range batch's.
async fn queued_count(queue: &ObjectStore, sending: &ObjectStore) -> Result<u64, StoreError> {
    let head = inflight::read_head(sending).await?;
    Ok(count(queue).await?.saturating_sub(head.map_or(0, |h| h.records)))
}

/// Adds `pending` and `counts` to the totals in `tx` (see [`add_totals`]), commits, and hands
/// back `value` with the counts.
async fn commit_counts<T>(
    tx: Transaction,
    meta: &ObjectStore,
    pending: Option<&OutboxStats>,
    counts: OutboxStats,
    value: T,
) -> Result<(T, OutboxStats), StoreError> {
    add_totals(meta, pending, &counts).await?;
    commit(tx, meta).await?;
    Ok((value, counts))
}

/// Adds `pending` (when the transaction writes totals) and `counts` to the stored totals.
async fn add_totals(
    meta: &ObjectStore,
    pending: Option<&OutboxStats>,
    counts: &OutboxStats,
) -> Result<(), StoreError> {
    let Some(pending) = pending else { return Ok(()) };
    if !pending.has_totals() && !counts.has_totals() {
        return Ok(());
    }
    let mut t = totals(meta).await?;
    t.add_totals(pending);
    t.add_totals(counts);
    put(meta, schema::META_TOTALS, &t).await
}

async fn all_dead(dead: &ObjectStore) -> Result<Vec<(JsValue, DeadBatch)>, StoreError> {
    let keys = dead.get_all_keys(None, None).map_err(err)?.await.map_err(err)?;
    let values = dead.get_all(None, None).map_err(err)?.await.map_err(err)?;
    keys.into_iter().zip(&values).map(|(k, v)| Ok((k, decode(v)?))).collect()
}

/// The transactions that count something in the totals, run through [`IdbStore::counting`]:
/// each writes the totals (stored + `pending` + its own counts) when `pending` is `Some`, and
/// returns its counts.
impl IdbStore {
    async fn append_tx(
        &self,
        entries: &[Entry],
        capacity: u64,
        pending: Option<OutboxStats>,
    ) -> Result<(AppendOutcome, OutboxStats), StoreError> {
        let stores = [QUEUE, READING_IDS, SENDING, META];
        let tx = self.tx(&stores, TransactionMode::ReadWrite).await?;
        let (queue, ids, meta) = (store(&tx, QUEUE)?, store(&tx, READING_IDS)?, store(&tx, META)?);
        let sending = store(&tx, SENDING)?;
        let first_seq = issue_get(&meta, schema::META_NEXT_SEQ)?;
        let pos = issue_get(&meta, schema::META_NEXT_POS)?;
        let head = issue_get(&sending, schema::SENDING_HEAD)?;
        let front = queue.get_all_keys(None, Some(1)).map_err(err)?.into_future();
        let first_seq: Seq = decoded(first_seq.await)?.unwrap_or(0);
        let mut pos: u64 = decoded(pos.await)?.unwrap_or(0);
        let head: Option<inflight::RangeHead> = decoded(head.await)?;
        let first_pos = pos;
        let front = front.await.map_err(err)?.first().and_then(|k| k.as_f64()).map(|k| k as u64);
        let by_id = ids.index(READING_IDS_BY_ID).map_err(err)?;
        // Every id is looked up, and every write issued, before any is awaited: the requests
        // run in order within the transaction either way, and one await per request would cost
        // a round trip through the event loop each.
        let lookups = entries
            .iter()
            .map(|e| e.reading_id.as_deref().map(|id| by_id.get(JsValue::from_str(id))))
            .map(|request| request.map(|r| r.map(IntoFuture::into_future)).transpose())
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        let mut known = Vec::with_capacity(lookups.len());
        for lookup in lookups {
            known.push(match lookup {
                Some(found) => found.await.map_err(err)?.filter(|v| !v.is_undefined()),
                None => None,
            });
        }
        let mut seen: HashMap<&str, Seq> = HashMap::new();
        let mut already = Vec::new();
        let mut writes = Vec::with_capacity(entries.len());
        let mut next = first_seq;
        for (index, (entry, known)) in entries.iter().zip(known).enumerate() {
            if let Some(id) = entry.reading_id.as_deref() {
                if let Some(&seq) = seen.get(id) {
                    already.push((index, seq));
                    continue;
                }
                if let Some(value) = known {
                    already.push((index, number_field(&value, "seq")?));
                    continue;
                }
                seen.insert(id, next);
                writes.push(
                    ids.put(&reading_id_value(id, next)?, Some(&key(next)))
                        .map_err(err)?
                        .into_future(),
                );
            }
            let record = stored::encode(&Record::new(next, entry.clone()))?;
            let value = queue_value(pos as f64, next as f64, &record)?;
            writes.push(queue.put(&value, Some(&key(pos))).map_err(err)?.into_future());
            next += 1;
            pos += 1;
        }
        if next > first_seq {
            for (k, n) in [(schema::META_NEXT_SEQ, next), (schema::META_NEXT_POS, pos)] {
                let value = encode(&n)?;
                writes.push(
                    meta.put(&value, Some(&JsValue::from_str(k))).map_err(err)?.into_future(),
                );
            }
        }
        let horizon = next.saturating_sub(READING_IDS_KEPT);
        let forget = match horizon {
            0 => None,
            _ => {
                let old = KeyRange::upper_bound(&key(horizon), Some(true)).map_err(err)?;
                Some(ids.delete(Query::from(old)).map_err(err)?.into_future())
            }
        };
        let sent_from_queue = head.as_ref().map_or(0, |h| h.records);
        // Counting the queue costs time in proportion to its length (a day's backlog is
        // hundreds of thousands of records), so it is counted only when the span of queue
        // positions, an upper bound of its length, could exceed the capacity.
        let span = pos - front.map_or(first_pos, |f| f.min(first_pos));
        let held = (span.saturating_sub(sent_from_queue) > capacity)
            .then(|| queue.count(None).map(IntoFuture::into_future))
            .transpose()
            .map_err(err)?;
        for write in writes {
            write.await.map_err(err)?;
        }
        if let Some(forget) = forget {
            forget.await.map_err(err)?;
        }
        let over = match held {
            Some(held) => {
                let queued = u64::from(held.await.map_err(err)?).saturating_sub(sent_from_queue);
                queued.saturating_sub(capacity)
            }
            None => 0,
        };
        let skip = head.map(|h| (h.first_pos, h.last_pos));
        let evicted = inflight::delete_front(&queue, over, skip).await?;
        let counts = OutboxStats { evicted_total: evicted, ..OutboxStats::default() };
        let outcome = AppendOutcome { first_seq, stored: next - first_seq, evicted, already };
        commit_counts(tx, &meta, pending.as_ref(), counts, outcome).await
    }

    async fn evict_tx(
        &self,
        max: u64,
        pending: Option<OutboxStats>,
    ) -> Result<(u64, OutboxStats), StoreError> {
        let tx = self.tx(&[QUEUE, SENDING, META], TransactionMode::ReadWrite).await?;
        let (queue, meta) = (store(&tx, QUEUE)?, store(&tx, META)?);
        let skip = sending_range(&store(&tx, SENDING)?).await?;
        let evicted = inflight::delete_front(&queue, max, skip).await?;
        let counts = OutboxStats {
            evicted_total: evicted,
            evicted_quota_total: evicted,
            ..OutboxStats::default()
        };
        commit_counts(tx, &meta, pending.as_ref(), counts, evicted).await
    }

    async fn ack_inflight_tx(
        &self,
        ack: &Ack,
        pending: Option<OutboxStats>,
    ) -> Result<(bool, OutboxStats), StoreError> {
        let stores = [QUEUE, INFLIGHT, SENDING, META];
        let tx = self.tx(&stores, TransactionMode::ReadWrite).await?;
        let Some((records, _)) = take_inflight(&tx, &ack.key, false).await? else {
            return Ok((false, OutboxStats::default()));
        };
        let mut counts = OutboxStats::default();
        counts.count_sent(records, ack);
        let meta = store(&tx, META)?;
        commit_counts(tx, &meta, pending.as_ref(), counts, true).await
    }

    /// [`OutboxStore::ack_and_begin`] in one transaction, when the batch being sent is the range
    /// batch `ack.key`: acknowledges it and, when `next` is a run of the queue, takes `next` as
    /// the range being sent. `Some(taken)` when it acknowledged (`taken: false`: the caller
    /// takes `next` in a transaction of its own, which reports why not); `None`, changing
    /// nothing, when the batch being sent is not that range batch (the caller then goes step by
    /// step). Two round trips and the commit: every read is issued before any is awaited.
    async fn ack_begin_tx(
        &self,
        ack: &Ack,
        next: &Batch,
        pending: &OutboxStats,
    ) -> Result<Option<bool>, StoreError> {
        let stores = [QUEUE, INFLIGHT, SENDING, META];
        let tx = self.tx(&stores, TransactionMode::ReadWrite).await?;
        let (queue, copied, sending) =
            (store(&tx, QUEUE)?, store(&tx, INFLIGHT)?, store(&tx, SENDING)?);
        let meta = store(&tx, META)?;
        let stored_totals = issue_get(&meta, schema::META_TOTALS)?;
        let ends = inflight::ends(&queue, next)?;
        let head = match inflight::read(&copied, &sending).await? {
            Some(Slot::Range(head)) if head.key == ack.key => head,
            _ => return Ok(None),
        };
        let mut totals: OutboxStats = decoded(stored_totals.await)?.unwrap_or_default();
        // A `next` that cannot be taken (not a run, its records gone) is left to the caller's
        // own transaction, which says why; this one still commits the acknowledgement.
        let run = match ends {
            Some(ends) => inflight::run_from(&queue, next, ends).await.ok().flatten(),
            None => None,
        };
        let mut counts = OutboxStats::default();
        counts.count_sent(head.records, ack);
        totals.add_totals(pending);
        totals.add_totals(&counts);
        let totals = meta.put(&encode(&totals)?, Some(&JsValue::from_str(schema::META_TOTALS)));
        let totals = totals.map_err(err)?.into_future();
        inflight::replace(&queue, &sending, &head, run.map(|r| (next, r))).await?;
        totals.await.map_err(err)?;
        commit(tx, &meta).await?;
        Ok(Some(run.is_some()))
    }

    async fn ack_queued_tx(
        &self,
        batch: &Batch,
        ack: &Ack,
        pending: Option<OutboxStats>,
    ) -> Result<(u64, OutboxStats), StoreError> {
        let tx = self.tx(&[QUEUE, META], TransactionMode::ReadWrite).await?;
        let queue = store(&tx, QUEUE)?;
        let by_seq = queue.index(QUEUE_BY_SEQ).map_err(err)?;
        let mut deleted = 0;
        for r in &batch.records {
            if let Some(pos) = queue_position(&by_seq, r.seq).await? {
                queue.delete(pos).map_err(err)?.await.map_err(err)?;
                deleted += 1;
            }
        }
        let mut counts = OutboxStats::default();
        counts.count_sent(deleted, ack);
        let meta = store(&tx, META)?;
        commit_counts(tx, &meta, pending.as_ref(), counts, deleted).await
    }

    async fn dead_letter_tx(
        &self,
        k: &str,
        failure: &Failure,
        max_dead_records: u64,
        pending: Option<OutboxStats>,
    ) -> Result<(bool, OutboxStats), StoreError> {
        let stores = [QUEUE, INFLIGHT, SENDING, DEAD, META];
        let tx = self.tx(&stores, TransactionMode::ReadWrite).await?;
        let Some((_, Some(batch))) = take_inflight(&tx, k, true).await? else {
            return Ok((false, OutboxStats::default()));
        };
        let first = batch.first_seq();
        let dead_batch =
            DeadBatch { key: batch.key, records: batch.records, failure: failure.clone() };
        let dead = store(&tx, DEAD)?;
        put_at(&dead, key(first), &encode(&dead_batch)?).await?;
        let mut counts = OutboxStats { dead_lettered_batches_total: 1, ..OutboxStats::default() };
        // Key order: lowest first seq first, the eviction order.
        let held_batches = all_dead(&dead).await?;
        let mut held: u64 = held_batches.iter().map(|(_, d)| d.records.len() as u64).sum();
        for (dead_key, oldest) in held_batches {
            if held <= max_dead_records {
                break;
            }
            let n = oldest.records.len() as u64;
            dead.delete(dead_key).map_err(err)?.await.map_err(err)?;
            held -= n;
            counts.dead_letter_evicted_total += n;
        }
        let meta = store(&tx, META)?;
        commit_counts(tx, &meta, pending.as_ref(), counts, true).await
    }

    async fn count_dropped_tx(
        &self,
        reason: &str,
        n: u64,
        pending: Option<OutboxStats>,
    ) -> Result<((), OutboxStats), StoreError> {
        let mut counts = OutboxStats::default();
        counts.dropped.insert(reason.to_owned(), n);
        if pending.is_none() {
            return Ok(((), counts));
        }
        let tx = self.tx(&[META], TransactionMode::ReadWrite).await?;
        let meta = store(&tx, META)?;
        commit_counts(tx, &meta, pending.as_ref(), counts, ()).await
    }
}

impl OutboxStore for IdbStore {
    async fn device_id(&self) -> Result<Option<String>, StoreError> {
        let tx = self.tx(&[META], TransactionMode::ReadOnly).await?;
        get(&store(&tx, META)?, schema::META_DEVICE_ID).await
    }

    async fn init_device_id(&self, candidate: &str) -> Result<String, StoreError> {
        let tx = self.tx(&[META], TransactionMode::ReadWrite).await?;
        let meta = store(&tx, META)?;
        let id = match get::<String>(&meta, schema::META_DEVICE_ID).await? {
            Some(id) => id,
            None => {
                put(&meta, schema::META_DEVICE_ID, &candidate).await?;
                candidate.to_owned()
            }
        };
        commit(tx, &meta).await?;
        Ok(id)
    }

    async fn next_seq(&self) -> Result<Seq, StoreError> {
        let tx = self.tx(&[META], TransactionMode::ReadOnly).await?;
        Ok(get(&store(&tx, META)?, schema::META_NEXT_SEQ).await?.unwrap_or(0))
    }

    async fn append_entries(
        &self,
        entries: &[Entry],
        capacity: u64,
    ) -> Result<AppendOutcome, StoreError> {
        self.counting(false, |pending| self.append_tx(entries, capacity, pending)).await
    }

    async fn evict_for_quota(&self, max: u64) -> Result<u64, StoreError> {
        self.counting(true, |pending| self.evict_tx(max, pending)).await
    }

    async fn oldest(&self, max: usize) -> Result<Vec<Record>, StoreError> {
        let limit = u32::try_from(max).unwrap_or(u32::MAX);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let tx = self.tx(&[QUEUE, SENDING], TransactionMode::ReadOnly).await?;
        let skip = sending_range(&store(&tx, SENDING)?).await?;
        inflight::oldest(&store(&tx, QUEUE)?, limit, skip).await
    }

    async fn queued(&self) -> Result<u64, StoreError> {
        let tx = self.tx(&[QUEUE, SENDING], TransactionMode::ReadOnly).await?;
        queued_count(&store(&tx, QUEUE)?, &store(&tx, SENDING)?).await
    }

    async fn begin_inflight(&self, batch: &Batch) -> Result<(), StoreError> {
        let tx = self.tx(&[QUEUE, INFLIGHT, SENDING], TransactionMode::ReadWrite).await?;
        let (queue, copied, sending) =
            (store(&tx, QUEUE)?, store(&tx, INFLIGHT)?, store(&tx, SENDING)?);
        if let Some(current) = inflight::read(&copied, &sending).await? {
            let key = current.key();
            return Err(StoreError::Conflict(format!("batch {key} is already inflight")));
        }
        if let Some(range) = inflight::run_of(&queue, batch).await? {
            inflight::begin(&sending, batch, range).await?;
            return commit(tx, &sending).await;
        }
        // Not a run of the queue: the records move into the batch.
        let by_seq = queue.index(QUEUE_BY_SEQ).map_err(err)?;
        // All lookups, then all deletes, issued before any is awaited (see `append_tx`).
        let lookups = batch
            .records
            .iter()
            .map(|r| by_seq.get_key(key(r.seq)).map(IntoFuture::into_future))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        let mut positions = Vec::with_capacity(batch.records.len());
        for (r, lookup) in batch.records.iter().zip(lookups) {
            match lookup.await.map_err(err)?.filter(|p| !p.is_undefined()) {
                Some(pos) => positions.push(pos),
                None => {
                    return Err(StoreError::Conflict(format!(
                        "record {} is no longer queued",
                        r.seq
                    )))
                }
            }
        }
        let deletes = positions
            .into_iter()
            .map(|pos| queue.delete(pos).map(IntoFuture::into_future))
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        for delete in deletes {
            delete.await.map_err(err)?;
        }
        put(&copied, schema::INFLIGHT_KEY, batch).await?;
        commit(tx, &copied).await
    }

    async fn inflight(&self) -> Result<Option<Batch>, StoreError> {
        let tx = self.tx(&[QUEUE, INFLIGHT, SENDING], TransactionMode::ReadOnly).await?;
        let sending = store(&tx, SENDING)?;
        match inflight::read(&store(&tx, INFLIGHT)?, &sending).await? {
            Some(Slot::Copied(batch)) => Ok(Some(batch)),
            Some(Slot::Range(head)) => {
                Ok(Some(inflight::batch_of(&store(&tx, QUEUE)?, &sending, head).await?))
            }
            None => Ok(None),
        }
    }

    async fn set_inflight_retry(&self, k: &str, retry: &RetryState) -> Result<bool, StoreError> {
        let tx = self.tx(&[INFLIGHT, SENDING], TransactionMode::ReadWrite).await?;
        let (copied, sending) = (store(&tx, INFLIGHT)?, store(&tx, SENDING)?);
        match inflight::read(&copied, &sending).await? {
            Some(Slot::Copied(mut batch)) if batch.key == k => {
                batch.retry = Some(retry.clone());
                put(&copied, schema::INFLIGHT_KEY, &batch).await?;
            }
            Some(Slot::Range(mut head)) if head.key == k => {
                head.retry = Some(retry.clone());
                inflight::put_head(&sending, &head).await?;
            }
            _ => return Ok(false),
        }
        commit(tx, &sending).await?;
        Ok(true)
    }

    async fn ack_inflight(&self, ack: &Ack) -> Result<bool, StoreError> {
        self.counting(true, |pending| self.ack_inflight_tx(ack, pending)).await
    }

    async fn ack_and_begin(
        &self,
        ack: &Ack,
        next: &Batch,
    ) -> Result<(bool, Result<(), StoreError>), StoreError> {
        // The joint transaction writes the pending totals (see `counting`). When it does not
        // apply, or fails (storage full aborts it whole), the two steps go one by one, the
        // acknowledgement with its delete-only fallback.
        let pending = self.pending.take();
        let acked = match self.ack_begin_tx(ack, next, &pending).await {
            Ok(Some(true)) => return Ok((true, Ok(()))),
            Ok(Some(false)) => true,
            Ok(None) | Err(_) => {
                self.pending.borrow_mut().add_totals(&pending);
                self.ack_inflight(ack).await?
            }
        };
        Ok((acked, self.begin_inflight(next).await))
    }

    async fn ack_queued(&self, batch: &Batch, ack: &Ack) -> Result<u64, StoreError> {
        self.counting(true, |pending| self.ack_queued_tx(batch, ack, pending)).await
    }

    async fn release_inflight(&self, k: &str) -> Result<bool, StoreError> {
        let stores = [QUEUE, INFLIGHT, SENDING, META];
        let tx = self.tx(&stores, TransactionMode::ReadWrite).await?;
        let (queue, copied, sending) =
            (store(&tx, QUEUE)?, store(&tx, INFLIGHT)?, store(&tx, SENDING)?);
        match inflight::read(&copied, &sending).await? {
            // A range batch never left the queue: forgetting its head and body is enough.
            Some(Slot::Range(head)) if head.key == k => inflight::forget(&sending).await?,
            Some(Slot::Copied(batch)) if batch.key == k => {
                // Back ahead of every queued record, where the positions before the front allow.
                let first = queue.get_all_keys(None, Some(1)).map_err(err)?.await.map_err(err)?;
                let front = match first.first() {
                    Some(pos) => pos.as_f64().map(|p| p as u64),
                    None => get::<u64>(&store(&tx, META)?, schema::META_NEXT_POS).await?,
                };
                let n = batch.records.len() as u64;
                let Some(base) = front.unwrap_or(0).checked_sub(n) else { return Ok(false) };
                let mut writes = Vec::with_capacity(batch.records.len());
                for (pos, record) in (base..).zip(&batch.records) {
                    let value =
                        queue_value(pos as f64, record.seq as f64, &stored::encode(record)?)?;
                    writes.push(queue.put(&value, Some(&key(pos))).map_err(err)?.into_future());
                }
                let slot = copied.delete(JsValue::from_str(schema::INFLIGHT_KEY)).map_err(err)?;
                for write in writes {
                    write.await.map_err(err)?;
                }
                slot.await.map_err(err)?;
            }
            _ => return Ok(false),
        }
        commit(tx, &queue).await?;
        Ok(true)
    }

    async fn dead_letter_inflight(
        &self,
        k: &str,
        failure: &Failure,
        max_dead_records: u64,
    ) -> Result<bool, StoreError> {
        self.counting(false, |pending| self.dead_letter_tx(k, failure, max_dead_records, pending))
            .await
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let tx = self.tx(&[DEAD], TransactionMode::ReadOnly).await?;
        let dead = all_dead(&store(&tx, DEAD)?).await?;
        Ok(dead.iter().map(|(_, d)| d.summary()).collect())
    }

    async fn redrive_dead_letter(&self, k: &str) -> Result<Option<u64>, StoreError> {
        let tx = self.tx(&[DEAD, QUEUE, META], TransactionMode::ReadWrite).await?;
        let dead = store(&tx, DEAD)?;
        let Some((dead_key, batch)) = all_dead(&dead).await?.into_iter().find(|(_, d)| d.key == k)
        else {
            return Ok(None);
        };
        let (queue, meta) = (store(&tx, QUEUE)?, store(&tx, META)?);
        let mut pos: u64 = get(&meta, schema::META_NEXT_POS).await?.unwrap_or(0);
        for r in &batch.records {
            let value = queue_value(pos as f64, r.seq as f64, &stored::encode(r)?)?;
            put_at(&queue, key(pos), &value).await?;
            pos += 1;
        }
        put(&meta, schema::META_NEXT_POS, &pos).await?;
        dead.delete(dead_key).map_err(err)?.await.map_err(err)?;
        commit(tx, &meta).await?;
        Ok(Some(batch.records.len() as u64))
    }

    async fn count_dropped(&self, reason: &str, n: u64) -> Result<(), StoreError> {
        self.counting(true, |pending| self.count_dropped_tx(reason, n, pending)).await
    }

    async fn sync_settings(&self) -> Result<Option<SyncSettings>, StoreError> {
        let tx = self.tx(&[META], TransactionMode::ReadOnly).await?;
        get(&store(&tx, META)?, schema::META_SYNC_SETTINGS).await
    }

    async fn set_sync_settings(&self, settings: &SyncSettings) -> Result<(), StoreError> {
        let tx = self.tx(&[META], TransactionMode::ReadWrite).await?;
        let meta = store(&tx, META)?;
        put(&meta, schema::META_SYNC_SETTINGS, settings).await?;
        commit(tx, &meta).await
    }

    async fn app_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        let tx = self.tx(&[META], TransactionMode::ReadOnly).await?;
        get(&store(&tx, META)?, &format!("{}{key}", schema::META_APP_PREFIX)).await
    }

    async fn set_app_value(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let tx = self.tx(&[META], TransactionMode::ReadWrite).await?;
        let meta = store(&tx, META)?;
        put(&meta, &format!("{}{key}", schema::META_APP_PREFIX), &value).await?;
        commit(tx, &meta).await
    }

    async fn stats(&self) -> Result<OutboxStats, StoreError> {
        let stores = [QUEUE, INFLIGHT, SENDING, DEAD, META];
        let tx = self.tx(&stores, TransactionMode::ReadOnly).await?;
        let slot = inflight::read(&store(&tx, INFLIGHT)?, &store(&tx, SENDING)?).await?;
        let inflight_records = slot.as_ref().map_or(0, Slot::records);
        let in_queue = slot.as_ref().and_then(Slot::range).map_or(0, |_| inflight_records);
        let queued = count(&store(&tx, QUEUE)?).await?.saturating_sub(in_queue);
        let dead = all_dead(&store(&tx, DEAD)?).await?;
        let mut t = totals(&store(&tx, META)?).await?;
        t.add_totals(&self.pending.borrow());
        Ok(OutboxStats {
            queued,
            inflight_records,
            dead_letter_batches: dead.len() as u64,
            dead_letter_records: dead.iter().map(|(_, d)| d.records.len() as u64).sum(),
            ..t
        })
    }

    async fn totals(&self) -> Result<OutboxStats, StoreError> {
        let tx = self.tx(&[META], TransactionMode::ReadOnly).await?;
        let mut t = totals(&store(&tx, META)?).await?;
        t.add_totals(&self.pending.borrow());
        Ok(t)
    }
}
