//! A flagged reading's top contributing channels on any store: stored with the record and shown
//! by `/api/records` in the device's order, part of the content a re-sent record is compared
//! on, and unsound ones refused with their record alone (the rest of the batch stored).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use serde_json::{json, Value};

use super::post;
use crate::common::{contributions, get_json, kv, request_with, scored_attrs};

/// Scored reading `seq` of `device` carrying `extra` attributes.
fn flagged(device: &str, seq: i64, extra: impl IntoIterator<Item = Value>) -> Vec<Value> {
    let mut attrs = scored_attrs(device, seq);
    attrs.extend(extra);
    attrs
}

async fn stored(app: &Router, id: &str) -> Value {
    let page = get_json(app, "/api/records?limit=1000").await;
    let records = page["records"].as_array().unwrap();
    records.iter().find(|r| r["record_id"] == id).cloned().unwrap_or(Value::Null)
}

pub async fn keeps_the_contributions_of_flagged_readings(app: &Router) {
    let three = contributions(&["f3", "f1", "f9"], &[json!(0.71), json!(0.2), json!(0.05)]);
    let records =
        vec![flagged("dev-c", 5, three.clone()), flagged("dev-c", 6, []), flagged("dev-c", 10, [])];
    let reply = post(app, &request_with("dev-c", records.clone()), None).await;
    assert_eq!(reply.json(), json!({}));

    let r = stored(app, "dev-c:5").await;
    assert_eq!(
        r["contributions"],
        json!([
            {"channel": "f3", "share": 0.71},
            {"channel": "f1", "share": 0.2},
            {"channel": "f9", "share": 0.05},
        ])
    );
    assert_eq!(r["attrs"], json!({}), "not kept again among the leftovers");
    assert_eq!(r["anomaly"], true);
    for older in ["dev-c:6", "dev-c:10"] {
        assert_eq!(stored(app, older).await["contributions"], Value::Null, "{older}");
    }

    // The same batch again is a duplicate; other contributions under the same id a conflict.
    post(app, &request_with("dev-c", records), None).await;
    let other = contributions(&["f1", "f3"], &[json!(0.5), json!(0.4)]);
    let reply = post(app, &request_with("dev-c", vec![flagged("dev-c", 5, other)]), None).await;
    let message = reply.json()["partialSuccess"]["errorMessage"].as_str().unwrap().to_owned();
    assert!(message.starts_with("dev-c:5: record id already stored"), "{message}");
    let stats = get_json(app, "/api/stats").await;
    assert_eq!([&stats["records"], &stats["duplicates_ignored"], &stats["conflicts"]], [3, 3, 1]);
    assert_eq!(stored(app, "dev-c:5").await["contributions"][0]["channel"], "f3");
}

pub async fn refuses_unsound_contributions_with_their_record(app: &Router) {
    let [channels, shares] = contributions(&["f1", "f2"], &[json!(0.5), json!(0.25)]);
    let unscored = vec![
        kv("edge.record_id", json!({"stringValue": "dev-u:7"})),
        kv("edge.seq", json!({"intValue": "7"})),
        kv("edge.scored", json!({"boolValue": false})),
        channels.clone(),
        shares.clone(),
    ];
    let seventeen: Vec<String> = (0..17).map(|i| format!("f{i}")).collect();
    let seventeen: Vec<&str> = seventeen.iter().map(String::as_str).collect();
    let cases: Vec<(Vec<Value>, &str)> = vec![
        (
            flagged("dev-u", 1, contributions(&["f1", "f2", "f3"], &[json!(0.5), json!(0.25)])),
            "3 channels but 2 shares",
        ),
        (flagged("dev-u", 2, contributions(&["f1"], &[json!(1.5)])), "share 0 (1.5) is not"),
        (
            flagged("dev-u", 3, contributions(&["f1", "f2"], &[json!(0.5), json!("NaN")])),
            "share 1 (NaN) is not",
        ),
        (
            flagged("dev-u", 4, contributions(&["f1", "f2"], &[json!(0.75), json!(0.5)])),
            "the shares sum to 1.25,",
        ),
        (unscored, "edge.contributions on an unscored record"),
        (
            flagged("dev-u", 8, [channels]),
            "edge.contributions.channels without edge.contributions.shares",
        ),
        (
            flagged("dev-u", 9, [shares.clone()]),
            "edge.contributions.shares without edge.contributions.channels",
        ),
        (
            flagged(
                "dev-u",
                10,
                [kv("edge.contributions.channels", json!({"stringValue": "f1"})), shares],
            ),
            "edge.contributions.channels is not an arrayValue of stringValue",
        ),
        (flagged("dev-u", 11, contributions(&[""], &[json!(0.5)])), "channel 0 is empty"),
        (flagged("dev-u", 12, contributions(&seventeen, &vec![json!(0.01); 17])), "17 entries"),
    ];
    let mut records: Vec<Vec<Value>> = cases.iter().map(|(attrs, _)| attrs.clone()).collect();
    records.push(flagged("dev-u", 15, contributions(&["f1"], &[json!(1)])));
    let reply = post(app, &request_with("dev-u", records), None).await;
    let partial = &reply.json()["partialSuccess"];
    assert_eq!(partial["rejectedLogRecords"], cases.len().to_string(), "{}", reply.text);
    let message = partial["errorMessage"].as_str().unwrap();
    let reasons: Vec<(&str, &str)> =
        message.split("; ").map(|named| named.split_once(": ").unwrap()).collect();
    assert_eq!(reasons.len(), cases.len(), "{message}");
    for ((attrs, expected), (id, reason)) in cases.iter().zip(reasons) {
        assert_eq!(id, attrs[0]["value"]["stringValue"].as_str().unwrap(), "{message}");
        assert!(reason.contains(expected), "{id}: {reason}, expected {expected}");
    }
    let page = get_json(app, "/api/records").await;
    assert_eq!(page["records"].as_array().unwrap().len(), 1, "nothing refused was stored");
    assert_eq!(page["records"][0]["contributions"], json!([{"channel": "f1", "share": 1.0}]));
    let stats = get_json(app, "/api/stats").await;
    assert_eq!([&stats["records"], &stats["unscored"], &stats["anomalies"]], [1, 0, 1]);
}
