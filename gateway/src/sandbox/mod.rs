//! The engine as a wasm32-wasip1 module under wasmtime, with memory and fuel limits per call.
//!
//! The gateway can run the engine out of process memory's reach: a model is untrusted input
//! (it arrives as an update), and a bug it triggers in the engine should cost one call, not the
//! gateway. [`Sandbox`] runs `edge-sandbox-module` (built by `gateway/build-sandbox.sh`) in a
//! wasmtime store whose linear memory is capped by a resource limiter and whose every call gets
//! a fuel budget. When a call is stopped — out of fuel, out of memory, a trap — the instance is
//! thrown away and a fresh one is started from the compiled module with the same model, so the
//! next call works. Requests the engine refuses (a wrong length, a non-finite value) come back
//! with the engine's own error code, as from the native [`edge_anomaly::Engine`].
//!
//! The module is compiled once ([`SandboxModule`]); instances are cheap to start from it.

mod error;
mod guest;
mod host_state;
mod limits;
mod wasi;

use std::path::PathBuf;

use wasmtime::{Config, InstancePre, Linker, Module};

pub use error::SandboxError;
pub use limits::SandboxLimits;

use guest::Guest;
use host_state::HostState;

/// Environment variable naming the module file; see [`Sandbox::default_module_path`].
pub const MODULE_ENV: &str = "EDGE_SANDBOX_MODULE";

/// Where `gateway/build-sandbox.sh` writes the module.
const BUILT_MODULE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../target/sandbox/wasm32-wasip1/sandbox/edge_sandbox_module.wasm"
);

/// The engine module, compiled and linked against the sandbox's WASI imports: start any number
/// of [`Sandbox`]es from it without compiling again. Cloning is cheap.
#[derive(Clone)]
pub struct SandboxModule {
    pre: InstancePre<HostState>,
}

impl SandboxModule {
    /// Compiles `wasm` (the bytes of `edge_sandbox_module.wasm`) with fuel metering on.
    pub fn compile(wasm: &[u8]) -> Result<SandboxModule, SandboxError> {
        let mut config = Config::new();
        config.consume_fuel(true);
        let engine =
            wasmtime::Engine::new(&config).map_err(|e| SandboxError::Runtime(e.to_string()))?;
        let module =
            Module::new(&engine, wasm).map_err(|e| SandboxError::Module(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasi::define(&mut linker, &module).map_err(|e| SandboxError::Runtime(e.to_string()))?;
        let pre =
            linker.instantiate_pre(&module).map_err(|e| SandboxError::Module(format!("{e:#}")))?;
        Ok(SandboxModule { pre })
    }
}

/// An anomaly model scored inside the sandbox.
pub struct Sandbox {
    module: SandboxModule,
    model: Vec<u8>,
    limits: SandboxLimits,
    /// `None` after a stopped call whose replacement could not be started; the next call
    /// tries again.
    guest: Option<Guest>,
    features: usize,
    max_rows: usize,
    fuel_used: u64,
    restarts: u64,
}

impl Sandbox {
    /// Compiles `module_wasm`, starts it under `limits` and loads `model_onnx` into it. A model
    /// the engine refuses gives [`SandboxError::Engine`] with the engine's code (`MODEL_PARSE`…).
    pub fn new(
        module_wasm: &[u8],
        model_onnx: &[u8],
        limits: SandboxLimits,
    ) -> Result<Sandbox, SandboxError> {
        Sandbox::with_module(&SandboxModule::compile(module_wasm)?, model_onnx, limits)
    }

    /// Like [`Sandbox::new`], from an already compiled module.
    pub fn with_module(
        module: &SandboxModule,
        model_onnx: &[u8],
        limits: SandboxLimits,
    ) -> Result<Sandbox, SandboxError> {
        let mut guest = start(module, model_onnx, &limits)?;
        let fuel_used = guest.fuel_used();
        let features = guest.features()?;
        let max_rows = guest.max_rows()?;
        Ok(Sandbox {
            module: module.clone(),
            model: model_onnx.to_vec(),
            limits,
            guest: Some(guest),
            features,
            max_rows,
            fuel_used,
            restarts: 0,
        })
    }

    /// Where the gateway looks for the module: `$EDGE_SANDBOX_MODULE` if set, else the path
    /// `gateway/build-sandbox.sh` builds to in this source tree.
    pub fn default_module_path() -> PathBuf {
        std::env::var_os(MODULE_ENV).map_or_else(|| PathBuf::from(BUILT_MODULE), PathBuf::from)
    }

    /// Features per reading of the model.
    pub fn features(&self) -> usize {
        self.features
    }

    /// Most readings one [`Sandbox::score`] call may take.
    pub fn max_rows(&self) -> usize {
        self.max_rows
    }

    /// The limits this sandbox enforces.
    pub fn limits(&self) -> SandboxLimits {
        self.limits
    }

    /// Changes the fuel budget of the following [`Sandbox::score`] calls.
    pub fn set_fuel_per_call(&mut self, fuel: u64) {
        self.limits.fuel_per_call = fuel;
    }

    /// Fuel the last call (or the initial load) used: how close it came to its budget.
    pub fn fuel_used(&self) -> u64 {
        self.fuel_used
    }

    /// Current size of the guest's linear memory, in bytes (0 while no guest is running).
    pub fn memory_bytes(&self) -> usize {
        self.guest.as_ref().map_or(0, Guest::memory_bytes)
    }

    /// How many times a replacement guest was started after a stopped call (attempts, so a
    /// replacement that failed to start counts too).
    pub fn restarts(&self) -> u64 {
        self.restarts
    }

    /// Scores `rows`, a row-major buffer of one or more readings of [`Sandbox::features`]
    /// values; one score per reading, in order.
    pub fn score(&mut self, rows: &[f32]) -> Result<Vec<f32>, SandboxError> {
        let mut guest = match self.guest.take() {
            Some(guest) => guest,
            None => self.restart()?,
        };
        let result = guest.score(rows, self.limits.fuel_per_call);
        self.fuel_used = guest.fuel_used();
        self.guest = match &result {
            // A stopped guest is not reused. Its replacement starts now so the next call does
            // not pay for it; if it cannot start, the next call tries again and says why.
            Err(e) if e.poisons_guest() => self.restart().ok(),
            _ => Some(guest),
        };
        result
    }

    fn restart(&mut self) -> Result<Guest, SandboxError> {
        self.restarts += 1;
        start(&self.module, &self.model, &self.limits)
    }
}

/// A guest with `model` loaded.
fn start(
    module: &SandboxModule,
    model: &[u8],
    limits: &SandboxLimits,
) -> Result<Guest, SandboxError> {
    let mut guest = Guest::start(&module.pre, limits)?;
    guest.load(model, limits.fuel_per_load)?;
    Ok(guest)
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("features", &self.features)
            .field("max_rows", &self.max_rows)
            .field("limits", &self.limits)
            .field("running", &self.guest.is_some())
            .field("restarts", &self.restarts)
            .finish_non_exhaustive()
    }
}
