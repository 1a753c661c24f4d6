//! Storage behaviour a device relies on: transient failures answered 503 + `Retry-After`,
//! conflicting record ids reported, sequence gaps counted, durable commits, and reads that do
//! not wait for the writer.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::mpsc;
use std::time::Duration;

use axum::http::StatusCode;
use collector::store::{StoreOptions, Synchronous};
use collector::{app, AppState, Config, Store};
use common::*;
use serde_json::json;

#[tokio::test]
async fn a_locked_database_is_503_with_retry_after_and_stores_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.sqlite");
    let options =
        StoreOptions { busy_timeout: Duration::from_millis(50), ..StoreOptions::default() };
    let app = app(AppState::new(Store::open_with(&path, options).unwrap(), Config::default()));
    // Another process holds the write lock.
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();

    let body = request("dev-a", 0..5).to_string();
    let reply = send(&app, post_logs(body.clone(), &[("idempotency-key", "k1")])).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.text);
    assert_eq!(reply.headers["retry-after"], "2");
    assert!(reply.json()["error"].as_str().unwrap().contains("locked"), "{}", reply.text);

    other.execute_batch("ROLLBACK").unwrap();
    let stats = get_json(&app, "/api/stats").await;
    assert_eq!((stats["records"].as_i64(), stats["batches"].as_i64()), (Some(0), Some(0)));
    // The retry under the same key is stored: the key was not consumed.
    let reply = send(&app, post_logs(body, &[("idempotency-key", "k1")])).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers.get("idempotent-replayed").is_none());
    assert_eq!(get_json(&app, "/api/stats").await["records"], 5);
}

#[tokio::test]
async fn a_full_disk_is_503_with_retry_after() {
    let store = Store::open_in_memory().unwrap();
    // No page may be added: the next insert fails with SQLITE_FULL, as on a full disk.
    let pages: i64 =
        store.with_writer(|c| c.query_row("PRAGMA page_count", [], |r| r.get(0))).unwrap();
    store
        .with_writer(|c| c.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(())))
        .unwrap();
    let state = AppState::new(store, Config::default());
    let app = app(state);
    let body = request("dev-a", 0..200).to_string();
    let reply = send(&app, post_logs(body, &[])).await;
    assert_eq!(reply.status, StatusCode::SERVICE_UNAVAILABLE, "{}", reply.text);
    assert_eq!(reply.headers["retry-after"], "2");
    assert_eq!(get_json(&app, "/api/stats").await["records"], 0);
}

#[tokio::test]
async fn a_record_id_held_with_other_content_is_a_reported_conflict() {
    let app = app(memory_state(Config::default()));
    let reply = send(&app, post_logs(request("dev-a", 0..4).to_string(), &[])).await;
    assert_eq!(reply.status, StatusCode::OK);

    // dev-a:1 again with another score (a pre-claimed or reused id), dev-a:2 unchanged, dev-a:4
    // new; and the resource attributes changed, which alone is not a conflict.
    let records = [client::rescored(1, 0.999), client::scored(2), client::scored(4)];
    let mut body = client::body("dev-a", &records);
    let resource = body["resourceLogs"][0]["resource"]["attributes"].as_array_mut().unwrap();
    resource.push(kv("host.name", json!({"stringValue": "another"})));
    let reply = send(&app, post_logs(body.to_string(), &[("idempotency-key", "k2")])).await;
    assert_eq!(reply.status, StatusCode::OK);
    let partial = &reply.json()["partialSuccess"];
    assert_eq!(partial["rejectedLogRecords"], "1", "{}", reply.text);
    let message = partial["errorMessage"].as_str().unwrap();
    assert!(
        message.contains("dev-a:1: record id already stored with different content"),
        "{message}"
    );
    assert!(!message.contains("dev-a:2"), "{message}");

    let stats = get_json(&app, "/api/stats").await;
    assert_eq!(stats["records"], 5);
    assert_eq!(stats["duplicates_ignored"], 1);
    assert_eq!(stats["conflicts"], 1);
    let device = &get_json(&app, "/api/devices").await["devices"][0];
    assert_eq!((device["conflicts"].as_i64(), device["duplicates"].as_i64()), (Some(1), Some(1)));
    // The first content stays.
    let page = get_json(&app, "/api/records?device=dev-a&limit=1000").await;
    let kept = page["records"].as_array().unwrap().iter().find(|r| r["record_id"] == "dev-a:1");
    assert_eq!(kept.unwrap()["score"], 0.1);
    // A replay of the key answers the same partial success.
    let replay = send(&app, post_logs(body.to_string(), &[("idempotency-key", "k2")])).await;
    assert_eq!(replay.text, reply.text);
}

#[tokio::test]
async fn many_conflicts_are_named_up_to_ten() {
    let app = app(memory_state(Config::default()));
    send(&app, post_logs(request("dev-a", 0..30).to_string(), &[])).await;
    let records: Vec<_> = (0..30).map(|s| client::rescored(s, 7.0)).collect();
    let body = client::body("dev-a", &records);
    let reply = send(&app, post_logs(body.to_string(), &[])).await;
    let partial = &reply.json()["partialSuccess"];
    assert_eq!(partial["rejectedLogRecords"], "30");
    assert!(partial["errorMessage"].as_str().unwrap().ends_with("; and 20 more"));
    assert_eq!(get_json(&app, "/api/stats").await["conflicts"], 30);
}

#[tokio::test]
async fn sequence_gaps_are_reported_per_device() {
    let app = app(memory_state(Config::default()));
    for (device, seqs) in [("dev-a", vec![0, 1, 2, 5, 6, 9]), ("dev-b", vec![3, 4])] {
        let reply = send(&app, post_logs(request(device, seqs).to_string(), &[])).await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    // A duplicate changes nothing.
    send(&app, post_logs(request("dev-a", [5]).to_string(), &[])).await;

    let devices = get_json(&app, "/api/devices").await;
    let summary = |i: usize| {
        let d = &devices["devices"][i];
        (d["min_seq"].as_i64(), d["max_seq"].as_i64(), d["count"].as_i64(), d["missing"].as_i64())
    };
    assert_eq!(summary(0), (Some(0), Some(9), Some(6), Some(4)));
    assert_eq!(summary(1), (Some(3), Some(4), Some(2), Some(3)), "seqs start at 0");
    assert_eq!(get_json(&app, "/api/stats").await["missing_seqs"], 7);

    assert_eq!(
        get_json(&app, "/api/devices/dev-a/gaps").await,
        json!({"gaps": [{"from": 3, "to": 4}, {"from": 7, "to": 8}], "truncated": false})
    );
    assert_eq!(
        get_json(&app, "/api/devices/dev-a/gaps?limit=1").await,
        json!({"gaps": [{"from": 3, "to": 4}], "truncated": true})
    );
    assert_eq!(
        get_json(&app, "/api/devices/dev-b/gaps").await,
        json!({"gaps": [{"from": 0, "to": 2}], "truncated": false})
    );
    assert_eq!(
        get_json(&app, "/api/devices/nobody/gaps").await,
        json!({"gaps": [], "truncated": false})
    );
}

#[test]
fn commits_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("t.sqlite")).unwrap();
    assert_eq!(store.synchronous().unwrap(), 2, "synchronous = FULL");
    let normal = StoreOptions { synchronous: Synchronous::Normal, ..StoreOptions::default() };
    let store = Store::open_with(&dir.path().join("n.sqlite"), normal).unwrap();
    assert_eq!(store.synchronous().unwrap(), 1);
}

#[test]
fn reads_do_not_wait_for_the_writer() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::open(&dir.path().join("t.sqlite")).unwrap());
    let (hold_tx, hold_rx) = mpsc::channel::<()>();
    let (held_tx, held_rx) = mpsc::channel::<()>();
    let writer = {
        let store = std::sync::Arc::clone(&store);
        std::thread::spawn(move || {
            store
                .with_writer(|_conn| {
                    held_tx.send(()).unwrap();
                    let _ = hold_rx.recv_timeout(Duration::from_secs(30));
                    Ok(())
                })
                .unwrap();
        })
    };
    held_rx.recv().unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    let reader = {
        let store = std::sync::Arc::clone(&store);
        std::thread::spawn(move || {
            let _ = done_tx.send((store.stats().is_ok(), store.devices().is_ok()));
        })
    };
    let outcome = done_rx.recv_timeout(Duration::from_secs(10));
    hold_tx.send(()).unwrap();
    writer.join().unwrap();
    reader.join().unwrap();
    assert_eq!(outcome, Ok((true, true)), "stats and devices answered while the writer was held");
}
