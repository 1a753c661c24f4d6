//! Request bodies as the device's own encoder writes them (`edge_anomaly::outbox`), for every
//! fixture that stands for client output.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::Request;
use edge_anomaly::outbox::otlp::{encode, Origin};
use edge_anomaly::outbox::{build_request, make_batch, Entry, HttpRequest, Record, SyncConfig};
use serde_json::Value;

/// The app version the fixtures' devices report.
pub const SERVICE_VERSION: &str = "0.1.0";
/// The model version of scored fixtures.
pub const MODEL_VERSION: &str = "shuttle-int8@1";

/// When reading `seq` was taken, in ms since the epoch.
pub fn timestamp_ms(seq: u64) -> u64 {
    1_700_000_000_000 + seq
}

/// Scored reading `seq`: score `seq / 10`, anomalous every fifth seq, 150 µs.
pub fn scored(seq: u64) -> Record {
    let entry = Entry::scored(
        timestamp_ms(seq),
        MODEL_VERSION,
        seq as f32 / 10.0,
        seq.is_multiple_of(5),
        150,
    );
    Record::new(seq, entry)
}

/// Scored reading `seq` with another score than [`scored`] gives it.
pub fn rescored(seq: u64, score: f32) -> Record {
    Record::new(seq, Entry::scored(timestamp_ms(seq), MODEL_VERSION, score, false, 150))
}

/// Unscored reading `seq` carrying `reading`.
pub fn unscored(seq: u64, reading: Vec<f32>, reason: &str) -> Record {
    Record::new(seq, Entry::unscored(timestamp_ms(seq), None, reading, reason))
}

/// The device `device`.
pub fn origin(device: &str) -> Origin {
    Origin::new(device, SERVICE_VERSION)
}

/// The OTLP JSON body the device sends for `records`.
pub fn body(device: &str, records: &[Record]) -> Value {
    serde_json::from_str(&encode(records, &origin(device)).unwrap()).unwrap()
}

/// The whole HTTP request the device's syncer would send for the first batch it cuts from
/// `records` (it may take fewer than all of them, as at the byte cap), under `config`.
pub fn device_request(
    device: &str,
    records: Vec<Record>,
    config: &SyncConfig,
) -> (HttpRequest, usize) {
    let batch = make_batch(records, &origin(device), config, 0, 7).unwrap().unwrap();
    (build_request(&batch, config), batch.records.len())
}

/// A device request (`/v1/logs` or `/v1/metrics`) as an in-process axum request.
pub fn to_axum(request: HttpRequest) -> Request<Body> {
    let path = request.url.find("/v1/").map_or("/v1/logs", |i| &request.url[i..]).to_owned();
    let mut builder = Request::post(path);
    for (name, value) in &request.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder.body(Body::from(request.body)).unwrap()
}
