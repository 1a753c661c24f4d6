//! One flush at a time per origin, not per [`crate::outbox::Syncer`] object: every flush runs
//! inside the Web Locks API lock [`LOCK_NAME`], requested with `ifAvailable`. Locks are shared by
//! every page and worker of the origin, so a newly installed worker (whose own syncer is idle)
//! does not send beside the active worker's flush, and a `configure` that replaces the syncer
//! does not either. A flush that finds the lock taken does nothing and says so.

use std::future::Future;

use js_sys::{Function, Object, Promise, Reflect};
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{future_to_promise, JsFuture};

/// The lock every flush holds; pages may take it too (tests do, to hold flushes back).
pub const LOCK_NAME: &str = "edge-outbox-flush";

#[wasm_bindgen]
extern "C" {
    /// `navigator.locks` (web-sys has it only behind its unstable-API flag).
    type LockManager;

    #[wasm_bindgen(method, catch)]
    fn request(
        this: &LockManager,
        name: &str,
        options: &JsValue,
        callback: &Function,
    ) -> Result<Promise, JsValue>;
}

fn lock_manager() -> Option<LockManager> {
    let navigator = Reflect::get(&js_sys::global(), &"navigator".into()).ok()?;
    let locks = Reflect::get(&navigator, &"locks".into()).ok()?;
    (!locks.is_undefined() && !locks.is_null()).then(|| locks.unchecked_into())
}

/// Runs `work` while holding [`LOCK_NAME`] and resolves to its result (which must not be
/// `null`), or to `Ok(None)` at once when another context holds the lock. Where the browser has no Web Locks, `work` runs
/// unguarded (the syncer's own flag still keeps one flush per worker).
pub async fn with_flush_lock<F>(work: F) -> Result<Option<JsValue>, JsValue>
where
    F: Future<Output = Result<JsValue, JsValue>> + 'static,
{
    let Some(locks) = lock_manager() else { return work.await.map(Some) };
    let options = Object::new();
    Reflect::set(&options, &"ifAvailable".into(), &JsValue::TRUE)?;
    // The lock is granted (or refused, as `null`) to this callback; it is held until the
    // promise the callback returns settles.
    let mut work = Some(work);
    let granted: Closure<dyn FnMut(JsValue) -> Promise> =
        Closure::new(move |lock: JsValue| match work.take() {
            Some(work) if !lock.is_null() => future_to_promise(work),
            _ => Promise::resolve(&JsValue::NULL),
        });
    let promise = locks.request(LOCK_NAME, &options, granted.as_ref().unchecked_ref())?;
    let value = JsFuture::from(promise).await?;
    drop(granted);
    Ok(Some(value).filter(|v| !v.is_null()))
}
