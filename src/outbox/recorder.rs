//! [`Recorder`]: the write side. Gives each scored (or unscored) reading its seq and puts it in
//! the outbox, enforcing the capacity cap.
//!
//! Writing never waits for the network: recording and syncing are separate so a reading is
//! durable as soon as `record` returns, online or not.

use super::config::OutboxConfig;
use super::env::Env;
use super::error::{OutboxError, StoreError};
use super::record::{Entry, Record, Seq};
use super::store::OutboxStore;

/// What [`Recorder::record`] stored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Seq of the first new record (the others follow consecutively).
    pub first_seq: Seq,
    /// Records stored.
    pub count: u64,
    /// Oldest queued records evicted to make room (already counted in the store's stats).
    pub evicted: u64,
}

/// Puts readings into the outbox.
#[derive(Debug)]
pub struct Recorder<S> {
    store: S,
    config: OutboxConfig,
    device_id: String,
}

impl<S: OutboxStore> Recorder<S> {
    /// Opens the write side over `store`, giving the store a device id if it has none.
    pub async fn open(store: S, config: OutboxConfig, env: &impl Env) -> Result<Self, OutboxError> {
        config.validate()?;
        let device_id = ensure_device_id(&store, env).await?;
        Ok(Recorder { store, config, device_id })
    }

    /// The device id records are attributed to.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The underlying store (for stats, dead letters and re-drive).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Stores `entries` as consecutive records, evicting the oldest queued ones past the
    /// capacity. Seqs are reserved first, in their own transaction: a crash in between leaves a
    /// gap in the seqs, never a reused one.
    pub async fn record(&self, entries: Vec<Entry>) -> Result<Recorded, OutboxError> {
        if entries.is_empty() {
            return Ok(Recorded::default());
        }
        let count = entries.len() as u64;
        let first_seq = self.store.reserve_seqs(count).await?;
        let records: Vec<Record> =
            (first_seq..).zip(entries).map(|(seq, entry)| Record::new(seq, entry)).collect();
        let outcome = self.store.append(&records, self.config.capacity).await?;
        Ok(Recorded { first_seq, count, evicted: outcome.evicted })
    }
}

/// The store's device id, creating a random 128-bit one (32 hex digits) if it has none.
pub async fn ensure_device_id(
    store: &impl OutboxStore,
    env: &impl Env,
) -> Result<String, StoreError> {
    if let Some(id) = store.device_id().await? {
        return Ok(id);
    }
    let candidate = format!("{:016x}{:016x}", env.random_u64(), env.random_u64());
    store.init_device_id(&candidate).await
}
