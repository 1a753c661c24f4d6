//! The one opaque handle JavaScript holds: load model bytes, score a `Float32Array`.

use wasm_bindgen::prelude::*;

use crate::engine::{EngineConfig, ModelSlot};

/// An anomaly model slot, as seen from JavaScript.
///
/// ```js
/// const engine = new AnomalyEngine(4096);
/// engine.load(new Uint8Array(await (await fetch('model.int8.onnx')).arrayBuffer()));
/// const scores = engine.score(new Float32Array(rows)); // one score per reading
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
    pub fn score_into(&self, rows: &[f32], out: &mut [f32]) -> Result<(), JsValue> {
        Ok(self.slot.engine()?.score_into(rows, out)?)
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
