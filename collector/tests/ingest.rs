//! `POST /v1/logs` in-process: storage, idempotency, dedupe, encodings and every rejection.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use collector::{app, Config};
use common::*;
use serde_json::json;

#[tokio::test]
async fn valid_request_stores_every_record() {
    let app = app(memory_state(Config::default()));
    let reply =
        send(&app, post_logs(request("dev-a", 1..=5).to_string(), &[("idempotency-key", "k1")]))
            .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json(), json!({}));
    assert_eq!(reply.headers["content-type"], "application/json");

    let stats = get_json(&app, "/api/stats").await;
    assert_eq!(stats["records"], 5);
    assert_eq!(stats["unique_devices"], 1);
    assert_eq!(stats["anomalies"], 1, "seq 5 is the anomaly");
    assert_eq!(stats["batches"], 1);
    assert_eq!(stats["requests"], json!({"ok": 1, "rejected": 0, "faulted": 0}));
}

#[tokio::test]
async fn idempotency_key_replay_stores_nothing_and_returns_the_same_response() {
    let app = app(memory_state(Config::default()));
    // A batch with one NaN score, so the stored response is a non-trivial partialSuccess.
    let mut records: Vec<_> = (1..=3).map(|s| scored_attrs("dev-a", s)).collect();
    records[1][2] = kv("edge.score", json!({"doubleValue": "NaN"}));
    let body = request_with("dev-a", records).to_string();

    let first = send(&app, post_logs(body.clone(), &[("idempotency-key", "batch-1")])).await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.json()["partialSuccess"]["rejectedLogRecords"], "1");
    assert!(first.headers.get("idempotent-replayed").is_none());

    // Same key, even with a different payload: answered from the table, nothing inserted.
    let other = request("dev-z", 1..=3).to_string();
    for replay_body in [body, other] {
        let replay = send(&app, post_logs(replay_body, &[("idempotency-key", "batch-1")])).await;
        assert_eq!(replay.status, StatusCode::OK);
        assert_eq!(replay.text, first.text);
        assert_eq!(replay.headers["idempotent-replayed"], "true");
    }
    let stats = get_json(&app, "/api/stats").await;
    assert_eq!(stats["records"], 2);
    assert_eq!(stats["batches"], 1);
    assert_eq!(stats["idempotent_replays"], 2);
    assert_eq!(stats["duplicates_ignored"], 0);
}

#[tokio::test]
async fn same_records_under_a_new_key_are_deduped_by_record_id() {
    let app = app(memory_state(Config::default()));
    let keys = ["k1", "k2", "k3"];
    for key in keys {
        let reply =
            send(&app, post_logs(request("dev-a", 1..=4).to_string(), &[("idempotency-key", key)]))
                .await;
        assert_eq!(reply.status, StatusCode::OK);
    }
    // And once more without any key, overlapping two new records.
    let reply = send(&app, post_logs(request("dev-a", 3..=6).to_string(), &[])).await;
    assert_eq!(reply.status, StatusCode::OK);

    let stats = get_json(&app, "/api/stats").await;
    assert_eq!(stats["records"], 6);
    assert_eq!(stats["batches"], 4);
    assert_eq!(stats["duplicates_ignored"], 4 + 4 + 2);
    let records = get_json(&app, "/api/records?device=dev-a").await;
    let mut ids: Vec<String> = records["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    assert_eq!(ids, (1..=6).map(|s| format!("dev-a:{s}")).collect::<Vec<_>>());
}

#[tokio::test]
async fn gzip_and_identity_bodies_are_accepted() {
    let app = app(memory_state(Config::default()));
    let cases: &[(&str, &str)] = &[("gzip", "dev-g"), ("x-gzip", "dev-x"), ("identity", "dev-i")];
    for (encoding, device) in cases {
        let json = request(device, 1..=3).to_string().into_bytes();
        let body = if encoding.contains("gzip") { gzip(&json) } else { json };
        let reply = send(&app, post_logs(body, &[("content-encoding", encoding)])).await;
        assert_eq!(reply.status, StatusCode::OK, "{encoding}: {}", reply.text);
    }
    let stats = get_json(&app, "/api/stats").await;
    assert_eq!(stats["records"], 9);
    assert_eq!(stats["unique_devices"], 3);
}

/// One rejected request: what is sent and what must come back.
struct Rejection {
    name: &'static str,
    config: Config,
    content_type: Option<&'static str>,
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    status: StatusCode,
    reason: &'static str,
}

fn rejection(
    name: &'static str,
    body: impl Into<Vec<u8>>,
    status: StatusCode,
    reason: &'static str,
) -> Rejection {
    Rejection {
        name,
        config: Config::default(),
        content_type: Some("application/json"),
        headers: vec![],
        body: body.into(),
        status,
        reason,
    }
}

#[tokio::test]
async fn malformed_requests_are_rejected_and_store_nothing() {
    let valid = request("dev-a", 1..=3).to_string();
    let small = Config { max_body_bytes: 4096, ..Config::default() };
    let token = Config { token: Some("s3cret".into()), ..Config::default() };
    // One valid record followed by one without edge.record_id: the whole request must fail.
    let mut missing_id = request("dev-a", 1..=2);
    missing_id["resourceLogs"][0]["scopeLogs"][0]["logRecords"][1]["attributes"]
        .as_array_mut()
        .unwrap()
        .remove(0);

    let cases = vec![
        rejection(
            "garbage JSON",
            "{\"resourceLogs\": [",
            StatusCode::BAD_REQUEST,
            "malformed JSON",
        ),
        rejection("not JSON at all", "hello", StatusCode::BAD_REQUEST, "malformed JSON"),
        rejection("top-level array", "[]", StatusCode::BAD_REQUEST, "not an OTLP"),
        rejection(
            "resourceLogs not a list",
            r#"{"resourceLogs": 5}"#,
            StatusCode::BAD_REQUEST,
            "not an OTLP",
        ),
        rejection(
            "attributes as an object",
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":{"edge.record_id":"a:1"}}]}]}]}"#,
            StatusCode::BAD_REQUEST,
            "not an OTLP",
        ),
        rejection(
            "missing record id",
            missing_id.to_string(),
            StatusCode::BAD_REQUEST,
            "logRecords[1]: missing edge.record_id",
        ),
        Rejection {
            headers: vec![("content-encoding", "gzip")],
            ..rejection("bad gzip", valid.clone(), StatusCode::BAD_REQUEST, "invalid gzip")
        },
        Rejection {
            headers: vec![("content-encoding", "gzip")],
            ..rejection(
                "truncated gzip",
                gzip(valid.as_bytes())[..20].to_vec(),
                StatusCode::BAD_REQUEST,
                "invalid gzip",
            )
        },
        Rejection {
            headers: vec![("content-encoding", "br")],
            ..rejection(
                "brotli",
                valid.clone(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Content-Encoding",
            )
        },
        Rejection {
            config: small.clone(),
            ..rejection(
                "raw body over the limit",
                vec![b' '; 5000],
                StatusCode::PAYLOAD_TOO_LARGE,
                "exceeds the limit of 4096",
            )
        },
        Rejection {
            config: small.clone(),
            headers: vec![("content-encoding", "gzip")],
            // 1 MiB of spaces inflates far past 4 KiB but compresses to about 1 KiB.
            ..rejection(
                "gzip bomb",
                gzip(&vec![b' '; 1 << 20]),
                StatusCode::PAYLOAD_TOO_LARGE,
                "after decompression",
            )
        },
        Rejection {
            content_type: Some("application/x-protobuf"),
            ..rejection(
                "protobuf",
                valid.clone(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "only supports OTLP/HTTP JSON",
            )
        },
        Rejection {
            content_type: Some("text/plain"),
            ..rejection(
                "text/plain",
                valid.clone(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "only supports OTLP/HTTP JSON",
            )
        },
        Rejection {
            content_type: None,
            ..rejection(
                "no content type",
                valid.clone(),
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "missing Content-Type",
            )
        },
        Rejection {
            headers: vec![("idempotency-key", "")],
            ..rejection(
                "empty idempotency key",
                valid.clone(),
                StatusCode::BAD_REQUEST,
                "Idempotency-Key",
            )
        },
        Rejection {
            config: token.clone(),
            ..rejection("token missing", valid.clone(), StatusCode::UNAUTHORIZED, "bearer token")
        },
        Rejection {
            config: token.clone(),
            headers: vec![("authorization", "Bearer wrong")],
            ..rejection("token wrong", valid.clone(), StatusCode::UNAUTHORIZED, "bearer token")
        },
    ];

    for case in cases {
        let token = case.config.token.clone();
        let app = app(memory_state(case.config));
        let mut builder = axum::http::Request::post("/v1/logs");
        if let Some(ct) = case.content_type {
            builder = builder.header("content-type", ct);
        }
        for (k, v) in &case.headers {
            builder = builder.header(*k, *v);
        }
        let reply = send(&app, builder.body(axum::body::Body::from(case.body)).unwrap()).await;
        assert_eq!(reply.status, case.status, "{}: {}", case.name, reply.text);
        let error = reply.json()["error"].as_str().unwrap_or_default().to_owned();
        assert!(
            error.contains(case.reason),
            "{}: error {error:?} lacks {:?}",
            case.name,
            case.reason
        );
        if case.status == StatusCode::UNAUTHORIZED {
            assert_eq!(reply.headers["www-authenticate"], "Bearer", "{}", case.name);
        }
        let stats = get_json_with_token(&app, "/api/stats", token.as_deref()).await;
        assert_eq!(stats["records"], 0, "{}", case.name);
        assert_eq!(stats["batches"], 0, "{}", case.name);
        assert_eq!(stats["requests"]["rejected"], 1, "{}", case.name);
    }
}

#[tokio::test]
async fn body_exactly_at_the_limit_is_accepted() {
    let body = request("dev-a", 1..=2).to_string();
    let app = app(memory_state(Config { max_body_bytes: body.len(), ..Config::default() }));
    let reply = send(&app, post_logs(body.clone(), &[])).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    // The same limit applies after decompression: the gzip of the same body also fits.
    let reply = send(&app, post_logs(gzip(body.as_bytes()), &[("content-encoding", "gzip")])).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

#[tokio::test]
async fn valid_token_is_accepted() {
    let app = app(memory_state(Config { token: Some("s3cret".into()), ..Config::default() }));
    let reply = send(
        &app,
        post_logs(request("dev-a", 1..=1).to_string(), &[("authorization", "Bearer s3cret")]),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

#[tokio::test]
async fn non_finite_numbers_reject_only_their_records() {
    let app = app(memory_state(Config::default()));
    let mut records: Vec<_> = (1..=4).map(|s| scored_attrs("dev-a", s)).collect();
    records[0][2] = kv("edge.score", json!({"doubleValue": "NaN"}));
    records[2][2] = kv("edge.score", json!({"doubleValue": "-Infinity"}));
    let reply = send(&app, post_logs(request_with("dev-a", records).to_string(), &[])).await;
    assert_eq!(reply.status, StatusCode::OK);
    let partial = &reply.json()["partialSuccess"];
    assert_eq!(partial["rejectedLogRecords"], "2");
    let message = partial["errorMessage"].as_str().unwrap();
    assert!(message.contains("dev-a:1: edge.score is not a finite number"), "{message}");
    assert!(message.contains("dev-a:3"), "{message}");
    let records = get_json(&app, "/api/records").await;
    let ids: Vec<&str> = records["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["dev-a:4", "dev-a:2"]);
}

#[tokio::test]
async fn unscored_reading_and_unknown_attributes_are_kept() {
    let app = app(memory_state(Config::default()));
    let attrs = vec![
        kv("edge.record_id", json!({"stringValue": "dev-r:9"})),
        kv("edge.seq", json!({"intValue": "9"})),
        kv("edge.scored", json!({"boolValue": false})),
        kv(
            "edge.reading",
            json!({"arrayValue": {"values": [
                {"doubleValue": 1.5}, {"doubleValue": -2}, {"doubleValue": 0}, {"doubleValue": "NaN"}
            ]}}),
        ),
        kv("edge.unscored_reason", json!({"stringValue": "NON_FINITE"})),
        kv("edge.latency_us", json!({"doubleValue": 12.5})),
        kv(
            "edge.custom",
            json!({"kvlistValue": {"values": [kv("x", json!({"boolValue": true}))]}}),
        ),
    ];
    let reply = send(&app, post_logs(request_with("dev-r", vec![attrs]).to_string(), &[])).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let records = get_json(&app, "/api/records").await;
    let r = &records["records"][0];
    assert_eq!(r["record_id"], "dev-r:9");
    assert_eq!(r["device_id"], "dev-r");
    assert_eq!(r["seq"], 9);
    assert_eq!(r["scored"], false);
    assert_eq!(r["score"], json!(null));
    assert_eq!(r["anomaly"], json!(null));
    assert_eq!(r["latency_us"], 12.5);
    assert_eq!(r["reading"], json!([1.5, -2.0, 0.0, "NaN"]), "a broken sensor value is kept");
    assert_eq!(
        r["attrs"],
        json!({"edge.unscored_reason": "NON_FINITE", "edge.custom": {"x": true}})
    );
    assert_eq!(r["resource"], json!({"service.name": "edge-anomaly"}));
    assert_eq!(r["service_version"], "0.1.0");
    assert_eq!(r["time_unix_nano"], 1_700_000_000_000_000_009i64);
    assert_eq!(r["body"], "edge.reading");
}

#[tokio::test]
async fn empty_request_is_ok_and_stores_nothing() {
    let app = app(memory_state(Config::default()));
    let reply = send(&app, post_logs("{}", &[])).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.json(), json!({}));
    assert_eq!(get_json(&app, "/api/stats").await["records"], 0);
}

#[tokio::test]
async fn reset_fault_outside_serve_is_a_visible_500() {
    let state = faults_state();
    state
        .faults()
        .set(collector::FaultSpec::from_json(br#"{"mode": "reset_before_store"}"#).unwrap());
    let app = app(state);
    let reply = send(&app, post_logs(request("dev-a", 1..=1).to_string(), &[])).await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(reply.json()["error"].as_str().unwrap().contains("collector::serve"));
}
