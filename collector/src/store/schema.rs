//! The database layout, created on first open.
//!
//! - `records`: one row per stored record, keyed by `record_id`; the record's resource
//!   attributes live once in `resources` (`resource_id`), not in every row. Indexed by
//!   `(device_id, seq)` (gaps, distinct seqs) and by `device_id` (a device's newest records by
//!   rowid, the `/api/records` cursor).
//! - `devices`: one summary row per device (`''` for records without a device id), updated in
//!   the ingest transaction, so the dashboard's totals never scan `records`.
//! - `batches`: `Idempotency-Key` → the stored response.
//! - `counters`: totals that are not per device.
//!
//! `PRAGMA user_version` is 2. A file with another non-zero version is refused rather than
//! half-read.

use rusqlite::Connection;

use super::StoreError;

/// The schema version this collector writes.
pub const VERSION: i64 = 2;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS resources (
    id   INTEGER PRIMARY KEY,
    json TEXT NOT NULL UNIQUE
);
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
    resource_id     INTEGER NOT NULL REFERENCES resources (id),
    body_json       TEXT,
    received_at     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_device ON records (device_id);
CREATE INDEX IF NOT EXISTS records_by_device_seq ON records (device_id, seq);
CREATE TABLE IF NOT EXISTS devices (
    device_id     TEXT PRIMARY KEY NOT NULL,
    count         INTEGER NOT NULL DEFAULT 0,
    distinct_seqs INTEGER NOT NULL DEFAULT 0,
    min_seq       INTEGER,
    max_seq       INTEGER,
    last_seq      INTEGER,
    last_seen     INTEGER,
    anomalies     INTEGER NOT NULL DEFAULT 0,
    score_sum     REAL NOT NULL DEFAULT 0,
    score_count   INTEGER NOT NULL DEFAULT 0,
    duplicates    INTEGER NOT NULL DEFAULT 0,
    conflicts     INTEGER NOT NULL DEFAULT 0
);
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
    ('batches', 0), ('duplicates_ignored', 0), ('idempotent_replays', 0), ('conflicts', 0);
PRAGMA user_version = 2;
";

/// Creates the tables of a new database, or checks an existing one's version.
pub fn create(conn: &Connection) -> Result<(), StoreError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    if found != 0 && found != VERSION {
        return Err(StoreError::Schema { found, expected: VERSION });
    }
    conn.execute_batch(SCHEMA)?;
    Ok(())
}
