//! The gateway host: readings arrive over MQTT (or a CSV replay), the same platform-free app
//! core as the service worker scores and records them in a durable SQLite outbox, alerts go out
//! over MQTT, and the same syncer sends OTLP batches to the collector.
//!
//! Optionally the engine runs sandboxed: a `wasm32-wasip1` module under wasmtime, with a memory
//! cap and a fuel (CPU) budget per call ([`sandbox`]).
//!
//! - [`config`]: flags over a TOML file over defaults.
//! - [`payload`]: MQTT payloads (JSON or CSV) into readings, malformed ones typed.
//! - [`ingest`]: a reading through the app core, alerts for anomalies.
//! - [`mqtt`], [`replay`]: the two inputs. [`transport`]: OTLP/HTTP out. [`store`]: the outbox.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod config;
pub mod env;
pub mod ingest;
pub mod mqtt;
pub mod package;
pub mod payload;
pub mod replay;
pub mod run;
pub mod sandbox;
pub mod sandboxed;
pub mod store;
pub mod transport;

use std::rc::Rc;

use edge_anomaly::app::App;
use tracing::{info, warn};

/// The app core on the gateway's parts.
pub type GatewayApp =
    App<Rc<store::SqliteStore>, transport::HttpTransport, env::SystemEnv, env::TokioTimer>;

/// Flushes and logs the outcome (`trigger` says which trigger asked); whether the queue was
/// drained.
pub async fn flush_logged(app: &GatewayApp, trigger: &'static str) -> bool {
    match app.flush().await {
        Ok(o) if o.sent_records > 0 || o.last_error.is_some() => {
            info!(
                trigger,
                status = ?o.status,
                sent = o.sent_records,
                batches = o.sent_batches,
                dead_lettered = o.dead_lettered_records,
                error = o.last_error.as_deref().unwrap_or(""),
                "flush"
            );
            o.status == edge_anomaly::outbox::FlushStatus::Drained
        }
        Ok(o) => o.status == edge_anomaly::outbox::FlushStatus::Drained,
        Err(e) => {
            warn!(trigger, code = e.code(), "flush failed: {e}");
            false
        }
    }
}
