//! Shared fixtures for the engine tests, native and in the browser: the shipped models and the
//! golden vectors onnxruntime produced for them (see `models/edge_pipeline/pipeline.py`).
//! Everything is compiled in with `include_*!` so the wasm tests need no file system.
#![allow(dead_code, reason = "each test binary uses a different subset")]

use serde::Deserialize;

pub const F32_MODEL: &[u8] = include_bytes!("../../models/shuttle/model.f32.onnx");
pub const INT8_MODEL: &[u8] = include_bytes!("../../models/shuttle/model.int8.onnx");
const GOLDEN_JSON: &str = include_str!("../../models/shuttle/golden.json");

#[derive(Deserialize)]
pub struct Golden {
    pub features: Vec<String>,
    pub rows: Vec<Vec<f32>>,
    pub scores: PerModel,
    pub batch_scores: PerModel,
    pub tolerance: Tolerance,
}

#[derive(Deserialize)]
pub struct PerModel {
    pub f32: Vec<f32>,
    /// The int8 model as written: activations quantized per call (onnxruntime's semantics).
    pub int8: Vec<f32>,
    /// The int8 model with weights dequantized into float matmuls: the engine's default.
    pub int8_weight_only: Vec<f32>,
}

#[derive(Deserialize, Clone, Copy)]
pub struct Tolerance {
    pub rtol: f32,
    pub atol: f32,
}

pub fn golden() -> Golden {
    match serde_json::from_str(GOLDEN_JSON) {
        Ok(g) => g,
        Err(e) => panic!("golden.json does not parse: {e}"),
    }
}

impl Golden {
    /// All golden rows as one row-major buffer.
    pub fn flat_rows(&self) -> Vec<f32> {
        self.rows.iter().flatten().copied().collect()
    }
}

/// Asserts `got` matches `want` element-wise within `|got - want| <= atol + rtol * |want|`.
pub fn assert_close(got: &[f32], want: &[f32], tol: Tolerance, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let bound = tol.atol + tol.rtol * w.abs();
        assert!(
            (g - w).abs() <= bound,
            "{what}: row {i}: tract {g} vs onnxruntime {w} (|diff| {} > {bound})",
            (g - w).abs()
        );
    }
}
