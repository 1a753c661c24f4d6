//! Sending the drift statistics ([`DriftSnapshot`], one per model version) to the collector
//! as OTLP metrics: `POST {endpoint}/v1/metrics`, same endpoint and token as the logs.
//!
//! Snapshots are cumulative, so delivery needs none of the outbox's machinery: a lost export
//! is superseded by the next one, a repeated one is harmless (the collector keeps the newest
//! per device and model version). Hence no store, no idempotency key, no retry: after a log
//! flush that reached the collector ([`FlushStatus::Drained`] or [`FlushStatus::MorePending`])
//! the app exports, at most once per [`MIN_INTERVAL_MS`]. A failure is counted in
//! [`MetricsExportStats`] and otherwise ignored: it never touches the log records or the
//! flush's outcome.
//!
//! A snapshot the collector would refuse ([`edge_wire::metrics::validate`]) is left out and
//! counted, so it cannot fail the export of the other model versions.

use std::cell::{Cell, RefCell};

use edge_wire::drift::DriftSnapshot;
use edge_wire::metrics::{self, MetricsError, MetricsResource};
use edge_wire::response;

use crate::outbox::{
    gzip, FlushOutcome, FlushStatus, HttpRequest, SyncConfig, Transport, TransportError,
};

/// Shortest time between two exports.
pub const MIN_INTERVAL_MS: u64 = 60_000;

/// Why an export did not reach the collector.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsExportError {
    /// The body could not be built.
    #[error(transparent)]
    Encode(#[from] MetricsError),
    /// No HTTP answer.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The collector answered with an error status.
    #[error("HTTP {status}: {body}")]
    Refused {
        /// The status.
        status: u16,
        /// The start of the answer's body.
        body: String,
    },
    /// A 2xx answer that is not an OTLP response (a captive portal, a proxy's page).
    #[error("{0}")]
    NotOtlp(String),
}

impl MetricsExportError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            MetricsExportError::Encode(e) => e.code(),
            MetricsExportError::Transport(_) => "NETWORK",
            MetricsExportError::Refused { .. } => "REFUSED",
            MetricsExportError::NotOtlp(_) => "NOT_OTLP",
        }
    }
}

/// What the exports did since the app started.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct MetricsExportStats {
    /// Exports the collector acknowledged.
    pub sent: u64,
    /// Exports that failed (counted here, then forgotten: the next one carries the totals).
    pub failed: u64,
    /// Snapshots left out because the collector would refuse them.
    pub invalid_snapshots: u64,
    /// Data points the collector reported rejecting (OTLP partial success).
    pub rejected_data_points: u64,
    /// The latest failure, `"<CODE>: <detail>"`.
    pub last_error: Option<String>,
}

/// The request carrying `snapshots` from `device_id` to `config`'s collector: JSON body
/// (gzipped when at least `gzip_min_bytes` and smaller so), the bearer token when set.
pub fn metrics_request(
    snapshots: &[DriftSnapshot],
    device_id: &str,
    config: &SyncConfig,
) -> Result<HttpRequest, MetricsError> {
    let resource = MetricsResource {
        device_id: device_id.to_owned(),
        service_version: config.service_version.clone(),
    };
    let json = metrics::encode(snapshots, &resource)?.into_bytes();
    let gzipped = (json.len() >= config.gzip_min_bytes)
        .then(|| gzip(&json))
        .flatten()
        .filter(|packed| packed.len() < json.len());
    let mut headers = vec![("content-type".to_owned(), "application/json".to_owned())];
    if gzipped.is_some() {
        headers.push(("content-encoding".to_owned(), "gzip".to_owned()));
    }
    if let Some(token) = &config.bearer_token {
        headers.push(("authorization".to_owned(), format!("Bearer {token}")));
    }
    Ok(HttpRequest {
        method: "POST",
        url: metrics_url(config),
        headers,
        body: gzipped.unwrap_or(json),
    })
}

/// `{endpoint}/v1/metrics`, beside the logs URL.
pub fn metrics_url(config: &SyncConfig) -> String {
    format!("{}/v1/metrics", config.endpoint.trim_end_matches('/'))
}

/// The exporter: its transport, when it last tried, and its counters.
#[derive(Debug)]
pub struct MetricsExport<T> {
    transport: T,
    last_attempt_ms: Cell<Option<u64>>,
    stats: RefCell<MetricsExportStats>,
}

impl<T: Transport> MetricsExport<T> {
    /// An exporter that has not exported yet.
    pub fn new(transport: T) -> Self {
        MetricsExport {
            transport,
            last_attempt_ms: Cell::new(None),
            stats: RefCell::new(MetricsExportStats::default()),
        }
    }

    /// The counters.
    pub fn stats(&self) -> MetricsExportStats {
        self.stats.borrow().clone()
    }

    /// Exports `snapshots()` if `outcome` reached the collector and the last attempt is at
    /// least [`MIN_INTERVAL_MS`] old (or there was none). Whether it sent a request.
    pub async fn after_flush(
        &self,
        outcome: &FlushOutcome,
        now_ms: u64,
        snapshots: impl FnOnce() -> Vec<DriftSnapshot>,
        device_id: &str,
        config: &SyncConfig,
    ) -> bool {
        let reached = matches!(outcome.status, FlushStatus::Drained | FlushStatus::MorePending);
        let due = self
            .last_attempt_ms
            .get()
            .is_none_or(|last| now_ms.saturating_sub(last) >= MIN_INTERVAL_MS);
        if !reached || !due {
            return false;
        }
        // A version that has scored nothing yet has nothing to report, and sending it would
        // hold the first real statistics back a whole interval.
        let mut valid: Vec<_> = snapshots().into_iter().filter(|s| s.count > 0).collect();
        let before = valid.len();
        valid.retain(|s| metrics::validate(s).is_ok());
        self.stats.borrow_mut().invalid_snapshots += (before - valid.len()) as u64;
        if valid.is_empty() {
            return false;
        }
        // Set before the await: a flush that interleaves with this one does not export too.
        self.last_attempt_ms.set(Some(now_ms));
        let result = self.export(&valid, device_id, config).await;
        let mut stats = self.stats.borrow_mut();
        match result {
            Ok(rejected) => {
                stats.sent += 1;
                stats.rejected_data_points += rejected;
            }
            Err(e) => {
                stats.failed += 1;
                stats.last_error = Some(format!("{}: {e}", e.code()));
            }
        }
        true
    }

    /// Sends `snapshots` once; the data points the collector reports rejecting.
    pub async fn export(
        &self,
        snapshots: &[DriftSnapshot],
        device_id: &str,
        config: &SyncConfig,
    ) -> Result<u64, MetricsExportError> {
        let request = metrics_request(snapshots, device_id, config)?;
        let answer = self.transport.send(request).await?;
        if !(200..300).contains(&answer.status) {
            let body = String::from_utf8_lossy(&answer.body).chars().take(200).collect();
            return Err(MetricsExportError::Refused { status: answer.status, body });
        }
        response::parse(answer.header("content-type"), &answer.body)
            .map_err(|e| MetricsExportError::NotOtlp(e.to_string()))?;
        Ok(rejected_data_points(&answer.body))
    }
}

/// `partialSuccess.rejectedDataPoints` of an acknowledging JSON body (0 when absent).
fn rejected_data_points(body: &[u8]) -> u64 {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return 0;
    };
    match &value["partialSuccess"]["rejectedDataPoints"] {
        serde_json::Value::String(s) => s.parse().unwrap_or(0),
        serde_json::Value::Number(n) => n.as_u64().unwrap_or(0),
        _ => 0,
    }
}
