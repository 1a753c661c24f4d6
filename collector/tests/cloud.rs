//! Cloud scoring end to end in one process: readings a device sent unscored wait until a signed
//! release is published, then the collector scores them with the devices' own engine, stores the
//! scores beside (not over) what the device sent, counts them, and gives up typed on readings no
//! release can score. Also the fleet queries' pagination.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed expectation is the test failure"
)]

mod common;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use collector::cloud::{self, CloudModels};
use collector::releases::{publish, trusted_keys};
use collector::{Config, Store};
use common::client::{body, scored, unscored};
use common::{get_json, memory_state, post_logs, send};
use serde_json::Value;

fn get(path: &str) -> axum::http::Request<axum::body::Body> {
    axum::http::Request::get(path).body(axum::body::Body::empty()).unwrap()
}

async fn get_text(app: &axum::Router, path: &str) -> String {
    let reply = send(app, get(path)).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    reply.text
}

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/shuttle")
}

fn golden() -> Value {
    serde_json::from_slice(&std::fs::read(shipped().join("golden.json")).unwrap()).unwrap()
}

fn threshold() -> f64 {
    let meta: Value =
        serde_json::from_slice(&std::fs::read(shipped().join("metadata.json")).unwrap()).unwrap();
    meta["threshold"].as_f64().unwrap()
}

fn version() -> String {
    let meta: Value =
        serde_json::from_slice(&std::fs::read(shipped().join("metadata.json")).unwrap()).unwrap();
    meta["version"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn unscored_readings_are_scored_in_the_cloud_once_a_release_is_published() {
    let releases = tempfile::tempdir().unwrap();
    let config = Config { releases_dir: Some(releases.path().to_owned()), ..Config::default() };
    let state = memory_state(config);
    let app = collector::app(state.clone());
    let golden = golden();
    let rows: Vec<Vec<f32>> = golden["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect())
        .collect();
    let expected: Vec<f64> = golden["scores"]["int8_weight_only"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let mut records: Vec<_> =
        rows.iter().enumerate().map(|(i, r)| unscored(i as u64, r.clone(), "NOT_LOADED")).collect();
    let n = rows.len() as u64;
    let mut nan_row = rows[0].clone();
    nan_row[3] = f32::NAN;
    records.push(unscored(n, nan_row, "NON_FINITE"));
    records.push(unscored(n + 1, vec![1.0, 2.0, 3.0], "NOT_LOADED"));
    records.push(scored(n + 2));
    let request = body("dev-a", &records).to_string();
    assert_eq!(send(&app, post_logs(request.clone(), &[])).await.status, 200);

    // No release yet: nothing can score them, they wait.
    let models = CloudModels::new(releases.path().to_owned(), trusted_keys(&[]).unwrap());
    let models = Arc::new(Mutex::new(models));
    assert_eq!(cloud::run_once(&state, &models).await.unwrap(), 0);
    let stats = get_json(&app, "/api/stats").await;
    assert_eq!(stats["unscored"], n + 2);
    assert_eq!(stats["unscored_pending"], n + 2);
    assert_eq!(stats["cloud_scored"], 0);

    publish(&shipped(), releases.path(), &trusted_keys(&[]).unwrap()).unwrap();
    assert_eq!(cloud::run_once(&state, &models).await.unwrap(), n as usize + 2);
    let stats = get_json(&app, "/api/stats").await;
    assert_eq!(stats["cloud_scored"], n);
    assert_eq!(stats["cloud_failed"], 2);
    assert_eq!(stats["unscored_pending"], 0);
    let flagged = expected.iter().filter(|&&s| s > threshold()).count();
    assert_eq!(stats["cloud_anomalies"], flagged as u64);
    assert!(flagged > 0 && flagged < expected.len(), "the golden rows hold both kinds");

    // The scores are the engine's on the signed golden rows; the device's columns are as sent.
    let series = get_json(&app, "/api/devices/dev-a/series?limit=1000").await;
    let points = series["points"].as_array().unwrap();
    assert_eq!(points.len(), records.len());
    for p in points {
        let seq = p["seq"].as_u64().unwrap();
        match seq {
            s if s < n => {
                assert_eq!(p["scored_by"], "cloud");
                assert_eq!(p["model_version"], version());
                let (got, want) = (p["score"].as_f64().unwrap(), expected[s as usize]);
                assert!((got - want).abs() <= 1e-3 * want.abs() + 1e-5, "row {s}: {got} vs {want}");
                assert_eq!(p["anomaly"], want > threshold(), "row {s}");
            }
            s if s == n + 2 => assert_eq!(p["scored_by"], "device"),
            _ => assert_eq!(p["scored_by"], "none"),
        }
    }
    let page = get_json(&app, "/api/records?limit=1000").await;
    for r in page["records"].as_array().unwrap() {
        if r["seq"].as_u64().unwrap() < n {
            assert_eq!(r["scored"], false, "the device's own claim is kept");
            assert!(r["score"].is_null());
        }
    }
    let device = &get_json(&app, "/api/fleet").await["devices"][0];
    assert_eq!(device["cloud_scored"], n);
    assert_eq!(device["cloud_failed"], 2);
    assert_eq!(device["unscored"], n + 2);

    // The export holds the readings with a verdict, in the pipeline's CSV: the NaN reading and
    // the one of another width are left out, the scored record sent no reading.
    let csv = get_text(&app, "/api/export.csv").await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "f1,f2,f3,f4,f5,f6,f7,f8,f9,anomaly");
    assert_eq!(lines.len() - 1, rows.len());
    assert_eq!(lines.iter().filter(|l| l.ends_with(",1")).count(), flagged);
    let first: Vec<f64> = lines[1].split(',').map(|v| v.parse().unwrap()).collect();
    assert_eq!(first[..9], rows[0].iter().map(|&v| f64::from(v)).collect::<Vec<_>>()[..]);
    let normal = get_text(&app, "/api/export.csv?normal_only=true").await;
    assert_eq!(normal.lines().count() - 1, rows.len() - flagged);
    assert!(normal.lines().skip(1).all(|l| l.ends_with(",0")));
    let other = get_text(&app, "/api/export.csv?device=nobody").await;
    assert_eq!(other.lines().count(), 1, "{other}");
    let by_version =
        get_text(&app, &format!("/api/export.csv?model_version={}", version().replace('+', "%2B")))
            .await;
    assert_eq!(by_version, csv);
    let bad = send(&app, get("/api/export.csv?from_ms=5&to_ms=5")).await;
    assert_eq!(bad.status, 400);

    // Nothing is scored twice, and the device re-driving the batch is a duplicate, not a
    // conflict: the cloud's columns are not part of what the device sent.
    assert_eq!(cloud::run_once(&state, &models).await.unwrap(), 0);
    let reply = send(&app, post_logs(request, &[])).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(!reply.text.contains("rejected"), "{}", reply.text);
    let stats = get_json(&app, "/api/stats").await;
    assert_eq!(stats["duplicates_ignored"], records.len() as u64);
    assert_eq!(stats["conflicts"], 0);
    assert_eq!(stats["cloud_scored"], n);
}

#[test]
fn results_written_twice_are_stored_and_counted_once() {
    use collector::store::{CloudOutcome, CloudResult};
    let store = Store::open_in_memory().unwrap();
    let batch = collector::otlp::parse(
        body("dev-b", &[unscored(0, vec![0.0; 9], "NOT_LOADED")]).to_string().as_bytes(),
    )
    .unwrap();
    store.ingest(None, &batch, 1).unwrap();
    let result = CloudResult {
        record_id: "dev-b:0".into(),
        outcome: CloudOutcome::Scored { score: 0.5, anomaly: true, model_version: "1.0.0".into() },
    };
    // Two collectors scoring the same record: the second write changes nothing.
    assert_eq!(store.record_cloud_results(std::slice::from_ref(&result), 2).unwrap(), 1);
    assert_eq!(store.record_cloud_results(&[result], 3).unwrap(), 0);
    let stats = store.stats().unwrap();
    assert_eq!((stats.cloud_scored, stats.cloud_anomalies), (1, 1));
    assert!(store.cloud_pending(10).unwrap().is_empty());
}

#[tokio::test]
async fn the_fleet_and_a_device_series_page_without_overlap() {
    let state = memory_state(Config::default());
    let app = collector::app(state);
    for d in 0..5 {
        let records: Vec<_> = (0..7).map(scored).collect();
        let request = body(&format!("dev-{d}"), &records).to_string();
        assert_eq!(send(&app, post_logs(request, &[])).await.status, 200);
    }
    let mut seen = Vec::new();
    let mut path = "/api/fleet?limit=2".to_owned();
    loop {
        let page = get_json(&app, &path).await;
        let devices = page["devices"].as_array().unwrap();
        assert!(devices.len() <= 2);
        seen.extend(devices.iter().map(|d| d["device_id"].as_str().unwrap().to_owned()));
        match page["next_after"].as_str() {
            Some(after) => path = format!("/api/fleet?limit=2&after={after}"),
            None => break,
        }
    }
    assert_eq!(seen, ["dev-0", "dev-1", "dev-2", "dev-3", "dev-4"]);

    let mut seqs = Vec::new();
    let mut path = "/api/devices/dev-3/series?limit=3".to_owned();
    loop {
        let page = get_json(&app, &path).await;
        seqs.extend(page["points"].as_array().unwrap().iter().map(|p| p["seq"].as_i64().unwrap()));
        match page["next_before"].as_i64() {
            Some(before) => path = format!("/api/devices/dev-3/series?limit=3&before={before}"),
            None => break,
        }
    }
    assert_eq!(seqs, [6, 5, 4, 3, 2, 1, 0], "newest first, each record once");
    let bad = send(
        &app,
        axum::http::Request::get("/api/fleet?limit=0").body(axum::body::Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(bad.status, 400);
}
