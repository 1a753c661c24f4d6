//! The one place that knows the outbox's IndexedDB schema: database version, object stores,
//! and how it is upgraded.
//!
//! | store      | key                      | value (JSON string)          |
//! |------------|--------------------------|------------------------------|
//! | `records`  | seq (number)             | a queued [`Record`]          |
//! | `inflight` | `"current"`              | the [`Batch`] being sent     |
//! | `dead`     | first seq (number)       | a [`DeadBatch`]              |
//! | `meta`     | `"device_id"`, `"next_seq"`, `"totals"` | id, counter, [`OutboxStats`] totals |
//!
//! Upgrades never drop data: the `idb` builder deletes every store it is not told about, so
//! every store ever created stays listed here, and a new version only adds stores or indexes.
//! Seqs are numeric keys (IndexedDB orders numbers numerically; strings would put 10 before 9);
//! f64 holds them exactly up to 2^53.
//!
//! [`Record`]: crate::outbox::Record
//! [`Batch`]: crate::outbox::Batch
//! [`DeadBatch`]: crate::outbox::DeadBatch
//! [`OutboxStats`]: crate::outbox::OutboxStats

use rexie::{ObjectStore, Rexie};

/// Current schema version. Bump only together with an additive change below.
pub const VERSION: u32 = 1;

pub const RECORDS: &str = "records";
pub const INFLIGHT: &str = "inflight";
pub const DEAD: &str = "dead";
pub const META: &str = "meta";

pub const INFLIGHT_KEY: &str = "current";
pub const META_DEVICE_ID: &str = "device_id";
pub const META_NEXT_SEQ: &str = "next_seq";
pub const META_TOTALS: &str = "totals";

/// Opens (creating or upgrading) the outbox database `name`.
pub async fn open(name: &str) -> Result<Rexie, rexie::Error> {
    Rexie::builder(name)
        .version(VERSION)
        .add_object_store(ObjectStore::new(RECORDS))
        .add_object_store(ObjectStore::new(INFLIGHT))
        .add_object_store(ObjectStore::new(DEAD))
        .add_object_store(ObjectStore::new(META))
        .build()
        .await
}
