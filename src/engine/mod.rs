//! The inference engine: an ONNX anomaly model run by tract.
//!
//! A model takes raw readings `[batch, F]` (float32) and returns one anomaly score per row
//! (`[batch]`, float32), or its reconstruction (`[batch, F]`), which the engine turns into the
//! mean squared error against the input at load. [`Engine::load`] parses the bytes, checks that contract, binds the
//! batch axis to a symbol, optimizes once and keeps the plan; [`Engine::score`] validates the
//! input and runs it. Nothing here panics on user input: every failure is an [`EngineError`].
//! A model larger than [`ModelLimits`] allows is refused before tract builds anything from it.

mod backend;
mod batch_axis;
mod channels;
mod contract;
mod dense;
mod dequantize;
mod error;
mod explain;
mod limits;
mod names;
mod reconstruction;
mod reduce_axes;
mod repair;
mod slot;
mod wiring;

use std::cell::{OnceCell, RefCell};
use std::fmt;
use std::sync::Arc;

use tract_onnx::prelude::*;

pub use backend::{Backend, Chosen};
pub use channels::{Attribution, ChannelMap, ChannelShare, Contributions, GUARD_CHANNEL};
pub use contract::ModelContract;
pub use dequantize::Int8Mode;
pub use error::{ContractViolation, EngineError};
pub use explain::Explained;
pub use limits::ModelLimits;
pub use repair::Axis;
pub use slot::ModelSlot;

/// Limits applied to every scoring call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EngineConfig {
    /// Largest number of rows one call may score; bounds memory per call.
    pub max_batch: usize,
    /// How onnxruntime `quantize_dynamic` (int8) models are run.
    pub int8: Int8Mode,
    /// Which scoring implementations may be used.
    pub backend: Backend,
    /// Caps on the model itself: bytes, nodes, parameters.
    pub limits: ModelLimits,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            max_batch: 16_384,
            int8: Int8Mode::default(),
            backend: Backend::default(),
            limits: ModelLimits::default(),
        }
    }
}

/// A loaded, optimized model ready to score readings.
///
/// It keeps one tract execution state across calls, so scoring a reading does not rebuild the
/// per-node state each time (the dominant cost of a one-row call).
#[derive(Clone)]
pub struct Engine {
    plan: Arc<TypedRunnableModel>,
    state: RefCell<TypedSimpleState>,
    contract: ModelContract,
    config: EngineConfig,
    dequantized: usize,
    dense: Option<dense::DensePlan>,
    chosen: Chosen,
    /// Rows one call may score: `max_batch`, lowered for a large model by the work cap.
    max_rows: usize,
    /// The graph as loaded, kept while tract scores it: the terms plan is built from it.
    proto: Option<Arc<tract_onnx::pb::ModelProto>>,
    /// tract's plan for [`Self::explain`], built on first use (or why there is none).
    terms: OnceCell<Result<explain::TermsPlan, String>>,
}

impl Engine {
    /// Parses ONNX `bytes`, validates the model contract and prepares an optimized plan.
    pub fn load(bytes: &[u8], config: EngineConfig) -> Result<Engine, EngineError> {
        if config.max_batch == 0 {
            return Err(EngineError::InvalidConfig("max_batch must be at least 1".into()));
        }
        config.limits.check_bytes(bytes)?;
        let onnx = reduce_axes::onnx();
        let mut reader = bytes;
        let mut proto = onnx
            .proto_model_for_read(&mut reader)
            .map_err(|e| EngineError::Parse(format!("{e:#}")))?;
        let parameters = config.limits.check_graph(&proto)?;
        wiring::check_outputs_defined(&proto)?;
        batch_axis::unify(&mut proto);
        let dequantized = match config.int8 {
            Int8Mode::DequantizeWeights => dequantize::dequantize_dynamic_matmuls(&mut proto)?,
            Int8Mode::AsWritten => 0,
        };
        let reconstruction_output = reconstruction::append_score(&mut proto);
        let model =
            onnx.model_for_proto_model(&proto).map_err(|e| EngineError::Parse(format!("{e:#}")))?;
        let (typed, mut contract) = contract::bind(model)?;
        contract.reconstruction_output = reconstruction_output;
        let plan = typed
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| EngineError::Optimize(format!("{e:#}")))?;
        let state =
            RefCell::new(plan.spawn().map_err(|e| EngineError::Optimize(format!("{e:#}")))?);
        let mut engine = Engine {
            plan,
            state,
            contract,
            config,
            dequantized,
            dense: None,
            chosen: Chosen::Tract { reason: String::new() },
            max_rows: config.limits.rows_per_call(parameters, config.max_batch),
            proto: None,
            terms: OnceCell::new(),
        };
        let (dense, chosen) =
            backend::choose(config.backend, &proto, engine.contract.features, |rows, out| {
                engine.tract_score_into(rows, out)
            });
        if dense.is_none() {
            engine.proto = Some(Arc::new(proto));
        }
        engine.dense = dense;
        engine.chosen = chosen;
        Ok(engine)
    }

    /// Which implementation scores this model, and why.
    pub fn backend(&self) -> &Chosen {
        &self.chosen
    }

    /// How many int8 `MatMulInteger` chains were rewritten to f32 matmuls at load time
    /// (see [`Int8Mode`]); 0 for float models.
    pub fn dequantized_matmuls(&self) -> usize {
        self.dequantized
    }

    /// Number of features (`F`) per reading, as read from the model.
    pub fn features(&self) -> usize {
        self.contract.features
    }

    /// The model's input/output names and width.
    pub fn contract(&self) -> &ModelContract {
        &self.contract
    }

    /// Most readings one call may score: the batch cap, or fewer for a model so large that
    /// the work cap binds first.
    pub fn max_rows(&self) -> usize {
        self.max_rows
    }

    /// The limits this engine enforces.
    pub fn config(&self) -> EngineConfig {
        self.config
    }

    /// Scores `rows`, a row-major buffer of one or more readings of [`Self::features`] values.
    /// Returns one score per reading, in order.
    pub fn score(&self, rows: &[f32]) -> Result<Vec<f32>, EngineError> {
        let mut out = vec![0f32; rows.len() / self.contract.features.max(1)];
        self.score_into(rows, &mut out)?;
        Ok(out)
    }

    /// Like [`Self::score`], writing the scores into `out`, which must hold exactly one slot
    /// per reading; nothing is allocated for the result.
    pub fn score_into(&self, rows: &[f32], out: &mut [f32]) -> Result<(), EngineError> {
        let n = self.check_input(rows)?;
        if out.len() != n {
            return Err(EngineError::OutputLength { len: out.len(), rows: n });
        }
        match &self.dense {
            Some(dense) => {
                dense.score_into(rows, out);
                Ok(())
            }
            None => self.tract_score_into(rows, out),
        }
    }

    /// Scores `rows` like [`Self::score`] and says what each input column contributes to each
    /// score (see [`Explained`]). Slower than scoring alone, so callers ask for it where they
    /// need it (the readings a model flags).
    ///
    /// [`EngineError::Unexplained`] when the graph's score is not a reconstruction error the
    /// engine can break down.
    pub fn explain(&self, rows: &[f32]) -> Result<Explained, EngineError> {
        let n = self.check_input(rows)?;
        let f = self.contract.features;
        if let Some(dense) = &self.dense {
            let (mut scores, mut shares, mut guard) =
                (vec![0f32; n], vec![0f32; n * f], vec![0f32; n]);
            dense.explain_into(rows, &mut scores, &mut shares, &mut guard);
            return Ok(Explained { scores, columns: f, shares, guard });
        }
        let plan = self.terms.get_or_init(|| match &self.proto {
            Some(proto) => explain::TermsPlan::build(proto, f),
            None => Err("the model's graph was not kept".into()),
        });
        match plan {
            Ok(plan) => plan.explain(rows, n),
            Err(reason) => Err(EngineError::Unexplained(reason.clone())),
        }
    }

    /// Scores validated `rows` through tract.
    fn tract_score_into(&self, rows: &[f32], out: &mut [f32]) -> Result<(), EngineError> {
        let n = out.len();
        let input = Tensor::from_shape(&[n, self.contract.features], rows)
            .map_err(|e| EngineError::Inference(format!("{e:#}")))?;
        match self.state.try_borrow_mut() {
            Ok(mut state) => Self::run(&mut state, input, out, n),
            // Only reachable by re-entrant use; a fresh state is always correct.
            Err(_) => {
                let mut fresh =
                    self.plan.spawn().map_err(|e| EngineError::Inference(format!("{e:#}")))?;
                Self::run(&mut fresh, input, out, n)
            }
        }
    }

    fn run(
        state: &mut TypedSimpleState,
        input: Tensor,
        out: &mut [f32],
        n: usize,
    ) -> Result<(), EngineError> {
        let result =
            state.run(tvec!(input.into())).map_err(|e| EngineError::Inference(format!("{e:#}")))?;
        let scores = result
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
        out.copy_from_slice(scores);
        Ok(())
    }

    /// Validates shape, values and batch size; returns the number of rows.
    fn check_input(&self, rows: &[f32]) -> Result<usize, EngineError> {
        let f = self.contract.features;
        if rows.is_empty() || !rows.len().is_multiple_of(f) {
            return Err(EngineError::WrongLength { len: rows.len(), features: f });
        }
        let n = rows.len() / f;
        if n > self.max_rows {
            return Err(EngineError::BatchTooLarge { rows: n, max: self.max_rows });
        }
        if let Some(i) = rows.iter().position(|v| !v.is_finite()) {
            return Err(EngineError::NonFinite { row: i / f, column: i % f });
        }
        Ok(n)
    }
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("contract", &self.contract)
            .field("config", &self.config)
            .field("dequantized", &self.dequantized)
            .finish_non_exhaustive()
    }
}
