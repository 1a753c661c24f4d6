//! The inference engine: an ONNX anomaly model run by tract.
//!
//! A model takes raw readings `[batch, F]` (float32) and returns one anomaly score per row
//! (`[batch]`, float32). [`Engine::load`] parses the bytes, checks that contract, binds the
//! batch axis to a symbol, optimizes once and keeps the plan; [`Engine::score`] validates the
//! input and runs it. Nothing here panics on user input: every failure is an [`EngineError`].

mod contract;
mod error;
mod slot;

use std::sync::Arc;

use tract_onnx::prelude::*;

pub use contract::ModelContract;
pub use error::{ContractViolation, EngineError};
pub use slot::ModelSlot;

/// Limits applied to every scoring call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Largest number of rows one call may score; bounds memory per call.
    pub max_batch: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig { max_batch: 16_384 }
    }
}

/// A loaded, optimized model ready to score readings.
#[derive(Debug, Clone)]
pub struct Engine {
    plan: Arc<TypedRunnableModel>,
    contract: ModelContract,
    config: EngineConfig,
}

impl Engine {
    /// Parses ONNX `bytes`, validates the model contract and prepares an optimized plan.
    pub fn load(bytes: &[u8], config: EngineConfig) -> Result<Engine, EngineError> {
        if config.max_batch == 0 {
            return Err(EngineError::InvalidConfig("max_batch must be at least 1".into()));
        }
        let mut reader = bytes;
        let model = tract_onnx::onnx()
            .model_for_read(&mut reader)
            .map_err(|e| EngineError::Parse(format!("{e:#}")))?;
        let (typed, contract) = contract::bind(model)?;
        let plan = typed
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| EngineError::Optimize(format!("{e:#}")))?;
        Ok(Engine { plan, contract, config })
    }

    /// Number of features (`F`) per reading, as read from the model.
    pub fn features(&self) -> usize {
        self.contract.features
    }

    /// The model's input/output names and width.
    pub fn contract(&self) -> &ModelContract {
        &self.contract
    }

    /// The limits this engine enforces.
    pub fn config(&self) -> EngineConfig {
        self.config
    }

    /// Scores `rows`, a row-major buffer of one or more readings of [`Self::features`] values.
    /// Returns one score per reading, in order.
    pub fn score(&self, rows: &[f32]) -> Result<Vec<f32>, EngineError> {
        let n = self.check_input(rows)?;
        let input = Tensor::from_shape(&[n, self.contract.features], rows)
            .map_err(|e| EngineError::Inference(format!("{e:#}")))?;
        let out = self
            .plan
            .run(tvec!(input.into()))
            .map_err(|e| EngineError::Inference(format!("{e:#}")))?;
        let scores = out
            .first()
            .ok_or_else(|| EngineError::Inference("model produced no output".into()))?
            .try_as_plain_ram()
            .and_then(|view| view.as_slice::<f32>())
            .map_err(|e| EngineError::Inference(format!("{e:#}")))?;
        if scores.len() != n {
            return Err(EngineError::Inference(format!(
                "model returned {} scores for {n} rows",
                scores.len()
            )));
        }
        Ok(scores.to_vec())
    }

    /// Validates shape, values and batch size; returns the number of rows.
    fn check_input(&self, rows: &[f32]) -> Result<usize, EngineError> {
        let f = self.contract.features;
        if rows.is_empty() || !rows.len().is_multiple_of(f) {
            return Err(EngineError::WrongLength { len: rows.len(), features: f });
        }
        let n = rows.len() / f;
        if n > self.config.max_batch {
            return Err(EngineError::BatchTooLarge { rows: n, max: self.config.max_batch });
        }
        if let Some(i) = rows.iter().position(|v| !v.is_finite()) {
            return Err(EngineError::NonFinite { row: i / f, column: i % f });
        }
        Ok(n)
    }
}
