//! The WASI preview 1 imports the engine module links against, written by hand: a
//! capability-free environment rather than `wasmtime-wasi`.
//!
//! The engine needs only a few of them at run time: randomness (hash-map seeds), the clocks,
//! and stdout/stderr for a panic message. The others are linked in by Rust's standard library
//! (files, directories, environment) and are never reached by scoring; they answer `ENOSYS`,
//! so the guest sees no files, no preopened directories, no environment and no arguments.
//! `proc_exit` stops the call like a trap. Writing these by hand keeps the gateway's build free
//! of `wasmtime-wasi`'s component-model and async dependencies.

use std::time::{SystemTime, UNIX_EPOCH};

use wasmtime::{Caller, Extern, ExternType, Linker, Memory, Module, Val};

use super::host_state::HostState;

/// The import module name of WASI preview 1.
const WASI: &str = "wasi_snapshot_preview1";

/// WASI errno values (`wasi_snapshot_preview1` `errno` enum).
mod errno {
    pub const SUCCESS: i32 = 0;
    pub const BADF: i32 = 8;
    pub const FAULT: i32 = 21;
    pub const INVAL: i32 = 28;
    pub const IO: i32 = 29;
    pub const NOSYS: i32 = 52;
}

/// Most iovecs one `fd_write` may pass (POSIX `IOV_MAX`); bounds the host's work per call.
const IOV_MAX: u32 = 1024;

/// The guest ended itself with `proc_exit`.
#[derive(Debug, thiserror::Error)]
#[error("guest called proc_exit({0})")]
pub(super) struct GuestExit(pub i32);

/// Functions implemented below; every other WASI import of the module answers `ENOSYS`.
const IMPLEMENTED: &[&str] = &[
    "fd_write",
    "random_get",
    "clock_time_get",
    "environ_sizes_get",
    "environ_get",
    "args_sizes_get",
    "args_get",
    "fd_prestat_get",
    "sched_yield",
    "proc_exit",
];

/// Defines the WASI imports of `module` in `linker`. Imports from other modules are left
/// undefined, so a module that needs more than WASI fails to instantiate.
pub(super) fn define(linker: &mut Linker<HostState>, module: &Module) -> wasmtime::Result<()> {
    linker.func_wrap(WASI, "fd_write", fd_write)?;
    linker.func_wrap(WASI, "random_get", random_get)?;
    linker.func_wrap(WASI, "clock_time_get", clock_time_get)?;
    linker.func_wrap(WASI, "environ_sizes_get", zero_sizes)?;
    linker.func_wrap(WASI, "args_sizes_get", zero_sizes)?;
    linker.func_wrap(WASI, "environ_get", |_: u32, _: u32| errno::SUCCESS)?;
    linker.func_wrap(WASI, "args_get", |_: u32, _: u32| errno::SUCCESS)?;
    // BADF on the first descriptor tells the standard library there are no preopened directories.
    linker.func_wrap(WASI, "fd_prestat_get", |_: i32, _: u32| errno::BADF)?;
    linker.func_wrap(WASI, "sched_yield", || errno::SUCCESS)?;
    linker.func_wrap(WASI, "proc_exit", |code: i32| -> wasmtime::Result<()> {
        Err(wasmtime::Error::new(GuestExit(code)))
    })?;
    for import in module.imports() {
        if import.module() != WASI || IMPLEMENTED.contains(&import.name()) {
            continue;
        }
        let ExternType::Func(ty) = import.ty() else { continue };
        let name = import.name().to_owned();
        linker.func_new(WASI, import.name(), ty, move |_, _, results| match results {
            [result] => {
                *result = Val::I32(errno::NOSYS);
                Ok(())
            }
            _ => Err(wasmtime::Error::msg(format!("WASI {name} is not available in the sandbox"))),
        })?;
    }
    Ok(())
}

fn memory(caller: &mut Caller<'_, HostState>) -> wasmtime::Result<Memory> {
    caller
        .get_export("memory")
        .and_then(Extern::into_memory)
        .ok_or_else(|| wasmtime::Error::msg("the guest exports no memory"))
}

/// `len` bytes of guest memory at `ptr`, or `None` if any of them is outside it.
fn span(data: &[u8], ptr: u32, len: u32) -> Option<&[u8]> {
    let start = ptr as usize;
    data.get(start..start.checked_add(len as usize)?)
}

fn span_mut(data: &mut [u8], ptr: u32, len: u32) -> Option<&mut [u8]> {
    let start = ptr as usize;
    data.get_mut(start..start.checked_add(len as usize)?)
}

/// Writes `bytes` at `ptr`; the errno to return.
fn store(memory: &Memory, caller: &mut Caller<'_, HostState>, ptr: u32, bytes: &[u8]) -> i32 {
    let len = bytes.len() as u32;
    match span_mut(memory.data_mut(caller), ptr, len) {
        Some(dst) => {
            dst.copy_from_slice(bytes);
            errno::SUCCESS
        }
        None => errno::FAULT,
    }
}

/// Stdout and stderr go to the call's captured output; no other descriptor exists.
fn fd_write(
    mut caller: Caller<'_, HostState>,
    fd: i32,
    iovs: u32,
    iovs_len: u32,
    nwritten: u32,
) -> wasmtime::Result<i32> {
    if fd != 1 && fd != 2 {
        return Ok(errno::BADF);
    }
    if iovs_len > IOV_MAX {
        return Ok(errno::INVAL);
    }
    let memory = memory(&mut caller)?;
    let (data, state) = memory.data_and_store_mut(&mut caller);
    let Some(table) = span(data, iovs, iovs_len * 8) else { return Ok(errno::FAULT) };
    let mut written = 0u32;
    for iov in table.chunks_exact(8) {
        let buf = u32::from_le_bytes([iov[0], iov[1], iov[2], iov[3]]);
        let len = u32::from_le_bytes([iov[4], iov[5], iov[6], iov[7]]);
        let Some(bytes) = span(data, buf, len) else { return Ok(errno::FAULT) };
        state.push_output(bytes);
        written = written.saturating_add(len);
    }
    Ok(store(&memory, &mut caller, nwritten, &written.to_le_bytes()))
}

/// Randomness from the host's OS source (the guest seeds its hash maps with it).
fn random_get(mut caller: Caller<'_, HostState>, buf: u32, len: u32) -> wasmtime::Result<i32> {
    let memory = memory(&mut caller)?;
    let Some(dst) = span_mut(memory.data_mut(&mut caller), buf, len) else {
        return Ok(errno::FAULT);
    };
    Ok(match getrandom::fill(dst) {
        Ok(()) => errno::SUCCESS,
        Err(_) => errno::IO,
    })
}

/// Realtime (id 0) and monotonic (id 1, counted from the guest's start) clocks, in nanoseconds.
fn clock_time_get(
    mut caller: Caller<'_, HostState>,
    id: u32,
    _precision: u64,
    time: u32,
) -> wasmtime::Result<i32> {
    let elapsed = match id {
        0 => SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default(),
        1 => caller.data().started.elapsed(),
        _ => return Ok(errno::INVAL),
    };
    let nanos = u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX);
    let memory = memory(&mut caller)?;
    Ok(store(&memory, &mut caller, time, &nanos.to_le_bytes()))
}

/// `environ_sizes_get` / `args_sizes_get`: zero entries, zero bytes.
fn zero_sizes(mut caller: Caller<'_, HostState>, count: u32, size: u32) -> wasmtime::Result<i32> {
    let memory = memory(&mut caller)?;
    let status = store(&memory, &mut caller, count, &0u32.to_le_bytes());
    if status != errno::SUCCESS {
        return Ok(status);
    }
    Ok(store(&memory, &mut caller, size, &0u32.to_le_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_outside_memory_are_refused() {
        let data = [0u8; 16];
        assert_eq!(span(&data, 8, 8).map(<[u8]>::len), Some(8));
        assert!(span(&data, 9, 8).is_none());
        assert!(span(&data, u32::MAX, u32::MAX).is_none());
    }
}
