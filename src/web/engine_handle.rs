//! The one opaque handle JavaScript holds: load model bytes, score a `Float32Array`, and say
//! what each input column contributes to a score.
//!
//! Output buffers are taken as `Float32Array`s and filled with one copy out of wasm memory: a
//! `&mut [f32]` would be allocated in wasm, copied in and copied back on every call, which in
//! Chromium cost about 2 µs per buffer, more than the dense kernel takes to score a reading.

use js_sys::Float32Array;
use wasm_bindgen::prelude::*;

use crate::engine::{Axis, EngineConfig, EngineError, ModelSlot};

/// An anomaly model slot, as seen from JavaScript.
///
/// ```js
/// const engine = new AnomalyEngine(4096);
/// engine.load(new Uint8Array(await (await fetch('model.int8.onnx')).arrayBuffer()));
/// const scores = engine.score(new Float32Array(rows)); // one score per reading
/// engine.explainInto(rows, scores, shares, guard); // plus each column's share of each score
/// ```
#[wasm_bindgen]
pub struct AnomalyEngine {
    slot: ModelSlot,
    config: EngineConfig,
}

#[wasm_bindgen]
impl AnomalyEngine {
    /// An empty engine; `max_batch` caps readings per `score` call (0 = default).
    #[wasm_bindgen(constructor)]
    pub fn new(max_batch: usize) -> AnomalyEngine {
        super::panic::install();
        let mut config = EngineConfig::default();
        if max_batch > 0 {
            config.max_batch = max_batch;
        }
        AnomalyEngine { slot: ModelSlot::new(), config }
    }

    /// Loads ONNX bytes. On failure the previous model (if any) stays active.
    pub fn load(&mut self, bytes: &[u8]) -> Result<(), JsValue> {
        self.slot.load(bytes, self.config)?;
        Ok(())
    }

    /// Whether a model is loaded.
    #[wasm_bindgen(getter)]
    pub fn loaded(&self) -> bool {
        self.slot.engine().is_ok()
    }

    /// Features per reading of the loaded model.
    #[wasm_bindgen(getter)]
    pub fn features(&self) -> Result<usize, JsValue> {
        Ok(self.slot.engine()?.features())
    }

    /// Scores a row-major `Float32Array` of one or more readings; returns one score per reading.
    pub fn score(&self, rows: &[f32]) -> Result<Vec<f32>, JsValue> {
        Ok(self.slot.score(rows)?)
    }

    /// Scores into `out` (one slot per reading) instead of allocating a new array: the call a
    /// hot loop makes with buffers it reuses.
    #[wasm_bindgen(js_name = scoreInto)]
    pub fn score_into(&self, rows: &[f32], out: &Float32Array) -> Result<(), JsValue> {
        let mut scores = vec![0f32; out.length() as usize];
        self.slot.engine()?.score_into(rows, &mut scores)?;
        out.copy_from(&scores);
        Ok(())
    }

    /// Scores like `scoreInto` and writes each reading's shares of its score: `shares` gets one
    /// per input column of each reading (row-major, `features` per reading), `guard` one per
    /// reading (the range guard's share, 0 for a model without one). A reading's shares and
    /// guard share sum to 1 (all 0 for a score of 0). `UNEXPLAINED` for a model whose score is
    /// not a reconstruction error the engine can break down.
    #[wasm_bindgen(js_name = explainInto)]
    pub fn explain_into(
        &self,
        rows: &[f32],
        scores: &Float32Array,
        shares: &Float32Array,
        guard: &Float32Array,
    ) -> Result<(), JsValue> {
        let x = self.slot.engine()?.explain(rows)?;
        let n = x.scores.len();
        for len in [scores.length(), guard.length()].map(|l| l as usize) {
            if len != n {
                return Err(EngineError::OutputLength { len, rows: n }.into());
            }
        }
        if shares.length() as usize != x.shares.len() {
            let message = format!(
                "shares buffer has {} slots for {n} readings of {} columns",
                shares.length(),
                x.columns
            );
            return Err(super::js_error("OUTPUT_LENGTH", &message));
        }
        scores.copy_from(&x.scores);
        shares.copy_from(&x.shares);
        guard.copy_from(&x.guard);
        Ok(())
    }

    /// For one reading the model flags, how much of its score setting each column alone to the
    /// value that fits best removes: one share per column, in `[0, 1]`. `centres` and `spreads`
    /// give each column's search range (its training mean and standard deviation, in the units
    /// the model reads). Scores `features × 13` readings, so it is for flagged readings only.
    pub fn repair(
        &self,
        row: &[f32],
        centres: &[f32],
        spreads: &[f32],
    ) -> Result<Vec<f32>, JsValue> {
        if centres.len() != spreads.len() {
            let why = format!("{} centres and {} spreads", centres.len(), spreads.len());
            return Err(EngineError::Unexplained(why).into());
        }
        let axes: Vec<Axis> =
            centres.iter().zip(spreads).map(|(&centre, &spread)| Axis { centre, spread }).collect();
        Ok(self.slot.engine()?.repair(row, &axes)?)
    }

    /// How many int8 matmuls the load rewrote to float matmuls on dequantized weights.
    #[wasm_bindgen(getter, js_name = dequantizedMatmuls)]
    pub fn dequantized_matmuls(&self) -> Result<usize, JsValue> {
        Ok(self.slot.engine()?.dequantized_matmuls())
    }

    /// Which implementation scores the loaded model: `"dense"` (the fused MLP autoencoder
    /// kernel, checked against tract at load) or `"tract"`.
    #[wasm_bindgen(getter)]
    pub fn backend(&self) -> Result<String, JsValue> {
        Ok(self.slot.engine()?.backend().name().to_string())
    }
}
