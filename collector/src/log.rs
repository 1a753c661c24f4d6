//! Best-effort console output that can never panic.
//!
//! `println!`/`eprintln!` panic when the stream is closed (e.g. the collector was started with
//! its output piped into a process that exited). A telemetry server must not die for that, so
//! all console output goes through these functions, which ignore write errors.

use std::fmt;
use std::io::Write;

/// Writes one line to stdout, ignoring errors.
pub fn info(args: fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_fmt(args).and_then(|()| out.write_all(b"\n")).and_then(|()| out.flush());
}

/// Writes one line to stderr, prefixed with `collector: `, ignoring errors.
pub fn warn(args: fmt::Arguments<'_>) {
    let mut err = std::io::stderr().lock();
    let _ = err
        .write_all(b"collector: ")
        .and_then(|()| err.write_fmt(args))
        .and_then(|()| err.write_all(b"\n"));
}
