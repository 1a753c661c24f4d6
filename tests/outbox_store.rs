//! The in-memory store passes the store conformance suite, and the recorder gives readings
//! durable, unique, increasing seqs and reports capacity evictions.
#![cfg(not(target_arch = "wasm32"))] // native; the browser runs tests/web_*.rs
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

mod sync_fakes;

use std::cell::RefCell;
use std::collections::HashMap;

use edge_anomaly::outbox::{
    conformance, MemoryStore, OutboxConfig, OutboxStore, Recorded, Recorder, Scoring, StoreError,
};
use futures::executor::block_on;
use sync_fakes::{entry, FakeEnv};

#[test]
fn memory_store_passes_the_conformance_suite() {
    // One store per name; opening a name again reopens the same state, like a database.
    let stores: RefCell<HashMap<String, MemoryStore>> = RefCell::default();
    let open = |name: &str| {
        let store = stores.borrow_mut().entry(name.to_owned()).or_default().reopen();
        async move { Ok::<_, StoreError>(store) }
    };
    if let Err(failures) = block_on(conformance::run(open)) {
        panic!("conformance failures:\n{failures}");
    }
}

#[test]
fn conformance_reports_a_store_that_is_not_fresh() {
    let dirty = MemoryStore::new();
    block_on(dirty.append(&[], 1)).expect("append");
    block_on(dirty.reserve_seqs(1)).expect("reserve");
    block_on(dirty.append(&[edge_anomaly::outbox::Record::new(0, entry(0))], 10)).expect("append");
    let open = |_: &str| {
        let store = dirty.reopen();
        async move { Ok::<_, StoreError>(store) }
    };
    let failures = block_on(conformance::run(open)).expect_err("a dirty store fails");
    assert!(failures.contains("is not fresh"), "{failures}");
}

#[test]
fn seqs_are_consecutive_and_survive_a_restart() {
    let env = FakeEnv::new();
    let store = MemoryStore::new();
    block_on(async {
        let recorder =
            Recorder::open(store.reopen(), OutboxConfig::default(), &*env).await.expect("open");
        let a = recorder.record(vec![entry(1), entry(2), entry(3)]).await.expect("record");
        assert_eq!(a, Recorded { first_seq: 0, count: 3, evicted: 0 });
        let device = recorder.device_id().to_owned();
        assert_eq!(device.len(), 32, "128-bit hex device id: {device}");
        drop(recorder);

        // A restarted worker: new recorder over the reopened store.
        let recorder =
            Recorder::open(store.reopen(), OutboxConfig::default(), &*env).await.expect("reopen");
        assert_eq!(recorder.device_id(), device, "the device id is kept");
        let b = recorder.record(vec![entry(4), entry(5)]).await.expect("record");
        assert_eq!((b.first_seq, b.count), (3, 2));
        let seqs: Vec<u64> =
            store.oldest(10).await.expect("oldest").iter().map(|r| r.seq).collect();
        assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
        assert_eq!(recorder.record(vec![]).await.expect("empty"), Recorded::default());
    });
}

#[test]
fn capacity_eviction_is_counted_and_reported() {
    let env = FakeEnv::new();
    let store = MemoryStore::new();
    block_on(async {
        let recorder = Recorder::open(store.reopen(), OutboxConfig { capacity: 4 }, &*env)
            .await
            .expect("open");
        let r = recorder.record((0..3).map(entry).collect()).await.expect("record");
        assert_eq!(r.evicted, 0);
        let r = recorder.record((3..6).map(entry).collect()).await.expect("record");
        assert_eq!(r.evicted, 2, "two oldest evicted to stay at 4");
        let kept: Vec<u64> =
            store.oldest(10).await.expect("oldest").iter().map(|r| r.seq).collect();
        assert_eq!(kept, vec![2, 3, 4, 5]);
        let stats = store.stats().await.expect("stats");
        assert_eq!((stats.queued, stats.evicted_total), (4, 2));
    });
}

#[test]
fn zero_capacity_is_refused() {
    let env = FakeEnv::new();
    let err = block_on(Recorder::open(MemoryStore::new(), OutboxConfig { capacity: 0 }, &*env))
        .expect_err("capacity 0");
    assert_eq!(err.code(), "INVALID_CONFIG");
}

#[test]
fn default_capacity_is_one_million() {
    assert_eq!(OutboxConfig::default().capacity, 1_000_000);
}

#[test]
fn unscored_records_keep_the_raw_reading() {
    let env = FakeEnv::new();
    let store = MemoryStore::new();
    block_on(async {
        let recorder =
            Recorder::open(store.reopen(), OutboxConfig::default(), &*env).await.expect("open");
        let e = edge_anomaly::EngineError::NotLoaded;
        let unscored =
            edge_anomaly::outbox::Entry::unscored(5, None, vec![1.0, 2.5, -3.0], e.code());
        recorder.record(vec![unscored]).await.expect("record");
        let records = store.oldest(1).await.expect("oldest");
        assert_eq!(
            records[0].result,
            Scoring::Unscored { reading: vec![1.0, 2.5, -3.0], reason: "NOT_LOADED".into() }
        );
        assert!(!records[0].is_scored());
        assert_eq!(records[0].id("dev"), "dev:0");
    });
}
