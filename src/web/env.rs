//! [`BrowserEnv`]: the outbox's clock and randomness from the JS global (`Date.now`,
//! `crypto.getRandomValues`), available in pages and workers alike.

use crate::outbox::Env;

/// Wall clock and randomness of the browser.
#[derive(Debug, Default, Clone, Copy)]
pub struct BrowserEnv;

impl Env for BrowserEnv {
    fn now_ms(&self) -> u64 {
        js_sys::Date::now() as u64
    }

    /// From `crypto.getRandomValues` (through `getrandom`): device ids and idempotency-key
    /// nonces must not repeat across devices, which `Math.random` (a seeded PRNG per agent) does
    /// not promise. Every browser and worker this runs in has `crypto`; should the call ever
    /// fail, `Math.random` keeps jitter and ids going rather than stopping recording.
    fn random_u64(&self) -> u64 {
        getrandom::u64().unwrap_or_else(|_| {
            let half = || (js_sys::Math::random() * 4_294_967_296.0) as u64;
            (half() << 32) | half()
        })
    }
}
