//! Models that output their reconstruction instead of a score.
//!
//! Many exported autoencoders end at the decoder: the output is the reconstruction `[batch, F]`
//! and the caller is expected to compute the error. The engine does that *in the graph*, at load
//! time: it appends `ReduceMean((output − input)², axis 1)` and makes that the output, so tract,
//! the dense kernel and the contract check all see an ordinary score model. The score is the
//! mean squared error against the raw input, exactly what the caller would have computed.
//!
//! A model is taken as a reconstruction model when its one output is declared with rank 2 and,
//! if both are known, as many columns as its input. Anything else is left as written (and the
//! contract check says what is wrong with it).

use crate::onnx::pb::{self, tensor_proto::DataType, tensor_shape_proto::dimension::Value};

use super::names::{unused_node_name, unused_value_name};

/// Rewrites a reconstruction model into a score model; returns whether it did.
pub(super) fn append_score(model: &mut pb::ModelProto) -> bool {
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map_or(0, |o| o.version);
    let Some(graph) = model.graph.as_mut() else { return false };
    let init = |name: &str| graph.initializer.iter().any(|t| t.name == name);
    let inputs: Vec<&pb::ValueInfoProto> = graph.input.iter().filter(|i| !init(&i.name)).collect();
    let ([input], [output]) = (&inputs[..], &graph.output[..]) else { return false };
    let (Some(in_dims), Some(out_dims)) = (dims(input), dims(output)) else { return false };
    let fits = match (in_dims.get(1), out_dims.get(1)) {
        (Some(Some(a)), Some(Some(b))) => a == b,
        _ => true,
    };
    if out_dims.len() != 2 || !fits {
        return false;
    }
    let (x, recon) = (input.name.clone(), output.name.clone());
    let batch = output.r#type.as_ref().and_then(|t| t.value.as_ref()).and_then(|v| {
        let pb::type_proto::Value::TensorType(tt) = v;
        tt.shape.as_ref().and_then(|s| s.dim.first().cloned())
    });

    let residual = unused_value_name(graph, &format!("{recon}_residual"));
    let squared = unused_value_name(graph, &format!("{recon}_squared"));
    let score = unused_value_name(graph, &format!("{recon}_score"));
    let mut reduce = node("ReduceMean", vec![squared.clone()], &score);
    reduce.attribute.push(int_attribute("keepdims", 0));
    if opset >= 18 {
        // From opset 18 the axes are an input.
        let axes = unused_value_name(graph, &format!("{recon}_axes"));
        graph.initializer.push(pb::TensorProto {
            name: axes.clone(),
            dims: vec![1],
            data_type: DataType::Int64 as i32,
            int64_data: vec![1],
            ..Default::default()
        });
        reduce.input.push(axes);
    } else {
        reduce.attribute.push(pb::AttributeProto {
            name: "axes".into(),
            r#type: pb::attribute_proto::AttributeType::Ints as i32,
            ints: vec![1],
            ..Default::default()
        });
    }
    let nodes = [
        node("Sub", vec![recon.clone(), x], &residual),
        node("Mul", vec![residual.clone(), residual.clone()], &squared),
        reduce,
    ];
    for mut n in nodes {
        n.name = unused_node_name(graph, &format!("{}_engine", n.output[0]));
        graph.node.push(n);
    }
    graph.output = vec![pb::ValueInfoProto {
        name: score,
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: DataType::Float as i32,
                shape: Some(pb::TensorShapeProto { dim: batch.into_iter().collect() }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }];
    true
}

/// The declared dimensions of a tensor value (`None` per unknown dimension), if it has a shape.
fn dims(value: &pb::ValueInfoProto) -> Option<Vec<Option<i64>>> {
    let pb::type_proto::Value::TensorType(t) = value.r#type.as_ref()?.value.as_ref()?;
    let shape = t.shape.as_ref()?;
    Some(
        shape
            .dim
            .iter()
            .map(|d| match d.value {
                Some(Value::DimValue(v)) => Some(v),
                _ => None,
            })
            .collect(),
    )
}

fn node(op: &str, input: Vec<String>, output: &str) -> pb::NodeProto {
    pb::NodeProto { op_type: op.into(), input, output: vec![output.into()], ..Default::default() }
}

fn int_attribute(name: &str, value: i64) -> pb::AttributeProto {
    pb::AttributeProto {
        name: name.into(),
        r#type: pb::attribute_proto::AttributeType::Int as i32,
        i: value,
        ..Default::default()
    }
}
