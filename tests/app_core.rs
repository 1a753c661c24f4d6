//! The application core natively: scoring with and without a model, the raw fallback, what is
//! refused and counted, a host's stand-in scorer, full storage, and every flush trigger (write,
//! timer with the retry schedule, reconnect) against a scripted collector and a fake clock.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

mod common;
mod sync_fakes;

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::rc::Rc;

use edge_anomaly::app::{App, AppOptions, ScheduleConfig, ScoreError, Scorer, Timer};
use edge_anomaly::outbox::{
    FlushStatus, HttpResponse, MemoryStore, OutboxConfig, OutboxStore, TransportError,
};
use edge_anomaly::update::ModelFiles;
use futures::executor::block_on;
use sync_fakes::{FakeCollector, FakeEnv, Step};

/// A timer whose sleeps return at once after moving the fake clock on; it logs each sleep.
struct FakeTimer {
    env: Rc<FakeEnv>,
    slept: RefCell<Vec<u64>>,
}

impl Timer for FakeTimer {
    async fn sleep(&self, ms: u64) {
        self.slept.borrow_mut().push(ms);
        self.env.advance(ms);
    }

    fn monotonic_ms(&self) -> f64 {
        use edge_anomaly::outbox::Env;
        self.env.now_ms() as f64
    }
}

type TestApp = App<Rc<MemoryStore>, Rc<FakeCollector>, Rc<FakeEnv>, Rc<FakeTimer>>;

struct Harness {
    app: TestApp,
    store: Rc<MemoryStore>,
    collector: Rc<FakeCollector>,
    env: Rc<FakeEnv>,
    timer: Rc<FakeTimer>,
}

fn options() -> AppOptions {
    AppOptions {
        outbox: OutboxConfig::default(),
        endpoint: "http://collector.test".into(),
        token: None,
        app_version: "0.1.0".into(),
        schedule: ScheduleConfig { write_spacing_ms: 2_000, timer_ms: 30_000, min_sleep_ms: 250 },
        send_readings: false,
    }
}

fn open_on(store: Rc<MemoryStore>) -> Harness {
    let collector = FakeCollector::new();
    let env = FakeEnv::new();
    let timer = Rc::new(FakeTimer { env: Rc::clone(&env), slept: RefCell::new(Vec::new()) });
    let app = block_on(App::open(
        Rc::clone(&store),
        Rc::clone(&collector),
        Rc::clone(&env),
        Rc::clone(&timer),
        options(),
    ))
    .expect("opens");
    Harness { app, store, collector, env, timer }
}

fn open() -> Harness {
    open_on(Rc::new(MemoryStore::new()))
}

fn with_shipped_model(h: &Harness) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/shuttle");
    let read = |name: &str| std::fs::read(dir.join(name)).expect(name);
    let files: ModelFiles = ["metadata.json", "golden.json", "model.int8.onnx"]
        .iter()
        .map(|n| (n.to_string(), read(n)))
        .collect();
    h.app.install_package(&files, &read("model.sig"), "update").expect("the shipped model");
}

fn queued(h: &Harness) -> u64 {
    block_on(h.store.queued()).expect("queued")
}

#[test]
fn without_a_model_every_reading_is_recorded_raw() {
    let h = open();
    let reply = block_on(h.app.score(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 3, None)).expect("recorded");
    assert_eq!(reply.scores, vec![None, None]);
    assert_eq!(reply.reasons, vec![Some("NOT_LOADED".into()), Some("NOT_LOADED".into())]);
    assert_eq!(reply.anomalies, vec![false, false]);
    let records = block_on(h.store.oldest(10)).expect("records");
    assert_eq!(records.len(), 2);
    let raw: Vec<_> = records.iter().map(|r| format!("{:?}", r.result)).collect();
    assert!(raw[1].contains("4.0") && raw[1].contains("NOT_LOADED"), "{raw:?}");
    let status = block_on(h.app.status()).expect("status");
    assert!(!status.model_loaded);
    assert_eq!(status.outbox.queued, 2);
}

#[test]
fn with_the_shipped_model_scores_flags_and_keeps_nan_readings_raw() {
    let h = open();
    with_shipped_model(&h);
    let golden = common::golden();
    let features = golden.features.len();
    let mut rows = golden.flat_rows();
    let n = rows.len() / features;
    rows.extend(std::iter::repeat_n(f32::NAN, features));
    let reply = block_on(h.app.score(&rows, features, None)).expect("recorded");
    assert_eq!(reply.scores.len(), n + 1);
    let status = block_on(h.app.status()).expect("status");
    for (i, (score, anomaly)) in reply.scores.iter().zip(&reply.anomalies).take(n).enumerate() {
        let score = score.expect("finite readings are scored");
        assert_eq!(*anomaly, score > status.threshold, "row {i}: the flag is the threshold's");
    }
    assert!(reply.anomalies.iter().any(|a| *a) && reply.anomalies.iter().any(|a| !a));
    assert_eq!(reply.scores[n], None);
    assert_eq!(reply.reasons[n].as_deref(), Some("NON_FINITE"));
    assert_eq!(queued(&h), (n + 1) as u64, "every reading recorded, the NaN one too");
}

#[test]
fn a_request_of_the_wrong_width_or_ids_is_refused_and_counted() {
    let h = open();
    with_shipped_model(&h);
    let err = block_on(h.app.score(&[1.0; 8], 4, None)).expect_err("the model takes 9");
    assert_eq!(err.code(), "WRONG_LENGTH");
    let err = block_on(h.app.score(&[1.0; 7], 9, None)).expect_err("not a whole reading");
    assert_eq!(err.code(), "WRONG_LENGTH");
    let err =
        block_on(h.app.score(&[1.0; 18], 9, Some(vec!["a".into()]))).expect_err("one id for two");
    assert_eq!(err.code(), "BAD_IDS");
    assert_eq!(queued(&h), 0, "nothing recorded");
    let status = block_on(h.app.status()).expect("status");
    assert_eq!(status.dropped.get("WRONG_LENGTH"), Some(&3), "2 readings, then 1");
    assert_eq!(status.dropped.get("BAD_IDS"), Some(&2));
}

#[test]
fn a_reading_sent_again_under_its_id_is_recorded_once() {
    let h = open();
    with_shipped_model(&h);
    let ids = || Some(vec!["r-1".to_string()]);
    block_on(h.app.score(&[0.0; 9], 9, ids())).expect("first");
    block_on(h.app.score(&[0.0; 9], 9, ids())).expect("again");
    assert_eq!(queued(&h), 1);
}

/// A stand-in that fails every call with its own code, as a sandbox out of fuel does.
struct OutOfFuel;

impl Scorer for OutOfFuel {
    fn features(&self) -> Option<usize> {
        Some(9)
    }
    fn max_rows(&self) -> usize {
        64
    }
    fn score(&self, _rows: &[f32]) -> Result<Vec<f32>, ScoreError> {
        Err(ScoreError { code: "SANDBOX_FUEL", message: "fuel exhausted".into() })
    }
}

/// A stand-in that doubles the engine's scores, to show the app uses it.
struct Doubled(edge_anomaly::Engine);

impl Scorer for Doubled {
    fn features(&self) -> Option<usize> {
        Some(self.0.features())
    }
    fn max_rows(&self) -> usize {
        2
    }
    fn score(&self, rows: &[f32]) -> Result<Vec<f32>, ScoreError> {
        assert!(rows.len() <= 2 * 9, "the app keeps to max_rows");
        Ok(self.0.score(rows)?.into_iter().map(|s| s * 2.0).collect())
    }
}

#[test]
fn a_host_scorer_stands_in_for_the_engine_and_its_failures_are_recorded_raw() {
    let h = open();
    with_shipped_model(&h);
    let row = [50.0, 0.0, 80.0, 0.0, 40.0, 2.0, 40.0, 45.0, 5.0];
    let native = block_on(h.app.score(&row, 9, None)).expect("native").scores[0].expect("scored");

    let engine = edge_anomaly::Engine::load(common::INT8_MODEL, Default::default()).expect("loads");
    h.app.set_scorer(Some((Rc::new(Doubled(engine)), "doubled")));
    let rows: Vec<f32> = row.iter().copied().cycle().take(9 * 5).collect();
    let reply = block_on(h.app.score(&rows, 9, None)).expect("stand-in");
    for s in &reply.scores {
        assert!((s.expect("scored") - 2.0 * native).abs() <= 1e-4 * native.abs().max(1.0));
    }
    assert_eq!(block_on(h.app.status()).expect("status").engine_backend, Some("doubled"));

    h.app.set_scorer(Some((Rc::new(OutOfFuel), "sandbox")));
    let reply = block_on(h.app.score(&row, 9, None)).expect("recorded unscored");
    assert_eq!(reply.scores, vec![None]);
    assert_eq!(reply.reasons, vec![Some("SANDBOX_FUEL".into())]);
    assert_eq!(queued(&h), 7);

    h.app.set_scorer(None);
    let reply = block_on(h.app.score(&row, 9, None)).expect("native again");
    assert_eq!(reply.scores, vec![Some(native)]);
}

#[test]
fn full_storage_still_answers_with_scores_and_counts_the_loss() {
    let store = Rc::new(MemoryStore::new().limit_records(3).space_not_reclaimed());
    let h = open_on(store);
    with_shipped_model(&h);
    for _ in 0..3 {
        block_on(h.app.score(&[0.0; 9], 9, None)).expect("fits");
    }
    let reply = block_on(h.app.score(&[0.0; 9], 9, None)).expect("scored, not recorded");
    assert!(reply.scores[0].is_some());
    let status = block_on(h.app.status()).expect("status");
    let lost: u64 = status.dropped.values().sum::<u64>() + status.outbox.evicted_total;
    match reply.not_recorded {
        Some(code) => assert_eq!(status.dropped.get(code), Some(&1), "{status:?}"),
        None => assert!(lost >= 1, "recorded by evicting, and the eviction is counted"),
    }
}

#[test]
fn writes_trigger_a_flush_only_while_the_endpoint_answers_and_spaced() {
    let h = open();
    with_shipped_model(&h);
    let score = || block_on(h.app.score(&[0.0; 9], 9, None)).expect("recorded").flush_due;
    assert!(!score(), "no flush has found the endpoint answering yet");
    assert_eq!(block_on(h.app.flush()).expect("flush").status, FlushStatus::Drained);
    assert!(score(), "answering: the write flushes");
    assert!(!score(), "within 2 s of the last one");
    h.env.advance(2_000);
    assert!(score(), "spaced");
    h.collector.script([Step::Fail(TransportError::Network("offline".into()))]);
    h.env.advance(2_000);
    assert_eq!(block_on(h.app.flush()).expect("flush").status, FlushStatus::Backoff);
    h.env.advance(2_000);
    assert!(!score(), "not answering: the retry schedule decides, not writes");
}

#[test]
fn the_timer_flushes_on_its_period_and_wakes_for_a_retry() {
    let h = open();
    with_shipped_model(&h);
    block_on(h.app.score(&[0.0; 9], 9, None)).expect("recorded");
    h.collector.script([Step::Respond(HttpResponse::status(503).with_header("retry-after", "7"))]);
    let flushes = Cell::new(0);
    block_on(h.app.run_timer(|| async {
        flushes.set(flushes.get() + 1);
        h.app.flush().await.expect("flush");
        flushes.get() < 3
    }));
    let slept = h.timer.slept.borrow().clone();
    assert_eq!(slept[0], 30_000, "the period first: {slept:?}");
    assert_eq!(slept[1], 7_000, "then the Retry-After the collector asked for: {slept:?}");
    assert_eq!(slept[2], 30_000, "and the period once drained: {slept:?}");
    assert_eq!(queued(&h), 0);
    assert_eq!(h.collector.stored.borrow().len(), 1);
}

#[test]
fn reconnecting_cuts_the_backoff_and_sends_at_once() {
    let h = open();
    with_shipped_model(&h);
    block_on(h.app.score(&[0.0; 9], 9, None)).expect("recorded");
    h.collector.script([Step::Fail(TransportError::Network("offline".into()))]);
    assert_eq!(block_on(h.app.flush()).expect("flush").status, FlushStatus::Backoff);
    assert_eq!(block_on(h.app.flush()).expect("flush").status, FlushStatus::Backoff, "waits");
    assert_eq!(h.collector.request_count(), 1, "the backoff held the second flush");
    assert!(block_on(h.app.network_restored()).expect("restored"));
    assert_eq!(block_on(h.app.flush()).expect("flush").status, FlushStatus::Drained);
    assert_eq!(h.collector.stored.borrow().len(), 1);
}

#[test]
fn a_configured_endpoint_outlives_the_app() {
    let store = Rc::new(MemoryStore::new());
    let h = open_on(Rc::clone(&store));
    block_on(h.app.configure("http://elsewhere.test".into(), Some("t0k".into())))
        .expect("configured");
    drop(h);
    let h = open_on(store);
    assert_eq!(block_on(h.app.status()).expect("status").endpoint, "http://elsewhere.test");
    block_on(h.app.score(&[0.0; 3], 3, None)).expect("recorded raw");
    block_on(h.app.flush()).expect("flush");
    let request = h.collector.last_request();
    assert!(request.url.starts_with("http://elsewhere.test"), "{}", request.url);
    assert_eq!(request.header("authorization"), Some("Bearer t0k"));
}

#[test]
fn scored_readings_carry_their_values_once_asked_and_the_choice_outlives_the_app() {
    let store = Rc::new(MemoryStore::new());
    let h = open_on(Rc::clone(&store));
    with_shipped_model(&h);
    let golden = common::golden();
    let features = golden.features.len();
    let rows = golden.flat_rows();
    let first = &rows[..features];
    // Off by default: the scored record has no reading.
    block_on(h.app.score(first, features, None)).expect("scored");
    assert!(!block_on(h.app.status()).expect("status").send_readings);
    block_on(h.app.set_send_readings(true)).expect("stored");
    // A later configure (a new token) keeps the choice.
    block_on(h.app.configure("http://collector.test".into(), Some("t".into()))).expect("set");
    block_on(h.app.score(first, features, None)).expect("scored");
    drop(h);

    let h = open_on(store);
    assert!(block_on(h.app.status()).expect("status").send_readings, "stored with the settings");
    with_shipped_model(&h);
    block_on(h.app.score(&rows[features..2 * features], features, None)).expect("scored");
    block_on(h.app.flush()).expect("flush");
    let body = sync_fakes::json_body(&h.collector.last_request());
    let records = sync_fakes::log_records(&body);
    assert_eq!(records.len(), 3);
    // Compared as f32: the wire's double is the f32 value, however it is spelled.
    let reading = |r: &serde_json::Value| -> Option<Vec<f32>> {
        let values = sync_fakes::attr(r, "edge.reading")?["arrayValue"]["values"].as_array()?;
        Some(values.iter().map(|v| v["doubleValue"].as_f64().expect("a double") as f32).collect())
    };
    let sent = |row: &[f32]| row.to_vec();
    assert_eq!(reading(&records[0]), None, "scored before the choice: as recorded");
    assert_eq!(reading(&records[1]), Some(sent(first)));
    assert_eq!(reading(&records[2]), Some(sent(&rows[features..2 * features])));
    for r in &records {
        assert!(sync_fakes::attr(r, "edge.score").is_some(), "still scored: {r}");
        assert!(sync_fakes::attr(r, "edge.unscored_reason").is_none());
    }
    block_on(h.app.set_send_readings(false)).expect("stored");
    assert!(!block_on(h.app.status()).expect("status").send_readings);
}

#[test]
fn a_flagged_reading_names_its_channels_in_the_reply_the_outbox_and_the_telemetry() {
    let h = open();
    with_shipped_model(&h);
    let golden = common::golden();
    let features = golden.features.len();
    let rows = golden.flat_rows();
    let reply = block_on(h.app.score(&rows, features, None)).expect("recorded");
    let flagged: Vec<usize> = (0..reply.anomalies.len()).filter(|&i| reply.anomalies[i]).collect();
    assert!(!flagged.is_empty(), "the golden rows include anomalies");
    for (i, (anomaly, c)) in reply.anomalies.iter().zip(&reply.contributions).enumerate() {
        let Some(c) = c else {
            assert!(!anomaly, "row {i}: a flagged reading has its channels");
            continue;
        };
        assert!(anomaly, "row {i}: only flagged readings have channels");
        assert_eq!(c.channels.len(), features, "row {i}: every channel in the reply");
        let total: f32 = c.channels.iter().map(|c| c.share).sum();
        assert!((total - 1.0).abs() < 1e-3, "row {i}: {total}");
        assert!(c.channels.windows(2).all(|w| w[0].share >= w[1].share), "largest first");
        assert!(c.channels.iter().all(|c| golden.features.contains(&c.channel)));
    }
    // The outbox keeps the largest three of each flagged reading, and sends them.
    let records = block_on(h.store.oldest(100)).expect("records");
    let kept = |r: &edge_anomaly::outbox::Record| match &r.result {
        edge_anomaly::outbox::Scoring::Scored { contributions, .. } => contributions.clone(),
        _ => None,
    };
    for &i in &flagged {
        let kept = kept(&records[i]).expect("stored with the record");
        let replied = reply.contributions[i].clone().expect("replied");
        assert_eq!(kept.channels, replied.channels[..3], "row {i}");
    }
    block_on(h.app.flush()).expect("flush");
    let body = sync_fakes::json_body(&h.collector.last_request());
    let sent = sync_fakes::log_records(&body);
    let names = |r: &serde_json::Value| -> Option<Vec<String>> {
        let values = sync_fakes::attr(r, "edge.contributions.channels")?["arrayValue"]["values"]
            .as_array()?;
        Some(values.iter().map(|v| v["stringValue"].as_str().unwrap_or("").to_owned()).collect())
    };
    for (i, r) in sent.iter().enumerate() {
        let want = kept(&records[i]).map(|c| c.channels.into_iter().map(|c| c.channel).collect());
        assert_eq!(names(r), want, "record {i}");
        let shares = sync_fakes::attr(r, "edge.contributions.shares");
        assert_eq!(shares.is_some(), reply.anomalies[i], "record {i}");
    }
}

#[test]
fn requests_that_arrive_during_a_write_are_recorded_together_and_answered_each() {
    let store = Rc::new(MemoryStore::new().commits_asynchronously());
    let h = open_on(Rc::clone(&store));
    with_shipped_model(&h);
    let golden = common::golden();
    let features = golden.features.len();
    let rows = golden.flat_rows();
    let alone: Vec<Option<f32>> =
        block_on(h.app.score(&rows, features, None)).expect("scored").scores;
    let appends = store.appends();
    let queued_before = queued(&h);

    // One request per reading, all in flight at once, as a page streaming readings sends them;
    // one of another width in the middle, and one reading sent twice under its id.
    let mut requests: Vec<(Vec<f32>, usize, Option<Vec<String>>)> = rows
        .chunks(features)
        .enumerate()
        .map(|(i, r)| (r.to_vec(), features, Some(vec![format!("page:{i}")])))
        .collect();
    requests.insert(5, (vec![1.0, 2.0], 2, Some(vec!["page:narrow".into()])));
    requests.push((rows[..features].to_vec(), features, Some(vec!["page:0".into()])));
    let replies = block_on(futures::future::join_all(
        requests.into_iter().map(|(r, f, ids)| h.app.score_grouped(r, f, ids)),
    ));

    let n = rows.len() / features;
    assert_eq!(replies.len(), n + 2);
    let narrow = replies[5].as_ref().expect_err("a request of the wrong width is refused alone");
    assert_eq!(narrow.code(), "WRONG_LENGTH");
    let scored: Vec<_> = replies.iter().enumerate().filter(|(i, _)| *i != 5).collect();
    for (k, (_, reply)) in scored.iter().enumerate() {
        let reply = reply.as_ref().expect("recorded");
        assert_eq!(reply.scores.len(), 1);
        assert_eq!(reply.scores[0], alone[k % n], "request {k}: its own reading's score");
    }
    // Each reading recorded once (the resent one recognised by its id), in far fewer
    // transactions than requests.
    assert_eq!(queued(&h), queued_before + n as u64);
    let writes = store.appends() - appends;
    assert!(writes <= 4, "{} requests in {writes} writes", n + 2);
}

#[test]
fn a_group_refused_by_full_storage_answers_each_request_and_counts_each_reading_once() {
    let store = Rc::new(MemoryStore::new().commits_asynchronously().limit_records(0));
    let h = open_on(Rc::clone(&store));
    with_shipped_model(&h);
    let golden = common::golden();
    let features = golden.features.len();
    let rows = golden.flat_rows();
    let n = rows.len() / features;
    // Grouped into one write that the store refuses: every request still gets its own scores,
    // and the storage failure.
    let replies = block_on(futures::future::join_all(
        rows.chunks(features).map(|r| h.app.score_grouped(r.to_vec(), features, None)),
    ));
    let alone = block_on(h.app.score(&rows, features, None)).expect("scored").scores;
    for (i, reply) in replies.iter().enumerate() {
        let reply = reply.as_ref().expect("a full store is not an error");
        assert_eq!(reply.scores, vec![alone[i]], "request {i}");
        assert_eq!(reply.not_recorded, Some("STORE_QUOTA"), "request {i}");
    }
    assert_eq!(queued(&h), 0);
    let status = block_on(h.app.status()).expect("status");
    assert_eq!(status.dropped.get("STORE_QUOTA"), Some(&(2 * n as u64)), "each reading once");
}
