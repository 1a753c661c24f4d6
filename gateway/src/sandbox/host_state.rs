//! What the host keeps inside a guest's `Store`: the memory cap, the guest's captured output and
//! the clock origin the WASI imports answer from.
//!
//! The memory cap is a [`ResourceLimiter`] rather than a module-declared maximum, so one compiled
//! module can run under different caps, and so the sandbox can tell a refused growth (the guest
//! then aborts with an `unreachable` trap) from any other trap.

use std::collections::VecDeque;
use std::time::Instant;

use wasmtime::ResourceLimiter;

/// Bytes of guest output kept: the end of it, where a panic message lands.
const OUTPUT_KEPT: usize = 4096;

/// The per-store state the host functions and the limiter see.
#[derive(Debug)]
pub(super) struct HostState {
    /// The linear-memory cap.
    pub memory: MemoryCap,
    /// The end of what the guest wrote to stdout and stderr since the last [`Self::begin_call`].
    output: VecDeque<u8>,
    /// The guest's monotonic clock counts from here.
    pub started: Instant,
}

impl HostState {
    /// State for a guest capped at `memory_bytes` of linear memory.
    pub fn new(memory_bytes: usize) -> HostState {
        HostState {
            memory: MemoryCap { limit: memory_bytes, refused: None },
            output: VecDeque::new(),
            started: Instant::now(),
        }
    }

    /// Forgets the previous call's refusals and output, so an error describes this call only.
    pub fn begin_call(&mut self) {
        self.memory.refused = None;
        self.output.clear();
    }

    /// Appends guest output, keeping only the last [`OUTPUT_KEPT`] bytes.
    pub fn push_output(&mut self, bytes: &[u8]) {
        let tail = &bytes[bytes.len().saturating_sub(OUTPUT_KEPT)..];
        let overflow = (self.output.len() + tail.len()).saturating_sub(OUTPUT_KEPT);
        self.output.drain(..overflow);
        self.output.extend(tail);
    }

    /// The kept guest output, lossily decoded.
    pub fn output(&self) -> String {
        let (a, b) = self.output.as_slices();
        String::from_utf8_lossy(&[a, b].concat()).into_owned()
    }
}

/// Caps one guest's linear memory and remembers the last growth it refused.
#[derive(Debug)]
pub(super) struct MemoryCap {
    /// The cap, in bytes.
    pub limit: usize,
    /// The size the last refused growth asked for, in bytes.
    pub refused: Option<usize>,
}

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.limit {
            self.refused = Some(desired);
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables hold function references; the engine never grows its one table, so anything
        // beyond a generous bound is a guest misbehaving.
        Ok(desired <= 1 << 20)
    }

    fn instances(&self) -> usize {
        1
    }

    fn tables(&self) -> usize {
        1
    }

    fn memories(&self) -> usize {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_keeps_the_last_bytes() {
        let mut state = HostState::new(0);
        state.push_output(&[b'a'; OUTPUT_KEPT]);
        state.push_output(b"panicked");
        let out = state.output();
        assert_eq!(out.len(), OUTPUT_KEPT);
        assert!(out.ends_with("panicked"));
        state.push_output(&vec![b'b'; 2 * OUTPUT_KEPT]);
        assert_eq!(state.output(), "b".repeat(OUTPUT_KEPT));
    }

    #[test]
    fn memory_cap_refuses_beyond_the_limit_and_remembers() {
        let mut cap = MemoryCap { limit: 1 << 20, refused: None };
        assert!(cap.memory_growing(0, 1 << 20, None).unwrap_or(false));
        assert!(!cap.memory_growing(1 << 20, 2 << 20, None).unwrap_or(true));
        assert_eq!(cap.refused, Some(2 << 20));
    }
}
