//! [`BrowserEnv`]: the outbox's clock and randomness from the JS global (`Date.now`,
//! `Math.random`), available in pages and workers alike.

use crate::outbox::Env;

/// Wall clock and randomness of the browser.
#[derive(Debug, Default, Clone, Copy)]
pub struct BrowserEnv;

impl Env for BrowserEnv {
    fn now_ms(&self) -> u64 {
        js_sys::Date::now() as u64
    }

    fn random_u64(&self) -> u64 {
        // Jitter and idempotency-key nonces need uniqueness, not secrecy: two 32-bit halves.
        let half = || (js_sys::Math::random() * 4_294_967_296.0) as u64;
        (half() << 32) | half()
    }
}
