//! [`SqliteStore`] against the outbox's rules: the store conformance suite on a file and in
//! memory, everything kept across a reopen, appends that survive `kill -9` at any instant,
//! full storage refused whole and recovered from, and files it must not open refused untouched.
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

#[path = "sqlite_store/crash.rs"]
mod crash;
#[path = "sqlite_store/files.rs"]
mod files;
#[path = "sqlite_store/full.rs"]
mod full;

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use edge_anomaly::outbox::{
    conformance, Ack, Batch, Entry, OutboxStore, Record, RetryState, StoreError, SyncSettings,
};
use edge_gateway::store::SqliteStore;
use futures::executor::block_on;

/// Timestamp of the first test reading: 2023-11-14T22:13:20Z.
pub const T0: u64 = 1_700_000_000_000;

/// A scored reading; `i` doubles as its timestamp offset so readings differ.
pub fn entry(i: u64) -> Entry {
    Entry::scored(T0 + i, "m-1", i as f32 / 8.0, i.is_multiple_of(7), 40)
}

/// A batch of `records` as the syncer would make it (the body only needs to be frozen text).
pub fn batch(key: &str, records: Vec<Record>) -> Batch {
    let body = format!("{{\"batch\":\"{key}\",\"records\":{}}}", records.len());
    Batch { key: key.into(), records, body, created_at_ms: T0, retry: None }
}

/// `PRAGMA integrity_check` of the database at `path`, over a connection of its own.
pub fn integrity(path: &Path) -> String {
    let conn = rusqlite::Connection::open(path).expect("open for the check");
    conn.query_row("PRAGMA integrity_check", [], |row| row.get(0)).expect("integrity_check")
}

#[test]
fn a_file_store_passes_the_conformance_suite() {
    // One file per name: every open is a real reopen of the database.
    let dir = tempfile::tempdir().expect("temp dir");
    let open = |name: &str| {
        let path = dir.path().join(format!("{name}.db"));
        async move { SqliteStore::open(path).map_err(StoreError::from) }
    };
    if let Err(failures) = block_on(conformance::run(open)) {
        panic!("conformance failures:\n{failures}");
    }
}

#[test]
fn an_in_memory_store_passes_the_conformance_suite() {
    // An in-memory database lives as long as its connection, so "reopening" a name hands out
    // another handle on the same store, as the memory store's factory does.
    let stores: RefCell<HashMap<String, Rc<SqliteStore>>> = RefCell::default();
    let open = |name: &str| {
        let store = match stores.borrow_mut().entry(name.to_owned()) {
            std::collections::hash_map::Entry::Occupied(e) => Ok(Rc::clone(e.get())),
            std::collections::hash_map::Entry::Vacant(e) => SqliteStore::open_in_memory()
                .map(|s| Rc::clone(e.insert(Rc::new(s))))
                .map_err(StoreError::from),
        };
        async move { store }
    };
    if let Err(failures) = block_on(conformance::run(open)) {
        panic!("conformance failures:\n{failures}");
    }
}

#[test]
fn a_reopened_store_keeps_everything() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("outbox.db");
    let retry = RetryState {
        attempts: 2,
        not_before_ms: T0 + 30_000,
        server_directed: true,
        last_error: "HTTP 503".into(),
        auth_needed: false,
    };
    let settings =
        SyncSettings { endpoint: "http://collector:4318".into(), token: None, send_readings: true };
    let records: Vec<Record> = (0..5).map(|i| Record::new(i, entry(i))).collect();
    let inflight = Batch { retry: Some(retry.clone()), ..batch("k1", records[..2].to_vec()) };
    block_on(async {
        let store = SqliteStore::open(&path).expect("create");
        assert_eq!(store.init_device_id("dev-1").await.expect("device id"), "dev-1");
        let entries: Vec<Entry> =
            (0..5).map(|i| entry(i).with_reading_id(format!("reading-{i}"))).collect();
        let outcome = store.append_entries(&entries, 100).await.expect("append");
        assert_eq!((outcome.first_seq, outcome.stored), (0, 5));
        store.begin_inflight(&batch("k1", records[..2].to_vec())).await.expect("begin");
        assert!(store.set_inflight_retry("k1", &retry).await.expect("retry"));
        store.count_dropped("NON_FINITE", 3).await.expect("count dropped");
        store.set_sync_settings(&settings).await.expect("settings");
    });

    // A restarted gateway: a new connection on the same file.
    block_on(async {
        let store = SqliteStore::open(&path).expect("reopen");
        assert_eq!(store.device_id().await.expect("device id"), Some("dev-1".into()));
        assert_eq!(store.init_device_id("dev-2").await.expect("init again"), "dev-1");
        assert_eq!(store.next_seq().await.expect("next seq"), 5);
        assert_eq!(store.oldest(10).await.expect("oldest"), records[2..].to_vec());
        assert_eq!(store.inflight().await.expect("inflight"), Some(inflight.clone()));
        assert_eq!(store.sync_settings().await.expect("settings"), Some(settings.clone()));
        assert_eq!(store.stats().await.expect("stats").dropped.get("NON_FINITE"), Some(&3));

        // Seqs continue without a gap, and a resent reading is still recognised.
        let again = [entry(5), entry(1).with_reading_id("reading-1"), entry(6)];
        let outcome = store.append_entries(&again, 100).await.expect("append");
        assert_eq!((outcome.first_seq, outcome.stored, outcome.already), (5, 2, vec![(1, 1)]));
        let ack = Ack { key: "k1".into(), rejected: 0, message: None };
        assert!(store.ack_inflight(&ack).await.expect("ack"));
    });

    block_on(async {
        let store = SqliteStore::open(&path).expect("reopen");
        let seqs: Vec<u64> =
            store.oldest(10).await.expect("oldest").iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![2, 3, 4, 5, 6]);
        let stats = store.stats().await.expect("stats");
        assert_eq!((stats.queued, stats.inflight_records, stats.sent_records_total), (5, 0, 2));
        assert_eq!(store.next_seq().await.expect("next seq"), 7);
    });
    let conn = rusqlite::Connection::open(&path).expect("open");
    let mode: String =
        conn.query_row("PRAGMA journal_mode", [], |row| row.get(0)).expect("journal mode");
    assert_eq!(mode, "wal", "the file is in WAL mode");
    assert_eq!(integrity(&path), "ok");
}
