//! Edge Anomaly's collector: the telemetry endpoint and dev server in one process.
//!
//! The PWA's service worker sends scored sensor readings as OTLP/HTTP JSON logs to
//! `POST /v1/logs`; this crate checks them, stores them in SQLite (or in PostgreSQL shared by
//! several collectors, see [`database`]), deduplicated by
//! `Idempotency-Key` and by `edge.record_id`, reporting conflicting record ids, serves them back
//! as JSON for the dashboard, serves the built PWA itself, and — only when started with
//! `--test-faults` — injects faults so the client's retry logic can be tested.
//!
//! It also publishes signed model releases (`collector publish-model DIR`, see [`releases`])
//! and serves them to devices at `/releases/`, scores the readings devices sent unscored with
//! those releases ([`cloud`]), and shows the whole fleet at `/fleet` ([`fleet`]).
//!
//! Build the app with [`app`] (a plain axum `Router`, good for in-process tests) or run it on a
//! socket with [`serve`] (which adds the `Host` check and the connection cap, and is needed for
//! the reset and hang faults).

pub mod admin;
pub mod api;
pub mod auth;
pub mod body;
pub mod cloud;
pub mod conn_control;
pub mod database;
pub mod error;
pub mod export;
pub mod fault_layer;
pub mod faults;
pub mod fleet;
pub mod guard;
pub mod headers;
pub mod ingest;
pub mod log;
pub mod metrics;
pub mod otlp;
pub mod pg;
pub mod releases;
pub mod routes;
pub mod server;
pub mod state;
pub mod static_files;
pub mod store;
pub(crate) mod summary;

pub use database::Database;
pub use error::ApiError;
pub use faults::{FaultMode, FaultSpec};
pub use pg::PgStore;
pub use routes::app;
pub use server::{serve, serve_with_shutdown};
pub use state::{AppState, Config};
pub use store::Store;
