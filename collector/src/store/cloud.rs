//! Cloud scoring's side of the database: the records waiting for a score, and writing the scores.
//!
//! A record is waiting when its device sent it unscored with its reading and the collector has
//! neither scored it nor given up on it (`records_cloud_pending` holds exactly those). Writing a
//! result touches only the `cloud_*` columns and only while the record is still waiting, so two
//! collectors scoring the same record (several instances on one database) store one result and
//! count it once. The device's own columns are never changed: a re-drive of the record by the
//! device still compares equal to what is stored.

use rusqlite::params;
use serde_json::Value as Json;

use super::{Store, StoreError};

/// One record waiting for a cloud score.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// `edge.record_id`.
    pub record_id: String,
    /// The reading as the device sent it (non-finite values included).
    pub reading: Vec<f64>,
    /// The model version the record names (a device whose engine failed names the model it
    /// ran), if any.
    pub model_version: Option<String>,
    /// The model version active on the device when it sent the batch (`edge.model.active`).
    pub active_model: Option<String>,
}

/// What cloud scoring made of one record.
#[derive(Debug, Clone, PartialEq)]
pub enum CloudOutcome {
    /// Scored with `model_version`.
    Scored {
        /// The score.
        score: f64,
        /// Whether it crossed that model's threshold.
        anomaly: bool,
        /// The release that scored it.
        model_version: String,
    },
    /// Cannot be scored by any model the collector holds (a stable code such as `NON_FINITE`
    /// or `WRONG_WIDTH`); not tried again.
    Failed {
        /// Why.
        reason: String,
        /// The release it was tried with, if any.
        model_version: Option<String>,
    },
}

/// A cloud scoring result for one record.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudResult {
    /// The record.
    pub record_id: String,
    /// Its outcome.
    pub outcome: CloudOutcome,
}

impl Store {
    /// Up to `limit` waiting records, oldest first.
    pub fn cloud_pending(&self, limit: u32) -> Result<Vec<Pending>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT r.record_id, r.reading_json, r.model_version,
                    CASE WHEN json_type(s.json, '$.\"edge.model.active\"') = 'text'
                         THEN json_extract(s.json, '$.\"edge.model.active\"') END
             FROM records r INDEXED BY records_cloud_pending
             JOIN resources s ON s.id = r.resource_id
             WHERE r.scored = 0 AND r.reading_json IS NOT NULL AND r.cloud_score IS NULL
               AND r.cloud_error IS NULL
             ORDER BY r.rowid LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |row| {
            let reading: String = row.get(1)?;
            Ok(Pending {
                record_id: row.get(0)?,
                reading: parse_reading(&reading),
                model_version: row.get(2)?,
                active_model: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Stores `results` in one transaction; returns how many records it changed (a record
    /// already scored or failed by another collector is left as it is and not counted).
    pub fn record_cloud_results(
        &self,
        results: &[CloudResult],
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut changed = 0;
        let (mut scored, mut failed) = (0i64, 0i64);
        for result in results {
            let (updated, column, anomaly) = match &result.outcome {
                CloudOutcome::Scored { score, anomaly, model_version } => {
                    let n = tx
                        .prepare_cached(
                            "UPDATE records SET cloud_score = ?2, cloud_anomaly = ?3,
                                 cloud_model_version = ?4, cloud_scored_at = ?5
                             WHERE record_id = ?1 AND cloud_score IS NULL
                               AND cloud_error IS NULL",
                        )?
                        .execute(params![
                            result.record_id,
                            score,
                            anomaly,
                            model_version,
                            now_ms
                        ])?;
                    (n, "cloud_scored", *anomaly)
                }
                CloudOutcome::Failed { reason, model_version } => {
                    let n = tx
                        .prepare_cached(
                            "UPDATE records SET cloud_error = ?2, cloud_model_version = ?3,
                                 cloud_scored_at = ?4
                             WHERE record_id = ?1 AND cloud_score IS NULL
                               AND cloud_error IS NULL",
                        )?
                        .execute(params![result.record_id, reason, model_version, now_ms])?;
                    (n, "cloud_failed", false)
                }
            };
            if updated == 0 {
                continue;
            }
            changed += 1;
            if column == "cloud_scored" {
                scored += 1;
            } else {
                failed += 1;
            }
            tx.prepare_cached(&format!(
                "UPDATE devices SET {column} = {column} + 1,
                     cloud_anomalies = cloud_anomalies + ?2
                 WHERE device_id = (SELECT COALESCE(device_id, '') FROM records
                                    WHERE record_id = ?1)"
            ))?
            .execute(params![result.record_id, i64::from(anomaly)])?;
        }
        let mut bump =
            tx.prepare_cached("UPDATE counters SET value = value + ?2 WHERE name = ?1")?;
        bump.execute(params!["cloud_scored", scored])?;
        bump.execute(params!["cloud_failed", failed])?;
        drop(bump);
        tx.commit()?;
        Ok(changed)
    }
}

/// A stored reading: a JSON array of numbers, with `"NaN"`, `"Infinity"` and `"-Infinity"` for
/// the values JSON cannot carry. Anything else reads as NaN, which cloud scoring refuses.
pub(crate) fn parse_reading(json: &str) -> Vec<f64> {
    match serde_json::from_str::<Json>(json) {
        Ok(Json::Array(values)) => {
            values.iter().map(|v| edge_wire::double::from_json(v).unwrap_or(f64::NAN)).collect()
        }
        _ => vec![f64::NAN],
    }
}
