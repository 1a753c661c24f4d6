//! What one ingest adds to a device's summary (the `devices` row), gathered in memory while a
//! batch's records go in, so each store writes one row per device per batch. Both stores use it
//! (`store::summary`, `pg::summary`), so their summaries cannot count differently.

use edge_wire::attr;
use serde_json::{Map, Value as Json};

use crate::otlp::Record;

/// One device's changes from one batch; the fields mirror the `devices` columns.
#[derive(Debug, Default)]
pub struct DeviceDelta {
    /// Records stored.
    pub count: i64,
    /// Seqs this batch stored that the device did not hold yet (the store counts them: the
    /// record alone does not tell).
    pub distinct_seqs: i64,
    /// Smallest seq stored.
    pub min_seq: Option<i64>,
    /// Largest seq stored.
    pub max_seq: Option<i64>,
    /// The seq of the last record stored, in batch order (`None` if it had none).
    pub last_seq: Option<i64>,
    /// Records stored that the device flagged.
    pub anomalies: i64,
    /// Sum of the scores stored.
    pub score_sum: f64,
    /// Records stored with a score.
    pub score_count: i64,
    /// Records stored unscored.
    pub unscored: i64,
    /// The model version of the last stored record that named one.
    pub model_version: Option<String>,
    /// Records skipped as duplicates.
    pub duplicates: i64,
    /// Records refused as conflicts.
    pub conflicts: i64,
    /// The largest loss counters the batch's resources report (`None`: none reported).
    pub losses: Option<(i64, i64)>,
}

impl DeviceDelta {
    /// Counts a newly stored record.
    pub fn stored(&mut self, r: &Record) {
        self.count += 1;
        if let Some(seq) = r.seq {
            self.min_seq = Some(self.min_seq.map_or(seq, |m| m.min(seq)));
            self.max_seq = Some(self.max_seq.map_or(seq, |m| m.max(seq)));
        }
        self.last_seq = r.seq;
        self.anomalies += i64::from(r.anomaly == Some(true));
        if let Some(score) = r.score {
            self.score_sum += score;
            self.score_count += 1;
        }
        self.unscored += i64::from(!r.scored);
        if r.model_version.is_some() {
            self.model_version.clone_from(&r.model_version);
        }
    }

    /// Counts a record skipped as a duplicate.
    pub fn duplicate(&mut self) {
        self.duplicates += 1;
    }

    /// Counts a record refused as a conflict.
    pub fn conflict(&mut self) {
        self.conflicts += 1;
    }

    /// Keeps the loss counters of one of the batch's resources (see `store::ingest`).
    pub fn losses(&mut self, resource: &Map<String, Json>) {
        let count = |key: &str| resource.get(key).and_then(Json::as_i64).unwrap_or(0).max(0);
        let evicted =
            count(attr::EVICTED_TOTAL).saturating_add(count(attr::DEAD_LETTER_EVICTED_TOTAL));
        let dropped = resource
            .iter()
            .filter(|(key, _)| key.starts_with(attr::DROPPED_PREFIX))
            .map(|(_, v)| v.as_i64().unwrap_or(0).max(0))
            .fold(0i64, i64::saturating_add);
        if evicted == 0 && dropped == 0 {
            return;
        }
        let (e, d) = self.losses.unwrap_or((0, 0));
        self.losses = Some((e.max(evicted), d.max(dropped)));
    }
}
