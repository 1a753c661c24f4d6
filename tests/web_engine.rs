//! The engine inside a real browser service worker, through the same wasm-bindgen handle the
//! app uses: the shipped models load from bytes and match onnxruntime's golden outputs.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

mod common;

use common::{assert_close, golden, F32_MODEL, INT8_MODEL};
use edge_anomaly::web::AnomalyEngine;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_service_worker);

fn loaded(bytes: &[u8]) -> AnomalyEngine {
    let mut e = AnomalyEngine::new(0);
    e.load(bytes).expect("shipped model loads");
    e
}

fn code_of(err: JsValue) -> String {
    js_sys::Reflect::get(&err, &"code".into()).ok().and_then(|c| c.as_string()).unwrap_or_default()
}

#[wasm_bindgen_test]
fn runs_inside_a_service_worker() {
    assert!(js_sys::global().dyn_into::<web_sys::ServiceWorkerGlobalScope>().is_ok());
}

#[wasm_bindgen_test]
fn int8_model_matches_golden_per_row_and_batch() {
    let (g, e) = (golden(), loaded(INT8_MODEL));
    assert_eq!(e.features().expect("features"), g.features.len());
    assert_eq!(e.backend().expect("backend"), "dense", "the fused kernel runs the shipped model");
    let single: Vec<f32> = g.rows.iter().map(|r| e.score(r).expect("scores")[0]).collect();
    assert_close(&single, &g.scores.int8_weight_only, g.tolerance, "int8 per row (browser)");
    let batch = e.score(&g.flat_rows()).expect("scores");
    assert_close(&batch, &g.batch_scores.int8_weight_only, g.tolerance, "int8 batch (browser)");
}

#[wasm_bindgen_test]
fn f32_model_matches_golden() {
    let (g, e) = (golden(), loaded(F32_MODEL));
    assert_eq!(e.backend().expect("backend"), "dense");
    let batch = e.score(&g.flat_rows()).expect("scores");
    assert_close(&batch, &g.batch_scores.f32, g.tolerance, "f32 batch (browser)");
    let single: Vec<f32> = g.rows.iter().map(|r| e.score(r).expect("scores")[0]).collect();
    assert_close(&single, &g.scores.f32, g.tolerance, "f32 per row (browser)");
    // Five readings: one tile of four and a lone tail reading in the same call.
    let five = e.score(&g.flat_rows()[..5 * g.features.len()]).expect("scores");
    assert_close(&five, &g.scores.f32[..5], g.tolerance, "f32 tile + tail (browser)");
}

#[wasm_bindgen_test]
fn errors_reach_js_with_stable_codes() {
    let mut e = AnomalyEngine::new(2);
    assert_eq!(code_of(e.score(&[1.0; 9]).expect_err("no model")), "NOT_LOADED");
    assert_eq!(code_of(e.load(b"tampered").expect_err("garbage")), "MODEL_PARSE");
    e.load(INT8_MODEL).expect("loads");
    assert_eq!(code_of(e.score(&[1.0; 8]).expect_err("short")), "WRONG_LENGTH");
    assert_eq!(code_of(e.score(&[1.0; 27]).expect_err("3 rows > cap 2")), "BATCH_TOO_LARGE");
    let mut row = [1.0f32; 9];
    row[4] = f32::NAN;
    let err = e.score(&row).expect_err("NaN");
    assert!(err.is_instance_of::<js_sys::Error>());
    assert_eq!(code_of(err), "NON_FINITE");
}
