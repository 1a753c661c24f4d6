//! Size probe: the smallest wasm-bindgen crate that loads a model and scores rows (see ../run.sh).
//! Deliberately the same code as ../onnx/src/lib.rs except for the loader: the A/B is the point.
use tract_nnef::prelude::*;
use wasm_bindgen::prelude::*;

#[wasm_bindgen]
pub fn score(model: &[u8], rows: Vec<f32>, features: usize) -> Result<Vec<f32>, JsError> {
    let m = tract_nnef::nnef()
        .model_for_read(&mut &*model)
        .map_err(|e| JsError::new(&e.to_string()))?
        .into_optimized()
        .map_err(|e| JsError::new(&e.to_string()))?
        .into_runnable()
        .map_err(|e| JsError::new(&e.to_string()))?;
    let n = rows.len() / features;
    let x = tract_ndarray::Array2::from_shape_vec((n, features), rows)
        .map_err(|e| JsError::new(&e.to_string()))?;
    let out = m.run(tvec!(Tensor::from(x).into())).map_err(|e| JsError::new(&e.to_string()))?;
    Ok(out[0]
        .try_as_plain_ram()
        .and_then(|v| v.as_slice::<f32>())
        .map_err(|e| JsError::new(&e.to_string()))?
        .to_vec())
}
