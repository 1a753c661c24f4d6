//! [`Ingest`]: one reading in, whatever its source: scored and recorded by the app core, an
//! alert for an anomaly, a background flush when the schedule asks for one.

use std::rc::Rc;

use edge_anomaly::app::{AppError, ScoreReply};
use edge_anomaly::engine::Contributions;
use edge_anomaly::outbox::TOP_CHANNELS;
use serde::Serialize;
use tracing::{debug, warn};

use crate::payload::{PayloadError, Reading};
use crate::GatewayApp;

/// An anomaly, as published on `{alerts_topic}/{sensor}`.
#[derive(Debug, Clone, Serialize)]
pub struct Alert {
    /// The sensor (the last level of the topic the reading came on, or `replay`).
    pub sensor: String,
    /// The sender's reading id, when it gave one.
    pub reading_id: Option<String>,
    /// The anomaly score.
    pub score: f32,
    /// The model's threshold it crossed.
    pub threshold: f32,
    /// The model that scored it.
    pub model_version: Option<String>,
    /// When it was scored (ms since the epoch).
    pub at_ms: u64,
    /// The channels (the model's input names) the score is most about, largest share first;
    /// absent where the model's score cannot be broken down, or under the sandbox.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contributions: Option<Contributions>,
}

/// Where alerts go.
pub trait AlertSink {
    /// Publishes `alert` (best effort: the reading is recorded whatever happens here).
    fn alert(&self, alert: &Alert);
}

/// What became of one message.
#[derive(Debug, PartialEq)]
pub enum Ingested {
    /// Recorded (scored or raw); `true` when it was flagged.
    Recorded(bool),
    /// Not a reading (counted under the code); acknowledging it is right, it never will be.
    Refused(&'static str),
    /// The store failed: not recorded; the sender should deliver it again.
    Failed(String),
}

/// The gateway's reading path.
pub struct Ingest<A> {
    app: Rc<GatewayApp>,
    alerts: A,
}

impl<A: AlertSink> Ingest<A> {
    /// Readings into `app`, alerts to `alerts`.
    pub fn new(app: Rc<GatewayApp>, alerts: A) -> Self {
        Ingest { app, alerts }
    }

    /// The app.
    pub fn app(&self) -> &Rc<GatewayApp> {
        &self.app
    }

    /// A payload from `sensor`, parsed first.
    pub async fn payload(&self, sensor: &str, parsed: Result<Reading, PayloadError>) -> Ingested {
        match parsed {
            Ok(reading) => self.reading(sensor, reading).await,
            Err(e) => {
                warn!(sensor, code = e.code(), "refused payload: {e}");
                self.app.count_dropped(e.code(), 1).await;
                Ingested::Refused(e.code())
            }
        }
    }

    /// One parsed reading from `sensor`.
    pub async fn reading(&self, sensor: &str, reading: Reading) -> Ingested {
        // Ids are per sensor: two sensors may both send reading 17.
        let id = reading.id.as_ref().map(|id| format!("{sensor}:{id}"));
        let features = reading.values.len();
        match self.app.score(&reading.values, features, id.clone().map(|id| vec![id])).await {
            Ok(reply) => {
                let flagged = self.after(sensor, reading.id, &reply);
                Ingested::Recorded(flagged)
            }
            Err(e @ (AppError::Engine(_) | AppError::BadIds { .. })) => {
                warn!(sensor, code = e.code(), "refused reading: {e}");
                Ingested::Refused(e.code())
            }
            Err(e) => {
                warn!(sensor, code = e.code(), "reading not recorded: {e}");
                Ingested::Failed(e.to_string())
            }
        }
    }

    fn after(&self, sensor: &str, reading_id: Option<String>, reply: &ScoreReply) -> bool {
        if reply.flush_due {
            flush_in_background(&self.app, "write");
        }
        if let Some(reason) = &reply.rolled_back {
            warn!(reason = reason.as_str(), "the watch rolled the new model back");
        }
        let flagged = reply.anomalies.first().copied().unwrap_or(false);
        match reply.scores.first().copied().flatten() {
            Some(score) if flagged => {
                let alert = Alert {
                    sensor: sensor.to_owned(),
                    reading_id,
                    score,
                    threshold: self.app.threshold(),
                    model_version: self.app.model_version(),
                    at_ms: edge_anomaly::outbox::Env::now_ms(&crate::env::SystemEnv),
                    contributions: reply
                        .contributions
                        .first()
                        .cloned()
                        .flatten()
                        .map(|c| c.top(TOP_CHANNELS)),
                };
                let top = alert.contributions.as_ref().and_then(|c| c.channels.first());
                let channel = top.map(|c| c.channel.as_str());
                warn!(sensor, score, threshold = alert.threshold, channel, "anomaly");
                self.alerts.alert(&alert);
            }
            Some(score) => debug!(sensor, score, "scored"),
            None => debug!(sensor, reason = ?reply.reasons.first(), "recorded unscored"),
        }
        if let Some(code) = reply.not_recorded {
            warn!(sensor, code, "storage full: scored but not recorded");
        }
        flagged
    }
}

/// Starts a flush beside the reading path; its outcome is logged.
pub fn flush_in_background(app: &Rc<GatewayApp>, trigger: &'static str) {
    let app = Rc::clone(app);
    tokio::task::spawn_local(async move { crate::flush_logged(&app, trigger).await });
}
