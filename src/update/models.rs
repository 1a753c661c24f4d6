//! [`Models`]: a host's model state (the service worker's, the gateway's): which verified model scores, the one before it (kept for
//! rollback), the watch over a newly activated model, and the log of refusals and rollbacks the
//! dashboard shows.
//!
//! Every model comes in as a signed package and goes through [`crate::update::verify_package`]
//! before it can be installed; the swap itself is one assignment between two scoring calls (the
//! host holds the models behind one `&mut`), so no reading is ever scored by a half-loaded
//! model.

use std::collections::{BTreeSet, VecDeque};

use serde::Serialize;

use super::{
    check_upgrade, verify_package, ModelFiles, ModelMetadata, TrustedKeys, UpdateError, Verdict,
    Watch, WatchConfig,
};
use crate::engine::{ChannelMap, Engine, EngineConfig, ModelSlot};

/// The reason code of a reading left unscored for its own values (NaN or ±Inf in the input):
/// says nothing about the model, so the watch skips it.
const NON_FINITE: &str = "NON_FINITE";

/// One reading's outcome as the watch sees it: the score (or `None`), the reason it is
/// unscored (an engine error code), and the anomaly flag.
pub type Outcome<'a> = (Option<f32>, Option<&'a str>, bool);

/// Most model events kept for the dashboard.
const EVENTS_KEPT: usize = 20;

/// What a verified model is: the part that stays here while its engine sits in the slot.
#[derive(Debug, Clone)]
struct Meta {
    version: String,
    threshold: f32,
    /// The model's columns as named channels, for the contributions of flagged readings.
    channels: ChannelMap,
    expected_rate: f64,
    subject_sha256: String,
}

impl Meta {
    fn info(&self) -> ModelInfo {
        ModelInfo { version: self.version.clone(), subject_sha256: self.subject_sha256.clone() }
    }
}

/// A model the app can score with, and what it is.
#[derive(Debug)]
struct Active {
    engine: Engine,
    meta: Meta,
}

/// What the dashboard shows of a model.
#[derive(Debug, Clone, Serialize)]
pub struct ModelInfo {
    /// Its release version.
    pub version: String,
    /// The signature's subject digest (hex).
    pub subject_sha256: String,
}

/// Why a package is being installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstallKind {
    /// A release offered by the update channel: it must be newer than the active model.
    Update,
    /// A release asked for by the user to go back to: any version.
    Rollback,
    /// The host restoring what it had active before it restarted (read back from its own
    /// storage, verified again): any version, not logged as a change.
    Restore,
}

/// One refusal, activation or rollback, newest last.
#[derive(Debug, Clone, Serialize)]
pub struct ModelEvent {
    /// `"activated"`, `"refused"`, `"rolled_back"` or `"restored"`.
    pub kind: &'static str,
    /// The version concerned, when known.
    pub version: Option<String>,
    /// A stable code (`MODEL_SIGNATURE`, `ROLLBACK_WATCH`, …), with the detail after a colon.
    pub code: String,
    /// Why, in words.
    pub reason: String,
    /// When (ms since the epoch).
    pub at_ms: f64,
}

/// The models of one worker.
#[derive(Debug, Default)]
pub struct Models {
    slot: ModelSlot,
    active: Option<Meta>,
    previous: Option<Active>,
    watch: Option<Watch>,
    events: VecDeque<ModelEvent>,
    /// Versions refused (or rolled back from) since the host started: not offered again by
    /// the update channel, which would only download and refuse them again.
    refused: BTreeSet<String>,
    /// Events counted by kind since the host started (the log keeps only the latest).
    activations: u64,
    refusals: u64,
    rollbacks: u64,
}

impl Models {
    /// The slot scoring goes through.
    pub fn slot(&self) -> &ModelSlot {
        &self.slot
    }

    /// The active model's version and threshold.
    pub fn version(&self) -> Option<String> {
        self.active.as_ref().map(|a| a.version.clone())
    }

    /// The active model's channels (`None` with no model).
    pub fn channels(&self) -> Option<&ChannelMap> {
        self.active.as_ref().map(|a| &a.channels)
    }

    /// The active threshold (∞ with no model: nothing is flagged).
    pub fn threshold(&self) -> f32 {
        self.active.as_ref().map_or(f32::INFINITY, |a| a.threshold)
    }

    /// The active model.
    pub fn active(&self) -> Option<ModelInfo> {
        self.active.as_ref().map(Meta::info)
    }

    /// The model kept for rollback.
    pub fn previous(&self) -> Option<ModelInfo> {
        self.previous.as_ref().map(|p| p.meta.info())
    }

    /// Whether the update channel should download release `offered`: newer than the active
    /// model, not refused before, parseable. A release it will not take (older than the active
    /// model, or unparseable) is logged as refused, once; the active release itself is not.
    pub fn consider(&mut self, offered: &str, now_ms: f64) -> bool {
        if self.refused.contains(offered) || self.version().as_deref() == Some(offered) {
            return false;
        }
        match check_upgrade(self.version().as_deref(), offered, false) {
            Ok(()) => true,
            Err(UpdateError::NotNewer { .. }) if self.is_same_release(offered) => false,
            Err(e) => {
                self.refused.insert(offered.to_owned());
                self.log("refused", Some(offered.to_owned()), code_of(&e), e.to_string(), now_ms);
                false
            }
        }
    }

    /// Another build of the active release (same `MAJOR.MINOR.PATCH`): not a downgrade.
    fn is_same_release(&self, offered: &str) -> bool {
        let (Some(active), Ok(offered)) = (self.version(), super::Version::parse(offered)) else {
            return false;
        };
        super::Version::parse(&active)
            .is_ok_and(|a| a.cmp_release(&offered) == std::cmp::Ordering::Equal)
    }

    /// What the host's telemetry says of its models.
    pub fn telemetry(&self) -> crate::outbox::otlp::ModelTelemetry {
        crate::outbox::otlp::ModelTelemetry {
            active: self.version(),
            activations: self.activations,
            refusals: self.refusals,
            rollbacks: self.rollbacks,
            last_event: self
                .events
                .back()
                .map(|e| format!("{} {} {}", e.kind, e.code, e.version.as_deref().unwrap_or("-"))),
        }
    }

    /// Refusals, activations and rollbacks, oldest first.
    pub fn events(&self) -> Vec<ModelEvent> {
        self.events.iter().cloned().collect()
    }

    /// Verifies the package (signature, digests, metadata, contract, caps, golden rows) and,
    /// only if every check passes, makes it the active model; the one it replaces is kept for
    /// rollback. A release not newer than the active one is refused unless it is a rollback or
    /// a restore ([`InstallKind`]). A refusal is logged and leaves the active model scoring.
    pub fn install_package(
        &mut self,
        bundle: &[u8],
        files: &ModelFiles,
        keys: &TrustedKeys,
        kind: InstallKind,
        now_ms: f64,
    ) -> Result<ModelInfo, UpdateError> {
        let result = self.verify_and_install(bundle, files, keys, kind, now_ms);
        if let Err(e) = &result {
            let offered = files
                .get("metadata.json")
                .and_then(|m| ModelMetadata::parse(m).ok())
                .map(|m| m.version);
            // A stored copy that no longer verifies says nothing of the release itself: the
            // channel fetches it again.
            if let (Some(version), InstallKind::Update) = (&offered, kind) {
                self.refused.insert(version.clone());
            }
            self.log("refused", offered, code_of(e), e.to_string(), now_ms);
        }
        result
    }

    fn verify_and_install(
        &mut self,
        bundle: &[u8],
        files: &ModelFiles,
        keys: &TrustedKeys,
        kind: InstallKind,
        now_ms: f64,
    ) -> Result<ModelInfo, UpdateError> {
        let model = verify_package(bundle, files, keys, EngineConfig::default())?;
        let any_version = kind != InstallKind::Update;
        check_upgrade(self.version().as_deref(), &model.metadata.version, any_version)?;
        let stats = model.metadata.normalization.as_ref().map(|n| (&n.mean[..], &n.std[..]));
        let meta = Meta {
            channels: ChannelMap::new(&model.metadata.features, stats),
            expected_rate: model.metadata.expected_rate(),
            version: model.metadata.version,
            threshold: model.metadata.threshold,
            subject_sha256: model.subject_sha256,
        };
        let info = meta.info();
        let incoming = Active { engine: model.engine, meta };
        let replaced = self.swap_in(incoming);
        // A first model (the bundled one at start) has nothing to roll back to: not watched.
        self.watch =
            replaced.as_ref().map(|_| Watch::new(WatchConfig::default(), self.expected_rate()));
        if let Some(old) = replaced {
            self.previous = Some(old);
        }
        let (event, code) = match kind {
            InstallKind::Update => ("activated", "ACTIVATED"),
            InstallKind::Rollback => ("rolled_back", "ROLLBACK_MANUAL"),
            InstallKind::Restore => ("restored", "RESTORED"),
        };
        self.log(event, Some(info.version.clone()), code.into(), "verified".into(), now_ms);
        Ok(info)
    }

    /// Goes back to the model kept for rollback (the dashboard's button). `false` when there is
    /// none.
    pub fn roll_back(&mut self, reason: &str, code: &str, now_ms: f64) -> bool {
        let Some(previous) = self.previous.take() else { return false };
        let version = previous.meta.version.clone();
        if let Some(from) = self.version() {
            self.refused.insert(from);
        }
        // The model rolled back from is dropped: it is not offered again by a rollback.
        self.swap_in(previous);
        self.watch = None;
        self.log("rolled_back", Some(version), code.into(), reason.into(), now_ms);
        true
    }

    /// Feeds a scored request's outcomes to the watch of a newly activated model; rolls back
    /// when it says so. Returns the rollback reason, if any.
    pub fn observe(&mut self, outcomes: &[Outcome<'_>], now_ms: f64) -> Option<String> {
        let watch = self.watch.as_mut()?;
        for &(score, reason, anomaly) in outcomes {
            let outcome = match (score, reason) {
                (_, Some(NON_FINITE)) => continue,
                (Some(score), _) => Ok((score, anomaly)),
                (None, Some(code)) => Err(code),
                (None, None) => continue,
            };
            if let Verdict::RollBack(reason) = watch.observe(outcome) {
                let from = self.version().unwrap_or_default();
                let why = format!("{from}: {reason}");
                self.roll_back(&why, "ROLLBACK_WATCH", now_ms);
                return Some(why);
            }
            if watch.done() {
                self.watch = None;
                return None;
            }
        }
        None
    }

    fn expected_rate(&self) -> f64 {
        self.active.as_ref().map_or(0.01, |a| a.expected_rate)
    }

    /// Makes `incoming` active; returns the model it replaced.
    fn swap_in(&mut self, incoming: Active) -> Option<Active> {
        let old_engine = self.slot.install(incoming.engine);
        let old_meta = self.active.replace(incoming.meta);
        Some(Active { engine: old_engine?, meta: old_meta? })
    }

    fn log(
        &mut self,
        kind: &'static str,
        version: Option<String>,
        code: String,
        reason: String,
        at_ms: f64,
    ) {
        match kind {
            "activated" => self.activations += 1,
            "refused" => self.refusals += 1,
            "rolled_back" => self.rollbacks += 1,
            _ => {}
        }
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back(ModelEvent { kind, version, code, reason, at_ms });
    }
}

/// `CODE` or `CODE:DETAIL` (the signing or engine error underneath).
fn code_of(e: &UpdateError) -> String {
    match (e.code(), e.detail_code()) {
        (code, detail) if code == detail => code.to_owned(),
        (code, detail) => format!("{code}:{detail}"),
    }
}
