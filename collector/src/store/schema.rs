//! The database layout, created on first open.
//!
//! - `records`: one row per stored record, keyed by `record_id`; the record's resource
//!   attributes live once in `resources` (`resource_id`), not in every row. Indexed by
//!   `(device_id, seq)` (gaps, distinct seqs) and by `device_id` (a device's newest records by
//!   rowid, the `/api/records` cursor).
//! - `devices`: one summary row per device (`''` for records without a device id), updated in
//!   the ingest transaction, so the dashboard's totals never scan `records`; with the loss
//!   counters the device reports on every batch (the largest seen), so a seq gap the device
//!   explains (it evicted the records) can be told from one it does not.
//! - `batches`: `Idempotency-Key` → the stored response.
//! - `counters`: totals that are not per device.
//!
//! - cloud scoring: a record the device sent unscored (with its reading) gets `cloud_*` columns
//!   when the collector scores it; the device's own columns stay as sent, so a re-drive of the
//!   record still compares equal. `records_cloud_pending` indexes exactly the records still
//!   waiting, so finding work never scans the table.
//!
//! - contributions: a flagged record's top contributing channels, as the JSON list
//!   `contributions_json` (`[{"channel", "share"}, …]`, largest share first; NULL when the
//!   device sent none).
//!
//! `PRAGMA user_version` is 4. Older files are migrated in place, in one transaction, on first
//! open, so stored telemetry survives an upgrade of the collector: version 1 (the first
//! collector's: the resource copied into every record, no device summaries), version 2 (no
//! cloud scoring, no per-device unscored count or model version) and version 3 (no
//! contributions). A file with any other non-zero version is refused rather than half-read.

use rusqlite::Connection;

use super::StoreError;

/// The schema version this collector writes.
pub const VERSION: i64 = 4;

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
    received_at     INTEGER NOT NULL,
    cloud_score         REAL,
    cloud_anomaly       INTEGER,
    cloud_model_version TEXT,
    cloud_scored_at     INTEGER,
    cloud_error         TEXT,
    contributions_json  TEXT
);
CREATE INDEX IF NOT EXISTS records_by_device ON records (device_id);
CREATE INDEX IF NOT EXISTS records_cloud_pending ON records (scored)
    WHERE scored = 0 AND reading_json IS NOT NULL AND cloud_score IS NULL
      AND cloud_error IS NULL;
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
    conflicts     INTEGER NOT NULL DEFAULT 0,
    reported_evicted INTEGER NOT NULL DEFAULT 0,
    reported_dropped INTEGER NOT NULL DEFAULT 0,
    unscored         INTEGER NOT NULL DEFAULT 0,
    cloud_scored     INTEGER NOT NULL DEFAULT 0,
    cloud_anomalies  INTEGER NOT NULL DEFAULT 0,
    cloud_failed     INTEGER NOT NULL DEFAULT 0,
    model_version    TEXT
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
    ('batches', 0), ('duplicates_ignored', 0), ('idempotent_replays', 0), ('conflicts', 0),
    ('cloud_scored', 0), ('cloud_failed', 0);
PRAGMA user_version = 4;
";

/// Version 2 → 3, before [`SCHEMA`]: the cloud scoring columns and the new device summaries.
const FROM_V2_ALTER: &str = "
ALTER TABLE records ADD COLUMN cloud_score REAL;
ALTER TABLE records ADD COLUMN cloud_anomaly INTEGER;
ALTER TABLE records ADD COLUMN cloud_model_version TEXT;
ALTER TABLE records ADD COLUMN cloud_scored_at INTEGER;
ALTER TABLE records ADD COLUMN cloud_error TEXT;
ALTER TABLE devices ADD COLUMN unscored INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN cloud_scored INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN cloud_anomalies INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN cloud_failed INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN model_version TEXT;
";

/// Version 3 → 4, before [`SCHEMA`]: the contributions column (NULL for the records held).
const FROM_V3_ALTER: &str = "
ALTER TABLE records ADD COLUMN contributions_json TEXT;
";

/// After [`SCHEMA`] in a migration from version 1 or 2: the per-device figures version 3 adds,
/// computed from the stored records the way ingest maintains them.
const BACKFILL_V3: &str = "
UPDATE devices SET
    unscored = (SELECT COUNT(*) FROM records r
                WHERE COALESCE(r.device_id, '') = devices.device_id AND r.scored = 0),
    model_version = (SELECT r.model_version FROM records r
                     WHERE COALESCE(r.device_id, '') = devices.device_id
                       AND r.model_version IS NOT NULL
                     ORDER BY r.rowid DESC LIMIT 1);
";

/// Version 1 → 2, run inside one transaction with [`SCHEMA`] in between (see [`create`]): the
/// old records move into the new table with their resource stored once, and the per-device
/// summaries are computed from them the way ingest maintains them (duplicates and conflicts
/// were not counted by version 1, so they start at 0).
const FROM_V1_DETACH: &str = "
ALTER TABLE records RENAME TO records_v1;
DROP INDEX IF EXISTS records_by_device;
DROP INDEX IF EXISTS records_by_received;
";

const FROM_V1_MOVE: &str = "
INSERT OR IGNORE INTO resources (json) SELECT DISTINCT resource_json FROM records_v1;
INSERT INTO records (record_id, device_id, seq, time_unix_nano, score, anomaly, model_version,
        latency_us, scored, service_version, reading_json, attrs_json, resource_id, body_json,
        received_at)
    SELECT r.record_id, r.device_id, r.seq, r.time_unix_nano, r.score, r.anomaly,
           r.model_version, r.latency_us, r.scored, r.service_version, r.reading_json,
           r.attrs_json, s.id, r.body_json, r.received_at
    FROM records_v1 r JOIN resources s ON s.json = r.resource_json
    ORDER BY r.rowid;
INSERT INTO devices (device_id, count, distinct_seqs, min_seq, max_seq, last_seq, last_seen,
        anomalies, score_sum, score_count)
    SELECT COALESCE(r.device_id, ''), COUNT(*), COUNT(DISTINCT r.seq), MIN(r.seq), MAX(r.seq),
           (SELECT r2.seq FROM records r2 WHERE r2.device_id IS r.device_id
            ORDER BY r2.rowid DESC LIMIT 1),
           MAX(r.received_at), COALESCE(SUM(r.anomaly = 1), 0), COALESCE(SUM(r.score), 0),
           COUNT(r.score)
    FROM records r GROUP BY COALESCE(r.device_id, '');
DROP TABLE records_v1;
";

/// Creates the tables of a new database, migrates an older one, or checks an existing one's
/// version.
pub fn create(conn: &Connection) -> Result<(), StoreError> {
    let found: i64 = conn.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    match found {
        0 | VERSION => conn.execute_batch(SCHEMA)?,
        1 => migrate(conn, &format!("{FROM_V1_DETACH} {SCHEMA} {FROM_V1_MOVE} {BACKFILL_V3}"))?,
        2 => migrate(conn, &format!("{FROM_V2_ALTER} {FROM_V3_ALTER} {SCHEMA} {BACKFILL_V3}"))?,
        3 => migrate(conn, &format!("{FROM_V3_ALTER} {SCHEMA}"))?,
        _ => return Err(StoreError::Schema { found, expected: VERSION }),
    }
    super::drift::create(conn)?;
    Ok(())
}

/// Runs `steps` in one transaction: nothing of a failed migration stays, the file keeps its
/// old version.
fn migrate(conn: &Connection, steps: &str) -> Result<(), StoreError> {
    conn.execute_batch(&format!("BEGIN IMMEDIATE; {steps} COMMIT;")).inspect_err(|_| {
        let _ = conn.execute_batch("ROLLBACK");
    })?;
    Ok(())
}
