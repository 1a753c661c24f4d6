//! The fleet view's queries: devices a page at a time, and one device's scores over time.
//!
//! Both walk an index from a cursor and stop after `limit` rows, so they cost the same with a
//! thousand stored records or a million: devices by their primary key (`after` = the last
//! device id of the previous page), a device's records by `records_by_device` newest first
//! (`before` = a record's rowid). They run on the reader connection, beside ingest.

use rusqlite::params;
use serde::Serialize;

use super::read::{device_columns, device_stats};
use super::{DeviceStats, Store, StoreError};

/// One page of devices, by device id.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DevicePage {
    /// Up to `limit` devices after the cursor.
    pub devices: Vec<FleetDevice>,
    /// `after` for the next page; null on the last one.
    pub next_after: Option<String>,
}

/// One device on the fleet page: its stored figures and the drift its current model version
/// reported (none before the device's first drift export for that version).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FleetDevice {
    /// What `/api/devices` says of it.
    #[serde(flatten)]
    pub stats: DeviceStats,
    /// Population stability index of the current model version's scores on this device.
    pub drift_psi: Option<f64>,
    /// Scores that PSI is computed from.
    pub drift_count: Option<i64>,
}

/// Where a point's score came from.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ScoredBy {
    /// The device scored the reading.
    Device,
    /// The collector did (cloud scoring).
    Cloud,
    /// Nobody yet (or the collector could not).
    None,
}

/// One record on a device's score-over-time plot.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SeriesPoint {
    /// The record's rowid: `before` for older points.
    pub cursor: i64,
    /// Sequence number.
    pub seq: Option<i64>,
    /// Event time in ns since the epoch (null if the device sent none).
    pub time_unix_nano: Option<i64>,
    /// The device's score, else the cloud's.
    pub score: Option<f64>,
    /// Whether that score crossed its model's threshold.
    pub anomaly: bool,
    /// Who scored it.
    pub scored_by: ScoredBy,
    /// The model version that scored it.
    pub model_version: Option<String>,
}

/// A record's score columns: the device's, or the cloud's.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Verdict {
    pub score: Option<f64>,
    pub anomaly: Option<bool>,
    pub model_version: Option<String>,
}

impl SeriesPoint {
    /// The point of one record: the device's score where it sent one, else the cloud's; with
    /// neither, unscored under the version the device named.
    pub(crate) fn of(
        cursor: i64,
        seq: Option<i64>,
        time_unix_nano: Option<i64>,
        device: Verdict,
        cloud: Verdict,
    ) -> Self {
        let (verdict, scored_by) = match (device.score, cloud.score) {
            (Some(_), _) => (device, ScoredBy::Device),
            (None, Some(_)) => (cloud, ScoredBy::Cloud),
            (None, None) => (device, ScoredBy::None),
        };
        SeriesPoint {
            cursor,
            seq,
            time_unix_nano,
            score: verdict.score,
            anomaly: verdict.anomaly.unwrap_or(false),
            scored_by,
            model_version: verdict.model_version,
        }
    }
}

/// One page of a device's points, newest first.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Series {
    /// The points.
    pub points: Vec<SeriesPoint>,
    /// `before` for the next (older) page; null on the last one.
    pub next_before: Option<i64>,
}

impl Store {
    /// Up to `limit` devices with ids after `after`, by id.
    pub fn devices_page(&self, limit: u32, after: Option<&str>) -> Result<DevicePage, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {} FROM devices WHERE device_id > ?1 ORDER BY device_id LIMIT ?2",
            device_columns()
        ))?;
        let rows = stmt.query_map(params![after.unwrap_or(""), i64::from(limit) + 1], |row| {
            Ok((row.get::<_, String>(0)?, device_stats(row)?))
        })?;
        let mut rows: Vec<(String, DeviceStats)> = rows.collect::<Result<_, _>>()?;
        // The `''` row (records without a device id) sorts first and is never "after" a cursor;
        // it is listed on the first page only.
        if after.is_none() {
            let mut blank = conn.prepare_cached(&format!(
                "SELECT {} FROM devices WHERE device_id = ''",
                device_columns()
            ))?;
            let found = blank.query_map([], device_stats)?.next().transpose()?;
            if let Some(row) = found {
                rows.insert(0, (String::new(), row));
            }
        }
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_after = if more { rows.last().map(|(id, _)| id.clone()) } else { None };
        // The drift row of each device's current version: a primary-key lookup per listed device.
        let mut drift = conn.prepare_cached(
            "SELECT psi, count FROM drift WHERE device_id = ?1 AND model_version = ?2",
        )?;
        let mut devices = Vec::with_capacity(rows.len());
        for (id, stats) in rows {
            let found = match &stats.model_version {
                Some(version) => drift
                    .query_map(params![id, version], |r| Ok((r.get(0)?, r.get(1)?)))?
                    .next()
                    .transpose()?,
                None => None,
            };
            let (drift_psi, drift_count) = found.map_or((None, None), |(p, c)| (Some(p), Some(c)));
            devices.push(FleetDevice { stats, drift_psi, drift_count });
        }
        Ok(DevicePage { devices, next_after })
    }

    /// Up to `limit` of `device`'s records older than cursor `before`, newest first, with the
    /// score that counts for each (the device's, else the cloud's).
    pub fn series(
        &self,
        device: &str,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Series, StoreError> {
        let conn = self.reader()?;
        let mut stmt = conn.prepare_cached(
            "SELECT rowid, seq, time_unix_nano, score, anomaly, model_version, cloud_score,
                    cloud_anomaly, cloud_model_version
             FROM records WHERE device_id = ?1 AND rowid < ?2
             ORDER BY rowid DESC LIMIT ?3",
        )?;
        let rows = stmt.query_map(
            params![device, before.unwrap_or(i64::MAX), i64::from(limit) + 1],
            |row| {
                Ok(SeriesPoint::of(
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    Verdict {
                        score: row.get(3)?,
                        anomaly: row.get(4)?,
                        model_version: row.get(5)?,
                    },
                    Verdict {
                        score: row.get(6)?,
                        anomaly: row.get(7)?,
                        model_version: row.get(8)?,
                    },
                ))
            },
        )?;
        let mut points: Vec<SeriesPoint> = rows.collect::<Result<_, _>>()?;
        let more = points.len() > limit as usize;
        points.truncate(limit as usize);
        let next_before = if more { points.last().map(|p| p.cursor) } else { None };
        Ok(Series { points, next_before })
    }
}
