//! The drift export natively: after a flush that reached the collector the app posts its
//! snapshots to `/v1/metrics` (same endpoint and token as the logs), at most once a minute;
//! a failing export never changes what happens to the log records.
#![cfg(not(target_arch = "wasm32"))]
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

mod common;
mod sync_fakes;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::path::Path;
use std::rc::Rc;

use edge_anomaly::app::metrics_export::{metrics_url, MetricsExport, MIN_INTERVAL_MS};
use edge_anomaly::app::{App, AppOptions, ScheduleConfig, Timer};
use edge_anomaly::outbox::{
    Env, FlushOutcome, FlushStatus, HttpRequest, HttpResponse, MemoryStore, OutboxConfig,
    OutboxStore, SyncConfig, Transport, TransportError,
};
use edge_anomaly::update::ModelFiles;
use edge_wire::drift::DriftSnapshot;
use edge_wire::metrics::{decode, Limits};
use futures::executor::block_on;
use sync_fakes::{body_text, otlp_ok, FakeCollector, FakeEnv};

/// Logs to the scripted fake collector; metrics to a list, answered from a script (200 `{}`
/// when it is empty).
#[derive(Debug, Default)]
struct Collector {
    logs: Rc<FakeCollector>,
    metrics: RefCell<Vec<HttpRequest>>,
    metrics_script: RefCell<VecDeque<Result<HttpResponse, TransportError>>>,
}

impl Transport for Collector {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        if !request.url.ends_with("/v1/metrics") {
            return self.logs.send(request).await;
        }
        self.metrics.borrow_mut().push(request);
        self.metrics_script.borrow_mut().pop_front().unwrap_or_else(|| Ok(otlp_ok("{}")))
    }
}

struct NoSleep(Rc<FakeEnv>);

impl Timer for NoSleep {
    async fn sleep(&self, ms: u64) {
        self.0.advance(ms);
    }
    fn monotonic_ms(&self) -> f64 {
        self.0.now_ms() as f64
    }
}

type TestApp = App<Rc<MemoryStore>, Rc<Collector>, Rc<FakeEnv>, Rc<NoSleep>>;

fn open() -> (TestApp, Rc<Collector>, Rc<FakeEnv>, Rc<MemoryStore>) {
    let collector = Rc::new(Collector::default());
    let env = FakeEnv::new();
    let store = Rc::new(MemoryStore::new());
    let options = AppOptions {
        outbox: OutboxConfig::default(),
        endpoint: "http://collector.test/".into(),
        token: Some("t0ken".into()),
        app_version: "0.4.0".into(),
        schedule: ScheduleConfig { write_spacing_ms: 2_000, timer_ms: 30_000, min_sleep_ms: 250 },
        send_readings: false,
    };
    let timer = Rc::new(NoSleep(Rc::clone(&env)));
    let app = block_on(App::open(
        Rc::clone(&store),
        Rc::clone(&collector),
        Rc::clone(&env),
        timer,
        options,
    ))
    .expect("opens");
    (app, collector, env, store)
}

/// Installs the shipped model and scores the golden readings, so the app has drift statistics.
fn score_golden(app: &TestApp) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models/shuttle");
    let read = |name: &str| std::fs::read(dir.join(name)).expect(name);
    let files: ModelFiles = ["metadata.json", "golden.json", "model.int8.onnx"]
        .iter()
        .map(|n| (n.to_string(), read(n)))
        .collect();
    app.install_package(&files, &read("model.sig"), "update").expect("the shipped model");
    let golden = common::golden();
    block_on(app.score(&golden.flat_rows(), golden.features.len(), None)).expect("scored");
}

fn decoded(request: &HttpRequest) -> Vec<DriftSnapshot> {
    let text = body_text(request);
    let metrics = decode(text.as_bytes(), &Limits::default()).expect("a valid metrics body");
    assert_eq!(metrics.rejected_data_points, 0);
    metrics.devices.into_iter().flat_map(|d| d.snapshots).collect()
}

#[test]
fn a_flush_posts_the_drift_snapshots_after_the_logs() {
    let (app, collector, _env, store) = open();
    score_golden(&app);
    let snapshots = app.drift();
    assert!(!snapshots.is_empty(), "scoring with a model keeps drift statistics");
    let outcome = block_on(app.flush()).expect("flush");
    assert_eq!(outcome.status, FlushStatus::Drained);
    assert_eq!(block_on(store.queued()).expect("queued"), 0);

    let metrics = collector.metrics.borrow();
    assert_eq!(metrics.len(), 1);
    let request = &metrics[0];
    assert_eq!(request.url, "http://collector.test/v1/metrics");
    assert_eq!(request.header("authorization"), Some("Bearer t0ken"));
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(decoded(request), snapshots);
    assert_eq!(app.metrics_export_stats().sent, 1);
}

#[test]
fn a_failing_export_does_not_touch_log_delivery() {
    for answer in [
        Err(TransportError::Network("reset".into())),
        Ok(HttpResponse::status(500).with_body("boom")),
        Ok(HttpResponse::status(200).with_header("content-type", "text/html").with_body("<html>")),
    ] {
        let (app, collector, _env, store) = open();
        score_golden(&app);
        let queued = block_on(store.queued()).expect("queued");
        collector.metrics_script.borrow_mut().push_back(answer);
        let outcome = block_on(app.flush()).expect("a failed export is not a failed flush");
        assert_eq!(outcome.status, FlushStatus::Drained);
        assert_eq!(outcome.sent_records, queued);
        assert_eq!(collector.logs.stored.borrow().len() as u64, queued);
        assert_eq!(block_on(store.queued()).expect("queued"), 0);
        assert_eq!(collector.metrics.borrow().len(), 1);
        let stats = app.metrics_export_stats();
        assert_eq!((stats.sent, stats.failed), (0, 1));
        assert!(stats.last_error.is_some());
    }
}

#[test]
fn exports_at_most_once_a_minute_and_only_when_the_collector_was_reached() {
    let (app, collector, env, _store) = open();
    score_golden(&app);
    collector.logs.respond(503);
    let outcome = block_on(app.flush()).expect("flush");
    assert_eq!(outcome.status, FlushStatus::Backoff);
    assert_eq!(collector.metrics.borrow().len(), 0, "the collector was not reached");

    env.advance(120_000);
    block_on(app.flush()).expect("flush");
    assert_eq!(collector.metrics.borrow().len(), 1);
    env.advance(MIN_INTERVAL_MS - 1);
    block_on(app.flush()).expect("flush");
    assert_eq!(collector.metrics.borrow().len(), 1, "less than a minute later");
    env.advance(1);
    block_on(app.flush()).expect("flush");
    assert_eq!(collector.metrics.borrow().len(), 2);
}

fn snapshot(version: &str) -> DriftSnapshot {
    DriftSnapshot {
        model_version: version.into(),
        start_time_unix_nano: 1_700_000_000_000_000_000,
        time_unix_nano: 1_700_000_060_000_000_000,
        count: 4,
        anomalies: 1,
        sum: 1.5,
        bounds: vec![0.5],
        bucket_counts: vec![3, 1],
        expected_shares: vec![0.9, 0.1],
        quantiles: vec![(0.5, 0.3)],
        psi: 0.2,
        expected_anomaly_rate: 0.1,
    }
}

#[test]
fn a_snapshot_the_collector_would_refuse_is_left_out_and_counted() {
    let collector = Rc::new(Collector::default());
    let export = MetricsExport::new(Rc::clone(&collector));
    let config = SyncConfig::new("https://c.example", "1.0.0");
    let bad = DriftSnapshot { psi: f64::NAN, ..snapshot("m@2") };
    let drained = FlushOutcome::default();
    let sent =
        block_on(export.after_flush(&drained, 0, || vec![snapshot("m@1"), bad], "dev-1", &config));
    assert!(sent);
    let requests = collector.metrics.borrow();
    assert_eq!(requests[0].url, metrics_url(&config));
    assert_eq!(requests[0].header("authorization"), None);
    assert_eq!(decoded(&requests[0]), [snapshot("m@1")]);
    assert_eq!(export.stats().invalid_snapshots, 1);
    assert_eq!(export.stats().sent, 1);
}

#[test]
fn nothing_to_report_sends_nothing() {
    let collector = Rc::new(Collector::default());
    let export = MetricsExport::new(Rc::clone(&collector));
    let config = SyncConfig::new("https://c.example", "1.0.0");
    let drained = FlushOutcome::default();
    assert!(!block_on(export.after_flush(&drained, 0, Vec::new, "dev-1", &config)));
    let busy = FlushOutcome { status: FlushStatus::AlreadyRunning, ..FlushOutcome::default() };
    assert!(!block_on(export.after_flush(&busy, 0, || vec![snapshot("m")], "dev-1", &config)));
    assert!(collector.metrics.borrow().is_empty());
}
