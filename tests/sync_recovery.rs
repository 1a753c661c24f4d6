//! Nothing lost, nothing duplicated: the idempotency key and body of a batch stay the same across
//! retries and restarts, a worker killed between the server storing a batch and the local delete
//! resends that same batch (which a key-deduping collector stores once), and only one flush
//! runs at a time.
#![cfg(not(target_arch = "wasm32"))] // native; the browser runs tests/web_*.rs
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

mod sync_fakes;

use std::cell::Cell;
use std::collections::HashSet;
use std::pin::pin;
use std::rc::Rc;

use edge_anomaly::outbox::{
    Ack, AppendOutcome, Batch, DeadLetter, Entry, Failure, FlushStatus, HttpResponse, MemoryStore,
    OutboxStats, OutboxStore, Record, RetryState, Seq, StoreError, SyncSettings, Syncer,
    TransportError,
};
use futures::executor::block_on;
use futures::poll;
use sync_fakes::{body_text, config, device_id, record, syncer, FakeCollector, FakeEnv, Step};

/// Every record the outbox ever held reached the collector exactly once.
fn assert_exactly_once(collector: &FakeCollector, store: &MemoryStore, expected: u64) {
    let stored = collector.stored.borrow();
    let unique: HashSet<&String> = stored.iter().collect();
    assert_eq!(unique.len(), stored.len(), "duplicates stored: {stored:?}");
    let device = device_id(store);
    let want: HashSet<String> = (0..expected).map(|seq| format!("{device}:{seq}")).collect();
    assert_eq!(unique, want.iter().collect(), "stored set differs");
}

#[test]
fn the_key_and_body_stay_the_same_across_retries() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 20);
    let s = syncer(&store, &collector, &env, config());
    collector.script([
        Step::Respond(HttpResponse::status(503)),
        Step::Fail(TransportError::Network("reset".into())),
        Step::Respond(HttpResponse::status(429)),
    ]);
    for _ in 0..4 {
        let out = block_on(s.flush()).expect("flush");
        if let Some(at) = out.next_attempt_at_ms {
            env.set_now(at);
        }
        // New readings arriving meanwhile must not change the batch being retried.
        record(&store, &env, 1);
    }
    let requests = collector.requests.borrow();
    assert_eq!(requests.len(), 5, "4 tries of the first batch, then the newcomers");
    let first_key = sync_fakes::key_of(&requests[0]);
    for r in &requests[1..4] {
        assert_eq!(sync_fakes::key_of(r), first_key, "same key on every retry");
        assert_eq!(r.body, requests[0].body, "same bytes on every retry");
    }
    assert_ne!(sync_fakes::key_of(&requests[4]), first_key);
}

#[test]
fn the_key_and_body_survive_a_restart() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 5);
    collector.script([Step::Respond(HttpResponse::status(503).with_header("retry-after", "5"))]);
    let first = syncer(&store, &collector, &env, config());
    assert_eq!(block_on(first.flush()).expect("flush").status, FlushStatus::Backoff);
    drop(first);

    // The worker restarts: new syncer over the reopened store, and a different app version.
    let mut c = config();
    c.service_version = "9.9.9".into();
    let second = syncer(&store, &collector, &env, c);
    assert_eq!(
        block_on(second.flush()).expect("flush").status,
        FlushStatus::Backoff,
        "Retry-After persisted"
    );
    env.advance(5_000);
    assert_eq!(block_on(second.flush()).expect("flush").sent_records, 5);
    let requests = collector.requests.borrow();
    assert_eq!(requests.len(), 2);
    assert_eq!(sync_fakes::key_of(&requests[0]), sync_fakes::key_of(&requests[1]));
    assert_eq!(requests[0].body, requests[1].body, "the frozen body, not a re-encoding");
    assert!(body_text(&requests[1]).contains("\"1.2.3\""));
}

#[test]
fn keys_are_unique_per_batch() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 100);
    let mut c = config();
    c.max_batch_records = 3;
    c.max_batches_per_flush = 1_000;
    let out = block_on(syncer(&store, &collector, &env, c).flush()).expect("flush");
    assert_eq!(out.sent_batches, 34);
    let keys: HashSet<String> = collector.keys().into_iter().collect();
    assert_eq!(keys.len(), 34);
}

/// A store with faults: it can die (return an error, like a worker killed mid-step) on the next
/// ack, or let the recorder interleave right after `oldest` and evict the oldest record.
#[derive(Default)]
struct Faulty {
    inner: MemoryStore,
    die_on_ack: Cell<bool>,
    evict_after_oldest: Cell<bool>,
}

impl OutboxStore for Faulty {
    async fn device_id(&self) -> Result<Option<String>, StoreError> {
        self.inner.device_id().await
    }
    async fn init_device_id(&self, candidate: &str) -> Result<String, StoreError> {
        self.inner.init_device_id(candidate).await
    }
    async fn next_seq(&self) -> Result<Seq, StoreError> {
        self.inner.next_seq().await
    }
    async fn append_entries(
        &self,
        entries: &[Entry],
        capacity: u64,
    ) -> Result<AppendOutcome, StoreError> {
        self.inner.append_entries(entries, capacity).await
    }
    async fn evict_for_quota(&self, max: u64) -> Result<u64, StoreError> {
        self.inner.evict_for_quota(max).await
    }
    async fn oldest(&self, max: usize) -> Result<Vec<Record>, StoreError> {
        let oldest = self.inner.oldest(max).await;
        if self.evict_after_oldest.replace(false) {
            // A new reading arrives at capacity between `oldest` and `begin_inflight`.
            let queued = self.inner.queued().await?;
            let seq = self.inner.next_seq().await?;
            self.inner.append_entries(&[sync_fakes::entry(seq)], queued).await?;
        }
        oldest
    }
    async fn queued(&self) -> Result<u64, StoreError> {
        self.inner.queued().await
    }
    async fn begin_inflight(&self, batch: &Batch) -> Result<(), StoreError> {
        self.inner.begin_inflight(batch).await
    }
    async fn inflight(&self) -> Result<Option<Batch>, StoreError> {
        self.inner.inflight().await
    }
    async fn set_inflight_retry(&self, key: &str, retry: &RetryState) -> Result<bool, StoreError> {
        self.inner.set_inflight_retry(key, retry).await
    }
    async fn ack_queued(&self, batch: &Batch, ack: &Ack) -> Result<u64, StoreError> {
        self.inner.ack_queued(batch, ack).await
    }
    async fn ack_inflight(&self, ack: &Ack) -> Result<bool, StoreError> {
        if self.die_on_ack.replace(false) {
            return Err(StoreError::Backend("worker killed".into()));
        }
        self.inner.ack_inflight(ack).await
    }
    async fn release_inflight(&self, key: &str) -> Result<bool, StoreError> {
        self.inner.release_inflight(key).await
    }
    async fn dead_letter_inflight(
        &self,
        key: &str,
        failure: &Failure,
        max: u64,
    ) -> Result<bool, StoreError> {
        self.inner.dead_letter_inflight(key, failure, max).await
    }
    async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.inner.dead_letters().await
    }
    async fn redrive_dead_letter(&self, key: &str) -> Result<Option<u64>, StoreError> {
        self.inner.redrive_dead_letter(key).await
    }
    async fn count_dropped(&self, reason: &str, n: u64) -> Result<(), StoreError> {
        self.inner.count_dropped(reason, n).await
    }
    async fn sync_settings(&self) -> Result<Option<SyncSettings>, StoreError> {
        self.inner.sync_settings().await
    }
    async fn set_sync_settings(&self, settings: &SyncSettings) -> Result<(), StoreError> {
        self.inner.set_sync_settings(settings).await
    }
    async fn stats(&self) -> Result<OutboxStats, StoreError> {
        self.inner.stats().await
    }
}

#[test]
fn killed_between_send_and_delete_resends_the_same_batch_and_it_is_stored_once() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 7);
    let dying = Faulty { inner: store.reopen(), die_on_ack: Cell::new(true), ..Faulty::default() };
    let first =
        Syncer::new(dying, Rc::clone(&collector), Rc::clone(&env), config()).expect("config");
    let err = block_on(first.flush()).expect_err("the ack step dies");
    assert_eq!(err.code(), "STORE_BACKEND");
    drop(first);
    assert_eq!(collector.stored.borrow().len(), 7, "the server has the batch");
    assert_eq!(
        block_on(store.stats()).expect("stats").inflight_records,
        7,
        "the outbox still has it"
    );

    // Restart: the same key and records go again; the collector dedupes.
    let out = block_on(syncer(&store, &collector, &env, config()).flush()).expect("flush");
    assert_eq!((out.status, out.sent_records), (FlushStatus::Drained, 7));
    let keys = collector.keys();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0], keys[1], "the same idempotency key");
    let requests = collector.requests.borrow();
    assert_eq!(requests[0].body, requests[1].body, "the same records");
    drop(requests);
    assert_exactly_once(&collector, &store, 7);
    assert_eq!(block_on(store.stats()).expect("stats").sent_records_total, 7);
}

#[test]
fn a_batch_whose_record_was_evicted_meanwhile_is_rebuilt() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 5);
    let racy =
        Faulty { inner: store.reopen(), evict_after_oldest: Cell::new(true), ..Faulty::default() };
    let s = Syncer::new(racy, Rc::clone(&collector), Rc::clone(&env), config()).expect("config");
    let out = block_on(s.flush()).expect("flush");
    assert_eq!((out.status, out.sent_batches, out.sent_records), (FlushStatus::Drained, 1, 5));
    let stats = block_on(store.stats()).expect("stats");
    assert_eq!((stats.evicted_total, stats.sent_records_total, stats.queued), (1, 5, 0));
    // Seq 0 was evicted (counted), seqs 1..=5 were sent once, in one fresh batch.
    let device = device_id(&store);
    let want: Vec<String> = (1..=5).map(|seq| format!("{device}:{seq}")).collect();
    assert_eq!(*collector.stored.borrow(), want);
    assert_eq!(collector.request_count(), 1);
}

#[test]
fn a_flush_dropped_while_awaiting_the_answer_is_resumed_by_the_next() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 12);
    collector.script([Step::AcceptThenHang]);
    let s = syncer(&store, &collector, &env, config());
    block_on(async {
        let mut killed = pin!(s.flush());
        assert!(poll!(killed.as_mut()).is_pending(), "waiting for an answer that never comes");
        // Only one flush at a time, even while the first is parked on the network.
        let second = s.flush().await.expect("flush");
        assert_eq!(second.status, FlushStatus::AlreadyRunning);
        assert_eq!(collector.request_count(), 1);
    }); // the first flush future is dropped here: the worker was killed

    assert!(!s.is_running(), "the guard is released when the future is dropped");
    let restarted = syncer(&store, &collector, &env, config());
    let out = block_on(restarted.flush()).expect("flush");
    assert_eq!((out.status, out.sent_records), (FlushStatus::Drained, 12));
    let keys = collector.keys();
    assert_eq!(keys[0], keys[1]);
    assert_exactly_once(&collector, &store, 12);
}

#[test]
fn only_one_flush_runs_at_a_time() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 3);
    collector.script([Step::AcceptThenHang]);
    let s = syncer(&store, &collector, &env, config());
    block_on(async {
        let mut first = pin!(s.flush());
        assert!(poll!(first.as_mut()).is_pending());
        assert!(s.is_running());
        for _ in 0..3 {
            let out = s.flush().await.expect("flush");
            assert_eq!(out.status, FlushStatus::AlreadyRunning);
            assert_eq!((out.sent_batches, out.next_attempt_at_ms), (0, None));
        }
    });
    assert!(!s.is_running());
    assert_eq!(
        block_on(s.flush()).expect("flush").sent_records,
        3,
        "free again after the first ends"
    );
}

#[test]
fn random_failures_and_restarts_lose_and_duplicate_nothing() {
    // A seeded mix of answers, restarts and new readings; at the end every record is stored once.
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    let mut c = config();
    c.max_batch_records = 7;
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut total = 0;
    let mut s = syncer(&store, &collector, &env, c.clone());
    for round in 0..300 {
        let n = next() % 5;
        record(&store, &env, n);
        total += n;
        let step = match next() % 8 {
            0 => Step::Respond(HttpResponse::status(503)),
            1 => Step::Respond(HttpResponse::status(429).with_header("retry-after", "2")),
            2 => Step::Fail(TransportError::Network("flaky".into())),
            3 => Step::AcceptThenHang,
            _ => Step::Accept,
        };
        // Script the answer only when a send will happen, so no step is left for a later call.
        let pending = block_on(store.stats()).expect("stats");
        let sends = pending.queued + pending.inflight_records > 0;
        let hang = sends && matches!(step, Step::AcceptThenHang);
        if sends {
            collector.script([step]);
        }
        if hang {
            block_on(async {
                let mut f = pin!(s.flush());
                let _ = poll!(f.as_mut());
            });
            s = syncer(&store, &collector, &env, c.clone()); // killed and restarted
        } else {
            block_on(s.flush()).expect("flush");
        }
        if round % 17 == 0 {
            s = syncer(&store, &collector, &env, c.clone());
        }
        env.advance(400_000); // past any backoff
    }
    // Drain what is left.
    for _ in 0..100 {
        env.advance(400_000);
        if block_on(s.flush()).expect("flush").status == FlushStatus::Drained {
            break;
        }
    }
    let stats = block_on(store.stats()).expect("stats");
    assert_eq!((stats.queued, stats.inflight_records, stats.dead_letter_records), (0, 0, 0));
    assert_eq!(stats.sent_records_total, total);
    assert!(total > 400, "the scenario recorded {total} readings");
    assert_exactly_once(&collector, &store, total);
}
