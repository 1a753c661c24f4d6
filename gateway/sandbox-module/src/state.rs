//! What the module keeps between host calls: the model slot and the buffers the host reads and
//! writes through linear memory.
//!
//! The buffers belong to the module, so the host never allocates inside the guest: it asks for
//! a buffer of a size, writes into it at the address it gets back, and then names how much of it
//! a call should read. Every length the host passes is checked against the buffer it refers to;
//! a mismatch is an [`Status::Abi`] error, not a panic.

use edge_anomaly::{EngineConfig, EngineError, ModelSlot};

/// Outcome of a call, as the host sees it: the exported functions return it as an integer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Status {
    /// The call succeeded.
    Ok = 0,
    /// The engine refused the call; the error buffers hold its code and message.
    Engine = 1,
    /// The host broke the calling convention (a length beyond its buffer); the error buffers
    /// say how.
    Abi = 2,
}

/// Error code reported with [`Status::Abi`].
pub const ABI_CODE: &str = "SANDBOX_ABI";

/// The module's whole state.
#[derive(Debug, Default)]
pub struct State {
    slot: ModelSlot,
    /// Model bytes written by the host before `load`.
    model_input: Vec<u8>,
    /// Readings written by the host before `score`, row-major.
    rows_input: Vec<f32>,
    /// Scores of the last successful `score`, one per reading.
    output: Vec<f32>,
    /// Code and message of the last failed call.
    error_code: String,
    error_message: String,
}

impl State {
    /// Makes the model buffer exactly `len` bytes long and returns it for the host to fill.
    pub fn model_input(&mut self, len: usize) -> &mut [u8] {
        self.model_input.clear();
        self.model_input.resize(len, 0);
        self.model_input.shrink_to_fit();
        &mut self.model_input
    }

    /// Makes the readings buffer hold `n_values` values and returns it for the host to fill.
    /// It keeps its capacity, so a host that scores same-sized batches allocates once.
    pub fn rows_input(&mut self, n_values: usize) -> &mut [f32] {
        self.rows_input.resize(n_values, 0.0);
        &mut self.rows_input
    }

    /// Loads the first `len` bytes of the model buffer; a failed load keeps the previous model.
    /// The buffer is released afterwards: the engine keeps what it needs.
    pub fn load(&mut self, len: usize) -> Status {
        if len > self.model_input.len() {
            return self.abi_error(format!(
                "load of {len} bytes, but the model buffer holds {}",
                self.model_input.len()
            ));
        }
        let result = self.slot.load(&self.model_input[..len], EngineConfig::default()).map(drop);
        self.model_input = Vec::new();
        self.finish(result)
    }

    /// Scores the first `n_values` values of the readings buffer into the output buffer.
    pub fn score(&mut self, n_values: usize) -> Status {
        self.output.clear();
        let Some(rows) = self.rows_input.get(..n_values) else {
            return self.abi_error(format!(
                "score of {n_values} values, but the readings buffer holds {}",
                self.rows_input.len()
            ));
        };
        let result = self.slot.engine().and_then(|engine| {
            self.output.resize(n_values / engine.features().max(1), 0.0);
            engine.score_into(rows, &mut self.output)
        });
        if result.is_err() {
            self.output.clear();
        }
        self.finish(result)
    }

    /// Features per reading of the loaded model; 0 before a model is loaded.
    pub fn features(&self) -> usize {
        self.slot.engine().map_or(0, |e| e.features())
    }

    /// Most readings one `score` may take; 0 before a model is loaded.
    pub fn max_rows(&self) -> usize {
        self.slot.engine().map_or(0, |e| e.max_rows())
    }

    /// Scores of the last successful `score`.
    pub fn output(&self) -> &[f32] {
        &self.output
    }

    /// Code of the last failed call (empty after a success).
    pub fn error_code(&self) -> &str {
        &self.error_code
    }

    /// Message of the last failed call (empty after a success).
    pub fn error_message(&self) -> &str {
        &self.error_message
    }

    fn finish(&mut self, result: Result<(), EngineError>) -> Status {
        match result {
            Ok(()) => {
                self.error_code.clear();
                self.error_message.clear();
                Status::Ok
            }
            Err(e) => {
                self.set_error(e.code(), e.to_string());
                Status::Engine
            }
        }
    }

    fn abi_error(&mut self, message: String) -> Status {
        self.set_error(ABI_CODE, message);
        Status::Abi
    }

    fn set_error(&mut self, code: &str, message: String) {
        self.error_code.clear();
        self.error_code.push_str(code);
        self.error_message = message;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MODEL: &[u8] = include_bytes!("../../../models/shuttle/model.f32.onnx");

    fn loaded() -> State {
        let mut state = State::default();
        state.model_input(MODEL.len()).copy_from_slice(MODEL);
        assert_eq!(state.load(MODEL.len()), Status::Ok, "{}", state.error_message());
        state
    }

    #[test]
    fn scores_one_value_per_reading() {
        let mut state = loaded();
        let f = state.features();
        assert_eq!(f, 9);
        state.rows_input(2 * f).fill(1.0);
        assert_eq!(state.score(2 * f), Status::Ok);
        assert_eq!(state.output().len(), 2);
        assert_eq!(state.error_code(), "");
    }

    #[test]
    fn engine_errors_carry_the_engine_code() {
        let mut state = loaded();
        state.rows_input(5).fill(1.0);
        assert_eq!(state.score(5), Status::Engine);
        assert_eq!(state.error_code(), "WRONG_LENGTH");
        assert!(state.output().is_empty());
    }

    #[test]
    fn lengths_beyond_a_buffer_are_abi_errors() {
        let mut state = loaded();
        state.rows_input(9);
        assert_eq!(state.score(18), Status::Abi);
        assert_eq!(state.error_code(), ABI_CODE);
        state.model_input(4);
        assert_eq!(state.load(5), Status::Abi);
        assert_eq!(state.features(), 9, "the loaded model stays after a refused load");
    }

    #[test]
    fn scoring_before_a_load_is_not_loaded() {
        let mut state = State::default();
        state.rows_input(9);
        assert_eq!(state.score(9), Status::Engine);
        assert_eq!(state.error_code(), "NOT_LOADED");
        assert_eq!((state.features(), state.max_rows()), (0, 0));
    }
}
