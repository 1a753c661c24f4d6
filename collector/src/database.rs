//! The collector's database, whichever it is: the embedded SQLite file (the default) or a
//! PostgreSQL server shared by several collectors (`--database-url`).
//!
//! Handlers call [`Database`] and never learn which one answers; each method dispatches to the
//! method of the same name and signature on [`Store`] or [`PgStore`]. A new store operation
//! gets a method on each and one line here; the behaviour suite (`collector/tests/common/
//! conformance.rs`) runs against both.

use edge_wire::metrics::DeviceMetrics;

use crate::otlp::Batch;
use crate::pg::PgStore;
use crate::store::drift::{DriftUpsert, StoredDrift};
use crate::store::{
    CloudResult, DevicePage, DeviceStats, ExportFilter, ExportRow, Gaps, IngestOutcome, Pending,
    RecordPage, Series, Store, StoreError, StoredStats,
};

/// The store behind the API.
pub enum Database {
    /// The embedded SQLite file (boxed: its connection pool is much larger than the client's).
    Sqlite(Box<Store>),
    /// A PostgreSQL database, possibly shared with other collectors.
    Postgres(PgStore),
}

impl From<Store> for Database {
    fn from(store: Store) -> Self {
        Database::Sqlite(Box::new(store))
    }
}

impl From<PgStore> for Database {
    fn from(store: PgStore) -> Self {
        Database::Postgres(store)
    }
}

/// Calls the same method on whichever store this is.
macro_rules! both {
    ($db:expr, $s:ident => $call:expr) => {
        match $db {
            Database::Sqlite($s) => $call,
            Database::Postgres($s) => $call,
        }
    };
}

impl Database {
    /// Which backend this is, as the startup banner and logs name it.
    pub fn kind(&self) -> &'static str {
        match self {
            Database::Sqlite(_) => "sqlite",
            Database::Postgres(_) => "postgres",
        }
    }

    /// The SQLite store, if that is the backend (tests reaching below the API).
    pub fn as_sqlite(&self) -> Option<&Store> {
        match self {
            Database::Sqlite(store) => Some(store),
            Database::Postgres(_) => None,
        }
    }

    /// See [`Store::ingest`].
    pub fn ingest(
        &self,
        idempotency_key: Option<&str>,
        batch: &Batch,
        received_at_ms: i64,
    ) -> Result<IngestOutcome, StoreError> {
        both!(self, s => s.ingest(idempotency_key, batch, received_at_ms))
    }

    /// See [`Store::stats`].
    pub fn stats(&self) -> Result<StoredStats, StoreError> {
        both!(self, s => s.stats())
    }

    /// See [`Store::records`].
    pub fn records(
        &self,
        limit: u32,
        device: Option<&str>,
        before: Option<i64>,
    ) -> Result<RecordPage, StoreError> {
        both!(self, s => s.records(limit, device, before))
    }

    /// See [`Store::devices`].
    pub fn devices(&self) -> Result<Vec<DeviceStats>, StoreError> {
        both!(self, s => s.devices())
    }

    /// See [`Store::gaps`].
    pub fn gaps(&self, device: &str, limit: usize) -> Result<Gaps, StoreError> {
        both!(self, s => s.gaps(device, limit))
    }

    /// See [`Store::cloud_pending`].
    pub fn cloud_pending(&self, limit: u32) -> Result<Vec<Pending>, StoreError> {
        both!(self, s => s.cloud_pending(limit))
    }

    /// See [`Store::record_cloud_results`].
    pub fn record_cloud_results(
        &self,
        results: &[CloudResult],
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        both!(self, s => s.record_cloud_results(results, now_ms))
    }

    /// See [`Store::export_page`].
    pub fn export_page(
        &self,
        filter: &ExportFilter,
        after: i64,
        limit: u32,
    ) -> Result<Vec<ExportRow>, StoreError> {
        both!(self, s => s.export_page(filter, after, limit))
    }

    /// See [`Store::devices_page`].
    pub fn devices_page(&self, limit: u32, after: Option<&str>) -> Result<DevicePage, StoreError> {
        both!(self, s => s.devices_page(limit, after))
    }

    /// See [`Store::series`].
    pub fn series(
        &self,
        device: &str,
        limit: u32,
        before: Option<i64>,
    ) -> Result<Series, StoreError> {
        both!(self, s => s.series(device, limit, before))
    }

    /// See [`Store::upsert_drift`].
    pub fn upsert_drift(
        &self,
        devices: &[DeviceMetrics],
        received_at: i64,
    ) -> Result<DriftUpsert, StoreError> {
        both!(self, s => s.upsert_drift(devices, received_at))
    }

    /// See [`Store::drift`].
    pub fn drift(&self, device: Option<&str>) -> Result<Vec<StoredDrift>, StoreError> {
        both!(self, s => s.drift(device))
    }
}
