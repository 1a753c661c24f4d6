//! The conformance suite every [`OutboxStore`] must pass: the in-memory store natively
//! (`tests/outbox_store.rs`), the IndexedDB store in a browser (a wasm-bindgen test).
//!
//! [`run`] takes a factory `open(name)` that opens the store called `name`. Each case uses its
//! own name, expects that store to start empty, and opens the same name again to check that
//! what it wrote survives a reopen (a worker restart). An IndexedDB factory should therefore map
//! `name` to a database (prefixed per test run, or deleted beforehand) and open it anew on every
//! call; the memory factory hands out [`super::MemoryStore::reopen`] handles.
//!
//! Failures come back as `Err` with one line per failed case, never as a panic, so the caller's
//! test harness shows them all.

use std::future::Future;

use super::error::StoreError;
use super::record::{Entry, Record};
use super::store::{Ack, Batch, Failure, OutboxStats, OutboxStore, RetryState};

/// Runs every case against stores from `open`; `Err` lists each failed case.
pub async fn run<S, F, Fut>(open: F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let mut failures = Vec::new();
    let mut note = |case: &str, result: Result<(), String>| {
        if let Err(e) = result {
            failures.push(format!("{case}: {e}"));
        }
    };
    note("fresh_store_is_empty", fresh_store_is_empty(&open).await);
    note("device_id_is_set_once", device_id_is_set_once(&open).await);
    note("seqs_are_monotonic", seqs_are_monotonic(&open).await);
    note("append_orders_by_seq", append_orders_by_seq(&open).await);
    note("capacity_evicts_oldest", capacity_evicts_oldest(&open).await);
    note("inflight_moves_records", inflight_moves_records(&open).await);
    note("inflight_conflicts", inflight_conflicts(&open).await);
    note("retry_state_is_kept", retry_state_is_kept(&open).await);
    note("ack_deletes_and_counts", ack_deletes_and_counts(&open).await);
    note("dead_letters_are_kept", dead_letters_are_kept(&open).await);
    note("redrive_requeues", redrive_requeues(&open).await);
    note("dead_letter_cap", dead_letter_cap(&open).await);
    if failures.is_empty() {
        Ok(())
    } else {
        Err(failures.join("\n"))
    }
}

/// Returns `Err(message)` from the case unless `cond` holds.
macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// Returns `Err` from the case unless `actual == expected`.
macro_rules! ensure_eq {
    ($actual:expr, $expected:expr, $what:expr) => {{
        let (actual, expected) = (&$actual, &$expected);
        if actual != expected {
            return Err(format!("{}: expected {:?}, got {:?}", $what, expected, actual));
        }
    }};
}

/// Awaits a store call, turning its error into the case's failure message.
async fn call<T>(
    what: &str,
    fut: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, String> {
    fut.await.map_err(|e| format!("{what} failed: {e}"))
}

async fn fresh<S, F, Fut>(open: &F, name: &str) -> Result<S, String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = reopen(open, name).await?;
    let stats = call("stats", store.stats()).await?;
    ensure!(
        stats == OutboxStats::default(),
        "store {name:?} is not fresh ({stats:?}): the suite needs an empty store per name"
    );
    Ok(store)
}

async fn reopen<S, F, Fut>(open: &F, name: &str) -> Result<S, String>
where
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    open(name).await.map_err(|e| format!("opening store {name:?} failed: {e}"))
}

/// A scored record; seqs double as timestamps so records differ.
fn scored(seq: u64) -> Record {
    Record::new(
        seq,
        Entry::scored(1_700_000_000_000 + seq, "m-1", 0.25 + seq as f32, seq.is_multiple_of(2), 42),
    )
}

fn unscored(seq: u64) -> Record {
    let reading = vec![0.1, -2.5, 1e-30, f32::MAX, 0.0];
    Record::new(seq, Entry::unscored(1_700_000_000_000 + seq, None, reading, "NOT_LOADED"))
}

fn batch(key: &str, records: Vec<Record>) -> Batch {
    Batch {
        key: key.into(),
        body: format!("{{\"k\":\"{key}\"}}"),
        records,
        created_at_ms: 7,
        retry: None,
    }
}

fn failure(status: u16) -> Failure {
    Failure { status: Some(status), message: "bad request".into(), at_ms: 99, attempts: 1 }
}

fn seqs(records: &[Record]) -> Vec<u64> {
    records.iter().map(|r| r.seq).collect()
}

async fn fresh_store_is_empty<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "empty").await?;
    ensure_eq!(call("queued", store.queued()).await?, 0, "queued");
    ensure_eq!(call("oldest", store.oldest(10)).await?, vec![], "oldest");
    ensure_eq!(call("inflight", store.inflight()).await?, None, "inflight");
    ensure_eq!(call("dead_letters", store.dead_letters()).await?, vec![], "dead letters");
    ensure_eq!(call("device_id", store.device_id()).await?, None, "device id");
    ensure_eq!(call("reserve_seqs(0)", store.reserve_seqs(0)).await?, 0, "first seq");
    Ok(())
}

async fn device_id_is_set_once<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "device").await?;
    ensure_eq!(call("init_device_id", store.init_device_id("dev-a")).await?, "dev-a", "first init");
    ensure_eq!(
        call("init_device_id", store.init_device_id("dev-b")).await?,
        "dev-a",
        "second init"
    );
    drop(store);
    let store = reopen(open, "device").await?;
    ensure_eq!(call("device_id", store.device_id()).await?, Some("dev-a".into()), "after reopen");
    ensure_eq!(
        call("init_device_id", store.init_device_id("dev-c")).await?,
        "dev-a",
        "init after reopen"
    );
    Ok(())
}

async fn seqs_are_monotonic<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "seq").await?;
    ensure_eq!(call("reserve_seqs", store.reserve_seqs(3)).await?, 0, "first block");
    ensure_eq!(call("reserve_seqs", store.reserve_seqs(2)).await?, 3, "second block");
    ensure_eq!(call("reserve_seqs", store.reserve_seqs(0)).await?, 5, "peek");
    drop(store);
    let store = reopen(open, "seq").await?;
    ensure_eq!(call("reserve_seqs", store.reserve_seqs(1)).await?, 5, "after reopen");
    ensure_eq!(call("reserve_seqs", store.reserve_seqs(1)).await?, 6, "next after reopen");
    Ok(())
}

async fn append_orders_by_seq<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "append").await?;
    // 9 and 10 catch string keys (which sort "10" before "9"); 2^40 catches 32-bit keys.
    let big = 1u64 << 40;
    let first = vec![scored(10), unscored(9), scored(big)];
    let outcome = call("append", store.append(&first, 100)).await?;
    ensure_eq!(outcome.evicted, 0, "evicted");
    call("append", store.append(&[scored(1), scored(2)], 100)).await?;
    let mut replaced = scored(2);
    replaced.latency_us = 7;
    call("append (same seq)", store.append(&[replaced.clone()], 100)).await?;
    ensure_eq!(call("queued", store.queued()).await?, 5, "queued");
    let all = call("oldest", store.oldest(100)).await?;
    ensure_eq!(seqs(&all), vec![1, 2, 9, 10, big], "order");
    ensure_eq!(all[1], replaced, "replaced record");
    ensure_eq!(all[2], unscored(9), "unscored record round trip");
    ensure_eq!(all[3], scored(10), "scored record round trip");
    ensure_eq!(seqs(&call("oldest", store.oldest(2)).await?), vec![1, 2], "oldest(2)");
    ensure_eq!(call("oldest", store.oldest(0)).await?, vec![], "oldest(0)");
    drop(store);
    let store = reopen(open, "append").await?;
    ensure_eq!(call("oldest", store.oldest(100)).await?, all, "after reopen");
    let stats = call("stats", store.stats()).await?;
    ensure_eq!(stats.queued, 5, "stats.queued");
    Ok(())
}

async fn capacity_evicts_oldest<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "capacity").await?;
    let five: Vec<Record> = (1..=5).map(scored).collect();
    let outcome = call("append", store.append(&five, 3)).await?;
    ensure_eq!(outcome.evicted, 2, "evicted by the first append");
    ensure_eq!(seqs(&call("oldest", store.oldest(10)).await?), vec![3, 4, 5], "kept");
    let outcome = call("append", store.append(&[scored(6)], 3)).await?;
    ensure_eq!(outcome.evicted, 1, "evicted by the second append");
    let outcome = call("append", store.append(&[], 3)).await?;
    ensure_eq!(outcome.evicted, 0, "evicted by an empty append");
    drop(store);
    let store = reopen(open, "capacity").await?;
    ensure_eq!(seqs(&call("oldest", store.oldest(10)).await?), vec![4, 5, 6], "kept after reopen");
    let stats = call("stats", store.stats()).await?;
    ensure_eq!(stats.evicted_total, 3, "stats.evicted_total after reopen");
    ensure_eq!(stats.queued, 3, "stats.queued");
    Ok(())
}

async fn inflight_moves_records<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "inflight").await?;
    let records: Vec<Record> = (1..=4).map(scored).collect();
    call("append", store.append(&records, 100)).await?;
    let b = batch("k1", records[..2].to_vec());
    call("begin_inflight", store.begin_inflight(&b)).await?;
    ensure_eq!(seqs(&call("oldest", store.oldest(10)).await?), vec![3, 4], "queue after begin");
    ensure_eq!(call("queued", store.queued()).await?, 2, "queued after begin");
    ensure_eq!(call("inflight", store.inflight()).await?, Some(b.clone()), "inflight");
    drop(store);
    let store = reopen(open, "inflight").await?;
    ensure_eq!(call("inflight", store.inflight()).await?, Some(b), "inflight after reopen");
    let stats = call("stats", store.stats()).await?;
    ensure_eq!((stats.queued, stats.inflight_records), (2, 2), "(queued, inflight) stats");
    // Eviction only touches the queue: the inflight records are safe.
    let outcome = call("append", store.append(&[scored(5)], 1)).await?;
    ensure_eq!(outcome.evicted, 2, "evicted");
    ensure_eq!(call("stats", store.stats()).await?.inflight_records, 2, "inflight after eviction");
    Ok(())
}

async fn inflight_conflicts<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "conflict").await?;
    let records: Vec<Record> = (1..=4).map(scored).collect();
    call("append", store.append(&records, 100)).await?;
    let missing = batch("k0", vec![scored(3), scored(99)]);
    let result = store.begin_inflight(&missing).await;
    ensure!(
        matches!(result, Err(StoreError::Conflict(_))),
        "begin_inflight with an unqueued record: expected Conflict, got {result:?}"
    );
    ensure_eq!(call("queued", store.queued()).await?, 4, "queued after refused begin");
    ensure_eq!(call("inflight", store.inflight()).await?, None, "inflight after refused begin");
    call("begin_inflight", store.begin_inflight(&batch("k1", records[..2].to_vec()))).await?;
    let result = store.begin_inflight(&batch("k2", records[2..].to_vec())).await;
    ensure!(
        matches!(result, Err(StoreError::Conflict(_))),
        "second begin_inflight: expected Conflict, got {result:?}"
    );
    ensure_eq!(call("queued", store.queued()).await?, 2, "queued after second begin");
    let key = call("inflight", store.inflight()).await?.map(|b| b.key);
    ensure_eq!(key, Some("k1".to_string()), "inflight key");
    Ok(())
}

async fn retry_state_is_kept<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "retry").await?;
    let retry = RetryState {
        attempts: 3,
        not_before_ms: 1_700_000_123_456,
        server_directed: true,
        last_error: "HTTP 503".into(),
    };
    ensure_eq!(
        call("set_inflight_retry", store.set_inflight_retry("k1", &retry)).await?,
        false,
        "retry with nothing inflight"
    );
    call("append", store.append(&[scored(1)], 100)).await?;
    call("begin_inflight", store.begin_inflight(&batch("k1", vec![scored(1)]))).await?;
    ensure_eq!(
        call("set_inflight_retry", store.set_inflight_retry("other", &retry)).await?,
        false,
        "retry with a wrong key"
    );
    ensure_eq!(
        call("inflight", store.inflight()).await?.and_then(|b| b.retry),
        None,
        "retry after wrong key"
    );
    ensure_eq!(
        call("set_inflight_retry", store.set_inflight_retry("k1", &retry)).await?,
        true,
        "retry"
    );
    drop(store);
    let store = reopen(open, "retry").await?;
    let kept = call("inflight", store.inflight()).await?;
    ensure_eq!(kept.and_then(|b| b.retry), Some(retry), "retry state after reopen");
    Ok(())
}

async fn ack_deletes_and_counts<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "ack").await?;
    let records: Vec<Record> = (1..=3).map(scored).collect();
    call("append", store.append(&records, 100)).await?;
    call("begin_inflight", store.begin_inflight(&batch("k1", records[..2].to_vec()))).await?;
    let wrong = Ack { key: "other".into(), rejected: 0, message: None };
    ensure_eq!(
        call("ack_inflight", store.ack_inflight(&wrong)).await?,
        false,
        "ack with a wrong key"
    );
    let ack = Ack { key: "k1".into(), rejected: 1, message: Some("1 record too old".into()) };
    ensure_eq!(call("ack_inflight", store.ack_inflight(&ack)).await?, true, "ack");
    ensure_eq!(call("ack_inflight", store.ack_inflight(&ack)).await?, false, "repeated ack");
    ensure_eq!(call("inflight", store.inflight()).await?, None, "inflight after ack");
    call("begin_inflight", store.begin_inflight(&batch("k2", records[2..].to_vec()))).await?;
    let ack = Ack { key: "k2".into(), rejected: 0, message: None };
    call("ack_inflight", store.ack_inflight(&ack)).await?;
    drop(store);
    let store = reopen(open, "ack").await?;
    let stats = call("stats", store.stats()).await?;
    let expected = OutboxStats {
        sent_records_total: 3,
        sent_batches_total: 2,
        rejected_records_total: 1,
        last_rejection: Some("1 record too old".into()),
        ..OutboxStats::default()
    };
    ensure_eq!(stats, expected, "stats after reopen");
    Ok(())
}

async fn dead_letters_are_kept<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "dead").await?;
    let records: Vec<Record> = (1..=5).map(scored).collect();
    call("append", store.append(&records, 100)).await?;
    ensure_eq!(
        call("dead_letter_inflight", store.dead_letter_inflight("k1", &failure(400), 100)).await?,
        false,
        "dead-letter with nothing inflight"
    );
    call("begin_inflight", store.begin_inflight(&batch("k1", records[..2].to_vec()))).await?;
    ensure_eq!(
        call("dead_letter_inflight", store.dead_letter_inflight("other", &failure(400), 100))
            .await?,
        false,
        "dead-letter with a wrong key"
    );
    ensure_eq!(
        call("dead_letter_inflight", store.dead_letter_inflight("k1", &failure(400), 100)).await?,
        true,
        "dead-letter"
    );
    ensure_eq!(call("inflight", store.inflight()).await?, None, "inflight after dead-letter");
    call("begin_inflight", store.begin_inflight(&batch("k2", records[2..4].to_vec()))).await?;
    call("dead_letter_inflight", store.dead_letter_inflight("k2", &failure(413), 100)).await?;
    drop(store);
    let store = reopen(open, "dead").await?;
    let dead = call("dead_letters", store.dead_letters()).await?;
    ensure_eq!(dead.len(), 2, "dead batches");
    ensure_eq!(
        (dead[0].key.as_str(), dead[0].first_seq, dead[0].last_seq, dead[0].records),
        ("k1", 1, 2, 2),
        "first dead batch"
    );
    ensure_eq!(dead[0].failure, failure(400), "first failure");
    ensure_eq!(
        (dead[1].key.as_str(), dead[1].failure.status),
        ("k2", Some(413)),
        "second dead batch"
    );
    let stats = call("stats", store.stats()).await?;
    ensure_eq!(
        (
            stats.queued,
            stats.dead_letter_batches,
            stats.dead_letter_records,
            stats.dead_lettered_batches_total
        ),
        (1, 2, 4, 2),
        "(queued, dead batches, dead records, dead-lettered total)"
    );
    Ok(())
}

async fn redrive_requeues<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "redrive").await?;
    let records = vec![scored(1), unscored(2), scored(3)];
    call("append", store.append(&records, 100)).await?;
    call("begin_inflight", store.begin_inflight(&batch("k1", records[..2].to_vec()))).await?;
    call("dead_letter_inflight", store.dead_letter_inflight("k1", &failure(400), 100)).await?;
    ensure_eq!(
        call("redrive_dead_letter", store.redrive_dead_letter("nope")).await?,
        None,
        "re-drive of an unknown key"
    );
    ensure_eq!(
        call("redrive_dead_letter", store.redrive_dead_letter("k1")).await?,
        Some(2),
        "re-drive"
    );
    ensure_eq!(
        call("redrive_dead_letter", store.redrive_dead_letter("k1")).await?,
        None,
        "repeated re-drive"
    );
    drop(store);
    let store = reopen(open, "redrive").await?;
    ensure_eq!(call("oldest", store.oldest(10)).await?, records, "queue after re-drive and reopen");
    ensure_eq!(
        call("dead_letters", store.dead_letters()).await?,
        vec![],
        "dead letters after re-drive"
    );
    let stats = call("stats", store.stats()).await?;
    ensure_eq!(
        (stats.queued, stats.dead_letter_batches, stats.dead_lettered_batches_total),
        (3, 0, 1),
        "(queued, dead batches, dead-lettered total)"
    );
    Ok(())
}

async fn dead_letter_cap<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "dead-cap").await?;
    let records: Vec<Record> = (1..=6).map(scored).collect();
    call("append", store.append(&records, 100)).await?;
    for (i, pair) in records.chunks(2).enumerate() {
        let key = format!("k{i}");
        call("begin_inflight", store.begin_inflight(&batch(&key, pair.to_vec()))).await?;
        call("dead_letter_inflight", store.dead_letter_inflight(&key, &failure(400), 4)).await?;
    }
    let keys: Vec<String> =
        call("dead_letters", store.dead_letters()).await?.into_iter().map(|d| d.key).collect();
    ensure_eq!(
        keys,
        vec!["k1".to_string(), "k2".to_string()],
        "dead batches kept (oldest dropped)"
    );
    drop(store);
    let store = reopen(open, "dead-cap").await?;
    let stats = call("stats", store.stats()).await?;
    ensure_eq!(
        (stats.dead_letter_records, stats.dead_letter_evicted_total),
        (4, 2),
        "(dead records, dead evicted total)"
    );
    Ok(())
}
