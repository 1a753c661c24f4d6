//! [`Recorder`]: the write side. Puts each scored (or unscored) reading in the outbox, where the
//! store gives it its seq in the same transaction, enforcing the capacity cap.
//!
//! Writing never waits for the network: recording and syncing are separate so a reading is
//! durable as soon as `record` returns, online or not. Full storage does not stop recording
//! either: the oldest queued records make room (counted as quota evictions), and only when there
//! is nothing left to evict does `record` fail with [`StoreError::QuotaExceeded`].
//!
//! Eviction makes room only where the browser gives deleted space back at once. Chromium's
//! IndexedDB does not: deleted records keep their space until the database compacts, and while
//! the origin is over quota every write is refused. So a call evicts for at most
//! [`QUOTA_EVICTION_ROUNDS`] rounds; when those still leave the store refusing, the recorder
//! stops evicting (the loss stays bounded) until a write succeeds again, and `record` fails
//! with [`StoreError::QuotaExceeded`] for each call meanwhile.

use std::cell::Cell;

use super::config::OutboxConfig;
use super::env::Env;
use super::error::{OutboxError, StoreError};
use super::record::{Entry, Seq};
use super::store::{AppendOutcome, OutboxStore};

/// Rounds of eviction (each asking for twice the room of the last, starting at the call's
/// size) one call makes for full storage before concluding that evicting frees nothing now.
pub const QUOTA_EVICTION_ROUNDS: u32 = 3;

/// What [`Recorder::record`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Seq of the first new record (the others follow consecutively).
    pub first_seq: Seq,
    /// Records stored.
    pub count: u64,
    /// Oldest queued records evicted to make room, for the capacity cap or for full storage
    /// (already counted in the store's stats).
    pub evicted: u64,
    /// Of `evicted`, those evicted because storage was full.
    pub evicted_for_quota: u64,
    /// Entries recognised by their reading id as already recorded: (index in the call, seq).
    pub already: Vec<(usize, Seq)>,
}

impl Recorded {
    /// The seq of each of the `entries` entries of the call, in order (see
    /// [`AppendOutcome::seqs`]).
    pub fn seqs(&self, entries: usize) -> Vec<Seq> {
        let outcome = AppendOutcome {
            first_seq: self.first_seq,
            stored: self.count,
            evicted: self.evicted,
            already: self.already.clone(),
        };
        outcome.seqs(entries)
    }
}

/// Puts readings into the outbox.
#[derive(Debug)]
pub struct Recorder<S> {
    store: S,
    config: OutboxConfig,
    device_id: String,
    /// Set when evictions for full storage left the store still refusing; cleared by the next
    /// write that succeeds.
    eviction_futile: Cell<bool>,
}

impl<S: OutboxStore> Recorder<S> {
    /// Opens the write side over `store`, giving the store a device id if it has none.
    pub async fn open(store: S, config: OutboxConfig, env: &impl Env) -> Result<Self, OutboxError> {
        config.validate()?;
        let device_id = ensure_device_id(&store, env).await?;
        Ok(Recorder { store, config, device_id, eviction_futile: Cell::new(false) })
    }

    /// The device id records are attributed to.
    pub fn device_id(&self) -> &str {
        &self.device_id
    }

    /// The underlying store (for stats, dead letters and re-drive).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Stores `entries` as consecutive records (the seqs are assigned in the same transaction,
    /// so none is lost to a crash), skipping those whose reading id was already recorded, and
    /// evicting the oldest queued ones past the capacity. When storage is full, evicts the
    /// oldest queued records (as many as the call brings, doubling on each further refusal, for
    /// at most [`QUOTA_EVICTION_ROUNDS`] rounds) and tries again; see the module docs for when
    /// it stops evicting.
    pub async fn record(&self, entries: Vec<Entry>) -> Result<Recorded, OutboxError> {
        if entries.is_empty() {
            return Ok(Recorded::default());
        }
        let mut room = entries.len() as u64;
        let mut evicted_for_quota = 0;
        let mut rounds = 0;
        loop {
            match self.store.append_entries(&entries, self.config.capacity).await {
                Ok(outcome) => {
                    self.eviction_futile.set(false);
                    return Ok(Recorded {
                        first_seq: outcome.first_seq,
                        count: outcome.stored,
                        evicted: outcome.evicted + evicted_for_quota,
                        evicted_for_quota,
                        already: outcome.already,
                    });
                }
                Err(StoreError::QuotaExceeded(why)) => {
                    if self.eviction_futile.get() || rounds == QUOTA_EVICTION_ROUNDS {
                        self.eviction_futile.set(true);
                        return Err(StoreError::QuotaExceeded(why).into());
                    }
                    let freed = self.store.evict_for_quota(room).await?;
                    if freed == 0 {
                        return Err(StoreError::QuotaExceeded(why).into());
                    }
                    evicted_for_quota += freed;
                    rounds += 1;
                    room = room.saturating_mul(2);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Counts `n` readings the app did not record, under `reason` (a stable code).
    pub async fn count_dropped(&self, reason: &str, n: u64) -> Result<(), OutboxError> {
        Ok(self.store.count_dropped(reason, n).await?)
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
