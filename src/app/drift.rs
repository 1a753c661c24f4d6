//! Score drift measured on the device: per model version, cumulative statistics of the finite
//! scores it produced, compared with the score distribution its training saw.
//!
//! A model package's `metadata.json` carries `score_quantiles`, quantiles of held-out normal
//! scores (`models/edge_pipeline/distribution.py`). Their scores are the edges of the bins the
//! device counts its own scores in (bin `i`: `<= edge[i]` and `> edge[i - 1]`, the last bin above
//! every edge), and the differences of their levels are each bin's expected share. The population
//! stability index (PSI) compares observed and expected shares; `0` is the same distribution and
//! above `0.25` conventionally a significant shift. Quantiles of the observed scores come from a
//! DDSketch (`sketches-ddsketch`: values within [`SKETCH_ALPHA`] relative error, bounded bins,
//! no dependencies; its binary encoding is checked on decode, so a damaged blob is refused, not
//! trusted).
//!
//! A version without quantiles in its metadata is still counted (readings, anomalies, sum,
//! sketch) with a single bin; its PSI is then 0 and means nothing, which the empty `bounds`
//! tell. At most [`VERSIONS_KEPT`] versions are kept, the least recently scored one goes first.
//!
//! [`DriftState`] serializes to JSON; the app keeps it in the outbox store
//! ([`crate::outbox::OutboxStore::app_value`] under [`STATE_KEY`]) so a restarted service worker
//! continues the totals.

use std::collections::BTreeMap;

use edge_wire::drift::DriftSnapshot;
use serde::{Deserialize, Serialize};
use sketches_ddsketch::{Config, DDSketch};

/// The store key of the persisted state.
pub const STATE_KEY: &str = "drift";

/// Most model versions kept.
pub const VERSIONS_KEPT: usize = 4;

/// Observed share used in place of 0 for an empty bin, so the PSI stays finite.
pub const PSI_EPSILON: f64 = 1e-4;

/// The sketch's relative accuracy on quantile values.
pub const SKETCH_ALPHA: f64 = 0.01;

/// Quantile levels reported from the sketch.
pub const REPORTED_QUANTILES: [f64; 9] = [0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.99, 0.999];

/// The anomaly rate assumed when metadata states none (the pipeline's 0.99 threshold).
const DEFAULT_EXPECTED_RATE: f64 = 0.01;

/// Why drift state or a reference could not be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DriftError {
    /// The metadata's `score_quantiles` cannot be bin edges (levels outside `(0, 1)` or not
    /// ascending, scores not finite or not strictly ascending).
    #[error("score_quantiles: {0}")]
    BadQuantiles(String),
    /// The metadata's `expected_anomaly_rate` is not in `[0, 1]`.
    #[error("expected_anomaly_rate {0} is not in [0, 1]")]
    BadRate(f64),
    /// The persisted state does not decode or is inconsistent.
    #[error("stored drift state is corrupt: {0}")]
    Corrupt(String),
}

impl DriftError {
    /// A stable code.
    pub fn code(&self) -> &'static str {
        match self {
            DriftError::BadQuantiles(_) => "DRIFT_BAD_QUANTILES",
            DriftError::BadRate(_) => "DRIFT_BAD_RATE",
            DriftError::Corrupt(_) => "DRIFT_CORRUPT",
        }
    }
}

/// What a version's scores are compared with: bin edges, expected share per bin, expected
/// anomaly rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reference {
    /// Bin edges, strictly ascending (empty: no training distribution known).
    pub bounds: Vec<f64>,
    /// Expected share per bin, `bounds.len() + 1` entries summing to 1.
    pub expected_shares: Vec<f64>,
    /// Share of normal scores above the threshold.
    pub expected_anomaly_rate: f64,
}

impl Reference {
    /// The reference of a model whose metadata states `quantiles` (`(q, score)`, ascending) and
    /// `rate`; either may be absent.
    pub fn new(quantiles: Option<&[(f64, f64)]>, rate: Option<f64>) -> Result<Self, DriftError> {
        let rate = rate.unwrap_or(DEFAULT_EXPECTED_RATE);
        if !(0.0..=1.0).contains(&rate) {
            return Err(DriftError::BadRate(rate));
        }
        let pairs = quantiles.unwrap_or_default();
        let bad = |why: &str| Err(DriftError::BadQuantiles(why.to_owned()));
        if pairs.iter().any(|&(q, s)| !(q > 0.0 && q < 1.0 && s.is_finite())) {
            return bad("a level outside (0, 1) or a score that is not finite");
        }
        if pairs.windows(2).any(|w| w[0].0 >= w[1].0 || w[0].1 >= w[1].1) {
            return bad("levels and scores must be strictly ascending");
        }
        let mut expected_shares = Vec::with_capacity(pairs.len() + 1);
        let mut below = 0.0;
        for &(q, _) in pairs {
            expected_shares.push(q - below);
            below = q;
        }
        expected_shares.push(1.0 - below);
        let bounds = pairs.iter().map(|&(_, s)| s).collect();
        Ok(Reference { bounds, expected_shares, expected_anomaly_rate: rate })
    }

    /// No training distribution: one bin, the default expected rate.
    pub fn unbinned() -> Self {
        Reference {
            bounds: Vec::new(),
            expected_shares: vec![1.0],
            expected_anomaly_rate: DEFAULT_EXPECTED_RATE,
        }
    }

    /// The bin `score` falls in.
    fn bin(&self, score: f64) -> usize {
        self.bounds.partition_point(|&b| b < score)
    }
}

/// Population stability index of `counts` against `expected` shares (same length), empty
/// observed or expected bins taken as [`PSI_EPSILON`]; 0 when nothing was counted.
pub fn psi(counts: &[u64], expected: &[f64]) -> f64 {
    let n: u64 = counts.iter().sum();
    if n == 0 {
        return 0.0;
    }
    counts
        .iter()
        .zip(expected)
        .map(|(&c, &e)| {
            let o = (c as f64 / n as f64).max(PSI_EPSILON);
            let e = e.max(PSI_EPSILON);
            (o - e) * (o / e).ln()
        })
        .sum::<f64>()
        .max(0.0)
}

/// One version's cumulative statistics.
#[derive(Clone, Serialize, Deserialize)]
struct VersionStats {
    reference: Reference,
    /// First scored reading (or registration, until one is scored), ms since the epoch.
    start_ms: u64,
    /// Last scored reading or registration, for eviction.
    last_ms: u64,
    count: u64,
    anomalies: u64,
    sum: f64,
    bucket_counts: Vec<u64>,
    /// The DDSketch in its binary encoding.
    #[serde(skip)]
    sketch: Option<DDSketch>,
    sketch_bytes: Vec<u8>,
}

impl VersionStats {
    fn new(reference: Reference, now_ms: u64) -> Self {
        let bins = reference.bounds.len() + 1;
        VersionStats {
            reference,
            start_ms: now_ms,
            last_ms: now_ms,
            count: 0,
            anomalies: 0,
            sum: 0.0,
            bucket_counts: vec![0; bins],
            sketch: Some(new_sketch()),
            sketch_bytes: Vec::new(),
        }
    }

    fn sketch(&mut self) -> &mut DDSketch {
        self.sketch.get_or_insert_with(new_sketch)
    }

    fn check(&mut self) -> Result<(), String> {
        let r = &self.reference;
        if r.expected_shares.len() != r.bounds.len() + 1
            || self.bucket_counts.len() != r.expected_shares.len()
        {
            return Err("bins do not match the bounds".into());
        }
        if self.bucket_counts.iter().sum::<u64>() != self.count || self.anomalies > self.count {
            return Err("counts do not add up".into());
        }
        let sketch = if self.sketch_bytes.is_empty() {
            new_sketch()
        } else {
            DDSketch::from_java_bytes(&self.sketch_bytes).map_err(|e| format!("sketch: {e}"))?
        };
        if sketch.count() as u64 != self.count {
            return Err("sketch count differs".into());
        }
        self.sketch = Some(sketch);
        Ok(())
    }
}

fn new_sketch() -> DDSketch {
    DDSketch::new(Config::new(SKETCH_ALPHA, 2048, 1e-9))
}

/// Every kept version's statistics, by version.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct DriftState {
    versions: BTreeMap<String, VersionStats>,
}

impl DriftState {
    /// Decodes a state [`Self::to_json`] wrote, refusing one that is inconsistent.
    pub fn from_json(text: &str) -> Result<Self, DriftError> {
        let mut state: DriftState =
            serde_json::from_str(text).map_err(|e| DriftError::Corrupt(e.to_string()))?;
        for (version, stats) in &mut state.versions {
            stats.check().map_err(|e| DriftError::Corrupt(format!("{version}: {e}")))?;
        }
        Ok(state)
    }

    /// The state as JSON text.
    pub fn to_json(&mut self) -> Result<String, DriftError> {
        for stats in self.versions.values_mut() {
            stats.sketch_bytes = stats.sketch().to_java_bytes();
        }
        serde_json::to_string(self).map_err(|e| DriftError::Corrupt(e.to_string()))
    }

    /// Sets `version`'s reference (its package was installed). Counts so far are kept when the
    /// bins stay the same, else started afresh (another package under the same version).
    pub fn set_reference(&mut self, version: &str, reference: Reference, now_ms: u64) {
        match self.versions.get_mut(version) {
            Some(stats) if stats.reference == reference => stats.last_ms = now_ms,
            _ => self.insert(version, VersionStats::new(reference, now_ms)),
        }
    }

    /// Counts the finite `scores` (with their anomaly flags) of `version`; NaN and infinite
    /// scores are left out. A version never registered is counted without a reference.
    pub fn observe(&mut self, version: &str, scores: &[(f32, bool)], now_ms: u64) -> u64 {
        let finite: Vec<(f64, bool)> =
            scores.iter().filter(|(s, _)| s.is_finite()).map(|&(s, a)| (f64::from(s), a)).collect();
        if finite.is_empty() {
            return 0;
        }
        if !self.versions.contains_key(version) {
            self.insert(version, VersionStats::new(Reference::unbinned(), now_ms));
        }
        let Some(stats) = self.versions.get_mut(version) else { return 0 };
        if stats.count == 0 {
            stats.start_ms = now_ms;
        }
        stats.last_ms = now_ms;
        for &(score, anomaly) in &finite {
            let bin = stats.reference.bin(score);
            stats.bucket_counts[bin] += 1;
            stats.count += 1;
            stats.anomalies += u64::from(anomaly);
            stats.sum += score;
            stats.sketch().add(score);
        }
        finite.len() as u64
    }

    /// Snapshots of every kept version at `now_ms`, most recently scored first.
    pub fn snapshots(&self, now_ms: u64) -> Vec<DriftSnapshot> {
        let mut kept: Vec<(&String, &VersionStats)> = self.versions.iter().collect();
        kept.sort_by_key(|(_, s)| std::cmp::Reverse(s.last_ms));
        kept.into_iter().map(|(v, s)| snapshot(v, s, now_ms)).collect()
    }

    /// The snapshot of `version`, if kept.
    pub fn snapshot(&self, version: &str, now_ms: u64) -> Option<DriftSnapshot> {
        self.versions.get(version).map(|s| snapshot(version, s, now_ms))
    }

    fn insert(&mut self, version: &str, stats: VersionStats) {
        self.versions.insert(version.to_owned(), stats);
        while self.versions.len() > VERSIONS_KEPT {
            let oldest = self
                .versions
                .iter()
                .filter(|(v, _)| v.as_str() != version)
                .min_by_key(|(_, s)| s.last_ms)
                .map(|(v, _)| v.clone());
            match oldest {
                Some(v) => self.versions.remove(&v),
                None => break,
            };
        }
    }
}

fn snapshot(version: &str, s: &VersionStats, now_ms: u64) -> DriftSnapshot {
    let quantiles = match &s.sketch {
        Some(sketch) if s.count > 0 => REPORTED_QUANTILES
            .iter()
            .filter_map(|&q| sketch.quantile(q).ok().flatten().map(|v| (q, v)))
            .collect(),
        _ => Vec::new(),
    };
    let ns = |ms: u64| ms.saturating_mul(1_000_000);
    DriftSnapshot {
        model_version: version.to_owned(),
        start_time_unix_nano: ns(s.start_ms.min(now_ms)),
        time_unix_nano: ns(now_ms),
        count: s.count,
        anomalies: s.anomalies,
        sum: s.sum,
        bounds: s.reference.bounds.clone(),
        bucket_counts: s.bucket_counts.clone(),
        expected_shares: s.reference.expected_shares.clone(),
        quantiles,
        psi: psi(&s.bucket_counts, &s.reference.expected_shares),
        expected_anomaly_rate: s.reference.expected_anomaly_rate,
    }
}
