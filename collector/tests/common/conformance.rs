//! One behaviour suite for every store behind the API: each check takes an app (or a way to
//! make one's state from a [`Config`](collector::Config)) over an empty database and asserts
//! what a device, the dashboard and the fleet view see. `tests/postgres.rs` runs every check
//! against SQLite and against PostgreSQL, so the two stores cannot drift apart.
//!
//! A store-specific failure (a locked SQLite file, a lost PostgreSQL connection) stays in that
//! store's own tests; what is here must hold for any store.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

mod cloud;
mod contributions;
mod fleet;

use axum::http::StatusCode;
use axum::Router;
use serde_json::{json, Value};

// Every check is reached as `common::conformance::NAME` by the macro; test files that include
// `common` without running the suite use none of them.
#[allow(unused_imports)]
pub use self::cloud::*;
#[allow(unused_imports)]
pub use self::contributions::*;
#[allow(unused_imports)]
pub use self::fleet::*;
use super::*;

/// Every check, by name, for the macro that instantiates them per store. `$make` is a function
/// from a `Config` to a future of an `AppState` over a fresh database.
#[macro_export]
macro_rules! conformance_suite {
    ($make:expr) => {
        $crate::conformance_suite!(@app $make;
            stores_every_record, replays_a_key_with_the_stored_response,
            dedupes_records_under_a_new_key, reports_conflicts_and_keeps_the_first_content,
            names_ten_conflicts, reports_gaps_per_device, pages_records_newest_first,
            repeated_ids_within_a_batch, counts_a_seq_once_under_several_ids,
            keeps_unscored_readings_and_attributes,
            keeps_the_largest_reported_losses, stores_a_resource_once,
            pages_the_fleet_and_a_device_series, stores_drift_and_reads_it_back,
            keeps_the_newest_drift_snapshot, shows_each_devices_current_drift,
            keeps_the_contributions_of_flagged_readings,
            refuses_unsound_contributions_with_their_record);
        $crate::conformance_suite!(@state $make;
            scores_unscored_readings_in_the_cloud, stores_a_cloud_result_once);
    };
    (@app $make:expr; $($check:ident),*) => {
        $(
            #[tokio::test]
            async fn $check() {
                let app = collector::app(($make)(collector::Config::default()).await);
                common::conformance::$check(&app).await;
            }
        )*
    };
    (@state $make:expr; $($check:ident),*) => {
        $(
            #[tokio::test]
            async fn $check() {
                common::conformance::$check($make).await;
            }
        )*
    };
}

async fn post(app: &Router, body: &Value, key: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = key.map(|k| ("idempotency-key", k)).into_iter().collect();
    let reply = send(app, post_logs(body.to_string(), &headers)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    reply
}

fn ids(page: &Value) -> Vec<String> {
    page["records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["record_id"].as_str().unwrap().to_owned())
        .collect()
}

pub async fn stores_every_record(app: &Router) {
    let reply = post(app, &request("dev-a", 1..=5), Some("k1")).await;
    assert_eq!(reply.json(), json!({}));
    let stats = get_json(app, "/api/stats").await;
    assert_eq!(stats["records"], 5);
    assert_eq!(stats["unique_devices"], 1);
    assert_eq!(stats["anomalies"], 1, "seq 5 is the anomaly");
    assert_eq!(stats["batches"], 1);
    assert_eq!(stats["missing_seqs"], 1, "seq 0 was not sent");
}

pub async fn replays_a_key_with_the_stored_response(app: &Router) {
    let mut records: Vec<_> = (1..=3).map(|s| scored_attrs("dev-a", s)).collect();
    records[1][2] = kv("edge.score", json!({"doubleValue": "NaN"}));
    let body = request_with("dev-a", records);
    let first = post(app, &body, Some("batch-1")).await;
    assert_eq!(first.json()["partialSuccess"]["rejectedLogRecords"], "1");
    assert!(first.headers.get("idempotent-replayed").is_none());
    for replay_body in [body, request("dev-z", 1..=3)] {
        let replay = post(app, &replay_body, Some("batch-1")).await;
        assert_eq!(replay.text, first.text);
        assert_eq!(replay.headers["idempotent-replayed"], "true");
    }
    let stats = get_json(app, "/api/stats").await;
    assert_eq!(
        [&stats["records"], &stats["batches"], &stats["idempotent_replays"]],
        [2, 1, 2],
        "{stats}"
    );
    assert_eq!(stats["duplicates_ignored"], 0);
}

pub async fn dedupes_records_under_a_new_key(app: &Router) {
    for key in ["k1", "k2", "k3"] {
        post(app, &request("dev-a", 1..=4), Some(key)).await;
    }
    post(app, &request("dev-a", 3..=6), None).await;
    let stats = get_json(app, "/api/stats").await;
    assert_eq!([&stats["records"], &stats["batches"]], [6, 4]);
    assert_eq!(stats["duplicates_ignored"], 4 + 4 + 2);
    let mut stored = ids(&get_json(app, "/api/records?device=dev-a").await);
    stored.sort();
    assert_eq!(stored, (1..=6).map(|s| format!("dev-a:{s}")).collect::<Vec<_>>());
    let device = &get_json(app, "/api/devices").await["devices"][0];
    assert_eq!([&device["count"], &device["duplicates"], &device["missing"]], [6, 10, 1]);
}

pub async fn reports_conflicts_and_keeps_the_first_content(app: &Router) {
    post(app, &request("dev-a", 0..4), None).await;
    let records = [client::rescored(1, 0.999), client::scored(2), client::scored(4)];
    let mut body = client::body("dev-a", &records);
    let resource = body["resourceLogs"][0]["resource"]["attributes"].as_array_mut().unwrap();
    resource.push(kv("host.name", json!({"stringValue": "another"})));
    let reply = post(app, &body, Some("k2")).await;
    let partial = &reply.json()["partialSuccess"];
    assert_eq!(partial["rejectedLogRecords"], "1", "{}", reply.text);
    let message = partial["errorMessage"].as_str().unwrap();
    assert!(message.contains("dev-a:1: record id already stored with different content"));
    assert!(!message.contains("dev-a:2"), "{message}");
    let stats = get_json(app, "/api/stats").await;
    assert_eq!([&stats["records"], &stats["duplicates_ignored"], &stats["conflicts"]], [5, 1, 1]);
    let device = &get_json(app, "/api/devices").await["devices"][0];
    assert_eq!([&device["conflicts"], &device["duplicates"]], [1, 1]);
    let page = get_json(app, "/api/records?device=dev-a&limit=1000").await;
    let kept = page["records"].as_array().unwrap().iter().find(|r| r["record_id"] == "dev-a:1");
    assert_eq!(kept.unwrap()["score"], 0.1);
    let replay = post(app, &body, Some("k2")).await;
    assert_eq!(replay.text, reply.text);
}

pub async fn names_ten_conflicts(app: &Router) {
    post(app, &request("dev-a", 0..30), None).await;
    let records: Vec<_> = (0..30).map(|s| client::rescored(s, 7.0)).collect();
    let reply = post(app, &client::body("dev-a", &records), None).await;
    let partial = &reply.json()["partialSuccess"];
    assert_eq!(partial["rejectedLogRecords"], "30");
    let message = partial["errorMessage"].as_str().unwrap();
    assert!(message.starts_with("dev-a:0: "), "batch order is kept: {message}");
    assert!(message.ends_with("; and 20 more"), "{message}");
    assert_eq!(get_json(app, "/api/stats").await["conflicts"], 30);
}

pub async fn reports_gaps_per_device(app: &Router) {
    for (device, seqs) in [("dev-a", vec![0, 1, 2, 5, 6, 9]), ("dev-b", vec![3, 4])] {
        post(app, &request(device, seqs), None).await;
    }
    post(app, &request("dev-a", [5]), None).await;
    let devices = get_json(app, "/api/devices").await;
    let summary = |i: usize| {
        let d = &devices["devices"][i];
        (d["min_seq"].as_i64(), d["max_seq"].as_i64(), d["count"].as_i64(), d["missing"].as_i64())
    };
    assert_eq!(summary(0), (Some(0), Some(9), Some(6), Some(4)));
    assert_eq!(summary(1), (Some(3), Some(4), Some(2), Some(3)), "seqs start at 0");
    assert_eq!(devices["devices"][0]["last_seq"], 9);
    assert_eq!(get_json(app, "/api/stats").await["missing_seqs"], 7);
    assert_eq!(
        get_json(app, "/api/devices/dev-a/gaps").await,
        json!({"gaps": [{"from": 3, "to": 4}, {"from": 7, "to": 8}], "truncated": false})
    );
    assert_eq!(
        get_json(app, "/api/devices/dev-a/gaps?limit=1").await,
        json!({"gaps": [{"from": 3, "to": 4}], "truncated": true})
    );
    assert_eq!(
        get_json(app, "/api/devices/dev-b/gaps").await,
        json!({"gaps": [{"from": 0, "to": 2}], "truncated": false})
    );
    assert_eq!(
        get_json(app, "/api/devices/nobody/gaps").await,
        json!({"gaps": [], "truncated": false})
    );
}

pub async fn pages_records_newest_first(app: &Router) {
    post(app, &request("dev-a", 0..3), None).await;
    post(app, &request("dev-b", 0..2), None).await;
    post(app, &request("dev-a", 3..5), None).await;
    let first = get_json(app, "/api/records?limit=3").await;
    assert_eq!(ids(&first), ["dev-a:4", "dev-a:3", "dev-b:1"]);
    let before = first["next_before"].as_i64().unwrap();
    let rest = get_json(app, &format!("/api/records?limit=10&before={before}")).await;
    assert_eq!(ids(&rest), ["dev-b:0", "dev-a:2", "dev-a:1", "dev-a:0"]);
    assert_eq!(rest["next_before"], json!(null));
    let own = get_json(app, "/api/records?device=dev-b").await;
    assert_eq!(ids(&own), ["dev-b:1", "dev-b:0"]);
}

pub async fn repeated_ids_within_a_batch(app: &Router) {
    // dev-a:1 three times: stored, then the same (a duplicate), then other content (a conflict).
    let records = [client::scored(1), client::scored(1), client::rescored(1, 0.5)];
    let reply = post(app, &client::body("dev-a", &records), None).await;
    assert_eq!(reply.json()["partialSuccess"]["rejectedLogRecords"], "1", "{}", reply.text);
    let stats = get_json(app, "/api/stats").await;
    assert_eq!([&stats["records"], &stats["duplicates_ignored"], &stats["conflicts"]], [1, 1, 1]);
    let device = &get_json(app, "/api/devices").await["devices"][0];
    assert_eq!([&device["count"], &device["missing"]], [1, 1]);
    let page = get_json(app, "/api/records").await;
    assert_eq!(page["records"][0]["score"], 0.1, "the first content is the one stored");
}

pub async fn counts_a_seq_once_under_several_ids(app: &Router) {
    post(app, &request("dev-a", 0..3), None).await;
    let with_id = |id: &str, seq: i64| {
        let mut attrs = scored_attrs("dev-a", seq);
        attrs[0] = kv("edge.record_id", json!({"stringValue": id}));
        attrs
    };
    // Above every held seq twice, then below the batch's own largest (new, then held), then
    // below the stored ones (held).
    let records = [("x-1", 5), ("x-2", 5), ("x-3", 4), ("x-4", 4), ("x-5", 1)];
    post(app, &request_with("dev-a", records.iter().map(|&(i, s)| with_id(i, s)).collect()), None)
        .await;
    post(app, &request_with("dev-a", vec![with_id("y-1", 6), with_id("y-2", 6)]), None).await;
    let device = &get_json(app, "/api/devices").await["devices"][0];
    assert_eq!([&device["count"], &device["max_seq"], &device["missing"]], [10, 6, 1], "{device}");
    assert_eq!(
        get_json(app, "/api/devices/dev-a/gaps").await,
        json!({"gaps": [{"from": 3, "to": 3}], "truncated": false})
    );
}

pub async fn keeps_unscored_readings_and_attributes(app: &Router) {
    let attrs = vec![
        kv("edge.record_id", json!({"stringValue": "dev-r:9"})),
        kv("edge.seq", json!({"intValue": "9"})),
        kv("edge.scored", json!({"boolValue": false})),
        kv(
            "edge.reading",
            json!({"arrayValue": {"values": [
                {"doubleValue": 1.5}, {"doubleValue": -2}, {"doubleValue": "NaN"}
            ]}}),
        ),
        kv("edge.latency_us", json!({"doubleValue": 12.5})),
        kv(
            "edge.custom",
            json!({"kvlistValue": {"values": [kv("x", json!({"boolValue": true}))]}}),
        ),
    ];
    post(app, &request_with("dev-r", vec![attrs]), None).await;
    let r = &get_json(app, "/api/records").await["records"][0];
    assert_eq!(
        (&r["record_id"], &r["device_id"], &r["seq"]),
        (&json!("dev-r:9"), &json!("dev-r"), &json!(9))
    );
    assert_eq!(
        [&r["scored"], &r["score"], &r["anomaly"]],
        [&json!(false), &json!(null), &json!(null)]
    );
    assert_eq!(r["latency_us"], 12.5);
    assert_eq!(r["reading"], json!([1.5, -2.0, "NaN"]));
    assert_eq!(r["attrs"], json!({"edge.custom": {"x": true}}));
    assert_eq!(r["resource"], json!({"service.name": "edge-anomaly"}));
    assert_eq!(r["service_version"], "0.1.0");
    assert_eq!(r["time_unix_nano"], 1_700_000_000_000_000_009i64);
    assert_eq!(r["body"], "edge.reading");
    let stats = get_json(app, "/api/stats").await;
    assert_eq!(stats["unscored"], 1);
}

pub async fn keeps_the_largest_reported_losses(app: &Router) {
    let with_losses = |seqs: std::ops::Range<i64>, evicted: i64, dropped: i64| {
        let mut body = request("dev-l", seqs);
        let resource = body["resourceLogs"][0]["resource"]["attributes"].as_array_mut().unwrap();
        resource.push(kv("edge.outbox.evicted_total", json!({"intValue": evicted.to_string()})));
        resource.push(kv("edge.dropped.invalid", json!({"intValue": dropped.to_string()})));
        body
    };
    post(app, &with_losses(0..3, 0, 0), None).await;
    post(app, &with_losses(5..8, 2, 4), None).await;
    post(app, &with_losses(8..9, 1, 1), None).await;
    let device = &get_json(app, "/api/devices").await["devices"][0];
    assert_eq!(
        [&device["missing"], &device["reported_evicted"], &device["unexplained_missing"]],
        [2, 2, 0]
    );
    assert_eq!(device["reported_dropped"], 4);
    let stats = get_json(app, "/api/stats").await;
    assert_eq!([&stats["missing_seqs"], &stats["unexplained_missing_seqs"]], [2, 0]);
}

pub async fn stores_a_resource_once(app: &Router) {
    let mut body = request("dev-a", 0..3);
    let resource = body["resourceLogs"][0]["resource"]["attributes"].as_array_mut().unwrap();
    for i in 0..100 {
        resource.push(kv(&format!("extra.{i}"), json!({"stringValue": "x".repeat(40)})));
    }
    post(app, &body, None).await;
    post(app, &body, None).await;
    let page = get_json(app, "/api/records?limit=1").await;
    assert_eq!(page["records"][0]["resource"]["extra.99"], "x".repeat(40));
    assert_eq!(get_json(app, "/api/stats").await["duplicates_ignored"], 3);
}
