//! [`IdbStore`]: the outbox's [`OutboxStore`] over IndexedDB (via rexie), for the service worker.
//!
//! Each trait method is one IndexedDB transaction over the stores it touches, so it is atomic
//! and a worker killed at any point leaves a consistent outbox. Nothing but IndexedDB requests
//! is awaited inside a transaction (awaiting `fetch` would auto-commit it). Values are JSON
//! strings of the core's serde types: the schema lives in [`super::idb_schema`] and the shapes
//! in the core, so this file is only the mapping. It passes the same conformance suite as
//! [`crate::outbox::MemoryStore`].

use rexie::{Rexie, Store, Transaction, TransactionMode};
use serde::{de::DeserializeOwned, Serialize};
use wasm_bindgen::JsValue;

use super::idb_schema::{self as schema, DEAD, INFLIGHT, META, RECORDS};
use crate::outbox::{
    Ack, AppendOutcome, Batch, DeadBatch, DeadLetter, Failure, OutboxStats, OutboxStore, Record,
    RetryState, Seq, StoreError,
};

/// The outbox in one IndexedDB database.
pub struct IdbStore {
    db: Rexie,
}

impl IdbStore {
    /// Opens (or creates) the outbox database `name`.
    pub async fn open(name: &str) -> Result<IdbStore, StoreError> {
        Ok(IdbStore { db: schema::open(name).await.map_err(backend)? })
    }

    fn tx(&self, stores: &[&str], mode: TransactionMode) -> Result<Transaction, StoreError> {
        self.db.transaction(stores, mode).map_err(backend)
    }
}

fn backend(e: rexie::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn key(seq: Seq) -> JsValue {
    // Exact below 2^53, far beyond any device's reading count.
    JsValue::from_f64(seq as f64)
}

fn encode<T: Serialize>(value: &T) -> Result<JsValue, StoreError> {
    serde_json::to_string(value)
        .map(|s| JsValue::from_str(&s))
        .map_err(|e| StoreError::Corrupt(format!("encode: {e}")))
}

fn decode<T: DeserializeOwned>(value: &JsValue) -> Result<T, StoreError> {
    let text =
        value.as_string().ok_or_else(|| StoreError::Corrupt("value is not a string".into()))?;
    serde_json::from_str(&text).map_err(|e| StoreError::Corrupt(format!("decode: {e}")))
}

async fn get<T: DeserializeOwned>(store: &Store, k: &str) -> Result<Option<T>, StoreError> {
    match store.get(JsValue::from_str(k)).await.map_err(backend)? {
        Some(v) if !v.is_undefined() => decode(&v).map(Some),
        _ => Ok(None),
    }
}

async fn put<T: Serialize>(store: &Store, k: &str, value: &T) -> Result<(), StoreError> {
    store.put(&encode(value)?, Some(&JsValue::from_str(k))).await.map_err(backend)?;
    Ok(())
}

async fn totals(meta: &Store) -> Result<OutboxStats, StoreError> {
    Ok(get(meta, schema::META_TOTALS).await?.unwrap_or_default())
}

async fn all_dead(dead: &Store) -> Result<Vec<DeadBatch>, StoreError> {
    let values = dead.get_all(None, None).await.map_err(backend)?;
    values.iter().map(decode).collect()
}

async fn done(tx: Transaction) -> Result<(), StoreError> {
    tx.done().await.map_err(backend)?;
    Ok(())
}

impl OutboxStore for IdbStore {
    async fn device_id(&self) -> Result<Option<String>, StoreError> {
        let tx = self.tx(&[META], TransactionMode::ReadOnly)?;
        let meta = tx.store(META).map_err(backend)?;
        get(&meta, schema::META_DEVICE_ID).await
    }

    async fn init_device_id(&self, candidate: &str) -> Result<String, StoreError> {
        let tx = self.tx(&[META], TransactionMode::ReadWrite)?;
        let meta = tx.store(META).map_err(backend)?;
        let id = match get::<String>(&meta, schema::META_DEVICE_ID).await? {
            Some(id) => id,
            None => {
                put(&meta, schema::META_DEVICE_ID, &candidate).await?;
                candidate.to_owned()
            }
        };
        done(tx).await?;
        Ok(id)
    }

    async fn reserve_seqs(&self, count: u64) -> Result<Seq, StoreError> {
        let tx = self.tx(&[META], TransactionMode::ReadWrite)?;
        let meta = tx.store(META).map_err(backend)?;
        let first: Seq = get(&meta, schema::META_NEXT_SEQ).await?.unwrap_or(0);
        let next = first
            .checked_add(count)
            .ok_or_else(|| StoreError::Backend("sequence counter overflow".into()))?;
        if count > 0 {
            put(&meta, schema::META_NEXT_SEQ, &next).await?;
        }
        done(tx).await?;
        Ok(first)
    }

    async fn append(&self, records: &[Record], capacity: u64) -> Result<AppendOutcome, StoreError> {
        let tx = self.tx(&[RECORDS, META], TransactionMode::ReadWrite)?;
        let store = tx.store(RECORDS).map_err(backend)?;
        let encoded: Result<Vec<_>, _> =
            records.iter().map(|r| Ok((encode(r)?, Some(key(r.seq))))).collect();
        store.put_all(encoded?.into_iter()).await.map_err(backend)?;
        let queued = u64::from(store.count(None).await.map_err(backend)?);
        let mut evicted = 0;
        if queued > capacity {
            let excess = u32::try_from(queued - capacity).unwrap_or(u32::MAX);
            for k in store.get_all_keys(None, Some(excess)).await.map_err(backend)? {
                store.delete(k).await.map_err(backend)?;
                evicted += 1;
            }
            let meta = tx.store(META).map_err(backend)?;
            let mut t = totals(&meta).await?;
            t.evicted_total += evicted;
            put(&meta, schema::META_TOTALS, &t).await?;
        }
        done(tx).await?;
        Ok(AppendOutcome { evicted })
    }

    async fn oldest(&self, max: usize) -> Result<Vec<Record>, StoreError> {
        let tx = self.tx(&[RECORDS], TransactionMode::ReadOnly)?;
        let store = tx.store(RECORDS).map_err(backend)?;
        let limit = u32::try_from(max).unwrap_or(u32::MAX);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let values = store.get_all(None, Some(limit)).await.map_err(backend)?;
        values.iter().map(decode).collect()
    }

    async fn queued(&self) -> Result<u64, StoreError> {
        let tx = self.tx(&[RECORDS], TransactionMode::ReadOnly)?;
        let store = tx.store(RECORDS).map_err(backend)?;
        Ok(u64::from(store.count(None).await.map_err(backend)?))
    }

    async fn begin_inflight(&self, batch: &Batch) -> Result<(), StoreError> {
        let tx = self.tx(&[RECORDS, INFLIGHT], TransactionMode::ReadWrite)?;
        let inflight = tx.store(INFLIGHT).map_err(backend)?;
        if let Some(current) = get::<Batch>(&inflight, schema::INFLIGHT_KEY).await? {
            return Err(StoreError::Conflict(format!("batch {} is already inflight", current.key)));
        }
        let records = tx.store(RECORDS).map_err(backend)?;
        for r in &batch.records {
            if !records.key_exists(key(r.seq)).await.map_err(backend)? {
                return Err(StoreError::Conflict(format!("record {} is no longer queued", r.seq)));
            }
        }
        for r in &batch.records {
            records.delete(key(r.seq)).await.map_err(backend)?;
        }
        put(&inflight, schema::INFLIGHT_KEY, batch).await?;
        done(tx).await
    }

    async fn inflight(&self) -> Result<Option<Batch>, StoreError> {
        let tx = self.tx(&[INFLIGHT], TransactionMode::ReadOnly)?;
        let store = tx.store(INFLIGHT).map_err(backend)?;
        get(&store, schema::INFLIGHT_KEY).await
    }

    async fn set_inflight_retry(&self, k: &str, retry: &RetryState) -> Result<bool, StoreError> {
        let tx = self.tx(&[INFLIGHT], TransactionMode::ReadWrite)?;
        let store = tx.store(INFLIGHT).map_err(backend)?;
        match get::<Batch>(&store, schema::INFLIGHT_KEY).await? {
            Some(mut batch) if batch.key == k => {
                batch.retry = Some(retry.clone());
                put(&store, schema::INFLIGHT_KEY, &batch).await?;
                done(tx).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn ack_inflight(&self, ack: &Ack) -> Result<bool, StoreError> {
        let tx = self.tx(&[INFLIGHT, META], TransactionMode::ReadWrite)?;
        let inflight = tx.store(INFLIGHT).map_err(backend)?;
        let Some(batch) = get::<Batch>(&inflight, schema::INFLIGHT_KEY).await? else {
            return Ok(false);
        };
        if batch.key != ack.key {
            return Ok(false);
        }
        inflight.delete(JsValue::from_str(schema::INFLIGHT_KEY)).await.map_err(backend)?;
        let meta = tx.store(META).map_err(backend)?;
        let mut t = totals(&meta).await?;
        t.sent_records_total += batch.records.len() as u64;
        t.sent_batches_total += 1;
        t.rejected_records_total += ack.rejected;
        if let Some(message) = &ack.message {
            t.last_rejection = Some(message.clone());
        }
        put(&meta, schema::META_TOTALS, &t).await?;
        done(tx).await?;
        Ok(true)
    }

    async fn dead_letter_inflight(
        &self,
        k: &str,
        failure: &Failure,
        max_dead_records: u64,
    ) -> Result<bool, StoreError> {
        let tx = self.tx(&[INFLIGHT, DEAD, META], TransactionMode::ReadWrite)?;
        let inflight = tx.store(INFLIGHT).map_err(backend)?;
        let Some(batch) = get::<Batch>(&inflight, schema::INFLIGHT_KEY).await? else {
            return Ok(false);
        };
        if batch.key != k {
            return Ok(false);
        }
        inflight.delete(JsValue::from_str(schema::INFLIGHT_KEY)).await.map_err(backend)?;
        let first = batch.first_seq();
        let dead_batch =
            DeadBatch { key: batch.key, records: batch.records, failure: failure.clone() };
        let dead = tx.store(DEAD).map_err(backend)?;
        dead.put(&encode(&dead_batch)?, Some(&key(first))).await.map_err(backend)?;
        let meta = tx.store(META).map_err(backend)?;
        let mut t = totals(&meta).await?;
        t.dead_lettered_batches_total += 1;
        // get_all returns key order: lowest first seq first, the eviction order.
        let held_batches = all_dead(&dead).await?;
        let mut held: u64 = held_batches.iter().map(|d| d.records.len() as u64).sum();
        for oldest in &held_batches {
            if held <= max_dead_records {
                break;
            }
            let n = oldest.records.len() as u64;
            dead.delete(key(oldest.records.first().map_or(0, |r| r.seq))).await.map_err(backend)?;
            held -= n;
            t.dead_letter_evicted_total += n;
        }
        put(&meta, schema::META_TOTALS, &t).await?;
        done(tx).await?;
        Ok(true)
    }

    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let tx = self.tx(&[DEAD], TransactionMode::ReadOnly)?;
        let dead = tx.store(DEAD).map_err(backend)?;
        Ok(all_dead(&dead).await?.iter().map(DeadBatch::summary).collect())
    }

    async fn redrive_dead_letter(&self, k: &str) -> Result<Option<u64>, StoreError> {
        let tx = self.tx(&[DEAD, RECORDS], TransactionMode::ReadWrite)?;
        let dead = tx.store(DEAD).map_err(backend)?;
        let entries = dead.scan(None, None, None, None).await.map_err(backend)?;
        for (dead_key, value) in &entries {
            let batch: DeadBatch = decode(value)?;
            if batch.key != k {
                continue;
            }
            let records = tx.store(RECORDS).map_err(backend)?;
            let n = batch.records.len() as u64;
            let encoded: Result<Vec<_>, _> =
                batch.records.iter().map(|r| Ok((encode(r)?, Some(key(r.seq))))).collect();
            records.put_all(encoded?.into_iter()).await.map_err(backend)?;
            dead.delete(dead_key.clone()).await.map_err(backend)?;
            done(tx).await?;
            return Ok(Some(n));
        }
        Ok(None)
    }

    async fn stats(&self) -> Result<OutboxStats, StoreError> {
        let tx = self.tx(&[RECORDS, INFLIGHT, DEAD, META], TransactionMode::ReadOnly)?;
        let records = tx.store(RECORDS).map_err(backend)?;
        let queued = u64::from(records.count(None).await.map_err(backend)?);
        let inflight = tx.store(INFLIGHT).map_err(backend)?;
        let inflight_records = get::<Batch>(&inflight, schema::INFLIGHT_KEY)
            .await?
            .map_or(0, |b| b.records.len() as u64);
        let dead = all_dead(&tx.store(DEAD).map_err(backend)?).await?;
        let t = totals(&tx.store(META).map_err(backend)?).await?;
        Ok(OutboxStats {
            queued,
            inflight_records,
            dead_letter_batches: dead.len() as u64,
            dead_letter_records: dead.iter().map(|d| d.records.len() as u64).sum(),
            ..t
        })
    }
}
