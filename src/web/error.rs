//! Turns core errors into JavaScript `Error`s carrying a stable `code` property, so JS branches
//! on `err.code` ("NON_FINITE", "BATCH_TOO_LARGE", …) instead of parsing messages.

use wasm_bindgen::{JsCast, JsValue};

use crate::engine::EngineError;
use crate::update::UpdateError;

/// A JS `Error` with `name = "EdgeAnomalyError"`, the message, and `code`.
pub fn js_error(code: &str, message: &str) -> JsValue {
    let err = js_sys::Error::new(message);
    err.set_name("EdgeAnomalyError");
    // Setting a property on a fresh Error object cannot fail; if it ever did, the message
    // still carries the information.
    let _ = js_sys::Reflect::set(&err, &JsValue::from_str("code"), &JsValue::from_str(code));
    err.unchecked_into()
}

impl From<EngineError> for JsValue {
    fn from(e: EngineError) -> JsValue {
        js_error(e.code(), &e.to_string())
    }
}

/// A refused model package: `code` is the kind (`MODEL_SIGNATURE`, …), `detail` the signing or
/// engine error underneath (`BAD_SIGNATURE`, `MODEL_TOO_LARGE`, …).
impl From<UpdateError> for JsValue {
    fn from(e: UpdateError) -> JsValue {
        let err = js_error(e.code(), &e.to_string());
        let _ = js_sys::Reflect::set(
            &err,
            &JsValue::from_str("detail"),
            &JsValue::from_str(e.detail_code()),
        );
        err
    }
}
