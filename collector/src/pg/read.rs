//! The dashboard's queries on PostgreSQL, with the same answers as SQLite's (`store::read`).
//!
//! Totals come from the `devices` summaries and the counter shards, never from a scan of
//! `records`; `stats` reads them in one repeatable-read snapshot, so a total never mixes two
//! moments while other collectors commit. Record pages walk `records.id` (the cursor) and gap
//! listings walk `device_seqs`' primary key, stopping after `limit` gaps.

use postgres::{GenericClient, Row};
use serde_json::Value as Json;

use super::{PgError, PgStore};
use crate::store::{DeviceStats, Gap, Gaps, RecordPage, StoreError, StoredRecord, StoredStats};

/// `missing` of one `devices` row.
const MISSING: &str =
    "CASE WHEN max_seq IS NULL THEN 0 ELSE max_seq - LEAST(min_seq, 0) + 1 - distinct_seqs END";

impl PgStore {
    /// Totals over the whole database.
    pub fn stats(&self) -> Result<StoredStats, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(PgError::from)?;
        let row = tx
            .query_one(
                &format!(
                    "SELECT COALESCE(SUM(count), 0)::int8,
                            COUNT(*) FILTER (WHERE count > 0 AND device_id != ''),
                            COALESCE(SUM(anomalies), 0)::int8,
                            COALESCE(SUM({MISSING}), 0)::int8,
                            COALESCE(SUM(GREATEST({MISSING} - reported_evicted, 0)), 0)::int8,
                            COALESCE(SUM(unscored), 0)::int8,
                            COALESCE(SUM(cloud_scored), 0)::int8,
                            COALESCE(SUM(cloud_anomalies), 0)::int8,
                            COALESCE(SUM(cloud_failed), 0)::int8
                     FROM devices"
                ),
                &[],
            )
            .map_err(PgError::from)?;
        let counters = tx
            .query("SELECT name, SUM(value)::int8 FROM counters GROUP BY name", &[])
            .map_err(PgError::from)?;
        tx.commit().map_err(PgError::from)?;
        let value = |name: &str| {
            counters.iter().find(|r| r.get::<_, &str>(0) == name).map_or(0, |r| r.get::<_, i64>(1))
        };
        let (unscored, cloud_scored, cloud_failed) = (row.get(5), row.get(6), row.get::<_, i64>(8));
        Ok(StoredStats {
            records: row.get(0),
            unique_devices: row.get(1),
            anomalies: row.get(2),
            batches: value("batches"),
            duplicates_ignored: value("duplicates_ignored"),
            conflicts: value("conflicts"),
            idempotent_replays: value("idempotent_replays"),
            missing_seqs: row.get(3),
            unexplained_missing_seqs: row.get(4),
            unscored,
            cloud_scored,
            cloud_anomalies: row.get(7),
            cloud_failed,
            unscored_pending: (unscored - cloud_scored - cloud_failed).max(0),
        })
    }

    /// Up to `limit` records older than cursor `before` (newest first), optionally of one device.
    pub fn records(
        &self,
        limit: u32,
        device: Option<&str>,
        before: Option<i64>,
    ) -> Result<RecordPage, StoreError> {
        let mut conn = self.conn()?;
        let where_device = if device.is_some() { "r.device_id = $1" } else { "$1::text IS NULL" };
        let fetch = i64::from(limit) + 1;
        let rows = conn
            .query(
                &format!(
                    "SELECT r.id, r.record_id, r.device_id, r.seq, r.time_unix_nano, r.score,
                            r.anomaly, r.model_version, r.latency_us, r.scored, r.service_version,
                            r.reading_json, r.attrs_json, s.json, r.body_json, r.received_at,
                            r.contributions_json
                     FROM records r JOIN resources s ON s.id = r.resource_id
                     WHERE {where_device} AND r.id < $2
                     ORDER BY r.id DESC
                     LIMIT $3"
                ),
                &[&device, &before.unwrap_or(i64::MAX), &fetch],
            )
            .map_err(PgError::from)?;
        let mut records: Vec<StoredRecord> = rows.iter().map(record).collect();
        let more = records.len() > limit as usize;
        records.truncate(limit as usize);
        let next_before = if more { records.last().map(|r| r.cursor) } else { None };
        Ok(RecordPage { records, next_before })
    }

    /// One summary row per device, ordered by device id.
    pub fn devices(&self) -> Result<Vec<DeviceStats>, StoreError> {
        let mut conn = self.conn()?;
        let rows = conn
            .query(
                &format!(
                    "SELECT {} FROM devices ORDER BY device_id COLLATE \"C\"",
                    device_columns()
                ),
                &[],
            )
            .map_err(PgError::from)?;
        Ok(rows.iter().map(device_stats).collect())
    }

    /// The first `limit` runs of seqs in `0..=max_seq` that `device` has not stored.
    pub fn gaps(&self, device: &str, limit: usize) -> Result<Gaps, StoreError> {
        let mut conn = self.conn()?;
        Ok(gaps(&mut *conn, device, limit)?)
    }
}

/// Walks the device's seqs in order until `limit` gaps are found (a portal fetches them in
/// chunks, so a long history is not read whole).
fn gaps(conn: &mut impl GenericClient, device: &str, limit: usize) -> Result<Gaps, PgError> {
    let mut tx = conn.transaction()?;
    let statement = tx.prepare("SELECT seq FROM device_seqs WHERE device_id = $1 ORDER BY seq")?;
    let portal = tx.bind(&statement, &[&device])?;
    let mut found = Vec::new();
    let mut expected: i64 = 0;
    loop {
        let rows = tx.query_portal(&portal, 1000)?;
        for row in &rows {
            let seq: i64 = row.get(0);
            if seq > expected {
                if found.len() == limit {
                    return Ok(Gaps { gaps: found, truncated: true });
                }
                found.push(Gap { from: expected, to: seq - 1 });
            }
            expected = expected.max(seq.saturating_add(1));
        }
        if rows.len() < 1000 {
            return Ok(Gaps { gaps: found, truncated: false });
        }
    }
}

/// The `devices` columns [`device_stats`] reads, in its order.
pub(super) fn device_columns() -> String {
    format!(
        "device_id, count, anomalies, last_seq, min_seq, max_seq, {MISSING}, duplicates, conflicts,
         last_seen, CASE WHEN score_count > 0 THEN score_sum / score_count END, reported_evicted,
         reported_dropped, model_version, unscored, cloud_scored, cloud_anomalies, cloud_failed"
    )
}

/// One `devices` row selected with [`device_columns`].
pub(super) fn device_stats(row: &Row) -> DeviceStats {
    let missing: i64 = row.get(6);
    let reported_evicted: i64 = row.get(11);
    DeviceStats {
        device_id: Some(row.get::<_, String>(0)).filter(|d| !d.is_empty()),
        count: row.get(1),
        anomalies: row.get(2),
        last_seq: row.get(3),
        min_seq: row.get(4),
        max_seq: row.get(5),
        missing,
        reported_evicted,
        unexplained_missing: (missing - reported_evicted).max(0),
        reported_dropped: row.get(12),
        duplicates: row.get(7),
        conflicts: row.get(8),
        last_seen: row.get(9),
        mean_score: row.get(10),
        model_version: row.get(13),
        unscored: row.get(14),
        cloud_scored: row.get(15),
        cloud_anomalies: row.get(16),
        cloud_failed: row.get(17),
    }
}

fn record(row: &Row) -> StoredRecord {
    StoredRecord {
        cursor: row.get(0),
        record_id: row.get(1),
        device_id: row.get(2),
        seq: row.get(3),
        time_unix_nano: row.get(4),
        score: row.get(5),
        anomaly: row.get(6),
        model_version: row.get(7),
        latency_us: row.get(8),
        scored: row.get(9),
        service_version: row.get(10),
        reading: row.get::<_, Option<String>>(11).map(|s| parse_json(&s)),
        contributions: row.get::<_, Option<String>>(16).map(|s| parse_json(&s)),
        attrs: parse_json(row.get(12)),
        resource: parse_json(row.get(13)),
        body: row.get::<_, Option<String>>(14).map(|s| parse_json(&s)),
        received_at: row.get(15),
    }
}

/// Columns we wrote ourselves always hold valid JSON; anything else reads back as a string.
fn parse_json(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.to_owned()))
}
