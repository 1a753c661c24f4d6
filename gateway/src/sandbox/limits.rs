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
    /// Measured on the shipped shuttle model (`cargo run --release -p edge-gateway --example
    /// sandbox_bench`): its largest batch (16,384 readings) uses about 362 M fuel (~14 ms) and
    /// leaves the guest at 2.4 MiB of memory; starting a guest and loading the model takes
    /// about 46–49 M fuel. The budgets are ten times those, so a legitimate call never comes near
    /// them while a runaway one stops within about 150 ms; 64 MiB leaves room for models far
    /// larger than the shipped one. A model near the engine's own work cap
    /// (`ModelLimits::max_work_per_call`, 2^30 multiply-adds per call, at the measured ~7 fuel
    /// each) needs a larger `fuel_per_call` or smaller batches.
    fn default() -> Self {
        SandboxLimits {
            memory_bytes: 64 << 20,
            fuel_per_call: 4_000_000_000,
            fuel_per_load: 500_000_000,
        }
    }
}
