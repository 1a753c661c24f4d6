//! The batch being sent, as [`super::idb_store::IdbStore`] keeps it, in one of two shapes:
//!
//! - **a range** ([`Slot::Range`]): the batch is a run of the queue (the syncer's batches always
//!   are: the front of the queue, or a prefix of it), so its records stay where they are and the
//!   `sending` store holds only a [`RangeHead`] (its key and first and last queue positions) and
//!   its body. Taking it is one small write, acknowledging it one range delete: no request per
//!   record, and the batch's records are never written twice.
//! - **copied** ([`Slot::Copied`]): the records moved out of the queue into the `inflight` store
//!   with the batch, as every batch was before schema version 3 (such a batch may be waiting
//!   after an upgrade), and as a batch that is not a run of the queue still is.
//!
//! A range batch's records are not queued records: [`outside`] gives the parts of the queue
//! before and after the range, which is what reading the front, counting and evicting see.
//! Nothing inserts into a range while it is sent (new and re-driven records get new, higher
//! positions) and nothing else deletes from it (eviction skips it), so the range holds exactly
//! the batch's records until they are acknowledged or dead-lettered.

use std::future::IntoFuture;

use idb::request::futures::GetKeyStoreRequestFuture;
use idb::{KeyRange, ObjectStore, Query};
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;

use super::idb_schema::{self as schema, QUEUE_BY_SEQ};
use super::idb_store::{decode, encode, err, key, queued_record};
use crate::outbox::{Batch, Record, RetryState, StoreError};

/// A batch sent from its place in the queue: what `sending` holds under
/// [`schema::SENDING_HEAD`] (the body is under [`schema::SENDING_BODY`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RangeHead {
    /// The batch's idempotency key.
    pub key: String,
    /// Queue position of its first record.
    pub first_pos: u64,
    /// Queue position of its last record.
    pub last_pos: u64,
    /// How many records the range holds.
    pub records: u64,
    /// When the batch was made (ms since the epoch).
    pub created_at_ms: u64,
    /// Backoff state after a retryable failure.
    pub retry: Option<RetryState>,
}

/// The batch being sent, in whichever shape it was stored.
#[derive(Debug, Clone)]
pub enum Slot {
    /// Records copied into the `inflight` store with the batch.
    Copied(Batch),
    /// Records left in the queue.
    Range(RangeHead),
}

impl Slot {
    /// The batch's idempotency key.
    pub fn key(&self) -> &str {
        match self {
            Slot::Copied(batch) => &batch.key,
            Slot::Range(head) => &head.key,
        }
    }

    /// How many records the batch holds.
    pub fn records(&self) -> u64 {
        match self {
            Slot::Copied(batch) => batch.records.len() as u64,
            Slot::Range(head) => head.records,
        }
    }

    /// The queue positions the batch occupies, when it is a range.
    pub fn range(&self) -> Option<(u64, u64)> {
        match self {
            Slot::Copied(_) => None,
            Slot::Range(head) => Some((head.first_pos, head.last_pos)),
        }
    }
}

fn present(value: Option<JsValue>) -> Option<JsValue> {
    value.filter(|v| !v.is_undefined())
}

/// The range head, if a range batch is being sent.
pub async fn read_head(sending: &ObjectStore) -> Result<Option<RangeHead>, StoreError> {
    let value = sending.get(JsValue::from_str(schema::SENDING_HEAD)).map_err(err)?;
    present(value.await.map_err(err)?).map(|v| decode(&v)).transpose()
}

/// The batch being sent, in either shape (both looked up before either is awaited).
pub async fn read(
    inflight: &ObjectStore,
    sending: &ObjectStore,
) -> Result<Option<Slot>, StoreError> {
    let copied = inflight.get(JsValue::from_str(schema::INFLIGHT_KEY)).map_err(err)?.into_future();
    let head = sending.get(JsValue::from_str(schema::SENDING_HEAD)).map_err(err)?.into_future();
    let (copied, head) = (copied.await.map_err(err)?, head.await.map_err(err)?);
    if let Some(value) = present(copied) {
        return Ok(Some(Slot::Copied(decode(&value)?)));
    }
    present(head).map(|v| decode(&v).map(Slot::Range)).transpose()
}

/// The queue positions `first..=last`.
fn between(first: u64, last: u64) -> Result<Query, StoreError> {
    Ok(Query::from(KeyRange::bound(&key(first), &key(last), None, None).map_err(err)?))
}

/// The parts of the queue outside `skip` (a range being sent), front first: the whole queue
/// when there is none.
pub fn outside(skip: Option<(u64, u64)>) -> Result<Vec<Option<Query>>, StoreError> {
    let Some((first, last)) = skip else { return Ok(vec![None]) };
    let before = KeyRange::upper_bound(&key(first), Some(true)).map_err(err)?;
    let after = KeyRange::lower_bound(&key(last), Some(true)).map_err(err)?;
    Ok(vec![Some(Query::from(before)), Some(Query::from(after))])
}

/// Up to `max` queued records outside `skip`, front first (every part requested at once).
pub async fn oldest(
    queue: &ObjectStore,
    max: u32,
    skip: Option<(u64, u64)>,
) -> Result<Vec<Record>, StoreError> {
    let requests = outside(skip)?
        .into_iter()
        .map(|part| queue.get_all(part, Some(max)).map(IntoFuture::into_future))
        .collect::<Result<Vec<_>, _>>()
        .map_err(err)?;
    let mut records = Vec::new();
    for request in requests {
        let values = request.await.map_err(err)?;
        let room = (max as usize).saturating_sub(records.len());
        for value in values.iter().take(room) {
            records.push(queued_record(value)?);
        }
    }
    Ok(records)
}

/// Deletes up to `max` entries from the front of the queue, skipping `skip`; returns how many.
pub async fn delete_front(
    queue: &ObjectStore,
    max: u64,
    skip: Option<(u64, u64)>,
) -> Result<u64, StoreError> {
    let mut deleted = 0;
    for part in outside(skip)? {
        let limit = u32::try_from(max - deleted).unwrap_or(u32::MAX);
        if limit == 0 {
            break;
        }
        let keys = queue.get_all_keys(part, Some(limit)).map_err(err)?.await.map_err(err)?;
        let (Some(first), Some(last)) = (keys.first(), keys.last()) else { continue };
        let range = KeyRange::bound(first, last, None, None).map_err(err)?;
        queue.delete(Query::from(range)).map_err(err)?.await.map_err(err)?;
        deleted += keys.len() as u64;
    }
    Ok(deleted)
}

fn position(value: Option<JsValue>) -> Option<u64> {
    present(value).and_then(|v| v.as_f64()).map(|p| p as u64)
}

/// The lookups of a batch's first and last records that [`run_of`] starts with, issued by
/// [`ends`] so that a transaction can issue its other reads before awaiting them.
pub struct Ends {
    first: GetKeyStoreRequestFuture,
    last: GetKeyStoreRequestFuture,
}

/// Issues the lookups of `batch`'s first and last records (`None` for an empty batch).
pub fn ends(queue: &ObjectStore, batch: &Batch) -> Result<Option<Ends>, StoreError> {
    let (Some(first), Some(last)) = (batch.records.first(), batch.records.last()) else {
        return Ok(None);
    };
    let by_seq = queue.index(QUEUE_BY_SEQ).map_err(err)?;
    let first = by_seq.get_key(key(first.seq)).map_err(err)?.into_future();
    let last = by_seq.get_key(key(last.seq)).map_err(err)?.into_future();
    Ok(Some(Ends { first, last }))
}

/// Where `batch` lies in the queue when it is a run of it: `Some((first, last))` when its first
/// and last records are queued, in that order, with exactly as many entries from one to the
/// other as the batch has records (nothing is ever inserted inside a run, so a run the syncer
/// read is still whole, or has lost entries and is refused). `None` when the batch is not such
/// a run (then it is copied instead). Fails with [`StoreError::Conflict`] when its first or last
/// record is no longer queued.
pub async fn run_of(queue: &ObjectStore, batch: &Batch) -> Result<Option<(u64, u64)>, StoreError> {
    match ends(queue, batch)? {
        Some(ends) => run_from(queue, batch, ends).await,
        None => Ok(None),
    }
}

/// [`run_of`], from lookups already issued by [`ends`].
pub async fn run_from(
    queue: &ObjectStore,
    batch: &Batch,
    ends: Ends,
) -> Result<Option<(u64, u64)>, StoreError> {
    let (first_pos, last_pos) = (ends.first.await.map_err(err)?, ends.last.await.map_err(err)?);
    let missing = |seq| StoreError::Conflict(format!("record {seq} is no longer queued"));
    let seq = |r: Option<&Record>| r.map_or(0, |r| r.seq);
    let first_pos = position(first_pos).ok_or_else(|| missing(seq(batch.records.first())))?;
    let last_pos = position(last_pos).ok_or_else(|| missing(seq(batch.records.last())))?;
    if first_pos > last_pos {
        return Ok(None);
    }
    let held = queue.count(Some(between(first_pos, last_pos)?)).map_err(err)?.await.map_err(err)?;
    Ok((u64::from(held) == batch.records.len() as u64).then_some((first_pos, last_pos)))
}

/// Stores `batch`, found at `first..=last` in the queue, as the range being sent.
pub async fn begin(
    sending: &ObjectStore,
    batch: &Batch,
    (first_pos, last_pos): (u64, u64),
) -> Result<(), StoreError> {
    let head = RangeHead {
        key: batch.key.clone(),
        first_pos,
        last_pos,
        records: batch.records.len() as u64,
        created_at_ms: batch.created_at_ms,
        retry: batch.retry.clone(),
    };
    let head = sending.put(&encode(&head)?, Some(&JsValue::from_str(schema::SENDING_HEAD)));
    let body = JsValue::from_str(&batch.body);
    let body = sending.put(&body, Some(&JsValue::from_str(schema::SENDING_BODY)));
    let (head, body) = (head.map_err(err)?.into_future(), body.map_err(err)?.into_future());
    head.await.map_err(err)?;
    body.await.map_err(err)?;
    Ok(())
}

/// Replaces the stored head (its retry state changed).
pub async fn put_head(sending: &ObjectStore, head: &RangeHead) -> Result<(), StoreError> {
    let slot = JsValue::from_str(schema::SENDING_HEAD);
    sending.put(&encode(head)?, Some(&slot)).map_err(err)?.await.map_err(err)?;
    Ok(())
}

/// The whole batch `head` names: its body and its records, read from the queue.
pub async fn batch_of(
    queue: &ObjectStore,
    sending: &ObjectStore,
    head: RangeHead,
) -> Result<Batch, StoreError> {
    let body = sending.get(JsValue::from_str(schema::SENDING_BODY)).map_err(err)?.into_future();
    let range = Some(between(head.first_pos, head.last_pos)?);
    let values = queue.get_all(range, None).map_err(err)?.into_future();
    let (body, values) = (body.await.map_err(err)?, values.await.map_err(err)?);
    let body = present(body)
        .and_then(|b| b.as_string())
        .ok_or_else(|| StoreError::Corrupt("the batch being sent has no body".into()))?;
    let records = values.iter().map(queued_record).collect::<Result<Vec<_>, _>>()?;
    Ok(Batch { key: head.key, records, body, created_at_ms: head.created_at_ms, retry: head.retry })
}

/// Deletes the range batch `head`: its records from the queue, its head and body (every
/// request issued before any is awaited).
pub async fn delete(
    queue: &ObjectStore,
    sending: &ObjectStore,
    head: &RangeHead,
) -> Result<(), StoreError> {
    let range = between(head.first_pos, head.last_pos)?;
    let records = queue.delete(range).map_err(err)?.into_future();
    let head = sending.delete(JsValue::from_str(schema::SENDING_HEAD)).map_err(err)?.into_future();
    let body = sending.delete(JsValue::from_str(schema::SENDING_BODY)).map_err(err)?.into_future();
    records.await.map_err(err)?;
    head.await.map_err(err)?;
    body.await.map_err(err)?;
    Ok(())
}

/// Acknowledges the range batch `head` and, when `next` lies at `run` in the queue, takes it as
/// the range being sent, every write issued before any is awaited (the transaction's commit
/// then follows at once).
pub async fn replace(
    queue: &ObjectStore,
    sending: &ObjectStore,
    head: &RangeHead,
    next: Option<(&Batch, (u64, u64))>,
) -> Result<(), StoreError> {
    let range = between(head.first_pos, head.last_pos)?;
    let records = queue.delete(range).map_err(err)?.into_future();
    match next {
        Some((batch, run)) => begin(sending, batch, run).await?,
        None => forget(sending).await?,
    }
    records.await.map_err(err)?;
    Ok(())
}

/// Forgets the range batch being sent, its head and body, leaving its records queued.
pub async fn forget(sending: &ObjectStore) -> Result<(), StoreError> {
    let head = sending.delete(JsValue::from_str(schema::SENDING_HEAD)).map_err(err)?;
    let body = sending.delete(JsValue::from_str(schema::SENDING_BODY)).map_err(err)?;
    let (head, body) = (head.into_future(), body.into_future());
    head.await.map_err(err)?;
    body.await.map_err(err)?;
    Ok(())
}
