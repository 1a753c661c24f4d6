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

use super::env::BrowserEnv;
use super::fetch_transport::FetchTransport;
use super::idb_store::IdbStore;
use crate::engine::{EngineConfig, EngineError, ModelSlot};
use crate::outbox::{
    Entry, FlushOutcome, FlushStatus, OutboxConfig, OutboxError, OutboxStore, Recorder, SyncConfig,
    Syncer,
};

type AppSyncer = Syncer<Rc<IdbStore>, FetchTransport, BrowserEnv>;

struct Inner {
    slot: RefCell<ModelSlot>,
    model_version: RefCell<Option<String>>,
    threshold: Cell<f32>,
    recorder: Recorder<Rc<IdbStore>>,
    syncer: RefCell<Rc<AppSyncer>>,
    app_version: String,
    last_flush: RefCell<Option<FlushOutcome>>,
    /// When a write last triggered a flush (ms); such flushes are spaced by
    /// [`WRITE_FLUSH_INTERVAL_MS`] so a 10 Hz sensor sends batches, not a request per reading.
    last_write_flush_ms: Cell<f64>,
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

fn make_syncer(
    store: Rc<IdbStore>,
    endpoint: &str,
    token: Option<String>,
    app_version: &str,
) -> Result<AppSyncer, JsValue> {
    let mut config = SyncConfig::new(endpoint, app_version);
    config.bearer_token = token.filter(|t| !t.is_empty());
    Syncer::new(store, FetchTransport, BrowserEnv, config).map_err(outbox_err)
}

/// What `status()` reports.
#[derive(Serialize)]
struct Status<'a> {
    device_id: &'a str,
    app_version: &'a str,
    model_loaded: bool,
    model_version: Option<String>,
    features: Option<usize>,
    /// Which implementation scores: `"dense"` (the fused MLP kernel) or `"tract"`.
    engine_backend: Option<&'static str>,
    threshold: f32,
    endpoint: String,
    outbox: crate::outbox::OutboxStats,
    dead_letters: Vec<crate::outbox::DeadLetter>,
    flushing: bool,
    last_flush: Option<FlushOutcome>,
}

#[wasm_bindgen]
impl EdgeApp {
    /// Opens the outbox database `db_name` and prepares a syncer for `endpoint`
    /// (`{endpoint}/v1/logs`). `capacity` caps queued records (0 = default 1,000,000).
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
        let syncer = make_syncer(Rc::clone(&store), &endpoint, None, &app_version)?;
        Ok(EdgeApp {
            inner: Rc::new(Inner {
                slot: RefCell::new(ModelSlot::new()),
                model_version: RefCell::new(None),
                threshold: Cell::new(f32::INFINITY),
                recorder,
                syncer: RefCell::new(Rc::new(syncer)),
                app_version,
                last_flush: RefCell::new(None),
                last_write_flush_ms: Cell::new(f64::NEG_INFINITY),
            }),
        })
    }

    /// Loads model bytes as `version` with decision `threshold`. On failure the previous model
    /// stays active.
    #[wasm_bindgen(js_name = loadModel)]
    pub fn load_model(&self, bytes: &[u8], version: String, threshold: f32) -> Result<(), JsValue> {
        self.inner.slot.borrow_mut().load(bytes, EngineConfig::default())?;
        *self.inner.model_version.borrow_mut() = Some(version);
        self.inner.threshold.set(threshold);
        Ok(())
    }

    /// Points the syncer at another collector, with an optional bearer token.
    pub fn configure(&self, endpoint: String, token: Option<String>) -> Result<(), JsValue> {
        let store = Rc::clone(self.inner.recorder.store());
        let syncer = make_syncer(store, &endpoint, token, &self.inner.app_version)?;
        *self.inner.syncer.borrow_mut() = Rc::new(syncer);
        Ok(())
    }

    /// The device id (stable across restarts; part of every record id).
    #[wasm_bindgen(getter, js_name = deviceId)]
    pub fn device_id(&self) -> String {
        self.inner.recorder.device_id().to_owned()
    }

    /// Scores row-major readings of `features` values each and records every one in the outbox.
    /// Resolves to `{ scores: Float32Array, latencyUs }`. Invalid input (wrong length, NaN/Inf,
    /// batch over the cap) rejects and records nothing; when no model is loaded or it fails, the
    /// raw readings are recorded for cloud scoring and the promise rejects with that code.
    pub fn score(&self, rows: Vec<f32>, features: usize) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move { inner.score(rows, features).await })
    }

    /// Sends queued records now. Resolves to the flush outcome.
    pub fn flush(&self) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let outcome = inner.flush().await?;
            to_js(&outcome)
        })
    }

    /// The network is back (the page saw `online`): cut our own backoff short and flush.
    #[wasm_bindgen(js_name = networkRestored)]
    pub fn network_restored(&self) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let syncer = Rc::clone(&inner.syncer.borrow());
            syncer.network_restored().await.map_err(outbox_err)?;
            to_js(&inner.flush().await?)
        })
    }

    /// Moves every dead-lettered batch back to the queue. Resolves to the number of records.
    #[wasm_bindgen(js_name = redriveAll)]
    pub fn redrive_all(&self) -> Promise {
        let inner = Rc::clone(&self.inner);
        future_to_promise(async move {
            let syncer = Rc::clone(&inner.syncer.borrow());
            let n = syncer.redrive_all().await.map_err(outbox_err)?;
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
    async fn score(self: Rc<Self>, rows: Vec<f32>, features: usize) -> Result<JsValue, JsValue> {
        if features == 0 || rows.is_empty() || !rows.len().is_multiple_of(features) {
            return Err(EngineError::WrongLength { len: rows.len(), features }.into());
        }
        let n = rows.len() / features;
        let t0 = now_ms();
        let result = self.slot.borrow().score(&rows);
        let elapsed_us = ((now_ms() - t0) * 1000.0).max(0.0);
        let per_row_us = (elapsed_us / n as f64).round() as u64;
        let ts = js_sys::Date::now() as u64;
        let version = self.model_version.borrow().clone();
        let threshold = self.threshold.get();
        let (entries, outcome) = match result {
            Ok(scores) => {
                let v = version.unwrap_or_default();
                let entries = scores
                    .iter()
                    .map(|&s| Entry::scored(ts, v.clone(), s, s > threshold, per_row_us))
                    .collect();
                (entries, Ok(scores))
            }
            // Could not score: keep the raw readings for the cloud, and say why.
            Err(e @ (EngineError::NotLoaded | EngineError::Inference(_))) => {
                let entries = rows
                    .chunks(features)
                    .map(|r| Entry::unscored(ts, version.clone(), r.to_vec(), e.code()))
                    .collect();
                (entries, Err(e))
            }
            Err(e) => return Err(e.into()),
        };
        self.recorder.record(entries).await.map_err(outbox_err)?;
        self.flush_if_endpoint_answers();
        let scores = outcome?;
        let out = js_sys::Object::new();
        js_sys::Reflect::set(&out, &"scores".into(), &js_sys::Float32Array::from(&scores[..]))?;
        js_sys::Reflect::set(&out, &"latencyUs".into(), &JsValue::from_f64(elapsed_us))?;
        Ok(out.into())
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
        if answering && due && !self.syncer.borrow().is_running() {
            self.last_write_flush_ms.set(now);
            let inner = Rc::clone(self);
            spawn_local(async move {
                if let Err(e) = inner.flush().await {
                    web_sys::console::warn_1(&e);
                }
            });
        }
    }

    async fn flush(&self) -> Result<FlushOutcome, JsValue> {
        let syncer = Rc::clone(&self.syncer.borrow());
        let outcome = syncer.flush().await.map_err(outbox_err)?;
        if outcome.status != FlushStatus::AlreadyRunning {
            *self.last_flush.borrow_mut() = Some(outcome.clone());
        }
        Ok(outcome)
    }

    async fn status(&self) -> Result<JsValue, JsValue> {
        let store = self.recorder.store();
        let err = |e: crate::outbox::StoreError| super::js_error(e.code(), &e.to_string());
        let outbox = store.stats().await.map_err(err)?;
        let dead_letters = store.dead_letters().await.map_err(err)?;
        let slot = self.slot.borrow();
        let syncer = Rc::clone(&self.syncer.borrow());
        to_js(&Status {
            device_id: self.recorder.device_id(),
            app_version: &self.app_version,
            model_loaded: slot.engine().is_ok(),
            model_version: self.model_version.borrow().clone(),
            features: slot.engine().ok().map(|e| e.features()),
            engine_backend: slot.engine().ok().map(|e| e.backend().name()),
            threshold: self.threshold.get(),
            endpoint: syncer.config().endpoint.clone(),
            outbox,
            dead_letters,
            flushing: syncer.is_running(),
            last_flush: self.last_flush.borrow().clone(),
        })
    }
}
