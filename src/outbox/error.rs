//! Everything that can go wrong in the outbox: storage, configuration, transport, syncing.
//!
//! Each kind has a stable `code()` so the web layer can hand JavaScript something to branch on.
//! A failed send is not an error of the syncer: it is policy (retry or dead-letter) and shows in
//! the [`super::FlushOutcome`]; [`OutboxError`] is only for what stops recording or a flush.

use thiserror::Error;

/// A failure of the durable store.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// The storage backend failed (IndexedDB error, quota exceeded, closed database…).
    #[error("outbox storage failed: {0}")]
    Backend(String),
    /// The operation does not fit the stored state (e.g. a batch is already inflight, or a
    /// record of a new batch was evicted meanwhile); nothing was changed.
    #[error("outbox state conflict: {0}")]
    Conflict(String),
    /// Stored data could not be decoded.
    #[error("outbox data is corrupt: {0}")]
    Corrupt(String),
    /// The storage quota is used up and nothing could be freed to make room; nothing was stored.
    #[error("outbox storage is full: {0}")]
    QuotaExceeded(String),
    /// Opening the database needs an upgrade that another open connection (an old worker or
    /// tab) keeps blocking; gave up after the deadline.
    #[error("outbox database upgrade is blocked: {0}")]
    UpgradeBlocked(String),
}

impl StoreError {
    /// A stable, machine-readable code for this error kind.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Backend(_) => "STORE_BACKEND",
            StoreError::Conflict(_) => "STORE_CONFLICT",
            StoreError::Corrupt(_) => "STORE_CORRUPT",
            StoreError::QuotaExceeded(_) => "STORE_QUOTA",
            StoreError::UpgradeBlocked(_) => "STORE_UPGRADE_BLOCKED",
        }
    }
}

/// An unusable outbox or sync configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// A limit that must be positive is zero.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    /// The collector endpoint is not an http(s) URL.
    #[error("endpoint must start with http:// or https://, got {0:?}")]
    Endpoint(String),
    /// A value would make an invalid HTTP header (control characters, non-ASCII).
    #[error("{0} is not a valid HTTP header value")]
    Header(&'static str),
    /// A retry parameter is out of range.
    #[error("invalid retry policy: {0}")]
    Retry(&'static str),
}

impl ConfigError {
    /// A stable, machine-readable code for this error kind.
    pub fn code(&self) -> &'static str {
        "INVALID_CONFIG"
    }
}

/// A request that got no HTTP response. Always retried.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TransportError {
    /// The request failed below HTTP: offline, DNS, TLS, CORS, connection reset.
    #[error("network error: {0}")]
    Network(String),
    /// No response within the transport's deadline.
    #[error("request timed out")]
    Timeout,
}

/// What stops recording or a flush (a failed send is policy, not an error; see
/// [`super::FlushOutcome`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OutboxError {
    /// The store failed; the outbox is unchanged by the failed step and the next call resumes.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A record could not be encoded as OTLP JSON.
    #[error("cannot encode OTLP request: {0}")]
    Encode(String),
}

impl OutboxError {
    /// A stable, machine-readable code for this error kind.
    pub fn code(&self) -> &'static str {
        match self {
            OutboxError::Store(e) => e.code(),
            OutboxError::Config(e) => e.code(),
            OutboxError::Encode(_) => "ENCODE",
        }
    }
}
