//! The engine compiled to a `wasm32-wasip1` reactor module for the gateway's sandbox.
//!
//! The host (`edge_gateway::sandbox`) talks to it through a few exported functions over linear
//! memory. Every buffer is owned by the module; the host only writes into a buffer it asked for
//! and reads back the ones the module points it to:
//!
//! | export | does |
//! |---|---|
//! | `model_input(len) -> ptr` | a `len`-byte buffer for the ONNX model |
//! | `load(len) -> status` | loads the model from the first `len` bytes of that buffer |
//! | `rows_input(n) -> ptr` | a buffer of `n` f32 (little-endian) for readings, row-major |
//! | `score(n) -> status` | scores the first `n` values of that buffer |
//! | `output_ptr()`, `output_len()` | the scores of the last successful `score` (f32 count) |
//! | `error_code_ptr()`, `error_code_len()` | the code of the last failure (UTF-8) |
//! | `error_message_ptr()`, `error_message_len()` | its message (UTF-8) |
//! | `features()`, `max_rows()` | of the loaded model; 0 before a load |
//!
//! `status` is 0 for success, 1 when the engine refused the call (the error code is the engine's,
//! e.g. `WRONG_LENGTH`), 2 when a length exceeds its buffer (`SANDBOX_ABI`). A pointer is only
//! valid until the next call that resizes its buffer.
//!
//! It is a WASI *reactor*: no `main`; the host calls `_initialize` once after instantiating,
//! then the functions above any number of times.

mod state;

use std::cell::RefCell;

pub use state::{State, Status, ABI_CODE};

thread_local! {
    /// The module runs single-threaded; the host serializes calls, so a borrow never overlaps.
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// Runs `f` on the module state.
fn with_state<R>(f: impl FnOnce(&mut State) -> R) -> R {
    STATE.with_borrow_mut(f)
}

/// The reactor entry point, as wasi-libc's `crt1-reactor.o` defines it: runs the static
/// constructors once. Defining it here matters beyond that: when nothing references
/// `__wasm_call_ctors`, the linker treats the module as a command and wraps *every* export in
/// constructors before and libc's exit-time cleanup after. Measured with `sandbox_bench`, that
/// made scoring one reading take ~11 µs instead of ~1.7 µs. Rust offers the reactor model
/// itself only on nightly (`-Z wasi-exec-model`).
#[cfg(target_os = "wasi")]
#[allow(unsafe_code, reason = "the linker-provided constructor list, called once")]
mod reactor {
    extern "C" {
        /// Provided by the linker: runs the module's static constructors.
        fn __wasm_call_ctors();
    }

    /// Called by the host once, before any other export.
    #[no_mangle]
    pub extern "C" fn _initialize() {
        // SAFETY: a linker-generated function with no arguments; the host calls `_initialize`
        // exactly once, before any other export, as the WASI reactor convention requires.
        unsafe { __wasm_call_ctors() }
    }
}

/// The exported functions. `#[no_mangle]` is what makes a function a wasm export, and the
/// `unsafe_code` lint counts it as unsafe because a symbol name can clash with another at link
/// time; these names are unique to this module and nothing else here is unsafe.
#[allow(unsafe_code, reason = "#[no_mangle] on the exported ABI functions only")]
mod exports {
    use super::{with_state, Status};

    /// See the module table: a `len`-byte buffer for the model.
    #[no_mangle]
    pub extern "C" fn model_input(len: usize) -> *mut u8 {
        with_state(|s| s.model_input(len).as_mut_ptr())
    }

    /// Loads the model from the first `len` bytes of the model buffer.
    #[no_mangle]
    pub extern "C" fn load(len: usize) -> Status {
        with_state(|s| s.load(len))
    }

    /// A buffer of `n_values` f32 for readings.
    #[no_mangle]
    pub extern "C" fn rows_input(n_values: usize) -> *mut f32 {
        with_state(|s| s.rows_input(n_values).as_mut_ptr())
    }

    /// Scores the first `n_values` values of the readings buffer.
    #[no_mangle]
    pub extern "C" fn score(n_values: usize) -> Status {
        with_state(|s| s.score(n_values))
    }

    /// Address of the last scores.
    #[no_mangle]
    pub extern "C" fn output_ptr() -> *const f32 {
        with_state(|s| s.output().as_ptr())
    }

    /// Number of the last scores.
    #[no_mangle]
    pub extern "C" fn output_len() -> usize {
        with_state(|s| s.output().len())
    }

    /// Address of the last error code.
    #[no_mangle]
    pub extern "C" fn error_code_ptr() -> *const u8 {
        with_state(|s| s.error_code().as_ptr())
    }

    /// Length in bytes of the last error code.
    #[no_mangle]
    pub extern "C" fn error_code_len() -> usize {
        with_state(|s| s.error_code().len())
    }

    /// Address of the last error message.
    #[no_mangle]
    pub extern "C" fn error_message_ptr() -> *const u8 {
        with_state(|s| s.error_message().as_ptr())
    }

    /// Length in bytes of the last error message.
    #[no_mangle]
    pub extern "C" fn error_message_len() -> usize {
        with_state(|s| s.error_message().len())
    }

    /// Features per reading of the loaded model; 0 before a load.
    #[no_mangle]
    pub extern "C" fn features() -> usize {
        with_state(|s| s.features())
    }

    /// Most readings one `score` may take; 0 before a load.
    #[no_mangle]
    pub extern "C" fn max_rows() -> usize {
        with_state(|s| s.max_rows())
    }
}
