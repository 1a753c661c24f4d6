//! `POST /v1/metrics` and `GET /api/drift`: every refusal (400, 401, 403, 413, 415) stores
//! nothing. What is stored and read back, on either store, is in the behaviour suite
//! (`common/conformance/fleet.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use collector::{app, Config};
use common::client::to_axum;
use common::drift::{metrics_device_request, snapshot, T};
use common::*;
use edge_anomaly::app::metrics_export::metrics_request;
use edge_anomaly::outbox::SyncConfig;
use edge_wire::drift::DriftSnapshot;
use serde_json::{json, Value};

fn post_json(body: impl Into<Body>) -> Request<Body> {
    Request::post("/v1/metrics")
        .header("content-type", "application/json")
        .body(body.into())
        .unwrap()
}

fn post_gzip(body: impl Into<Body>) -> Request<Body> {
    let mut request = post_json(body);
    request.headers_mut().insert("content-encoding", "gzip".parse().unwrap());
    request
}

async fn drift(app: &Router, device: Option<&str>) -> Vec<Value> {
    let path = device.map_or_else(|| "/api/drift".to_owned(), |d| format!("/api/drift?device={d}"));
    get_json(app, &path).await.as_array().unwrap().clone()
}

fn json_body(device: &str, snapshots: &[DriftSnapshot]) -> Value {
    let config = SyncConfig { gzip_min_bytes: usize::MAX, ..SyncConfig::new("http://c", "0.2.0") };
    serde_json::from_slice(&metrics_request(snapshots, device, &config).unwrap().body).unwrap()
}

fn point(body: &mut Value) -> &mut Value {
    &mut body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][0]["histogram"]["dataPoints"][0]
}

#[tokio::test]
async fn malformed_bodies_are_400_with_a_reason_and_store_nothing() {
    let app = app(memory_state(Config::default()));
    let good = json_body("dev-a", &[snapshot("m@1", T + 60, 10)]);
    let mut no_device = good.clone();
    no_device["resourceMetrics"][0]["resource"]["attributes"] = json!([]);
    let mut short = good.clone();
    point(&mut short)["bucketCounts"].as_array_mut().unwrap().pop();
    let mut negative = good.clone();
    point(&mut negative)["count"] = json!(-3);
    let mut nan_sum = good.clone();
    point(&mut nan_sum)["sum"] = json!("NaN");
    let mut huge_time = good.clone();
    point(&mut huge_time)["timeUnixNano"] = json!(u64::MAX.to_string());
    // The second snapshot is bad: the first must not be stored either.
    let mixed = {
        let mut bad = snapshot("m@2", T + 60, 10);
        bad.anomalies = 11;
        json_body("dev-a", &[snapshot("m@1", T + 60, 10), bad])
    };
    for (name, body, reason) in [
        ("no device id", no_device.to_string(), "device.id"),
        ("one bucket short", short.to_string(), "bucket counts"),
        ("negative count", negative.to_string(), "-3"),
        ("NaN sum", nan_sum.to_string(), "finite"),
        ("time above i64", huge_time.to_string(), "above"),
        ("one bad snapshot", mixed.to_string(), "anomalies"),
        ("not JSON", "{\"resourceMetrics\": [".to_owned(), "JSON"),
    ] {
        let reply = send(&app, post_json(body)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{name}: {}", reply.text);
        let error = reply.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(reason), "{name}: {error}");
    }
    let reply = send(&app, post_gzip(&b"not gzip at all"[..])).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.text);
    let text = Request::post("/v1/metrics").header("content-type", "text/plain");
    let reply = send(&app, text.body(Body::from(good.to_string())).unwrap()).await;
    assert_eq!(reply.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert!(drift(&app, None).await.is_empty());
}

#[tokio::test]
async fn oversized_bodies_are_413_and_store_nothing() {
    let small = Config { max_body_bytes: 2_000, ..Config::default() };
    let app = app(memory_state(small));
    let body = json_body("dev-a", &[snapshot("m@1", T + 60, 10)]).to_string();
    assert!(body.len() > 2_000);
    let reply = send(&app, post_json(body.clone())).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.text);
    // Gzipped under the limit, over it inflated.
    let reply = send(&app, post_gzip(gzip(body.as_bytes()))).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.text);

    // Within the byte limit but over the decoder's cap on data points.
    let app = collector::app(memory_state(Config::default()));
    let mut many = json_body("dev-a", &[snapshot("m@1", T + 60, 10)]);
    let gauge = &mut many["resourceMetrics"][0]["scopeMetrics"][0]["metrics"][1]["gauge"];
    let one = gauge["dataPoints"][0].clone();
    gauge["dataPoints"] = Value::Array(vec![one; 5_000]);
    let reply = send(&app, post_json(many.to_string())).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", reply.text);
    assert!(reply.text.contains("data points"), "{}", reply.text);
    assert!(drift(&app, None).await.is_empty());
}

#[tokio::test]
async fn foreign_metrics_are_a_partial_success() {
    let app = app(memory_state(Config::default()));
    let mut body = json_body("dev-a", &[snapshot("m@1", T + 60, 10)]);
    body["resourceMetrics"][0]["scopeMetrics"][0]["metrics"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "system.cpu.time", "sum": {"dataPoints": [{"asInt": "4"}]}}));
    let reply = send(&app, post_json(body.to_string())).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let partial = &reply.json()["partialSuccess"];
    assert_eq!(partial["rejectedDataPoints"], "1");
    assert!(partial["errorMessage"].as_str().unwrap().contains("system.cpu.time"));
    assert_eq!(drift(&app, Some("dev-a")).await.len(), 1);
}

#[tokio::test]
async fn the_logs_guards_apply_token_and_origin() {
    let config = Config { token: Some("s3cret".into()), ..Config::default() };
    let app = app(memory_state(config));
    let body = json_body("dev-a", &[snapshot("m@1", T + 60, 10)]).to_string();
    let reply = send(&app, post_json(body.clone())).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let cross = Request::post("/v1/metrics")
        .header("content-type", "application/json")
        .header("authorization", "Bearer s3cret")
        .header("host", "127.0.0.1:8080")
        .header("origin", "http://evil.example")
        .body(Body::from(body.clone()))
        .unwrap();
    assert_eq!(send(&app, cross).await.status, StatusCode::FORBIDDEN);
    let mut request = metrics_device_request("dev-a", &[snapshot("m@1", T + 60, 10)]);
    request.headers.push(("authorization".into(), "Bearer s3cret".into()));
    assert_eq!(send(&app, to_axum(request)).await.status, StatusCode::OK);
    // /api/drift is protected like the rest of /api.
    let reply = send(&app, Request::get("/api/drift").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let rows = get_json_with_token(&app, "/api/drift", Some("s3cret")).await;
    assert_eq!(rows.as_array().unwrap().len(), 1);
}
