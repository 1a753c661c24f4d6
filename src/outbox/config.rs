//! Limits and endpoint settings of the outbox, with the defaults the issue asks for.
//!
//! Checked once, up front ([`SyncConfig::validate`], [`OutboxConfig::validate`]), so the hot
//! paths can trust them.

use super::error::ConfigError;
use super::retry::RetryPolicy;

/// Limits of the recording side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxConfig {
    /// Most queued records kept; past it the oldest are evicted (and counted).
    pub capacity: u64,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig { capacity: 1_000_000 }
    }
}

impl OutboxConfig {
    /// Checks the limits.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.capacity == 0 {
            return Err(ConfigError::Zero("capacity"));
        }
        Ok(())
    }
}

/// Where and how the syncer sends.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncConfig {
    /// Collector base URL; requests go to `{endpoint}/v1/logs`.
    pub endpoint: String,
    /// Sent as `Authorization: Bearer {token}` when set.
    pub bearer_token: Option<String>,
    /// The app version, sent as resource attribute `service.version`.
    pub service_version: String,
    /// Most records per batch. Fewer requests drain a backlog faster (each costs a round trip,
    /// a store transaction and the collector's commit); the project's collector takes up to
    /// 5,000 records and 4 MiB of body per request. An endpoint that refuses a batch as too
    /// large (413) gets it again in halves, and smaller batches from then on.
    pub max_batch_records: usize,
    /// Most bytes of uncompressed JSON body per batch (a single record larger than this is still
    /// sent, alone).
    pub max_batch_bytes: usize,
    /// Bodies at least this long are gzipped when that makes them smaller.
    pub gzip_min_bytes: usize,
    /// Most batches sent by one [`super::Syncer::flush`] call, so one call stays short.
    pub max_batches_per_flush: usize,
    /// Most records kept in the dead-letter store; past it the oldest dead batches are dropped
    /// (and counted).
    pub max_dead_letter_records: u64,
    /// Backoff and `Retry-After` handling.
    pub retry: RetryPolicy,
}

impl SyncConfig {
    /// Defaults for everything but the endpoint and the app version.
    pub fn new(endpoint: impl Into<String>, service_version: impl Into<String>) -> SyncConfig {
        SyncConfig {
            endpoint: endpoint.into(),
            bearer_token: None,
            service_version: service_version.into(),
            max_batch_records: 4_000,
            max_batch_bytes: 3 * 1024 * 1024,
            gzip_min_bytes: 1024,
            max_batches_per_flush: 50,
            max_dead_letter_records: 100_000,
            retry: RetryPolicy::default(),
        }
    }

    /// The URL batches are posted to.
    pub fn logs_url(&self) -> String {
        format!("{}/v1/logs", self.endpoint.trim_end_matches('/'))
    }

    /// Checks limits, endpoint and header values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let e = &self.endpoint;
        if !(e.starts_with("http://") || e.starts_with("https://")) {
            return Err(ConfigError::Endpoint(e.clone()));
        }
        for (value, name) in [
            (self.max_batch_records, "max_batch_records"),
            (self.max_batch_bytes, "max_batch_bytes"),
            (self.max_batches_per_flush, "max_batches_per_flush"),
        ] {
            if value == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.max_dead_letter_records == 0 {
            return Err(ConfigError::Zero("max_dead_letter_records"));
        }
        if let Some(token) = &self.bearer_token {
            if !is_header_value(token) {
                return Err(ConfigError::Header("bearer_token"));
            }
        }
        self.retry.validate()
    }
}

/// Visible ASCII and spaces only: what a header value may safely hold.
pub(crate) fn is_header_value(s: &str) -> bool {
    s.bytes().all(|b| b == b' ' || b.is_ascii_graphic())
}
