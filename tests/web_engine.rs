//! The engine inside a real browser service worker, through the same wasm-bindgen handle the
//! app uses: the shipped models load from bytes and match onnxruntime's golden outputs, and
//! their per-column shares of a score match onnxruntime's reconstruction terms.
#![cfg(target_arch = "wasm32")]
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

mod common;

use common::{assert_close, golden, F32_MODEL, INT8_MODEL};
use edge_anomaly::update::ModelMetadata;
use edge_anomaly::web::AnomalyEngine;
use js_sys::Float32Array;
use serde::Deserialize;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_service_worker);

/// onnxruntime's shares for the shuttle models (see tests/engine_contributions.rs).
const CONTRIBUTIONS_JSON: &str = include_str!("fixtures/contributions/shuttle.json");
const METADATA_JSON: &str = include_str!("../models/shuttle/metadata.json");

#[derive(Deserialize)]
struct Contributions {
    rows: Vec<Vec<f32>>,
    /// The channel a fault was injected into, for the rows that have one.
    injected: Vec<Option<Injected>>,
    f32: Shares,
    int8_weight_only: Shares,
}

#[derive(Deserialize)]
struct Injected {
    channel: usize,
}

#[derive(Deserialize)]
struct Shares {
    shares: Vec<Vec<f32>>,
}

/// One reading's scores, column shares and guard share, as `explainInto` writes them.
struct Explained {
    scores: Vec<f32>,
    shares: Vec<f32>,
    guard: Vec<f32>,
}

fn explain(e: &AnomalyEngine, rows: &[f32]) -> Explained {
    let f = e.features().expect("features");
    let n = rows.len() / f;
    let buffer = |len: usize| Float32Array::new_with_length(len as u32);
    let (scores, shares, guard) = (buffer(n), buffer(n * f), buffer(n));
    e.explain_into(rows, &scores, &shares, &guard).expect("explains");
    Explained { scores: scores.to_vec(), shares: shares.to_vec(), guard: guard.to_vec() }
}

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

/// The golden rows' shares are each in `[0, 1]` and, with the guard's, sum to 1; the scores are
/// `score`'s (and `scoreInto`'s); per row and as one batch (tiles of four and a tail) give the
/// same answer.
#[wasm_bindgen_test]
fn explain_shares_sum_to_one_and_scores_match() {
    let g = golden();
    let f = g.features.len();
    for bytes in [F32_MODEL, INT8_MODEL] {
        let e = loaded(bytes);
        let flat = g.flat_rows();
        let x = explain(&e, &flat);
        assert_eq!(x.scores, e.score(&flat).expect("scores"), "explain scores are score's");
        let into = Float32Array::new_with_length(x.scores.len() as u32);
        e.score_into(&flat, &into).expect("scores into a buffer");
        assert_eq!(into.to_vec(), x.scores, "scoreInto writes score's");
        for (i, &score) in x.scores.iter().enumerate() {
            let shares = &x.shares[i * f..(i + 1) * f];
            let parts = shares.iter().chain([&x.guard[i]]);
            assert!(parts.clone().all(|s| (0.0..=1.0).contains(s)), "row {i}: {shares:?}");
            let total: f32 = parts.sum();
            let want = if score > 0.0 { 1.0 } else { 0.0 };
            assert!((total - want).abs() < 1e-3, "row {i}: shares sum to {total}");
            let one = explain(&e, &g.rows[i]);
            assert_eq!(one.scores[0], score, "row {i} alone");
            for (a, b) in one.shares.iter().zip(shares) {
                assert!((a - b).abs() < 1e-6, "row {i} alone: {a} vs {b}");
            }
        }
    }
}

/// The shares are the squared reconstruction error of each column over `F × score`, as
/// onnxruntime computes them on the same graph.
#[wasm_bindgen_test]
fn explain_matches_onnxruntime_terms() {
    let r: Contributions = serde_json::from_str(CONTRIBUTIONS_JSON).expect("reference parses");
    let flat: Vec<f32> = r.rows.concat();
    for (bytes, want) in [(F32_MODEL, &r.f32), (INT8_MODEL, &r.int8_weight_only)] {
        let x = explain(&loaded(bytes), &flat);
        let got = x.shares.chunks_exact(r.rows[0].len());
        for (i, (got, want)) in got.zip(&want.shares).enumerate() {
            for (j, (a, b)) in got.iter().zip(want).enumerate() {
                assert!((a - b).abs() <= 2e-3, "row {i} column {j}: {a} vs onnxruntime {b}");
            }
        }
    }
}

/// tract's path (the fallback for graphs the dense kernel does not cover) in the browser: its
/// terms plan gives onnxruntime's shares too.
#[wasm_bindgen_test]
fn tract_explain_matches_onnxruntime_terms() {
    use edge_anomaly::{Backend, Engine, EngineConfig};
    let r: Contributions = serde_json::from_str(CONTRIBUTIONS_JSON).expect("reference parses");
    let flat: Vec<f32> = r.rows.concat();
    let config = EngineConfig { backend: Backend::Tract, ..EngineConfig::default() };
    for (bytes, want) in [(F32_MODEL, &r.f32), (INT8_MODEL, &r.int8_weight_only)] {
        let e = Engine::load(bytes, config).expect("loads");
        assert_eq!(e.backend().name(), "tract");
        let x = e.explain(&flat).expect("explains");
        for (i, want) in want.shares.iter().enumerate() {
            let (got, _) = x.row(i).expect("row");
            for (j, (a, b)) in got.iter().zip(want).enumerate() {
                assert!((a - b).abs() <= 2e-3, "row {i} column {j}: {a} vs onnxruntime {b}");
            }
        }
    }
}

/// `repair` on the readings with a fault injected into one channel: one share per column in
/// `[0, 1]`, and the faulty channel named first (natively, on all 32).
#[wasm_bindgen_test]
fn repair_names_the_injected_channel() {
    let r: Contributions = serde_json::from_str(CONTRIBUTIONS_JSON).expect("reference parses");
    let m: ModelMetadata = serde_json::from_str(METADATA_JSON).expect("metadata parses");
    let stats = m.normalization.expect("the shuttle metadata has training statistics");
    let (centres, spreads) = (&stats.mean, &stats.std);
    for bytes in [F32_MODEL, INT8_MODEL] {
        let e = loaded(bytes);
        let (mut faults, mut named) = (0, 0);
        for (row, injected) in r.rows.iter().zip(&r.injected) {
            let Some(fault) = injected else { continue };
            let drops = e.repair(row, centres, spreads).expect("repairs");
            assert_eq!(drops.len(), row.len());
            assert!(drops.iter().all(|d| (0.0..=1.0).contains(d)), "{drops:?}");
            let top = drops.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map(|(j, _)| j);
            faults += 1;
            named += usize::from(top == Some(fault.channel));
        }
        assert!(faults >= 30 && named + 2 >= faults, "named {named} of {faults} faults");
    }
}

#[wasm_bindgen_test]
fn explain_and_repair_errors_reach_js_with_stable_codes() {
    let e = loaded(F32_MODEL);
    let row = [1.0f32; 9];
    let buffer = |len: u32| Float32Array::new_with_length(len);
    let (one, nine) = (buffer(1), buffer(9));
    let err = e.explain_into(&row, &buffer(2), &nine, &one).expect_err("2 score slots");
    assert_eq!(code_of(err), "OUTPUT_LENGTH");
    let err = e.explain_into(&row, &one, &buffer(8), &one).expect_err("8 share slots");
    assert_eq!(code_of(err), "OUTPUT_LENGTH");
    let err = e.explain_into(&row, &one, &nine, &buffer(0)).expect_err("no guard slot");
    assert_eq!(code_of(err), "OUTPUT_LENGTH");
    let err = e.explain_into(&row[..8], &one, &nine, &one).expect_err("8 values");
    assert_eq!(code_of(err), "WRONG_LENGTH");
    assert_eq!(code_of(e.score_into(&row, &buffer(2)).expect_err("2 slots")), "OUTPUT_LENGTH");
    assert_eq!(code_of(e.repair(&row, &row, &row[..8]).expect_err("axes")), "UNEXPLAINED");
    assert_eq!(code_of(e.repair(&row[..8], &row[..8], &row[..8]).expect_err("8")), "WRONG_LENGTH");
    let empty = AnomalyEngine::new(0);
    assert_eq!(code_of(empty.repair(&row, &row, &row).expect_err("no model")), "NOT_LOADED");
}
