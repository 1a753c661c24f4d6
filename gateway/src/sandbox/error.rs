//! Everything that can go wrong running the engine in the sandbox.
//!
//! Three kinds of failure are kept apart because a caller acts differently on each: the sandbox
//! stopped the guest (fuel, memory, a trap: the guest was rebuilt and the next call works), the
//! engine inside refused the request (its own code, as the native engine would give it), or the
//! module itself is unusable.

use edge_anomaly::engine::ContractViolation;
use edge_anomaly::EngineError;
use thiserror::Error;

/// A failure of a sandboxed call. Every variant has a stable [`SandboxError::code`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SandboxError {
    /// The module bytes are not a sandbox module: not wasm, an import the sandbox does not
    /// provide, or an export of the ABI missing or of the wrong type.
    #[error("unusable sandbox module: {0}")]
    Module(String),
    /// The call used up its fuel budget (CPU cap) and was stopped.
    #[error("sandboxed call ran out of fuel (budget {budget})")]
    Fuel {
        /// The budget the call had.
        budget: u64,
    },
    /// The guest asked for more linear memory than the cap allows and could not go on.
    #[error("sandboxed call needed {requested} bytes of memory, more than the cap of {limit}")]
    Memory {
        /// The cap, in bytes.
        limit: usize,
        /// The memory size the refused growth asked for, in bytes.
        requested: usize,
    },
    /// The guest trapped for another reason: a panic, stack overflow, `proc_exit`.
    #[error("sandboxed call trapped: {message}{}", guest_output_suffix(.guest_output))]
    Trap {
        /// What wasmtime reported.
        message: String,
        /// The end of what the guest wrote to stdout/stderr during the call (a panic message).
        guest_output: String,
    },
    /// Host and guest disagree on the calling convention (a pointer outside linear memory, a
    /// length beyond a buffer, a batch too large to address).
    #[error("sandbox ABI violation: {0}")]
    Abi(String),
    /// The engine inside the sandbox refused the request; `code` is the engine's own
    /// ([`EngineError::code`]), e.g. `WRONG_LENGTH` or `MODEL_PARSE`.
    #[error("{message}")]
    Engine {
        /// The engine's error code.
        code: &'static str,
        /// The engine's message.
        message: String,
    },
    /// wasmtime itself failed outside any guest call (configuration, store setup).
    #[error("sandbox runtime error: {0}")]
    Runtime(String),
}

impl SandboxError {
    /// A stable, machine-readable code: `SANDBOX_*` for the sandbox's own failures, the
    /// engine's code for [`SandboxError::Engine`].
    pub fn code(&self) -> &'static str {
        match self {
            SandboxError::Module(_) => "SANDBOX_MODULE",
            SandboxError::Fuel { .. } => "SANDBOX_FUEL",
            SandboxError::Memory { .. } => "SANDBOX_MEMORY",
            SandboxError::Trap { .. } => "SANDBOX_TRAP",
            SandboxError::Abi(_) => "SANDBOX_ABI",
            SandboxError::Engine { code, .. } => code,
            SandboxError::Runtime(_) => "SANDBOX_RUNTIME",
        }
    }

    /// Whether the guest was stopped mid-call, so its instance cannot be trusted and is rebuilt.
    pub(super) fn poisons_guest(&self) -> bool {
        matches!(
            self,
            SandboxError::Fuel { .. }
                | SandboxError::Memory { .. }
                | SandboxError::Trap { .. }
                | SandboxError::Abi(_)
        )
    }
}

/// The engine's code named `code` as it crossed the ABI, as the engine's own `&'static str`; a
/// code this build of the host does not know (a newer module) becomes `ENGINE_UNKNOWN`, its text
/// kept in the message by the caller.
pub(super) fn engine_code(code: &str) -> &'static str {
    // One value of every variant, so the codes come from `EngineError::code` itself.
    let every = [
        EngineError::Parse(String::new()),
        EngineError::Contract(ContractViolation::InputCount(0)),
        EngineError::Optimize(String::new()),
        EngineError::ModelTooLarge { bytes: 0, max: 0 },
        EngineError::GraphTooLarge { what: "", count: 0, max: 0 },
        EngineError::InvalidConfig(String::new()),
        EngineError::WrongLength { len: 0, features: 0 },
        EngineError::NonFinite { row: 0, column: 0 },
        EngineError::BatchTooLarge { rows: 0, max: 0 },
        EngineError::OutputLength { len: 0, rows: 0 },
        EngineError::NotLoaded,
        EngineError::Inference(String::new()),
    ];
    every.iter().map(EngineError::code).find(|c| *c == code).unwrap_or("ENGINE_UNKNOWN")
}

fn guest_output_suffix(output: &str) -> String {
    if output.is_empty() {
        String::new()
    } else {
        format!(" (guest output: {})", output.trim_end())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_codes_map_to_the_engines_own() {
        assert_eq!(engine_code("WRONG_LENGTH"), "WRONG_LENGTH");
        assert_eq!(engine_code("MODEL_PARSE"), "MODEL_PARSE");
        assert_eq!(engine_code("SOMETHING_NEW"), "ENGINE_UNKNOWN");
    }
}
