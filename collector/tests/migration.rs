//! A database written by an earlier collector is migrated on open, so upgrading the collector
//! keeps every stored record: the first collector's (schema version 1: the resource copied into
//! every record, no device summaries), version 2 (no cloud scoring) and version 3 (no
//! contributions). A version this collector does not know is refused untouched.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed expectation is the test failure"
)]

mod common;

use collector::Store;
use common::{client, contributions, request_with, scored_attrs};
use rusqlite::{params, Connection};
use serde_json::json;

/// The version-1 schema, as the first collector created it.
const V1_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS records (
    record_id       TEXT PRIMARY KEY,
    device_id       TEXT,
    seq             INTEGER,
    time_unix_nano  INTEGER,
    score           REAL,
    anomaly         INTEGER,
    model_version   TEXT,
    latency_us      REAL,
    scored          INTEGER NOT NULL,
    service_version TEXT,
    reading_json    TEXT,
    attrs_json      TEXT NOT NULL,
    resource_json   TEXT NOT NULL,
    body_json       TEXT,
    received_at     INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS records_by_device ON records (device_id, received_at);
CREATE INDEX IF NOT EXISTS records_by_received ON records (received_at);
CREATE TABLE IF NOT EXISTS batches (
    idempotency_key TEXT PRIMARY KEY,
    received_at     INTEGER NOT NULL,
    record_count    INTEGER NOT NULL,
    response_json   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters (name, value) VALUES
    ('batches', 0), ('duplicates_ignored', 0), ('idempotent_replays', 0);
PRAGMA user_version = 1;
";

fn v1_database(path: &std::path::Path) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(V1_SCHEMA).unwrap();
    let resource = json!({"service.name": "edge-anomaly", "device.id": "a"}).to_string();
    let rows: [(&str, &str, i64, Option<f64>, bool); 4] = [
        ("a:0", "a", 0, Some(0.5), false),
        ("a:1", "a", 1, Some(9.0), true),
        ("a:3", "a", 3, None, false),
        ("b:0", "b", 0, Some(1.5), false),
    ];
    for (i, (id, device, seq, score, anomaly)) in rows.into_iter().enumerate() {
        conn.execute(
            "INSERT INTO records (record_id, device_id, seq, time_unix_nano, score, anomaly,
                 model_version, latency_us, scored, service_version, reading_json, attrs_json,
                 resource_json, body_json, received_at)
             VALUES (?1, ?2, ?3, 1, ?4, ?5, 'm1', 3.0, ?6, '0.1.0', ?7, '{}', ?8, NULL, ?9)",
            params![
                id,
                device,
                seq,
                score,
                anomaly,
                score.is_some(),
                score.is_none().then_some(r#"["NaN",2.5]"#),
                resource,
                100 + i as i64
            ],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO batches (idempotency_key, received_at, record_count, response_json)
         VALUES ('k1', 100, 4, '{}')",
        [],
    )
    .unwrap();
    conn.execute("UPDATE counters SET value = 1 WHERE name = 'batches'", []).unwrap();
}

#[test]
fn a_version_1_database_is_migrated_with_every_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("telemetry.sqlite");
    v1_database(&path);

    let store = Store::open(&path).expect("a version-1 file opens");
    let stats = store.stats().unwrap();
    assert_eq!((stats.records, stats.unique_devices, stats.anomalies), (4, 2, 1));
    assert_eq!((stats.batches, stats.missing_seqs), (1, 1), "seq 2 of device a is missing");

    let devices = store.devices().unwrap();
    let a = devices.iter().find(|d| d.device_id.as_deref() == Some("a")).unwrap();
    assert_eq!(
        (a.count, a.min_seq, a.max_seq, a.last_seq, a.missing),
        (3, Some(0), Some(3), Some(3), 1)
    );
    assert_eq!(a.mean_score, Some(4.75));
    let page = store.records(10, Some("a"), None).unwrap();
    assert_eq!(page.records.len(), 3);
    let unscored = page.records.iter().find(|r| r.record_id == "a:3").unwrap();
    assert_eq!(unscored.reading, Some(json!(["NaN", 2.5])));
    assert_eq!(unscored.resource["device.id"], "a", "the resource is kept, stored once");
    let resources: i64 = Connection::open(&path)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM resources", [], |r| r.get(0))
        .unwrap();
    assert_eq!(resources, 1);
    drop(store);

    // Opening again finds the current version and changes nothing.
    let again = Store::open(&path).unwrap();
    assert_eq!(again.stats().unwrap(), stats);
}

/// Makes a database of this collector's version what a version-`version` collector (2 or 3)
/// left: the columns and index added since dropped, the version set back.
fn downgrade(path: &std::path::Path, version: i64) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch("ALTER TABLE records DROP COLUMN contributions_json;").unwrap();
    if version == 2 {
        conn.execute_batch(
            "DROP INDEX records_cloud_pending;
             ALTER TABLE records DROP COLUMN cloud_score;
             ALTER TABLE records DROP COLUMN cloud_anomaly;
             ALTER TABLE records DROP COLUMN cloud_model_version;
             ALTER TABLE records DROP COLUMN cloud_scored_at;
             ALTER TABLE records DROP COLUMN cloud_error;
             ALTER TABLE devices DROP COLUMN unscored;
             ALTER TABLE devices DROP COLUMN cloud_scored;
             ALTER TABLE devices DROP COLUMN cloud_anomalies;
             ALTER TABLE devices DROP COLUMN cloud_failed;
             ALTER TABLE devices DROP COLUMN model_version;",
        )
        .unwrap();
    }
    conn.pragma_update(None, "user_version", version).unwrap();
}

#[test]
fn version_2_and_3_databases_are_migrated_with_every_record() {
    for version in [2, 3] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("telemetry.sqlite");
        let store = Store::open(&path).unwrap();
        let mut records: Vec<_> = (0..4).map(client::scored).collect();
        records.push(client::unscored(4, vec![1.0, f32::NAN], "NOT_LOADED"));
        let body = client::body("a", &records).to_string();
        store.ingest(Some("k1"), &collector::otlp::parse(body.as_bytes()).unwrap(), 100).unwrap();
        let (stats, devices) = (store.stats().unwrap(), store.devices().unwrap());
        let page = store.records(10, None, None).unwrap();
        drop(store);
        downgrade(&path, version);

        let store = Store::open(&path).expect("an older file opens");
        assert_eq!(store.stats().unwrap(), stats, "version {version}");
        assert_eq!(store.devices().unwrap(), devices, "version {version}: summaries recomputed");
        assert_eq!(store.records(10, None, None).unwrap(), page, "version {version}");
        let conn = Connection::open(&path).unwrap();
        let now: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(now, 4);

        let mut attrs = scored_attrs("a", 5);
        attrs.extend(contributions(&["f7"], &[json!(0.5)]));
        let body = request_with("a", vec![attrs]).to_string();
        store.ingest(None, &collector::otlp::parse(body.as_bytes()).unwrap(), 200).unwrap();
        let newest = store.records(1, None, None).unwrap().records.remove(0);
        assert_eq!(newest.contributions, Some(json!([{"channel": "f7", "share": 0.5}])));
    }
}

#[test]
fn an_unknown_version_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("telemetry.sqlite");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE records (x); PRAGMA user_version = 9;").unwrap();
    }
    let err = Store::open(&path).err().expect("refused");
    assert!(err.to_string().contains("version 9"), "{err}");
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(version, 9);
}
