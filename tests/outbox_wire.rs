//! The wire format: OTLP/HTTP JSON field names and types, gzip, headers, batch cuts at the record
//! and byte caps, and the bytes-per-reading figure.
#![cfg(not(target_arch = "wasm32"))] // native; the browser runs tests/web_*.rs
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

mod sync_fakes;

use edge_anomaly::outbox::otlp::{self, BodySizer, Origin};
use edge_anomaly::outbox::{
    build_request, fit, gzip, idempotency_key, make_batch, wire_size, Batch, Entry, Record,
    SyncConfig,
};
use serde_json::{json, Value};
use sync_fakes::{attr, body_text, json_body, log_records, T0};

fn origin() -> Origin {
    Origin::new("d3v1ce", "1.2.3")
}

fn scored(seq: u64, score: f32, anomaly: bool) -> Record {
    Record::new(seq, Entry::scored(T0 + seq, "model-7", score, anomaly, 1_234))
}

fn unscored(seq: u64, reading: Vec<f32>) -> Record {
    Record::new(seq, Entry::unscored(T0 + seq, None, reading, "NOT_LOADED"))
}

fn config() -> SyncConfig {
    let mut c = SyncConfig::new("https://collector.example/otlp/", "1.2.3");
    c.bearer_token = Some("s3cret".into());
    c
}

fn body(records: &[Record]) -> Value {
    serde_json::from_str(&otlp::encode(records, &origin()).expect("encode")).expect("json")
}

#[test]
fn resource_and_scope() {
    let b = body(&[scored(1, 0.5, false)]);
    let rl = &b["resourceLogs"][0];
    assert_eq!(
        rl["resource"]["attributes"],
        json!([
            {"key": "service.name", "value": {"stringValue": "edge-anomaly"}},
            {"key": "service.version", "value": {"stringValue": "1.2.3"}},
            {"key": "device.id", "value": {"stringValue": "d3v1ce"}},
        ])
    );
    assert_eq!(rl["scopeLogs"][0]["scope"]["name"], "edge-anomaly");
    assert_eq!(b["resourceLogs"].as_array().map(Vec::len), Some(1));
}

#[test]
fn scored_log_record_shape() {
    let b = body(&[scored(42, 0.75, false)]);
    let r = &log_records(&b)[0];
    let nanos = ((T0 + 42) as u128 * 1_000_000).to_string();
    assert_eq!(r["timeUnixNano"], Value::String(nanos.clone()), "int64 as a string");
    assert_eq!(r["observedTimeUnixNano"], Value::String(nanos));
    assert_eq!(r["severityNumber"], 9);
    assert_eq!(r["severityText"], "INFO");
    assert_eq!(r["body"], json!({"stringValue": "anomaly score"}));
    assert_eq!(
        r["attributes"],
        json!([
            {"key": "edge.record_id", "value": {"stringValue": "d3v1ce:42"}},
            {"key": "edge.seq", "value": {"intValue": "42"}},
            {"key": "edge.scored", "value": {"boolValue": true}},
            {"key": "edge.score", "value": {"doubleValue": 0.75}},
            {"key": "edge.anomaly", "value": {"boolValue": false}},
            {"key": "edge.model_version", "value": {"stringValue": "model-7"}},
            {"key": "edge.latency_us", "value": {"intValue": "1234"}},
        ])
    );
    // camelCase only: no snake_case protobuf names leak through.
    let text = otlp::encode(&[scored(42, 0.75, false)], &origin()).expect("encode");
    for snake in ["resource_logs", "scope_logs", "log_records", "time_unix_nano", "string_value"] {
        assert!(!text.contains(snake), "{snake} in {text}");
    }
}

#[test]
fn anomalies_are_warnings() {
    let b = body(&[scored(1, 9.5, true)]);
    let r = &log_records(&b)[0];
    assert_eq!(
        (r["severityNumber"].clone(), r["severityText"].clone()),
        (json!(13), json!("WARN"))
    );
    assert_eq!(attr(r, "edge.anomaly"), Some(&json!({"boolValue": true})));
}

#[test]
fn unscored_records_carry_the_raw_reading() {
    let b = body(&[unscored(3, vec![1.5, -2.0, 0.1])]);
    let r = &log_records(&b)[0];
    assert_eq!(r["severityNumber"], 9);
    assert_eq!(attr(r, "edge.scored"), Some(&json!({"boolValue": false})));
    assert_eq!(attr(r, "edge.score"), None, "no score for an unscored reading");
    assert_eq!(attr(r, "edge.model_version"), None, "no model was loaded");
    assert_eq!(attr(r, "edge.latency_us"), Some(&json!({"intValue": "0"})));
    assert_eq!(
        attr(r, "edge.reading"),
        Some(&json!({"arrayValue": {"values": [
            {"doubleValue": 1.5}, {"doubleValue": -2.0}, {"doubleValue": 0.1}
        ]}}))
    );
    assert_eq!(attr(r, "edge.unscored_reason"), Some(&json!({"stringValue": "NOT_LOADED"})));
}

#[test]
fn non_finite_doubles_use_the_protobuf_json_strings() {
    let b = body(&[
        unscored(1, vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY]),
        scored(2, f32::NAN, false),
    ]);
    let recs = log_records(&b);
    let values = &attr(&recs[0], "edge.reading").expect("reading")["arrayValue"]["values"];
    assert_eq!(
        values,
        &json!([{"doubleValue": "NaN"}, {"doubleValue": "Infinity"}, {"doubleValue": "-Infinity"}])
    );
    assert_eq!(attr(&recs[1], "edge.score"), Some(&json!({"doubleValue": "NaN"})));
}

#[test]
fn request_line_and_headers() {
    let batch = make_batch(vec![scored(1, 0.5, false)], &origin(), &config(), T0, 0xabc)
        .expect("encode")
        .expect("a batch");
    let request = build_request(&batch, &config());
    assert_eq!(request.method, "POST");
    assert_eq!(request.url, "https://collector.example/otlp/v1/logs", "trailing slash trimmed");
    assert_eq!(request.header("Content-Type"), Some("application/json"));
    assert_eq!(request.header("Idempotency-Key"), Some("d3v1ce:1-1:0000000000000abc"));
    assert_eq!(request.header("Authorization"), Some("Bearer s3cret"));
    assert_eq!(request.header("Content-Encoding"), None, "a small body is not gzipped");
    assert_eq!(request.body, batch.body.as_bytes());

    let mut anonymous = config();
    anonymous.bearer_token = None;
    assert_eq!(build_request(&batch, &anonymous).header("authorization"), None);
}

#[test]
fn idempotency_keys_name_the_range_and_the_nonce() {
    assert_eq!(idempotency_key("dev", 10, 19, 1), "dev:10-19:0000000000000001");
    assert_ne!(idempotency_key("dev", 10, 19, 1), idempotency_key("dev", 10, 19, 2));
}

#[test]
fn large_bodies_are_gzipped_and_round_trip() {
    let records: Vec<Record> = (0..100).map(|i| scored(i, i as f32 / 7.0, i % 9 == 0)).collect();
    let batch = make_batch(records, &origin(), &config(), T0, 1).expect("encode").expect("a batch");
    let request = build_request(&batch, &config());
    assert_eq!(request.header("content-encoding"), Some("gzip"));
    assert!(
        request.body.len() * 4 < batch.body.len(),
        "{} vs {}",
        request.body.len(),
        batch.body.len()
    );
    assert_eq!(body_text(&request), batch.body, "gunzip gives the JSON back");
    assert_eq!(build_request(&batch, &config()).body, request.body, "gzip is deterministic");
    assert_eq!(log_records(&json_body(&request)).len(), 100);

    let size = wire_size(&batch, &config());
    assert_eq!(
        (size.records, size.json_bytes, size.wire_bytes),
        (100, batch.body.len(), request.body.len())
    );
    assert!(size.gzipped);
    let per = size.bytes_per_record();
    assert!(per > 10.0 && per < 120.0, "gzipped bytes per reading: {per}");
}

#[test]
fn gzip_only_when_long_enough_and_smaller() {
    let batch_with = |body: String| Batch {
        key: "k".into(),
        records: vec![],
        body,
        created_at_ms: T0,
        retry: None,
    };
    let c = config();
    assert_eq!(c.gzip_min_bytes, 1024, "default threshold");
    // (body length, expected content-encoding): below the threshold, then at it.
    for (len, expected) in [(1023, None), (1024, Some("gzip"))] {
        let request = build_request(&batch_with("a".repeat(len)), &c);
        assert_eq!(request.header("content-encoding"), expected, "{len} bytes");
    }
    // Over the threshold but gzip would grow it: sent plain.
    let mut eager = config();
    eager.gzip_min_bytes = 1;
    let tiny = batch_with("{}".into());
    assert!(gzip(b"{}").expect("gzip").len() > 2);
    let request = build_request(&tiny, &eager);
    assert_eq!((request.header("content-encoding"), request.body.as_slice()), (None, &b"{}"[..]));
}

#[test]
fn the_body_size_formula_is_exact() {
    let sizer = BodySizer::new(&origin()).expect("sizer");
    let records: Vec<Record> = (0..5)
        .map(|i| if i % 2 == 0 { scored(i, 0.1, false) } else { unscored(i, vec![1.0; 8]) })
        .collect();
    let predicted = sizer.envelope()
        + records.iter().map(|r| sizer.record_len(r).expect("len")).sum::<usize>()
        + records.len()
        - 1;
    assert_eq!(otlp::encode(&records, &origin()).expect("encode").len(), predicted);
    assert_eq!(otlp::encode(&[], &origin()).expect("encode").len(), sizer.envelope());
}

#[test]
fn batches_stop_at_the_record_cap() {
    let records: Vec<Record> = (0..4_500).map(|i| scored(i, 0.5, false)).collect();
    let sizer = BodySizer::new(&origin()).expect("sizer");
    let c = config();
    assert_eq!(c.max_batch_records, 4_000, "default record cap");
    assert_eq!(c.max_batch_bytes, 3 * 1024 * 1024, "default byte cap");
    assert_eq!(fit(&records, &sizer, &c).expect("fit"), 4_000);
    let mut small = config();
    small.max_batch_records = 7;
    assert_eq!(fit(&records, &sizer, &small).expect("fit"), 7);
    let batch = make_batch(records, &origin(), &small, T0, 1).expect("ok").expect("batch");
    assert_eq!((batch.first_seq(), batch.last_seq(), batch.records.len()), (0, 6, 7));
    assert_eq!(batch.key, idempotency_key("d3v1ce", 0, 6, 1));
}

#[test]
fn batches_stop_at_the_byte_cap() {
    let records: Vec<Record> = (0..50).map(|i| unscored(i, vec![0.123_456; 32])).collect();
    let sizer = BodySizer::new(&origin()).expect("sizer");
    let one = sizer.record_len(&records[0]).expect("len");
    let mut c = config();
    // Room for the envelope and exactly three records (plus their two commas).
    c.max_batch_bytes = sizer.envelope() + 3 * one + 2;
    assert_eq!(fit(&records, &sizer, &c).expect("fit"), 3);
    let batch = make_batch(records.clone(), &origin(), &c, T0, 1).expect("ok").expect("batch");
    assert_eq!(batch.records.len(), 3);
    assert_eq!(batch.body.len(), c.max_batch_bytes, "the cap is met exactly");
    c.max_batch_bytes -= 1;
    assert_eq!(fit(&records, &sizer, &c).expect("fit"), 2);
    // A single record over the cap still goes, alone, rather than blocking the queue.
    c.max_batch_bytes = 10;
    assert_eq!(fit(&records, &sizer, &c).expect("fit"), 1);
}

#[test]
fn nothing_to_batch_makes_no_batch() {
    assert_eq!(make_batch(vec![], &origin(), &config(), T0, 1).expect("ok"), None);
}

#[test]
fn config_is_validated() {
    let mut c = config();
    assert_eq!(c.validate(), Ok(()));
    c.endpoint = "collector.example".into();
    assert!(c.validate().is_err());
    let mut c = config();
    c.max_batch_records = 0;
    assert!(c.validate().is_err());
    let mut c = config();
    c.bearer_token = Some("line\nbreak".into());
    assert!(c.validate().is_err());
    let mut c = config();
    c.retry.jitter = 1.5;
    assert!(c.validate().is_err());
}

#[test]
fn wire_bytes_per_reading_for_full_default_batches() {
    // The figure the lead reports; printed with `--nocapture`, bounded so regressions show.
    let scored_batch: Vec<Record> =
        (0..100).map(|i| scored(1_000 + i, (i as f32).sin().abs(), i % 17 == 0)).collect();
    let unscored_batch: Vec<Record> = (0..100)
        .map(|i| unscored(1_000 + i, (0..9).map(|f| (i * 9 + f) as f32 * 0.37).collect()))
        .collect();
    for (name, records, max_json, max_wire) in
        [("scored", scored_batch, 700.0, 60.0), ("unscored", unscored_batch, 1_000.0, 120.0)]
    {
        let batch = make_batch(records, &origin(), &config(), T0, 1).expect("ok").expect("batch");
        let size = wire_size(&batch, &config());
        let json_per = size.json_bytes as f64 / size.records as f64;
        eprintln!(
            "{name}: {} records, {:.0} JSON bytes/reading, {:.1} wire bytes/reading (gzip {})",
            size.records,
            json_per,
            size.bytes_per_record(),
            size.gzipped
        );
        assert!(json_per < max_json && size.bytes_per_record() < max_wire, "{name}: {size:?}");
    }
}
