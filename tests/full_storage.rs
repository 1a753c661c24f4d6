//! Full storage that gives deleted space back only later, as Chromium's IndexedDB does over its
//! quota (every write refused, deletes committed, space returned when the database compacts):
//! the recorder's eviction stays bounded, and the outbox still drains, its batches sent
//! straight from the queue when they cannot be persisted as inflight.
#![cfg(not(target_arch = "wasm32"))] // native; the browser runs tests/e2e/pressure.test.mjs
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

mod sync_fakes;

use edge_anomaly::outbox::{
    FlushStatus, HttpResponse, MemoryStore, OutboxConfig, OutboxStore, Recorder,
    QUOTA_EVICTION_ROUNDS,
};
use futures::executor::block_on;
use sync_fakes::{config, entry, json_body, key_of, record_ids, syncer, FakeCollector, FakeEnv};

/// A store with room for `quota` records written, filled with `quota` readings.
fn full_store(quota: u64, env: &FakeEnv) -> MemoryStore {
    let store = MemoryStore::new().limit_records(quota).space_not_reclaimed();
    block_on(async {
        let recorder =
            Recorder::open(store.reopen(), OutboxConfig::default(), env).await.expect("open");
        recorder.record((0..quota).map(entry).collect()).await.expect("fill");
    });
    store
}

#[test]
fn eviction_that_frees_nothing_stops_after_bounded_rounds_until_a_write_succeeds() {
    let env = FakeEnv::new();
    let store = full_store(100, &env);
    block_on(async {
        let recorder =
            Recorder::open(store.reopen(), OutboxConfig::default(), &*env).await.expect("open");
        let err = recorder.record((100..105).map(entry).collect()).await.expect_err("full");
        assert_eq!(err.code(), "STORE_QUOTA");
        let evicted = store.stats().await.expect("stats").evicted_quota_total;
        // 5 + 10 + 20: the room asked doubles each round.
        let bound: u64 = (0..QUOTA_EVICTION_ROUNDS).map(|round| 5u64 << round).sum();
        assert_eq!(evicted, bound, "bounded rounds of eviction");
        // Eviction is known to free nothing now: further refusals evict nothing.
        for _ in 0..10 {
            let err = recorder.record((100..105).map(entry).collect()).await.expect_err("full");
            assert_eq!(err.code(), "STORE_QUOTA");
        }
        let stats = store.stats().await.expect("stats");
        assert_eq!(stats.evicted_quota_total, bound, "no eviction while it frees nothing");
        assert_eq!(stats.queued, 100 - bound, "the rest is still queued");

        // The database compacts: recording resumes, and so does eviction when full again.
        store.reclaim_space();
        let r = recorder.record((100..105).map(entry).collect()).await.expect("room again");
        assert_eq!((r.first_seq, r.count, r.evicted_for_quota), (100, 5, 0));
        let room = 100 - store.stats().await.expect("stats").queued;
        recorder.record((105..105 + room).map(entry).collect()).await.expect("fill again");
        recorder.record((200..205).map(entry).collect()).await.expect_err("full again");
        let stats = store.stats().await.expect("stats");
        assert_eq!(stats.evicted_quota_total, 2 * bound, "eviction tried again after a write");
    });
}

#[test]
fn a_store_too_full_to_persist_a_batch_still_drains_each_record_once() {
    let (env, collector) = (FakeEnv::new(), FakeCollector::new());
    let store = full_store(250, &env);
    let out = block_on(syncer(&store, &collector, &env, config()).flush()).expect("flush");
    assert_eq!((out.status, out.sent_batches, out.sent_records), (FlushStatus::Drained, 3, 250));
    let stats = block_on(store.stats()).expect("stats");
    assert_eq!((stats.queued, stats.inflight_records, stats.sent_records_total), (0, 0, 250));
    let mut ids = collector.stored.borrow().clone();
    assert_eq!(ids.len(), 250, "every record sent");
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 250, "none twice");
}

#[test]
fn an_unpersisted_batch_keeps_its_key_across_retries_and_its_record_ids_across_a_restart() {
    let (env, collector) = (FakeEnv::new(), FakeCollector::new());
    let store = full_store(10, &env);
    collector.respond(503);
    collector.respond(503);
    let s = syncer(&store, &collector, &env, config());
    let first = block_on(s.flush()).expect("flush");
    assert_eq!(first.status, FlushStatus::Backoff);
    env.set_now(first.next_attempt_at_ms.expect("a retry time"));
    block_on(s.flush()).expect("flush");
    let keys = collector.keys();
    assert_eq!((keys.len(), &keys[0]), (2, &keys[1]), "a retry sends the same key");

    // A restarted worker has lost the batch: the same records, under a new key.
    drop(s);
    let out = block_on(syncer(&store, &collector, &env, config()).flush()).expect("flush");
    assert_eq!((out.status, out.sent_records), (FlushStatus::Drained, 10));
    let requests = collector.requests.borrow();
    assert_ne!(key_of(&requests[2]), keys[0], "a new batch, a new key");
    let ids = |i: usize| record_ids(&json_body(&requests[i]));
    assert_eq!(ids(2), ids(0), "the same record ids, which the collector stores once");
}

#[test]
fn a_refused_unpersisted_batch_waits_for_room_to_be_dead_lettered() {
    let (env, collector) = (FakeEnv::new(), FakeCollector::new());
    let store = full_store(10, &env);
    let bad_request = || HttpResponse::status(400).with_body("bad batch");
    collector.script([sync_fakes::Step::Respond(bad_request())]);
    let s = syncer(&store, &collector, &env, config());
    let out = block_on(s.flush()).expect("flush");
    assert_eq!(out.status, FlushStatus::Backoff, "kept: no room to dead-letter it");
    assert!(out.last_error.as_deref().is_some_and(|e| e.contains("too full to dead-letter")));
    assert_eq!(block_on(store.stats()).expect("stats").queued, 10, "nothing lost");

    store.set_record_quota(100); // room again: the disk freed
    collector.script([sync_fakes::Step::Respond(bad_request())]);
    env.set_now(out.next_attempt_at_ms.expect("a retry time"));
    let out = block_on(s.flush()).expect("flush");
    assert_eq!((out.dead_lettered_batches, out.dead_lettered_records), (1, 10));
    let stats = block_on(store.stats()).expect("stats");
    assert_eq!((stats.queued, stats.dead_letter_records), (0, 10));
}
