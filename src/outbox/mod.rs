//! The outbox: every scored reading is stored durably, then sent to the collector as OTLP/HTTP
//! JSON logs when online. Nothing lost, nothing duplicated.
//!
//! Platform-free: storage ([`OutboxStore`]), HTTP ([`Transport`]) and time and randomness
//! ([`Env`]) are injected traits, so every rule runs in fast native tests. The web layer supplies
//! IndexedDB, `fetch` and `Date.now`/`crypto`.
//!
//! - [`Recorder`] appends readings; the store gives each a per-device seq in the same
//!   transaction (persisted, no gaps), recognises a reading the page sent again by its reading
//!   id, evicts (and counts) the oldest past the capacity cap, and when storage is full evicts
//!   the oldest (counted) rather than stop recording.
//! - [`Syncer`] cuts batches (≤ N records, ≤ B body bytes), persists each as inflight under an
//!   idempotency key *before* sending, deletes only on 2xx, retries 429/502/503/504 and network
//!   errors with backoff or `Retry-After`, and dead-letters other refusals without blocking the
//!   batches behind.
//! - [`conformance`] is the test suite any [`OutboxStore`] must pass, native or in a browser.

mod ahead;
mod batcher;
mod config;
pub mod conformance;
mod env;
mod error;
mod memory;
pub mod otlp;
mod record;
mod recorder;
pub mod retry;
mod settings;
mod store;
pub mod stored;
mod syncer;
mod transport;
mod wire;

pub use batcher::{fit, idempotency_key, make_batch};
pub use config::{OutboxConfig, SyncConfig};
pub use env::Env;
pub use error::{ConfigError, OutboxError, StoreError, TransportError};
pub use memory::MemoryStore;
pub use record::{Entry, Record, Scoring, Seq, TOP_CHANNELS};
pub use recorder::{ensure_device_id, Recorded, Recorder, QUOTA_EVICTION_ROUNDS};
pub use retry::RetryPolicy;
pub use settings::SyncSettings;
pub use store::{
    Ack, AppendOutcome, Batch, DeadBatch, DeadLetter, Failure, OutboxStats, OutboxStore,
    RetryState, READING_IDS_KEPT,
};
pub use syncer::{FlushOutcome, FlushStatus, Syncer};
pub use transport::{HttpRequest, HttpResponse, Transport};
pub use wire::{build_request, gzip, wire_size, WireSize};
