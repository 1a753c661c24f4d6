//! The ingest transaction on PostgreSQL: the same answers as SQLite's (`store::ingest`), also
//! when several collectors receive related requests at the same moment.
//!
//! One `READ COMMITTED` transaction per request:
//! 1. Claim the `Idempotency-Key` (`INSERT … ON CONFLICT DO NOTHING`). A collector claiming a
//!    key another has claimed but not committed waits for that commit, then sees the conflict
//!    and replays the stored response; if the other rolled back, the claim succeeds instead.
//! 2. Store the batch's resources and records with `ON CONFLICT DO NOTHING`, in sorted key
//!    order (so two transactions never wait for each other's rows in opposite orders), one
//!    statement each. A record id not inserted is compared with the stored row on the
//!    record-level content, as in SQLite: a duplicate, or a conflict reported in
//!    `partialSuccess`. The same id twice in one batch is judged as SQLite judges it: the
//!    second against whatever the first left stored.
//! 3. Insert the stored records' `(device, seq)` pairs into `device_seqs`; the rows inserted
//!    are the device's new distinct seqs.
//! 4. Write the per-device summaries and the counters (see [`super::summary`]), store the
//!    response with the key, commit. Only then is the request answered.
//!
//! A serialization failure or deadlock rolls back and retries the whole transaction a few
//! times; any failure leaves nothing behind.

use std::collections::{BTreeMap, HashMap, HashSet};

use postgres::{Client, Transaction};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

use super::summary::{bump, write_devices};
use super::{PgError, PgStore};
use crate::otlp::{contributions, double_to_json, response, Batch, Record, Rejected};
use crate::store::{IngestOutcome, StoreError, CONFLICT_REASON};
use crate::summary::DeviceDelta;

/// Tries of one ingest when transactions collide.
const ATTEMPTS: usize = 4;

/// The record-level content compared between a new record and a stored one with its id.
#[derive(Debug, Clone, PartialEq)]
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

impl PgStore {
    /// Stores one request's records in one transaction; see the module docs.
    pub fn ingest(
        &self,
        idempotency_key: Option<&str>,
        batch: &Batch,
        received_at_ms: i64,
    ) -> Result<IngestOutcome, StoreError> {
        let mut conn = self.conn()?;
        let mut attempt = 1;
        loop {
            match ingest_once(&mut conn, idempotency_key, batch, received_at_ms) {
                Err(e) if e.is_collision() && attempt < ATTEMPTS => attempt += 1,
                outcome => return Ok(outcome?),
            }
        }
    }
}

fn ingest_once(
    client: &mut Client,
    key: Option<&str>,
    batch: &Batch,
    received_at_ms: i64,
) -> Result<IngestOutcome, PgError> {
    let mut tx = client.transaction()?;
    if let Some(key) = key {
        let claimed = tx.execute(
            "INSERT INTO batches (idempotency_key, received_at, record_count, response_json)
             VALUES ($1, $2, $3, '') ON CONFLICT (idempotency_key) DO NOTHING",
            &[&key, &received_at_ms, &(batch.records.len() as i64)],
        )?;
        if claimed == 0 {
            let row = tx.query_one(
                "SELECT response_json FROM batches WHERE idempotency_key = $1",
                &[&key],
            )?;
            bump(&mut tx, &[("idempotent_replays", 1)])?;
            tx.commit()?;
            return Ok(IngestOutcome::Replayed { response_json: row.get(0) });
        }
    }
    let resource_ids = store_resources(&mut tx, batch)?;
    let contents: Vec<Content> = batch.records.iter().map(Content::of).collect();
    let (inserted_ids, stored) =
        store_records(&mut tx, batch, &contents, &resource_ids, received_at_ms)?;

    let mut deltas: BTreeMap<String, DeviceDelta> = BTreeMap::new();
    let mut first_seen: HashSet<&str> = HashSet::new();
    // What each id holds after the records so far, for an id repeated within the batch.
    let mut effective: HashMap<&str, &Content> = HashMap::new();
    let (mut inserted, mut duplicates) = (0, 0);
    let mut rejected: Vec<Rejected> = batch.rejected.clone();
    let mut conflicts = Vec::new();
    let mut new_seqs: Vec<(String, i64)> = Vec::new();
    for (r, content) in batch.records.iter().zip(&contents) {
        let id = r.record_id.as_str();
        let delta = deltas.entry(device_key(r)).or_default();
        let first = first_seen.insert(id);
        if first && inserted_ids.contains(id) {
            inserted += 1;
            delta.stored(r);
            new_seqs.extend(r.seq.map(|seq| (device_key(r), seq)));
            effective.insert(id, content);
            continue;
        }
        let held = effective.get(id).copied().or_else(|| stored.get(id));
        if held == Some(content) {
            duplicates += 1;
            delta.duplicate();
        } else {
            delta.conflict();
            conflicts.push(r.record_id.clone());
            rejected
                .push(Rejected { record_id: r.record_id.clone(), reason: CONFLICT_REASON.into() });
        }
    }
    for (device, seqs) in count_new_seqs(&mut tx, new_seqs)? {
        deltas.entry(device).or_default().distinct_seqs += seqs;
    }
    for (index, resource) in batch.resources.iter().enumerate() {
        if let Some(r) = batch.records.iter().find(|r| r.resource == index) {
            deltas.entry(device_key(r)).or_default().losses(resource);
        }
    }
    write_devices(&mut tx, &deltas, received_at_ms)?;

    let response_json = response::body(&rejected);
    if let Some(key) = key {
        tx.execute(
            "UPDATE batches SET response_json = $2 WHERE idempotency_key = $1",
            &[&key, &response_json],
        )?;
    }
    bump(
        &mut tx,
        &[
            ("batches", 1),
            ("duplicates_ignored", duplicates as i64),
            ("conflicts", conflicts.len() as i64),
        ],
    )?;
    tx.commit()?;
    Ok(IngestOutcome::Stored { inserted, duplicates, conflicts, response_json })
}

/// The `devices` key of a record's device (`''` for none).
fn device_key(r: &Record) -> String {
    r.device_id.clone().unwrap_or_default()
}

/// Stores each resource a record uses (once per distinct content) and returns their ids by
/// resource index.
fn store_resources(tx: &mut Transaction<'_>, batch: &Batch) -> Result<Vec<i64>, PgError> {
    let mut wanted: Vec<(Vec<u8>, String, usize)> = Vec::new();
    for index in 0..batch.resources.len() {
        if !batch.records.iter().any(|r| r.resource == index) {
            continue;
        }
        let json = batch
            .resources
            .get(index)
            .map_or_else(|| "{}".to_owned(), |attrs| Json::Object(attrs.clone()).to_string());
        wanted.push((Sha256::digest(json.as_bytes()).to_vec(), json, index));
    }
    wanted.sort();
    let insert = tx.prepare(
        "INSERT INTO resources (digest, json) VALUES ($1, $2)
         ON CONFLICT (digest) DO NOTHING RETURNING id",
    )?;
    let select = tx.prepare("SELECT id FROM resources WHERE digest = $1")?;
    let mut ids = vec![0i64; batch.resources.len()];
    for (digest, json, index) in &wanted {
        let row = match tx.query_opt(&insert, &[digest, json])? {
            Some(row) => row,
            None => tx.query_one(&select, &[digest])?,
        };
        if let Some(slot) = ids.get_mut(*index) {
            *slot = row.get(0);
        }
    }
    Ok(ids)
}

/// Inserts the first record of each id, in id order, in one statement. Returns the ids
/// inserted and the stored content of the others.
fn store_records<'b>(
    tx: &mut Transaction<'_>,
    batch: &'b Batch,
    contents: &'b [Content],
    resource_ids: &[i64],
    received_at_ms: i64,
) -> Result<(HashSet<String>, HashMap<String, Content>), PgError> {
    let mut order: Vec<usize> = (0..batch.records.len()).collect();
    order.sort_by(|&a, &b| batch.records[a].record_id.cmp(&batch.records[b].record_id));
    order.dedup_by(|a, b| batch.records[*a].record_id == batch.records[*b].record_id);
    let pick = |f: &dyn Fn(&Record, &Content) -> Option<String>| -> Vec<Option<String>> {
        order.iter().map(|&i| f(&batch.records[i], &contents[i])).collect()
    };
    let ids: Vec<&str> = order.iter().map(|&i| batch.records[i].record_id.as_str()).collect();
    let devices = pick(&|r, _| r.device_id.clone());
    let model_versions = pick(&|r, _| r.model_version.clone());
    let service_versions = pick(&|r, _| r.service_version.clone());
    let readings = pick(&|_, c| c.reading_json.clone());
    let attrs = pick(&|r, _| Some(Json::Object(r.attrs.clone()).to_string()));
    let bodies = pick(&|_, c| c.body_json.clone());
    let contributions = pick(&|_, c| c.contributions_json.clone());
    let records = order.iter().map(|&i| &batch.records[i]);
    let seqs: Vec<Option<i64>> = records.clone().map(|r| r.seq).collect();
    let times: Vec<Option<i64>> = records.clone().map(|r| r.time_unix_nano).collect();
    let scores: Vec<Option<f64>> = records.clone().map(|r| r.score).collect();
    let anomalies: Vec<Option<bool>> = records.clone().map(|r| r.anomaly).collect();
    let latencies: Vec<Option<f64>> = records.clone().map(|r| r.latency_us).collect();
    let scored: Vec<bool> = records.clone().map(|r| r.scored).collect();
    let resources: Vec<i64> =
        records.map(|r| resource_ids.get(r.resource).copied().unwrap_or(0)).collect();
    let rows = tx.query(
        "INSERT INTO records (record_id, device_id, seq, time_unix_nano, score, anomaly,
             model_version, latency_us, scored, service_version, reading_json, attrs_json,
             resource_id, body_json, contributions_json, received_at)
         SELECT u.*, $16::int8 FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[],
             $5::float8[], $6::bool[], $7::text[], $8::float8[], $9::bool[], $10::text[],
             $11::text[], $12::text[], $13::int8[], $14::text[], $15::text[]) AS u
         ON CONFLICT (record_id) DO NOTHING RETURNING record_id",
        &[
            &ids,
            &devices,
            &seqs,
            &times,
            &scores,
            &anomalies,
            &model_versions,
            &latencies,
            &scored,
            &service_versions,
            &readings,
            &attrs,
            &resources,
            &bodies,
            &contributions,
            &received_at_ms,
        ],
    )?;
    let inserted: HashSet<String> = rows.iter().map(|row| row.get(0)).collect();
    let held: Vec<&str> = ids.iter().copied().filter(|id| !inserted.contains(*id)).collect();
    let mut stored = HashMap::new();
    if !held.is_empty() {
        for row in tx.query(
            "SELECT record_id, seq, time_unix_nano, score, anomaly, model_version, latency_us,
                    scored, reading_json, body_json, contributions_json
             FROM records WHERE record_id = ANY($1)",
            &[&held],
        )? {
            let content = Content {
                seq: row.get(1),
                time_unix_nano: row.get(2),
                score: row.get(3),
                anomaly: row.get(4),
                model_version: row.get(5),
                latency_us: row.get(6),
                scored: row.get(7),
                reading_json: row.get(8),
                body_json: row.get(9),
                contributions_json: row.get(10),
            };
            stored.insert(row.get(0), content);
        }
    }
    Ok((inserted, stored))
}

/// Inserts `(device, seq)` pairs, in order, and counts per device the ones it did not hold.
fn count_new_seqs(
    tx: &mut Transaction<'_>,
    mut pairs: Vec<(String, i64)>,
) -> Result<BTreeMap<String, i64>, PgError> {
    pairs.sort_unstable();
    pairs.dedup();
    let mut counts = BTreeMap::new();
    if pairs.is_empty() {
        return Ok(counts);
    }
    let (devices, seqs): (Vec<String>, Vec<i64>) = pairs.into_iter().unzip();
    for row in tx.query(
        "INSERT INTO device_seqs (device_id, seq)
         SELECT * FROM unnest($1::text[], $2::int8[])
         ON CONFLICT DO NOTHING RETURNING device_id",
        &[&devices, &seqs],
    )? {
        *counts.entry(row.get::<_, String>(0)).or_insert(0) += 1;
    }
    Ok(counts)
}

/// A reading as a JSON array; non-finite elements become `"NaN"`, `"Infinity"`, `"-Infinity"`.
fn reading_json(values: &[f64]) -> String {
    Json::Array(values.iter().copied().map(double_to_json).collect()).to_string()
}
