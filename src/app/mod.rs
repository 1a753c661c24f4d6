//! The application core every host runs: score readings, flag anomalies, record every reading
//! durably (scored, or raw with the reason it is not), decide when to flush, and keep the model
//! state (signed updates, the rollback watch).
//!
//! Platform-free like the parts it joins: the store ([`OutboxStore`]), HTTP ([`Transport`]),
//! time and randomness ([`Env`]) and sleeping ([`Timer`]) are injected. The service worker's
//! `EdgeApp` (IndexedDB, `fetch`, `gloo-timers`) and the gateway (SQLite, an HTTP client,
//! tokio) are thin adapters over [`App`]; the policy is tested natively here.
//!
//! - [`score`]: one outcome per reading ([`score::score_rows`]) through a [`Scorer`], the
//!   active model's engine unless the host set a stand-in ([`App::set_scorer`]).
//! - [`schedule`]: the flush triggers (write, timer, reconnect).
//! - [`AppStatus`] and [`ScoreReply`]: what the host shows.

pub mod drift;
mod drift_keeper;
mod dropped;
mod error;
pub mod group;
pub mod metrics_export;
mod reply;
pub mod schedule;
pub mod score;

use std::cell::RefCell;
use std::future::Future;
use std::rc::Rc;

pub use drift_keeper::DriftKeeper;
pub use dropped::DroppedCounts;
pub use error::AppError;
pub use metrics_export::{MetricsExport, MetricsExportStats};
pub use reply::{AppStatus, DriftView, ScoreReply};
pub use schedule::{FlushSchedule, ScheduleConfig, Timer};
pub use score::{ScoreError, Scorer, NON_FINITE};

use crate::outbox::{
    Env, FlushOutcome, FlushStatus, OutboxConfig, OutboxError, OutboxStore, Recorder, StoreError,
    SyncConfig, SyncSettings, Syncer,
};
use crate::update::{
    trusted_keys, InstallKind, ModelFiles, ModelInfo, ModelMetadata, Models, Outcome, Version,
};

/// What an [`App`] is opened with besides its parts.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// Queue capacity and batch limits.
    pub outbox: OutboxConfig,
    /// The collector's base URL (`{endpoint}/v1/logs`), unless the store holds one set by
    /// [`App::configure`].
    pub endpoint: String,
    /// Bearer token for `endpoint`, likewise.
    pub token: Option<String>,
    /// The host's version (sent with every batch; `min_app_version` of a release is checked
    /// against it).
    pub app_version: String,
    /// When to flush.
    pub schedule: ScheduleConfig,
    /// Whether scored records carry their reading, unless the store holds the choice made by
    /// [`App::set_send_readings`].
    pub send_readings: bool,
}

/// A host's stand-in scorer and the name the status shows for it.
type HostScorer = (Rc<dyn Scorer>, &'static str);

/// The application: models + recorder + syncer + flush schedule, shared by the host's handlers.
pub struct App<S, T, E, C> {
    models: RefCell<Models>,
    scorer: RefCell<Option<HostScorer>>,
    recorder: Recorder<S>,
    /// The one syncer; [`App::configure`] changes it in place, so a second syncer never runs
    /// beside a flush.
    syncer: Syncer<S, T, E>,
    /// The collector settings as stored (the syncer holds the same endpoint and token).
    settings: RefCell<SyncSettings>,
    env: E,
    clock: C,
    app_version: String,
    last_flush: RefCell<Option<FlushOutcome>>,
    schedule: FlushSchedule,
    /// Readings not recorded, by reason, while the store cannot take the count.
    dropped: DroppedCounts,
    /// Drift statistics to `/v1/metrics` after a flush that reached the collector.
    metrics: MetricsExport<T>,
    /// Score statistics per model version, kept in the store.
    drift: DriftKeeper,
    /// Scoring requests waiting for the write in progress ([`App::score_grouped`]).
    group: group::ScoreGroup,
}

fn sync_config(settings: &SyncSettings, app_version: &str) -> SyncConfig {
    let mut config = SyncConfig::new(settings.endpoint.as_str(), app_version);
    config.bearer_token = settings.token.clone().filter(|t| !t.is_empty());
    config
}

impl<S, T, E, C> App<S, T, E, C>
where
    S: OutboxStore + Clone,
    T: crate::outbox::Transport + Clone,
    E: Env + Clone,
    C: Timer,
{
    /// Opens the app on `store`: the device id (made on first use), the queue, and a syncer for
    /// the endpoint stored by an earlier [`Self::configure`], else `options.endpoint`.
    pub async fn open(
        store: S,
        transport: T,
        env: E,
        clock: C,
        options: AppOptions,
    ) -> Result<Self, AppError> {
        let recorder = Recorder::open(store.clone(), options.outbox, &env).await?;
        let settings = match store.sync_settings().await? {
            Some(stored) => stored,
            None => SyncSettings {
                endpoint: options.endpoint,
                token: options.token,
                send_readings: options.send_readings,
            },
        };
        let config = sync_config(&settings, &options.app_version);
        let drift = DriftKeeper::open(&store).await?;
        let syncer = Syncer::new(store, transport.clone(), env.clone(), config)?;
        Ok(App {
            models: RefCell::new(Models::default()),
            scorer: RefCell::new(None),
            recorder,
            syncer,
            settings: RefCell::new(settings),
            env,
            clock,
            app_version: options.app_version,
            last_flush: RefCell::new(None),
            schedule: FlushSchedule::new(options.schedule),
            dropped: DroppedCounts::default(),
            metrics: MetricsExport::new(transport),
            drift,
            group: group::ScoreGroup::default(),
        })
    }

    /// The device id (stable across restarts; part of every record id).
    pub fn device_id(&self) -> &str {
        self.recorder.device_id()
    }

    /// The host's version.
    pub fn app_version(&self) -> &str {
        &self.app_version
    }

    /// The store the app records into.
    pub fn store(&self) -> &S {
        self.recorder.store()
    }

    /// The last flush's outcome, if any flush ran.
    pub fn last_flush(&self) -> Option<FlushOutcome> {
        self.last_flush.borrow().clone()
    }

    /// Scores row-major readings of `features` values each and records every one: scored and
    /// flagged, or raw with the reason it is not (`NON_FINITE`, `NOT_LOADED`, `INFERENCE`, a
    /// host scorer's code). `ids`, when given, names each reading: one recorded before is not
    /// recorded again. Fails, recording nothing and counting the readings as not recorded, when
    /// the request does not split into readings of the model's width or the store fails; a
    /// store that is full only sets [`ScoreReply::not_recorded`] (scoring never stops).
    pub async fn score(
        &self,
        rows: &[f32],
        features: usize,
        ids: Option<Vec<String>>,
    ) -> Result<ScoreReply, AppError> {
        let scored = {
            let models = self.models.borrow();
            let host = self.scorer.borrow();
            let scorer: &dyn Scorer = match host.as_ref() {
                Some((scorer, _)) => scorer.as_ref(),
                None => models.slot(),
            };
            let ctx = score::ScoreContext {
                scorer,
                version: models.version(),
                threshold: models.threshold(),
                timestamp_ms: self.env.now_ms(),
                now_ms: &|| self.clock.monotonic_ms(),
                send_readings: self.settings.borrow().send_readings,
                channels: if host.is_some() { None } else { models.channels() },
            };
            score::score_rows(rows, features, &ctx)
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
        let version = self.models.borrow().version();
        self.drift.observe(version.as_deref(), &scored.outcomes, self.env.now_ms());
        let rolled_back = {
            let outcomes: Vec<Outcome<'_>> =
                scored.outcomes.iter().map(|o| (o.score, o.reason.as_deref(), o.anomaly)).collect();
            self.models.borrow_mut().observe(&outcomes, self.env.now_ms() as f64)
        };
        if rolled_back.is_some() {
            self.syncer.set_model_telemetry(self.models.borrow().telemetry());
        }
        let entries = match ids {
            Some(ids) if ids.len() == n => {
                scored.entries.into_iter().zip(ids).map(|(e, id)| e.with_reading_id(id)).collect()
            }
            Some(ids) => {
                let e = AppError::BadIds { ids: ids.len(), readings: n };
                self.count_dropped(e.code(), n as u64).await;
                return Err(e);
            }
            None => scored.entries,
        };
        let mut reply = ScoreReply::new(scored.outcomes, scored.elapsed_us);
        reply.rolled_back = rolled_back;
        match self.recorder.record(entries).await {
            Ok(_) => {}
            Err(e @ OutboxError::Store(StoreError::QuotaExceeded(_))) => {
                self.count_dropped(e.code(), n as u64).await;
                reply.not_recorded = Some(e.code());
                return Ok(reply);
            }
            Err(e) => {
                self.count_dropped(e.code(), n as u64).await;
                return Err(e.into());
            }
        }
        self.write_pending_dropped().await;
        self.drift.save_if_due(self.store()).await;
        reply.flush_due = self.schedule.after_write(
            self.env.now_ms(),
            self.last_flush.borrow().as_ref(),
            self.syncer.is_running(),
        );
        Ok(reply)
    }

    /// Counts `n` readings not recorded for `reason` (refused before reaching the app, or by
    /// it), in the store when it takes the count, else in memory until it does.
    pub async fn count_dropped(&self, reason: &str, n: u64) {
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

    /// Sends queued records now; the outcome is kept for the schedule and the status (unless
    /// another flush was already running). Then, if the collector was reached, the drift
    /// statistics at most once a minute ([`metrics_export`]; a failure there only counts).
    pub async fn flush(&self) -> Result<FlushOutcome, AppError> {
        let _ = self.drift.save(self.store()).await;
        let outcome = self.syncer.flush().await?;
        if outcome.status != FlushStatus::AlreadyRunning {
            *self.last_flush.borrow_mut() = Some(outcome.clone());
        }
        let config = self.syncer.config();
        let now = self.env.now_ms();
        self.metrics.after_flush(&outcome, now, || self.drift(), self.device_id(), &config).await;
        Ok(outcome)
    }

    /// The network is back: cut the backoff short, so the flush the host starts next (the
    /// reconnect trigger) sends at once. Whether a backoff was cut.
    pub async fn network_restored(&self) -> Result<bool, AppError> {
        Ok(self.syncer.network_restored().await?)
    }

    /// The timer trigger, run once by the host for the app's lifetime: sleeps for the
    /// schedule's period (or until the syncer's retry is due) and flushes through `flush` —
    /// the host's way to flush, e.g. under a lock it shares with other workers — unless a
    /// flush is running. Returns only if `flush` says stop (`false`).
    pub async fn run_timer<F, Fut>(&self, flush: F)
    where
        F: Fn() -> Fut,
        Fut: Future<Output = bool>,
    {
        loop {
            let sleep =
                self.schedule.timer_sleep_ms(self.env.now_ms(), self.last_flush.borrow().as_ref());
            self.clock.sleep(sleep).await;
            if !self.syncer.is_running() && !flush().await {
                return;
            }
        }
    }

    /// What the drift exports did so far (they never fail a flush; this is where they show).
    pub fn metrics_export_stats(&self) -> MetricsExportStats {
        self.metrics.stats()
    }

    /// Score statistics of each kept model version, most recently scored first ([`drift`]).
    pub fn drift(&self) -> Vec<edge_wire::drift::DriftSnapshot> {
        self.drift.snapshots(self.env.now_ms())
    }

    /// Moves every dead-lettered batch back to the queue; the number of records.
    pub async fn redrive_all(&self) -> Result<u64, AppError> {
        Ok(self.syncer.redrive_all().await?)
    }

    /// Points the syncer at another collector, with an optional bearer token, and stores both
    /// so a restarted host keeps them. A flush in progress finishes its request first.
    pub async fn configure(&self, endpoint: String, token: Option<String>) -> Result<(), AppError> {
        let send_readings = self.settings.borrow().send_readings;
        let settings =
            SyncSettings { endpoint, token: token.filter(|t| !t.is_empty()), send_readings };
        self.syncer.reconfigure(sync_config(&settings, &self.app_version)).await?;
        self.store().set_sync_settings(&settings).await?;
        *self.settings.borrow_mut() = settings;
        Ok(())
    }

    /// Whether readings scored from now on carry their values to the collector (for its
    /// retraining export), stored so a restarted host keeps the choice. Records already queued
    /// are sent as they were recorded.
    pub async fn set_send_readings(&self, on: bool) -> Result<(), AppError> {
        let settings = SyncSettings { send_readings: on, ..self.settings.borrow().clone() };
        self.store().set_sync_settings(&settings).await?;
        *self.settings.borrow_mut() = settings;
        Ok(())
    }

    /// Verifies a signed model package (`files` by name, `bundle` = `model.sig`) and, only if
    /// every check passes, makes it the active model ([`Models::install_package`]). `kind` is
    /// `"update"`, `"rollback"` or `"restore"`.
    pub fn install_package(
        &self,
        files: &ModelFiles,
        bundle: &[u8],
        kind: &str,
    ) -> Result<ModelInfo, AppError> {
        let kind = match kind {
            "update" => InstallKind::Update,
            "rollback" => InstallKind::Rollback,
            "restore" => InstallKind::Restore,
            other => return Err(AppError::BadKind(other.to_owned())),
        };
        let keys = trusted_keys()?;
        let mut models = self.models.borrow_mut();
        let result = models.install_package(bundle, files, &keys, kind, self.env.now_ms() as f64);
        self.syncer.set_model_telemetry(models.telemetry());
        let info = result?;
        // Verified above: the signed metadata names this version.
        if let Some(meta) = files.get("metadata.json").and_then(|m| ModelMetadata::parse(m).ok()) {
            let reference = DriftKeeper::reference_of(&meta);
            self.drift.set_reference(&info.version, reference, self.env.now_ms());
        }
        Ok(info)
    }

    /// Whether the update channel should download release `version`: newer than the active
    /// model, not refused since the host started, and runnable by this host (`min_app_version`
    /// ≤ its version). An older release is logged as refused, once.
    pub fn consider_release(&self, version: &str, min_app_version: &str) -> bool {
        let runnable = match (Version::parse(min_app_version), Version::parse(&self.app_version)) {
            (Ok(min), Ok(app)) => min.cmp_release(&app) != std::cmp::Ordering::Greater,
            _ => false,
        };
        let mut models = self.models.borrow_mut();
        let wanted = runnable && models.consider(version, self.env.now_ms() as f64);
        self.syncer.set_model_telemetry(models.telemetry());
        wanted
    }

    /// Goes back to the previous model, logging `reason` under `code`; whether there was one.
    pub fn roll_back(&self, reason: &str, code: &str) -> bool {
        let mut models = self.models.borrow_mut();
        let rolled_back = models.roll_back(reason, code, self.env.now_ms() as f64);
        self.syncer.set_model_telemetry(models.telemetry());
        rolled_back
    }

    /// The active model's version, if any.
    pub fn model_version(&self) -> Option<String> {
        self.models.borrow().version()
    }

    /// Scores above this are anomalies (the active model's).
    pub fn threshold(&self) -> f32 {
        self.models.borrow().threshold()
    }

    /// Scores through `scorer` (shown as `name` in the status) instead of the active model's
    /// engine, or through the engine again with `None`. The model state — version, threshold,
    /// the watch — stays the active model's: the stand-in must hold the same model.
    pub fn set_scorer(&self, scorer: Option<(Rc<dyn Scorer>, &'static str)>) {
        *self.scorer.borrow_mut() = scorer;
    }

    /// Outbox counts, dead letters, model and sync state.
    pub async fn status(&self) -> Result<AppStatus, AppError> {
        let store = self.store();
        let outbox = store.stats().await?;
        let dead_letters = store.dead_letters().await?;
        let models = self.models.borrow();
        let slot = models.slot();
        let host = self.scorer.borrow();
        let engine = slot.engine().ok();
        Ok(AppStatus {
            device_id: self.device_id().to_owned(),
            app_version: self.app_version.clone(),
            model_loaded: engine.is_some(),
            model_version: models.version(),
            model: models.active(),
            previous_model: models.previous(),
            model_events: models.events(),
            features: engine.map(|e| e.features()),
            engine_backend: match host.as_ref() {
                Some((_, name)) => Some(name),
                None => engine.map(|e| e.backend().name()),
            },
            threshold: models.threshold(),
            endpoint: self.syncer.config().endpoint,
            send_readings: self.settings.borrow().send_readings,
            dropped: self.dropped.merged(&outbox.dropped),
            outbox,
            dead_letters,
            flushing: self.syncer.is_running(),
            last_flush: self.last_flush(),
            metrics_export: self.metrics.stats(),
            drift: models
                .version()
                .and_then(|v| self.drift.snapshot(&v, self.env.now_ms()))
                .map(DriftView::from),
        })
    }
}
