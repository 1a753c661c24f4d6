//! What one ingest adds to the per-device summaries and the counters, gathered in memory while
//! the records go in and written at the end of the transaction.
//!
//! Writing them last, devices in sorted order and counters in sorted name order, means every
//! transaction takes these shared row locks in the same order and holds them only for the end
//! of the transaction: two collectors storing batches of the same device wait for each other
//! briefly instead of deadlocking.

use std::collections::BTreeMap;

use postgres::Transaction;

use super::PgError;
use crate::summary::DeviceDelta;

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
