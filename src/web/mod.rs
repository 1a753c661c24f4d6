//! The browser layer: adapts the platform-free core to wasm-bindgen and web-sys.
//!
//! Only this module touches JavaScript. Everything exported is either the opaque
//! [`AnomalyEngine`] handle or a free function the worker shim calls once.
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod app;
mod engine_handle;
mod env;
mod error;
mod fetch_transport;
mod flush_lock;
mod idb_inflight;
mod idb_schema;
mod idb_store;
mod panic;
mod timer;

pub use app::EdgeApp;
pub use engine_handle::AnomalyEngine;
pub use env::BrowserEnv;
pub use error::js_error;
pub use fetch_transport::FetchTransport;
pub use idb_store::IdbStore;
