//! Writes what one ingest adds to the per-device summaries ([`DeviceDelta`]s gathered while the
//! batch's records went in): one upsert per device per batch rather than one per record.

use std::collections::BTreeMap;

use rusqlite::{params, Transaction};

use super::StoreError;
use crate::summary::DeviceDelta;

/// Applies every device's delta. The result is the same as applying the batch's records one by
/// one: sums add up, the seq range widens, `last_seq`/`last_seen` move only when the batch
/// stored a record, and the model version is the last one a stored record named.
pub(super) fn write_devices(
    tx: &Transaction<'_>,
    deltas: &BTreeMap<&str, DeviceDelta>,
    received_at_ms: i64,
) -> Result<(), StoreError> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO devices (device_id, count, distinct_seqs, min_seq, max_seq, last_seq,
             last_seen, anomalies, score_sum, score_count, unscored, model_version, duplicates,
             conflicts)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)
         ON CONFLICT (device_id) DO UPDATE SET
             count = count + excluded.count,
             distinct_seqs = distinct_seqs + excluded.distinct_seqs,
             min_seq = CASE WHEN min_seq IS NULL OR excluded.min_seq < min_seq
                            THEN COALESCE(excluded.min_seq, min_seq) ELSE min_seq END,
             max_seq = CASE WHEN max_seq IS NULL OR excluded.max_seq > max_seq
                            THEN COALESCE(excluded.max_seq, max_seq) ELSE max_seq END,
             last_seq = CASE WHEN excluded.count > 0 THEN excluded.last_seq ELSE last_seq END,
             last_seen = COALESCE(excluded.last_seen, last_seen),
             anomalies = anomalies + excluded.anomalies,
             score_sum = score_sum + excluded.score_sum,
             score_count = score_count + excluded.score_count,
             unscored = unscored + excluded.unscored,
             model_version = COALESCE(excluded.model_version, model_version),
             duplicates = duplicates + excluded.duplicates,
             conflicts = conflicts + excluded.conflicts",
    )?;
    for (device, d) in deltas {
        let last_seen = (d.count > 0).then_some(received_at_ms);
        upsert.execute(params![
            device,
            d.count,
            d.distinct_seqs,
            d.min_seq,
            d.max_seq,
            d.last_seq,
            last_seen,
            d.anomalies,
            d.score_sum,
            d.score_count,
            d.unscored,
            d.model_version,
            d.duplicates,
            d.conflicts,
        ])?;
        if let Some((evicted, dropped)) = d.losses {
            tx.prepare_cached(
                "UPDATE devices SET reported_evicted = MAX(reported_evicted, ?2),
                                    reported_dropped = MAX(reported_dropped, ?3)
                 WHERE device_id = ?1",
            )?
            .execute(params![device, evicted, dropped])?;
        }
    }
    Ok(())
}
