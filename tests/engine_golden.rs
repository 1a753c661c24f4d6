//! tract's scores for the shipped models must match onnxruntime's golden outputs, one reading
//! per call (how a live sensor is scored) and as one batch.
#![cfg(not(target_arch = "wasm32"))] // native; the browser runs tests/web_*.rs
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

mod common;

use common::{assert_close, golden, F32_MODEL, INT8_MODEL};
use edge_anomaly::{Engine, EngineConfig, Int8Mode};

fn engine(bytes: &[u8]) -> Engine {
    Engine::load(bytes, EngineConfig::default()).expect("shipped model loads")
}

#[test]
fn features_are_read_from_the_model() {
    let g = golden();
    assert_eq!(engine(F32_MODEL).features(), g.features.len());
    assert_eq!(engine(INT8_MODEL).features(), g.features.len());
}

#[test]
fn f32_single_rows_match_onnxruntime() {
    let (g, e) = (golden(), engine(F32_MODEL));
    let got: Vec<f32> = g.rows.iter().map(|r| e.score(r).expect("scores")[0]).collect();
    assert_close(&got, &g.scores.f32, g.tolerance, "f32 per row");
}

#[test]
fn int8_single_rows_match_onnxruntime_on_dequantized_weights() {
    let (g, e) = (golden(), engine(INT8_MODEL));
    assert_eq!(e.dequantized_matmuls(), 6, "every quantize_dynamic matmul is rewritten");
    let got: Vec<f32> = g.rows.iter().map(|r| e.score(r).expect("scores")[0]).collect();
    assert_close(&got, &g.scores.int8_weight_only, g.tolerance, "int8 per row");
}

#[test]
fn int8_as_written_matches_onnxruntime_per_row() {
    let config = EngineConfig { int8: Int8Mode::AsWritten, ..EngineConfig::default() };
    let e = Engine::load(INT8_MODEL, config).expect("loads");
    assert_eq!(e.dequantized_matmuls(), 0);
    let g = golden();
    let got: Vec<f32> = g.rows.iter().map(|r| e.score(r).expect("scores")[0]).collect();
    assert_close(&got, &g.scores.int8, g.tolerance, "int8 as written, per row");
}

#[test]
fn f32_batch_matches_onnxruntime_and_single_rows() {
    let (g, e) = (golden(), engine(F32_MODEL));
    let batch = e.score(&g.flat_rows()).expect("scores");
    assert_close(&batch, &g.batch_scores.f32, g.tolerance, "f32 batch");
    let single: Vec<f32> = g.rows.iter().map(|r| e.score(r).expect("scores")[0]).collect();
    assert_close(&batch, &single, g.tolerance, "f32 batch vs single");
}

#[test]
fn int8_batch_matches_onnxruntime_and_single_rows() {
    // With float activations a reading scores the same alone or in a batch.
    let (g, e) = (golden(), engine(INT8_MODEL));
    let batch = e.score(&g.flat_rows()).expect("scores");
    assert_close(&batch, &g.batch_scores.int8_weight_only, g.tolerance, "int8 batch");
    assert_close(&batch, &g.scores.int8_weight_only, g.tolerance, "int8 batch vs single");
}

#[test]
fn int8_as_written_batch_matches_onnxruntime() {
    // Activations quantized with one scale per call: a batch legitimately differs from single
    // rows, and must still match onnxruntime's batch result.
    let config = EngineConfig { int8: Int8Mode::AsWritten, ..EngineConfig::default() };
    let e = Engine::load(INT8_MODEL, config).expect("loads");
    let g = golden();
    let batch = e.score(&g.flat_rows()).expect("scores");
    assert_close(&batch, &g.batch_scores.int8, g.tolerance, "int8 as written, batch");
}

#[test]
fn float_models_are_not_rewritten() {
    assert_eq!(engine(F32_MODEL).dequantized_matmuls(), 0);
}

#[test]
fn anomalies_score_above_normal_rows() {
    // Sanity on the shipped model itself: the golden mix holds labelled anomalies.
    let g = golden();
    let e = engine(INT8_MODEL);
    let labels: Vec<u8> =
        serde_json::from_str::<serde_json::Value>(include_str!("../models/shuttle/golden.json"))
            .expect("json")["labels"]
            .as_array()
            .expect("labels")
            .iter()
            .map(|v| v.as_u64().unwrap_or(0) as u8)
            .collect();
    let scores = e.score(&g.flat_rows()).expect("scores");
    let max_normal =
        scores.iter().zip(&labels).filter(|(_, &l)| l == 0).map(|(s, _)| *s).fold(0.0, f32::max);
    let anomalies: Vec<f32> =
        scores.iter().zip(&labels).filter(|(_, &l)| l == 1).map(|(s, _)| *s).collect();
    assert!(!anomalies.is_empty());
    let above = anomalies.iter().filter(|&&s| s > max_normal).count();
    assert!(
        above * 2 > anomalies.len(),
        "most anomalies outscore every normal row: {above}/{}",
        anomalies.len()
    );
}
