//! SQLite storage: the schema, the one ingest transaction, and the dashboard queries.
//!
//! This module is the only one that knows SQL. The database runs in WAL mode with
//! `synchronous = FULL`, so a transaction that committed (and was acknowledged with a 200)
//! survives a power loss, not just a crash of the process. There are two connections: the
//! writer, used by [`Store::ingest`] alone, and a read-only reader for the dashboard queries,
//! so reading never waits for the writer's lock and a busy dashboard cannot starve ingest (WAL
//! lets a reader see the last committed state while a write is in progress). An in-memory
//! database cannot be shared between connections, so there both roles use the one connection.
//!
//! Callers run these blocking methods on tokio's blocking pool.

pub(crate) mod cloud;
pub mod drift;
mod export;
pub(crate) mod fleet;
mod ingest;
mod read;
mod schema;
mod summary;

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags};

pub use cloud::{CloudOutcome, CloudResult, Pending};
pub use export::{ExportFilter, ExportRow};
pub use fleet::{DevicePage, FleetDevice, ScoredBy, Series, SeriesPoint};
pub use ingest::{IngestOutcome, CONFLICT_REASON};
pub use read::{DeviceStats, Gap, Gaps, RecordPage, StoredRecord, StoredStats};

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
    /// The file holds a schema this collector does not read (e.g. from an older version).
    #[error(
        "database schema version {found}, this collector needs {expected}: move the file aside"
    )]
    Schema {
        /// The file's `PRAGMA user_version`.
        found: i64,
        /// The version this collector writes.
        expected: i64,
    },
    /// A previous holder of a connection panicked (it cannot, but we do not unwrap).
    #[error("database connection lock poisoned")]
    Poisoned,
    /// The blocking task running the query was cancelled or panicked.
    #[error("database task failed: {0}")]
    Task(String),
    /// A value could not be written as JSON text for its column.
    #[error("encoding a JSON column: {0}")]
    Json(#[from] serde_json::Error),
    /// The PostgreSQL store failed (`--database-url`).
    #[error("postgres: {0}")]
    Postgres(#[from] crate::pg::PgError),
}

impl StoreError {
    /// Whether the same request may succeed later without any change: the database is busy or
    /// locked, the disk is full, the OS reported an I/O error, or the task running the query
    /// failed. Anything else (a constraint, a corrupt file, a bug) is permanent.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(
                    ErrorCode::DatabaseBusy
                        | ErrorCode::DatabaseLocked
                        | ErrorCode::DiskFull
                        | ErrorCode::SystemIoFailure
                        | ErrorCode::OutOfMemory
                )
            ),
            StoreError::Task(_) => true,
            StoreError::Postgres(e) => e.is_transient(),
            StoreError::CreateDir { .. }
            | StoreError::Schema { .. }
            | StoreError::Poisoned
            | StoreError::Json(_) => false,
        }
    }
}

/// SQLite's `synchronous` setting for the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Synchronous {
    /// Durable: each commit is on disk before it returns (the default).
    Full,
    /// Faster: in WAL mode a commit can be lost on power loss (not on a process crash). Only
    /// for measuring what `Full` costs.
    Normal,
}

/// How the database is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreOptions {
    /// How long a statement waits for a lock held by another connection before failing with
    /// `SQLITE_BUSY` (answered 503).
    pub busy_timeout: Duration,
    /// The writer's durability.
    pub synchronous: Synchronous,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { busy_timeout: Duration::from_secs(5), synchronous: Synchronous::Full }
    }
}

/// The SQLite database.
pub struct Store {
    writer: Mutex<Connection>,
    /// `None` for an in-memory database: reads use the writer.
    reader: Option<Mutex<Connection>>,
}

impl Store {
    /// Opens (creating if needed) the database file and its parent directory.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, StoreOptions::default())
    }

    /// [`Store::open`] with explicit options.
    pub fn open_with(path: &Path, options: StoreOptions) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        let writer = Connection::open(path)?;
        configure_writer(&writer, options)?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        reader.busy_timeout(options.busy_timeout)?;
        Ok(Store { writer: Mutex::new(writer), reader: Some(Mutex::new(reader)) })
    }

    /// An in-memory database (tests and throwaway demos).
    pub fn open_in_memory() -> Result<Self, StoreError> {
        let conn = Connection::open_in_memory()?;
        configure_writer(&conn, StoreOptions::default())?;
        Ok(Store { writer: Mutex::new(conn), reader: None })
    }

    fn writer(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.writer.lock().map_err(|_| StoreError::Poisoned)
    }

    fn reader(&self) -> Result<MutexGuard<'_, Connection>, StoreError> {
        self.reader.as_ref().unwrap_or(&self.writer).lock().map_err(|_| StoreError::Poisoned)
    }

    /// The journal mode in force (`wal` for a file database).
    pub fn journal_mode(&self) -> Result<String, StoreError> {
        Ok(self.writer()?.query_row("PRAGMA journal_mode", [], |row| row.get(0))?)
    }

    /// The writer's `synchronous` setting as SQLite reports it (2 = FULL, 1 = NORMAL).
    pub fn synchronous(&self) -> Result<i64, StoreError> {
        Ok(self.writer()?.query_row("PRAGMA synchronous", [], |row| row.get(0))?)
    }

    /// Runs `f` on the writer connection: for tests that need to put the database into a
    /// state the API cannot reach (a full disk, a page limit).
    pub fn with_writer<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let conn = self.writer()?;
        Ok(f(&conn)?)
    }
}

fn configure_writer(conn: &Connection, options: StoreOptions) -> Result<(), StoreError> {
    conn.busy_timeout(options.busy_timeout)?;
    // In-memory databases answer "memory"; files switch to WAL.
    let _mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))?;
    let synchronous = match options.synchronous {
        Synchronous::Full => "FULL",
        Synchronous::Normal => "NORMAL",
    };
    conn.pragma_update(None, "synchronous", synchronous)?;
    schema::create(conn)
}
