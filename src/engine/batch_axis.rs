//! One name for the batch axis throughout the graph.
//!
//! The contract rebinds the input's batch axis to [`BATCH_SYMBOL`]. Files often also declare the
//! shapes of intermediate values (`value_info`; onnxruntime's `quantize_dynamic` writes them for
//! every tensor), naming the batch axis as their exporter did (`batch`, `N`, …). tract cannot
//! unify the two names and refuses the graph, so before anything is parsed the input's batch
//! name is replaced by [`BATCH_SYMBOL`] wherever the graph declares a shape.

use crate::onnx::pb::{self, tensor_shape_proto::dimension::Value};

use super::contract::BATCH_SYMBOL;

/// Renames the symbol of the input's first axis to [`BATCH_SYMBOL`] in every declared shape;
/// returns whether anything changed.
pub(super) fn unify(model: &mut pb::ModelProto) -> bool {
    let Some(graph) = model.graph.as_mut() else { return false };
    let init = |name: &str| graph.initializer.iter().any(|t| t.name == name);
    let inputs: Vec<&pb::ValueInfoProto> = graph.input.iter().filter(|i| !init(&i.name)).collect();
    let [input] = inputs[..] else { return false };
    let Some(Value::DimParam(name)) =
        dims(input).and_then(|d| d.first()).and_then(|d| d.value.clone())
    else {
        return false;
    };
    if name == BATCH_SYMBOL {
        return false;
    }
    let mut changed = false;
    for value in
        graph.input.iter_mut().chain(graph.output.iter_mut()).chain(graph.value_info.iter_mut())
    {
        for dim in dims_mut(value) {
            if matches!(&dim.value, Some(Value::DimParam(p)) if *p == name) {
                dim.value = Some(Value::DimParam(BATCH_SYMBOL.into()));
                changed = true;
            }
        }
    }
    changed
}

fn dims(value: &pb::ValueInfoProto) -> Option<&Vec<pb::tensor_shape_proto::Dimension>> {
    let pb::type_proto::Value::TensorType(t) = value.r#type.as_ref()?.value.as_ref()?;
    t.shape.as_ref().map(|s| &s.dim)
}

fn dims_mut(
    value: &mut pb::ValueInfoProto,
) -> impl Iterator<Item = &mut pb::tensor_shape_proto::Dimension> {
    let dims = value.r#type.as_mut().and_then(|t| t.value.as_mut()).and_then(|v| {
        let pb::type_proto::Value::TensorType(t) = v;
        t.shape.as_mut().map(|s| &mut s.dim)
    });
    dims.into_iter().flatten()
}
