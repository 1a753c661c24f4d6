//! [`EdgeApp`]: what the service worker runs. One handle joins the engine, the IndexedDB outbox
//! and the syncer: score readings, record every one durably, flush to the collector.
//!
//! Policy lives in the core ([`crate::outbox`]); this file only wires browser parts to it and
//! converts results for JavaScript. Methods that touch IndexedDB or the network return Promises.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use js_sys::Promise;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local};

use super::dropped::DroppedCounts;
use super::env::BrowserEnv;
use super::fetch_transport::FetchTransport;
use super::flush_lock::with_flush_lock;
use super::idb_store::IdbStore;
use super::score_rows::{score_rows, RowOutcome, ScoreContext};
use crate::outbox::{
    FlushOutcome, FlushStatus, OutboxConfig, OutboxError, OutboxStore, Recorder, StoreError,
    SyncConfig, SyncSettings, Syncer,
};
use crate::update::{
    trusted_keys, InstallKind, ModelEvent, ModelFiles, ModelInfo, Models, Outcome, Version,
};

type AppSyncer = Syncer<Rc<IdbStore>, FetchTransport, BrowserEnv>;

struct Inner {
    /// The verified active model, the previous one, the watch and the model log.
    models: RefCell<Models>,
    recorder: Recorder<Rc<IdbStore>>,
    /// The one syncer of this worker; `configure` changes it in place, so a second syncer never
    /// runs beside a flush.
    syncer: Rc<AppSyncer>,
    app_version: String,
    last_flush: RefCell<Option<FlushOutcome>>,
    /// When a write last triggered a flush (ms); such flushes are spaced by
    /// [`WRITE_FLUSH_INTERVAL_MS`] so a 10 Hz sensor sends batches, not a request per reading.
    last_write_flush_ms: Cell<f64>,
    /// Readings not recorded, by reason, while the store cannot take the count.
    dropped: DroppedCounts,
}

/// Least time between two write-triggered flushes.
const WRITE_FLUSH_INTERVAL_MS: f64 = 2_000.0;

/// The worker's application: engine + outbox + sync.
#[wasm_bindgen]
pub struct EdgeApp {
    inner: Rc<Inner>,
}

fn outbox_err(e: OutboxError) -> JsValue {
    super::js_error(e.code(), &e.to_string())
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| super::js_error("ENCODE", &e.to_string()))
}

fn now_ms() -> f64 {
    use wasm_bindgen::JsCast;
    js_sys::global()
        .dyn_ref::<web_sys::WorkerGlobalScope>()
        .and_then(|w| w.performance())
        .map_or_else(js_sys::Date::now, |p| p.now())
}

fn sync_config(settings: &SyncSettings, app_version: &str) -> SyncConfig {
    let mut config = SyncConfig::new(settings.endpoint.as_str(), app_version);
    config.bearer_token = settings.token.clone().filter(|t| !t.is_empty());
    config
}

/// What `status()` reports.
#[derive(Serialize)]
struct Status<'a> {
    device_id: &'a str,
    app_version: &'a str,
    model_loaded: bool,
    model_version: Option<String>,
    /// The active model's version and signed subject digest.
    model: Option<ModelInfo>,
    /// The model a rollback would go back to.
    previous_model: Option<ModelInfo>,
    /// Model activations, refusals and rollbacks, oldest first.
    model_events: Vec<ModelEvent>,
    features: Option<usize>,
    /// Which implementation scores: `"dense"` (the fused MLP kernel) or `"tract"`.
    engine_backend: Option<&'static str>,
    threshold: f32,
    endpoint: String,
    outbox: crate::outbox::OutboxStats,
    /// Readings the app did not record, by reason code, ever.
    dropped: std::collections::BTreeMap<String, u64>,
    dead_letters: Vec<crate::outbox::DeadLetter>,
    flushing: bool,
    last_flush: Option<FlushOutcome>,
}

#[wasm_bindgen]
impl EdgeApp {
    /// Opens the outbox database `db_name` and prepares a syncer for the endpoint and token
    /// stored by an earlier `configure`, else for `endpoint` (`{endpoint}/v1/logs`) with no
    /// token. `capacity` caps queued records (0 = default 1,000,000).
    pub async fn open(
        db_name: String,
        endpoint: String,
        app_version: String,
        capacity: f64,
    ) -> Result<EdgeApp, JsValue> {
        super::panic::install();
        let store = Rc::new(
            IdbStore::open(&db_name)
                .await
                .map_err(|e| super::js_error(e.code(), &e.to_string()))?,
        );
        let mut config = OutboxConfig::default();
        if capacity >= 1.0 {
            config.capacity = capacity as u64;
        }
        let recorder =
            Recorder::open(Rc::clone(&store), config, &BrowserEnv).await.map_err(outbox_err)?;
        let err = |e: crate::outbox::StoreError| super::js_error(e.code(), &e.to_string());
        let settings = store
            .sync_settings()
            .await
            .map_err(err)?
            .unwrap_or(SyncSettings { endpoint, token: None });
        let config = sync_config(&settings, &app_version);
        let syncer = Syncer::new(Rc::clone(&store), FetchTransport::default(), BrowserEnv, config)
            .map_err(outbox_err)?;
        Ok(EdgeApp {
            inner: Rc::new(Inner {
                models: RefCell::new(Models::default()),
                recorder,
                syncer: Rc::new(syncer),
                app_version,
                last_flush: RefCell::new(None),
                last_write_flush_ms: Cell::new(f64::NEG_INFINITY),
                dropped: DroppedCounts::default(),
            }),
        })
    }

    /// Verifies a signed model package and, only if every check passes (signature by a
    /// trusted key, file digests, metadata, model contract and caps, golden scores; a version
    /// newer than the active one for `kind` `"update"`; any version for `"rollback"` and
    /// `"restore"`, the worker reinstalling what it had active before it restarted), makes it
    /// the active model; the model it replaces is kept for rollback. `files` maps file names to
    /// their bytes (`Uint8Array`), `bundle` is `model.sig`. On failure (an `Error` with `code`
    /// and `detail`) the active model keeps scoring, and the refusal is in
    /// `status().model_events`.
    #[wasm_bindgen(js_name = loadPackage)]
    pub fn load_package(
        &self,
        files: &js_sys::Object,
        bundle: &[u8],
        kind: &str,
    ) -> Result<JsValue, JsValue> {
        let kind = match kind {
            "update" => InstallKind::Update,
            "rollback" => InstallKind::Rollback,
            "restore" => InstallKind::Restore,
            other => return Err(super::js_error("BAD_KIND", &format!("install kind {other:?}"))),
        };
        let mut package = ModelFiles::new();
        for entry in js_sys::Object::entries(files).iter() {
            let pair = js_sys::Array::from(&entry);
            let name = pair.get(0).as_string().unwrap_or_default();
            let bytes = js_sys::Uint8Array::new(&pair.get(1)).to_vec();
            package.insert(name, bytes);
        }
        let keys = trusted_keys().map_err(|e| super::js_error(e.code(), &e.to_string()))?;
        let now = js_sys::Date::now();
        let mut models = self.inner.models.borrow_mut();
        let result = models.install_package(bundle, &package, &keys, kind, now);
        self.inner.syncer.set_model_telemetry(models.telemetry());
        to_js(&result?)
    }

    /// Whether the update channel should download release `version`: newer than the active
    /// model, not refused since the worker started, and runnable by this app
    /// (`min_app_version` ≤ its version). An older release is logged as refused, once.
    #[wasm_bindgen(js_name = considerRelease)]
    pub fn consider_release(&self, version: &str, min_app_version: &str) -> bool {
        let runnable =
            match (Version::parse(min_app_version), Version::parse(&self.inner.app_version)) {
                (Ok(min), Ok(app)) => min.cmp_release(&app) != std::cmp::Ordering::Greater,
                _ => false,
            };
        let mut models = self.inner.models.borrow_mut();
        let wanted = runnable && models.consider(version, js_sys::Date::now());
        self.inner.syncer.set_model_telemetry(models.telemetry());
        wanted
    }

    /// The active model's version, if any.
    #[wasm_bindgen(getter, js_name = modelVersion)]
    pub fn model_version(&self) -> Option<String> {
        self.inner.models.borrow().version()
    }

    /// Goes back to the previous model (the dashboard's rollback). Resolves to whether there
    /// was one.
    #[wasm_bindgen(js_name = rollBack)]
    pub fn roll_back(&self) -> bool {
        let mut models = self.inner.models.borrow_mut();
        let rolled_back =
            models.roll_back("asked for on the dashboard", "ROLLBACK_MANUAL", js_sys::Date::now());
        self.inner.syncer.set_model_telemetry(models.telemetry());
        rolled_back
    }

    /// Points the syncer at another collector, with an optional bearer token, and stores both
    /// so a restarted worker keeps them. A flush in progress finishes its request first; a queue
    /// held for credentials is sent again at once. Resolves when stored.
    pub fn configure(&self, endpoint: String, token: Option<String>) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let settings = SyncSettings { endpoint, token: token.filter(|t| !t.is_empty()) };
            let config = sync_config(&settings, &inner.app_version);
            inner.syncer.reconfigure(config).await.map_err(outbox_err)?;
            let store = inner.recorder.store();
            store
                .set_sync_settings(&settings)
                .await
                .map_err(|e| super::js_error(e.code(), &e.to_string()))?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Counts `n` readings that were refused before reaching the app (e.g. by the worker's
    /// message checks) under `reason`, like every reading the app does not record.
    #[wasm_bindgen(js_name = countDropped)]
    pub fn count_dropped(&self, reason: String, n: f64) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            inner.count_dropped(&reason, n.max(0.0) as u64).await;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The device id (stable across restarts; part of every record id).
    #[wasm_bindgen(getter, js_name = deviceId)]
    pub fn device_id(&self) -> String {
        self.inner.recorder.device_id().to_owned()
    }

    /// Scores row-major readings of `features` values each and records every one in the outbox.
    /// `ids`, when given, names each reading (one id per reading, assigned by the page): a
    /// reading whose id was already recorded is not recorded again, and answered the same way.
    /// Resolves to `{ scores, reasons, anomalies, latencyUs }`, one entry per reading: the
    /// score (or `null` when the reading was recorded unscored: `NON_FINITE`, `NOT_LOADED`,
    /// `INFERENCE`, the reason in `reasons`) and the anomaly flag. Rejects, recording nothing and
    /// counting the readings as not recorded, when the request does not split into readings of
    /// the model's length (`WRONG_LENGTH`) or the store fails.
    pub fn score(&self, rows: Vec<f32>, features: usize, ids: Option<Vec<String>>) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move { inner.score(rows, features, ids).await })
    }

    /// Sends queued records now. Resolves to the flush outcome.
    pub fn flush(&self) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move { inner.flush().await })
    }

    /// The network is back (the page saw `online`): cut our own backoff short and flush.
    #[wasm_bindgen(js_name = networkRestored)]
    pub fn network_restored(&self) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            inner.syncer.network_restored().await.map_err(outbox_err)?;
            inner.flush().await
        })
    }

    /// Moves every dead-lettered batch back to the queue. Resolves to the number of records.
    #[wasm_bindgen(js_name = redriveAll)]
    pub fn redrive_all(&self) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let n = inner.syncer.redrive_all().await.map_err(outbox_err)?;
            Ok(JsValue::from_f64(n as f64))
        })
    }

    /// Outbox counts, dead letters, model and sync state.
    pub fn status(&self) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move { inner.status().await })
    }
}

impl Inner {
    async fn score(
        self: Rc<Self>,
        rows: Vec<f32>,
        features: usize,
        ids: Option<Vec<String>>,
    ) -> Result<JsValue, JsValue> {
        let scored = {
            let models = self.models.borrow();
            let ctx = ScoreContext {
                slot: models.slot(),
                version: models.version(),
                threshold: models.threshold(),
                timestamp_ms: js_sys::Date::now() as u64,
                now_ms: &now_ms,
            };
            score_rows(&rows, features, &ctx)
        };
        let scored = match scored {
            Ok(scored) => scored,
            Err(e) => {
                let readings = if features == 0 { 1 } else { rows.len().div_ceil(features).max(1) };
                self.count_dropped(e.code(), readings as u64).await;
                return Err(e.into());
            }
        };
        let n = scored.entries.len();
        let outcomes: Vec<Outcome<'_>> =
            scored.outcomes.iter().map(|o| (o.score, o.reason.as_deref(), o.anomaly)).collect();
        let rolled_back = self.models.borrow_mut().observe(&outcomes, js_sys::Date::now());
        if rolled_back.is_some() {
            self.syncer.set_model_telemetry(self.models.borrow().telemetry());
        }
        let entries = match ids {
            Some(ids) if ids.len() == n => {
                scored.entries.into_iter().zip(ids).map(|(e, id)| e.with_reading_id(id)).collect()
            }
            Some(ids) => {
                self.count_dropped("BAD_IDS", n as u64).await;
                let message = format!("{} reading ids for {n} readings", ids.len());
                return Err(super::js_error("BAD_IDS", &message));
            }
            None => scored.entries,
        };
        let mut reply = ScoreReply::new(&scored.outcomes, scored.elapsed_us);
        reply.rolled_back = rolled_back;
        match self.recorder.record(entries).await {
            Ok(_) => {}
            // Storage is full and nothing could be evicted: the readings are counted as not
            // recorded, and the page still gets its scores (scoring never stops).
            Err(e @ OutboxError::Store(StoreError::QuotaExceeded(_))) => {
                self.count_dropped(e.code(), n as u64).await;
                reply.not_recorded = Some(e.code());
                return to_js(&reply);
            }
            Err(e) => {
                self.count_dropped(e.code(), n as u64).await;
                return Err(outbox_err(e));
            }
        }
        self.write_pending_dropped().await;
        self.flush_if_endpoint_answers();
        to_js(&reply)
    }

    /// Counts `n` readings not recorded for `reason`.
    async fn count_dropped(&self, reason: &str, n: u64) {
        self.dropped.add(reason, n);
        self.write_pending_dropped().await;
    }

    /// Moves the in-memory not-recorded counts to the store, keeping them here if it fails.
    async fn write_pending_dropped(&self) {
        let mut unwritten = std::collections::BTreeMap::new();
        for (reason, n) in self.dropped.take() {
            if self.recorder.count_dropped(&reason, n).await.is_err() {
                unwritten.insert(reason, n);
            }
        }
        self.dropped.restore(unwritten);
    }

    /// After a write, flush in the background if the last flush drained the queue (the
    /// endpoint is answering), none is running, and the last such flush is long enough ago.
    fn flush_if_endpoint_answers(self: &Rc<Self>) {
        let answering = matches!(
            self.last_flush.borrow().as_ref().map(|o| o.status),
            Some(FlushStatus::Drained | FlushStatus::MorePending)
        );
        let now = js_sys::Date::now();
        let due = now - self.last_write_flush_ms.get() >= WRITE_FLUSH_INTERVAL_MS;
        if answering && due && !self.syncer.is_running() {
            self.last_write_flush_ms.set(now);
            let inner = Rc::clone(self);
            spawn_local(async move {
                if let Err(e) = inner.flush().await {
                    web_sys::console::warn_1(&e);
                }
            });
        }
    }

    /// Flushes under the origin-wide flush lock; resolves to the outcome (`AlreadyRunning` when
    /// another worker or syncer holds the lock).
    async fn flush(self: &Rc<Self>) -> Result<JsValue, JsValue> {
        let inner = Rc::clone(self);
        let locked = with_flush_lock(async move {
            let outcome = inner.syncer.flush().await.map_err(outbox_err)?;
            if outcome.status != FlushStatus::AlreadyRunning {
                *inner.last_flush.borrow_mut() = Some(outcome.clone());
            }
            to_js(&outcome)
        })
        .await?;
        match locked {
            Some(outcome) => Ok(outcome),
            None => to_js(&FlushOutcome {
                status: FlushStatus::AlreadyRunning,
                ..FlushOutcome::default()
            }),
        }
    }

    async fn status(&self) -> Result<JsValue, JsValue> {
        let store = self.recorder.store();
        let err = |e: crate::outbox::StoreError| super::js_error(e.code(), &e.to_string());
        let outbox = store.stats().await.map_err(err)?;
        let dead_letters = store.dead_letters().await.map_err(err)?;
        let models = self.models.borrow();
        let slot = models.slot();
        let syncer = &self.syncer;
        to_js(&Status {
            device_id: self.recorder.device_id(),
            app_version: &self.app_version,
            model_loaded: slot.engine().is_ok(),
            model_version: models.version(),
            model: models.active(),
            previous_model: models.previous(),
            model_events: models.events(),
            features: slot.engine().ok().map(|e| e.features()),
            engine_backend: slot.engine().ok().map(|e| e.backend().name()),
            threshold: models.threshold(),
            endpoint: syncer.config().endpoint,
            dropped: self.dropped.merged(&outbox.dropped),
            outbox,
            dead_letters,
            flushing: syncer.is_running(),
            last_flush: self.last_flush.borrow().clone(),
        })
    }
}

/// What `score` resolves to: one entry per reading, in order.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ScoreReply<'a> {
    /// Score per reading; `null` when recorded unscored.
    scores: Vec<Option<f32>>,
    /// Why a reading was not scored; `null` when scored.
    reasons: Vec<Option<&'a str>>,
    /// Anomaly flag per reading (false when unscored).
    anomalies: Vec<bool>,
    /// Engine time for the whole request, µs.
    latency_us: f64,
    /// Set when the readings were scored but could not be recorded (`STORE_QUOTA`: storage is
    /// full); they are counted under that reason. Absent when they were recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    not_recorded: Option<&'static str>,
    /// Set when these readings made the watch roll a new model back (the reason); the worker
    /// then points its stored active model back too.
    #[serde(skip_serializing_if = "Option::is_none")]
    rolled_back: Option<String>,
}

impl<'a> ScoreReply<'a> {
    fn new(outcomes: &'a [RowOutcome], latency_us: f64) -> Self {
        ScoreReply {
            scores: outcomes.iter().map(|o| o.score).collect(),
            reasons: outcomes.iter().map(|o| o.reason.as_deref()).collect(),
            anomalies: outcomes.iter().map(|o| o.anomaly).collect(),
            latency_us,
            not_recorded: None,
            rolled_back: None,
        }
    }
}
