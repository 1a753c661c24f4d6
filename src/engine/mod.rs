//! The inference engine: an ONNX anomaly model, run by the dense kernel or by tract.
//!
//! A model takes raw readings `[batch, F]` (float32) and returns one anomaly score per row
//! (`[batch]`, float32), or its reconstruction (`[batch, F]`), which the engine turns into the
//! mean squared error against the input at load. [`Engine::load`] parses the bytes, checks that
//! contract and prepares the model once; [`Engine::score`] validates the input and runs it.
//! Nothing here panics on user input: every failure is an [`EngineError`]. A model larger than
//! [`ModelLimits`] allows is refused before anything is built from it.
//!
//! Two builds share this code. With the `tract` feature (the default, and every native build)
//! tract optimizes any graph and checks the dense kernel at load. Without it (the small engine the
//! browser loads first) only the graphs the dense kernel covers load; anything else is
//! [`EngineError::NeedsGeneralEngine`], and the caller switches to the build with tract.

mod backend;
mod batch_axis;
mod channels;
mod contract;
#[cfg(any(not(feature = "tract"), test))]
mod declared;
mod dense;
mod dequantize;
mod error;
mod explain;
#[cfg(feature = "tract")]
mod general;
mod limits;
mod names;
mod reconstruction;
mod repair;
mod slot;
mod wiring;

use std::fmt;

use crate::onnx;

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
#[derive(Clone)]
pub struct Engine {
    contract: ModelContract,
    config: EngineConfig,
    dequantized: usize,
    dense: Option<dense::DensePlan>,
    chosen: Chosen,
    /// Rows one call may score: `max_batch`, lowered for a large model by the work cap.
    max_rows: usize,
    /// tract's plan of the model: what scores it when the dense kernel does not.
    #[cfg(feature = "tract")]
    general: general::General,
}

/// What runs a prepared graph: its contract and the implementation chosen for it.
struct Runner {
    contract: ModelContract,
    dense: Option<dense::DensePlan>,
    chosen: Chosen,
    #[cfg(feature = "tract")]
    general: general::General,
}

impl Runner {
    /// Binds the contract with tract, optimizes the graph, and uses the dense kernel where it
    /// covers the graph and agrees with tract.
    #[cfg(feature = "tract")]
    fn choose(proto: onnx::pb::ModelProto, backend: Backend) -> Result<Runner, EngineError> {
        let (mut general, contract) = general::General::load(&proto)?;
        let (dense, chosen) = backend::choose(backend, &proto, contract.features, |rows, out| {
            general.score_into(rows, out)
        });
        if dense.is_none() {
            general.keep_graph(proto);
        }
        Ok(Runner { contract, dense, chosen, general })
    }

    /// Reads the contract from the graph and builds the dense kernel, or says the model needs
    /// the general engine. The kernel is checked against the model's signed reference scores
    /// when a package loads (`update::package`), there being no tract here to compare with.
    #[cfg(not(feature = "tract"))]
    fn choose(proto: onnx::pb::ModelProto, backend: Backend) -> Result<Runner, EngineError> {
        let contract = declared::from_proto(&proto)?;
        let (plan, chosen) = backend::dense_only(backend, &proto, contract.features)?;
        Ok(Runner { contract, dense: Some(plan), chosen })
    }
}

impl Engine {
    /// Parses ONNX `bytes`, validates the model contract and prepares it for scoring.
    pub fn load(bytes: &[u8], config: EngineConfig) -> Result<Engine, EngineError> {
        if config.max_batch == 0 {
            return Err(EngineError::InvalidConfig("max_batch must be at least 1".into()));
        }
        config.limits.check_bytes(bytes)?;
        let mut proto = onnx::parse(bytes).map_err(|e| EngineError::Parse(e.to_string()))?;
        let parameters = config.limits.check_graph(&proto)?;
        wiring::check_outputs_defined(&proto)?;
        batch_axis::unify(&mut proto);
        let dequantized = match config.int8 {
            Int8Mode::DequantizeWeights => dequantize::dequantize_dynamic_matmuls(&mut proto)?,
            Int8Mode::AsWritten => 0,
        };
        let reconstruction_output = reconstruction::append_score(&mut proto);
        let max_rows = config.limits.rows_per_call(parameters, config.max_batch);
        let Runner {
            mut contract,
            dense,
            chosen,
            #[cfg(feature = "tract")]
            general,
        } = Runner::choose(proto, config.backend)?;
        contract.reconstruction_output = reconstruction_output;
        Ok(Engine {
            contract,
            config,
            dequantized,
            dense,
            chosen,
            max_rows,
            #[cfg(feature = "tract")]
            general,
        })
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
            None => self.general_score_into(rows, out),
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
        self.general_explain(rows, n)
    }

    #[cfg(feature = "tract")]
    fn general_score_into(&self, rows: &[f32], out: &mut [f32]) -> Result<(), EngineError> {
        self.general.score_into(rows, out)
    }

    #[cfg(feature = "tract")]
    fn general_explain(&self, rows: &[f32], n: usize) -> Result<Explained, EngineError> {
        self.general.explain(rows, n)
    }

    // Without tract every engine that loads has a dense plan; these keep the match total.
    #[cfg(not(feature = "tract"))]
    fn general_score_into(&self, _rows: &[f32], _out: &mut [f32]) -> Result<(), EngineError> {
        Err(EngineError::NeedsGeneralEngine("no dense plan".into()))
    }

    #[cfg(not(feature = "tract"))]
    fn general_explain(&self, _rows: &[f32], _n: usize) -> Result<Explained, EngineError> {
        Err(EngineError::NeedsGeneralEngine("no dense plan".into()))
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
