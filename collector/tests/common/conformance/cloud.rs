//! Cloud scoring and the CSV export on any store: readings a device sent unscored wait until a
//! signed release is published, then are scored with the devices' own engine, stored beside
//! (not over) what the device sent, counted, and exported; readings no release can score are
//! given up typed.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::future::Future;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::Request;
use axum::Router;
use collector::cloud::{self, CloudModels};
use collector::releases::{publish, trusted_keys};
use collector::store::{CloudOutcome, CloudResult};
use collector::{AppState, Config};
use serde_json::Value;

use edge_anomaly::outbox::{Entry, Record};

use crate::common::client::{body, scored, timestamp_ms, unscored, MODEL_VERSION};
use crate::common::{get_json, post_logs, send};

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models/shuttle")
}

fn shipped_json(file: &str) -> Value {
    serde_json::from_slice(&std::fs::read(shipped().join(file)).unwrap()).unwrap()
}

async fn get_text(app: &Router, path: &str) -> String {
    let reply = send(app, Request::get(path).body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, 200, "{path}: {}", reply.text);
    reply.text
}

pub async fn scores_unscored_readings_in_the_cloud<F, Fut>(make: F)
where
    F: Fn(Config) -> Fut,
    Fut: Future<Output = AppState>,
{
    let releases = tempfile::tempdir().unwrap();
    let config = Config { releases_dir: Some(releases.path().to_owned()), ..Config::default() };
    let state = make(config).await;
    let app = collector::app(state.clone());
    let golden = shipped_json("golden.json");
    let meta = shipped_json("metadata.json");
    let (threshold, version) =
        (meta["threshold"].as_f64().unwrap(), meta["version"].as_str().unwrap().to_owned());
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
    // A device set to send readings with scores: exported under the device's own verdict.
    let entry = Entry::scored(timestamp_ms(n + 3), MODEL_VERSION, 0.01, false, 90);
    records.push(Record::new(n + 3, entry.with_reading(&rows[1])));
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
    let flagged = expected.iter().filter(|&&s| s > threshold).count();
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
                assert_eq!(p["model_version"], version);
                let (got, want) = (p["score"].as_f64().unwrap(), expected[s as usize]);
                assert!((got - want).abs() <= 1e-3 * want.abs() + 1e-5, "row {s}: {got} vs {want}");
                assert_eq!(p["anomaly"], want > threshold, "row {s}");
            }
            s if s >= n + 2 => assert_eq!(p["scored_by"], "device"),
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
    // the one of another width are left out, one scored record sent no reading, the other did.
    let csv = get_text(&app, "/api/export.csv").await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "f1,f2,f3,f4,f5,f6,f7,f8,f9,anomaly");
    assert_eq!(lines.len() - 1, rows.len() + 1);
    assert_eq!(lines.last().unwrap().split(',').count(), 10);
    assert_eq!(lines.iter().filter(|l| l.ends_with(",1")).count(), flagged);
    let first: Vec<f64> = lines[1].split(',').map(|v| v.parse().unwrap()).collect();
    assert_eq!(first[..9], rows[0].iter().map(|&v| f64::from(v)).collect::<Vec<_>>()[..]);
    let normal = get_text(&app, "/api/export.csv?normal_only=true").await;
    assert_eq!(normal.lines().count() - 1, rows.len() - flagged + 1);
    assert!(normal.lines().skip(1).all(|l| l.ends_with(",0")));
    let other = get_text(&app, "/api/export.csv?device=nobody").await;
    assert_eq!(other.lines().count(), 1, "{other}");
    let by_version =
        get_text(&app, &format!("/api/export.csv?model_version={}", version.replace('+', "%2B")))
            .await;
    assert_eq!(by_version.lines().count(), lines.len() - 1, "the device-judged row is not");
    let device_judged =
        get_text(&app, &format!("/api/export.csv?model_version={MODEL_VERSION}")).await;
    assert_eq!(device_judged.lines().count(), 2, "{device_judged}");
    let after_all = get_text(&app, "/api/export.csv?from_ms=1800000000000").await;
    assert_eq!(after_all.lines().count(), 1, "{after_all}");
    for bad in ["/api/export.csv?from_ms=5&to_ms=5", "/api/export.csv?to_ms=9223372036854775"] {
        let reply = send(&app, Request::get(bad).body(Body::empty()).unwrap()).await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text);
    }

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

pub async fn stores_a_cloud_result_once<F, Fut>(make: F)
where
    F: Fn(Config) -> Fut,
    Fut: Future<Output = AppState>,
{
    let state = make(Config::default()).await;
    let app = collector::app(state.clone());
    let records =
        [unscored(0, vec![0.0; 9], "NOT_LOADED"), unscored(1, vec![1.0; 9], "NOT_LOADED")];
    assert_eq!(send(&app, post_logs(body("dev-b", &records).to_string(), &[])).await.status, 200);
    let pending = state.store(|s| s.cloud_pending(10)).await.unwrap();
    assert_eq!(
        pending.iter().map(|p| p.record_id.as_str()).collect::<Vec<_>>(),
        ["dev-b:0", "dev-b:1"]
    );
    assert_eq!(pending[1].reading, vec![1.0; 9]);
    let scored = CloudResult {
        record_id: "dev-b:0".into(),
        outcome: CloudOutcome::Scored { score: 0.5, anomaly: true, model_version: "1.0.0".into() },
    };
    let failed = CloudResult {
        record_id: "dev-b:1".into(),
        outcome: CloudOutcome::Failed { reason: "ENGINE".into(), model_version: None },
    };
    // Two collectors scoring the same records: the second write changes nothing, even when it
    // disagrees with the first.
    let first = vec![scored.clone(), failed.clone()];
    assert_eq!(state.store(move |s| s.record_cloud_results(&first, 2)).await.unwrap(), 2);
    let other = CloudResult {
        outcome: CloudOutcome::Scored { score: 0.1, anomaly: false, model_version: "2.0.0".into() },
        ..failed
    };
    let second = vec![scored, other];
    assert_eq!(state.store(move |s| s.record_cloud_results(&second, 3)).await.unwrap(), 0);
    let stats = get_json(&app, "/api/stats").await;
    assert_eq!(
        [&stats["cloud_scored"], &stats["cloud_anomalies"], &stats["cloud_failed"]],
        [1, 1, 1],
        "{stats}"
    );
    assert!(state.store(|s| s.cloud_pending(10)).await.unwrap().is_empty());
    let series = get_json(&app, "/api/devices/dev-b/series").await;
    let points = series["points"].as_array().unwrap();
    assert_eq!(
        (points[1]["score"].clone(), points[1]["scored_by"].clone()),
        (0.5.into(), "cloud".into())
    );
    assert_eq!(points[0]["scored_by"], "none", "a failed reading has no score: {series}");
}
