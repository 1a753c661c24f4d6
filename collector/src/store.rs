//! SQLite storage: the schema, the one ingest transaction, and the dashboard queries.
//!
//! This is the only file that knows SQL. The database runs in WAL mode so the dashboard can read
//! while a batch is written. Every `/v1/logs` request is one transaction ([`Store::ingest`]):
//! it first looks the `Idempotency-Key` up in `batches` (a hit returns the stored response and
//! writes no record), then inserts each record with `INSERT OR IGNORE` keyed by `record_id` (a
//! retried batch under a new key still stores each record once), then remembers the key and its
//! response. A failure anywhere rolls the whole request back.
//!
//! One connection behind a mutex is plenty for a dev collector; callers run these blocking
//! methods on tokio's blocking pool.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use serde_json::Value as Json;

use crate::otlp::{double_to_json, Record};

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database's directory could not be created.
    #[error("cannot create {path}: {source}")]
    CreateDir {
        /// The directory.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A previous holder of the connection panicked (it cannot, but we do not unwrap).
    #[error("database connection lock poisoned")]
    Poisoned,
    /// The blocking task running the query was cancelled or panicked.
    #[error("database task failed: {0}")]
    Task(String),
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    record_id       TEXT PRIMARY KEY,
    device_id       TEXT,
    seq             INTEGER,
    time_unix_nano  INTEGER,
    score           REAL,
    anomaly         INTEGER,
    model_version   TEXT,
    latency_us      REAL,
    scored          INTEGER NOT NULL,
    service_version TEXT,
    reading_json    TEXT,
    attrs_json      TEXT NOT NULL,
    resource_json   TEXT NOT NULL,
    body_json       TEXT,
    received_at     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_device ON records (device_id, received_at);
CREATE INDEX IF NOT EXISTS records_by_received ON records (received_at);
CREATE TABLE IF NOT EXISTS batches (
    idempotency_key TEXT PRIMARY KEY,
    received_at     INTEGER NOT NULL,
    record_count    INTEGER NOT NULL,
    response_json   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters (name, value) VALUES
    ('batches', 0), ('duplicates_ignored', 0), ('idempotent_replays', 0);
PRAGMA user_version = 1;
";

/// What [`Store::ingest`] did with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IngestOutcome {
    /// The `Idempotency-Key` was seen before: nothing was written; answer with this response.
    Replayed {
        /// The response body stored with the key.
        response_json: String,
    },
    /// The batch was stored.
    Stored {
        /// Records newly inserted.
        inserted: usize,
        /// Records skipped because their `record_id` was already stored.
        duplicates: usize,
    },
}

/// Totals for `GET /api/stats` (the request counters live in memory, not here).
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct StoredStats {
    /// Stored records.
    pub records: i64,
    /// Distinct device ids among them.
    pub unique_devices: i64,
    /// Records flagged `edge.anomaly = true`.
    pub anomalies: i64,
    /// Batches accepted (with or without an `Idempotency-Key`; replays not counted).
    pub batches: i64,
    /// Records skipped by `INSERT OR IGNORE` because their id was already stored.
    pub duplicates_ignored: i64,
    /// Requests answered from the idempotency table.
    pub idempotent_replays: i64,
}

/// One stored record, as `GET /api/records` shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StoredRecord {
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
    /// Leftover record attributes.
    pub attrs: Json,
    /// Leftover resource attributes.
    pub resource: Json,
    /// Log body, if any.
    pub body: Option<Json>,
    /// When the collector stored it, in ms since the epoch.
    pub received_at: i64,
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
    /// Sequence number of the most recently received record.
    pub last_seq: Option<i64>,
    /// Highest sequence number stored.
    pub max_seq: Option<i64>,
    /// When the last record arrived, in ms since the epoch.
    pub last_seen: i64,
    /// Mean of the stored scores (null if none was scored).
    pub mean_score: Option<f64>,
}

/// The SQLite database.
pub struct Store {
    conn: Mutex<Connection>,
}

impl Store {
    /// Opens (creating if needed) the database file and its parent directory.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        Self::init(Connection::open(path)?)
    }

    /// An in-memory database (tests and throwaway demos).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        Self::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<Self, StoreError> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        // In-memory databases answer "memory"; files switch to WAL.
        let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store { conn: Mutex::new(conn) })
    }

    fn conn(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.conn.lock().map_err(|_| StoreError::Poisoned)
    }

    /// The journal mode in force (`wal` for a file database).
    pub fn journal_mode(&self) -> Result<String, StoreError> {
        Ok(self.conn()?.query_row("PRAGMA journal_mode", [], |row| row.get(0))?)
    }

    /// Stores one request's records in one transaction; see the module docs.
    pub fn ingest(
        &self,
        idempotency_key: Option<&str>,
        records: &[Record],
        response_json: &str,
        received_at_ms: i64,
    ) -> Result<IngestOutcome, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(key) = idempotency_key {
            let seen: Option<String> = tx
                .query_row(
                    "SELECT response_json FROM batches WHERE idempotency_key = ?1",
                    [key],
                    |row| row.get(0),
                )
                .optional()?;
            if let Some(response_json) = seen {
                bump(&tx, "idempotent_replays", 1)?;
                tx.commit()?;
                return Ok(IngestOutcome::Replayed { response_json });
            }
        }
        let mut inserted = 0;
        {
            let mut insert = tx.prepare_cached(
                "INSERT OR IGNORE INTO records (record_id, device_id, seq, time_unix_nano, score, anomaly,
                     model_version, latency_us, scored, service_version, reading_json, attrs_json,
                     resource_json, body_json, received_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            )?;
            for r in records {
                inserted += insert.execute(params![
                    r.record_id,
                    r.device_id,
                    r.seq,
                    r.time_unix_nano,
                    r.score,
                    r.anomaly,
                    r.model_version,
                    r.latency_us,
                    r.scored,
                    r.service_version,
                    r.reading.as_ref().map(|v| reading_json(v)),
                    Json::Object(r.attrs.clone()).to_string(),
                    Json::Object(r.resource_attrs.clone()).to_string(),
                    r.body.as_ref().map(Json::to_string),
                    received_at_ms,
                ])?;
            }
        }
        let duplicates = records.len() - inserted;
        if let Some(key) = idempotency_key {
            tx.execute(
                "INSERT INTO batches (idempotency_key, received_at, record_count, response_json)
                 VALUES (?1, ?2, ?3, ?4)",
                params![key, received_at_ms, records.len() as i64, response_json],
            )?;
        }
        bump(&tx, "batches", 1)?;
        bump(&tx, "duplicates_ignored", duplicates as i64)?;
        tx.commit()?;
        Ok(IngestOutcome::Stored { inserted, duplicates })
    }

    /// Totals over the whole database.
    pub fn stats(&self) -> Result<StoredStats, StoreError> {
        let conn = self.conn()?;
        let (records, unique_devices, anomalies) = conn.query_row(
            "SELECT COUNT(*), COUNT(DISTINCT device_id), COALESCE(SUM(anomaly = 1), 0) FROM records",
            [],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )?;
        let counter = |name: &str| -> Result<i64, StoreError> {
            Ok(conn
                .query_row("SELECT value FROM counters WHERE name = ?1", [name], |row| row.get(0))
                .optional()?
                .unwrap_or(0))
        };
        Ok(StoredStats {
            records,
            unique_devices,
            anomalies,
            batches: counter("batches")?,
            duplicates_ignored: counter("duplicates_ignored")?,
            idempotent_replays: counter("idempotent_replays")?,
        })
    }

    /// The latest `limit` records (newest first), optionally of one device.
    pub fn records(
        &self,
        limit: u32,
        device: Option<&str>,
    ) -> Result<Vec<StoredRecord>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT record_id, device_id, seq, time_unix_nano, score, anomaly, model_version,
                    latency_us, scored, service_version, reading_json, attrs_json, resource_json,
                    body_json, received_at
             FROM records
             WHERE ?1 IS NULL OR device_id = ?1
             ORDER BY received_at DESC, rowid DESC
             LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![device, limit], |row| {
            Ok(StoredRecord {
                record_id: row.get(0)?,
                device_id: row.get(1)?,
                seq: row.get(2)?,
                time_unix_nano: row.get(3)?,
                score: row.get(4)?,
                anomaly: row.get(5)?,
                model_version: row.get(6)?,
                latency_us: row.get(7)?,
                scored: row.get(8)?,
                service_version: row.get(9)?,
                reading: row.get::<_, Option<String>>(10)?.map(|s| parse_json(&s)),
                attrs: parse_json(&row.get::<_, String>(11)?),
                resource: parse_json(&row.get::<_, String>(12)?),
                body: row.get::<_, Option<String>>(13)?.map(|s| parse_json(&s)),
                received_at: row.get(14)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// One summary row per device, ordered by device id.
    pub fn devices(&self) -> Result<Vec<DeviceStats>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(
            "SELECT device_id, COUNT(*), COALESCE(SUM(anomaly = 1), 0),
                    (SELECT r2.seq FROM records r2 WHERE r2.device_id IS r.device_id
                     ORDER BY r2.received_at DESC, r2.rowid DESC LIMIT 1),
                    MAX(seq), MAX(received_at), AVG(score)
             FROM records r
             GROUP BY device_id
             ORDER BY device_id",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(DeviceStats {
                device_id: row.get(0)?,
                count: row.get(1)?,
                anomalies: row.get(2)?,
                last_seq: row.get(3)?,
                max_seq: row.get(4)?,
                last_seen: row.get(5)?,
                mean_score: row.get(6)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn bump(conn: &Connection, name: &str, by: i64) -> Result<(), StoreError> {
    conn.execute("UPDATE counters SET value = value + ?2 WHERE name = ?1", params![name, by])?;
    Ok(())
}

/// A reading as a JSON array; non-finite elements become `"NaN"`, `"Infinity"`, `"-Infinity"`.
fn reading_json(values: &[f64]) -> String {
    Json::Array(values.iter().copied().map(double_to_json).collect()).to_string()
}

/// Columns we wrote ourselves always hold valid JSON; anything else reads back as a string.
fn parse_json(text: &str) -> Json {
    serde_json::from_str(text).unwrap_or_else(|_| Json::String(text.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn record(id: &str, score: Option<f64>, anomaly: bool) -> Record {
        let (device, seq) = id.split_once(':').unwrap();
        Record {
            record_id: id.to_owned(),
            device_id: Some(device.to_owned()),
            seq: seq.parse().ok(),
            time_unix_nano: Some(1),
            score,
            anomaly: Some(anomaly),
            model_version: Some("m1".into()),
            latency_us: Some(12.5),
            scored: score.is_some(),
            service_version: None,
            reading: None,
            attrs: serde_json::Map::new(),
            resource_attrs: serde_json::Map::new(),
            body: None,
        }
    }

    #[test]
    fn ingest_dedupes_by_key_and_by_record_id() {
        let store = Store::open_in_memory().unwrap();
        let batch = [record("a:1", Some(0.1), false), record("a:2", Some(0.9), true)];
        assert_eq!(
            store.ingest(Some("k1"), &batch, "{}", 10).unwrap(),
            IngestOutcome::Stored { inserted: 2, duplicates: 0 }
        );
        assert_eq!(
            store.ingest(Some("k1"), &batch, "ignored", 11).unwrap(),
            IngestOutcome::Replayed { response_json: "{}".into() }
        );
        assert_eq!(
            store.ingest(Some("k2"), &batch, "{}", 12).unwrap(),
            IngestOutcome::Stored { inserted: 0, duplicates: 2 }
        );
        assert_eq!(
            store.ingest(None, &[record("b:1", None, false)], "{}", 13).unwrap(),
            IngestOutcome::Stored { inserted: 1, duplicates: 0 }
        );
        let stats = store.stats().unwrap();
        assert_eq!(
            stats,
            StoredStats {
                records: 3,
                unique_devices: 2,
                anomalies: 1,
                batches: 3,
                duplicates_ignored: 2,
                idempotent_replays: 1
            }
        );
        let devices = store.devices().unwrap();
        assert_eq!(devices.len(), 2);
        assert_eq!(devices[0].device_id.as_deref(), Some("a"));
        assert_eq!(devices[0].count, 2);
        assert_eq!(devices[0].max_seq, Some(2));
        assert_eq!(devices[0].mean_score, Some(0.5));
        assert_eq!(devices[1].mean_score, None);
        let latest = store.records(1, None).unwrap();
        assert_eq!(latest[0].record_id, "b:1");
        let of_a = store.records(10, Some("a")).unwrap();
        assert_eq!(of_a.iter().map(|r| r.record_id.as_str()).collect::<Vec<_>>(), ["a:2", "a:1"]);
    }
}
