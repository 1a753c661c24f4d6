//! Parsing and mapping tests: every known attribute, fallbacks, malformed bodies, limits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

fn record(attrs: Json) -> Json {
    serde_json::json!({
        "resourceLogs": [{
            "resource": {"attributes": [
                {"key": "device.id", "value": {"stringValue": "dev-a"}},
                {"key": "service.version", "value": {"stringValue": "1.2.3"}},
                {"key": "host.arch", "value": {"stringValue": "wasm32"}}
            ]},
            "scopeLogs": [{"logRecords": [{
                "timeUnixNano": "1700000000000000000",
                "body": {"stringValue": "reading"},
                "attributes": attrs
            }]}]
        }]
    })
}

fn kv(key: &str, value: Json) -> Json {
    serde_json::json!({"key": key, "value": value})
}

#[test]
fn maps_every_known_attribute() {
    let body = record(serde_json::json!([
        kv("edge.record_id", serde_json::json!({"stringValue": "dev-a:7"})),
        kv("edge.seq", serde_json::json!({"intValue": "7"})),
        kv("edge.score", serde_json::json!({"doubleValue": 0.25})),
        kv("edge.anomaly", serde_json::json!({"boolValue": true})),
        kv("edge.model_version", serde_json::json!({"stringValue": "shuttle-int8"})),
        kv("edge.latency_us", serde_json::json!({"intValue": 130})),
        kv("edge.scored", serde_json::json!({"boolValue": true})),
        kv(
            "edge.contributions.channels",
            serde_json::json!({"arrayValue": {"values": [{"stringValue": "f3"}, {"stringValue": "f1"}]}})
        ),
        kv(
            "edge.contributions.shares",
            serde_json::json!({"arrayValue": {"values": [{"doubleValue": 0.75}, {"doubleValue": "0.25"}]}})
        ),
        kv(
            "custom",
            serde_json::json!({"kvlistValue": {"values": [kv("a", serde_json::json!({"intValue": "1"}))]}})
        ),
    ]));
    let batch = parse(body.to_string().as_bytes()).unwrap();
    assert!(batch.rejected.is_empty());
    let r = &batch.records[0];
    assert_eq!(r.record_id, "dev-a:7");
    assert_eq!(r.device_id.as_deref(), Some("dev-a"));
    assert_eq!(r.seq, Some(7));
    assert_eq!(r.time_unix_nano, Some(1_700_000_000_000_000_000));
    assert_eq!(r.score, Some(0.25));
    assert_eq!(r.anomaly, Some(true));
    assert_eq!(r.model_version.as_deref(), Some("shuttle-int8"));
    assert_eq!(r.latency_us, Some(130.0));
    assert!(r.scored);
    assert_eq!(
        r.contributions,
        Some(vec![
            Contribution { channel: "f3".into(), share: 0.75 },
            Contribution { channel: "f1".into(), share: 0.25 },
        ])
    );
    assert_eq!(r.service_version.as_deref(), Some("1.2.3"));
    assert_eq!(Json::Object(r.attrs.clone()), serde_json::json!({"custom": {"a": 1}}));
    assert_eq!(
        Json::Object(batch.resources[r.resource].clone()),
        serde_json::json!({"host.arch": "wasm32"})
    );
    assert_eq!(r.body, Some(Json::String("reading".into())));
}

#[test]
fn unscored_reading_and_fallbacks() {
    let mut body = record(serde_json::json!([
        kv("edge.record_id", serde_json::json!({"stringValue": "dev-b:42"})),
        kv("edge.scored", serde_json::json!({"boolValue": false})),
        kv(
            "edge.reading",
            serde_json::json!({"arrayValue": {"values": [{"doubleValue": 1.5}, {"doubleValue": "2"}]}})
        ),
        kv("edge.seq", serde_json::json!({"stringValue": "not an int"})),
    ]));
    body["resourceLogs"][0]["resource"] = Json::Null;
    let batch = parse(body.to_string().as_bytes()).unwrap();
    let r = &batch.records[0];
    assert_eq!(r.device_id.as_deref(), Some("dev-b"), "device from the record id");
    assert_eq!(r.seq, Some(42), "seq from the record id");
    assert_eq!(r.score, None);
    assert!(!r.scored);
    assert_eq!(r.reading, Some(vec![1.5, 2.0]));
    assert_eq!(r.attrs.get("edge.seq"), Some(&Json::String("not an int".into())), "mistyped kept");
}

#[test]
fn table_of_malformed_bodies() {
    let cases: &[(&str, &str)] = &[
        ("{", "malformed JSON"),
        ("not json", "malformed JSON"),
        ("[]", "not an OTLP"),
        (r#"{"resourceLogs": [[]]}"#, "not an OTLP"),
        (
            r#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": [["k", {}]]}]}]}]}"#,
            "not an OTLP",
        ),
        (r#"{"resourceLogs": {}}"#, "not an OTLP"),
        (
            r#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": {"a": 1}}]}]}]}"#,
            "not an OTLP",
        ),
        (
            r#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "12ab"}]}]}]}"#,
            "not an OTLP",
        ),
        (
            r#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": []}]}]}]}"#,
            "missing edge.record_id",
        ),
        (
            r#"{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": [{"key": "edge.record_id", "value": {"intValue": "3"}}]}]}]}]}"#,
            "missing edge.record_id",
        ),
    ];
    for (body, expected) in cases {
        let err = parse(body.as_bytes()).unwrap_err().to_string();
        assert!(err.contains(expected), "{body}: {err}");
    }
}

#[test]
fn non_finite_reading_elements_are_kept() {
    let body = serde_json::json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": [
        kv("edge.record_id", serde_json::json!({"stringValue": "d:1"})),
        kv("edge.reading", serde_json::json!({"arrayValue": {"values": [
            {"doubleValue": "NaN"}, {"doubleValue": "Infinity"}, {"doubleValue": "-Infinity"}, {"doubleValue": 0.5}
        ]}})),
    ]}]}]}]});
    let batch = parse(body.to_string().as_bytes()).unwrap();
    assert!(batch.rejected.is_empty());
    let reading = batch.records[0].reading.clone().unwrap();
    assert!(reading[0].is_nan());
    assert_eq!(&reading[1..], [f64::INFINITY, f64::NEG_INFINITY, 0.5]);
    let json: Vec<Json> = reading.into_iter().map(double_to_json).collect();
    assert_eq!(Json::Array(json), serde_json::json!(["NaN", "Infinity", "-Infinity", 0.5]));
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let nested = |depth: usize| {
        let mut value = r#"{"doubleValue": 1}"#.to_owned();
        for _ in 0..depth {
            value = format!(r#"{{"arrayValue": {{"values": [{value}]}}}}"#);
        }
        format!(
            r#"{{"resourceLogs": [{{"scopeLogs": [{{"logRecords": [{{"attributes": [
                {{"key": "edge.record_id", "value": {{"stringValue": "d:1"}}}},
                {{"key": "deep", "value": {value}}}]}}]}}]}}]}}"#
        )
    };
    // Within the nesting limit: parsed and kept.
    let batch = parse(nested(Limits::default().max_depth).as_bytes()).unwrap();
    assert!(batch.records[0].attrs.contains_key("deep"));
    // Within serde_json's recursion limit but over ours: a limit error, nothing kept.
    let err = parse(nested(35).as_bytes()).unwrap_err();
    assert!(matches!(err, ParseError::Limit(_)), "{err}");
    // Far beyond it: a 400, not a stack overflow.
    for depth in [100, 1_000] {
        let err = parse(nested(depth).as_bytes()).unwrap_err().to_string();
        assert!(err.contains("recursion limit"), "{err}");
    }
}

#[test]
fn empty_request_is_valid() {
    for body in ["{}", r#"{"resourceLogs": null}"#, r#"{"resourceLogs": []}"#] {
        assert_eq!(parse(body.as_bytes()).unwrap(), Batch::default());
    }
}

#[test]
fn non_finite_values_reject_only_their_record() {
    for (attr, value) in [
        ("edge.score", serde_json::json!({"doubleValue": "NaN"})),
        ("edge.latency_us", serde_json::json!({"doubleValue": "Infinity"})),
        ("edge.score", serde_json::json!({"doubleValue": "-Infinity"})),
    ] {
        let body = serde_json::json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
            {"attributes": [kv("edge.record_id", serde_json::json!({"stringValue": "d:1"})), kv(attr, value)]},
            {"attributes": [kv("edge.record_id", serde_json::json!({"stringValue": "d:2"}))]}
        ]}]}]});
        let batch = parse(body.to_string().as_bytes()).unwrap();
        assert_eq!(batch.records.len(), 1, "{attr}");
        assert_eq!(batch.records[0].record_id, "d:2");
        assert_eq!(batch.rejected.len(), 1);
        assert!(batch.rejected[0].reason.contains(attr), "{attr}");
        let response: Json = serde_json::from_str(&batch.response_json()).unwrap();
        assert_eq!(response["partialSuccess"]["rejectedLogRecords"], "1");
    }
}
