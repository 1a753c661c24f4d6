//! What the syncer counts as delivered, and the waits it can get stuck in: only a real OTLP
//! response acknowledges a batch (not a captive portal's page, not a redirect), refused
//! credentials hold the queue instead of dead-lettering it, every stored wait is bounded even
//! when the clock jumps, and a new configuration never starts a second flush.
#![cfg(not(target_arch = "wasm32"))] // native; the browser runs tests/web_*.rs
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

mod sync_fakes;

use std::pin::pin;

use edge_anomaly::outbox::{FlushStatus, HttpResponse, MemoryStore, OutboxStore, RetryPolicy};
use futures::executor::block_on;
use futures::poll;
use sync_fakes::{config, otlp_ok, record, syncer, FakeCollector, FakeEnv, Step, T0};

fn flush(s: &sync_fakes::TestSyncer) -> edge_anomaly::outbox::FlushOutcome {
    block_on(s.flush()).expect("flush")
}

fn queued_and_inflight(store: &MemoryStore) -> (u64, u64, u64) {
    let stats = block_on(store.stats()).expect("stats");
    (stats.queued, stats.inflight_records, stats.sent_records_total)
}

#[test]
fn a_2xx_that_is_not_an_otlp_response_keeps_the_batch() {
    let html = "<!doctype html><title>Sign in to the Wi-Fi</title>";
    let cases: Vec<(&str, HttpResponse)> = vec![
        (
            "captive portal page",
            HttpResponse::status(200).with_header("content-type", "text/html").with_body(html),
        ),
        (
            "HTML labelled JSON",
            HttpResponse::status(200)
                .with_header("content-type", "application/json")
                .with_body(html),
        ),
        ("other JSON", otlp_ok(r#"{"status":"login required"}"#)),
        ("no content type", HttpResponse::status(200).with_body("{}")),
        (
            "bad protobuf",
            HttpResponse::status(200)
                .with_header("content-type", "application/x-protobuf")
                .with_body(vec![0x0a, 0x09, 0x08]),
        ),
    ];
    for (name, response) in cases {
        let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
        record(&store, &env, 5);
        collector.script([Step::Respond(response)]);
        let s = syncer(&store, &collector, &env, config());
        let out = flush(&s);
        assert_eq!((out.status, out.sent_records), (FlushStatus::Backoff, 0), "{name}");
        assert!(
            out.last_error.as_deref().is_some_and(|e| e.contains("not an OTLP")),
            "{name}: {out:?}"
        );
        assert_eq!(queued_and_inflight(&store), (0, 5, 0), "{name}: still inflight, not deleted");
        assert_eq!(
            block_on(store.dead_letters()).expect("ok"),
            vec![],
            "{name}: not dead-lettered"
        );

        // The real collector answers later: the same batch is delivered under the same key.
        env.advance(RetryPolicy::default().max_backoff_ms);
        let out = flush(&s);
        assert_eq!((out.status, out.sent_records), (FlushStatus::Drained, 5), "{name}");
        let keys = collector.keys();
        assert_eq!(keys.len(), 2);
        assert_eq!(keys[0], keys[1], "{name}: resent under the same idempotency key");
    }
}

#[test]
fn empty_json_and_protobuf_successes_acknowledge() {
    let protobuf_partial = vec![0x0a, 0x02, 0x08, 0x01]; // partial_success { rejected_log_records: 1 }
    let cases: Vec<(HttpResponse, u64)> = vec![
        (HttpResponse::status(200), 0),
        (HttpResponse::status(204), 0),
        (otlp_ok("{}"), 0),
        (HttpResponse::status(200).with_header("content-type", "application/x-protobuf"), 0),
        (
            HttpResponse::status(200)
                .with_header("Content-Type", "application/x-protobuf")
                .with_body(protobuf_partial),
            1,
        ),
    ];
    for (response, rejected) in cases {
        let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
        record(&store, &env, 3);
        collector.script([Step::Respond(response.clone())]);
        let out = flush(&syncer(&store, &collector, &env, config()));
        assert_eq!(
            (out.status, out.sent_records, out.rejected_records),
            (FlushStatus::Drained, 3, rejected),
            "{response:?}"
        );
    }
}

#[test]
fn redirects_are_not_followed_and_keep_the_batch() {
    for status in [301, 302, 303, 307, 308] {
        let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
        record(&store, &env, 2);
        collector.script([Step::Respond(
            HttpResponse::status(status).with_header("location", "https://portal.example/login"),
        )]);
        let out = flush(&syncer(&store, &collector, &env, config()));
        assert_eq!(out.status, FlushStatus::Backoff, "{status}");
        assert_eq!(queued_and_inflight(&store), (0, 2, 0), "{status}");
        assert_eq!(block_on(store.dead_letters()).expect("ok"), vec![], "{status}");
    }
}

#[test]
fn refused_credentials_hold_the_queue_until_new_ones_come() {
    for status in [401, 403] {
        let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
        record(&store, &env, 250); // three batches' worth
        let s = syncer(&store, &collector, &env, config());
        collector.script([Step::Respond(HttpResponse::status(status).with_body("bad token"))]);
        let out = flush(&s);
        assert_eq!(out.status, FlushStatus::AuthNeeded, "{status}");
        assert_eq!(collector.request_count(), 1, "{status}: one refusal stops the flush");
        assert_eq!(block_on(store.dead_letters()).expect("ok"), vec![], "{status}");
        assert_eq!(queued_and_inflight(&store), (150, 100, 0), "{status}");

        // The network coming back does not cut the wait, and flushing again sends nothing.
        env.advance(1_000);
        assert!(!block_on(s.network_restored()).expect("ok"));
        assert_eq!(flush(&s).status, FlushStatus::AuthNeeded);
        assert_eq!(collector.request_count(), 1);

        // New credentials: the held batch goes at once, with them, and the queue drains.
        let mut with_token = config();
        with_token.bearer_token = Some("fresh".into());
        block_on(s.reconfigure(with_token)).expect("reconfigure");
        let out = flush(&s);
        assert_eq!((out.status, out.sent_records), (FlushStatus::Drained, 250), "{status}");
        let requests = collector.requests.borrow();
        assert_eq!(requests[1].header("authorization"), Some("Bearer fresh"));
        assert_eq!(sync_fakes::key_of(&requests[0]), sync_fakes::key_of(&requests[1]));
    }
}

#[test]
fn refused_credentials_are_rechecked_after_the_backoff_cap() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 1);
    let s = syncer(&store, &collector, &env, config());
    collector.respond(401);
    let out = flush(&s);
    let cap = RetryPolicy::default().max_backoff_ms;
    assert_eq!(out.next_attempt_at_ms, Some(T0 + cap));
    env.set_now(T0 + cap);
    assert_eq!(flush(&s).sent_records, 1, "the server side was fixed meanwhile");
}

#[test]
fn a_clock_jumping_backwards_cannot_stall_sending() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 1);
    let s = syncer(&store, &collector, &env, config());
    collector.script([Step::Respond(HttpResponse::status(503).with_header("retry-after", "30"))]);
    assert_eq!(flush(&s).next_attempt_at_ms, Some(T0 + 30_000));

    // The device's clock was a year fast and is corrected.
    let year = 365 * 24 * 3_600 * 1_000;
    let now = T0 - year;
    env.set_now(now);
    let max_wait = RetryPolicy::default().max_wait_ms();
    let out = flush(&s);
    assert_eq!((out.status, out.next_attempt_at_ms), (FlushStatus::Backoff, Some(now + max_wait)));
    // The pulled-in time is stored: it does not slide forward with each call.
    env.set_now(now + max_wait / 2);
    assert_eq!(flush(&s).next_attempt_at_ms, Some(now + max_wait));
    env.set_now(now + max_wait);
    assert_eq!(flush(&s).sent_records, 1);
}

#[test]
fn a_clock_jumping_forwards_sends_at_once() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 1);
    let s = syncer(&store, &collector, &env, config());
    collector.script([Step::Respond(HttpResponse::status(429).with_header("retry-after", "3600"))]);
    assert_eq!(flush(&s).status, FlushStatus::Backoff);
    env.set_now(T0 + 10 * 365 * 24 * 3_600 * 1_000);
    assert_eq!(flush(&s).sent_records, 1);
}

#[test]
fn a_huge_retry_after_is_capped() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 1);
    collector.script([Step::Respond(
        HttpResponse::status(503).with_header("retry-after", "99999999999999999999999"),
    )]);
    let out = flush(&syncer(&store, &collector, &env, config()));
    assert_eq!(out.next_attempt_at_ms, Some(T0 + RetryPolicy::default().max_retry_after_ms));
}

#[test]
fn reconfiguring_during_a_flush_does_not_start_a_second_one() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 150);
    let s = syncer(&store, &collector, &env, config());
    collector.script([Step::AcceptThenHang]);
    block_on(async {
        let mut first = pin!(s.flush());
        assert!(poll!(first.as_mut()).is_pending(), "waiting for the collector");
        let mut other = config();
        other.endpoint = "https://other.example".into();
        s.reconfigure(other).await.expect("reconfigure");
        let second = s.flush().await.expect("flush");
        assert_eq!(second.status, FlushStatus::AlreadyRunning);
    });
    assert_eq!(collector.request_count(), 1, "one request in flight, none beside it");
    // The next flush resends the unanswered batch (same key) to the new endpoint, then the rest.
    let out = flush(&s);
    assert_eq!(out.status, FlushStatus::Drained);
    let requests = collector.requests.borrow();
    assert!(requests[1].url.starts_with("https://other.example/"));
    assert_eq!(sync_fakes::key_of(&requests[0]), sync_fakes::key_of(&requests[1]));
    assert_eq!(queued_and_inflight(&store), (0, 0, 150));
}

#[test]
fn an_invalid_configuration_changes_nothing() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    let s = syncer(&store, &collector, &env, config());
    let mut bad = config();
    bad.endpoint = "ftp://nowhere".into();
    assert!(block_on(s.reconfigure(bad)).is_err());
    assert_eq!(s.config(), config());
}

#[test]
fn every_batch_reports_what_the_device_lost() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 2);
    block_on(store.count_dropped("STORE_QUOTA", 3)).expect("count");
    block_on(store.count_dropped("WRONG_LENGTH", 1)).expect("count");
    flush(&syncer(&store, &collector, &env, config()));
    let body = sync_fakes::json_body(&collector.last_request());
    let resource = &body["resourceLogs"][0]["resource"];
    let int = |key: &str| sync_fakes::attr(resource, key).map(|v| v["intValue"].clone());
    assert_eq!(int("edge.dropped.STORE_QUOTA"), Some("3".into()));
    assert_eq!(int("edge.dropped.WRONG_LENGTH"), Some("1".into()));
    assert_eq!(int("edge.outbox.evicted_total"), None, "zero counters are left out");
}

#[test]
fn every_batch_reports_the_model_state_the_host_set() {
    let (store, collector, env) = (MemoryStore::new(), FakeCollector::new(), FakeEnv::new());
    record(&store, &env, 2);
    let s = syncer(&store, &collector, &env, config());
    s.set_model_telemetry(edge_anomaly::outbox::otlp::ModelTelemetry {
        active: Some("2.0.0".into()),
        activations: 2,
        refusals: 1,
        rollbacks: 0,
        last_event: Some("refused MODEL_SIGNATURE:untrusted_key 3.0.0".into()),
    });
    flush(&s);
    let body = sync_fakes::json_body(&collector.last_request());
    let resource = &body["resourceLogs"][0]["resource"];
    let get = |key: &str, kind: &str| sync_fakes::attr(resource, key).map(|v| v[kind].clone());
    assert_eq!(get("edge.model.active", "stringValue"), Some("2.0.0".into()));
    assert_eq!(get("edge.model.activations_total", "intValue"), Some("2".into()));
    assert_eq!(get("edge.model.refusals_total", "intValue"), Some("1".into()));
    assert_eq!(get("edge.model.rollbacks_total", "intValue"), None, "zero counters are left out");
    let last = get("edge.model.last_event", "stringValue");
    assert_eq!(last, Some("refused MODEL_SIGNATURE:untrusted_key 3.0.0".into()));
}
