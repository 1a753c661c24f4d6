//! The fleet view and the devices' drift exports on any store: devices and a device's scores a
//! page at a time without overlap, each snapshot stored and read back, the newest one kept, and
//! each device's current version's drift on the fleet page.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use edge_wire::drift::DriftSnapshot;
use serde_json::{json, Value};

use crate::common::client::{body, scored, to_axum};
use crate::common::drift::{metrics_device_request, snapshot, T};
use crate::common::{get_json, post_logs, request, send};

async fn drift(app: &Router, device: Option<&str>) -> Vec<Value> {
    let path = device.map_or_else(|| "/api/drift".to_owned(), |d| format!("/api/drift?device={d}"));
    get_json(app, &path).await.as_array().unwrap().clone()
}

async fn export(app: &Router, device: &str, snapshots: &[DriftSnapshot]) {
    let reply = send(app, to_axum(metrics_device_request(device, snapshots))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

pub async fn pages_the_fleet_and_a_device_series(app: &Router) {
    // Ids whose bytewise order differs from a locale's ("B" < "a" bytewise).
    let ids = ["B-9", "a-1", "dev-0", "dev-1", "dev-10", "dev-2"];
    for id in ids {
        let records: Vec<_> = (0..7).map(scored).collect();
        assert_eq!(send(app, post_logs(body(id, &records).to_string(), &[])).await.status, 200);
    }
    let mut seen = Vec::new();
    let mut path = "/api/fleet?limit=4".to_owned();
    loop {
        let page = get_json(app, &path).await;
        let devices = page["devices"].as_array().unwrap();
        assert!(devices.len() <= 4);
        seen.extend(devices.iter().map(|d| d["device_id"].as_str().unwrap().to_owned()));
        match page["next_after"].as_str() {
            Some(after) => path = format!("/api/fleet?limit=4&after={after}"),
            None => break,
        }
    }
    assert_eq!(seen, ids, "every device once, bytewise order");

    let mut seqs = Vec::new();
    let mut path = "/api/devices/dev-1/series?limit=3".to_owned();
    loop {
        let page = get_json(app, &path).await;
        for p in page["points"].as_array().unwrap() {
            assert_eq!(p["scored_by"], "device");
            seqs.push(p["seq"].as_i64().unwrap());
        }
        match page["next_before"].as_i64() {
            Some(before) => path = format!("/api/devices/dev-1/series?limit=3&before={before}"),
            None => break,
        }
    }
    assert_eq!(seqs, [6, 5, 4, 3, 2, 1, 0], "newest first, each record once");
    let none = get_json(app, "/api/devices/nobody/series").await;
    assert_eq!(none["points"], json!([]));
    let bad = send(app, Request::get("/api/fleet?limit=0").body(Body::empty()).unwrap()).await;
    assert_eq!(bad.status, 400);
}

pub async fn stores_drift_and_reads_it_back(app: &Router) {
    let sent = [snapshot("shuttle@1", T + 60, 400), snapshot("shuttle@2", T + 60, 80)];
    let request = metrics_device_request("dev-a", &sent);
    assert_eq!(request.header("content-encoding"), Some("gzip"), "a real-sized body is gzipped");
    let reply = send(app, to_axum(request)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json(), json!({}));
    export(app, "dev-b", &[snapshot("shuttle@1", T + 5, 7)]).await;

    let rows = drift(app, Some("dev-a")).await;
    assert_eq!(rows.len(), 2);
    for (row, s) in rows.iter().zip(&sent) {
        assert_eq!(row["device_id"], "dev-a");
        let stored: DriftSnapshot = serde_json::from_value(row.clone()).unwrap();
        assert_eq!(&stored, s);
        assert_eq!(row["anomaly_rate"], json!(0.25));
        assert!(row["received_at"].as_i64().unwrap() > 0);
    }
    let all = drift(app, None).await;
    let keys: Vec<_> =
        all.iter().map(|r| [r["device_id"].clone(), r["model_version"].clone()]).collect();
    assert_eq!(
        keys,
        [["dev-a", "shuttle@1"], ["dev-a", "shuttle@2"], ["dev-b", "shuttle@1"]]
            .map(|k| k.map(Value::from))
    );
}

pub async fn keeps_the_newest_drift_snapshot(app: &Router) {
    let newer = snapshot("m@1", T + 120, 500);
    let older = snapshot("m@1", T + 60, 300);
    for s in [&newer, &older, &newer] {
        export(app, "dev-a", std::slice::from_ref(s)).await;
    }
    let rows = drift(app, Some("dev-a")).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["count"], 500);
    assert_eq!(rows[0]["time_unix_nano"], T + 120);
    // A newer one replaces it.
    export(app, "dev-a", &[snapshot("m@1", T + 180, 900)]).await;
    assert_eq!(drift(app, Some("dev-a")).await[0]["count"], 900);
}

pub async fn shows_each_devices_current_drift(app: &Router) {
    // dev-a's records name shuttle-int8@1; its drift export covers that version and an old one.
    let reply = send(app, post_logs(request("dev-a", 1..=3).to_string(), &[])).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    send(app, post_logs(request("dev-b", 1..=2).to_string(), &[])).await;
    let mut current = snapshot("shuttle-int8@1", T + 60, 30);
    current.psi = 0.31;
    let old = snapshot("shuttle-int8@0", T + 60, 900);
    export(app, "dev-a", &[old, current]).await;

    let page = get_json(app, "/api/fleet").await;
    let devices = page["devices"].as_array().unwrap();
    let a = devices.iter().find(|d| d["device_id"] == "dev-a").unwrap();
    assert_eq!((a["drift_psi"].clone(), a["drift_count"].clone()), (json!(0.31), json!(30)));
    assert_eq!(a["model_version"], "shuttle-int8@1");
    // dev-b never exported drift: no figure rather than a made-up 0.
    let b = devices.iter().find(|d| d["device_id"] == "dev-b").unwrap();
    assert_eq!(b["drift_psi"], Value::Null);
}
