//! [`BrowserTimer`]: the app's sleeping and precise clock in a page or worker: `gloo-timers`
//! timeouts and `performance.now()`.

use std::future::Future;

use wasm_bindgen::JsCast;

use crate::app::Timer;

/// `setTimeout` sleeps and `performance.now()` (falling back to `Date.now()`).
#[derive(Debug, Default, Clone, Copy)]
pub struct BrowserTimer;

impl Timer for BrowserTimer {
    fn sleep(&self, ms: u64) -> impl Future<Output = ()> {
        gloo_timers::future::TimeoutFuture::new(ms.min(u64::from(u32::MAX)) as u32)
    }

    fn monotonic_ms(&self) -> f64 {
        let global = js_sys::global();
        let performance = match global.dyn_ref::<web_sys::WorkerGlobalScope>() {
            Some(worker) => worker.performance(),
            None => global.dyn_ref::<web_sys::Window>().and_then(|w| w.performance()),
        };
        performance.map_or_else(js_sys::Date::now, |p| p.now())
    }
}
