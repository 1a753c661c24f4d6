//! The read API, persistence across restarts, static serving and the binary's startup.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use axum::body::Body;
use axum::http::{Request, StatusCode};
use collector::{app, AppState, Config, Store};
use common::*;
use serde_json::json;

#[tokio::test]
async fn stats_records_and_devices_reflect_stored_data() {
    let app = app(memory_state(Config::default()));
    for (device, seqs, key) in
        [("dev-a", 1..=10, "a1"), ("dev-b", 1..=3, "b1"), ("dev-a", 11..=12, "a2")]
    {
        let reply =
            send(&app, post_logs(request(device, seqs).to_string(), &[("idempotency-key", key)]))
                .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    // A retried batch under a new key (duplicates) and a rejected request (bad JSON).
    send(&app, post_logs(request("dev-b", 1..=3).to_string(), &[("idempotency-key", "b1-retry")]))
        .await;
    send(&app, post_logs("{", &[])).await;

    let stats = get_json(&app, "/api/stats").await;
    assert_eq!(
        stats,
        json!({
            "records": 15, "unique_devices": 2, "anomalies": 2, "batches": 4,
            "duplicates_ignored": 3, "conflicts": 0, "idempotent_replays": 0,
            // Both devices start at seq 1, so seq 0 of each is missing.
            "missing_seqs": 2, "unexplained_missing_seqs": 2,
            // Every record arrived scored: nothing for cloud scoring.
            "unscored": 0, "unscored_pending": 0, "cloud_scored": 0, "cloud_anomalies": 0,
            "cloud_failed": 0,
            "requests": {"ok": 4, "rejected": 1, "faulted": 0}
        })
    );

    let latest = get_json(&app, "/api/records?limit=3").await;
    let ids: Vec<&str> = latest["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["dev-a:12", "dev-a:11", "dev-b:3"], "newest first");
    let first = &latest["records"][0];
    // The device writes an f32 as the shortest decimal that reads back as the same f32.
    assert_eq!(first["score"], 1.2);
    assert_eq!(first["anomaly"], false);
    assert_eq!(first["model_version"], "shuttle-int8@1");
    assert_eq!(first["latency_us"], 150.0);
    assert_eq!(first["scored"], true);
    assert!(first["received_at"].as_i64().unwrap() > 1_600_000_000_000);

    let of_b = get_json(&app, "/api/records?device=dev-b").await;
    assert_eq!(of_b["records"].as_array().unwrap().len(), 3);
    assert!(of_b["records"].as_array().unwrap().iter().all(|r| r["device_id"] == "dev-b"));
    assert_eq!(
        get_json(&app, "/api/records?device=nobody").await,
        json!({"records": [], "next_before": null})
    );
    assert_eq!(get_json(&app, "/api/records").await["records"].as_array().unwrap().len(), 15);

    let devices = get_json(&app, "/api/devices").await;
    let a = &devices["devices"][0];
    assert_eq!(a["device_id"], "dev-a");
    assert_eq!(a["count"], 12);
    assert_eq!(a["anomalies"], 2);
    assert_eq!(a["last_seq"], 12);
    assert_eq!(a["max_seq"], 12);
    assert!((a["mean_score"].as_f64().unwrap() - 0.65).abs() < 1e-6);
    assert!(a["last_seen"].as_i64().unwrap() > 0);
    let b = &devices["devices"][1];
    assert_eq!(
        (b["device_id"].as_str(), b["count"].as_i64(), b["anomalies"].as_i64()),
        (Some("dev-b"), Some(3), Some(0))
    );
}

#[tokio::test]
async fn bad_record_queries_are_400_with_a_reason() {
    let app = app(memory_state(Config::default()));
    for query in ["limit=0", "limit=5000", "limit=abc", "limit=-1"] {
        let reply =
            send(&app, Request::get(format!("/api/records?{query}")).body(Body::empty()).unwrap())
                .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}");
        assert!(reply.json()["error"].is_string(), "{query}");
    }
}

#[tokio::test]
async fn healthz_is_ok() {
    let app = app(memory_state(Config::default()));
    let reply = send(&app, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!((reply.status, reply.text.as_str()), (StatusCode::OK, "ok"));
}

#[tokio::test]
async fn database_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested/dir/telemetry.sqlite");
    {
        let store = Store::open(&path).unwrap();
        assert_eq!(store.journal_mode().unwrap(), "wal");
        let app = app(AppState::new(store, Config::default()));
        let reply = send(
            &app,
            post_logs(request("dev-a", 1..=5).to_string(), &[("idempotency-key", "k1")]),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    let app = app(AppState::new(Store::open(&path).unwrap(), Config::default()));
    let stats = get_json(&app, "/api/stats").await;
    assert_eq!(stats["records"], 5);
    assert_eq!(stats["batches"], 1);
    // The idempotency table persisted too: a retry after a restart is still a replay.
    let replay =
        send(&app, post_logs(request("dev-a", 1..=5).to_string(), &[("idempotency-key", "k1")]))
            .await;
    assert_eq!(replay.headers["idempotent-replayed"], "true");
    assert_eq!(get_json(&app, "/api/stats").await["records"], 5);
}

#[tokio::test]
async fn static_files_get_pwa_headers() {
    let dir = tempfile::tempdir().unwrap();
    let files = [
        ("index.html", "<!doctype html>"),
        ("sw.js", "self.addEventListener('fetch', () => {});"),
        ("app.js", "export {};"),
        ("edge_anomaly_bg.wasm", "\0asm"),
        ("manifest.webmanifest", "{}"),
    ];
    for (name, content) in files {
        std::fs::write(dir.path().join(name), content).unwrap();
    }
    let app =
        app(memory_state(Config { static_dir: Some(dir.path().to_owned()), ..Config::default() }));
    // (path, content type, cache-control)
    let cases = [
        ("/", "text/html", None),
        ("/sw.js", "text/javascript", Some("no-cache")),
        ("/app.js", "text/javascript", None),
        ("/edge_anomaly_bg.wasm", "application/wasm", None),
        ("/manifest.webmanifest", "application/manifest+json", None),
    ];
    for (path, content_type, cache) in cases {
        let reply = send(&app, Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(reply.status, StatusCode::OK, "{path}");
        let got = reply.headers["content-type"].to_str().unwrap();
        assert!(got.starts_with(content_type), "{path}: {got}");
        assert_eq!(
            reply.headers.get("cache-control").map(|v| v.to_str().unwrap()),
            cache,
            "{path}"
        );
        // Cross-origin isolation: fine-grained timers for the dashboard's latency figures.
        assert_eq!(reply.headers["cross-origin-opener-policy"], "same-origin", "{path}");
        assert_eq!(reply.headers["cross-origin-embedder-policy"], "require-corp", "{path}");
    }
    let missing = send(&app, Request::get("/nope.js").body(Body::empty()).unwrap()).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    // The API still wins over the static tree.
    let health = send(&app, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(health.text, "ok");
}

#[tokio::test]
async fn static_files_are_sent_precompressed_when_the_client_accepts_it() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = b"\0asm the engine, as it is".to_vec();
    std::fs::write(dir.path().join("edge_anomaly_bg.wasm"), &wasm).unwrap();
    std::fs::write(dir.path().join("edge_anomaly_bg.wasm.br"), b"brotli bytes").unwrap();
    std::fs::write(dir.path().join("edge_anomaly_bg.wasm.gz"), gzip(&wasm)).unwrap();
    std::fs::write(dir.path().join("app.js"), "export {};").unwrap();
    let app =
        app(memory_state(Config { static_dir: Some(dir.path().to_owned()), ..Config::default() }));
    let get = |path: &str, accept: Option<&str>| {
        let mut request = Request::get(path);
        if let Some(accept) = accept {
            request = request.header("accept-encoding", accept);
        }
        request.body(Body::empty()).unwrap()
    };
    // (accept-encoding, content-encoding sent, body)
    let cases: [(Option<&str>, Option<&str>, &[u8]); 4] = [
        (Some("gzip, deflate, br"), Some("br"), b"brotli bytes"),
        (Some("gzip"), Some("gzip"), &gzip(&wasm)),
        (Some("identity"), None, &wasm),
        (None, None, &wasm),
    ];
    for (accept, encoding, body) in cases {
        let response =
            tower::ServiceExt::oneshot(app.clone(), get("/edge_anomaly_bg.wasm", accept)).await;
        let response = response.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{accept:?}");
        let headers = response.headers().clone();
        let got = http_body_util::BodyExt::collect(response.into_body()).await.unwrap();
        assert_eq!(got.to_bytes().as_ref(), body, "{accept:?}");
        assert_eq!(
            headers.get("content-encoding").map(|v| v.to_str().unwrap()),
            encoding,
            "{accept:?}"
        );
        // Streaming compilation needs the media type of the file, not of its encoding.
        assert_eq!(headers["content-type"], "application/wasm", "{accept:?}");
        assert_eq!(headers["vary"], "accept-encoding", "{accept:?}");
    }
    // A file the build did not compress is sent as it is.
    let plain = send(&app, get("/app.js", Some("br, gzip"))).await;
    assert_eq!(plain.status, StatusCode::OK);
    assert!(plain.headers.get("content-encoding").is_none());
    assert_eq!(plain.text, "export {};");
}

/// Kills the child process if a test fails before it is stopped.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The real binary: prints its URL, warns about a missing static dir, and answers.
#[tokio::test]
async fn binary_starts_and_prints_its_url() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("data/telemetry.sqlite");
    let mut child = KillOnDrop(Some(
        Command::new(env!("CARGO_BIN_EXE_collector"))
            .args(["--addr", "127.0.0.1:0", "--static", "/nonexistent-dist"])
            .arg("--db")
            .arg(&db)
            .args(["--test-faults", "--fault", r#"{"mode":"status","status":503,"count":1}"#])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    ));
    // Only the first line is read, then stdout is closed: the collector must keep running even
    // though its later startup lines hit a closed pipe.
    let stdout = child.0.as_mut().unwrap().stdout.take().unwrap();
    let first_line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .unwrap();
    let outcome = async {
        let line = first_line.unwrap();
        let url = line
            .trim()
            .strip_prefix("collector listening on ")
            .unwrap_or_else(|| panic!("{line:?}"))
            .to_owned();
        assert!(url.starts_with("http://127.0.0.1:") && url.ends_with('/'), "{url}");
        let health = client().get(format!("{url}healthz")).send().await.unwrap();
        assert_eq!(health.text().await.unwrap(), "ok");
        let logs = client()
            .post(format!("{url}v1/logs"))
            .header("content-type", "application/json")
            .body(request("dev-bin", 1..=2).to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(logs.status(), 503, "--fault armed at startup");
        assert!(db.exists(), "database file created under a new directory");
    }
    .await;
    let mut process = child.0.take().unwrap();
    process.kill().unwrap();
    let output = process.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("static directory /nonexistent-dist not found"), "{stderr}");
    outcome
}

#[test]
fn binary_rejects_a_bad_fault_flag() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_collector"))
        .args(["--addr", "127.0.0.1:0", "--test-faults", "--fault", r#"{"mode":"explode"}"#])
        .arg("--db")
        .arg(dir.path().join("t.sqlite"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--fault"));
}
