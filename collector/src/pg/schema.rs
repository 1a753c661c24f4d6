//! The PostgreSQL layout, created on first connect; the only file that knows it.
//!
//! The tables mirror SQLite's (see `store::schema`), shaped for several collectors writing at
//! once:
//! - `records`: one row per record id; `id` (an identity column) is the `/api/records` cursor,
//!   like SQLite's rowid. Indexed by `(device_id, id)` for one device's newest records.
//! - `resources`: one row per distinct resource JSON, unique by its SHA-256 (a unique index on
//!   the text itself would refuse resources over a btree page's ~2.7 kB).
//! - `device_seqs`: one row per `(device, seq)` held. Ingest inserts with `ON CONFLICT DO
//!   NOTHING` and counts what it inserted, so two collectors storing the same seq under two
//!   record ids at once count it once (an `EXISTS` check would let both count it). Gap
//!   listings walk its primary key.
//! - `devices`: one summary row per device (`''` for no device id), as in SQLite.
//! - `batches`: `Idempotency-Key` → the stored response. Ingest claims the key first, so a
//!   second collector given the same batch waits for the first to commit and replays.
//! - `counters`: totals not per device, split into shards by server process: every ingest bumps
//!   `batches`, and one row for all would serialize every commit of every collector. A total
//!   is the sum of its shards.
//! - `drift`: the newest score statistics per `(device, model version)`, as SQLite's.
//!
//! Device ids are compared and ordered bytewise (`COLLATE "C"`), as SQLite does, whatever the
//! database's collation: `devices_by_id` serves the fleet view's pages in that order.
//!
//! `edge_schema` holds the version (1: before `drift` and `devices_by_id`; 2: before
//! `records.contributions_json`; 3: now). Creation runs under an advisory lock, so collectors
//! starting together on an empty database do not race each other's `CREATE TABLE`. A database
//! with another version, or with our table names but no version, is refused.

use postgres::Client;

use super::PgError;

/// The schema version this collector writes.
pub const VERSION: i32 = 3;

/// Taken around creation; any constant unique to this application.
const CREATE_LOCK: i64 = 0x6564_6765_616e_6f6d;

/// Our tables besides `edge_schema`: any of them without a version means a foreign database.
const TABLES: &[&str] =
    &["records", "resources", "device_seqs", "devices", "batches", "counters", "drift"];

const SCHEMA: &str = "
CREATE TABLE edge_schema (version INTEGER NOT NULL);
CREATE TABLE resources (
    id     BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    digest BYTEA NOT NULL UNIQUE,
    json   TEXT NOT NULL
);
CREATE TABLE records (
    id              BIGINT GENERATED ALWAYS AS IDENTITY UNIQUE,
    record_id       TEXT PRIMARY KEY,
    device_id       TEXT,
    seq             BIGINT,
    time_unix_nano  BIGINT,
    score           DOUBLE PRECISION,
    anomaly         BOOLEAN,
    model_version   TEXT,
    latency_us      DOUBLE PRECISION,
    scored          BOOLEAN NOT NULL,
    service_version TEXT,
    reading_json    TEXT,
    attrs_json      TEXT NOT NULL,
    resource_id     BIGINT NOT NULL REFERENCES resources (id),
    body_json       TEXT,
    received_at     BIGINT NOT NULL,
    cloud_score         DOUBLE PRECISION,
    cloud_anomaly       BOOLEAN,
    cloud_model_version TEXT,
    cloud_scored_at     BIGINT,
    cloud_error         TEXT
);
CREATE INDEX records_by_device ON records (device_id, id);
CREATE INDEX records_cloud_pending ON records (id)
    WHERE NOT scored AND reading_json IS NOT NULL AND cloud_score IS NULL
      AND cloud_error IS NULL;
CREATE TABLE device_seqs (
    device_id TEXT NOT NULL,
    seq       BIGINT NOT NULL,
    PRIMARY KEY (device_id, seq)
);
CREATE TABLE devices (
    device_id        TEXT PRIMARY KEY,
    count            BIGINT NOT NULL DEFAULT 0,
    distinct_seqs    BIGINT NOT NULL DEFAULT 0,
    min_seq          BIGINT,
    max_seq          BIGINT,
    last_seq         BIGINT,
    last_seen        BIGINT,
    anomalies        BIGINT NOT NULL DEFAULT 0,
    score_sum        DOUBLE PRECISION NOT NULL DEFAULT 0,
    score_count      BIGINT NOT NULL DEFAULT 0,
    duplicates       BIGINT NOT NULL DEFAULT 0,
    conflicts        BIGINT NOT NULL DEFAULT 0,
    reported_evicted BIGINT NOT NULL DEFAULT 0,
    reported_dropped BIGINT NOT NULL DEFAULT 0,
    unscored         BIGINT NOT NULL DEFAULT 0,
    cloud_scored     BIGINT NOT NULL DEFAULT 0,
    cloud_anomalies  BIGINT NOT NULL DEFAULT 0,
    cloud_failed     BIGINT NOT NULL DEFAULT 0,
    model_version    TEXT
);
CREATE TABLE batches (
    idempotency_key TEXT PRIMARY KEY,
    received_at     BIGINT NOT NULL,
    record_count    BIGINT NOT NULL,
    response_json   TEXT NOT NULL
);
CREATE TABLE counters (
    name  TEXT NOT NULL,
    shard INTEGER NOT NULL,
    value BIGINT NOT NULL,
    PRIMARY KEY (name, shard)
);
";

/// Version 1 → 2: drift storage and the fleet view's index. Also the tail of a new database.
const V2: &str = "
CREATE INDEX devices_by_id ON devices (device_id COLLATE \"C\");
CREATE TABLE drift (
    device_id             TEXT NOT NULL,
    model_version         TEXT NOT NULL,
    start_time_unix_nano  BIGINT NOT NULL,
    time_unix_nano        BIGINT NOT NULL,
    count                 BIGINT NOT NULL,
    anomalies             BIGINT NOT NULL,
    sum                   DOUBLE PRECISION NOT NULL,
    bounds_json           TEXT NOT NULL,
    bucket_counts_json    TEXT NOT NULL,
    expected_json         TEXT NOT NULL,
    quantiles_json        TEXT NOT NULL,
    psi                   DOUBLE PRECISION NOT NULL,
    expected_anomaly_rate DOUBLE PRECISION NOT NULL,
    received_at           BIGINT NOT NULL,
    PRIMARY KEY (device_id, model_version)
);
";

/// Version 2 → 3: a flagged record's top contributing channels (SQLite's
/// `contributions_json`). Also the tail of a new database.
const V3: &str = "
ALTER TABLE records ADD COLUMN contributions_json TEXT;
";

/// The steps after [`SCHEMA`], in order: `UPGRADES[i]` takes version `i + 1` to `i + 2`.
const UPGRADES: &[&str] = &[V2, V3];
const _: () = assert!(VERSION as usize == UPGRADES.len() + 1, "one upgrade per version");

/// Creates the schema in an empty database, upgrades one of an earlier version of ours in
/// place (in the same transaction, so a collector killed mid-upgrade leaves it as it was),
/// accepts one of this version, refuses anything else.
pub fn create(client: &mut Client) -> Result<(), PgError> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&CREATE_LOCK])?;
    let has = |tx: &mut postgres::Transaction<'_>, table: &str| -> Result<bool, PgError> {
        let row = tx.query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])?;
        Ok(row.get(0))
    };
    if has(&mut tx, "edge_schema")? {
        let found: Option<i32> =
            tx.query_opt("SELECT version FROM edge_schema", &[])?.map(|row| row.get(0));
        let pending = found
            .and_then(|v| usize::try_from(v).ok())
            .and_then(|v| UPGRADES.get(v.checked_sub(1)?..));
        let Some(pending) = pending else {
            return Err(PgError::Schema { found: found.unwrap_or(0), expected: VERSION });
        };
        if !pending.is_empty() {
            pending.iter().try_for_each(|step| tx.batch_execute(step))?;
            tx.execute("UPDATE edge_schema SET version = $1", &[&VERSION])?;
        }
        return Ok(tx.commit()?);
    }
    for table in TABLES {
        if has(&mut tx, table)? {
            return Err(PgError::Foreign((*table).to_owned()));
        }
    }
    tx.batch_execute(SCHEMA)?;
    UPGRADES.iter().try_for_each(|step| tx.batch_execute(step))?;
    tx.execute("INSERT INTO edge_schema (version) VALUES ($1)", &[&VERSION])?;
    tx.commit()?;
    Ok(())
}
