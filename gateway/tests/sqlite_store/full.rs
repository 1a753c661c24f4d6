//! Full storage, made with the store's byte cap: a write that does not fit is refused whole
//! with `QuotaExceeded` and leaves a sound database; evicting and acknowledging make room at
//! once (SQLite reuses freed pages), so writes work again; and the recorder keeps recording
//! into a full store by evicting the oldest records.

use std::cell::Cell;
use std::path::Path;
use std::rc::Rc;

use edge_anomaly::outbox::{
    Ack, Entry, Env, OutboxConfig, OutboxStats, OutboxStore, Record, Recorder, StoreError,
};
use edge_gateway::store::SqliteStore;
use futures::executor::block_on;

use super::{batch, integrity, T0};

/// The cap: room for a few hundred of the readings below.
const MAX_BYTES: u64 = 256 * 1024;

/// An unscored reading with 32 values: about 400 bytes stored, a handful per page.
fn big(i: u64) -> Entry {
    let reading = (0..32).map(|v| (i * 32 + v) as f32 / 3.0).collect();
    Entry::unscored(T0 + i, None, reading, "NOT_LOADED")
}

/// Appends readings one at a time from `next` until storage refuses one; returns the number of
/// the refused reading.
fn fill(store: &SqliteStore, mut next: u64) -> u64 {
    loop {
        match block_on(store.append_entries(&[big(next)], u64::MAX)) {
            Ok(outcome) => assert_eq!(outcome.stored, 1),
            Err(StoreError::QuotaExceeded(_)) => return next,
            Err(e) => panic!("append {next}: {e}"),
        }
        next += 1;
        assert!(next < 100_000, "the cap never filled");
    }
}

fn capped(path: &Path) -> SqliteStore {
    SqliteStore::open(path).expect("open").with_max_bytes(MAX_BYTES).expect("cap")
}

/// Everything a refused write must leave as it was.
fn snapshot(store: &SqliteStore) -> (u64, Vec<Record>, OutboxStats) {
    block_on(async {
        let next_seq = store.next_seq().await.expect("next seq");
        (
            next_seq,
            store.oldest(usize::MAX).await.expect("oldest"),
            store.stats().await.expect("stats"),
        )
    })
}

fn is_quota<T: std::fmt::Debug>(result: Result<T, StoreError>) -> bool {
    matches!(result, Err(StoreError::QuotaExceeded(_)))
}

#[test]
fn full_storage_refuses_a_write_whole_and_stays_sound() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("outbox.db");
    let store = capped(&path);
    let next = fill(&store, 0);
    assert!(next > 100, "only {next} readings fit under the cap");
    let before = snapshot(&store);
    assert_eq!(before.0, next, "the refused reading took no seq");

    let many: Vec<Entry> = (next..next + 20).map(big).collect();
    assert!(is_quota(block_on(store.append_entries(&many, u64::MAX))), "a batch is refused");
    assert!(is_quota(block_on(store.append_entries(&many[..1], u64::MAX))));
    let huge = batch("huge", before.1[..3].to_vec());
    let huge = edge_anomaly::outbox::Batch { body: "x".repeat(1 << 20), ..huge };
    assert!(is_quota(block_on(store.begin_inflight(&huge))), "a batch bigger than the cap");
    assert_eq!(snapshot(&store), before, "refused writes change nothing");
    drop(store);

    assert_eq!(integrity(&path), "ok");
    let store = SqliteStore::open(&path).expect("reopen without the cap");
    assert_eq!(snapshot(&store), before, "nothing half-written was committed");
    let outcome = block_on(store.append_entries(&many, u64::MAX)).expect("room without the cap");
    assert_eq!((outcome.first_seq, outcome.stored), (next, 20));
}

#[test]
fn evicting_and_acknowledging_make_room_again() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("outbox.db");
    let store = capped(&path);
    let mut next = fill(&store, 0);

    // Eviction for quota frees room for the next append.
    assert_eq!(block_on(store.evict_for_quota(20)).expect("evict"), 20);
    let outcome = block_on(store.append_entries(&[big(next)], u64::MAX)).expect("room again");
    assert_eq!(outcome.first_seq, next, "seqs continue after the refusals");
    next = fill(&store, next + 1);

    // An acknowledgement straight from the queue succeeds on a full store and frees room.
    let front = block_on(store.oldest(20)).expect("oldest");
    let ack = Ack { key: "k1".into(), rejected: 0, message: None };
    assert_eq!(block_on(store.ack_queued(&batch("k1", front), &ack)).expect("ack queued"), 20);
    block_on(store.append_entries(&[big(next)], u64::MAX)).expect("room after the ack");
    next = fill(&store, next + 1);

    // So does acknowledging the inflight batch (big enough to hold a few pages: a page freed
    // in one table is reused by any other, but a single freed page may not cover the append's
    // new queue and index pages).
    block_on(store.evict_for_quota(40)).expect("evict");
    let front = block_on(store.oldest(40)).expect("oldest");
    block_on(store.begin_inflight(&batch("k2", front))).expect("begin");
    next = fill(&store, next);
    let ack = Ack { key: "k2".into(), rejected: 0, message: None };
    assert!(block_on(store.ack_inflight(&ack)).expect("ack inflight"));
    block_on(store.append_entries(&[big(next)], u64::MAX)).expect("room after the ack");
    drop(store);

    assert_eq!(integrity(&path), "ok");
    let stats = block_on(SqliteStore::open(&path).expect("reopen").stats()).expect("stats");
    assert_eq!(
        (stats.sent_records_total, stats.sent_batches_total, stats.evicted_quota_total),
        (60, 2, 60)
    );
}

#[test]
fn counts_too_big_for_a_full_store_are_kept_until_a_write_succeeds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("outbox.db");
    let store = capped(&path);
    fill(&store, 0);
    // Storing this message needs pages that deleting two records does not free.
    let message = "m".repeat(64 * 1024);
    let ack = Ack { key: "k1".into(), rejected: 1, message: Some(message.clone()) };
    let front = block_on(store.oldest(2)).expect("oldest");
    assert_eq!(block_on(store.ack_queued(&batch("k1", front), &ack)).expect("ack queued"), 2);
    let stats = block_on(store.stats()).expect("stats");
    assert_eq!((stats.sent_records_total, stats.rejected_records_total), (2, 1), "shown");
    assert_eq!(stats.last_rejection.as_deref(), Some(message.as_str()));
    let stored = block_on(SqliteStore::open(&path).expect("second handle").stats()).expect("stats");
    assert_eq!(stored.sent_records_total, 0, "kept in memory: storage had no room for them");

    // Room again: the next write of the totals stores them.
    block_on(store.evict_for_quota(u64::MAX)).expect("evict everything");
    block_on(store.count_dropped("NON_FINITE", 1)).expect("count dropped");
    drop(store);
    let stats = block_on(SqliteStore::open(&path).expect("reopen").stats()).expect("stats");
    assert_eq!((stats.sent_records_total, stats.rejected_records_total), (2, 1), "stored");
    assert_eq!(stats.last_rejection, Some(message));
    assert_eq!(stats.dropped.get("NON_FINITE"), Some(&1));
}

/// A fixed clock and a counter for randomness.
struct TestEnv(Cell<u64>);

impl Env for TestEnv {
    fn now_ms(&self) -> u64 {
        T0
    }

    fn random_u64(&self) -> u64 {
        self.0.set(self.0.get() + 1);
        self.0.get()
    }
}

#[test]
fn the_recorder_keeps_recording_into_a_full_store() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Rc::new(capped(&dir.path().join("outbox.db")));
    let env = TestEnv(Cell::new(0));
    let config = OutboxConfig::default();
    let recorder = block_on(Recorder::open(Rc::clone(&store), config, &env)).expect("recorder");
    let next = fill(&store, 0);
    let recorded = block_on(recorder.record((next..next + 5).map(big).collect())).expect("record");
    assert_eq!((recorded.first_seq, recorded.count), (next, 5));
    assert!(recorded.evicted_for_quota >= 5, "the oldest made room: {recorded:?}");
    let stats = block_on(store.stats()).expect("stats");
    assert_eq!(stats.evicted_quota_total, recorded.evicted_for_quota);
}
