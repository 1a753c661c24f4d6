//! Every fault mode over a real TCP socket, as the browser's service worker would meet it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use collector::{AppState, Config, FaultSpec, Store};
use common::*;
use serde_json::{json, Value};

async fn set_fault(addr: SocketAddr, spec: Value) {
    let response = client()
        .post(format!("http://{addr}/admin/faults"))
        .header("content-type", "application/json")
        .body(spec.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
}

async fn post(addr: SocketAddr, body: &Value, key: &str) -> reqwest::Result<reqwest::Response> {
    client()
        .post(format!("http://{addr}/v1/logs"))
        .header("content-type", "application/json")
        .header("idempotency-key", key)
        .body(body.to_string())
        .send()
        .await
}

async fn stats(addr: SocketAddr) -> Value {
    let text = client()
        .get(format!("http://{addr}/api/stats"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

#[tokio::test]
async fn status_faults_answer_without_storing() {
    // (fault, expected status, expected Retry-After)
    let cases = [
        (json!({"mode": "status", "status": 503, "retry_after": 2}), 503, Some("2")),
        (json!({"mode": "status", "status": 429, "retry_after": 7}), 429, Some("7")),
        (json!({"mode": "status", "status": 500}), 500, None),
        (json!({"mode": "status", "status": 400}), 400, None),
        (json!({"mode": "status"}), 503, None),
    ];
    for (fault, status, retry_after) in cases {
        let addr = spawn_server(faults_state()).await;
        set_fault(addr, fault.clone()).await;
        let response = post(addr, &request("dev-a", 1..=3), "k1").await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{fault}");
        assert_eq!(
            response
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned())
                .as_deref(),
            retry_after,
            "{fault}"
        );
        let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert!(body["error"].as_str().unwrap().contains("injected fault"), "{fault}");
        let s = stats(addr).await;
        assert_eq!(s["records"], 0, "{fault}");
        assert_eq!(s["batches"], 0, "{fault}");
        assert_eq!(s["requests"]["faulted"], 1, "{fault}");

        // The key was not consumed: the retry after clearing stores the batch.
        set_fault(addr, json!({"mode": "none"})).await;
        let retry = post(addr, &request("dev-a", 1..=3), "k1").await.unwrap();
        assert_eq!(retry.status(), 200);
        assert!(retry.headers().get("idempotent-replayed").is_none());
        assert_eq!(stats(addr).await["records"], 3, "{fault}");
    }
}

#[tokio::test]
async fn delay_fault_delays_then_stores() {
    let addr = spawn_server(faults_state()).await;
    set_fault(addr, json!({"mode": "delay", "delay_ms": 400, "count": 1})).await;
    let started = Instant::now();
    let response = post(addr, &request("dev-a", 1..=2), "k1").await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(response.status(), 200);
    assert!(elapsed >= Duration::from_millis(400), "answered after {elapsed:?}");
    assert_eq!(stats(addr).await["records"], 2);

    let started = Instant::now();
    post(addr, &request("dev-a", 3..=3), "k2").await.unwrap();
    assert!(started.elapsed() < Duration::from_millis(400), "the single-use delay expired");
}

#[tokio::test]
async fn reset_stores_the_batch_but_the_client_sees_a_connection_error() {
    let addr = spawn_server(faults_state()).await;
    set_fault(addr, json!({"mode": "reset", "count": 1})).await;
    let error = post(addr, &request("dev-a", 1..=4), "k1").await.expect_err("the ack must be lost");
    assert!(!error.is_status() && !error.is_timeout(), "{error:?}");
    let s = stats(addr).await;
    assert_eq!(s["records"], 4, "stored before the reset");
    assert_eq!(s["requests"]["faulted"], 1);

    // The client's retry with the same key is answered from the idempotency table.
    let retry = post(addr, &request("dev-a", 1..=4), "k1").await.unwrap();
    assert_eq!(retry.status(), 200);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.text().await.unwrap(), "{}");
    assert_eq!(stats(addr).await["records"], 4);
}

#[tokio::test]
async fn reset_before_store_stores_nothing_and_the_client_sees_a_connection_error() {
    let addr = spawn_server(faults_state()).await;
    set_fault(addr, json!({"mode": "reset_before_store", "count": 1})).await;
    let error = post(addr, &request("dev-a", 1..=4), "k1").await.expect_err("no answer");
    assert!(!error.is_status() && !error.is_timeout(), "{error:?}");
    assert_eq!(stats(addr).await["records"], 0);

    let retry = post(addr, &request("dev-a", 1..=4), "k1").await.unwrap();
    assert_eq!(retry.status(), 200);
    assert!(retry.headers().get("idempotent-replayed").is_none());
    assert_eq!(stats(addr).await["records"], 4);
}

/// With a raw socket we can see it is a real RST (ECONNRESET), not a clean close.
#[tokio::test]
async fn reset_is_a_tcp_rst() {
    let addr = spawn_server(faults_state()).await;
    for mode in ["reset", "reset_before_store"] {
        set_fault(addr, json!({"mode": mode, "count": 1})).await;
        let result = tokio::task::spawn_blocking(move || {
            let body = request("dev-raw", 1..=1).to_string();
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
            // One write of the whole request: `write!` sends it piece by piece, and the server
            // may reset the connection between the pieces, which is the same reset seen earlier.
            let request = format!(
                "POST /v1/logs HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            stream.write_all(request.as_bytes())?;
            let mut buf = Vec::new();
            stream.read_to_end(&mut buf).map(|_| buf)
        })
        .await
        .unwrap();
        match result {
            Err(e) => assert_eq!(e.kind(), ErrorKind::ConnectionReset, "{mode}: {e}"),
            Ok(bytes) => {
                panic!("{mode}: expected a reset, read {:?}", String::from_utf8_lossy(&bytes))
            }
        }
    }
    assert_eq!(stats(addr).await["records"], 1, "only `reset` stored");
}

#[tokio::test]
async fn count_expires_after_n_requests() {
    let addr = spawn_server(faults_state()).await;
    set_fault(addr, json!({"mode": "status", "status": 503, "retry_after": 1, "count": 2})).await;
    let mut statuses = vec![];
    for i in 0..4 {
        statuses.push(
            post(addr, &request("dev-a", [i]), &format!("k{i}")).await.unwrap().status().as_u16(),
        );
    }
    assert_eq!(statuses, [503, 503, 200, 200]);
    let faults: Value = serde_json::from_str(
        &client()
            .get(format!("http://{addr}/admin/faults"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(faults["mode"], "none");
    assert_eq!(faults["injected"], 2);
    let s = stats(addr).await;
    assert_eq!(s["records"], 2);
    assert_eq!(s["requests"], json!({"ok": 2, "rejected": 0, "faulted": 2}));
}

#[tokio::test]
async fn fault_without_count_lasts_until_cleared() {
    let addr = spawn_server(faults_state()).await;
    set_fault(addr, json!({"mode": "status", "status": 500})).await;
    for i in 0..3 {
        assert_eq!(
            post(addr, &request("dev-a", [i]), &format!("k{i}")).await.unwrap().status(),
            500
        );
    }
    let shown: Value = serde_json::from_str(
        &client()
            .get(format!("http://{addr}/admin/faults"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(shown, json!({"mode": "status", "status": 500, "remaining": null, "injected": 3}));
    set_fault(addr, json!({"mode": "none"})).await;
    assert_eq!(post(addr, &request("dev-a", [9]), "k9").await.unwrap().status(), 200);
}

#[tokio::test]
async fn startup_fault_is_armed() {
    let fault =
        FaultSpec::from_json(br#"{"mode": "status", "status": 429, "retry_after": 3, "count": 1}"#)
            .unwrap();
    let config = Config { test_faults: true, ..Config::default() };
    let state = AppState::with_fault(Store::open_in_memory().unwrap(), config, fault);
    let addr = spawn_server(state).await;
    let first = post(addr, &request("dev-a", [1]), "k1").await.unwrap();
    assert_eq!(first.status(), 429);
    assert_eq!(first.headers()["retry-after"], "3");
    assert_eq!(post(addr, &request("dev-a", [1]), "k1").await.unwrap().status(), 200);
}

#[tokio::test]
async fn invalid_fault_specs_are_rejected() {
    let addr = spawn_server(faults_state()).await;
    for spec in [
        r#"{"mode": "boom"}"#,
        r#"{"mode": "status", "status": 99}"#,
        "nope",
        r#"{"mode": "reset", "count": 0}"#,
    ] {
        let response = client()
            .post(format!("http://{addr}/admin/faults"))
            .header("content-type", "application/json")
            .body(spec)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{spec}");
    }
    let shown: Value = serde_json::from_str(
        &client()
            .get(format!("http://{addr}/admin/faults"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(shown["mode"], "none");
}

#[tokio::test]
async fn admin_requires_the_token_when_one_is_set() {
    let addr = spawn_server(memory_state(Config {
        token: Some("t0k".into()),
        test_faults: true,
        ..Config::default()
    }))
    .await;
    let url = format!("http://{addr}/admin/faults");
    let spec = json!({"mode": "status", "status": 503}).to_string();
    let post_spec =
        |spec: String| client().post(&url).header("content-type", "application/json").body(spec);
    assert_eq!(post_spec(spec.clone()).send().await.unwrap().status(), 401);
    assert_eq!(client().get(&url).send().await.unwrap().status(), 401);
    let ok = post_spec(spec).bearer_auth("t0k").send().await.unwrap();
    assert_eq!(ok.status(), 200);
    // An unauthenticated upload is refused before it can consume the fault.
    assert_eq!(post(addr, &request("dev-a", [1]), "k1").await.unwrap().status(), 401);
    let shown: Value = serde_json::from_str(
        &client().get(&url).bearer_auth("t0k").send().await.unwrap().text().await.unwrap(),
    )
    .unwrap();
    assert_eq!(shown["injected"], 0);
}

#[tokio::test]
async fn hang_reads_the_request_and_never_answers() {
    let addr = spawn_server(faults_state()).await;
    set_fault(addr, json!({"mode": "hang", "count": 1})).await;
    let outcome = tokio::task::spawn_blocking(move || {
        let body = request("dev-h", 1..=2).to_string();
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(800))).unwrap();
        let request = format!(
            "POST /v1/logs HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).unwrap();
        let mut buf = [0u8; 1024];
        stream.read(&mut buf).map(|n| String::from_utf8_lossy(&buf[..n]).into_owned())
    })
    .await
    .unwrap();
    match outcome {
        // Still open, still silent: the read timed out.
        Err(e) => assert!(
            matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "expected a read timeout, got {e}"
        ),
        Ok(text) => panic!("expected no answer and an open connection, read {text:?}"),
    }
    let s = stats(addr).await;
    assert_eq!(s["records"], 0);
    assert_eq!(s["requests"]["faulted"], 1);
    assert_eq!(post(addr, &request("dev-h", 1..=2), "k1").await.unwrap().status(), 200);
}
