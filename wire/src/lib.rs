//! Edge Anomaly's wire conventions, in one place for both ends of the pipe.
//!
//! The device (the `edge-anomaly` crate's outbox, in a service worker or a gateway) writes OTLP
//! logs and the collector reads them. Whatever both must agree on lives here, so a change on
//! one side cannot silently diverge from the other:
//!
//! - [`attr`]: the OTLP attribute names;
//! - [`drift`]: score statistics per model version (drift against the training distribution);
//! - [`metrics`]: those statistics as OTLP metrics, written by the device, read by the collector;
//! - [`double`]: how a float that JSON cannot carry (NaN, ±Infinity) is written and read back,
//!   both on the wire and in the device's own store;
//! - [`record_id`]: the globally unique record id `"{device}:{seq}"`;
//! - [`response`]: which HTTP answers acknowledge a batch (a real `ExportLogsServiceResponse`,
//!   not any 2xx).
//!
//! It depends on serde alone, so it builds natively and for wasm32.

pub mod attr;
pub mod double;
pub mod drift;
pub mod metrics;
pub mod record_id;
pub mod response;
