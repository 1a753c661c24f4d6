//! Property tests of the OTLP decoder (gzip, JSON, mapping) and of the endpoint around it:
//! whatever the body, the collector never panics, answers a typed error or a success, and a
//! refused request stores nothing.
//!
//! The number of cases per property is `COLLECTOR_PROPTEST_CASES` (default 256); the long run
//! in BENCHMARKS.md sets it higher.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use axum::http::StatusCode;
use collector::body::{decode, Encoding};
use collector::otlp::{parse_with, Limits};
use collector::{app, Config};
use common::*;
use proptest::prelude::*;
use serde_json::{json, Value};

fn cases() -> u32 {
    std::env::var("COLLECTOR_PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(256)
}

/// Arbitrary JSON, biased towards OTLP's shape so the mapping code is reached.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[a-zA-Z_.:0-9]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("NaN"),
            Just("Infinity"),
            Just("-Infinity"),
            Just("1e400"),
            Just("-0"),
            Just("edge.record_id"),
            Just("edge.seq"),
            Just("edge.score"),
            Just("edge.reading"),
            Just("device.id"),
            Just("18446744073709551616"),
            Just("")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("resourceLogs"),
                        Just("scopeLogs"),
                        Just("logRecords"),
                        Just("resource"),
                        Just("attributes"),
                        Just("key"),
                        Just("value"),
                        Just("stringValue"),
                        Just("intValue"),
                        Just("doubleValue"),
                        Just("boolValue"),
                        Just("arrayValue"),
                        Just("kvlistValue"),
                        Just("values"),
                        Just("body"),
                        Just("timeUnixNano"),
                        Just("bytesValue"),
                        Just("observedTimeUnixNano"),
                        Just("other")
                    ],
                    inner
                ),
                0..6
            )
            .prop_map(|kvs| Value::Object(
                kvs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
            )),
        ]
    })
}

/// A valid body to mutate.
fn valid_body() -> Vec<u8> {
    let mut records: Vec<_> = (0..4).map(|s| scored_attrs("dev-p", s)).collect();
    records[1].push(kv(
        "edge.reading",
        json!({"arrayValue": {"values": [{"doubleValue": "NaN"}, {"doubleValue": 1.5}]}}),
    ));
    request_with("dev-p", records).to_string().into_bytes()
}

/// Posts `body` to a fresh in-memory collector; returns the status and the stored record count.
fn post_fresh(body: Vec<u8>, gzip_encoded: bool) -> (StatusCode, i64, String) {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async move {
        let app = app(memory_state(Config::default()));
        let headers: &[(&str, &str)] =
            if gzip_encoded { &[("content-encoding", "gzip")] } else { &[] };
        let reply = send(&app, post_logs(body, headers)).await;
        let records = get_json(&app, "/api/stats").await["records"].as_i64().unwrap();
        (reply.status, records, reply.text)
    })
}

fn check_answer(status: StatusCode, records: i64, text: &str) -> Result<(), TestCaseError> {
    prop_assert!(
        [StatusCode::OK, StatusCode::BAD_REQUEST, StatusCode::PAYLOAD_TOO_LARGE].contains(&status),
        "status {status}: {text}"
    );
    let answer: Value =
        serde_json::from_str(text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
    if status == StatusCode::OK {
        prop_assert!(
            answer.as_object().is_some_and(|o| o.is_empty() || o.contains_key("partialSuccess")),
            "{text}"
        );
    } else {
        prop_assert!(answer["error"].is_string(), "{text}");
        prop_assert_eq!(records, 0, "a refused request stored records");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_with(&bytes, &Limits::default());
        let _ = decode(Encoding::Gzip, bytes.into(), 1 << 20);
    }

    #[test]
    fn arbitrary_json_is_parsed_or_refused(value in json_value()) {
        let body = json!({"resourceLogs": [value.clone()]}).to_string();
        let _ = parse_with(body.as_bytes(), &Limits::default());
        let _ = parse_with(value.to_string().as_bytes(), &Limits::default());
    }

    #[test]
    fn mutated_valid_bodies_are_answered_and_refusals_store_nothing(
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut body = valid_body();
        for (at, byte, kind) in edits {
            if body.is_empty() { break; }
            let i = at.index(body.len());
            match kind {
                0 => body[i] = byte,
                1 => body.insert(i, byte),
                _ => { body.remove(i); }
            }
        }
        let (status, records, text) = post_fresh(body, false);
        check_answer(status, records, &text)?;
    }

    #[test]
    fn truncated_or_corrupted_gzip_is_refused_whole(cut in any::<prop::sample::Index>(), flip in any::<Option<(prop::sample::Index, u8)>>()) {
        let mut packed = gzip(&valid_body());
        let keep = cut.index(packed.len());
        packed.truncate(keep.max(1));
        if let Some((at, byte)) = flip {
            let i = at.index(packed.len());
            packed[i] ^= byte;
        }
        let (status, records, text) = post_fresh(packed, true);
        check_answer(status, records, &text)?;
    }
}
