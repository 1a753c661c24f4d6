//! The contract as the graph declares it: what the small engine (no tract, so no shape
//! inference) reads instead of tract's binding; the dense pattern matcher then checks what the
//! graph computes.

use super::contract::ModelContract;
use super::error::{ContractViolation, EngineError};
use crate::onnx::pb::{self, tensor_proto::DataType, tensor_shape_proto::dimension::Value};

/// Reads the contract from the graph's declared input and output.
pub(super) fn from_proto(model: &pb::ModelProto) -> Result<ModelContract, EngineError> {
    let graph =
        model.graph.as_ref().ok_or_else(|| EngineError::Parse("model has no graph".into()))?;
    let init = |name: &str| graph.initializer.iter().any(|t| t.name == name);
    let inputs: Vec<&pb::ValueInfoProto> = graph.input.iter().filter(|i| !init(&i.name)).collect();
    let ([input], [output]) = (&inputs[..], &graph.output[..]) else {
        return Err(if inputs.len() != 1 {
            ContractViolation::InputCount(inputs.len())
        } else {
            ContractViolation::OutputCount(graph.output.len())
        }
        .into());
    };
    let (in_type, in_dims) = declared(input);
    if in_type != Some(DataType::Float as i32) {
        return Err(ContractViolation::InputType(type_name(in_type)).into());
    }
    let in_dims = in_dims.ok_or_else(|| ContractViolation::InputShape("no shape".into()))?;
    if in_dims.len() != 2 {
        return Err(ContractViolation::InputShape(format!("{in_dims:?}")).into());
    }
    let features = in_dims[1]
        .and_then(|d| usize::try_from(d).ok())
        .filter(|&f| f > 0)
        .ok_or_else(|| ContractViolation::FeatureAxis(format!("{in_dims:?}")))?;
    let (out_type, out_dims) = declared(output);
    if out_type.is_some_and(|t| t != DataType::Float as i32) {
        return Err(ContractViolation::OutputType(type_name(out_type)).into());
    }
    if let Some(dims) = out_dims.filter(|d| d.len() != 1) {
        return Err(ContractViolation::OutputShape(format!("{dims:?}")).into());
    }
    Ok(ModelContract {
        input_name: input.name.clone(),
        output_name: output.name.clone(),
        features,
        reconstruction_output: false,
    })
}

/// A value's declared element type and dimensions (`None` per symbolic dimension), where the
/// file declares them.
fn declared(value: &pb::ValueInfoProto) -> (Option<i32>, Option<Vec<Option<i64>>>) {
    let Some(pb::type_proto::Value::TensorType(t)) =
        value.r#type.as_ref().and_then(|t| t.value.as_ref())
    else {
        return (None, None);
    };
    let dims = t.shape.as_ref().map(|s| {
        s.dim
            .iter()
            .map(|d| match d.value {
                Some(Value::DimValue(v)) => Some(v),
                _ => None,
            })
            .collect()
    });
    ((t.elem_type != 0).then_some(t.elem_type), dims)
}

fn type_name(elem_type: Option<i32>) -> String {
    match elem_type.map(DataType::try_from) {
        Some(Ok(t)) => format!("{t:?}"),
        Some(Err(_)) | None => "unknown".into(),
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, reason = "a failed expectation is the test failure")]
mod tests {
    use super::*;

    fn value(name: &str, elem_type: DataType, dims: &[Option<i64>]) -> pb::ValueInfoProto {
        let dim = dims
            .iter()
            .map(|d| pb::tensor_shape_proto::Dimension {
                value: Some(match d {
                    Some(v) => Value::DimValue(*v),
                    None => Value::DimParam("N".into()),
                }),
                ..Default::default()
            })
            .collect();
        pb::ValueInfoProto {
            name: name.into(),
            r#type: Some(pb::TypeProto {
                value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                    elem_type: elem_type as i32,
                    shape: Some(pb::TensorShapeProto { dim }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn model(input: pb::ValueInfoProto, output: pb::ValueInfoProto) -> pb::ModelProto {
        let graph =
            pb::GraphProto { input: vec![input], output: vec![output], ..Default::default() };
        pb::ModelProto { graph: Some(graph), ..Default::default() }
    }

    #[test]
    fn reads_features_and_names_from_the_declared_values() {
        let m = model(
            value("x", DataType::Float, &[None, Some(9)]),
            value("score", DataType::Float, &[None]),
        );
        let c = from_proto(&m).expect("reads");
        assert_eq!((c.input_name.as_str(), c.output_name.as_str(), c.features), ("x", "score", 9));
    }

    #[test]
    fn refuses_what_breaks_the_contract() {
        let score = || value("s", DataType::Float, &[None]);
        let cases = [
            (model(value("x", DataType::Double, &[None, Some(9)]), score()), "MODEL_CONTRACT"),
            (model(value("x", DataType::Float, &[None, None]), score()), "MODEL_CONTRACT"),
            (model(value("x", DataType::Float, &[Some(9)]), score()), "MODEL_CONTRACT"),
            (
                model(
                    value("x", DataType::Float, &[None, Some(9)]),
                    value("s", DataType::Float, &[None, Some(9)]),
                ),
                "MODEL_CONTRACT",
            ),
        ];
        for (m, code) in cases {
            assert_eq!(from_proto(&m).expect_err("refused").code(), code);
        }
        assert_eq!(
            from_proto(&pb::ModelProto::default()).expect_err("refused").code(),
            "MODEL_PARSE"
        );
    }
}
