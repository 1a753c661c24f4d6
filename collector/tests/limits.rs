//! Resource limits: request content caps, one stored copy of a resource, the body time limit,
//! the connection cap, and the paginated read API.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use axum::http::StatusCode;
use collector::{app, AppState, Config, Store};
use common::*;
use serde_json::{json, Value};

fn with_resource_attrs(mut body: Value, n: usize) -> Value {
    let attrs = body["resourceLogs"][0]["resource"]["attributes"].as_array_mut().unwrap();
    for i in 0..n {
        attrs.push(kv(&format!("extra.{i}"), json!({"stringValue": "x".repeat(20)})));
    }
    body
}

#[tokio::test]
async fn requests_over_a_content_limit_are_413_and_store_nothing() {
    let deep = {
        let mut value = json!({"intValue": "1"});
        for _ in 0..20 {
            value = json!({"arrayValue": {"values": [value]}});
        }
        let mut attrs = scored_attrs("dev-a", 0);
        attrs.push(kv("deep", value));
        request_with("dev-a", vec![attrs])
    };
    let long_value = {
        let mut attrs = scored_attrs("dev-a", 0);
        attrs.push(kv("long", json!({"stringValue": "y".repeat(100_000)})));
        request_with("dev-a", vec![attrs])
    };
    let many_record_attrs = {
        let mut attrs = scored_attrs("dev-a", 0);
        for i in 0..200 {
            attrs.push(kv(&format!("a{i}"), json!({"boolValue": true})));
        }
        request_with("dev-a", vec![attrs])
    };
    let cases = [
        ("records", request("dev-a", 0..6000), "more than 5000 log records"),
        ("resource attributes", with_resource_attrs(request("dev-a", 0..2), 2000), "attributes"),
        ("record attributes", many_record_attrs, "attributes"),
        ("value size", long_value, "bytes"),
        ("nesting", deep, "nested deeper"),
    ];
    for (name, body, reason) in cases {
        let app = app(memory_state(Config::default()));
        let reply = send(&app, post_logs(body.to_string(), &[])).await;
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE, "{name}: {}", reply.text);
        assert!(reply.json()["error"].as_str().unwrap().contains(reason), "{name}: {}", reply.text);
        assert_eq!(get_json(&app, "/api/stats").await["records"], 0, "{name}");
    }
}

#[tokio::test]
async fn a_resource_is_stored_once_not_per_record() {
    let state = AppState::new(Store::open_in_memory().unwrap(), Config::default());
    let app = app(state.clone());
    let body = with_resource_attrs(request("dev-a", 0..100), 100);
    let reply = send(&app, post_logs(body.to_string(), &[])).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    // A re-drive of the same batch reuses the stored resource too.
    send(&app, post_logs(body.to_string(), &[])).await;
    let resources: i64 = state
        .store(|s| {
            let s = s.as_sqlite().expect("an SQLite store");
            s.with_writer(|c| c.query_row("SELECT COUNT(*) FROM resources", [], |r| r.get(0)))
        })
        .await
        .unwrap();
    assert_eq!(resources, 1);
    let page = get_json(&app, "/api/records?limit=1").await;
    assert_eq!(page["records"][0]["resource"]["extra.99"], "x".repeat(20));
}

#[tokio::test]
async fn a_body_that_trickles_in_is_408() {
    let addr = spawn_server(memory_state(Config {
        body_timeout: Duration::from_millis(300),
        ..Config::default()
    }))
    .await;
    let answer = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = format!(
            "POST /v1/logs HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"resourceLogs\""
        );
        stream.write_all(head.as_bytes()).unwrap();
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let addr = spawn_server(memory_state(Config { max_connections: 1, ..Config::default() })).await;
    let health = || async move {
        reqwest::Client::builder()
            .timeout(Duration::from_millis(1500))
            .build()
            .unwrap()
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
    };
    assert!(health().await.is_ok(), "one connection at a time is served");
    // An idle connection holds the only slot: a second client is not served meanwhile.
    let idle = std::net::TcpStream::connect(addr).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let error = health().await.expect_err("no slot while the idle connection is open");
    assert!(error.is_timeout(), "{error:?}");
    drop(idle);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(health().await.is_ok(), "served once the slot is free");
}

#[tokio::test]
async fn records_are_paginated_with_a_cursor() {
    let app = app(memory_state(Config::default()));
    send(&app, post_logs(request("dev-a", 0..25).to_string(), &[])).await;
    send(&app, post_logs(request("dev-b", 0..5).to_string(), &[])).await;
    let mut seen = Vec::new();
    let mut path = "/api/records?device=dev-a&limit=10".to_owned();
    loop {
        let page = get_json(&app, &path).await;
        for r in page["records"].as_array().unwrap() {
            seen.push(r["seq"].as_i64().unwrap());
        }
        match page["next_before"].as_i64() {
            Some(cursor) => path = format!("/api/records?device=dev-a&limit=10&before={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, (0..25).rev().collect::<Vec<_>>(), "newest first, each once");
    let all = get_json(&app, "/api/records?limit=1000").await;
    assert_eq!(all["records"].as_array().unwrap().len(), 30);
    assert_eq!(all["next_before"], Value::Null);
}
