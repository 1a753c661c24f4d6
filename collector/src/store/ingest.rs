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
//! What the batch adds to each device's summary (`devices`) is gathered in memory while the
//! records go in and written once per device at the end (see [`super::summary`]), with the
//! counters and the key's final response. A failure anywhere rolls the whole request back.
//!
//! Every statement is prepared once per connection (`prepare_cached`); a record costs its
//! insert, plus an index-only count of its `(device, seq)` when its seq is not above every seq
//! its device already holds, plus a read of the stored row when its id is already held.

use std::borrow::Cow;
use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::Value as Json;

use super::{summary, Store, StoreError};
use crate::otlp::{contributions, double_to_json, response, Batch, Record, Rejected};
use crate::summary::DeviceDelta;

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

/// The columns of a record that are JSON text, serialized once for the insert and, if the id
/// is already held, for the comparison with the stored row.
struct JsonColumns {
    reading: Option<String>,
    contributions: Option<String>,
    body: Option<String>,
}

impl JsonColumns {
    fn of(r: &Record) -> Result<Self, StoreError> {
        Ok(JsonColumns {
            reading: r.reading.as_deref().map(reading_json),
            contributions: r.contributions.as_deref().map(contributions::to_json),
            body: r.body.as_ref().map(serde_json::to_string).transpose()?,
        })
    }

    /// The content `r` would be stored with.
    fn content(self, r: &Record) -> Content {
        Content {
            seq: r.seq,
            time_unix_nano: r.time_unix_nano,
            score: r.score,
            anomaly: r.anomaly,
            model_version: r.model_version.clone(),
            latency_us: r.latency_us,
            scored: r.scored,
            reading_json: self.reading,
            contributions_json: self.contributions,
            body_json: self.body,
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
                .prepare_cached("SELECT response_json FROM batches WHERE idempotency_key = ?1")?
                .query_row([key], |row| row.get(0))
                .optional()?;
            if let Some(response_json) = seen {
                bump(&tx, "idempotent_replays", 1)?;
                tx.commit()?;
                return Ok(IngestOutcome::Replayed { response_json });
            }
        }
        let Stored { mut deltas, inserted, duplicates, conflicts, rejected } =
            store_records(&tx, batch, received_at_ms)?;
        for (index, resource) in batch.resources.iter().enumerate() {
            if let Some(r) = batch.records.iter().find(|r| r.resource == index) {
                deltas.entry(device_key(r)).or_default().losses(resource);
            }
        }
        summary::write_devices(&tx, &deltas, received_at_ms)?;
        let response_json = response::body(&rejected);
        if let Some(key) = idempotency_key {
            tx.prepare_cached(
                "INSERT INTO batches (idempotency_key, received_at, record_count, response_json)
                 VALUES (?1, ?2, ?3, ?4)",
            )?
            .execute(params![
                key,
                received_at_ms,
                batch.records.len() as i64,
                response_json
            ])?;
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
    let json = match batch.resources.get(index) {
        Some(attrs) => serde_json::to_string(attrs)?,
        None => "{}".to_owned(),
    };
    tx.prepare_cached("INSERT OR IGNORE INTO resources (json) VALUES (?1)")?.execute([&json])?;
    Ok(tx
        .prepare_cached("SELECT id FROM resources WHERE json = ?1")?
        .query_row([&json], |row| row.get(0))?)
}

/// What the records of a batch did, before the summaries and the response are written.
struct Stored<'b> {
    deltas: BTreeMap<&'b str, DeviceDelta>,
    inserted: usize,
    duplicates: usize,
    conflicts: Vec<String>,
    /// The parser's rejections, then the conflicts.
    rejected: Vec<Rejected>,
}

/// The `devices` key of a record's device (`''` for none).
fn device_key(r: &Record) -> &str {
    r.device_id.as_deref().unwrap_or("")
}

/// Inserts each record (duplicates and conflicts are judged against what is stored, including
/// the batch's own earlier records) and gathers what each device's summary gains.
fn store_records<'b>(
    tx: &Transaction<'_>,
    batch: &'b Batch,
    received_at_ms: i64,
) -> Result<Stored<'b>, StoreError> {
    let mut out = Stored {
        deltas: BTreeMap::new(),
        inserted: 0,
        duplicates: 0,
        conflicts: Vec::new(),
        rejected: batch.rejected.clone(),
    };
    let mut resource_ids: Vec<Option<i64>> = vec![None; batch.resources.len()];
    // Taken from the connection's statement cache once per batch, not once per record.
    let mut insert = tx.prepare_cached(INSERT_RECORD)?;
    let mut holding_seq =
        tx.prepare_cached("SELECT COUNT(*) FROM records WHERE device_id IS ?1 AND seq = ?2")?;
    // Each device's largest seq as its summary held it before this batch (read once).
    let mut held_max: BTreeMap<&str, Option<i64>> = BTreeMap::new();
    for r in &batch.records {
        let resource_id = match resource_ids.get(r.resource).copied().flatten() {
            Some(id) => id,
            None => {
                let id = resource_id(tx, batch, r.resource)?;
                if let Some(slot) = resource_ids.get_mut(r.resource) {
                    *slot = Some(id);
                }
                id
            }
        };
        let key = device_key(r);
        let delta = out.deltas.entry(key).or_default();
        let json = JsonColumns::of(r)?;
        let inserted = insert.execute(params![
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
            json.reading,
            attrs_json(r)?,
            resource_id,
            json.body,
            received_at_ms,
            json.contributions,
        ])? > 0;
        if inserted {
            out.inserted += 1;
            // A seq counts towards the device's distinct seqs once, however many ids carry
            // it. One above every seq the device's summary holds and every seq this batch
            // stored for it so far is new; any other is new when the record just inserted is
            // the only row holding it (`(device_id, seq)` is an index, so the count reads the
            // index alone).
            if let Some(seq) = r.seq {
                let stored_max = match held_max.get(key) {
                    Some(&max) => max,
                    None => {
                        let max = held_max_seq(tx, key)?;
                        held_max.insert(key, max);
                        max
                    }
                };
                let above =
                    stored_max.is_some_and(|m| seq > m) && delta.max_seq.is_none_or(|m| seq > m);
                let new = above || {
                    let holding: i64 =
                        holding_seq.query_row(params![r.device_id, seq], |row| row.get(0))?;
                    holding == 1
                };
                delta.distinct_seqs += i64::from(new);
            }
            delta.stored(r);
        } else if stored_content(tx, &r.record_id)? == Some(json.content(r)) {
            out.duplicates += 1;
            delta.duplicate();
        } else {
            delta.conflict();
            out.conflicts.push(r.record_id.clone());
            out.rejected
                .push(Rejected { record_id: r.record_id.clone(), reason: CONFLICT_REASON.into() });
        }
    }
    Ok(out)
}

/// Inserts a record unless its id is already stored (then it changes nothing).
const INSERT_RECORD: &str = "INSERT INTO records (record_id, device_id, seq, time_unix_nano,
        score, anomaly, model_version, latency_us, scored, service_version, reading_json,
        attrs_json, resource_id, body_json, received_at, contributions_json)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)
    ON CONFLICT (record_id) DO NOTHING";

/// The largest seq the summary of device `key` holds: at least every seq stored under the key
/// (`None`: no summary row, or no seq stored yet).
fn held_max_seq(tx: &Transaction<'_>, key: &str) -> Result<Option<i64>, StoreError> {
    Ok(tx
        .prepare_cached("SELECT max_seq FROM devices WHERE device_id = ?1")?
        .query_row([key], |row| row.get(0))
        .optional()?
        .flatten())
}

/// The leftover attributes' column: most records have none, and `{}` needs no encoder.
fn attrs_json(r: &Record) -> Result<Cow<'static, str>, StoreError> {
    if r.attrs.is_empty() {
        Ok(Cow::Borrowed("{}"))
    } else {
        Ok(Cow::Owned(serde_json::to_string(&r.attrs)?))
    }
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

fn bump(conn: &Connection, name: &str, by: i64) -> Result<(), StoreError> {
    conn.prepare_cached("UPDATE counters SET value = value + ?2 WHERE name = ?1")?
        .execute(params![name, by])?;
    Ok(())
}

/// A reading as a JSON array; non-finite elements become `"NaN"`, `"Infinity"`, `"-Infinity"`.
fn reading_json(values: &[f64]) -> String {
    Json::Array(values.iter().copied().map(double_to_json).collect()).to_string()
}
