//! One instance of the engine module in its own `Store`: the host half of the ABI that
//! `gateway/sandbox-module/src/lib.rs` exports. This is the only host file that knows the export
//! names, the status values and how buffers are laid out in linear memory.
//!
//! Every operation starts with a fresh fuel budget and a clean slate for memory refusals and
//! guest output, so an error describes that operation alone. A guest stopped mid-call
//! (fuel, memory, trap) is not reused: [`super::Sandbox`] drops it and starts another.

use wasmtime::{Instance, InstancePre, Memory, Store, Trap, TypedFunc, WasmParams, WasmResults};

use super::error::{engine_code, SandboxError};
use super::host_state::HostState;
use super::limits::SandboxLimits;
use super::wasi::GuestExit;

/// `status` values returned by `load` and `score` (`edge_sandbox_module::Status`).
const STATUS_OK: u32 = 0;
const STATUS_ENGINE: u32 = 1;
const STATUS_ABI: u32 = 2;

/// The module's exported functions.
struct Abi {
    model_input: TypedFunc<u32, u32>,
    load: TypedFunc<u32, u32>,
    rows_input: TypedFunc<u32, u32>,
    score: TypedFunc<u32, u32>,
    output_ptr: TypedFunc<(), u32>,
    output_len: TypedFunc<(), u32>,
    error_code_ptr: TypedFunc<(), u32>,
    error_code_len: TypedFunc<(), u32>,
    error_message_ptr: TypedFunc<(), u32>,
    error_message_len: TypedFunc<(), u32>,
    features: TypedFunc<(), u32>,
    max_rows: TypedFunc<(), u32>,
}

impl Abi {
    fn find(instance: &Instance, store: &mut Store<HostState>) -> Result<Abi, SandboxError> {
        fn get<P: WasmParams, R: WasmResults>(
            instance: &Instance,
            store: &mut Store<HostState>,
            name: &str,
        ) -> Result<TypedFunc<P, R>, SandboxError> {
            instance
                .get_typed_func(&mut *store, name)
                .map_err(|e| SandboxError::Module(format!("export `{name}`: {e}")))
        }
        Ok(Abi {
            model_input: get(instance, store, "model_input")?,
            load: get(instance, store, "load")?,
            rows_input: get(instance, store, "rows_input")?,
            score: get(instance, store, "score")?,
            output_ptr: get(instance, store, "output_ptr")?,
            output_len: get(instance, store, "output_len")?,
            error_code_ptr: get(instance, store, "error_code_ptr")?,
            error_code_len: get(instance, store, "error_code_len")?,
            error_message_ptr: get(instance, store, "error_message_ptr")?,
            error_message_len: get(instance, store, "error_message_len")?,
            features: get(instance, store, "features")?,
            max_rows: get(instance, store, "max_rows")?,
        })
    }
}

/// The store and linear memory of one instance, with the fuel budget of the current operation.
struct Run {
    store: Store<HostState>,
    memory: Memory,
    budget: u64,
}

/// A running instance of the engine module.
pub(super) struct Guest {
    run: Run,
    abi: Abi,
}

impl Guest {
    /// Instantiates the module under `limits` and runs its `_initialize`, if it has one.
    pub fn start(
        pre: &InstancePre<HostState>,
        limits: &SandboxLimits,
    ) -> Result<Guest, SandboxError> {
        let mut store = Store::new(pre.module().engine(), HostState::new(limits.memory_bytes));
        store.limiter(|state| &mut state.memory);
        let budget = limits.fuel_per_load;
        store.set_fuel(budget).map_err(|e| SandboxError::Runtime(e.to_string()))?;
        let instance = pre.instantiate(&mut store).map_err(|e| {
            match stopped(&mut store, budget, e) {
                // Not a guest trap: the module does not fit the imports the sandbox provides.
                SandboxError::Trap { message, .. } => SandboxError::Module(message),
                other => other,
            }
        })?;
        let memory = instance
            .get_memory(&mut store, "memory")
            .ok_or_else(|| SandboxError::Module("the module exports no `memory`".into()))?;
        let mut run = Run { store, memory, budget };
        let abi = Abi::find(&instance, &mut run.store)?;
        if let Some(init) = instance.get_func(&mut run.store, "_initialize") {
            let init = init
                .typed::<(), ()>(&run.store)
                .map_err(|e| SandboxError::Module(format!("export `_initialize`: {e}")))?;
            run.call(&init, ())?;
        }
        Ok(Guest { run, abi })
    }

    /// Loads `model` into the guest's engine.
    pub fn load(&mut self, model: &[u8], fuel: u64) -> Result<(), SandboxError> {
        let Guest { run, abi } = self;
        run.begin(fuel)?;
        let len = abi_len(model.len(), "model bytes")?;
        let ptr = run.call(&abi.model_input, len)?;
        run.bytes_mut(ptr, model.len())?.copy_from_slice(model);
        let status = run.call(&abi.load, len)?;
        run.check(abi, status)
    }

    /// Scores `rows` (row-major readings) in the guest.
    pub fn score(&mut self, rows: &[f32], fuel: u64) -> Result<Vec<f32>, SandboxError> {
        let Guest { run, abi } = self;
        run.begin(fuel)?;
        let n = abi_len(rows.len(), "values")?;
        let ptr = run.call(&abi.rows_input, n)?;
        let dst = run.bytes_mut(ptr, rows.len() * 4)?;
        for (d, v) in dst.chunks_exact_mut(4).zip(rows) {
            d.copy_from_slice(&v.to_le_bytes());
        }
        let status = run.call(&abi.score, n)?;
        run.check(abi, status)?;
        let ptr = run.call(&abi.output_ptr, ())?;
        let len = run.call(&abi.output_len, ())? as usize;
        let src = run.bytes(ptr, len * 4)?;
        Ok(src.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect())
    }

    /// Features per reading of the loaded model (0 before a load).
    pub fn features(&mut self) -> Result<usize, SandboxError> {
        let Guest { run, abi } = self;
        Ok(run.call(&abi.features, ())? as usize)
    }

    /// Most readings per call of the loaded model (0 before a load).
    pub fn max_rows(&mut self) -> Result<usize, SandboxError> {
        let Guest { run, abi } = self;
        Ok(run.call(&abi.max_rows, ())? as usize)
    }

    /// Fuel the last operation used.
    pub fn fuel_used(&self) -> u64 {
        self.run.budget.saturating_sub(self.run.store.get_fuel().unwrap_or(0))
    }

    /// Current size of the guest's linear memory, in bytes.
    pub fn memory_bytes(&self) -> usize {
        self.run.memory.data_size(&self.run.store)
    }
}

impl Run {
    /// Starts an operation: a full `budget` of fuel, no refusals or output from earlier ones.
    fn begin(&mut self, budget: u64) -> Result<(), SandboxError> {
        self.store.set_fuel(budget).map_err(|e| SandboxError::Runtime(e.to_string()))?;
        self.budget = budget;
        self.store.data_mut().begin_call();
        Ok(())
    }

    fn call<P: WasmParams, R: WasmResults>(
        &mut self,
        f: &TypedFunc<P, R>,
        args: P,
    ) -> Result<R, SandboxError> {
        f.call(&mut self.store, args).map_err(|e| stopped(&mut self.store, self.budget, e))
    }

    /// Turns a `load`/`score` status into a result, reading the guest's error buffers.
    fn check(&mut self, abi: &Abi, status: u32) -> Result<(), SandboxError> {
        if status == STATUS_OK {
            return Ok(());
        }
        let code = self.text(&abi.error_code_ptr, &abi.error_code_len)?;
        let message = self.text(&abi.error_message_ptr, &abi.error_message_len)?;
        Err(match status {
            STATUS_ENGINE => match engine_code(&code) {
                "ENGINE_UNKNOWN" => SandboxError::Engine {
                    code: "ENGINE_UNKNOWN",
                    message: format!("{code}: {message}"),
                },
                known => SandboxError::Engine { code: known, message },
            },
            STATUS_ABI => SandboxError::Abi(message),
            other => SandboxError::Abi(format!("unknown status {other} ({code}: {message})")),
        })
    }

    fn text(
        &mut self,
        ptr: &TypedFunc<(), u32>,
        len: &TypedFunc<(), u32>,
    ) -> Result<String, SandboxError> {
        let ptr = self.call(ptr, ())?;
        let len = self.call(len, ())? as usize;
        Ok(String::from_utf8_lossy(self.bytes(ptr, len)?).into_owned())
    }

    fn bytes(&self, ptr: u32, len: usize) -> Result<&[u8], SandboxError> {
        let start = ptr as usize;
        let end = start.saturating_add(len);
        self.memory.data(&self.store).get(start..end).ok_or_else(|| {
            SandboxError::Abi(format!("guest buffer {start}..{end} is out of bounds"))
        })
    }

    fn bytes_mut(&mut self, ptr: u32, len: usize) -> Result<&mut [u8], SandboxError> {
        let start = ptr as usize;
        let end = start.saturating_add(len);
        self.memory.data_mut(&mut self.store).get_mut(start..end).ok_or_else(|| {
            SandboxError::Abi(format!("guest buffer {start}..{end} is out of bounds"))
        })
    }
}

/// Why the guest stopped: a refused memory growth explains whatever trap followed it.
fn stopped(store: &mut Store<HostState>, budget: u64, err: wasmtime::Error) -> SandboxError {
    let state = store.data_mut();
    if let Some(requested) = state.memory.refused.take() {
        return SandboxError::Memory { limit: state.memory.limit, requested };
    }
    if err.downcast_ref::<Trap>() == Some(&Trap::OutOfFuel) {
        return SandboxError::Fuel { budget };
    }
    let message = match (err.downcast_ref::<Trap>(), err.downcast_ref::<GuestExit>()) {
        (Some(trap), _) => trap.to_string(),
        (None, Some(exit)) => exit.to_string(),
        (None, None) => format!("{err:#}"),
    };
    SandboxError::Trap { message, guest_output: state.output() }
}

/// A host length as the guest's 32-bit `usize`.
fn abi_len(len: usize, what: &str) -> Result<u32, SandboxError> {
    u32::try_from(len)
        .map_err(|_| SandboxError::Abi(format!("{len} {what} do not fit a wasm32 length")))
}
