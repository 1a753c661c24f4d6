//! What the device's encoder sends, fed straight into the collector: every field the device
//! writes is read back as the device meant it, through the device's own headers (gzip,
//! idempotency key) and batch cutting.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use collector::otlp;
use collector::{app, Config};
use common::client::{self, device_request, to_axum};
use common::*;
use edge_anomaly::outbox::SyncConfig;
use serde_json::json;

fn sync_config() -> SyncConfig {
    SyncConfig::new("http://127.0.0.1:8080", client::SERVICE_VERSION)
}

#[test]
fn the_parser_reads_every_field_the_encoder_writes() {
    let records = vec![
        client::scored(0),
        client::scored(5),
        client::unscored(
            6,
            vec![1.5, f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.25],
            "NOT_LOADED",
        ),
        client::unscored(7, vec![], "INFERENCE"),
    ];
    let body = client::body("dev-w", &records).to_string();
    let batch = otlp::parse(body.as_bytes()).unwrap();
    assert!(batch.rejected.is_empty());
    assert_eq!(batch.records.len(), 4);
    for (sent, got) in records.iter().zip(&batch.records) {
        assert_eq!(got.record_id, format!("dev-w:{}", sent.seq));
        assert_eq!(got.device_id.as_deref(), Some("dev-w"));
        assert_eq!(got.seq, Some(sent.seq as i64));
        assert_eq!(got.time_unix_nano, Some(sent.timestamp_ms as i64 * 1_000_000));
        assert_eq!(got.latency_us, Some(sent.latency_us as f64));
        assert_eq!(got.model_version, sent.model_version);
        assert_eq!(got.scored, sent.is_scored());
        assert_eq!(got.anomaly, Some(sent.is_anomaly()));
        assert_eq!(got.service_version.as_deref(), Some(client::SERVICE_VERSION));
        match &sent.result {
            edge_anomaly::outbox::Scoring::Scored { score, .. } => {
                // Written as the shortest decimal that reads back as the same f32.
                assert_eq!(got.score.map(|s| s as f32), Some(*score));
                assert_eq!(got.reading, None);
            }
            edge_anomaly::outbox::Scoring::Unscored { reading, reason } => {
                assert_eq!(got.score, None);
                let got_reading = got.reading.clone().unwrap();
                assert_eq!(got_reading.len(), reading.len());
                for (a, b) in reading.iter().zip(&got_reading) {
                    assert!(*a == *b as f32 || (a.is_nan() && b.is_nan()), "{a} vs {b}");
                }
                assert_eq!(got.attrs["edge.unscored_reason"], json!(reason));
            }
        }
    }
}

#[tokio::test]
async fn device_requests_are_stored_as_sent() {
    let app = app(memory_state(Config::default()));
    // Gzipped (the body is over the gzip threshold), with the device's idempotency key.
    let records: Vec<_> = (0..40).map(client::scored).collect();
    let (request, taken) = device_request("dev-d", records, &sync_config());
    assert_eq!(taken, 40);
    assert_eq!(request.header("content-encoding"), Some("gzip"));
    let key = request.header("idempotency-key").unwrap().to_owned();
    let reply = send(&app, to_axum(request.clone())).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json(), json!({}));
    // The device's retry of the same batch is a replay.
    let replay = send(&app, to_axum(request)).await;
    assert_eq!(replay.headers["idempotent-replayed"], "true", "key {key}");

    // Unscored readings with non-finite values are stored, the values kept.
    let raw = vec![client::unscored(40, vec![f32::NAN, 2.0, f32::NEG_INFINITY], "NON_FINITE")];
    let (request, _) = device_request("dev-d", raw, &sync_config());
    assert_eq!(send(&app, to_axum(request)).await.status, StatusCode::OK);
    let page = get_json(&app, "/api/records?limit=1").await;
    assert_eq!(page["records"][0]["reading"], json!(["NaN", 2.0, "-Infinity"]));
    assert_eq!(page["records"][0]["scored"], false);

    let stats = get_json(&app, "/api/stats").await;
    assert_eq!(stats["records"], 41);
    assert_eq!(stats["missing_seqs"], 0);
    assert_eq!(stats["anomalies"], 8);
}

#[tokio::test]
async fn a_partial_batch_cut_at_the_byte_cap_is_stored_and_the_rest_follows() {
    let app = app(memory_state(Config::default()));
    let config = SyncConfig { max_batch_bytes: 2_000, ..sync_config() };
    let mut queue: Vec<_> = (0..30).map(client::scored).collect();
    let mut batches = 0;
    while !queue.is_empty() {
        let (request, taken) = device_request("dev-p", queue.clone(), &config);
        assert!(taken < 30, "the byte cap cuts the batch");
        assert_eq!(send(&app, to_axum(request)).await.status, StatusCode::OK);
        queue.drain(..taken);
        batches += 1;
    }
    assert!(batches > 1);
    let device = &get_json(&app, "/api/devices").await["devices"][0];
    assert_eq!((device["count"].as_i64(), device["missing"].as_i64()), (Some(30), Some(0)));
}

#[tokio::test]
async fn a_non_finite_score_from_the_device_is_refused_alone() {
    let app = app(memory_state(Config::default()));
    let records = vec![client::scored(0), client::rescored(1, f32::NAN), client::scored(2)];
    let (request, _) = device_request("dev-n", records, &sync_config());
    let reply = send(&app, to_axum(request)).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json()["partialSuccess"]["rejectedLogRecords"], "1");
    assert_eq!(get_json(&app, "/api/stats").await["records"], 2);
}

#[tokio::test]
async fn gaps_the_device_reports_as_evictions_are_told_from_losses() {
    use edge_anomaly::outbox::otlp::encode;
    let app = app(memory_state(Config::default()));
    // Device "full" evicted seqs 2..=4 (its queue was full) and says so on every batch; device
    // "lossy" has the same gap and says nothing: that one is a loss.
    for (device, evicted) in [("full", 3), ("lossy", 0)] {
        let mut origin = client::origin(device);
        origin.losses.evicted = evicted;
        origin.losses.dropped.insert("STORE_QUOTA".into(), 2);
        let records: Vec<_> = [0, 1, 5, 6].into_iter().map(client::scored).collect();
        let body = encode(&records, &origin).unwrap();
        assert_eq!(send(&app, post_logs(body, &[])).await.status, StatusCode::OK);
    }
    let devices = get_json(&app, "/api/devices").await;
    let of = |id: &str| {
        let d =
            devices["devices"].as_array().unwrap().iter().find(|d| d["device_id"] == id).unwrap();
        (
            d["missing"].as_i64(),
            d["reported_evicted"].as_i64(),
            d["unexplained_missing"].as_i64(),
            d["reported_dropped"].as_i64(),
        )
    };
    assert_eq!(of("full"), (Some(3), Some(3), Some(0), Some(2)));
    assert_eq!(of("lossy"), (Some(3), Some(0), Some(3), Some(2)));
    let stats = get_json(&app, "/api/stats").await;
    assert_eq!(
        (stats["missing_seqs"].as_i64(), stats["unexplained_missing_seqs"].as_i64()),
        (Some(6), Some(3))
    );
}
