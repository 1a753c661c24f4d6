//! The ingest transaction: one request, all or nothing.
//!
//! Inside one `BEGIN IMMEDIATE` transaction: look the `Idempotency-Key` up in `batches` (a hit
//! returns the stored response and writes no record); otherwise insert each record keyed by
//! `record_id`. A record id already held is compared with the stored row on every record-level
//! field (seq, time, score, anomaly, model version, latency, scored, reading, contributions,
//! body; not the resource attributes, which may change between a batch and its re-drive):
//! - the same content is a duplicate (a retried batch under a new key): skipped and counted;
//! - other content is a conflict: not stored, counted, and reported in the response's
//!   `partialSuccess`, so the device learns its record was refused instead of deleting it as
//!   delivered.
//!
//! The same transaction keeps the per-device summary (`devices`) and the counters current and
//! remembers the key with the final response. A failure anywhere rolls the whole request back.

use edge_wire::attr;
use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::Value as Json;

use super::{Store, StoreError};
use crate::otlp::{contributions, double_to_json, response, Batch, Record, Rejected};

/// The reason given in `partialSuccess` for a conflicting record.
pub const CONFLICT_REASON: &str = "record id already stored with different content";

/// What [`Store::ingest`] did with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// The `Idempotency-Key` was seen before: nothing was written; answer with this response.
    Replayed {
        /// The response body stored with the key.
        response_json: String,
    },
    /// The batch was stored.
    Stored {
        /// Records newly inserted.
        inserted: usize,
        /// Records skipped because the same record was already stored.
        duplicates: usize,
        /// Ids of records refused because their id was stored with other content.
        conflicts: Vec<String>,
        /// The response body (also stored with the key).
        response_json: String,
    },
}

/// The record-level content compared between a new record and a stored one with its id.
#[derive(Debug, PartialEq)]
struct Content {
    seq: Option<i64>,
    time_unix_nano: Option<i64>,
    score: Option<f64>,
    anomaly: Option<bool>,
    model_version: Option<String>,
    latency_us: Option<f64>,
    scored: bool,
    reading_json: Option<String>,
    contributions_json: Option<String>,
    body_json: Option<String>,
}

impl Content {
    fn of(r: &Record) -> Self {
        Content {
            seq: r.seq,
            time_unix_nano: r.time_unix_nano,
            score: r.score,
            anomaly: r.anomaly,
            model_version: r.model_version.clone(),
            latency_us: r.latency_us,
            scored: r.scored,
            reading_json: r.reading.as_deref().map(reading_json),
            contributions_json: r.contributions.as_deref().map(contributions::to_json),
            body_json: r.body.as_ref().map(Json::to_string),
        }
    }
}

impl Store {
    /// Stores one request's records in one transaction; see the module docs.
    pub fn ingest(
        &self,
        idempotency_key: Option<&str>,
        batch: &Batch,
        received_at_ms: i64,
    ) -> Result<IngestOutcome, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(key) = idempotency_key {
            let seen: Option<String> = tx
                .query_row(
                    "SELECT response_json FROM batches WHERE idempotency_key = ?1",
                    [key],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(response_json) = seen {
                bump(&tx, "idempotent_replays", 1)?;
                tx.commit()?;
                return Ok(IngestOutcome::Replayed { response_json });
            }
        }
        let mut resource_ids: Vec<Option<i64>> = vec![None; batch.resources.len()];
        let mut inserted = 0;
        let mut duplicates = 0;
        let mut rejected: Vec<Rejected> = batch.rejected.clone();
        let mut conflicts = Vec::new();
        for r in &batch.records {
            let resource_id = match resource_ids.get(r.resource).copied().flatten() {
                Some(id) => id,
                None => {
                    let id = resource_id(&tx, batch, r.resource)?;
                    if let Some(slot) = resource_ids.get_mut(r.resource) {
                        *slot = Some(id);
                    }
                    id
                }
            };
            if insert_record(&tx, r, resource_id, received_at_ms)? {
                inserted += 1;
            } else if stored_content(&tx, &r.record_id)?.as_ref() == Some(&Content::of(r)) {
                duplicates += 1;
                bump_device(&tx, r.device_id.as_deref(), "duplicates")?;
            } else {
                bump_device(&tx, r.device_id.as_deref(), "conflicts")?;
                conflicts.push(r.record_id.clone());
                rejected.push(Rejected {
                    record_id: r.record_id.clone(),
                    reason: CONFLICT_REASON.into(),
                });
            }
        }
        for (index, resource) in batch.resources.iter().enumerate() {
            let device = batch.records.iter().find(|r| r.resource == index).map(|r| &r.device_id);
            if let Some(device) = device {
                record_losses(&tx, device.as_deref(), resource)?;
            }
        }
        let response_json = response::body(&rejected);
        if let Some(key) = idempotency_key {
            tx.execute(
                "INSERT INTO batches (idempotency_key, received_at, record_count, response_json)
                 VALUES (?1, ?2, ?3, ?4)",
                params![key, received_at_ms, batch.records.len() as i64, response_json],
            )?;
        }
        bump(&tx, "batches", 1)?;
        bump(&tx, "duplicates_ignored", duplicates as i64)?;
        bump(&tx, "conflicts", conflicts.len() as i64)?;
        tx.commit()?;
        Ok(IngestOutcome::Stored { inserted, duplicates, conflicts, response_json })
    }
}

/// The id of resource `index` of `batch`, stored once per distinct content.
fn resource_id(tx: &Transaction<'_>, batch: &Batch, index: usize) -> Result<i64, StoreError> {
    let json = batch
        .resources
        .get(index)
        .map_or_else(|| "{}".to_owned(), |attrs| Json::Object(attrs.clone()).to_string());
    tx.prepare_cached("INSERT OR IGNORE INTO resources (json) VALUES (?1)")?.execute([&json])?;
    Ok(tx
        .prepare_cached("SELECT id FROM resources WHERE json = ?1")?
        .query_row([&json], |row| row.get(0))?)
}

/// Inserts `r` and updates its device's summary; false if its id is already stored.
fn insert_record(
    tx: &Transaction<'_>,
    r: &Record,
    resource_id: i64,
    received_at_ms: i64,
) -> Result<bool, StoreError> {
    let content = Content::of(r);
    let inserted = tx
        .prepare_cached(
            "INSERT INTO records (record_id, device_id, seq, time_unix_nano, score, anomaly,
                 model_version, latency_us, scored, service_version, reading_json, attrs_json,
                 resource_id, body_json, received_at, contributions_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
             ON CONFLICT (record_id) DO NOTHING",
        )?
        .execute(params![
            r.record_id,
            r.device_id,
            r.seq,
            r.time_unix_nano,
            r.score,
            r.anomaly,
            r.model_version,
            r.latency_us,
            r.scored,
            r.service_version,
            content.reading_json,
            Json::Object(r.attrs.clone()).to_string(),
            resource_id,
            content.body_json,
            received_at_ms,
            content.contributions_json,
        ])?;
    if inserted == 0 {
        return Ok(false);
    }
    // A seq counts towards the device's distinct seqs once, however many ids carry it.
    let new_seq = match r.seq {
        Some(seq) => !tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM records
                 WHERE device_id IS ?1 AND seq = ?2 AND record_id != ?3)",
            )?
            .query_row(params![r.device_id, seq, r.record_id], |row| row.get::<_, bool>(0))?,
        None => false,
    };
    tx.prepare_cached(
        "INSERT INTO devices (device_id, count, distinct_seqs, min_seq, max_seq, last_seq,
             last_seen, anomalies, score_sum, score_count, unscored, model_version)
         VALUES (?1, 1, ?2, ?3, ?3, ?3, ?4, ?5, COALESCE(?6, 0), ?6 IS NOT NULL, ?7, ?8)
         ON CONFLICT (device_id) DO UPDATE SET
             unscored = unscored + excluded.unscored,
             model_version = COALESCE(excluded.model_version, model_version),
             count = count + 1,
             distinct_seqs = distinct_seqs + excluded.distinct_seqs,
             min_seq = CASE WHEN min_seq IS NULL OR excluded.min_seq < min_seq
                            THEN COALESCE(excluded.min_seq, min_seq) ELSE min_seq END,
             max_seq = CASE WHEN max_seq IS NULL OR excluded.max_seq > max_seq
                            THEN COALESCE(excluded.max_seq, max_seq) ELSE max_seq END,
             last_seq = excluded.last_seq,
             last_seen = excluded.last_seen,
             anomalies = anomalies + excluded.anomalies,
             score_sum = score_sum + excluded.score_sum,
             score_count = score_count + excluded.score_count",
    )?
    .execute(params![
        r.device_id.as_deref().unwrap_or(""),
        i64::from(new_seq),
        r.seq,
        received_at_ms,
        i64::from(r.anomaly == Some(true)),
        r.score,
        i64::from(!r.scored),
        r.model_version,
    ])?;
    Ok(true)
}

fn stored_content(tx: &Transaction<'_>, record_id: &str) -> Result<Option<Content>, StoreError> {
    Ok(tx
        .prepare_cached(
            "SELECT seq, time_unix_nano, score, anomaly, model_version, latency_us, scored,
                    reading_json, body_json, contributions_json
             FROM records WHERE record_id = ?1",
        )?
        .query_row([record_id], |row| {
            Ok(Content {
                seq: row.get(0)?,
                time_unix_nano: row.get(1)?,
                score: row.get(2)?,
                anomaly: row.get(3)?,
                model_version: row.get(4)?,
                latency_us: row.get(5)?,
                scored: row.get(6)?,
                reading_json: row.get(7)?,
                body_json: row.get(8)?,
                contributions_json: row.get(9)?,
            })
        })
        .optional()?)
}

/// Keeps the largest loss counters a device has reported in a batch's resource: recorded
/// readings it evicted before sending (`edge.outbox.evicted_total` and
/// `edge.outbox.dead_letter_evicted_total`: each is a seq gap here) and readings it never
/// recorded (the sum of `edge.dropped.*`: no seq was given to those).
fn record_losses(
    tx: &Transaction<'_>,
    device: Option<&str>,
    resource: &serde_json::Map<String, Json>,
) -> Result<(), StoreError> {
    let count = |key: &str| resource.get(key).and_then(Json::as_i64).unwrap_or(0).max(0);
    let evicted = count(attr::EVICTED_TOTAL).saturating_add(count(attr::DEAD_LETTER_EVICTED_TOTAL));
    let dropped = resource
        .iter()
        .filter(|(key, _)| key.starts_with(attr::DROPPED_PREFIX))
        .map(|(_, v)| v.as_i64().unwrap_or(0).max(0))
        .fold(0i64, i64::saturating_add);
    if evicted == 0 && dropped == 0 {
        return Ok(());
    }
    tx.prepare_cached(
        "UPDATE devices SET reported_evicted = MAX(reported_evicted, ?2),
                            reported_dropped = MAX(reported_dropped, ?3)
         WHERE device_id = ?1",
    )?
    .execute(params![device.unwrap_or(""), evicted, dropped])?;
    Ok(())
}

/// Adds one to a device's `duplicates` or `conflicts` column (`column` is one of those two).
fn bump_device(tx: &Transaction<'_>, device: Option<&str>, column: &str) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO devices (device_id, {column}) VALUES (?1, 1)
         ON CONFLICT (device_id) DO UPDATE SET {column} = {column} + 1"
    );
    tx.prepare_cached(&sql)?.execute([device.unwrap_or("")])?;
    Ok(())
}

fn bump(conn: &Connection, name: &str, by: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE counters SET value = value + ?2 WHERE name = ?1")?
        .execute(params![name, by])?;
    Ok(())
}

/// A reading as a JSON array; non-finite elements become `"NaN"`, `"Infinity"`, `"-Infinity"`.
fn reading_json(values: &[f64]) -> String {
    Json::Array(values.iter().copied().map(double_to_json).collect()).to_string()
}
