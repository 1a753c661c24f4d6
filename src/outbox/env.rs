//! [`Env`]: the clock and randomness the outbox needs, injected.
//!
//! The core never reads the system clock or an OS random source (neither exists on
//! `wasm32-unknown-unknown` without JS glue), and tests drive time and jitter exactly. The web
//! layer implements it with `Date.now()` and `crypto.getRandomValues`.

/// Time and randomness, supplied by the platform.
pub trait Env {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;

    /// A uniformly random `u64`: backoff jitter, batch key nonces and new device ids.
    fn random_u64(&self) -> u64;
}

impl<E: Env + ?Sized> Env for &E {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }

    fn random_u64(&self) -> u64 {
        (**self).random_u64()
    }
}

impl<E: Env + ?Sized> Env for std::rc::Rc<E> {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }

    fn random_u64(&self) -> u64 {
        (**self).random_u64()
    }
}

/// A uniform value in `[0, 1)` from the top 53 bits of `env.random_u64()`.
pub(crate) fn unit_interval(env: &impl Env) -> f64 {
    (env.random_u64() >> 11) as f64 / (1u64 << 53) as f64
}
