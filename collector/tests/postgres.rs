//! The PostgreSQL store: the shared behaviour suite on both stores, schema versioning, a lost
//! connection, and several real collector processes on one database (the same batch at once,
//! overlapping batches at once, a collector killed mid-stream).
//!
//! One throwaway cluster serves the whole file (`common::pg`); each test gets its own database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use axum::Router;
use collector::pg::PgError;
use collector::{app, AppState, Config, PgStore};
use common::pg::cluster;
use common::process::CollectorProcess;
use common::*;
use serde_json::{json, Value};

/// A fresh database's URL (starting the cluster on first use, off the async workers).
async fn database() -> String {
    tokio::task::spawn_blocking(|| cluster().fresh_database()).await.unwrap()
}

/// A PostgreSQL store over `url`, opened off the async workers.
async fn open(url: &str) -> PgStore {
    let url = url.to_owned();
    tokio::task::spawn_blocking(move || PgStore::open(&url)).await.unwrap().unwrap()
}

async fn postgres_state(config: Config) -> AppState {
    AppState::new(open(&database().await).await, config)
}

async fn postgres_app() -> Router {
    app(postgres_state(Config::default()).await)
}

async fn sqlite_state(config: Config) -> AppState {
    memory_state(config)
}

mod sqlite_suite {
    use super::*;
    conformance_suite!(sqlite_state);
}

mod postgres_suite {
    use super::*;
    conformance_suite!(postgres_state);
}

#[test]
fn a_database_of_another_version_or_another_application_is_refused() {
    let url = cluster().fresh_database();
    drop(PgStore::open(&url).unwrap());
    let name = url.rsplit('/').next().unwrap();
    cluster().psql(name, "UPDATE edge_schema SET version = 99");
    let Err(err) = PgStore::open(&url) else { panic!("refused") };
    assert!(
        matches!(err, PgError::Schema { found: 99, expected: collector::pg::VERSION }),
        "{err}"
    );
    assert!(!err.is_transient());

    let url = cluster().fresh_database();
    cluster().psql(url.rsplit('/').next().unwrap(), "CREATE TABLE records (x int)");
    let Err(err) = PgStore::open(&url) else { panic!("refused") };
    assert!(matches!(&err, PgError::Foreign(t) if t == "records"), "{err}");
}

/// A database holding `device`'s seqs 0 to 4, then made by the `downgrade` SQL what an older
/// collector left; the app over it, opened (and so upgraded) by this collector.
async fn upgraded(device: &str, downgrade: &str) -> Router {
    let url = cluster().fresh_database();
    let name = url.rsplit('/').next().unwrap().to_owned();
    let store = open(&url).await;
    let batch = collector::otlp::parse(request(device, 0..=4).to_string().as_bytes()).unwrap();
    tokio::task::spawn_blocking(move || store.ingest(None, &batch, 1).map(drop))
        .await
        .unwrap()
        .unwrap();
    cluster().psql(&name, downgrade);
    let app = app(AppState::new(open(&url).await, Config::default()));
    let version = cluster().psql(&name, "SELECT version FROM edge_schema");
    assert_eq!(version, collector::pg::VERSION.to_string());
    app
}

#[tokio::test]
async fn a_version_1_database_is_upgraded_in_place_and_keeps_its_records() {
    // What a version-1 collector created: no drift table, no fleet index, no contributions.
    let app = upgraded(
        "dev-v1",
        "DROP TABLE drift; DROP INDEX devices_by_id;
         ALTER TABLE records DROP COLUMN contributions_json; UPDATE edge_schema SET version = 1",
    )
    .await;
    assert_eq!(get_json(&app, "/api/stats").await["records"], 5, "records kept");
    assert_eq!(get_json(&app, "/api/drift").await, serde_json::json!([]), "drift table exists");
    assert_eq!(get_json(&app, "/api/fleet").await["devices"][0]["device_id"], "dev-v1");
}

#[tokio::test]
async fn a_version_2_database_is_upgraded_in_place_and_keeps_its_records() {
    // What a version-2 collector created: no contributions column.
    let app = upgraded(
        "dev-v2",
        "ALTER TABLE records DROP COLUMN contributions_json; UPDATE edge_schema SET version = 2",
    )
    .await;
    let page = get_json(&app, "/api/records?device=dev-v2").await;
    let records = page["records"].as_array().unwrap();
    assert_eq!(records.len(), 5, "records kept");
    assert!(records.iter().all(|r| r["contributions"].is_null()), "{page}");

    let mut attrs = scored_attrs("dev-v2", 5);
    attrs.extend(contributions(&["f2"], &[json!(0.9)]));
    let reply = send(&app, post_logs(request_with("dev-v2", vec![attrs]).to_string(), &[])).await;
    assert_eq!((reply.status, reply.text.as_str()), (StatusCode::OK, "{}"));
    let newest = &get_json(&app, "/api/records?limit=1").await["records"][0];
    assert_eq!(newest["contributions"], json!([{"channel": "f2", "share": 0.9}]));
}

#[test]
fn collectors_starting_together_create_the_schema_once() {
    let url = cluster().fresh_database();
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            std::thread::spawn(move || PgStore::open(&url).map(drop))
        })
        .collect();
    for open in opens {
        open.join().unwrap().unwrap();
    }
    let name = url.rsplit('/').next().unwrap();
    assert_eq!(cluster().psql(name, "SELECT count(*) FROM edge_schema"), "1");
}

#[tokio::test]
async fn a_lost_connection_is_503_stores_nothing_and_the_retry_is_stored() {
    let url = database().await;
    let app = app(AppState::new(open(&url).await, Config::default()));
    let name = url.rsplit('/').next().unwrap().to_owned();
    tokio::task::spawn_blocking(move || {
        cluster().psql(
            "postgres",
            &format!(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                 WHERE datname = '{name}'"
            ),
        )
    })
    .await
    .unwrap();
    let body = request("dev-a", 0..5).to_string();
    let first = send(&app, post_logs(body.clone(), &[("idempotency-key", "k")])).await;
    assert_eq!(first.status, StatusCode::SERVICE_UNAVAILABLE, "{}", first.text);
    assert_eq!(first.headers["retry-after"], "2");
    // The pool drops each broken connection; a retry soon gets a new one.
    let mut retry = send(&app, post_logs(body.clone(), &[("idempotency-key", "k")])).await;
    for _ in 0..10 {
        if retry.status == StatusCode::OK {
            break;
        }
        retry = send(&app, post_logs(body.clone(), &[("idempotency-key", "k")])).await;
    }
    assert_eq!(retry.status, StatusCode::OK, "{}", retry.text);
    assert!(retry.headers.get("idempotent-replayed").is_none(), "the failed try stored nothing");
    let stats = get_json(&app, "/api/stats").await;
    assert_eq!([&stats["records"], &stats["batches"]], [5, 1]);
}

/// Two collector processes on one fresh database.
async fn two_collectors() -> (CollectorProcess, CollectorProcess) {
    let url = database().await;
    tokio::task::spawn_blocking(move || {
        let start = || {
            CollectorProcess::start(
                env!("CARGO_BIN_EXE_collector").as_ref(),
                &["--database-url", &url, "--no-cloud-scoring"],
            )
        };
        (start(), start())
    })
    .await
    .unwrap()
}

struct Answer {
    status: u16,
    replayed: bool,
    text: String,
}

/// Builds the request now, so the future borrows nothing (callers pass temporaries).
fn post(
    http: &reqwest::Client,
    base: &str,
    body: &str,
    key: &str,
) -> impl std::future::Future<Output = Answer> {
    let request = http
        .post(format!("{base}/v1/logs"))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(body.to_owned())
        .send();
    async move {
        let response = request.await.unwrap();
        let status = response.status().as_u16();
        let replayed = response.headers().contains_key("idempotent-replayed");
        Answer { status, replayed, text: response.text().await.unwrap() }
    }
}

async fn stats(http: &reqwest::Client, base: &str) -> Value {
    http.get(format!("{base}/api/stats"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_batch_sent_to_two_collectors_at_once_is_stored_once() {
    let (a, b) = two_collectors().await;
    let http = client();
    let rounds = 40;
    for round in 0..rounds {
        // Ten records, one with a NaN score: the stored answer is a partialSuccess.
        let mut records: Vec<_> = (0..10).map(|i| scored_attrs("dev-s", round * 10 + i)).collect();
        records[3][2] = kv("edge.score", json!({"doubleValue": "NaN"}));
        let body = request_with("dev-s", records).to_string();
        let key = format!("batch-{round}");
        let (x, y) =
            tokio::join!(post(&http, &a.base(), &body, &key), post(&http, &b.base(), &body, &key));
        assert_eq!((x.status, y.status), (200, 200), "{} / {}", x.text, y.text);
        assert_eq!(x.text, y.text, "both collectors answer the same");
        assert!(x.text.contains("partialSuccess"), "{}", x.text);
        assert_ne!(x.replayed, y.replayed, "exactly one stored it, the other replayed");
    }
    let stats = stats(&http, &b.base()).await;
    assert_eq!(stats["records"], rounds * 9, "{stats}");
    assert_eq!([&stats["batches"], &stats["idempotent_replays"]], [rounds, rounds], "{stats}");
    assert_eq!([&stats["duplicates_ignored"], &stats["conflicts"]], [0, 0], "{stats}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn overlapping_batches_at_two_collectors_store_each_record_once() {
    let (a, b) = two_collectors().await;
    let http = client();
    let rounds = 30;
    for round in 0..rounds {
        // Records base..base+20 at one, base+10..base+30 at the other, under their own keys.
        let base = round * 30;
        let left = request("dev-o", base..base + 20).to_string();
        let right = request("dev-o", base + 10..base + 30).to_string();
        let (x, y) = tokio::join!(
            post(&http, &a.base(), &left, &format!("l-{round}")),
            post(&http, &b.base(), &right, &format!("r-{round}"))
        );
        assert_eq!((x.status, y.status), (200, 200), "{} / {}", x.text, y.text);
        assert_eq!((x.text.as_str(), y.text.as_str()), ("{}", "{}"));
        // The same ten ids with other content at each: one collector's version wins.
        let ids = base..base + 10;
        let low = client::body(
            "dev-c",
            &ids.clone().map(|s| client::rescored(s as u64, 0.1)).collect::<Vec<_>>(),
        );
        let high = client::body(
            "dev-c",
            &ids.map(|s| client::rescored(s as u64, 0.9)).collect::<Vec<_>>(),
        );
        let (x, y) = tokio::join!(
            post(&http, &a.base(), &low.to_string(), &format!("cl-{round}")),
            post(&http, &b.base(), &high.to_string(), &format!("ch-{round}"))
        );
        assert_eq!((x.status, y.status), (200, 200), "{} / {}", x.text, y.text);
        let refused =
            [&x, &y].iter().filter(|r| r.text.contains("\"rejectedLogRecords\":\"10\"")).count();
        assert_eq!(refused, 1, "one of them was refused whole: {} / {}", x.text, y.text);
    }
    let stats = stats(&http, &a.base()).await;
    assert_eq!(stats["records"], rounds * 30 + rounds * 10, "{stats}");
    assert_eq!(stats["duplicates_ignored"], rounds * 10, "{stats}");
    assert_eq!(stats["conflicts"], rounds * 10, "{stats}");
    // dev-o's seqs are contiguous; dev-c sends 10 of every 30, so 20 are missing between rounds.
    assert_eq!(stats["missing_seqs"], (rounds - 1) * 20, "every seq counted once: {stats}");
    let devices: Value = http
        .get(format!("{}/api/devices", b.base()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .parse()
        .unwrap();
    let dev = devices["devices"].as_array().unwrap().iter().find(|d| d["device_id"] == "dev-o");
    let dev = dev.unwrap();
    assert_eq!([&dev["count"], &dev["missing"], &dev["duplicates"]], [rounds * 30, 0, rounds * 10]);
}

/// One client stream: consecutive batches of 100 records of its own device.
async fn stream(http: reqwest::Client, base: String, device: String) -> (Vec<i64>, Option<i64>) {
    let mut acked = Vec::new();
    for batch in 0i64.. {
        let seqs = batch * 100..batch * 100 + 100;
        let body = request(&device, seqs).to_string();
        let sent = http
            .post(format!("{base}/v1/logs"))
            .header("content-type", "application/json")
            .header("idempotency-key", format!("{device}-{batch}"))
            .body(body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == StatusCode::OK => acked.push(batch),
            // The collector died: this batch's fate is unknown to the device.
            _ => return (acked, Some(batch)),
        }
    }
    unreachable!()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_collector_killed_mid_stream_loses_nothing_it_acknowledged() {
    let (mut a, b) = two_collectors().await;
    let http = client();
    let devices: Vec<String> = (0..4).map(|i| format!("dev-k{i}")).collect();
    let streams: Vec<_> =
        devices.iter().map(|d| tokio::spawn(stream(http.clone(), a.base(), d.clone()))).collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.kill();
    let mut outcomes = Vec::new();
    for s in streams {
        outcomes.push(s.await.unwrap());
    }
    let devices_now: Value = http
        .get(format!("{}/api/devices", b.base()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .parse()
        .unwrap();
    let mut total_acked = 0;
    for (device, (acked, unknown)) in devices.iter().zip(&outcomes) {
        assert!(acked.len() >= 2, "{device}: the stream ran ({} batches)", acked.len());
        total_acked += acked.len() as i64 * 100;
        let unknown = unknown.unwrap();
        let summary =
            devices_now["devices"].as_array().unwrap().iter().find(|d| &d["device_id"] == device);
        let count = summary.map_or(0, |d| d["count"].as_i64().unwrap());
        // Every acknowledged batch is there; the one in flight is there whole or not at all.
        let in_flight_stored = count - acked.len() as i64 * 100;
        assert!(in_flight_stored == 0 || in_flight_stored == 100, "{device}: {count} records");
        let gaps: Value = http
            .get(format!("{}/api/devices/{device}/gaps", b.base()))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
            .parse()
            .unwrap();
        let acked: HashSet<i64> = acked.iter().copied().collect();
        for gap in gaps["gaps"].as_array().unwrap() {
            for seq in gap["from"].as_i64().unwrap()..=gap["to"].as_i64().unwrap() {
                assert!(!acked.contains(&(seq / 100)), "{device}: acknowledged seq {seq} missing");
            }
        }
        // The device re-sends the batch it got no answer for, to the other collector.
        let body = request(device, unknown * 100..unknown * 100 + 100).to_string();
        let redo = post(&http, &b.base(), &body, &format!("{device}-{unknown}")).await;
        assert_eq!(redo.status, 200, "{}", redo.text);
        assert_eq!(redo.replayed, in_flight_stored == 100, "stored before the kill: replayed");
    }
    let stats = stats(&http, &b.base()).await;
    assert_eq!(stats["records"], total_acked + 4 * 100, "{stats}");
    assert_eq!(stats["missing_seqs"], 0, "{stats}");
    assert_eq!(stats["duplicates_ignored"], 0, "{stats}");
}

#[tokio::test]
async fn the_pool_answers_many_concurrent_requests() {
    let app = postgres_app().await;
    let started = Instant::now();
    let sends: Vec<_> = (0..16)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                send(&app, post_logs(request(&format!("dev-p{i}"), 0..100).to_string(), &[])).await
            })
        })
        .collect();
    for s in sends {
        let reply = s.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    let stats = get_json(&app, "/api/stats").await;
    assert_eq!([&stats["records"], &stats["unique_devices"], &stats["batches"]], [1600, 16, 16]);
}

#[test]
fn two_collectors_scoring_the_same_records_store_each_result_once() {
    use collector::store::{CloudOutcome, CloudResult};
    use common::client::{body, unscored};

    let url = cluster().fresh_database();
    let (a, b) = (PgStore::open(&url).unwrap(), PgStore::open(&url).unwrap());
    let records: Vec<_> = (0..300).map(|s| unscored(s, vec![s as f32; 9], "NOT_LOADED")).collect();
    let batch = collector::otlp::parse(body("dev-c", &records).to_string().as_bytes()).unwrap();
    a.ingest(None, &batch, 1).unwrap();
    // Both took the same waiting records; each scores them its own way (told apart by score).
    let pending = b.cloud_pending(1000).unwrap();
    assert_eq!(pending.len(), records.len());
    let results = |score: f64| -> Vec<CloudResult> {
        pending
            .iter()
            .map(|p| CloudResult {
                record_id: p.record_id.clone(),
                outcome: CloudOutcome::Scored {
                    score,
                    anomaly: score > 0.5,
                    model_version: "1.0.0".into(),
                },
            })
            .collect()
    };
    let (from_a, mut from_b) = (results(0.9), results(0.1));
    from_b.reverse();
    let start = std::sync::Barrier::new(2);
    let (wrote_a, wrote_b) = std::thread::scope(|s| {
        let one = s.spawn(|| {
            start.wait();
            a.record_cloud_results(&from_a, 2).unwrap()
        });
        let other = s.spawn(|| {
            start.wait();
            b.record_cloud_results(&from_b, 2).unwrap()
        });
        (one.join().unwrap(), other.join().unwrap())
    });
    assert_eq!(wrote_a + wrote_b, records.len(), "each record written by exactly one");
    let stats = a.stats().unwrap();
    assert_eq!(stats.cloud_scored, records.len() as i64);
    assert_eq!(stats.unscored_pending, 0);
    // The counts agree with what is stored: every anomaly is one of the first writer's scores.
    let series = a.series("dev-c", 1000, None).unwrap();
    let high = series.points.iter().filter(|p| p.score == Some(0.9)).count();
    assert_eq!(high + series.points.iter().filter(|p| p.score == Some(0.1)).count(), records.len());
    assert_eq!(stats.cloud_anomalies, high as i64);
    assert!(b.cloud_pending(1000).unwrap().is_empty());
}
