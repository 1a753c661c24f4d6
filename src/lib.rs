//! Edge Anomaly: anomaly detection that runs in the browser.
//!
//! The crate is split along one line. Platform-free modules ([`engine`], [`outbox`] with the sync
//! policy, [`update`] for signed model updates, and [`app`], the use case that joins them) know
//! nothing of the browser and are tested natively with `cargo test`. The `web` module, compiled only for `wasm32`, adapts them to wasm-bindgen
//! and web-sys; the JS in `worker/` and `www/` only routes events and renders.

pub mod app;
pub mod engine;
pub mod onnx;
pub mod outbox;
pub mod update;

// The browser layer; wasm32-wasip1 (the gateway sandbox) takes the platform-free modules only.
#[cfg(all(target_arch = "wasm32", target_os = "unknown"))]
pub mod web;

pub use engine::{
    Backend, Chosen, Engine, EngineConfig, EngineError, Explained, Int8Mode, ModelSlot,
};
