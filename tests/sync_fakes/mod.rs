//! Test doubles for the outbox and syncer tests: a settable clock with a deterministic random
//! source, and a fake OTLP collector that can be scripted answer by answer, dedupes on
//! `Idempotency-Key` like a real idempotent endpoint, and can "hang" to simulate a worker killed
//! after the server stored a batch but before the answer arrived.
#![allow(dead_code, reason = "each test binary uses a different subset")]
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::rc::Rc;

use edge_anomaly::outbox::{
    Entry, Env, HttpRequest, HttpResponse, MemoryStore, OutboxConfig, OutboxStore, Recorder,
    SyncConfig, Syncer, Transport, TransportError,
};
use flate2::read::GzDecoder;

/// Start of the fake clock: 2023-11-14T22:13:20Z.
pub const T0: u64 = 1_700_000_000_000;

/// A clock the test sets, and a random source that is either fixed or a seeded sequence.
#[derive(Debug)]
pub struct FakeEnv {
    now: Cell<u64>,
    fixed_random: Cell<Option<u64>>,
    state: Cell<u64>,
}

impl FakeEnv {
    pub fn new() -> Rc<FakeEnv> {
        Rc::new(FakeEnv { now: Cell::new(T0), fixed_random: Cell::new(None), state: Cell::new(1) })
    }

    pub fn advance(&self, ms: u64) {
        self.now.set(self.now.get() + ms);
    }

    pub fn set_now(&self, ms: u64) {
        self.now.set(ms);
    }

    /// Makes every `random_u64` return `value` (`None`: back to the seeded sequence).
    pub fn fix_random(&self, value: Option<u64>) {
        self.fixed_random.set(value);
    }
}

impl Env for FakeEnv {
    fn now_ms(&self) -> u64 {
        self.now.get()
    }

    fn random_u64(&self) -> u64 {
        if let Some(v) = self.fixed_random.get() {
            return v;
        }
        // splitmix64: deterministic, well spread.
        let s = self.state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        self.state.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// One scripted answer of the fake collector.
#[derive(Debug, Clone)]
pub enum Step {
    /// Store the batch (unless its key was seen) and answer 200 with an empty body.
    Accept,
    /// Store the batch and answer 200 with this body.
    AcceptWith(String),
    /// Answer with this response without storing anything.
    Respond(HttpResponse),
    /// No HTTP answer.
    Fail(TransportError),
    /// Store the batch, then never answer (the worker is killed while waiting).
    AcceptThenHang,
}

/// A fake OTLP/HTTP logs endpoint. With an empty script it accepts everything.
#[derive(Debug, Default)]
pub struct FakeCollector {
    script: RefCell<VecDeque<Step>>,
    /// Every logs request received, in order.
    pub requests: RefCell<Vec<HttpRequest>>,
    /// Drift exports (`POST …/v1/metrics`): always accepted, outside the script.
    pub metrics: RefCell<Vec<HttpRequest>>,
    /// Record ids stored, in arrival order (each at most once if keys dedupe).
    pub stored: RefCell<Vec<String>>,
    seen_keys: RefCell<HashMap<String, usize>>,
    /// Requests with more log records than this are refused with 413, outside the script.
    refuse_over: Cell<Option<usize>>,
}

impl FakeCollector {
    pub fn new() -> Rc<FakeCollector> {
        Rc::new(FakeCollector::default())
    }

    pub fn script(&self, steps: impl IntoIterator<Item = Step>) {
        self.script.borrow_mut().extend(steps);
    }

    /// Refuses requests of more than `records` log records as too large (413), as an endpoint
    /// with a smaller body limit does.
    pub fn refuse_over(&self, records: usize) {
        self.refuse_over.set(Some(records));
    }

    pub fn respond(&self, status: u16) {
        self.script([Step::Respond(HttpResponse::status(status))]);
    }

    pub fn keys(&self) -> Vec<String> {
        self.requests.borrow().iter().map(key_of).collect()
    }

    pub fn request_count(&self) -> usize {
        self.requests.borrow().len()
    }

    pub fn last_request(&self) -> HttpRequest {
        self.requests.borrow().last().cloned().expect("a request was sent")
    }

    fn store(&self, request: &HttpRequest) {
        let key = key_of(request);
        let mut seen = self.seen_keys.borrow_mut();
        if seen.contains_key(&key) {
            *seen.entry(key).or_default() += 1;
            return;
        }
        seen.insert(key, 1);
        self.stored.borrow_mut().extend(record_ids(&json_body(request)));
    }
}

impl Transport for FakeCollector {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        if request.url.ends_with("/v1/metrics") {
            self.metrics.borrow_mut().push(request);
            return Ok(otlp_ok("{}"));
        }
        self.requests.borrow_mut().push(request.clone());
        if self.refuse_over.get().is_some_and(|max| log_records(&json_body(&request)).len() > max) {
            return Ok(HttpResponse::status(413).with_body("request entity too large"));
        }
        let step = self.script.borrow_mut().pop_front().unwrap_or(Step::Accept);
        match step {
            Step::Accept => {
                self.store(&request);
                Ok(otlp_ok("{}"))
            }
            Step::AcceptWith(body) => {
                self.store(&request);
                Ok(otlp_ok(body))
            }
            Step::Respond(response) => Ok(response),
            Step::Fail(e) => Err(e),
            Step::AcceptThenHang => {
                self.store(&request);
                std::future::pending().await
            }
        }
    }
}

/// A 200 carrying an OTLP JSON `ExportLogsServiceResponse`, as a real collector answers.
pub fn otlp_ok(body: impl Into<Vec<u8>>) -> HttpResponse {
    HttpResponse::status(200).with_header("content-type", "application/json").with_body(body)
}

pub fn key_of(request: &HttpRequest) -> String {
    request.header("idempotency-key").expect("idempotency-key header").to_owned()
}

/// The request body as JSON text, gunzipped if needed.
pub fn body_text(request: &HttpRequest) -> String {
    if request.header("content-encoding") == Some("gzip") {
        let mut text = String::new();
        GzDecoder::new(request.body.as_slice()).read_to_string(&mut text).expect("valid gzip");
        text
    } else {
        String::from_utf8(request.body.clone()).expect("utf-8 body")
    }
}

pub fn json_body(request: &HttpRequest) -> serde_json::Value {
    serde_json::from_str(&body_text(request)).expect("JSON body")
}

/// The log records of an `ExportLogsServiceRequest`.
pub fn log_records(body: &serde_json::Value) -> Vec<serde_json::Value> {
    body["resourceLogs"][0]["scopeLogs"][0]["logRecords"]
        .as_array()
        .expect("logRecords array")
        .clone()
}

/// The value object of attribute `key` of a log record (or resource), if present.
pub fn attr<'a>(record: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    record["attributes"]
        .as_array()
        .expect("attributes array")
        .iter()
        .find(|kv| kv["key"] == key)
        .map(|kv| &kv["value"])
}

/// The `edge.record_id` of every log record in `body`.
pub fn record_ids(body: &serde_json::Value) -> Vec<String> {
    log_records(body)
        .iter()
        .map(|r| {
            attr(r, "edge.record_id")
                .and_then(|v| v["stringValue"].as_str())
                .expect("record id")
                .to_owned()
        })
        .collect()
}

pub fn entry(i: u64) -> Entry {
    Entry::scored(T0 + i, "m-1", i as f32 / 10.0, i.is_multiple_of(10), 120)
}

pub type TestSyncer = Syncer<MemoryStore, Rc<FakeCollector>, Rc<FakeEnv>>;

/// The defaults, with 100-record batches: the scenarios count batches of that size.
pub fn config() -> SyncConfig {
    SyncConfig {
        max_batch_records: 100,
        max_batch_bytes: 256 * 1024,
        ..SyncConfig::new("https://collector.example", "1.2.3")
    }
}

pub fn syncer(
    store: &MemoryStore,
    collector: &Rc<FakeCollector>,
    env: &Rc<FakeEnv>,
    config: SyncConfig,
) -> TestSyncer {
    Syncer::new(store.reopen(), Rc::clone(collector), Rc::clone(env), config).expect("valid config")
}

/// Records `n` readings into `store` (seqs continue from the store's counter).
pub fn record(store: &MemoryStore, env: &Rc<FakeEnv>, n: u64) {
    futures::executor::block_on(async {
        let recorder =
            Recorder::open(store.reopen(), OutboxConfig::default(), &**env).await.expect("open");
        let first = recorder.store().next_seq().await.expect("next seq");
        let entries = (first..first + n).map(entry).collect();
        recorder.record(entries).await.expect("record");
    });
}

/// The store's device id (set by `record`).
pub fn device_id(store: &MemoryStore) -> String {
    futures::executor::block_on(store.device_id()).expect("device_id").expect("device id is set")
}
