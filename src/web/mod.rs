//! The browser layer: adapts the platform-free core to wasm-bindgen and web-sys.
//!
//! Only this module touches JavaScript. Everything exported is either the opaque
//! [`AnomalyEngine`] handle or a free function the worker shim calls once.
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod engine_handle;
mod error;
mod idb_schema;
mod idb_store;
mod panic;

pub use engine_handle::AnomalyEngine;
pub use error::js_error;
pub use idb_store::IdbStore;
