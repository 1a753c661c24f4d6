//! [`SyncSettings`]: where the outbox sends, kept in the store so a restarted worker still knows.
//!
//! The page hands the worker a collector endpoint and an optional bearer token once; a service
//! worker is stopped and started by the browser at will, so the settings live in the outbox's
//! database beside the device id rather than in worker memory.

use serde::{Deserialize, Serialize};

/// The collector to send to, as the page configured it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncSettings {
    /// Base URL of the collector (`{endpoint}/v1/logs` is posted to).
    pub endpoint: String,
    /// Bearer token for the `authorization` header, if the collector wants one.
    pub token: Option<String>,
    /// Whether scored records carry their reading too (so the collector can export what the
    /// device saw for retraining); unscored records always do. Off unless asked for: it adds
    /// the reading's values to every record sent. Absent in settings stored before (off).
    #[serde(default)]
    pub send_readings: bool,
}
