//! How much memory and CPU a sandboxed engine may use.
//!
//! CPU is metered in wasmtime *fuel*: roughly one unit per wasm instruction executed, so a
//! budget bounds the work of one call independently of how fast the machine is. Each call starts
//! with a full budget; running out stops the call with [`super::SandboxError::Fuel`].

/// Caps for one [`super::Sandbox`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SandboxLimits {
    /// Most linear memory the guest may have, in bytes (its whole heap, stack and data).
    pub memory_bytes: usize,
    /// Fuel for one `score` call.
    pub fuel_per_call: u64,
    /// Fuel for starting a guest and loading the model into it (on creation and after a trap).
    pub fuel_per_load: u64,
}

impl Default for SandboxLimits {
    /// 64 MiB and about ten times what the shipped model needs at its largest batch, and for a
    /// load. Measured with `cargo run --release -p edge-gateway --example sandbox_bench`.
    fn default() -> Self {
        SandboxLimits {
            memory_bytes: 64 << 20,
            fuel_per_call: 10_000_000_000,
            fuel_per_load: 10_000_000_000,
        }
    }
}
