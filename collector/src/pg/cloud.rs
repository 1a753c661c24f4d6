//! Cloud scoring on PostgreSQL, with the SQLite store's answers (`store::cloud`), while every
//! collector on the database runs its own scoring task.
//!
//! Two collectors may take the same waiting records and both score them. A result is written
//! only while its record is still waiting: the `UPDATE`'s condition is checked again on the row
//! a concurrent writer committed, so the second write finds the record scored, changes nothing
//! and is not counted. Records are updated in sorted id order and the device summaries last, in
//! sorted device order, as ingest writes them, so two transactions never wait for each other's
//! rows in opposite orders; a collision that happens anyway is retried.

use std::collections::BTreeMap;

use postgres::Client;

use super::{PgError, PgStore};
use crate::store::cloud::parse_reading;
use crate::store::{CloudOutcome, CloudResult, Pending, StoreError};

/// Tries of one write when transactions collide.
const ATTEMPTS: usize = 4;

/// What one device's summary gains from one write.
#[derive(Debug, Default)]
struct Counts {
    scored: i64,
    anomalies: i64,
    failed: i64,
}

impl PgStore {
    /// Up to `limit` waiting records, oldest first (the partial index `records_cloud_pending`
    /// holds exactly those).
    pub fn cloud_pending(&self, limit: u32) -> Result<Vec<Pending>, StoreError> {
        let mut conn = self.conn()?;
        let rows = conn
            .query(
                "SELECT r.record_id, r.reading_json, r.model_version,
                        CASE WHEN json_typeof(s.json::json -> 'edge.model.active') = 'string'
                             THEN s.json::json ->> 'edge.model.active' END
                 FROM records r JOIN resources s ON s.id = r.resource_id
                 WHERE NOT r.scored AND r.reading_json IS NOT NULL AND r.cloud_score IS NULL
                   AND r.cloud_error IS NULL
                 ORDER BY r.id LIMIT $1",
                &[&i64::from(limit)],
            )
            .map_err(PgError::from)?;
        Ok(rows
            .iter()
            .map(|row| Pending {
                record_id: row.get(0),
                reading: parse_reading(row.get(1)),
                model_version: row.get(2),
                active_model: row.get(3),
            })
            .collect())
    }

    /// Stores `results` in one transaction; returns how many records it changed (a record
    /// already scored or failed, by this collector or another, is left as it is).
    pub fn record_cloud_results(
        &self,
        results: &[CloudResult],
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let mut attempt = 1;
        loop {
            match write_once(&mut conn, results, now_ms) {
                Err(e) if e.is_collision() && attempt < ATTEMPTS => attempt += 1,
                outcome => return Ok(outcome?),
            }
        }
    }
}

fn write_once(client: &mut Client, results: &[CloudResult], now_ms: i64) -> Result<usize, PgError> {
    let mut tx = client.transaction()?;
    let scored = tx.prepare(
        "UPDATE records SET cloud_score = $2, cloud_anomaly = $3, cloud_model_version = $4,
             cloud_scored_at = $5
         WHERE record_id = $1 AND cloud_score IS NULL AND cloud_error IS NULL
         RETURNING COALESCE(device_id, '')",
    )?;
    let failed = tx.prepare(
        "UPDATE records SET cloud_error = $2, cloud_model_version = $3, cloud_scored_at = $4
         WHERE record_id = $1 AND cloud_score IS NULL AND cloud_error IS NULL
         RETURNING COALESCE(device_id, '')",
    )?;
    let mut sorted: Vec<&CloudResult> = results.iter().collect();
    sorted.sort_by(|a, b| a.record_id.cmp(&b.record_id));
    let mut devices: BTreeMap<String, Counts> = BTreeMap::new();
    let mut changed = 0;
    for result in sorted {
        let id = &result.record_id;
        let row = match &result.outcome {
            CloudOutcome::Scored { score, anomaly, model_version } => {
                tx.query_opt(&scored, &[id, score, anomaly, model_version, &now_ms])?
            }
            CloudOutcome::Failed { reason, model_version } => {
                tx.query_opt(&failed, &[id, reason, model_version, &now_ms])?
            }
        };
        let Some(row) = row else { continue };
        changed += 1;
        let counts = devices.entry(row.get(0)).or_default();
        match &result.outcome {
            CloudOutcome::Scored { anomaly, .. } => {
                counts.scored += 1;
                counts.anomalies += i64::from(*anomaly);
            }
            CloudOutcome::Failed { .. } => counts.failed += 1,
        }
    }
    let bump = tx.prepare(
        "UPDATE devices SET cloud_scored = cloud_scored + $2,
             cloud_anomalies = cloud_anomalies + $3, cloud_failed = cloud_failed + $4
         WHERE device_id = $1",
    )?;
    for (device, c) in &devices {
        tx.execute(&bump, &[device, &c.scored, &c.anomalies, &c.failed])?;
    }
    tx.commit()?;
    Ok(changed)
}
