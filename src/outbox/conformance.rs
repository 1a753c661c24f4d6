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

use std::collections::BTreeMap;
use std::future::Future;

use super::error::StoreError;
use super::record::{Entry, Record, Seq};
use super::settings::SyncSettings;
use super::store::{Ack, Batch, Failure, OutboxStats, OutboxStore, RetryState};
use crate::engine::{Attribution, ChannelShare, Contributions};

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
    note("seqs_are_consecutive", seqs_are_consecutive(&open).await);
    note("append_keeps_queue_order", append_keeps_queue_order(&open).await);
    note("non_finite_values_round_trip", non_finite_values_round_trip(&open).await);
    note("capacity_evicts_oldest", capacity_evicts_oldest(&open).await);
    note("redriven_records_are_not_evicted_first", redriven_not_evicted_first(&open).await);
    note("reading_ids_are_recognised", reading_ids_are_recognised(&open).await);
    note("quota_eviction_is_counted", quota_eviction_is_counted(&open).await);
    note("drops_are_counted_by_reason", drops_are_counted_by_reason(&open).await);
    note("sync_settings_are_kept", sync_settings_are_kept(&open).await);
    note("inflight_moves_records", inflight_moves_records(&open).await);
    note("inflight_conflicts", inflight_conflicts(&open).await);
    note("inflight_need_not_be_a_run", inflight_need_not_be_a_run(&open).await);
    note("release_requeues_in_front", release_requeues_in_front(&open).await);
    note("retry_state_is_kept", retry_state_is_kept(&open).await);
    note("ack_deletes_and_counts", ack_deletes_and_counts(&open).await);
    note("ack_and_begin_moves_on", ack_and_begin_moves_on(&open).await);
    note("ack_queued_deletes_and_counts", ack_queued_deletes_and_counts(&open).await);
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

/// Like `ensure_eq!`, but compares the `Debug` text: floats equal bit for bit, except that any
/// NaN equals any NaN (a NaN's payload need not survive storage, and `NaN != NaN`).
macro_rules! ensure_same {
    ($actual:expr, $expected:expr, $what:expr) => {{
        let (actual, expected) = (format!("{:?}", $actual), format!("{:?}", $expected));
        if actual != expected {
            return Err(format!("{}: expected {}, got {}", $what, expected, actual));
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

/// A scored entry; `i` doubles as the timestamp so entries differ.
fn scored(i: u64) -> Entry {
    Entry::scored(1_700_000_000_000 + i, "m-1", 0.25 + i as f32, i.is_multiple_of(2), 42)
}

fn unscored(i: u64) -> Entry {
    let reading = vec![0.1, -2.5, 1e-30, f32::MAX, 0.0];
    Entry::unscored(1_700_000_000_000 + i, None, reading, "NOT_LOADED")
}

/// Appends `entries` (no reading ids, room for all) and returns them as the stored records.
async fn fill<S: OutboxStore>(store: &S, entries: Vec<Entry>) -> Result<Vec<Record>, String> {
    let outcome = call("append_entries", store.append_entries(&entries, 1_000)).await?;
    ensure_eq!(outcome.stored, entries.len() as u64, "stored");
    Ok((outcome.first_seq..).zip(entries).map(|(seq, e)| Record::new(seq, e)).collect())
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

async fn queue_seqs<S: OutboxStore>(store: &S) -> Result<Vec<Seq>, String> {
    Ok(seqs(&call("oldest", store.oldest(1_000)).await?))
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
    ensure_eq!(call("next_seq", store.next_seq()).await?, 0, "first seq");
    ensure_eq!(call("sync_settings", store.sync_settings()).await?, None, "sync settings");
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

/// Seqs come from the store with the records: consecutive across calls, evictions and reopens,
/// so a gap at the collector can only mean a loss.
async fn seqs_are_consecutive<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "seq").await?;
    let a = call("append_entries", store.append_entries(&[scored(0), scored(1), scored(2)], 100))
        .await?;
    ensure_eq!((a.first_seq, a.stored, a.evicted), (0, 3, 0), "(first, stored, evicted)");
    let b = call("append_entries", store.append_entries(&[scored(3), unscored(4)], 100)).await?;
    ensure_eq!((b.first_seq, b.stored), (3, 2), "second call (first, stored)");
    let empty = call("append_entries", store.append_entries(&[], 100)).await?;
    ensure_eq!((empty.first_seq, empty.stored), (5, 0), "empty call (first, stored)");
    ensure_eq!(call("next_seq", store.next_seq()).await?, 5, "next seq");
    drop(store);
    let store = reopen(open, "seq").await?;
    ensure_eq!(call("next_seq", store.next_seq()).await?, 5, "next seq after reopen");
    // Eviction by the cap takes records, never seqs.
    let c = call("append_entries", store.append_entries(&[scored(5), scored(6)], 3)).await?;
    ensure_eq!((c.first_seq, c.stored, c.evicted), (5, 2, 4), "capped call");
    ensure_eq!(queue_seqs(&store).await?, vec![4, 5, 6], "queue");
    ensure_eq!(call("next_seq", store.next_seq()).await?, 7, "next seq after eviction");
    Ok(())
}

async fn append_keeps_queue_order<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "append").await?;
    // Twelve records: 9 before 10 catches keys compared as strings.
    let mut all = fill(&store, (0..5).map(scored).collect()).await?;
    all.extend(fill(&store, vec![unscored(5)]).await?);
    all.extend(fill(&store, (6..12).map(scored).collect()).await?);
    ensure_eq!(call("queued", store.queued()).await?, 12, "queued");
    let queue = call("oldest", store.oldest(100)).await?;
    ensure_eq!(seqs(&queue), (0..12).collect::<Vec<_>>(), "order");
    ensure_eq!(queue, all, "records round trip");
    ensure_eq!(seqs(&call("oldest", store.oldest(2)).await?), vec![0, 1], "oldest(2)");
    ensure_eq!(call("oldest", store.oldest(0)).await?, vec![], "oldest(0)");
    drop(store);
    let store = reopen(open, "append").await?;
    ensure_eq!(call("oldest", store.oldest(100)).await?, all, "after reopen");
    let stats = call("stats", store.stats()).await?;
    ensure_eq!(stats.queued, 12, "stats.queued");
    Ok(())
}

/// Scores and readings a store must keep bit for bit (NaN as some NaN): non-finite values come
/// from missing sensor values and from readings recorded unscored with no model loaded.
fn awkward_floats() -> Vec<f32> {
    vec![
        f32::NAN,
        -f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        -0.0,
        0.0,
        f32::from_bits(1),
        -f32::from_bits(0x007f_ffff),
        f32::MIN_POSITIVE,
        f32::MAX,
        f32::MIN,
        0.1,
        16_777_215.0,
    ]
}

async fn non_finite_values_round_trip<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "floats").await?;
    let floats = awkward_floats();
    let mut entries: Vec<Entry> = floats
        .iter()
        .enumerate()
        .map(|(i, &score)| Entry::scored(i as u64, "m-1", score, false, 1))
        .collect();
    entries.push(Entry::unscored(99, None, floats.clone(), "NOT_LOADED"));
    entries.push(Entry::unscored(100, Some("m-1".into()), vec![f32::NAN], "NON_FINITE"));
    // A flagged reading with the channels its score is about.
    let share = |channel: &str, share: f32| ChannelShare { channel: channel.into(), share };
    let channels = vec![share("f3", 0.7), share("f1 (°C)", 0.2), share("f9", 1e-30)];
    let contributions = Contributions { method: Attribution::Repair, channels };
    entries.push(Entry::scored(101, "m-1", 0.9, true, 1).with_contributions(contributions));
    let records = fill(&store, entries).await?;
    ensure_same!(call("oldest", store.oldest(100)).await?, records, "queued records");
    drop(store);
    let store = reopen(open, "floats").await?;
    ensure_same!(call("oldest", store.oldest(100)).await?, records, "queued after reopen");
    // The same records through the inflight slot and the dead-letter store.
    let (head, tail) = records.split_at(4);
    let b = batch("k1", head.to_vec());
    call("begin_inflight", store.begin_inflight(&b)).await?;
    ensure_same!(call("inflight", store.inflight()).await?, Some(b), "inflight batch");
    call("dead_letter_inflight", store.dead_letter_inflight("k1", &failure(400), 100)).await?;
    call("redrive_dead_letter", store.redrive_dead_letter("k1")).await?;
    let requeued: Vec<Record> = tail.iter().chain(head).cloned().collect();
    ensure_same!(
        call("oldest", store.oldest(100)).await?,
        requeued,
        "after dead letter and re-drive"
    );
    Ok(())
}

async fn capacity_evicts_oldest<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "capacity").await?;
    let five: Vec<Entry> = (0..5).map(scored).collect();
    let outcome = call("append_entries", store.append_entries(&five, 3)).await?;
    ensure_eq!((outcome.stored, outcome.evicted), (5, 2), "first append (stored, evicted)");
    ensure_eq!(queue_seqs(&store).await?, vec![2, 3, 4], "kept");
    let outcome = call("append_entries", store.append_entries(&[scored(5)], 3)).await?;
    ensure_eq!(outcome.evicted, 1, "evicted by the second append");
    let outcome = call("append_entries", store.append_entries(&[], 3)).await?;
    ensure_eq!(outcome.evicted, 0, "evicted by an empty append");
    drop(store);
    let store = reopen(open, "capacity").await?;
    ensure_eq!(queue_seqs(&store).await?, vec![3, 4, 5], "kept after reopen");
    let stats = call("stats", store.stats()).await?;
    ensure_eq!(stats.evicted_total, 3, "stats.evicted_total after reopen");
    ensure_eq!(stats.queued, 3, "stats.queued");
    Ok(())
}

/// A re-driven batch joins the end of the queue though its seqs are the oldest, so the cap
/// evicts the records queued before it first, never the re-driven ones ahead of newer ones.
async fn redriven_not_evicted_first<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "redrive-cap").await?;
    let records = fill(&store, (0..3).map(scored).collect()).await?;
    call("begin_inflight", store.begin_inflight(&batch("k1", records[..2].to_vec()))).await?;
    call("dead_letter_inflight", store.dead_letter_inflight("k1", &failure(400), 100)).await?;
    fill(&store, vec![scored(3), scored(4)]).await?;
    call("redrive_dead_letter", store.redrive_dead_letter("k1")).await?;
    ensure_eq!(queue_seqs(&store).await?, vec![2, 3, 4, 0, 1], "re-driven at the end");
    drop(store);
    let store = reopen(open, "redrive-cap").await?;
    ensure_eq!(queue_seqs(&store).await?, vec![2, 3, 4, 0, 1], "queue order after reopen");
    let outcome = call("append_entries", store.append_entries(&[scored(5)], 4)).await?;
    ensure_eq!(outcome.evicted, 2, "evicted at the cap");
    ensure_eq!(queue_seqs(&store).await?, vec![4, 0, 1, 5], "kept: the front was evicted");
    let outcome = call("append_entries", store.append_entries(&[scored(6)], 4)).await?;
    ensure_eq!(outcome.evicted, 1, "evicted by the next append");
    ensure_eq!(queue_seqs(&store).await?, vec![0, 1, 5, 6], "re-driven ones evicted in turn");
    Ok(())
}

/// A reading sent again with the id the page gave it is recognised and not stored twice,
/// within a call, across calls, after it was sent, and after a reopen.
async fn reading_ids_are_recognised<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "reading-ids").await?;
    let a = scored(0).with_reading_id("page-1:a");
    let b = unscored(1).with_reading_id("page-1:b");
    let c = scored(2).with_reading_id("page-1:c");
    let first = call("append_entries", store.append_entries(&[a.clone(), b.clone()], 100)).await?;
    ensure_eq!((first.first_seq, first.stored), (0, 2), "first call (first, stored)");
    ensure_eq!(first.already, vec![], "first call: nothing already recorded");
    let again = [c.clone(), a.clone(), scored(3), c.clone()];
    let second = call("append_entries", store.append_entries(&again, 100)).await?;
    ensure_eq!((second.first_seq, second.stored), (2, 2), "second call (first, stored)");
    ensure_eq!(second.already, vec![(1, 0), (3, 2)], "second call: already recorded");
    ensure_eq!(second.seqs(again.len()), vec![2, 0, 3, 2], "seq of each entry");
    ensure_eq!(queue_seqs(&store).await?, vec![0, 1, 2, 3], "queue");
    // Sent and gone from the queue: still recognised.
    let sent = call("oldest", store.oldest(2)).await?;
    call("begin_inflight", store.begin_inflight(&batch("k1", sent))).await?;
    call("ack_inflight", store.ack_inflight(&Ack { key: "k1".into(), rejected: 0, message: None }))
        .await?;
    drop(store);
    let store = reopen(open, "reading-ids").await?;
    let third = call("append_entries", store.append_entries(&[b, scored(4), a], 100)).await?;
    ensure_eq!((third.first_seq, third.stored), (4, 1), "after reopen (first, stored)");
    ensure_eq!(third.already, vec![(0, 1), (2, 0)], "after reopen: already recorded");
    ensure_eq!(queue_seqs(&store).await?, vec![2, 3, 4], "queue after reopen");
    ensure_eq!(call("next_seq", store.next_seq()).await?, 5, "next seq");
    Ok(())
}

async fn quota_eviction_is_counted<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "quota").await?;
    let records = fill(&store, (0..5).map(scored).collect()).await?;
    call("begin_inflight", store.begin_inflight(&batch("k1", records[..1].to_vec()))).await?;
    ensure_eq!(call("evict_for_quota", store.evict_for_quota(2)).await?, 2, "first eviction");
    ensure_eq!(queue_seqs(&store).await?, vec![3, 4], "the front went first");
    ensure_eq!(call("evict_for_quota", store.evict_for_quota(10)).await?, 2, "the rest");
    ensure_eq!(call("evict_for_quota", store.evict_for_quota(1)).await?, 0, "nothing left");
    drop(store);
    let store = reopen(open, "quota").await?;
    let stats = call("stats", store.stats()).await?;
    ensure_eq!(
        (stats.queued, stats.inflight_records, stats.evicted_total, stats.evicted_quota_total),
        (0, 1, 4, 4),
        "(queued, inflight, evicted total, evicted for quota)"
    );
    ensure_totals_agree(&store).await
}

/// [`OutboxStore::totals`] gives the running totals [`OutboxStore::stats`] gives.
async fn ensure_totals_agree(store: &impl OutboxStore) -> Result<(), String> {
    let (stats, totals) =
        (call("stats", store.stats()).await?, call("totals", store.totals()).await?);
    let counters = |s: &OutboxStats| {
        (
            s.evicted_total,
            s.evicted_quota_total,
            s.dead_letter_evicted_total,
            s.sent_records_total,
            s.sent_batches_total,
            s.dead_lettered_batches_total,
            s.rejected_records_total,
            s.last_rejection.clone(),
            s.dropped.clone(),
        )
    };
    ensure_eq!(counters(&totals), counters(&stats), "totals against stats");
    Ok(())
}

async fn drops_are_counted_by_reason<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "dropped").await?;
    call("count_dropped", store.count_dropped("NON_FINITE", 2)).await?;
    call("count_dropped", store.count_dropped("WORKER_START", 1)).await?;
    call("count_dropped", store.count_dropped("NON_FINITE", 3)).await?;
    drop(store);
    let store = reopen(open, "dropped").await?;
    let expected: BTreeMap<String, u64> =
        [("NON_FINITE".to_string(), 5), ("WORKER_START".to_string(), 1)].into();
    ensure_eq!(call("stats", store.stats()).await?.dropped, expected, "dropped after reopen");
    ensure_totals_agree(&store).await
}

async fn sync_settings_are_kept<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "settings").await?;
    let first = SyncSettings {
        endpoint: "https://collector.example".into(),
        token: Some("s3cret".into()),
        send_readings: true,
    };
    call("set_sync_settings", store.set_sync_settings(&first)).await?;
    ensure_eq!(call("sync_settings", store.sync_settings()).await?, Some(first), "after set");
    let second = SyncSettings {
        endpoint: "http://localhost:4318".into(),
        token: None,
        send_readings: false,
    };
    call("set_sync_settings", store.set_sync_settings(&second)).await?;
    drop(store);
    let store = reopen(open, "settings").await?;
    ensure_eq!(
        call("sync_settings", store.sync_settings()).await?,
        Some(second),
        "the latest after reopen"
    );
    Ok(())
}

async fn inflight_moves_records<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "inflight").await?;
    let records = fill(&store, (1..=4).map(scored).collect()).await?;
    let b = batch("k1", records[..2].to_vec());
    call("begin_inflight", store.begin_inflight(&b)).await?;
    ensure_eq!(queue_seqs(&store).await?, vec![2, 3], "queue after begin");
    ensure_eq!(call("queued", store.queued()).await?, 2, "queued after begin");
    ensure_eq!(call("inflight", store.inflight()).await?, Some(b.clone()), "inflight");
    drop(store);
    let store = reopen(open, "inflight").await?;
    ensure_eq!(call("inflight", store.inflight()).await?, Some(b), "inflight after reopen");
    let stats = call("stats", store.stats()).await?;
    ensure_eq!((stats.queued, stats.inflight_records), (2, 2), "(queued, inflight) stats");
    // Eviction only touches the queue: the inflight records are safe.
    let outcome = call("append_entries", store.append_entries(&[scored(5)], 1)).await?;
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
    let records = fill(&store, (1..=4).map(scored).collect()).await?;
    let missing = batch("k0", vec![records[3].clone(), Record::new(99, scored(99))]);
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

/// A batch whose records are not one stretch of the queue (the syncer never makes one, but the
/// contract allows it) moves out of the queue like any other, and goes on acknowledgement;
/// records queued before and after it are evicted around it.
async fn inflight_need_not_be_a_run<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "not-a-run").await?;
    let records = fill(&store, (0..5).map(scored).collect()).await?;
    let b = batch("k1", vec![records[1].clone(), records[3].clone()]);
    call("begin_inflight", store.begin_inflight(&b)).await?;
    ensure_eq!(queue_seqs(&store).await?, vec![0, 2, 4], "queue after begin");
    ensure_eq!(call("inflight", store.inflight()).await?, Some(b), "inflight");
    let ack = Ack { key: "k1".into(), rejected: 0, message: None };
    ensure_eq!(call("ack_inflight", store.ack_inflight(&ack)).await?, true, "ack");
    ensure_eq!(queue_seqs(&store).await?, vec![0, 2, 4], "queue after ack");
    // A run in the middle: eviction takes the records before it, then those after it.
    call("begin_inflight", store.begin_inflight(&batch("k2", records[2..3].to_vec()))).await?;
    ensure_eq!(call("evict_for_quota", store.evict_for_quota(1)).await?, 1, "evicted before");
    ensure_eq!(queue_seqs(&store).await?, vec![4], "queue after the first eviction");
    ensure_eq!(call("evict_for_quota", store.evict_for_quota(5)).await?, 1, "evicted after");
    let stats = call("stats", store.stats()).await?;
    ensure_eq!((stats.queued, stats.inflight_records), (0, 1), "(queued, inflight)");
    Ok(())
}

async fn release_requeues_in_front<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "release").await?;
    let records = fill(&store, (0..6).map(scored).collect()).await?;
    // The front of the queue, as the syncer takes it.
    call("begin_inflight", store.begin_inflight(&batch("k1", records[..3].to_vec()))).await?;
    ensure_eq!(call("release", store.release_inflight("k0")).await?, false, "another key");
    ensure_eq!(call("release", store.release_inflight("k1")).await?, true, "released");
    ensure_eq!(call("inflight", store.inflight()).await?, None, "nothing inflight");
    ensure_eq!(queue_seqs(&store).await?, vec![0, 1, 2, 3, 4, 5], "back in order");
    ensure_eq!(call("release", store.release_inflight("k1")).await?, false, "released once");
    // Not taken from the front: no room ahead of the queue, so it stays inflight.
    let b = batch("k2", vec![records[1].clone(), records[3].clone()]);
    call("begin_inflight", store.begin_inflight(&b)).await?;
    ensure_eq!(call("release", store.release_inflight("k2")).await?, false, "not from the front");
    ensure_eq!(call("inflight", store.inflight()).await?, Some(b), "still inflight");
    let ack = Ack { key: "k2".into(), rejected: 0, message: None };
    ensure_eq!(call("ack_inflight", store.ack_inflight(&ack)).await?, true, "ack");
    // The whole queue, released with nothing else queued, and kept across a reopen.
    let rest = [0, 2, 4, 5].map(|i| records[i].clone()).to_vec();
    call("begin_inflight", store.begin_inflight(&batch("k3", rest))).await?;
    ensure_eq!(queue_seqs(&store).await?, Vec::<Seq>::new(), "queue while inflight");
    ensure_eq!(call("release", store.release_inflight("k3")).await?, true, "released");
    drop(store);
    let store = reopen(open, "release").await?;
    ensure_eq!(queue_seqs(&store).await?, vec![0, 2, 4, 5], "after reopen");
    let more = fill(&store, vec![scored(6)]).await?;
    ensure_eq!(queue_seqs(&store).await?, vec![0, 2, 4, 5, more[0].seq], "new records behind");
    let stats = call("stats", store.stats()).await?;
    ensure_eq!(
        (stats.queued, stats.inflight_records, stats.sent_records_total),
        (5, 0, 2),
        "stats"
    );
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
        auth_needed: false,
    };
    ensure_eq!(
        call("set_inflight_retry", store.set_inflight_retry("k1", &retry)).await?,
        false,
        "retry with nothing inflight"
    );
    let one = fill(&store, vec![scored(1)]).await?;
    call("begin_inflight", store.begin_inflight(&batch("k1", one))).await?;
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
    let records = fill(&store, (1..=3).map(scored).collect()).await?;
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
    ensure_totals_agree(&store).await
}

/// Acknowledging a batch and taking the next in one call: the next is taken when the first was
/// the one inflight, and refused (the acknowledgement standing) when its records are gone.
async fn ack_and_begin_moves_on<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "ack-begin").await?;
    let records = fill(&store, (0..5).map(scored).collect()).await?;
    call("begin_inflight", store.begin_inflight(&batch("k1", records[..2].to_vec()))).await?;
    let k2 = batch("k2", records[2..4].to_vec());
    let ack = |key: &str| Ack { key: key.into(), rejected: 0, message: None };
    let (acked, taken) = call("ack_and_begin", store.ack_and_begin(&ack("k1"), &k2)).await?;
    ensure!(acked && taken.is_ok(), "ack k1 and take k2: got ({acked}, {taken:?})");
    ensure_eq!(call("inflight", store.inflight()).await?, Some(k2), "inflight");
    ensure_eq!(queue_seqs(&store).await?, vec![4], "queue");
    // A next batch whose records were sent already is refused; the acknowledgement stands.
    let stale = batch("k3", records[..2].to_vec());
    let (acked, taken) = call("ack_and_begin", store.ack_and_begin(&ack("k2"), &stale)).await?;
    ensure!(acked, "ack k2");
    ensure!(
        matches!(taken, Err(StoreError::Conflict(_))),
        "take k3: expected Conflict, got {taken:?}"
    );
    drop(store);
    let store = reopen(open, "ack-begin").await?;
    ensure_eq!(call("inflight", store.inflight()).await?, None, "inflight after reopen");
    let stats = call("stats", store.stats()).await?;
    ensure_eq!((stats.queued, stats.sent_records_total), (1, 4), "(queued, sent) after reopen");
    Ok(())
}

async fn ack_queued_deletes_and_counts<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "ack-queued").await?;
    let records = fill(&store, (1..=4).map(scored).collect()).await?;
    // A batch sent straight from the queue: seqs 0 to 2, of which 0 was evicted meanwhile.
    let sent = batch("k1", records[..3].to_vec());
    ensure_eq!(call("evict_for_quota", store.evict_for_quota(1)).await?, 1, "evicted");
    let ack = Ack { key: "k1".into(), rejected: 0, message: None };
    ensure_eq!(call("ack_queued", store.ack_queued(&sent, &ack)).await?, 2, "deleted");
    ensure_eq!(call("ack_queued", store.ack_queued(&sent, &ack)).await?, 0, "repeated ack");
    ensure_eq!(queue_seqs(&store).await?, vec![3], "queue after the ack");
    ensure_eq!(call("inflight", store.inflight()).await?, None, "nothing inflight");
    drop(store);
    let store = reopen(open, "ack-queued").await?;
    let stats = call("stats", store.stats()).await?;
    ensure_eq!(
        (stats.queued, stats.sent_records_total, stats.evicted_total, stats.evicted_quota_total),
        (1, 2, 1, 1),
        "(queued, sent, evicted, evicted for quota) after reopen"
    );
    Ok(())
}

async fn dead_letters_are_kept<S, F, Fut>(open: &F) -> Result<(), String>
where
    S: OutboxStore,
    F: Fn(&str) -> Fut,
    Fut: Future<Output = Result<S, StoreError>>,
{
    let store = fresh(open, "dead").await?;
    let records = fill(&store, (1..=5).map(scored).collect()).await?;
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
        ("k1", 0, 1, 2),
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
    let records = fill(&store, vec![scored(1), unscored(2), scored(3)]).await?;
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
    let requeued = vec![records[2].clone(), records[0].clone(), records[1].clone()];
    ensure_eq!(
        call("oldest", store.oldest(10)).await?,
        requeued,
        "queue after re-drive (at the end) and reopen"
    );
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
    let records = fill(&store, (1..=6).map(scored).collect()).await?;
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
    ensure_totals_agree(&store).await
}
