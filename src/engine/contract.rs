//! The model contract: one float32 input `[batch, F]`, one float32 output `[batch]` (a
//! reconstruction output has been turned into one by then, see `reconstruction.rs`).
//!
//! `F` is read from the model, never assumed. The batch axis, whatever the file declares, is
//! rebound to one symbol so a single optimized plan serves one reading or thousands.

/// Name of the symbol bound to the batch axis.
pub const BATCH_SYMBOL: &str = "batch_size";

/// What a loaded model looks like from outside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelContract {
    /// Input tensor name in the ONNX graph.
    pub input_name: String,
    /// Output tensor name in the ONNX graph.
    pub output_name: String,
    /// Features per reading.
    pub features: usize,
    /// The file's output is the reconstruction `[batch, F]`; the engine scores it as the mean
    /// squared error against the input (and `output_name` is that appended score).
    pub reconstruction_output: bool,
}
