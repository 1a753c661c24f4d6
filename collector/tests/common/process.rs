//! A real `collector` process on a free loopback port, killed (SIGKILL) when dropped.
//!
//! For tests and the bench that need several collectors at once, or one that dies mid-request.
//! Only `std`, so the bench binary can include this file too.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A running collector.
pub struct CollectorProcess {
    child: Child,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

impl CollectorProcess {
    /// Starts `binary` with `args` (plus a free port, no PWA, no releases) and waits until it
    /// prints its URL.
    pub fn start(binary: &Path, args: &[&str]) -> CollectorProcess {
        let releases = std::env::temp_dir().join(format!("edge-releases-{}", std::process::id()));
        let mut child = Command::new(binary)
            .args(["--addr", "127.0.0.1:0", "--static", "/nonexistent"])
            .arg("--releases")
            .arg(&releases)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        // Reads the banner, then keeps draining so the collector never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(rest) = line.strip_prefix("collector listening on http://") {
                    let _ = tx.send(rest.trim_end_matches('/').to_owned());
                }
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => CollectorProcess { child, addr },
            Err(_) => {
                let _ = child.kill();
                panic!("collector {args:?} did not start: {:?}", child.wait());
            }
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for CollectorProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
