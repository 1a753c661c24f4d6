//! The `drift` table: the latest score statistics per device and model version.
//!
//! Devices export cumulative snapshots ([`DriftSnapshot`], via `POST /v1/metrics`), so the
//! newest one says everything the older ones did: the table keeps one row per
//! `(device_id, model_version)`, replaced only by a snapshot with a strictly newer
//! `time_unix_nano`. A stale export (sent late) or a replayed one (sent twice) changes nothing.
//! Distributions are stored as JSON arrays (`bounds_json`, `bucket_counts_json`,
//! `expected_json`, `quantiles_json`): they are read whole, never queried by element.
//!
//! The table is created with the others ([`super::schema`]) and needs no migration: it is new
//! in every file, `CREATE TABLE IF NOT EXISTS` adds it to an existing one.

use edge_wire::drift::DriftSnapshot;
use edge_wire::metrics::DeviceMetrics;
use rusqlite::types::Type;
use rusqlite::{params, Connection, Row, TransactionBehavior};
use serde::Serialize;

use super::{Store, StoreError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS drift (
    device_id             TEXT NOT NULL,
    model_version         TEXT NOT NULL,
    start_time_unix_nano  INTEGER NOT NULL,
    time_unix_nano        INTEGER NOT NULL,
    count                 INTEGER NOT NULL,
    anomalies             INTEGER NOT NULL,
    sum                   REAL NOT NULL,
    bounds_json           TEXT NOT NULL,
    bucket_counts_json    TEXT NOT NULL,
    expected_json         TEXT NOT NULL,
    quantiles_json        TEXT NOT NULL,
    psi                   REAL NOT NULL,
    expected_anomaly_rate REAL NOT NULL,
    received_at           INTEGER NOT NULL,
    PRIMARY KEY (device_id, model_version)
);
";

/// Newer wins; a tie (a replay) keeps the row as it is. Both stores run this statement: SQLite
/// numbers `$N` parameters in order of appearance, as PostgreSQL numbers them.
pub(crate) const UPSERT: &str = "
INSERT INTO drift (device_id, model_version, start_time_unix_nano, time_unix_nano, count,
        anomalies, sum, bounds_json, bucket_counts_json, expected_json, quantiles_json, psi,
        expected_anomaly_rate, received_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
ON CONFLICT (device_id, model_version) DO UPDATE SET
    start_time_unix_nano = excluded.start_time_unix_nano,
    time_unix_nano = excluded.time_unix_nano,
    count = excluded.count,
    anomalies = excluded.anomalies,
    sum = excluded.sum,
    bounds_json = excluded.bounds_json,
    bucket_counts_json = excluded.bucket_counts_json,
    expected_json = excluded.expected_json,
    quantiles_json = excluded.quantiles_json,
    psi = excluded.psi,
    expected_anomaly_rate = excluded.expected_anomaly_rate,
    received_at = excluded.received_at
WHERE excluded.time_unix_nano > drift.time_unix_nano
";

const COLUMNS: &str = "device_id, model_version, start_time_unix_nano, time_unix_nano, count, \
    anomalies, sum, bounds_json, bucket_counts_json, expected_json, quantiles_json, psi, \
    expected_anomaly_rate, received_at";

/// Creates the table (called by [`super::schema::create`]).
pub fn create(conn: &Connection) -> Result<(), StoreError> {
    conn.execute_batch(SCHEMA)?;
    Ok(())
}

/// What one upsert did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct DriftUpsert {
    /// Snapshots stored (new rows, or newer than the stored ones).
    pub stored: u64,
    /// Snapshots not newer than the stored ones, left out.
    pub stale: u64,
}

/// One stored snapshot, as `GET /api/drift` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredDrift {
    /// The device.
    pub device_id: String,
    /// The statistics, as the device sent them.
    #[serde(flatten)]
    pub snapshot: DriftSnapshot,
    /// The observed anomaly rate (`anomalies / count`, 0 with no readings).
    pub anomaly_rate: f64,
    /// When the collector stored it (ms since the epoch).
    pub received_at: i64,
}

impl Store {
    /// Stores every device's snapshots in one transaction, each only if newer than the one
    /// stored for its device and model version. Values above `i64::MAX` fail (nothing stored):
    /// check them before.
    pub fn upsert_drift(
        &self,
        devices: &[DeviceMetrics],
        received_at: i64,
    ) -> Result<DriftUpsert, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut out = DriftUpsert::default();
        {
            let mut upsert = tx.prepare_cached(UPSERT)?;
            for device in devices {
                for s in &device.snapshots {
                    let changed = upsert.execute(params![
                        device.device_id,
                        s.model_version,
                        int(s.start_time_unix_nano)?,
                        int(s.time_unix_nano)?,
                        int(s.count)?,
                        int(s.anomalies)?,
                        s.sum,
                        json(&s.bounds)?,
                        json(&s.bucket_counts)?,
                        json(&s.expected_shares)?,
                        json(&s.quantiles)?,
                        s.psi,
                        s.expected_anomaly_rate,
                        received_at,
                    ])?;
                    if changed > 0 {
                        out.stored += 1;
                    } else {
                        out.stale += 1;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// The stored snapshots, of one device or all, by device then model version.
    pub fn drift(&self, device: Option<&str>) -> Result<Vec<StoredDrift>, StoreError> {
        let conn = self.reader()?;
        let sql = format!(
            "SELECT {COLUMNS} FROM drift WHERE ?1 IS NULL OR device_id = ?1 \
             ORDER BY device_id, model_version"
        );
        let mut statement = conn.prepare_cached(&sql)?;
        let rows = statement.query_map([device], stored)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// SQLite integers are signed; a larger value fails the statement rather than wrap.
fn int(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v)
        .map_err(|e| StoreError::Sqlite(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))
}

fn uint(row: &Row<'_>, i: usize) -> rusqlite::Result<u64> {
    let v: i64 = row.get(i)?;
    u64::try_from(v).map_err(|_| rusqlite::Error::IntegralValueOutOfRange(i, v))
}

fn json<T: Serialize + ?Sized>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Sqlite(rusqlite::Error::ToSqlConversionFailure(Box::new(e))))
}

fn stored(row: &Row<'_>) -> rusqlite::Result<StoredDrift> {
    let snapshot = DriftSnapshot {
        model_version: row.get(1)?,
        start_time_unix_nano: uint(row, 2)?,
        time_unix_nano: uint(row, 3)?,
        count: uint(row, 4)?,
        anomalies: uint(row, 5)?,
        sum: row.get(6)?,
        bounds: parsed(row, 7)?,
        bucket_counts: parsed(row, 8)?,
        expected_shares: parsed(row, 9)?,
        quantiles: parsed(row, 10)?,
        psi: row.get(11)?,
        expected_anomaly_rate: row.get(12)?,
    };
    Ok(StoredDrift {
        device_id: row.get(0)?,
        anomaly_rate: snapshot.anomaly_rate(),
        snapshot,
        received_at: row.get(13)?,
    })
}

/// A JSON column read back; a row that does not parse is an error, not a default.
fn parsed<T: serde::de::DeserializeOwned>(row: &Row<'_>, i: usize) -> rusqlite::Result<T> {
    let text: String = row.get(i)?;
    serde_json::from_str(&text)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(i, Type::Text, Box::new(e)))
}
