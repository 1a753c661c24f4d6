//! What one ingest adds to the per-device summaries and the counters, gathered in memory while
//! the records go in and written at the end of the transaction.
//!
//! Writing them last, devices in sorted order and counters in sorted name order, means every
//! transaction takes these shared row locks in the same order and holds them only for the end
//! of the transaction: two collectors storing batches of the same device wait for each other
//! briefly instead of deadlocking.

use std::collections::BTreeMap;

use edge_wire::attr;
use postgres::Transaction;
use serde_json::{Map, Value as Json};

use super::PgError;
use crate::otlp::Record;

/// One device's changes from one batch; the fields mirror the `devices` columns.
#[derive(Debug, Default)]
pub struct DeviceDelta {
    count: i64,
    /// Seqs this batch stored that the device did not hold yet (from `device_seqs`).
    pub distinct_seqs: i64,
    min_seq: Option<i64>,
    max_seq: Option<i64>,
    /// The seq of the last record stored, in batch order (`None` if it had none).
    last_seq: Option<i64>,
    anomalies: i64,
    score_sum: f64,
    score_count: i64,
    unscored: i64,
    /// The model version of the last stored record that named one.
    model_version: Option<String>,
    duplicates: i64,
    conflicts: i64,
    /// The largest loss counters the batch's resources report (`None`: none reported).
    losses: Option<(i64, i64)>,
}

impl DeviceDelta {
    /// Counts a newly stored record.
    pub fn stored(&mut self, r: &Record) {
        self.count += 1;
        if let Some(seq) = r.seq {
            self.min_seq = Some(self.min_seq.map_or(seq, |m| m.min(seq)));
            self.max_seq = Some(self.max_seq.map_or(seq, |m| m.max(seq)));
        }
        self.last_seq = r.seq;
        self.anomalies += i64::from(r.anomaly == Some(true));
        if let Some(score) = r.score {
            self.score_sum += score;
            self.score_count += 1;
        }
        self.unscored += i64::from(!r.scored);
        if r.model_version.is_some() {
            self.model_version.clone_from(&r.model_version);
        }
    }

    /// Counts a record skipped as a duplicate.
    pub fn duplicate(&mut self) {
        self.duplicates += 1;
    }

    /// Counts a record refused as a conflict.
    pub fn conflict(&mut self) {
        self.conflicts += 1;
    }

    /// Keeps the loss counters of one of the batch's resources (see `store::ingest`).
    pub fn losses(&mut self, resource: &Map<String, Json>) {
        let count = |key: &str| resource.get(key).and_then(Json::as_i64).unwrap_or(0).max(0);
        let evicted =
            count(attr::EVICTED_TOTAL).saturating_add(count(attr::DEAD_LETTER_EVICTED_TOTAL));
        let dropped = resource
            .iter()
            .filter(|(key, _)| key.starts_with(attr::DROPPED_PREFIX))
            .map(|(_, v)| v.as_i64().unwrap_or(0).max(0))
            .fold(0i64, i64::saturating_add);
        if evicted == 0 && dropped == 0 {
            return;
        }
        let (e, d) = self.losses.unwrap_or((0, 0));
        self.losses = Some((e.max(evicted), d.max(dropped)));
    }
}

/// Applies every device's delta, in device order.
pub fn write_devices(
    tx: &mut Transaction<'_>,
    deltas: &BTreeMap<String, DeviceDelta>,
    received_at_ms: i64,
) -> Result<(), PgError> {
    let upsert = tx.prepare(
        "INSERT INTO devices AS d (device_id, count, distinct_seqs, min_seq, max_seq, last_seq,
             last_seen, anomalies, score_sum, score_count, unscored, model_version, duplicates,
             conflicts)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
         ON CONFLICT (device_id) DO UPDATE SET
             count = d.count + excluded.count,
             distinct_seqs = d.distinct_seqs + excluded.distinct_seqs,
             min_seq = LEAST(d.min_seq, excluded.min_seq),
             max_seq = GREATEST(d.max_seq, excluded.max_seq),
             last_seq = CASE WHEN excluded.count > 0 THEN excluded.last_seq ELSE d.last_seq END,
             last_seen = COALESCE(excluded.last_seen, d.last_seen),
             anomalies = d.anomalies + excluded.anomalies,
             score_sum = d.score_sum + excluded.score_sum,
             score_count = d.score_count + excluded.score_count,
             unscored = d.unscored + excluded.unscored,
             model_version = COALESCE(excluded.model_version, d.model_version),
             duplicates = d.duplicates + excluded.duplicates,
             conflicts = d.conflicts + excluded.conflicts",
    )?;
    let losses = tx.prepare(
        "UPDATE devices SET reported_evicted = GREATEST(reported_evicted, $2),
                            reported_dropped = GREATEST(reported_dropped, $3)
         WHERE device_id = $1",
    )?;
    for (device, d) in deltas {
        let last_seen = (d.count > 0).then_some(received_at_ms);
        tx.execute(
            &upsert,
            &[
                device,
                &d.count,
                &d.distinct_seqs,
                &d.min_seq,
                &d.max_seq,
                &d.last_seq,
                &last_seen,
                &d.anomalies,
                &d.score_sum,
                &d.score_count,
                &d.unscored,
                &d.model_version,
                &d.duplicates,
                &d.conflicts,
            ],
        )?;
        if let Some((evicted, dropped)) = d.losses {
            tx.execute(&losses, &[device, &evicted, &dropped])?;
        }
    }
    Ok(())
}

/// Adds to counters (this server process's shard), skipping zeros, in name order.
pub fn bump(tx: &mut Transaction<'_>, counters: &[(&str, i64)]) -> Result<(), PgError> {
    let mut counters: Vec<(&str, i64)> =
        counters.iter().copied().filter(|(_, by)| *by != 0).collect();
    counters.sort_unstable();
    if counters.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = counters.iter().map(|(name, _)| *name).collect();
    let values: Vec<i64> = counters.iter().map(|(_, by)| *by).collect();
    tx.execute(
        "INSERT INTO counters AS c (name, shard, value)
         SELECT u.name, pg_backend_pid() % 64, u.value
         FROM unnest($1::text[], $2::int8[]) AS u (name, value)
         ON CONFLICT (name, shard) DO UPDATE SET value = c.value + excluded.value",
        &[&names, &values],
    )?;
    Ok(())
}
