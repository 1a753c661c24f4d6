//! Who may call what: fault injection only with `--test-faults`, the guard on `/api` and
//! `/admin` (token, same origin, JSON only), the `Host` check, CORS and the security headers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use collector::{app, Config};
use common::*;
use serde_json::json;

fn fault_post(content_type: &str, origin: Option<&str>) -> Request<Body> {
    let mut request = Request::post("/admin/faults")
        .header("host", "127.0.0.1:8080")
        .header("content-type", content_type);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    request.body(Body::from(json!({"mode": "status", "status": 200}).to_string())).unwrap()
}

/// The measured attack: a page on another origin posts a `text/plain` fault (no preflight
/// needed) that answers 200 without storing, and every device's data vanishes.
#[tokio::test]
async fn a_cross_origin_text_plain_post_cannot_arm_a_fault() {
    let state = faults_state();
    let app = app(state.clone());
    for (content_type, origin, status) in [
        ("text/plain", Some("http://evil.example"), StatusCode::FORBIDDEN),
        ("application/json", Some("http://evil.example"), StatusCode::FORBIDDEN),
        ("text/plain", None, StatusCode::UNSUPPORTED_MEDIA_TYPE),
        ("text/plain", Some("http://127.0.0.1:8080"), StatusCode::UNSUPPORTED_MEDIA_TYPE),
    ] {
        let reply = send(&app, fault_post(content_type, origin)).await;
        assert_eq!(reply.status, status, "{content_type} {origin:?}: {}", reply.text);
        assert_eq!(state.faults().status().spec.mode, collector::FaultMode::None);
    }
    // The next spec-valid batch is stored.
    let reply = send(&app, post_logs(request("dev-a", 0..50).to_string(), &[])).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(get_json(&app, "/api/stats").await["records"], 50);
    // Same origin, JSON: accepted.
    let reply = send(&app, fault_post("application/json", Some("http://127.0.0.1:8080"))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

#[tokio::test]
async fn without_test_faults_there_is_no_fault_injection() {
    let router = app(memory_state(Config::default()));
    for request in [
        fault_post("application/json", None),
        Request::get("/admin/faults").body(Body::empty()).unwrap(),
    ] {
        assert_eq!(send(&router, request).await.status, StatusCode::NOT_FOUND);
    }
    // A fault set on the switch has no effect: no layer reads it.
    let state = memory_state(Config::default());
    state
        .faults()
        .set(collector::FaultSpec::from_json(br#"{"mode":"status","status":503}"#).unwrap());
    let app = app(state);
    let reply = send(&app, post_logs(request("dev-a", 0..3).to_string(), &[])).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[test]
fn the_binary_refuses_fault_without_test_faults() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_collector"))
        .args(["--addr", "127.0.0.1:0", "--fault", r#"{"mode":"status"}"#])
        .arg("--db")
        .arg(dir.path().join("t.sqlite"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--fault needs --test-faults"), "{stderr}");
}

#[tokio::test]
async fn read_api_needs_the_token_when_one_is_set() {
    let app = app(memory_state(Config { token: Some("s3cret".into()), ..Config::default() }));
    for path in ["/api/stats", "/api/records", "/api/devices", "/api/devices/d/gaps"] {
        let reply = send(&app, Request::get(path).body(Body::empty()).unwrap()).await;
        assert_eq!(reply.status, StatusCode::UNAUTHORIZED, "{path}");
        get_json_with_token(&app, path, Some("s3cret")).await;
    }
    // The health check stays open.
    let reply = send(&app, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!(reply.status, StatusCode::OK);
}

#[tokio::test]
async fn read_api_refuses_other_origins() {
    let app = app(memory_state(Config::default()));
    for (origin, status) in [
        ("http://evil.example", StatusCode::FORBIDDEN),
        ("http://127.0.0.1:9999", StatusCode::FORBIDDEN),
        ("null", StatusCode::FORBIDDEN),
        ("http://127.0.0.1:8080", StatusCode::OK),
    ] {
        let request = Request::get("/api/stats")
            .header("host", "127.0.0.1:8080")
            .header("origin", origin)
            .body(Body::empty())
            .unwrap();
        let reply = send(&app, request).await;
        assert_eq!(reply.status, status, "{origin}");
        assert!(reply.headers.get("access-control-allow-origin").is_none(), "{origin}");
    }
}

#[tokio::test]
async fn host_header_must_name_this_collector() {
    let addr = spawn_server(memory_state(Config {
        allowed_hosts: vec!["box.lan".into()],
        ..Config::default()
    }))
    .await;
    let port = addr.port();
    for (host, ok) in [
        (format!("127.0.0.1:{port}"), true),
        (format!("localhost:{port}"), true),
        (format!("box.lan:{port}"), true),
        (format!("evil.example:{port}"), false),
        ("evil.example".to_owned(), false),
    ] {
        let response = client()
            .get(format!("http://{addr}/api/stats"))
            .header("host", &host)
            .send()
            .await
            .unwrap();
        let expected = if ok { 200 } else { 421 };
        assert_eq!(response.status().as_u16(), expected, "{host}");
    }
}

#[tokio::test]
async fn cors_only_on_v1_logs_and_only_for_listed_origins() {
    let pwa = "https://pwa.example";
    let app = app(memory_state(Config { cors_origins: vec![pwa.into()], ..Config::default() }));
    let preflight = |path: &str, origin: &str| {
        Request::options(path)
            .header("host", "127.0.0.1:8080")
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,idempotency-key,content-encoding",
            )
            .body(Body::empty())
            .unwrap()
    };
    let reply = send(&app, preflight("/v1/logs", pwa)).await;
    assert!(reply.status.is_success(), "{}", reply.status);
    assert_eq!(reply.headers["access-control-allow-origin"], pwa);
    let allowed = reply.headers["access-control-allow-headers"].to_str().unwrap().to_owned();
    for h in ["content-type", "content-encoding", "authorization", "idempotency-key"] {
        assert!(allowed.contains(h), "{allowed}");
    }
    assert_eq!(reply.headers["access-control-allow-methods"], "POST");

    // The actual POST from the listed origin is stored and readable by it.
    let post = Request::post("/v1/logs")
        .header("host", "127.0.0.1:8080")
        .header("origin", pwa)
        .header("content-type", "application/json")
        .body(Body::from(request("dev-c", 0..2).to_string()))
        .unwrap();
    let reply = send(&app, post).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.headers["access-control-allow-origin"], pwa);
    assert_eq!(reply.headers["access-control-expose-headers"], "retry-after");

    // Another origin: refused, no CORS headers.
    let other = send(&app, preflight("/v1/logs", "https://evil.example")).await;
    assert_eq!(other.status, StatusCode::FORBIDDEN);
    assert!(other.headers.get("access-control-allow-origin").is_none());
    // The API never answers CORS, even to the listed origin.
    let api = send(&app, preflight("/api/stats", pwa)).await;
    assert!(api.headers.get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let app = app(memory_state(Config::default()));
    let requests = [
        Request::get("/healthz").body(Body::empty()).unwrap(),
        Request::get("/api/stats").body(Body::empty()).unwrap(),
        Request::get("/nowhere").body(Body::empty()).unwrap(),
        post_logs("{", &[]),
        post_logs(request("dev-h", 0..1).to_string(), &[]),
    ];
    for request in requests {
        let path = request.uri().path().to_owned();
        let reply = send(&app, request).await;
        let csp = reply.headers["content-security-policy"].to_str().unwrap();
        for directive in [
            "default-src 'self'",
            "frame-ancestors 'none'",
            "script-src 'self' 'wasm-unsafe-eval'",
            "connect-src 'self'",
            "worker-src 'self'",
            "object-src 'none'",
        ] {
            assert!(csp.contains(directive), "{path}: {csp}");
        }
        assert_eq!(reply.headers["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(reply.headers["cross-origin-opener-policy"], "same-origin", "{path}");
        assert_eq!(reply.headers["cross-origin-embedder-policy"], "require-corp", "{path}");
        assert!(reply.headers.get("access-control-allow-origin").is_none(), "{path}");
    }
}
