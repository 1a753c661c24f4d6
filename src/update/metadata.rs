//! The parts of a model package's `metadata.json` and `golden.json` the app relies on, as the
//! pipeline (`models/edge_pipeline`) writes them.

use serde::Deserialize;

use super::error::UpdateError;

/// What the app reads from `metadata.json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelMetadata {
    /// The release version, `MAJOR.MINOR.PATCH[+build]`.
    pub version: String,
    /// Feature names, one per input column.
    pub features: Vec<String>,
    /// The decision threshold on the score.
    pub threshold: f32,
    /// The model files by flavour (`f32`, `int8`).
    pub models: Models,
    /// Expected anomaly rate on normal data (the share of held-out normal readings above the
    /// threshold); 0.01 for the pipeline's 0.99-quantile threshold when not stated.
    #[serde(default)]
    pub expected_anomaly_rate: Option<f64>,
    /// The score distribution on held-out normal data: `[q, score]` pairs, `q` ascending. The
    /// device measures drift against it; absent in older packages.
    #[serde(default)]
    pub score_quantiles: Option<Vec<(f64, f64)>>,
    /// Each input column's training mean and standard deviation, in the units readings come
    /// in; absent for models made elsewhere.
    #[serde(default)]
    pub normalization: Option<Normalization>,
}

/// Per-column training statistics of the raw readings.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Normalization {
    /// Mean per column.
    pub mean: Vec<f32>,
    /// Standard deviation per column.
    pub std: Vec<f32>,
}

/// The model files of a package.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Models {
    /// The float model.
    pub f32: Option<ModelFile>,
    /// The int8 model, the one the app runs when present.
    pub int8: Option<ModelFile>,
}

/// One model file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelFile {
    /// File name inside the package.
    pub file: String,
}

impl ModelMetadata {
    /// Parses `metadata.json`.
    pub fn parse(bytes: &[u8]) -> Result<ModelMetadata, UpdateError> {
        let meta: ModelMetadata = serde_json::from_slice(bytes)
            .map_err(|e| UpdateError::Malformed { file: "metadata.json", reason: e.to_string() })?;
        if !meta.threshold.is_finite() {
            let reason = "threshold is not a finite number".into();
            return Err(UpdateError::Malformed { file: "metadata.json", reason });
        }
        Ok(meta)
    }

    /// The model the app runs (int8 when the package has one) and the golden scores for it.
    pub fn runnable(&self) -> Result<(&str, Flavour), UpdateError> {
        match (&self.models.int8, &self.models.f32) {
            (Some(m), _) => Ok((&m.file, Flavour::Int8)),
            (None, Some(m)) => Ok((&m.file, Flavour::F32)),
            (None, None) => Err(UpdateError::Malformed {
                file: "metadata.json",
                reason: "no model file listed under `models`".into(),
            }),
        }
    }

    /// The anomaly rate expected on normal data.
    pub fn expected_rate(&self) -> f64 {
        self.expected_anomaly_rate.unwrap_or(0.01)
    }
}

/// Which of the package's models runs, so the smoke test picks its reference scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavour {
    /// The float model: onnxruntime's scores.
    F32,
    /// The int8 model as the engine runs it (weights dequantized at load): onnxruntime's
    /// scores of the same weights as float matmuls.
    Int8,
}

/// `golden.json`: reference rows and scores.
#[derive(Debug, Clone, Deserialize)]
pub struct Golden {
    /// Reference readings.
    pub rows: Vec<Vec<f32>>,
    /// Reference scores per flavour.
    pub scores: GoldenScores,
    /// How close the engine must come.
    pub tolerance: Tolerance,
}

/// Reference scores, one per golden row.
#[derive(Debug, Clone, Deserialize)]
pub struct GoldenScores {
    /// The float model's.
    pub f32: Vec<f32>,
    /// The int8 model's with dequantized weights.
    pub int8_weight_only: Vec<f32>,
}

/// `|got - expected| <= atol + rtol * |expected|`.
#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Tolerance {
    /// Relative tolerance.
    pub rtol: f32,
    /// Absolute tolerance.
    pub atol: f32,
}

impl Golden {
    /// Parses `golden.json`.
    pub fn parse(bytes: &[u8]) -> Result<Golden, UpdateError> {
        serde_json::from_slice(bytes)
            .map_err(|e| UpdateError::Malformed { file: "golden.json", reason: e.to_string() })
    }

    /// The reference scores for `flavour`.
    pub fn scores(&self, flavour: Flavour) -> &[f32] {
        match flavour {
            Flavour::F32 => &self.scores.f32,
            Flavour::Int8 => &self.scores.int8_weight_only,
        }
    }
}
