//! [`EdgeApp`]: what the service worker runs — the platform-free [`App`] on browser parts
//! (IndexedDB, `fetch`, `gloo-timers`), with results converted for JavaScript.
//!
//! Policy lives in the core ([`crate::app`]); this file only adds what only a browser has (the
//! origin-wide flush lock) and turns values into JS. Methods that touch IndexedDB or the network
//! return Promises.

use std::cell::Cell;
use std::rc::Rc;

use js_sys::Promise;
use serde::Serialize;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, spawn_local};

use super::env::BrowserEnv;
use super::fetch_transport::FetchTransport;
use super::flush_lock::with_flush_lock;
use super::idb_store::IdbStore;
use super::timer::BrowserTimer;
use crate::app::{App, AppError, AppOptions, ScheduleConfig};
use crate::outbox::{FlushOutcome, FlushStatus, OutboxConfig};
use crate::update::ModelFiles;

type BrowserApp = App<Rc<IdbStore>, FetchTransport, BrowserEnv, BrowserTimer>;

/// The worker's application: engine + outbox + sync.
#[wasm_bindgen]
pub struct EdgeApp {
    app: Rc<BrowserApp>,
    /// Set by [`EdgeApp::retire`]: the flush timer stops at its next tick.
    retired: Rc<Cell<bool>>,
}

fn app_err(e: AppError) -> JsValue {
    match e {
        AppError::Update(e) => e.into(),
        e => super::js_error(e.code(), &e.to_string()),
    }
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| super::js_error("ENCODE", &e.to_string()))
}

/// Flushes under the origin-wide flush lock; resolves to the outcome (`AlreadyRunning` when
/// another worker or syncer holds the lock).
async fn locked_flush(app: &Rc<BrowserApp>) -> Result<JsValue, JsValue> {
    let inner = Rc::clone(app);
    let locked =
        with_flush_lock(async move { to_js(&inner.flush().await.map_err(app_err)?) }).await?;
    match locked {
        Some(outcome) => Ok(outcome),
        None => to_js(&FlushOutcome { status: FlushStatus::AlreadyRunning, ..Default::default() }),
    }
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
        let mut outbox = OutboxConfig::default();
        if capacity >= 1.0 {
            outbox.capacity = capacity as u64;
        }
        let options = AppOptions {
            outbox,
            endpoint,
            token: None,
            app_version,
            schedule: ScheduleConfig::default(),
            send_readings: false,
        };
        let app = App::open(store, FetchTransport::default(), BrowserEnv, BrowserTimer, options)
            .await
            .map_err(app_err)?;
        Ok(EdgeApp { app: Rc::new(app), retired: Rc::new(Cell::new(false)) })
    }

    /// Starts the flush timer (once per worker): every 10 s, or when the syncer's retry is
    /// due, a flush under the flush lock.
    #[wasm_bindgen(js_name = startTimer)]
    pub fn start_timer(&self) {
        let app = Rc::clone(&self.app);
        let retired = Rc::clone(&self.retired);
        spawn_local(async move {
            app.run_timer(|| async {
                if retired.get() {
                    return false;
                }
                if let Err(e) = locked_flush(&app).await {
                    web_sys::console::warn_1(&e);
                }
                true
            })
            .await;
        });
    }

    /// Stops this app's flush timer (at its next tick, without flushing): the worker calls it
    /// when another app, from the other build of the engine, takes over the same outbox.
    pub fn retire(&self) {
        self.retired.set(true);
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
        let mut package = ModelFiles::new();
        for entry in js_sys::Object::entries(files).iter() {
            let pair = js_sys::Array::from(&entry);
            let name = pair.get(0).as_string().unwrap_or_default();
            let bytes = js_sys::Uint8Array::new(&pair.get(1)).to_vec();
            package.insert(name, bytes);
        }
        to_js(&self.app.install_package(&package, bundle, kind).map_err(app_err)?)
    }

    /// Whether the update channel should download release `version`: newer than the active
    /// model, not refused since the worker started, and runnable by this app
    /// (`min_app_version` ≤ its version). An older release is logged as refused, once.
    #[wasm_bindgen(js_name = considerRelease)]
    pub fn consider_release(&self, version: &str, min_app_version: &str) -> bool {
        self.app.consider_release(version, min_app_version)
    }

    /// The active model's version, if any.
    #[wasm_bindgen(getter, js_name = modelVersion)]
    pub fn model_version(&self) -> Option<String> {
        self.app.model_version()
    }

    /// Goes back to the previous model (the dashboard's rollback); whether there was one.
    #[wasm_bindgen(js_name = rollBack)]
    pub fn roll_back(&self) -> bool {
        self.app.roll_back("asked for on the dashboard", "ROLLBACK_MANUAL")
    }

    /// Points the syncer at another collector, with an optional bearer token, and stores both
    /// so a restarted worker keeps them. A flush in progress finishes its request first; a queue
    /// held for credentials is sent again at once. Resolves when stored.
    pub fn configure(&self, endpoint: String, token: Option<String>) -> Promise {
        let app = Rc::clone(&self.app);
        future_to_promise(async move {
            app.configure(endpoint, token).await.map_err(app_err)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Whether readings scored from now on carry their values to the collector (its retraining
    /// export), stored so a restarted worker keeps the choice. Resolves when stored.
    #[wasm_bindgen(js_name = setSendReadings)]
    pub fn set_send_readings(&self, on: bool) -> Promise {
        let app = Rc::clone(&self.app);
        future_to_promise(async move {
            app.set_send_readings(on).await.map_err(app_err)?;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// Counts `n` readings that were refused before reaching the app (e.g. by the worker's
    /// message checks) under `reason`, like every reading the app does not record.
    #[wasm_bindgen(js_name = countDropped)]
    pub fn count_dropped(&self, reason: String, n: f64) -> Promise {
        let app = Rc::clone(&self.app);
        future_to_promise(async move {
            app.count_dropped(&reason, n.max(0.0) as u64).await;
            Ok(JsValue::UNDEFINED)
        })
    }

    /// The device id (stable across restarts; part of every record id).
    #[wasm_bindgen(getter, js_name = deviceId)]
    pub fn device_id(&self) -> String {
        self.app.device_id().to_owned()
    }

    /// Scores row-major readings of `features` values each and records every one in the outbox.
    /// `ids`, when given, names each reading (one id per reading, assigned by the page): a
    /// reading whose id was already recorded is not recorded again, and answered the same way.
    /// Resolves to `{ scores, reasons, anomalies, latencyUs }`, one entry per reading: the
    /// score (or `null` when the reading was recorded unscored: `NON_FINITE`, `NOT_LOADED`,
    /// `INFERENCE`, the reason in `reasons`) and the anomaly flag. Rejects, recording nothing and
    /// counting the readings as not recorded, when the request does not split into readings of
    /// the model's length (`WRONG_LENGTH`) or the store fails.
    ///
    /// Calls that arrive while an earlier one is writing are recorded together in the next
    /// IndexedDB transaction ([`App::score_grouped`]); each still resolves only once its
    /// readings are committed.
    pub fn score(&self, rows: Vec<f32>, features: usize, ids: Option<Vec<String>>) -> Promise {
        let app = Rc::clone(&self.app);
        future_to_promise(async move {
            let reply = app.score_grouped(rows, features, ids).await.map_err(app_err)?;
            if reply.flush_due {
                let app = Rc::clone(&app);
                spawn_local(async move {
                    if let Err(e) = locked_flush(&app).await {
                        web_sys::console::warn_1(&e);
                    }
                });
            }
            to_js(&reply)
        })
    }

    /// Sends queued records now. Resolves to the flush outcome.
    pub fn flush(&self) -> Promise {
        let app = Rc::clone(&self.app);
        future_to_promise(async move { locked_flush(&app).await })
    }

    /// The network is back (the page saw `online`): cut our own backoff short and flush.
    #[wasm_bindgen(js_name = networkRestored)]
    pub fn network_restored(&self) -> Promise {
        let app = Rc::clone(&self.app);
        future_to_promise(async move {
            app.network_restored().await.map_err(app_err)?;
            locked_flush(&app).await
        })
    }

    /// Moves every dead-lettered batch back to the queue. Resolves to the number of records.
    #[wasm_bindgen(js_name = redriveAll)]
    pub fn redrive_all(&self) -> Promise {
        let app = Rc::clone(&self.app);
        future_to_promise(async move {
            let n = app.redrive_all().await.map_err(app_err)?;
            Ok(JsValue::from_f64(n as f64))
        })
    }

    /// Outbox counts, dead letters, model and sync state.
    pub fn status(&self) -> Promise {
        let app = Rc::clone(&self.app);
        future_to_promise(async move { to_js(&app.status().await.map_err(app_err)?) })
    }
}
