//! Everything that can go wrong loading a model or scoring readings.
//!
//! Each variant has a stable [`EngineError::code`] so the web layer can hand JavaScript a code to
//! branch on instead of a message to parse.

use thiserror::Error;

/// A failure of the engine. User input never panics; it lands here.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum EngineError {
    /// The bytes are not a loadable ONNX model (truncated, tampered, unsupported op…).
    #[error("cannot parse ONNX model: {0}")]
    Parse(String),
    /// The model loads but is not an anomaly model of the shape we run.
    #[error("model contract violated: {0}")]
    Contract(#[from] ContractViolation),
    /// tract could not optimize the model into a runnable plan.
    #[error("cannot optimize model: {0}")]
    Optimize(String),
    /// The model file is larger than [`super::ModelLimits::max_bytes`]; nothing was parsed.
    #[error("model is {bytes} bytes, more than the cap of {max}")]
    ModelTooLarge {
        /// Size of the model file.
        bytes: usize,
        /// The cap.
        max: usize,
    },
    /// The graph has more nodes or parameters than [`super::ModelLimits`] allows.
    #[error("model has {count} {what}, more than the cap of {max}")]
    GraphTooLarge {
        /// `"nodes"` or `"parameters"`.
        what: &'static str,
        /// How many the model has (parameters: as its tensors declare).
        count: u64,
        /// The cap.
        max: u64,
    },
    /// The engine configuration is unusable (e.g. a zero batch cap).
    #[error("invalid engine configuration: {0}")]
    InvalidConfig(String),
    /// The input is empty or not a whole number of readings.
    #[error(
        "input has {len} values, expected a non-zero multiple of {features} (features per reading)"
    )]
    WrongLength {
        /// Number of values received.
        len: usize,
        /// Features per reading the model expects.
        features: usize,
    },
    /// A value is NaN or infinite.
    #[error("reading {row}, feature {column} is NaN or infinite")]
    NonFinite {
        /// Zero-based reading index within the call.
        row: usize,
        /// Zero-based feature index within the reading.
        column: usize,
    },
    /// More readings in one call than the configured cap.
    #[error("batch of {rows} readings exceeds the cap of {max}")]
    BatchTooLarge {
        /// Readings in the call.
        rows: usize,
        /// The configured cap.
        max: usize,
    },
    /// The output buffer does not hold exactly one slot per reading.
    #[error("output buffer has {len} slots for {rows} readings")]
    OutputLength {
        /// Slots in the buffer.
        len: usize,
        /// Readings in the call.
        rows: usize,
    },
    /// Scoring was asked for before any model was loaded.
    #[error("no model is loaded")]
    NotLoaded,
    /// tract failed while running a validated input (should not happen; reported, not panicked).
    #[error("inference failed: {0}")]
    Inference(String),
    /// The model's score cannot be broken down into per-column shares (it is not a mean squared
    /// reconstruction error, plus at most a range guard, that the engine can find in the graph).
    #[error("cannot break this model's score down by column: {0}")]
    Unexplained(String),
    /// This build has no tract and the dense kernel does not cover the model: it loads in the
    /// build with the general engine.
    #[error("this model needs the general engine: {0}")]
    NeedsGeneralEngine(String),
}

impl EngineError {
    /// A stable, machine-readable code for this error kind.
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Parse(_) => "MODEL_PARSE",
            EngineError::Contract(_) => "MODEL_CONTRACT",
            EngineError::Optimize(_) => "MODEL_OPTIMIZE",
            EngineError::ModelTooLarge { .. } => "MODEL_TOO_LARGE",
            EngineError::GraphTooLarge { .. } => "GRAPH_TOO_LARGE",
            EngineError::InvalidConfig(_) => "INVALID_CONFIG",
            EngineError::WrongLength { .. } => "WRONG_LENGTH",
            EngineError::NonFinite { .. } => "NON_FINITE",
            EngineError::BatchTooLarge { .. } => "BATCH_TOO_LARGE",
            EngineError::OutputLength { .. } => "OUTPUT_LENGTH",
            EngineError::NotLoaded => "NOT_LOADED",
            EngineError::Inference(_) => "INFERENCE",
            EngineError::Unexplained(_) => "UNEXPLAINED",
            EngineError::NeedsGeneralEngine(_) => "GENERAL_ENGINE",
        }
    }
}

/// How a model differs from the contract: one float32 input `[batch, F]`, one float32 output
/// `[batch]`.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ContractViolation {
    /// The model must have exactly one input.
    #[error("expected 1 input, found {0}")]
    InputCount(usize),
    /// The model must have exactly one output.
    #[error("expected 1 output, found {0}")]
    OutputCount(usize),
    /// The input must be float32.
    #[error("input must be float32, found {0}")]
    InputType(String),
    /// The input must be `[batch, F]`.
    #[error("input must have rank 2 [batch, features], found {0}")]
    InputShape(String),
    /// The feature axis must have a fixed, positive size.
    #[error("input feature axis must be a fixed positive size, found {0}")]
    FeatureAxis(String),
    /// The output must be float32.
    #[error("output must be float32, found {0}")]
    OutputType(String),
    /// The output must be `[batch]`, one score per input row.
    #[error("output must be [batch] (one score per row), found {0}")]
    OutputShape(String),
    /// tract could not type the graph with the bound input (bad shapes inside the model).
    #[error("graph does not type-check with input [batch, {features}]: {reason}")]
    Typing {
        /// Features per reading read from the input.
        features: usize,
        /// tract's explanation.
        reason: String,
    },
}
