//! The gateway's clock, randomness and timer for the app core: the system clock, the OS random
//! source, and tokio's sleep.

use std::future::Future;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use edge_anomaly::app::Timer;
use edge_anomaly::outbox::Env;

/// Wall clock from `SystemTime`, randomness from the OS (`getrandom`).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemEnv;

impl Env for SystemEnv {
    fn now_ms(&self) -> u64 {
        SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
    }

    /// Device ids and idempotency nonces must not repeat across gateways; should the OS source
    /// ever fail, the clock's nanoseconds mixed with the process id keep ids going rather than
    /// stop recording.
    fn random_u64(&self) -> u64 {
        getrandom::u64().unwrap_or_else(|_| {
            let nanos =
                SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
            nanos ^ (u64::from(std::process::id()) << 32)
        })
    }
}

/// tokio's sleep and a monotonic clock from the process start.
#[derive(Debug, Clone, Copy)]
pub struct TokioTimer {
    start: Instant,
}

impl Default for TokioTimer {
    fn default() -> Self {
        TokioTimer { start: Instant::now() }
    }
}

impl Timer for TokioTimer {
    fn sleep(&self, ms: u64) -> impl Future<Output = ()> {
        tokio::time::sleep(std::time::Duration::from_millis(ms))
    }

    fn monotonic_ms(&self) -> f64 {
        self.start.elapsed().as_secs_f64() * 1000.0
    }
}
