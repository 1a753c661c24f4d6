//! `POST /v1/metrics` and `GET /api/drift`: the device's own export stored and read back, newest
//! snapshot wins, and every refusal (400, 401, 403, 413, 415) stores nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use collector::{app, Config};
use common::*;
use edge_anomaly::app::metrics_export::metrics_request;
use edge_anomaly::outbox::{HttpRequest, SyncConfig};
use edge_wire::drift::DriftSnapshot;
use serde_json::{json, Value};

const T: u64 = 1_700_000_000_000_000_000;

fn snapshot(version: &str, time: u64, count: u64) -> DriftSnapshot {
    // Many bins, as a real model's quantile edges: the body passes the gzip threshold.
    let bins = 40;
    let mut buckets = vec![0u64; bins + 1];
    buckets[bins / 2] = count;
    DriftSnapshot {
        model_version: version.into(),
        start_time_unix_nano: T,
        time_unix_nano: time,
        count,
        anomalies: count / 4,
        sum: count as f64 * 0.25,
        bounds: (0..bins).map(|i| i as f64 * 0.05).collect(),
        bucket_counts: buckets,
        expected_shares: vec![1.0 / (bins + 1) as f64; bins + 1],
        quantiles: vec![(0.5, 0.25), (0.9, 0.3)],
        psi: 0.12,
        expected_anomaly_rate: 0.05,
    }
}

/// The request the device's exporter builds.
fn device_request(device: &str, snapshots: &[DriftSnapshot]) -> HttpRequest {
    let config = SyncConfig::new("http://collector.test", "0.2.0");
    metrics_request(snapshots, device, &config).unwrap()
}

fn to_axum(request: HttpRequest) -> Request<Body> {
    let path = request.url.trim_start_matches("http://collector.test");
    let mut builder = Request::post(path);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    builder.body(Body::from(request.body)).unwrap()
}

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

#[tokio::test]
async fn the_devices_export_is_stored_and_read_back() {
    let app = app(memory_state(Config::default()));
    let sent = [snapshot("shuttle@1", T + 60, 400), snapshot("shuttle@2", T + 60, 80)];
    let request = device_request("dev-a", &sent);
    assert_eq!(request.header("content-encoding"), Some("gzip"), "a real-sized body is gzipped");
    let reply = send(&app, to_axum(request)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json(), json!({}));
    send(&app, to_axum(device_request("dev-b", &[snapshot("shuttle@1", T + 5, 7)]))).await;

    let rows = drift(&app, Some("dev-a")).await;
    assert_eq!(rows.len(), 2);
    for (row, s) in rows.iter().zip(&sent) {
        assert_eq!(row["device_id"], "dev-a");
        let stored: DriftSnapshot = serde_json::from_value(row.clone()).unwrap();
        assert_eq!(&stored, s);
        assert_eq!(row["anomaly_rate"], json!(0.25));
        assert!(row["received_at"].as_i64().unwrap() > 0);
    }
    let all = drift(&app, None).await;
    let keys: Vec<_> =
        all.iter().map(|r| (r["device_id"].clone(), r["model_version"].clone())).collect();
    assert_eq!(
        keys,
        [
            json!(["dev-a", "shuttle@1"]),
            json!(["dev-a", "shuttle@2"]),
            json!(["dev-b", "shuttle@1"])
        ]
        .map(|k| (k[0].clone(), k[1].clone()))
    );
}

#[tokio::test]
async fn a_stale_or_replayed_snapshot_does_not_overwrite_a_newer_one() {
    let app = app(memory_state(Config::default()));
    let newer = snapshot("m@1", T + 120, 500);
    let older = snapshot("m@1", T + 60, 300);
    for s in [&newer, &older, &newer] {
        let reply = send(&app, to_axum(device_request("dev-a", std::slice::from_ref(s)))).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    let rows = drift(&app, Some("dev-a")).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["count"], 500);
    assert_eq!(rows[0]["time_unix_nano"], T + 120);
    // A newer one replaces it.
    send(&app, to_axum(device_request("dev-a", &[snapshot("m@1", T + 180, 900)]))).await;
    assert_eq!(drift(&app, Some("dev-a")).await[0]["count"], 900);
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
    let mut request = device_request("dev-a", &[snapshot("m@1", T + 60, 10)]);
    request.headers.push(("authorization".into(), "Bearer s3cret".into()));
    assert_eq!(send(&app, to_axum(request)).await.status, StatusCode::OK);
    // /api/drift is protected like the rest of /api.
    let reply = send(&app, Request::get("/api/drift").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::UNAUTHORIZED);
    let rows = get_json_with_token(&app, "/api/drift", Some("s3cret")).await;
    assert_eq!(rows.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_fleet_shows_the_drift_of_each_devices_current_version() {
    let app = app(memory_state(Config::default()));
    // dev-a's records name shuttle-int8@1; its drift export covers that version and an old one.
    let reply = send(&app, post_logs(request("dev-a", 1..=3).to_string(), &[])).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    send(&app, post_logs(request("dev-b", 1..=2).to_string(), &[])).await;
    let mut current = snapshot("shuttle-int8@1", T + 60, 30);
    current.psi = 0.31;
    let old = snapshot("shuttle-int8@0", T + 60, 900);
    send(&app, to_axum(device_request("dev-a", &[old, current]))).await;

    let page = get_json(&app, "/api/fleet").await;
    let devices = page["devices"].as_array().unwrap();
    let a = devices.iter().find(|d| d["device_id"] == "dev-a").unwrap();
    assert_eq!((a["drift_psi"].clone(), a["drift_count"].clone()), (json!(0.31), json!(30)));
    assert_eq!(a["model_version"], "shuttle-int8@1");
    // dev-b never exported drift: no figure rather than a made-up 0.
    let b = devices.iter().find(|d| d["device_id"] == "dev-b").unwrap();
    assert_eq!(b["drift_psi"], Value::Null);
}
