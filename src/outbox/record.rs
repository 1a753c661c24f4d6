//! What the outbox holds: one [`Record`] per reading the worker handled.
//!
//! A record is either scored on the device (score, anomaly flag, latency, and the reading too
//! when the device is set to send readings, so the collector can export them for retraining)
//! or, when the engine could not score it (no model yet, or the model failed), carries the raw
//! reading so the cloud can score it instead. Records are identified by a per-device sequence number; together with
//! the device id it forms the globally unique id `"{device}:{seq}"` that the collector can
//! dedupe on. The store hands out the seq in the same transaction that stores the record
//! ([`super::OutboxStore::append_entries`]), so seqs survive restarts and have no gaps: a gap at
//! the collector is a lost reading.
//!
//! Floats are stored with the wire's encoding ([`edge_wire::double`]): a NaN or infinite score or
//! reading value round-trips instead of becoming an unreadable `null`.

use serde::{Deserialize, Serialize};

use crate::engine::Contributions;

/// A record's sequence number: unique and increasing within one device (one store).
///
/// Seqs start at 0, are never reused and have no gaps: each is assigned in the transaction that
/// stores its record.
pub type Seq = u64;

/// What the caller hands the [`super::Recorder`]: a reading's outcome, before it gets a [`Seq`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// When the reading was taken, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Version of the model that scored (or failed to score) it; `None` when no model was loaded.
    pub model_version: Option<String>,
    /// Inference time in microseconds (0 when nothing ran).
    pub latency_us: u64,
    /// The score, or why there is none.
    pub result: Scoring,
    /// An id the page gave the reading, so a reading sent again (its first reply was lost) is
    /// recognised and not recorded twice. Kept by the store only; never sent on the wire.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reading_id: Option<String>,
}

/// The engine's verdict on one reading.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Scoring {
    /// Scored on the device.
    Scored {
        /// Anomaly score as the model produced it (NaN and infinities included).
        #[serde(with = "edge_wire::double::f32_serde")]
        score: f32,
        /// Whether the score crossed the anomaly threshold.
        anomaly: bool,
        /// The reading's feature values, kept only when the device sends readings with scores
        /// (NaN never: only finite readings are scored). Absent in records stored before.
        #[serde(
            default,
            skip_serializing_if = "Option::is_none",
            with = "edge_wire::double::opt_vec_f32_serde"
        )]
        reading: Option<Vec<f32>>,
        /// For a flagged reading, the channels its score is most about (the largest few,
        /// [`TOP_CHANNELS`]). Absent for normal readings, for models whose score cannot be
        /// broken down, and in records stored before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        contributions: Option<Contributions>,
    },
    /// Not scored on the device: the raw reading goes to the cloud for scoring.
    Unscored {
        /// The reading's feature values, as received (NaN and infinities included).
        #[serde(with = "edge_wire::double::vec_f32_serde")]
        reading: Vec<f32>,
        /// A stable machine-readable reason code, e.g. [`crate::EngineError::code`]
        /// (`"NOT_LOADED"`, `"INFERENCE"`).
        reason: String,
    },
}

/// Channels a flagged record keeps (and sends): enough to name the sensor, small on the wire.
pub const TOP_CHANNELS: usize = 3;

/// One entry in the outbox: an [`Entry`] with its sequence number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Per-device sequence number; the store's key.
    pub seq: Seq,
    /// When the reading was taken, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Version of the model that scored (or failed to score) it; `None` when no model was loaded.
    pub model_version: Option<String>,
    /// Inference time in microseconds (0 when nothing ran).
    pub latency_us: u64,
    /// The score, or why there is none.
    pub result: Scoring,
}

impl Record {
    /// Gives `entry` its sequence number (its reading id stays with the store).
    pub fn new(seq: Seq, entry: Entry) -> Record {
        let Entry { timestamp_ms, model_version, latency_us, result, reading_id: _ } = entry;
        Record { seq, timestamp_ms, model_version, latency_us, result }
    }

    /// The globally unique id, `"{device_id}:{seq}"`, sent as `edge.record_id`.
    pub fn id(&self, device_id: &str) -> String {
        format!("{device_id}:{}", self.seq)
    }

    /// Whether the record was scored on the device.
    pub fn is_scored(&self) -> bool {
        matches!(self.result, Scoring::Scored { .. })
    }

    /// Whether the device flagged the reading as an anomaly (false when unscored).
    pub fn is_anomaly(&self) -> bool {
        matches!(self.result, Scoring::Scored { anomaly: true, .. })
    }
}

impl Entry {
    /// A reading the device scored.
    pub fn scored(
        timestamp_ms: u64,
        model_version: impl Into<String>,
        score: f32,
        anomaly: bool,
        latency_us: u64,
    ) -> Entry {
        Entry {
            timestamp_ms,
            model_version: Some(model_version.into()),
            latency_us,
            result: Scoring::Scored { score, anomaly, reading: None, contributions: None },
            reading_id: None,
        }
    }

    /// A reading the device could not score; `reason` is a stable code such as
    /// [`crate::EngineError::code`].
    pub fn unscored(
        timestamp_ms: u64,
        model_version: Option<String>,
        reading: Vec<f32>,
        reason: impl Into<String>,
    ) -> Entry {
        Entry {
            timestamp_ms,
            model_version,
            latency_us: 0,
            result: Scoring::Unscored { reading, reason: reason.into() },
            reading_id: None,
        }
    }

    /// The same entry carrying `values`, the reading it scored (an unscored entry carries its
    /// reading already and is returned as it is).
    pub fn with_reading(mut self, values: &[f32]) -> Entry {
        if let Scoring::Scored { reading, .. } = &mut self.result {
            *reading = Some(values.to_vec());
        }
        self
    }

    /// The same entry carrying the [`TOP_CHANNELS`] largest of `contributions` (an unscored
    /// entry is returned as it is).
    pub fn with_contributions(mut self, contributions: Contributions) -> Entry {
        if let Scoring::Scored { contributions: slot, .. } = &mut self.result {
            *slot = Some(contributions.top(TOP_CHANNELS));
        }
        self
    }

    /// The same entry under the page-assigned reading id `id`.
    pub fn with_reading_id(mut self, id: impl Into<String>) -> Entry {
        self.reading_id = Some(id.into());
        self
    }
}
