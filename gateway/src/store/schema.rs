//! The one place that knows the outbox's SQLite schema: its tables, how a file is recognised as
//! an outbox database, the connection settings that make commits durable, and the migrations.
//!
//! | table         | key                  | columns                                            |
//! |---------------|----------------------|----------------------------------------------------|
//! | `state`       | `id` = 1 (one row)   | device id, next seq, next queue position, sync settings, running totals |
//! | `queue`       | queue position       | seq (unique), the [`Record`] as stored JSON        |
//! | `reading_ids` | seq                  | a page-assigned reading id (unique)                |
//! | `inflight`    | `slot` = 1 (≤ 1 row) | key, record count, the [`Batch`] as stored JSON, its retry state |
//! | `dead`        | first seq            | key, last seq, record count, failure, the records  |
//!
//! JSON goes through [`edge_anomaly::outbox::stored`], the encoding IndexedDB uses, so
//! non-finite floats round-trip. Counts and keys a query needs (seqs, positions, record counts)
//! are columns of their own, so acknowledging a batch or listing dead letters reads no JSON.
//! The queue is keyed by its own position counter, not by seq, so a re-driven record (old seq)
//! joins the end of the queue. Tables are `STRICT`: a value of the wrong type is refused on
//! write instead of surfacing as a decode error later.
//!
//! A file is an outbox database when `PRAGMA application_id` is [`APPLICATION_ID`]; its
//! `user_version` is its schema version. [`MIGRATIONS`] takes a file from each version to the
//! next; all of them run in one transaction together with the version bump, so an interrupted
//! upgrade leaves the old version in place. A file from a newer build, or anyone else's file,
//! is refused before anything is written to it.
//!
//! [`Record`]: edge_anomaly::outbox::Record
//! [`Batch`]: edge_anomaly::outbox::Batch

use std::time::Duration;

use rusqlite::{Connection, Transaction, TransactionBehavior};

use super::error::{is_not_a_database, OpenError};

/// `PRAGMA application_id` of an outbox database: "EAOB", Edge Anomaly OutBox.
pub const APPLICATION_ID: i32 = 0x4541_4F42;

/// `MIGRATIONS[v]` takes a database from schema version `v` to `v + 1`. Append only: a
/// shipped migration is never edited, and each one keeps the data (no table is dropped with
/// records in it).
const MIGRATIONS: [&str; 1] = [V1];

/// The schema version this build writes and the newest it opens.
pub const VERSION: u32 = MIGRATIONS.len() as u32;

/// How long a statement waits for another connection's write lock before `SQLITE_BUSY`.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

const V1: &str = "
CREATE TABLE state (
    id            INTEGER PRIMARY KEY CHECK (id = 1),
    device_id     TEXT,
    next_seq      INTEGER NOT NULL CHECK (next_seq >= 0),
    next_pos      INTEGER NOT NULL CHECK (next_pos >= 0),
    sync_settings TEXT,
    totals        TEXT NOT NULL
) STRICT;
INSERT INTO state (id, next_seq, next_pos, totals) VALUES (1, 0, 0, '{}');

CREATE TABLE queue (
    pos    INTEGER PRIMARY KEY,
    seq    INTEGER NOT NULL UNIQUE,
    record TEXT NOT NULL
) STRICT;

CREATE TABLE reading_ids (
    seq INTEGER PRIMARY KEY,
    id  TEXT NOT NULL UNIQUE
) STRICT;

CREATE TABLE inflight (
    slot    INTEGER PRIMARY KEY CHECK (slot = 1),
    key     TEXT NOT NULL,
    records INTEGER NOT NULL,
    batch   TEXT NOT NULL,
    retry   TEXT
) STRICT;

CREATE TABLE dead (
    first_seq INTEGER PRIMARY KEY,
    last_seq  INTEGER NOT NULL,
    key       TEXT NOT NULL,
    records   INTEGER NOT NULL,
    failure   TEXT NOT NULL,
    batch     TEXT NOT NULL
) STRICT;
CREATE INDEX dead_by_key ON dead (key);
";

/// Readies a freshly opened connection: recognises the file (refusing a foreign or newer one
/// untouched), makes commits durable, and migrates the schema to [`VERSION`]. `file` is false
/// for an in-memory database, which has no write-ahead log.
pub fn prepare(conn: &Connection, file: bool) -> Result<(), OpenError> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    recognise(conn)?;
    if file {
        // The log survives a crash at any point: a commit is in it or not. Persistent in the
        // file once set.
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            // Some filesystems have no shared memory for the log; the rollback journal that
            // stays in use is as durable with synchronous = FULL, only slower.
            tracing::warn!(journal_mode = %mode, "outbox database could not switch to WAL");
        }
    }
    // FULL: every commit is synced to disk before it returns, so a committed append survives
    // power loss (NORMAL, WAL's usual setting, may lose the last commits). Per connection.
    conn.pragma_update(None, "synchronous", "FULL")?;
    migrate(conn)
}

/// The schema version of the database `conn` opened: 0 for an empty file, else its
/// `user_version`. Refuses a database that is not an outbox's or is newer than [`VERSION`].
fn recognise(conn: &Connection) -> Result<u32, OpenError> {
    let header = (|| -> rusqlite::Result<(i32, i32, i64)> {
        let app = conn.pragma_query_value(None, "application_id", |row| row.get(0))?;
        let version = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        let objects = conn.query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))?;
        Ok((app, version, objects))
    })();
    let (app, version, objects) = match header {
        Ok(header) => header,
        Err(e) if is_not_a_database(&e) => {
            return Err(OpenError::Foreign("not a SQLite database".into()))
        }
        Err(e) => return Err(e.into()),
    };
    let foreign = || {
        OpenError::Foreign(format!(
            "application_id {app:#x}, user_version {version}, {objects} schema objects"
        ))
    };
    if app == 0 && version == 0 && objects == 0 {
        return Ok(0);
    }
    let version = u32::try_from(version).map_err(|_| foreign())?;
    match app {
        APPLICATION_ID if version > VERSION => {
            Err(OpenError::NewerSchema { found: version, supported: VERSION })
        }
        APPLICATION_ID if version > 0 => Ok(version),
        _ => Err(foreign()),
    }
}

/// Runs the migrations from the database's version to [`VERSION`], with the version bump, in
/// one write transaction. The version is read again under the write lock: another process may
/// have migrated the file since [`recognise`] looked.
fn migrate(conn: &Connection) -> Result<(), OpenError> {
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let found = recognise(&tx)?;
    if found == VERSION {
        return Ok(());
    }
    for ddl in MIGRATIONS.iter().skip(found as usize) {
        tx.execute_batch(ddl)?;
    }
    tx.pragma_update(None, "application_id", APPLICATION_ID)?;
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prepared_file_connection_logs_ahead_and_syncs_every_commit(
    ) -> Result<(), Box<dyn std::error::Error>> {
        let dir = tempfile::tempdir()?;
        let conn = Connection::open(dir.path().join("outbox.db"))?;
        prepare(&conn, true)?;
        let mode: String = conn.pragma_query_value(None, "journal_mode", |row| row.get(0))?;
        let synchronous: i64 = conn.pragma_query_value(None, "synchronous", |row| row.get(0))?;
        let version: u32 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
        assert_eq!((mode.as_str(), synchronous, version), ("wal", 2, VERSION), "2 is FULL");
        // Preparing it again (a restart) migrates nothing and keeps the settings.
        drop(conn);
        let conn = Connection::open(dir.path().join("outbox.db"))?;
        prepare(&conn, true)?;
        assert_eq!(recognise(&conn)?, VERSION);
        Ok(())
    }
}
