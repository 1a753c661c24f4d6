//! Load-time rewrite of onnxruntime's `quantize_dynamic` matmuls into float matmuls on
//! dequantized weights ("W8A32").
//!
//! `quantize_dynamic` stores each weight matrix as int8 plus a scale and zero point, and turns
//! every `MatMul(x, W)` into
//!
//! ```text
//! DynamicQuantizeLinear(x) -> x_q, x_scale, x_zp
//! MatMulInteger(x_q, W_q, x_zp, W_zp) -> Cast(float) -> Mul(_, Mul(x_scale, W_scale)) -> y
//! ```
//!
//! tract runs that graph, but slowly: every call re-quantizes the activations and goes through
//! an integer kernel. Worse for anomaly scoring, `x_scale` is computed over the whole call, so a
//! reading's score depends on which other readings share its batch. This module recognises the
//! chain and replaces it with `MatMul(x, (W_q - W_zp) * W_scale)`: the file stays int8 (4× smaller
//! to download and cache), the weights are exactly the quantized ones, and the arithmetic is
//! tract's fast f32 path. Anything that does not match the pattern exactly is left alone.

use std::collections::{HashMap, HashSet};

use crate::onnx::pb::{self, tensor_proto::DataType};
pub(super) use crate::onnx::Floats;

use super::names::unused_node_name;
use super::EngineError;

/// How the engine runs onnxruntime `quantize_dynamic` models.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Int8Mode {
    /// Rewrite the int8 matmuls to f32 matmuls on dequantized weights at load time (default):
    /// fast, and a reading scores the same alone or in a batch.
    #[default]
    DequantizeWeights,
    /// Run the graph as written, activations quantized per call (onnxruntime's exact semantics).
    AsWritten,
}

/// Rewrites every matching `MatMulInteger` chain in `model`; returns how many were rewritten.
pub(super) fn dequantize_dynamic_matmuls(model: &mut pb::ModelProto) -> Result<usize, EngineError> {
    let Some(graph) = model.graph.as_mut() else { return Ok(0) };
    let mut rewritten = 0;
    // Each rewrite changes the node list; find and apply one match at a time.
    while let Some(m) = find_match(graph) {
        let weights = dequantized_weights(graph, &m)?;
        let name = format!("{}_dequantized", m.weight);
        graph.initializer.push(named_tensor(weights, &name));
        let output = graph.node[m.final_mul].output[0].clone();
        // Node names are optional in ONNX (`quantize_dynamic` leaves its `MatMulInteger` nodes
        // unnamed): the new node is named after its output, which is unique in the graph.
        let matmul = pb::NodeProto {
            name: unused_node_name(graph, &format!("{output}_w8a32")),
            op_type: "MatMul".into(),
            input: vec![m.x.clone(), name],
            output: vec![output],
            ..Default::default()
        };
        graph.node[m.final_mul] = matmul;
        let (a, b) = (m.matmul_integer.max(m.cast), m.matmul_integer.min(m.cast));
        graph.node.remove(a);
        graph.node.remove(b);
        rewritten += 1;
    }
    if rewritten > 0 {
        remove_dead_nodes(graph);
    }
    Ok(rewritten)
}

/// Indices and names of one matched chain.
struct Match {
    matmul_integer: usize,
    cast: usize,
    final_mul: usize,
    /// The float activation fed to `DynamicQuantizeLinear`.
    x: String,
    /// Initializer names of the quantized weight, its zero point (if any) and its scale.
    weight: String,
    weight_zero_point: Option<String>,
    weight_scale: String,
}

fn find_match(graph: &pb::GraphProto) -> Option<Match> {
    let producer: HashMap<&str, usize> = graph
        .node
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let consumers = |name: &str| -> Vec<usize> {
        graph
            .node
            .iter()
            .enumerate()
            .filter(|(_, n)| n.input.iter().any(|i| i == name))
            .map(|(i, _)| i)
            .collect()
    };
    let is_init = |name: &str| graph.initializer.iter().any(|t| t.name == name);
    let is_graph_output = |name: &str| graph.output.iter().any(|o| o.name == name);

    graph.node.iter().enumerate().find_map(|(mi, m)| {
        if m.op_type != "MatMulInteger" || m.input.len() < 2 || !m.domain.is_empty() {
            return None;
        }
        let (x_q, weight) = (&m.input[0], &m.input[1]);
        let x_zp = m.input.get(2).filter(|s| !s.is_empty());
        let weight_zero_point = m.input.get(3).filter(|s| !s.is_empty()).cloned();
        if !is_init(weight) || !weight_zero_point.as_deref().is_none_or(is_init) {
            return None;
        }
        let dql = &graph.node[*producer.get(x_q.as_str())?];
        if dql.op_type != "DynamicQuantizeLinear" || dql.output.len() < 3 || &dql.output[0] != x_q {
            return None;
        }
        if x_zp.is_some_and(|zp| zp != &dql.output[2]) || is_graph_output(&m.output[0]) {
            return None;
        }
        let [ci] = consumers(&m.output[0])[..] else { return None };
        let cast = &graph.node[ci];
        let to_float =
            cast.attribute.iter().any(|a| a.name == "to" && a.i == DataType::Float as i64);
        if cast.op_type != "Cast" || !to_float || is_graph_output(&cast.output[0]) {
            return None;
        }
        let [fi] = consumers(&cast.output[0])[..] else { return None };
        let fmul = &graph.node[fi];
        if fmul.op_type != "Mul" || fmul.input.len() != 2 {
            return None;
        }
        let scale = fmul.input.iter().find(|i| *i != &cast.output[0])?;
        let smul = &graph.node[*producer.get(scale.as_str())?];
        if smul.op_type != "Mul" || smul.input.len() != 2 || !smul.input.contains(&dql.output[1]) {
            return None;
        }
        let weight_scale = smul.input.iter().find(|i| *i != &dql.output[1])?;
        if !is_init(weight_scale) {
            return None;
        }
        Some(Match {
            matmul_integer: mi,
            cast: ci,
            final_mul: fi,
            x: dql.input.first()?.clone(),
            weight: weight.clone(),
            weight_zero_point,
            weight_scale: weight_scale.clone(),
        })
    })
}

/// `(W_q - W_zp) * W_scale` as a float `[K, N]` tensor; scale and zero point
/// may be scalars or one per output column (`[N]`), as onnxruntime writes them.
fn dequantized_weights(graph: &pb::GraphProto, m: &Match) -> Result<Floats, EngineError> {
    let w = load_floats(graph, &m.weight)?;
    let scale = load_floats(graph, &m.weight_scale)?;
    let zero = match &m.weight_zero_point {
        Some(z) => load_floats(graph, z)?,
        None => Floats { shape: vec![], values: vec![0.0] },
    };
    let [_, n] = w.shape[..] else {
        return Err(EngineError::Parse(format!(
            "int8 weight {} has shape {:?}",
            m.weight, w.shape
        )));
    };
    let per_column = |t: &Floats, what: &str| -> Result<Vec<f32>, EngineError> {
        match t.values.len() {
            1 => Ok(vec![t.values[0]; n]),
            len if len == n => Ok(t.values.clone()),
            len => Err(EngineError::Parse(format!(
                "{what} of {} has {len} values for {n} columns",
                m.weight
            ))),
        }
    };
    let (scale, zero) = (per_column(&scale, "scale")?, per_column(&zero, "zero point")?);
    let mut values = w.values;
    for row in values.chunks_exact_mut(n.max(1)) {
        for ((v, s), z) in row.iter_mut().zip(&scale).zip(&zero) {
            *v = (*v - z) * s;
        }
    }
    Ok(Floats { shape: w.shape, values })
}

/// Reads initializer `name` (any numeric ONNX type) as f32 values.
pub(super) fn load_floats(graph: &pb::GraphProto, name: &str) -> Result<Floats, EngineError> {
    let proto = graph
        .initializer
        .iter()
        .find(|t| t.name == name)
        .ok_or_else(|| EngineError::Parse(format!("initializer {name} is missing")))?;
    tensor_floats(proto, name)
}

/// Reads a tensor (an initializer or a `Constant` node's value) of any numeric ONNX type as f32
/// values; `name` is for the error message.
pub(super) fn tensor_floats(proto: &pb::TensorProto, name: &str) -> Result<Floats, EngineError> {
    crate::onnx::tensor_floats(proto)
        .map_err(|e| EngineError::Parse(format!("initializer {name}: {e}")))
}

/// `floats` as a float32 initializer named `name`.
fn named_tensor(floats: Floats, name: &str) -> pb::TensorProto {
    pb::TensorProto {
        name: name.into(),
        dims: floats.shape.iter().map(|&d| d as i64).collect(),
        data_type: DataType::Float as i32,
        float_data: floats.values,
        ..Default::default()
    }
}

/// Drops nodes none of whose outputs is used (the orphaned quantization nodes), then the
/// initializers nothing reads any more.
fn remove_dead_nodes(graph: &mut pb::GraphProto) {
    loop {
        let used: HashSet<&str> = graph
            .node
            .iter()
            .flat_map(|n| n.input.iter().map(String::as_str))
            .chain(graph.output.iter().map(|o| o.name.as_str()))
            .collect();
        let dead: Vec<usize> = (0..graph.node.len())
            .filter(|&i| graph.node[i].output.iter().all(|o| !used.contains(o.as_str())))
            .collect();
        if dead.is_empty() {
            break;
        }
        for i in dead.into_iter().rev() {
            graph.node.remove(i);
        }
    }
    let used: HashSet<String> = graph.node.iter().flat_map(|n| n.input.iter().cloned()).collect();
    graph.initializer.retain(|t| used.contains(&t.name));
}
