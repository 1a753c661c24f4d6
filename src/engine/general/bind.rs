//! The contract checked by tract: the model's input and output as tract infers them, and the
//! graph typed with the batch axis bound to one symbol.

use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

use crate::engine::contract::{ModelContract, BATCH_SYMBOL};
use crate::engine::error::{ContractViolation, EngineError};

/// Checks `model` against the contract and returns it typed, with the batch axis symbolic.
pub(crate) fn bind(model: InferenceModel) -> Result<(TypedModel, ModelContract), EngineError> {
    if model.inputs.len() != 1 {
        return Err(ContractViolation::InputCount(model.inputs.len()).into());
    }
    if model.outputs.len() != 1 {
        return Err(ContractViolation::OutputCount(model.outputs.len()).into());
    }
    let fact = model.input_fact(0).map_err(|e| EngineError::Parse(format!("{e:#}")))?.clone();
    match fact.datum_type.concretize() {
        Some(dt) if dt == f32::datum_type() => {}
        other => return Err(ContractViolation::InputType(describe(other)).into()),
    }
    let dims: Vec<_> = fact.shape.dims().cloned().collect();
    if fact.shape.is_open() || dims.len() != 2 {
        return Err(ContractViolation::InputShape(fact.format_dt_shape()).into());
    }
    let features = dims[1]
        .concretize()
        .and_then(|d| d.as_i64())
        .and_then(|d| usize::try_from(d).ok())
        .filter(|&f| f > 0)
        .ok_or_else(|| ContractViolation::FeatureAxis(fact.format_dt_shape()))?;

    let input_name = model.node(model.inputs[0].node).name.clone();
    let output_name = model.node(model.outputs[0].node).name.clone();
    let batch = model.symbols.sym(BATCH_SYMBOL);
    let typed = bind_batch_input(model, features)?;

    let out = typed.output_fact(0).map_err(|e| EngineError::Parse(format!("{e:#}")))?;
    if out.datum_type != f32::datum_type() {
        return Err(ContractViolation::OutputType(format!("{:?}", out.datum_type)).into());
    }
    if out.rank() != 1 || out.shape[0] != batch.to_dim() {
        return Err(ContractViolation::OutputShape(format!("{:?}", out.shape)).into());
    }
    Ok((typed, ModelContract { input_name, output_name, features, reconstruction_output: false }))
}

/// Binds the input to `[batch, features]` float32, the batch axis symbolic, and types the graph.
pub(crate) fn bind_batch_input(
    mut model: InferenceModel,
    features: usize,
) -> Result<TypedModel, EngineError> {
    let batch = model.symbols.sym(BATCH_SYMBOL);
    model
        .set_input_fact(0, f32::fact([batch.to_dim(), features.to_dim()]).into())
        .map_err(|e| EngineError::Parse(format!("{e:#}")))?;
    let typed = model
        .into_typed()
        .map_err(|e| ContractViolation::Typing { features, reason: format!("{e:#}") })?;
    Ok(typed)
}

fn describe(dt: Option<DatumType>) -> String {
    dt.map(|d| format!("{d:?}")).unwrap_or_else(|| "unknown".into())
}
