//! The `drift` table on PostgreSQL: the newest score statistics per device and model version,
//! with the SQLite store's answers (`store::drift`).
//!
//! A snapshot replaces the stored one only if strictly newer, decided by the upsert's own
//! condition on the row as committed, so two collectors given snapshots of one device at once
//! keep the newer whichever commits last. Rows are written in sorted key order, so two
//! transactions never wait for each other's rows in opposite orders.

use edge_wire::drift::DriftSnapshot;
use edge_wire::metrics::DeviceMetrics;
use postgres::Row;
use serde::Serialize;

use super::{PgError, PgStore};
use crate::store::drift::{DriftUpsert, StoredDrift, UPSERT};
use crate::store::StoreError;

impl PgStore {
    /// Stores every device's snapshots in one transaction, each only if newer than the one
    /// stored for its device and model version. A value above `i64::MAX` fails the whole call
    /// (nothing stored).
    pub fn upsert_drift(
        &self,
        devices: &[DeviceMetrics],
        received_at: i64,
    ) -> Result<DriftUpsert, StoreError> {
        let mut rows: Vec<(&str, &DriftSnapshot)> = devices
            .iter()
            .flat_map(|d| d.snapshots.iter().map(move |s| (d.device_id.as_str(), s)))
            .collect();
        rows.sort_by(|a, b| (a.0, &a.1.model_version).cmp(&(b.0, &b.1.model_version)));
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(PgError::from)?;
        let upsert = tx.prepare(UPSERT).map_err(PgError::from)?;
        let mut out = DriftUpsert::default();
        for (device, s) in rows {
            let changed = tx
                .execute(
                    &upsert,
                    &[
                        &device,
                        &s.model_version,
                        &int(s.start_time_unix_nano)?,
                        &int(s.time_unix_nano)?,
                        &int(s.count)?,
                        &int(s.anomalies)?,
                        &s.sum,
                        &json(&s.bounds)?,
                        &json(&s.bucket_counts)?,
                        &json(&s.expected_shares)?,
                        &json(&s.quantiles)?,
                        &s.psi,
                        &s.expected_anomaly_rate,
                        &received_at,
                    ],
                )
                .map_err(PgError::from)?;
            if changed > 0 {
                out.stored += 1;
            } else {
                out.stale += 1;
            }
        }
        tx.commit().map_err(PgError::from)?;
        Ok(out)
    }

    /// The stored snapshots, of one device or all, by device then model version.
    pub fn drift(&self, device: Option<&str>) -> Result<Vec<StoredDrift>, StoreError> {
        let mut conn = self.conn()?;
        let rows = conn
            .query(
                "SELECT device_id, model_version, start_time_unix_nano, time_unix_nano, count,
                        anomalies, sum, bounds_json, bucket_counts_json, expected_json,
                        quantiles_json, psi, expected_anomaly_rate, received_at
                 FROM drift WHERE $1::text IS NULL OR device_id = $1
                 ORDER BY device_id COLLATE \"C\", model_version COLLATE \"C\"",
                &[&device],
            )
            .map_err(PgError::from)?;
        Ok(rows.iter().map(stored).collect::<Result<_, _>>()?)
    }
}

fn int(v: u64) -> Result<i64, PgError> {
    i64::try_from(v).map_err(|_| PgError::Value(format!("{v} does not fit a BIGINT")))
}

fn uint(row: &Row, i: usize) -> Result<u64, PgError> {
    let v: i64 = row.get(i);
    u64::try_from(v).map_err(|_| PgError::Value(format!("stored drift column {i} is {v}")))
}

fn json<T: Serialize + ?Sized>(value: &T) -> Result<String, PgError> {
    serde_json::to_string(value).map_err(|e| PgError::Value(e.to_string()))
}

/// A JSON column read back; a row that does not parse is an error, not a default.
fn parsed<T: serde::de::DeserializeOwned>(row: &Row, i: usize) -> Result<T, PgError> {
    serde_json::from_str(row.get(i))
        .map_err(|e| PgError::Value(format!("stored drift column {i}: {e}")))
}

fn stored(row: &Row) -> Result<StoredDrift, PgError> {
    let snapshot = DriftSnapshot {
        model_version: row.get(1),
        start_time_unix_nano: uint(row, 2)?,
        time_unix_nano: uint(row, 3)?,
        count: uint(row, 4)?,
        anomalies: uint(row, 5)?,
        sum: row.get(6),
        bounds: parsed(row, 7)?,
        bucket_counts: parsed(row, 8)?,
        expected_shares: parsed(row, 9)?,
        quantiles: parsed(row, 10)?,
        psi: row.get(11),
        expected_anomaly_rate: row.get(12),
    };
    Ok(StoredDrift {
        device_id: row.get(0),
        anomaly_rate: snapshot.anomaly_rate(),
        snapshot,
        received_at: row.get(13),
    })
}
