//! A database written by the first collector (schema version 1: the resource copied into every
//! record, no device summaries) is migrated on open, so upgrading the collector keeps every
//! stored record; a version this collector does not know is refused untouched.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "a failed expectation is the test failure"
)]

use collector::Store;
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

    // Opening again finds version 2 and changes nothing.
    let again = Store::open(&path).unwrap();
    assert_eq!(again.stats().unwrap(), stats);
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
