//! The in-memory store passes the store conformance suite; the recorder gives readings durable,
//! consecutive seqs, reports capacity evictions and keeps recording when storage is full; and
//! the stored encoding round-trips every float.
#![cfg(not(target_arch = "wasm32"))] // native; the browser runs tests/web_*.rs
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

mod sync_fakes;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;

use edge_anomaly::outbox::{
    conformance, stored, Ack, AppendOutcome, Batch, DeadLetter, Entry, Failure, MemoryStore,
    OutboxConfig, OutboxStats, OutboxStore, Record, Recorded, Recorder, RetryState, Scoring, Seq,
    StoreError, SyncSettings,
};
use futures::executor::block_on;
use futures::poll;
use proptest::prelude::*;
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
    block_on(dirty.append_entries(&[], 1)).expect("append");
    block_on(dirty.append_entries(&[entry(0)], 10)).expect("append");
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
        assert_eq!(a, Recorded { first_seq: 0, count: 3, ..Recorded::default() });
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

#[test]
fn full_storage_evicts_the_oldest_and_keeps_recording() {
    let env = FakeEnv::new();
    // Room for 5 records in all (queued, inflight and dead), a cap of 100 that never binds.
    let store = MemoryStore::new().limit_records(5);
    block_on(async {
        let recorder = Recorder::open(store.reopen(), OutboxConfig { capacity: 100 }, &*env)
            .await
            .expect("open");
        recorder.record((0..4).map(entry).collect()).await.expect("record");
        let r = recorder.record((4..7).map(entry).collect()).await.expect("full storage records");
        assert_eq!((r.first_seq, r.count), (4, 3));
        assert_eq!((r.evicted, r.evicted_for_quota), (3, 3), "evicted to make room");
        let kept: Vec<u64> =
            store.oldest(10).await.expect("oldest").iter().map(|r| r.seq).collect();
        assert_eq!(kept, vec![3, 4, 5, 6], "the oldest went first");
        let stats = store.stats().await.expect("stats");
        assert_eq!((stats.evicted_total, stats.evicted_quota_total), (3, 3));
    });
}

#[test]
fn full_storage_with_nothing_to_evict_is_a_quota_error() {
    let env = FakeEnv::new();
    let store = MemoryStore::new().limit_records(2);
    block_on(async {
        let recorder =
            Recorder::open(store.reopen(), OutboxConfig::default(), &*env).await.expect("open");
        let err = recorder.record((0..3).map(entry).collect()).await.expect_err("3 > quota 2");
        assert_eq!(err.code(), "STORE_QUOTA");
        let stats = store.stats().await.expect("stats");
        assert_eq!((stats.queued, stats.evicted_quota_total), (0, 0), "nothing stored");
        assert_eq!(store.next_seq().await.expect("next seq"), 0, "no seq consumed");
    });
}

#[test]
fn reading_ids_are_forgotten_oldest_first() {
    let store = MemoryStore::new().keep_reading_ids(2);
    block_on(async {
        let with_id = |i: u64| entry(i).with_reading_id(format!("r{i}"));
        store.append_entries(&[with_id(0), with_id(1), with_id(2)], 100).await.expect("append");
        let again = store.append_entries(&[with_id(2), with_id(1), with_id(0)], 100).await;
        let again = again.expect("append again");
        assert_eq!(again.already, vec![(0, 2), (1, 1)], "the two most recent are remembered");
        assert_eq!((again.first_seq, again.stored), (3, 1), "r0 was forgotten: stored again");
    });
}

#[test]
fn drops_are_counted_through_the_recorder() {
    let env = FakeEnv::new();
    let store = MemoryStore::new();
    block_on(async {
        let recorder =
            Recorder::open(store.reopen(), OutboxConfig::default(), &*env).await.expect("open");
        recorder.count_dropped("WORKER_START", 4).await.expect("count");
        let stats = store.stats().await.expect("stats");
        assert_eq!(stats.dropped.get("WORKER_START"), Some(&4));
    });
}

/// What IndexedDB stores held for a non-finite value before the wire encoding: serde_json's
/// `null`. Such records must still be readable (as NaN), or the queue stays jammed.
#[test]
fn a_stored_null_float_reads_back_as_nan() {
    let old_scored = r#"{"seq":3,"timestamp_ms":5,"model_version":"m","latency_us":1,
        "result":{"Scored":{"score":null,"anomaly":false}}}"#;
    let record: Record = stored::decode(old_scored).expect("decodes");
    assert!(matches!(record.result, Scoring::Scored { score, .. } if score.is_nan()));
    let old_unscored = r#"{"seq":4,"timestamp_ms":5,"model_version":null,"latency_us":0,
        "result":{"Unscored":{"reading":[1.5,null],"reason":"NOT_LOADED"}}}"#;
    let record: Record = stored::decode(old_unscored).expect("decodes");
    let Scoring::Unscored { reading, .. } = record.result else { panic!("unscored") };
    assert_eq!(reading[0], 1.5);
    assert!(reading[1].is_nan());
}

#[test]
fn non_finite_values_are_stored_as_the_wire_spells_them() {
    let record = Record::new(0, Entry::unscored(1, None, vec![f32::NAN, f32::NEG_INFINITY], "X"));
    let text = stored::encode(&record).expect("encodes");
    assert!(text.contains(r#""reading":["NaN","-Infinity"]"#), "{text}");
}

/// Same value, with every NaN equal to every NaN (payload bits need not survive).
fn same(a: f32, b: f32) -> bool {
    (a.is_nan() && b.is_nan()) || a.to_bits() == b.to_bits()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(10_000))]
    /// Any f32 bit pattern, as a score or in a reading, survives the stored encoding.
    #[test]
    fn any_f32_round_trips_through_the_record_encoding(
        score_bits in any::<u32>(),
        reading_bits in proptest::collection::vec(any::<u32>(), 0..6),
    ) {
        let score = f32::from_bits(score_bits);
        let reading: Vec<f32> = reading_bits.iter().map(|&b| f32::from_bits(b)).collect();
        let scored = Record::new(1, Entry::scored(2, "m", score, true, 3));
        let unscored = Record::new(2, Entry::unscored(2, None, reading.clone(), "NOT_LOADED"));
        let back: Record = stored::decode(&stored::encode(&scored).expect("encode"))
            .expect("decode");
        let Scoring::Scored { score: got, .. } = back.result else { panic!("scored") };
        prop_assert!(same(got, score), "{:#x} came back as {:#x}", score_bits, got.to_bits());
        let back: Record = stored::decode(&stored::encode(&unscored).expect("encode"))
            .expect("decode");
        let Scoring::Unscored { reading: got, .. } = back.result else { panic!("unscored") };
        prop_assert_eq!(got.len(), reading.len());
        for (g, r) in got.iter().zip(&reading) {
            prop_assert!(same(*g, *r), "{:#x} came back as {:#x}", r.to_bits(), g.to_bits());
        }
    }
}

/// A store whose `stall_at`-th call (counting from 0) never returns: a worker stopped by the
/// browser while that store step was pending.
struct Stalling {
    inner: MemoryStore,
    calls: Cell<u32>,
    stall_at: u32,
}

impl Stalling {
    async fn step<T>(&self, call: impl Future<Output = T>) -> T {
        let n = self.calls.replace(self.calls.get() + 1);
        if n == self.stall_at {
            std::future::pending::<()>().await;
        }
        call.await
    }
}

impl OutboxStore for Stalling {
    async fn device_id(&self) -> Result<Option<String>, StoreError> {
        self.inner.device_id().await
    }
    async fn init_device_id(&self, candidate: &str) -> Result<String, StoreError> {
        self.inner.init_device_id(candidate).await
    }
    async fn next_seq(&self) -> Result<Seq, StoreError> {
        self.step(self.inner.next_seq()).await
    }
    async fn append_entries(&self, e: &[Entry], cap: u64) -> Result<AppendOutcome, StoreError> {
        self.step(self.inner.append_entries(e, cap)).await
    }
    async fn evict_for_quota(&self, max: u64) -> Result<u64, StoreError> {
        self.step(self.inner.evict_for_quota(max)).await
    }
    async fn oldest(&self, max: usize) -> Result<Vec<Record>, StoreError> {
        self.step(self.inner.oldest(max)).await
    }
    async fn queued(&self) -> Result<u64, StoreError> {
        self.step(self.inner.queued()).await
    }
    async fn begin_inflight(&self, batch: &Batch) -> Result<(), StoreError> {
        self.step(self.inner.begin_inflight(batch)).await
    }
    async fn inflight(&self) -> Result<Option<Batch>, StoreError> {
        self.step(self.inner.inflight()).await
    }
    async fn set_inflight_retry(&self, key: &str, retry: &RetryState) -> Result<bool, StoreError> {
        self.step(self.inner.set_inflight_retry(key, retry)).await
    }
    async fn ack_queued(&self, batch: &Batch, ack: &Ack) -> Result<u64, StoreError> {
        self.step(self.inner.ack_queued(batch, ack)).await
    }
    async fn ack_inflight(&self, ack: &Ack) -> Result<bool, StoreError> {
        self.step(self.inner.ack_inflight(ack)).await
    }
    async fn release_inflight(&self, key: &str) -> Result<bool, StoreError> {
        self.step(self.inner.release_inflight(key)).await
    }
    async fn dead_letter_inflight(&self, k: &str, f: &Failure, m: u64) -> Result<bool, StoreError> {
        self.step(self.inner.dead_letter_inflight(k, f, m)).await
    }
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.step(self.inner.dead_letters()).await
    }
    async fn redrive_dead_letter(&self, key: &str) -> Result<Option<u64>, StoreError> {
        self.step(self.inner.redrive_dead_letter(key)).await
    }
    async fn count_dropped(&self, reason: &str, n: u64) -> Result<(), StoreError> {
        self.step(self.inner.count_dropped(reason, n)).await
    }
    async fn sync_settings(&self) -> Result<Option<SyncSettings>, StoreError> {
        self.step(self.inner.sync_settings()).await
    }
    async fn set_sync_settings(&self, settings: &SyncSettings) -> Result<(), StoreError> {
        self.step(self.inner.set_sync_settings(settings)).await
    }
    async fn stats(&self) -> Result<OutboxStats, StoreError> {
        self.step(self.inner.stats()).await
    }
}

/// A worker stopped at any store step of a write leaves no gap in the seqs: the seq is taken in
/// the step that stores the record, so a gap at the collector can only be a loss.
#[test]
fn a_write_stopped_at_any_step_leaves_no_gap_in_the_seqs() {
    let env = FakeEnv::new();
    for stall_at in 0..3 {
        let store = MemoryStore::new();
        block_on(async {
            let stalling = Stalling { inner: store.reopen(), calls: Cell::new(0), stall_at };
            let recorder =
                Recorder::open(stalling, OutboxConfig::default(), &*env).await.expect("open");
            {
                let mut write = pin!(recorder.record(vec![entry(0), entry(1)]));
                let _ = poll!(write.as_mut()); // stopped here, or finished
            }
            let recorder =
                Recorder::open(store.reopen(), OutboxConfig::default(), &*env).await.expect("open");
            recorder.record(vec![entry(2)]).await.expect("record");
            let seqs: Vec<u64> =
                store.oldest(10).await.expect("oldest").iter().map(|r| r.seq).collect();
            let expected: Vec<u64> = (0..seqs.len() as u64).collect();
            assert_eq!(seqs, expected, "stalled at store call {stall_at}: consecutive from 0");
            assert_eq!(store.next_seq().await.expect("next"), seqs.len() as u64, "no seq burned");
        });
    }
}
