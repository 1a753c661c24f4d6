//! Shared test helpers: OTLP request builders, an in-process client and a real-socket server.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

pub mod client;
pub mod conformance;
pub mod drift;
pub mod pg;
pub mod process;

use std::io::Write;
use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use axum::Router;
use collector::{AppState, Config, Store};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// One attribute in OTLP JSON form.
pub fn kv(key: &str, value: Value) -> Value {
    json!({"key": key, "value": value})
}

/// Hand-written attributes of one scored reading, for bodies a test edits field by field
/// (mistyped, non-finite or missing values the device's encoder does not produce).
pub fn scored_attrs(device: &str, seq: i64) -> Vec<Value> {
    vec![
        kv("edge.record_id", json!({"stringValue": format!("{device}:{seq}")})),
        kv("edge.seq", json!({"intValue": seq.to_string()})),
        kv("edge.score", json!({"doubleValue": seq as f64 / 10.0})),
        kv("edge.anomaly", json!({"boolValue": seq % 5 == 0})),
        kv("edge.model_version", json!({"stringValue": "shuttle-int8@1"})),
        kv("edge.latency_us", json!({"intValue": "150"})),
        kv("edge.scored", json!({"boolValue": true})),
    ]
}

/// The two attributes of a flagged reading's top channels: `channels` as stringValues, `shares`
/// as doubleValues written as given (a number, or a spelling such as `"NaN"`).
pub fn contributions(channels: &[&str], shares: &[Value]) -> [Value; 2] {
    let channels: Vec<Value> = channels.iter().map(|c| json!({"stringValue": c})).collect();
    let shares: Vec<Value> = shares.iter().map(|s| json!({"doubleValue": s})).collect();
    [
        kv("edge.contributions.channels", json!({"arrayValue": {"values": channels}})),
        kv("edge.contributions.shares", json!({"arrayValue": {"values": shares}})),
    ]
}

/// An `ExportLogsServiceRequest` whose records carry `attrs`.
pub fn request_with(device: &str, records: Vec<Vec<Value>>) -> Value {
    let log_records: Vec<Value> = records
        .into_iter()
        .enumerate()
        .map(|(i, attributes)| {
            // The event time follows the seq, as on a device: a record re-sent in another batch
            // carries the same time.
            let seq = attributes
                .iter()
                .find(|a| a["key"] == "edge.seq")
                .and_then(|a| a["value"]["intValue"].as_str()?.parse::<u64>().ok())
                .unwrap_or(i as u64);
            json!({
                "timeUnixNano": (1_700_000_000_000_000_000u64 + seq).to_string(),
                "severityText": "INFO",
                "body": {"stringValue": "edge.reading"},
                "attributes": attributes,
            })
        })
        .collect();
    json!({"resourceLogs": [{
        "resource": {"attributes": [
            kv("device.id", json!({"stringValue": device})),
            kv("service.version", json!({"stringValue": "0.1.0"})),
            kv("service.name", json!({"stringValue": "edge-anomaly"})),
        ]},
        "scopeLogs": [{"scope": {"name": "edge-anomaly.outbox"}, "logRecords": log_records}]
    }]})
}

/// The request the device's encoder writes for one scored record per `seq`
/// ([`client::scored`]).
pub fn request(device: &str, seqs: impl IntoIterator<Item = i64>) -> Value {
    let records: Vec<_> = seqs.into_iter().map(|s| client::scored(s as u64)).collect();
    client::body(device, &records)
}

/// Gzip-compresses `data`.
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// A state over an in-memory database.
pub fn memory_state(config: Config) -> AppState {
    AppState::new(Store::open_in_memory().unwrap(), config)
}

/// A state over an in-memory database with fault injection enabled (`--test-faults`).
pub fn faults_state() -> AppState {
    memory_state(Config { test_faults: true, ..Config::default() })
}

/// A `POST /v1/logs` with a JSON content type, `extra` headers and `body`.
pub fn post_logs(body: impl Into<Body>, extra: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::post("/v1/logs").header("content-type", "application/json");
    for (k, v) in extra {
        builder = builder.header(*k, *v);
    }
    builder.body(body.into()).unwrap()
}

/// A response, read whole.
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
}

/// Sends `request` through the router in-process.
pub async fn send(app: &Router, request: Request<Body>) -> Reply {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply { status, headers, text: String::from_utf8_lossy(&bytes).into_owned() }
}

/// `GET path` in-process, as JSON.
pub async fn get_json(app: &Router, path: &str) -> Value {
    get_json_with_token(app, path, None).await
}

/// `GET path` in-process with `Authorization: Bearer token`, as JSON.
pub async fn get_json_with_token(app: &Router, path: &str, token: Option<&str>) -> Value {
    let mut request = Request::get(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let reply = send(app, request.body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK, "{path}: {}", reply.text);
    reply.json()
}

/// Serves `state` on a real socket on 127.0.0.1 (ephemeral port); the task ends with the test.
pub async fn spawn_server(state: AppState) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(collector::serve(listener, state));
    addr
}

/// An HTTP client with no connection reuse and a bounded timeout.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap()
}
