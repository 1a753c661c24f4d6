//! How SQLite's failures become the outbox's: [`OpenError`] for a database this build must not
//! open, and [`sql_error`] mapping every other SQLite error onto the core's [`StoreError`].
//!
//! The core's error enum belongs to the core and stays platform-free, so the mapping is one
//! function here rather than new variants there.

use edge_anomaly::outbox::StoreError;
use rusqlite::ErrorCode;
use thiserror::Error;

/// Why [`super::SqliteStore::open`] refused or failed to open a database file.
///
/// A refused file is left exactly as it was: nothing is written before it has been recognised
/// as an outbox database of a version this build knows.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OpenError {
    /// The file holds a schema newer than this build knows: it was written by a newer gateway.
    /// Run that gateway (or a newer one) on it; an older one must not guess at the layout.
    #[error("outbox schema version {found} is newer than this build's {supported}")]
    NewerSchema {
        /// The file's `user_version`.
        found: u32,
        /// The newest version this build knows ([`super::SqliteStore::SCHEMA_VERSION`]).
        supported: u32,
    },
    /// The file is not an outbox database: another application's SQLite database, or not a
    /// SQLite database at all.
    #[error("not an outbox database: {0}")]
    Foreign(String),
    /// Opening, configuring or migrating the database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl OpenError {
    /// A stable, machine-readable code for this error kind.
    pub fn code(&self) -> &'static str {
        match self {
            OpenError::NewerSchema { .. } => "STORE_NEWER_SCHEMA",
            OpenError::Foreign(_) => "STORE_FOREIGN",
            OpenError::Store(e) => e.code(),
        }
    }
}

/// For callers that speak only [`StoreError`] (a store factory, the conformance suite).
///
/// A refused file becomes [`StoreError::Backend`] with the reason in its message, not
/// [`StoreError::Corrupt`]: the file is intact, and "corrupt" would invite deleting it.
impl From<OpenError> for StoreError {
    fn from(e: OpenError) -> StoreError {
        match e {
            OpenError::Store(e) => e,
            refused => StoreError::Backend(refused.to_string()),
        }
    }
}

impl From<rusqlite::Error> for OpenError {
    fn from(e: rusqlite::Error) -> OpenError {
        OpenError::Store(sql_error(e))
    }
}

/// A SQLite failure as a store error.
///
/// - `SQLITE_FULL` (the disk, or the cap set by [`super::SqliteStore::with_max_bytes`]) is
///   [`StoreError::QuotaExceeded`]: the transaction was rolled back, nothing was stored.
/// - `SQLITE_CORRUPT`, `SQLITE_NOTADB` and values that do not convert to the column's Rust type
///   are [`StoreError::Corrupt`].
/// - Everything else is [`StoreError::Backend`]. That includes `SQLITE_BUSY` and
///   `SQLITE_LOCKED` (another process held the write lock past the busy timeout): the closest
///   fit, since [`StoreError::Conflict`] means the outbox's own state refused the operation,
///   and like any backend failure the call changed nothing and may simply be repeated.
pub fn sql_error(e: rusqlite::Error) -> StoreError {
    use rusqlite::Error as E;
    let text = e.to_string();
    match e {
        E::SqliteFailure(failure, _) => match failure.code {
            ErrorCode::DiskFull => StoreError::QuotaExceeded(text),
            ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase => StoreError::Corrupt(text),
            _ => StoreError::Backend(text),
        },
        E::FromSqlConversionFailure(..)
        | E::IntegralValueOutOfRange(..)
        | E::Utf8Error(..)
        | E::InvalidColumnType(..) => StoreError::Corrupt(text),
        _ => StoreError::Backend(text),
    }
}

/// Whether `e` is SQLite saying "this is not a database file".
pub fn is_not_a_database(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::NotADatabase)
}
