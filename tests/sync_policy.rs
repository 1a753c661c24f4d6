//! The OTLP/HTTP retry policy as the syncer applies it: what is retried and when, what is
//! dead-lettered, partial success, re-drive, and per-call budget. Table-driven where it fits.
#![cfg(not(target_arch = "wasm32"))] // native; the browser runs tests/web_*.rs
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

mod sync_fakes;

use edge_anomaly::outbox::{
    Env, FlushStatus, HttpResponse, MemoryStore, OutboxStore, RetryPolicy, TransportError,
};
use futures::executor::block_on;
use sync_fakes::{
    config, device_id, json_body, log_records, record, syncer, FakeCollector, FakeEnv, Step, T0,
};

fn flush(s: &sync_fakes::TestSyncer) -> edge_anomaly::outbox::FlushOutcome {
    block_on(s.flush()).expect("flush")
}

#[test]
fn an_empty_outbox_is_drained_without_a_request() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    let out = flush(&syncer(&store, &collector, &env, config()));
    assert_eq!(out.status, FlushStatus::Drained);
    assert_eq!((out.sent_batches, out.next_attempt_at_ms), (0, None));
    assert_eq!(collector.request_count(), 0);
}

#[test]
fn a_2xx_acknowledges_and_deletes() {
    for status in [200, 201, 202, 204] {
        let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
        record(&store, &env, 5);
        collector.respond(status);
        let out = flush(&syncer(&store, &collector, &env, config()));
        assert_eq!(
            (out.status, out.sent_batches, out.sent_records),
            (FlushStatus::Drained, 1, 5),
            "{status}"
        );
        assert!(
            out.wire_bytes < out.json_bytes,
            "gzipped: {} of {}",
            out.wire_bytes,
            out.json_bytes
        );
        let stats = block_on(store.stats()).expect("stats");
        assert_eq!(
            (stats.queued, stats.inflight_records, stats.sent_records_total),
            (0, 0, 5),
            "{status}"
        );
    }
}

#[test]
fn retryable_failures_keep_the_batch_and_back_off() {
    let cases: Vec<(&str, Step)> = vec![
        ("429", Step::Respond(HttpResponse::status(429))),
        ("502", Step::Respond(HttpResponse::status(502))),
        ("503", Step::Respond(HttpResponse::status(503))),
        ("504", Step::Respond(HttpResponse::status(504))),
        ("network", Step::Fail(TransportError::Network("offline".into()))),
        ("timeout", Step::Fail(TransportError::Timeout)),
    ];
    let policy = RetryPolicy::default();
    for (name, step) in cases {
        let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
        record(&store, &env, 3);
        collector.script([step]);
        let s = syncer(&store, &collector, &env, config());
        let out = flush(&s);
        assert_eq!(out.status, FlushStatus::Backoff, "{name}");
        assert_eq!((out.sent_batches, out.dead_lettered_batches), (0, 0), "{name}");
        let at = out.next_attempt_at_ms.expect("a retry time");
        let low = T0 + (policy.initial_backoff_ms as f64 * (1.0 - policy.jitter)) as u64;
        assert!(
            (low..=T0 + policy.initial_backoff_ms).contains(&at),
            "{name}: retry at +{}",
            at - T0
        );
        assert!(out.last_error.is_some(), "{name}");

        // Nothing left the outbox: the batch waits inflight with its backoff state.
        let inflight = block_on(store.inflight()).expect("inflight").expect("still inflight");
        let retry = inflight.retry.expect("retry state");
        assert_eq!(
            (retry.attempts, retry.not_before_ms, retry.server_directed),
            (1, at, false),
            "{name}"
        );
        let stats = block_on(store.stats()).expect("stats");
        assert_eq!(
            (stats.inflight_records, stats.dead_letter_records, stats.sent_records_total),
            (3, 0, 0)
        );

        // Once the time comes it is sent and acknowledged.
        env.set_now(at);
        let out = flush(&s);
        assert_eq!((out.status, out.sent_records), (FlushStatus::Drained, 3), "{name}");
        assert_eq!(collector.request_count(), 2, "{name}");
    }
}

#[test]
fn final_refusals_are_dead_lettered_not_retried() {
    // 401/403 and redirects are not final: tests/sync_acks.rs. 413 is final for a batch of one
    // record; a larger one is cut again (below).
    for status in [400, 404, 405, 409, 415, 422, 500, 501, 505] {
        let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
        record(&store, &env, 4);
        collector.script([Step::Respond(HttpResponse::status(status).with_body("nope"))]);
        let s = syncer(&store, &collector, &env, config());
        let out = flush(&s);
        assert_eq!(out.status, FlushStatus::Drained, "{status}");
        assert_eq!(
            (out.dead_lettered_batches, out.dead_lettered_records, out.sent_records),
            (1, 4, 0),
            "{status}"
        );
        assert_eq!(out.last_error.as_deref(), Some(format!("HTTP {status}: nope").as_str()));
        assert_eq!(collector.request_count(), 1, "{status}: not retried");

        // Kept, counted and visible.
        let dead = block_on(store.dead_letters()).expect("dead letters");
        assert_eq!(dead.len(), 1, "{status}");
        assert_eq!(
            (dead[0].records, dead[0].failure.status, dead[0].failure.attempts),
            (4, Some(status), 1)
        );
        assert_eq!(dead[0].failure.message, "nope");
        assert_eq!(dead[0].failure.at_ms, T0);
        let stats = block_on(store.stats()).expect("stats");
        assert_eq!((stats.dead_letter_batches, stats.dead_letter_records, stats.queued), (1, 4, 0));
        assert_eq!(flush(&s).sent_batches, 0, "{status}: a later flush does not resend it");
    }
}

#[test]
fn a_batch_too_large_for_the_endpoint_is_sent_again_in_halves() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 50);
    let mut c = config();
    c.max_batch_records = 40;
    collector.refuse_over(12);
    let s = syncer(&store, &collector, &env, c);
    let out = flush(&s);
    assert_eq!(out.status, FlushStatus::Drained);
    assert_eq!((out.sent_records, out.dead_lettered_batches), (50, 0));
    let sizes: Vec<usize> =
        collector.requests.borrow().iter().map(|r| log_records(&json_body(r)).len()).collect();
    assert_eq!(sizes, [40, 20, 10, 10, 10, 10, 10], "halved until taken, then kept there");
    let expected: Vec<String> = (0..50).map(|seq| format!("{}:{seq}", device_id(&store))).collect();
    assert_eq!(*collector.stored.borrow(), expected, "every record once, in order");
    let error = out.last_error.unwrap_or_default();
    assert!(error.starts_with("HTTP 413") && error.contains("at most 10"), "{error}");
    let stats = block_on(store.stats()).expect("stats");
    assert_eq!((stats.queued, stats.inflight_records, stats.dead_letter_batches), (0, 0, 0));

    // A new endpoint may take more again.
    record(&store, &env, 30);
    block_on(s.reconfigure(config())).expect("reconfigure");
    collector.refuse_over(usize::MAX);
    assert_eq!(flush(&s).sent_batches, 1, "one batch of 30");
}

#[test]
fn one_record_too_large_for_the_endpoint_is_dead_lettered() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 3);
    collector.refuse_over(0);
    let s = syncer(&store, &collector, &env, config());
    let out = flush(&s);
    assert_eq!(out.status, FlushStatus::Drained);
    assert_eq!((out.sent_records, out.dead_lettered_batches, out.dead_lettered_records), (0, 3, 3));
    let sizes: Vec<usize> =
        collector.requests.borrow().iter().map(|r| log_records(&json_body(r)).len()).collect();
    assert_eq!(sizes, [3, 1, 1, 1]);
    let dead = block_on(store.dead_letters()).expect("dead");
    assert!(dead.iter().all(|d| d.records == 1 && d.failure.status == Some(413)));
    assert!(collector.stored.borrow().is_empty());
}

#[test]
fn a_dead_letter_does_not_block_the_batches_behind_it() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 30);
    let mut c = config();
    c.max_batch_records = 10;
    collector.script([Step::Accept, Step::Respond(HttpResponse::status(400)), Step::Accept]);
    let out = flush(&syncer(&store, &collector, &env, c));
    assert_eq!(out.status, FlushStatus::Drained);
    assert_eq!((out.sent_batches, out.sent_records, out.dead_lettered_batches), (2, 20, 1));
    let dead = block_on(store.dead_letters()).expect("dead");
    assert_eq!((dead[0].first_seq, dead[0].last_seq), (10, 19), "the middle batch");
    assert_eq!(collector.stored.borrow().len(), 20);
}

#[test]
fn redrive_moves_a_dead_batch_back_and_it_is_sent() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 6);
    collector.respond(422);
    let s = syncer(&store, &collector, &env, config());
    assert_eq!(flush(&s).dead_lettered_records, 6);
    let dead = block_on(store.dead_letters()).expect("dead");
    let dead_key = dead[0].key.clone();

    // The collector was fixed; the user re-drives.
    assert_eq!(block_on(store.redrive_dead_letter(&dead_key)).expect("redrive"), Some(6));
    let out = flush(&s);
    assert_eq!((out.status, out.sent_records), (FlushStatus::Drained, 6));
    assert_ne!(collector.keys()[1], dead_key, "a new batch gets a new key");
    let stats = block_on(store.stats()).expect("stats");
    assert_eq!((stats.dead_letter_batches, stats.sent_records_total, stats.queued), (0, 6, 0));
    assert_eq!(collector.stored.borrow().len(), 6);

    // redrive_all does every dead batch at once.
    record(&store, &env, 4);
    collector.script([
        Step::Respond(HttpResponse::status(400)),
        Step::Respond(HttpResponse::status(400)),
    ]);
    let mut c = config();
    c.max_batch_records = 2;
    let s = syncer(&store, &collector, &env, c);
    assert_eq!(flush(&s).dead_lettered_batches, 2);
    assert_eq!(block_on(s.redrive_all()).expect("redrive all"), 4);
    assert_eq!(flush(&s).sent_records, 4);
}

#[test]
fn retry_after_seconds_sets_the_next_attempt_exactly() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 2);
    collector.script([Step::Respond(HttpResponse::status(503).with_header("Retry-After", "30"))]);
    let s = syncer(&store, &collector, &env, config());
    let out = flush(&s);
    assert_eq!((out.status, out.next_attempt_at_ms), (FlushStatus::Backoff, Some(T0 + 30_000)));

    // Called early: returns at once, sends nothing.
    env.set_now(T0 + 29_999);
    let early = flush(&s);
    assert_eq!((early.status, early.next_attempt_at_ms), (FlushStatus::Backoff, Some(T0 + 30_000)));
    assert_eq!(collector.request_count(), 1);

    env.set_now(T0 + 30_000);
    assert_eq!(flush(&s).sent_records, 2);
}

#[test]
fn retry_after_forms_and_cap() {
    let policy = RetryPolicy::default();
    // (header value, expected delay from now); now is T0 = Tue, 14 Nov 2023 22:13:20 GMT.
    let cases: &[(&str, u64)] = &[
        ("0", 0),
        ("1", 1_000),
        ("120", 120_000),
        ("Tue, 14 Nov 2023 22:14:20 GMT", 60_000),
        ("Tue, 14 Nov 2023 22:00:00 GMT", 0),
        ("86400", policy.max_retry_after_ms),
    ];
    for &(value, delay) in cases {
        for status in [429, 503] {
            let (store, collector, env) =
                (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
            record(&store, &env, 1);
            collector.script([Step::Respond(
                HttpResponse::status(status).with_header("retry-after", value),
            )]);
            let out = flush(&syncer(&store, &collector, &env, config()));
            assert_eq!(out.next_attempt_at_ms, Some(T0 + delay), "{status} Retry-After: {value}");
            let retry =
                block_on(store.inflight()).expect("ok").and_then(|b| b.retry).expect("retry");
            assert!(retry.server_directed);
        }
    }
    // An unparseable value falls back to our own backoff.
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 1);
    env.fix_random(Some(0));
    collector.script([Step::Respond(HttpResponse::status(503).with_header("retry-after", "soon"))]);
    let out = flush(&syncer(&store, &collector, &env, config()));
    assert_eq!(out.next_attempt_at_ms, Some(T0 + policy.initial_backoff_ms));
}

#[test]
fn backoff_grows_exponentially_and_is_capped() {
    let policy = RetryPolicy::default();
    let expected =
        [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000];
    for (i, &nominal) in expected.iter().enumerate() {
        let attempts = i as u32 + 1;
        assert_eq!(policy.nominal_backoff_ms(attempts), nominal, "attempt {attempts}");
        assert_eq!(policy.backoff_ms(attempts, 0.0), nominal, "no jitter cut at 0");
    }
    assert_eq!(policy.nominal_backoff_ms(u32::MAX), policy.max_backoff_ms, "no overflow");
}

#[test]
fn jitter_stays_within_bounds() {
    let policy = RetryPolicy::default();
    for attempts in 1..=12 {
        let nominal = policy.nominal_backoff_ms(attempts);
        let floor = (nominal as f64 * (1.0 - policy.jitter)) as u64;
        for unit in [0.0, 0.1, 0.5, 0.999_999, 1.0] {
            let d = policy.backoff_ms(attempts, unit);
            assert!((floor..=nominal).contains(&d), "attempt {attempts}, unit {unit}: {d}");
        }
    }
    let none = RetryPolicy { jitter: 0.0, ..policy };
    assert_eq!(none.backoff_ms(3, 0.7), 4_000);
}

#[test]
fn repeated_failures_back_off_further_each_time() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 1);
    env.fix_random(Some(0)); // no jitter cut: delays are the nominal ones
    let s = syncer(&store, &collector, &env, config());
    let mut delays = Vec::new();
    for _ in 0..11 {
        collector.script([Step::Fail(TransportError::Network("offline".into()))]);
        let now = env.now_ms();
        let at = flush(&s).next_attempt_at_ms.expect("backoff");
        delays.push(at - now);
        env.set_now(at);
    }
    assert_eq!(
        delays,
        [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 300_000, 300_000]
    );
    let retry = block_on(store.inflight()).expect("ok").and_then(|b| b.retry).expect("retry");
    assert_eq!(retry.attempts, 11);
    // Then it goes through, and the records leave.
    assert_eq!(flush(&s).sent_records, 1);
    assert_eq!(block_on(store.inflight()).expect("ok"), None);
}

#[test]
fn jitter_comes_from_the_injected_random_source() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 1);
    env.fix_random(Some(u64::MAX)); // unit just below 1: the largest cut, just under half
    collector.script([Step::Fail(TransportError::Timeout)]);
    let out = flush(&syncer(&store, &collector, &env, config()));
    assert_eq!(out.next_attempt_at_ms, Some(T0 + 501));
}

#[test]
fn partial_success_acknowledges_and_records_the_rejection() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 10);
    let body =
        r#"{"partialSuccess":{"rejectedLogRecords":"3","errorMessage":"3 records too old"}}"#;
    collector.script([Step::AcceptWith(body.into())]);
    let out = flush(&syncer(&store, &collector, &env, config()));
    assert_eq!((out.status, out.sent_records, out.rejected_records), (FlushStatus::Drained, 10, 3));
    assert_eq!(collector.request_count(), 1, "partial success is not retried");
    let stats = block_on(store.stats()).expect("stats");
    assert_eq!((stats.queued, stats.inflight_records, stats.sent_records_total), (0, 0, 10));
    assert_eq!(stats.rejected_records_total, 3);
    assert_eq!(stats.last_rejection.as_deref(), Some("3 records too old"));
}

#[test]
fn one_call_sends_at_most_its_budget() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 50);
    let mut c = config();
    c.max_batch_records = 10;
    c.max_batches_per_flush = 2;
    let s = syncer(&store, &collector, &env, c);
    let out = flush(&s);
    assert_eq!(
        (out.status, out.sent_batches, out.next_attempt_at_ms),
        (FlushStatus::MorePending, 2, Some(T0))
    );
    assert_eq!(flush(&s).status, FlushStatus::MorePending);
    let last = flush(&s);
    assert_eq!(
        (last.status, last.sent_batches, last.next_attempt_at_ms),
        (FlushStatus::Drained, 1, None)
    );
    assert_eq!(collector.stored.borrow().len(), 50);
}

#[test]
fn network_restored_cuts_our_backoff_but_not_the_servers() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 1);
    let s = syncer(&store, &collector, &env, config());
    collector.script([Step::Fail(TransportError::Network("offline".into()))]);
    assert_eq!(flush(&s).status, FlushStatus::Backoff);
    env.advance(10);
    assert!(block_on(s.network_restored()).expect("ok"), "our backoff is cut");
    assert_eq!(flush(&s).sent_records, 1);

    record(&store, &env, 1);
    collector.script([Step::Respond(HttpResponse::status(429).with_header("retry-after", "60"))]);
    assert_eq!(flush(&s).status, FlushStatus::Backoff);
    assert!(!block_on(s.network_restored()).expect("ok"), "Retry-After stands");
    assert_eq!(flush(&s).status, FlushStatus::Backoff);
    assert_eq!(collector.request_count(), 3);
}

#[test]
fn the_dead_letter_store_is_capped_and_counts_what_it_drops() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 9);
    let mut c = config();
    c.max_batch_records = 3;
    c.max_dead_letter_records = 6;
    collector.script((0..3).map(|_| Step::Respond(HttpResponse::status(400))));
    let out = flush(&syncer(&store, &collector, &env, c));
    assert_eq!(out.dead_lettered_batches, 3);
    let stats = block_on(store.stats()).expect("stats");
    assert_eq!((stats.dead_letter_records, stats.dead_letter_evicted_total), (6, 3));
    assert_eq!(stats.dead_lettered_batches_total, 3);
}
