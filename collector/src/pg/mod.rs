//! PostgreSQL storage (`--database-url`): the same operations and answers as the SQLite
//! [`Store`](crate::store::Store), for several collectors sharing one database behind a load
//! balancer.
//!
//! Every ingest is one transaction committed before the 200, so a collector killed mid-request
//! loses nothing it acknowledged; what makes it correct across collectors is in
//! [`ingest`](self::ingest) (claim the key first, insert with `ON CONFLICT DO NOTHING`, touch
//! shared rows in one order). Reads run on their own pooled connection and never wait for an
//! ingest.
//!
//! The client is the synchronous `postgres` crate: the store's callers already run it on
//! tokio's blocking pool, as they run SQLite, so an async client would only add a second way of
//! calling the database. r2d2 keeps up to [`PgOptions::max_connections`] connections and drops
//! one that broke. Connections are plain TCP or a Unix socket (no TLS): the database is meant
//! to sit next to the collectors.
//!
//! Every method of the SQLite store has its twin here, in the file of its kind (`ingest.rs`,
//! `read.rs`, `cloud.rs`, `fleet.rs`, `export.rs`, `drift.rs`), and its dispatch arm in
//! [`crate::database`].

mod cloud;
mod drift;
mod error;
mod export;
mod fleet;
mod ingest;
mod read;
mod schema;
mod summary;

use std::time::Duration;

use postgres::NoTls;
use r2d2_postgres::r2d2::{Pool, PooledConnection};
use r2d2_postgres::PostgresConnectionManager;

pub use error::PgError;
pub use schema::VERSION;

type Manager = PostgresConnectionManager<NoTls>;

/// How the pool is sized and how long a caller waits for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PgOptions {
    /// Connections kept open at most (ingest and reads share them).
    pub max_connections: u32,
    /// How long a call waits for a free connection before failing transiently (503).
    pub connect_timeout: Duration,
}

impl Default for PgOptions {
    fn default() -> Self {
        PgOptions { max_connections: 8, connect_timeout: Duration::from_secs(5) }
    }
}

/// A PostgreSQL database holding the collector's schema.
///
/// Open and call it off the async workers (the blocking pool, or a plain thread): the
/// synchronous client runs its own small runtime, which must not start inside tokio's.
pub struct PgStore {
    /// `None` only while being dropped.
    pool: Option<Pool<Manager>>,
}

impl Drop for PgStore {
    /// Closing a connection blocks on the client's runtime, which panics on an async worker
    /// (where the last handle of a state usually goes), so the pool is closed on its own
    /// thread.
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            let _ = std::thread::spawn(move || drop(pool)).join();
        }
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore").field("state", &self.pool.as_ref().map(Pool::state)).finish()
    }
}

impl PgStore {
    /// Connects to `url` (`postgres://user@host:port/db` or key=value form), creating the
    /// schema in an empty database.
    pub fn open(url: &str) -> Result<Self, PgError> {
        Self::open_with(url, PgOptions::default())
    }

    /// [`PgStore::open`] with explicit options.
    pub fn open_with(url: &str, options: PgOptions) -> Result<Self, PgError> {
        let mut config: postgres::Config = url.parse().map_err(|e| PgError::Url(format!("{e}")))?;
        config.application_name("edge-collector");
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(options.connect_timeout);
        }
        let pool = Pool::builder()
            .max_size(options.max_connections.max(1))
            .min_idle(Some(1))
            .connection_timeout(options.connect_timeout)
            // A broken connection is dropped when returned (`has_broken`); no extra round trip
            // per checkout.
            .test_on_check_out(false)
            .build(PostgresConnectionManager::new(config, NoTls))?;
        let store = PgStore { pool: Some(pool) };
        schema::create(&mut *store.conn()?)?;
        Ok(store)
    }

    fn conn(&self) -> Result<PooledConnection<Manager>, PgError> {
        match &self.pool {
            Some(pool) => Ok(pool.get()?),
            None => Err(PgError::Closed),
        }
    }
}
