//! The browser environment the outbox runs on, inside a real service worker: where its
//! randomness comes from.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

use edge_anomaly::outbox::Env;
use edge_anomaly::web::BrowserEnv;
use wasm_bindgen::JsValue;
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_service_worker);

/// Replaces `target[name]` with `f` for the duration of `body`, restoring it afterwards.
fn with_stub<R>(target: &JsValue, name: &str, f: &js_sys::Function, body: impl FnOnce() -> R) -> R {
    let original = js_sys::Reflect::get(target, &name.into()).expect("property");
    js_sys::Reflect::set(target, &name.into(), f).expect("stub");
    let out = body();
    js_sys::Reflect::set(target, &name.into(), &original).expect("restore");
    out
}

#[wasm_bindgen_test]
fn random_u64_comes_from_crypto_get_random_values() {
    let global = js_sys::global();
    let crypto = js_sys::Reflect::get(&global, &"crypto".into()).expect("crypto");
    let math = js_sys::Reflect::get(&global, &"Math".into()).expect("Math");
    // A recognisable crypto source and a Math.random that would give 0: the id must carry the
    // crypto pattern, so it cannot have come from Math.random.
    let fill = js_sys::Function::new_with_args("buf", "buf.fill(0xab); return buf;");
    let zero = js_sys::Function::new_no_args("return 0;");
    let value = with_stub(&crypto, "getRandomValues", &fill, || {
        with_stub(&math, "random", &zero, || BrowserEnv.random_u64())
    });
    assert_eq!(value, 0xabab_abab_abab_abab);
    // And with the real source, two draws differ.
    assert_ne!(BrowserEnv.random_u64(), BrowserEnv.random_u64());
}
