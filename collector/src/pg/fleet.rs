//! The fleet view's queries on PostgreSQL, with the SQLite store's answers (`store::fleet`).
//!
//! Devices come a page at a time along `devices_by_id` (bytewise order, as SQLite's), with the
//! drift row of each listed device's current version fetched in one more query; a device's
//! points walk `records_by_device` newest first from the cursor. Both stop after `limit` rows,
//! whatever the table sizes.

use postgres::Row;

use super::read::{device_columns, device_stats};
use super::{PgError, PgStore};
use crate::store::fleet::Verdict;
use crate::store::{DevicePage, FleetDevice, Series, SeriesPoint, StoreError};

impl PgStore {
    /// Up to `limit` devices with ids after `after`, by id (the `''` row of records without a
    /// device id sorts first, so it is on the first page).
    pub fn devices_page(&self, limit: u32, after: Option<&str>) -> Result<DevicePage, StoreError> {
        let mut conn = self.conn()?;
        let fetch = i64::from(limit) + 1;
        let rows = match after {
            Some(after) => conn.query(
                &format!(
                    "SELECT {} FROM devices WHERE device_id COLLATE \"C\" > $1
                     ORDER BY device_id COLLATE \"C\" LIMIT $2",
                    device_columns()
                ),
                &[&after, &fetch],
            ),
            None => conn.query(
                &format!(
                    "SELECT {} FROM devices ORDER BY device_id COLLATE \"C\" LIMIT $1",
                    device_columns()
                ),
                &[&fetch],
            ),
        }
        .map_err(PgError::from)?;
        let mut listed: Vec<(String, Row)> =
            rows.into_iter().map(|row| (row.get::<_, String>(0), row)).collect();
        let more = listed.len() > limit as usize;
        listed.truncate(limit as usize);
        let next_after = if more { listed.last().map(|(id, _)| id.clone()) } else { None };

        let ids: Vec<&str> = listed.iter().map(|(id, _)| id.as_str()).collect();
        let drift = conn
            .query(
                "SELECT device_id, model_version, psi, count FROM drift
                 WHERE device_id = ANY($1)",
                &[&ids],
            )
            .map_err(PgError::from)?;
        let devices = listed
            .iter()
            .map(|(id, row)| {
                let stats = device_stats(row);
                let current = drift.iter().find(|d| {
                    d.get::<_, &str>(0) == id
                        && Some(d.get::<_, &str>(1)) == stats.model_version.as_deref()
                });
                FleetDevice {
                    drift_psi: current.map(|d| d.get(2)),
                    drift_count: current.map(|d| d.get(3)),
                    stats,
                }
            })
            .collect();
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
        let mut conn = self.conn()?;
        let rows = conn
            .query(
                "SELECT id, seq, time_unix_nano, score, anomaly, model_version, cloud_score,
                        cloud_anomaly, cloud_model_version
                 FROM records WHERE device_id = $1 AND id < $2
                 ORDER BY id DESC LIMIT $3",
                &[&device, &before.unwrap_or(i64::MAX), &(i64::from(limit) + 1)],
            )
            .map_err(PgError::from)?;
        let mut points: Vec<SeriesPoint> = rows
            .iter()
            .map(|row| {
                SeriesPoint::of(
                    row.get(0),
                    row.get(1),
                    row.get(2),
                    Verdict { score: row.get(3), anomaly: row.get(4), model_version: row.get(5) },
                    Verdict { score: row.get(6), anomaly: row.get(7), model_version: row.get(8) },
                )
            })
            .collect();
        let more = points.len() > limit as usize;
        points.truncate(limit as usize);
        let next_before = if more { points.last().map(|p| p.cursor) } else { None };
        Ok(Series { points, next_before })
    }
}
