//! The dashboard's queries, all on the reader connection.
//!
//! Totals and per-device figures come from the `devices` summary and `counters`, never from a
//! scan of `records`. Record listings walk an index from a cursor (`before` = a rowid), and gap
//! listings walk one device's `(device_id, seq)` index and stop after `limit` gaps.
//!
//! Missing seqs: a device numbers its readings from 0 and assigns a number only to a reading it
//! records, so every number in `0..=max_seq` that the collector does not hold is a loss (or still
//! in flight). `missing = max_seq + 1 − distinct_seqs`; the numbers below `min_seq` count too.

use rusqlite::{params, Row};
use serde::Serialize;
use serde_json::Value as Json;

use super::{Store, StoreError};

/// Totals for `GET /api/stats` (the request counters live in memory, not here).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct StoredStats {
    /// Stored records.
    pub records: i64,
    /// Devices with at least one stored record.
    pub unique_devices: i64,
    /// Records flagged `edge.anomaly = true`.
    pub anomalies: i64,
    /// Batches accepted (with or without an `Idempotency-Key`; replays not counted).
    pub batches: i64,
    /// Records skipped because the same record was already stored.
    pub duplicates_ignored: i64,
    /// Records refused because their id was stored with other content.
    pub conflicts: i64,
    /// Requests answered from the idempotency table.
    pub idempotent_replays: i64,
    /// Sum over devices of the seqs in `0..=max_seq` not stored.
    pub missing_seqs: i64,
    /// `missing_seqs` beyond what the devices explain by their reported evictions: the
    /// collector's loss detector (0 when nothing was lost on the way).
    pub unexplained_missing_seqs: i64,
    /// Records the devices sent unscored.
    pub unscored: i64,
    /// Of those, scored by the collector.
    pub cloud_scored: i64,
    /// Of those, flagged anomalous by the collector's score.
    pub cloud_anomalies: i64,
    /// Of those, the collector could not score (non-finite reading, no model of its width).
    pub cloud_failed: i64,
    /// Unscored records still waiting: sent without a reading, or not reached yet.
    pub unscored_pending: i64,
}

/// One stored record, as `GET /api/records` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StoredRecord {
    /// The record's position in the table: pass it as `before` for the next page.
    pub cursor: i64,
    /// `edge.record_id`.
    pub record_id: String,
    /// Device id.
    pub device_id: Option<String>,
    /// Sequence number.
    pub seq: Option<i64>,
    /// Event time in ns since the epoch.
    pub time_unix_nano: Option<i64>,
    /// Anomaly score.
    pub score: Option<f64>,
    /// Anomaly flag.
    pub anomaly: Option<bool>,
    /// Model version.
    pub model_version: Option<String>,
    /// Scoring latency in µs.
    pub latency_us: Option<f64>,
    /// Whether the device scored it.
    pub scored: bool,
    /// App version.
    pub service_version: Option<String>,
    /// Raw reading, if sent.
    pub reading: Option<Json>,
    /// A flagged reading's top contributing channels, largest share first:
    /// `[{"channel", "share"}, …]`; null when the device sent none.
    pub contributions: Option<Json>,
    /// Leftover record attributes.
    pub attrs: Json,
    /// Leftover resource attributes.
    pub resource: Json,
    /// Log body, if any.
    pub body: Option<Json>,
    /// When the collector stored it, in ms since the epoch.
    pub received_at: i64,
}

/// One page of `GET /api/records`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RecordPage {
    /// Newest first.
    pub records: Vec<StoredRecord>,
    /// `before` for the next (older) page; null when this page is the last.
    pub next_before: Option<i64>,
}

/// Per-device summary for `GET /api/devices`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeviceStats {
    /// Device id (null for records whose id had no device part).
    pub device_id: Option<String>,
    /// Stored records.
    pub count: i64,
    /// Records flagged anomalous.
    pub anomalies: i64,
    /// Sequence number of the most recently stored record.
    pub last_seq: Option<i64>,
    /// Lowest sequence number stored.
    pub min_seq: Option<i64>,
    /// Highest sequence number stored.
    pub max_seq: Option<i64>,
    /// Seqs in `0..=max_seq` not stored.
    pub missing: i64,
    /// Recorded readings the device says it evicted before sending them (full queue, full
    /// storage, dead-letter cap): the part of `missing` the device explains.
    pub reported_evicted: i64,
    /// `missing` beyond what the device explains: readings lost on the way (0 when nothing was).
    pub unexplained_missing: i64,
    /// Readings the device says it never recorded (refused input, storage failures); they never
    /// got a seq, so they are not in `missing`.
    pub reported_dropped: i64,
    /// Records skipped as duplicates.
    pub duplicates: i64,
    /// Records refused as conflicts.
    pub conflicts: i64,
    /// When the last record arrived, in ms since the epoch (null if none was stored).
    pub last_seen: Option<i64>,
    /// Mean of the stored scores (null if none was scored).
    pub mean_score: Option<f64>,
    /// The model version of the device's most recent record that named one.
    pub model_version: Option<String>,
    /// Records the device sent unscored.
    pub unscored: i64,
    /// Of those, scored by the collector.
    pub cloud_scored: i64,
    /// Of those, flagged anomalous by the collector's score.
    pub cloud_anomalies: i64,
    /// Of those, the collector could not score.
    pub cloud_failed: i64,
}

/// A run of missing seqs, both ends included.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Gap {
    /// First missing seq.
    pub from: i64,
    /// Last missing seq.
    pub to: i64,
}

/// The start of one device's gap list.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Gaps {
    /// The first `limit` gaps, lowest seqs first.
    pub gaps: Vec<Gap>,
    /// Whether more gaps follow.
    pub truncated: bool,
}

/// `missing` of one `devices` row.
const MISSING: &str =
    "CASE WHEN max_seq IS NULL THEN 0 ELSE max_seq - MIN(min_seq, 0) + 1 - distinct_seqs END";

impl Store {
    /// Totals over the whole database.
    pub fn stats(&self) -> Result<StoredStats, StoreError> {
        let conn = self.reader()?;
        let sums: [i64; 9] = conn.query_row(
            &format!(
                "SELECT COALESCE(SUM(count), 0),
                        COALESCE(SUM(count > 0 AND device_id != ''), 0),
                        COALESCE(SUM(anomalies), 0), COALESCE(SUM({MISSING}), 0),
                        COALESCE(SUM(MAX({MISSING} - reported_evicted, 0)), 0),
                        COALESCE(SUM(unscored), 0), COALESCE(SUM(cloud_scored), 0),
                        COALESCE(SUM(cloud_anomalies), 0), COALESCE(SUM(cloud_failed), 0)
                 FROM devices"
            ),
            [],
            |row| {
                let mut sums = [0i64; 9];
                for (i, sum) in sums.iter_mut().enumerate() {
                    *sum = row.get(i)?;
                }
                Ok(sums)
            },
        )?;
        let [records, unique_devices, anomalies, missing_seqs, unexplained_missing_seqs, unscored, cloud_scored, cloud_anomalies, cloud_failed] =
            sums;
        let mut counter = conn.prepare_cached("SELECT value FROM counters WHERE name = ?1")?;
        let mut value = |name: &str| -> Result<i64, StoreError> {
            Ok(counter.query_row([name], |row| row.get(0))?)
        };
        Ok(StoredStats {
            records,
            unique_devices,
            anomalies,
            batches: value("batches")?,
            duplicates_ignored: value("duplicates_ignored")?,
            conflicts: value("conflicts")?,
            idempotent_replays: value("idempotent_replays")?,
            missing_seqs,
            unexplained_missing_seqs,
            unscored,
            cloud_scored,
            cloud_anomalies,
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
        let conn = self.reader()?;
        let where_device = if device.is_some() { "r.device_id = ?1" } else { "?1 IS NULL" };
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT r.rowid, r.record_id, r.device_id, r.seq, r.time_unix_nano, r.score, r.anomaly,
                    r.model_version, r.latency_us, r.scored, r.service_version, r.reading_json,
                    r.attrs_json, s.json, r.body_json, r.received_at, r.contributions_json
             FROM records r JOIN resources s ON s.id = r.resource_id
             WHERE {where_device} AND r.rowid < ?2
             ORDER BY r.rowid DESC
             LIMIT ?3"
        ))?;
        let fetch = i64::from(limit) + 1;
        let rows = stmt.query_map(params![device, before.unwrap_or(i64::MAX), fetch], record)?;
        let mut records: Vec<StoredRecord> = rows.collect::<Result<_, _>>()?;
        let more = records.len() > limit as usize;
        records.truncate(limit as usize);
        let next_before = if more { records.last().map(|r| r.cursor) } else { None };
        Ok(RecordPage { records, next_before })
    }

    /// One summary row per device, ordered by device id.
    pub fn devices(&self) -> Result<Vec<DeviceStats>, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {} FROM devices ORDER BY device_id",
            device_columns()
        ))?;
        let rows = stmt.query_map([], device_stats)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The first `limit` runs of seqs in `0..=max_seq` that `device` has not stored.
    pub fn gaps(&self, device: &str, limit: usize) -> Result<Gaps, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT DISTINCT seq FROM records
             WHERE device_id = ?1 AND seq IS NOT NULL ORDER BY seq",
        )?;
        let mut rows = stmt.query([device])?;
        let mut gaps = Vec::new();
        let mut expected: i64 = 0;
        while let Some(row) = rows.next()? {
            let seq: i64 = row.get(0)?;
            if seq > expected {
                if gaps.len() == limit {
                    return Ok(Gaps { gaps, truncated: true });
                }
                gaps.push(Gap { from: expected, to: seq - 1 });
            }
            expected = expected.max(seq.saturating_add(1));
        }
        Ok(Gaps { gaps, truncated: false })
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
pub(super) fn device_stats(row: &Row<'_>) -> rusqlite::Result<DeviceStats> {
    Ok(DeviceStats {
        device_id: row.get::<_, String>(0).map(|d| Some(d).filter(|d| !d.is_empty()))?,
        count: row.get(1)?,
        anomalies: row.get(2)?,
        last_seq: row.get(3)?,
        min_seq: row.get(4)?,
        max_seq: row.get(5)?,
        missing: row.get(6)?,
        reported_evicted: row.get(11)?,
        unexplained_missing: (row.get::<_, i64>(6)? - row.get::<_, i64>(11)?).max(0),
        reported_dropped: row.get(12)?,
        duplicates: row.get(7)?,
        conflicts: row.get(8)?,
        last_seen: row.get(9)?,
        mean_score: row.get(10)?,
        model_version: row.get(13)?,
        unscored: row.get(14)?,
        cloud_scored: row.get(15)?,
        cloud_anomalies: row.get(16)?,
        cloud_failed: row.get(17)?,
    })
}

fn record(row: &Row<'_>) -> rusqlite::Result<StoredRecord> {
    Ok(StoredRecord {
        cursor: row.get(0)?,
        record_id: row.get(1)?,
        device_id: row.get(2)?,
        seq: row.get(3)?,
        time_unix_nano: row.get(4)?,
        score: row.get(5)?,
        anomaly: row.get(6)?,
        model_version: row.get(7)?,
        latency_us: row.get(8)?,
        scored: row.get(9)?,
        service_version: row.get(10)?,
        reading: row.get::<_, Option<String>>(11)?.map(|s| parse_json(&s)),
        contributions: row.get::<_, Option<String>>(16)?.map(|s| parse_json(&s)),
        attrs: parse_json(&row.get::<_, String>(12)?),
        resource: parse_json(&row.get::<_, String>(13)?),
        body: row.get::<_, Option<String>>(14)?.map(|s| parse_json(&s)),
        received_at: row.get(15)?,
    })
}

/// Columns we wrote ourselves always hold valid JSON; anything else reads back as a string.
fn parse_json(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.to_owned()))
}
