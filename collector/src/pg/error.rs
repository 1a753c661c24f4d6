//! What can go wrong talking to PostgreSQL, and which of it a device should retry.
//!
//! A failure the same request may get past later (a serialization failure or deadlock between
//! two collectors, a lost or refused connection, a server shutting down or out of room) is
//! transient: the handler answers 503 with `Retry-After` and the device sends the batch again.
//! The ingest transaction rolled back, so nothing of it is stored.

use postgres::error::SqlState;

/// A PostgreSQL store failure.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// The server or the connection reported an error.
    #[error("{0}")]
    Query(#[from] postgres::Error),
    /// No connection could be taken from the pool in time (the server is unreachable or every
    /// connection is busy).
    #[error("no database connection: {0}")]
    Pool(#[from] r2d2_postgres::r2d2::Error),
    /// The database URL does not parse.
    #[error("bad database URL: {0}")]
    Url(String),
    /// The database holds another schema version than this collector writes.
    #[error(
        "database schema version {found}, this collector needs {expected}: use another database"
    )]
    Schema {
        /// The version stored in `edge_schema`.
        found: i32,
        /// The version this collector writes.
        expected: i32,
    },
    /// The database has tables of our names but no schema version: not ours.
    #[error("database already has a table {0:?} that this collector did not create: use another database")]
    Foreign(String),
    /// The store is being closed.
    #[error("the database pool is closed")]
    Closed,
    /// A value the schema cannot hold (an integer past `BIGINT`), or a stored one that does
    /// not read back.
    #[error("{0}")]
    Value(String),
}

/// SQLSTATEs after which the same transaction may succeed when tried again.
const TRANSIENT: &[SqlState] = &[
    SqlState::T_R_SERIALIZATION_FAILURE,
    SqlState::T_R_DEADLOCK_DETECTED,
    SqlState::ADMIN_SHUTDOWN,
    SqlState::CRASH_SHUTDOWN,
    SqlState::CANNOT_CONNECT_NOW,
    SqlState::TOO_MANY_CONNECTIONS,
    SqlState::INSUFFICIENT_RESOURCES,
    SqlState::DISK_FULL,
    SqlState::OUT_OF_MEMORY,
    SqlState::LOCK_NOT_AVAILABLE,
    SqlState::QUERY_CANCELED,
];

impl PgError {
    /// Whether the same request may succeed later without any change (see the module docs).
    pub fn is_transient(&self) -> bool {
        match self {
            PgError::Query(e) => match e.code() {
                Some(code) => TRANSIENT.contains(code) || code.code().starts_with("08"),
                // No SQLSTATE: the connection broke or could not be made.
                None => true,
            },
            PgError::Pool(_) | PgError::Closed => true,
            PgError::Url(_) | PgError::Schema { .. } | PgError::Foreign(_) | PgError::Value(_) => {
                false
            }
        }
    }

    /// Whether trying the whole transaction again at once is worth it: two transactions
    /// collided (serialization failure or deadlock), which the retry resolves.
    pub fn is_collision(&self) -> bool {
        match self {
            PgError::Query(e) => matches!(
                e.code(),
                Some(&SqlState::T_R_SERIALIZATION_FAILURE | &SqlState::T_R_DEADLOCK_DETECTED)
            ),
            _ => false,
        }
    }
}
