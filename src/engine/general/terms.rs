//! tract's plan of a model with its reconstruction terms as a second output, which is how the
//! general engine says what each column contributes (see `engine::explain`).

use std::cell::RefCell;
use std::sync::Arc;

use tract_onnx::prelude::*;

use super::bind::bind_batch_input;
use super::{reduce_axes, to_tract};
use crate::engine::error::EngineError;
use crate::engine::explain::{normalise, Explained};
use crate::onnx::pb;

/// tract's plan with the reconstruction terms as a second output.
#[derive(Clone, Debug)]
pub(crate) struct TermsPlan {
    plan: Arc<TypedRunnableModel>,
    /// Kept across calls, as the scoring plan's is: building it is most of a one-row call.
    state: RefCell<TypedSimpleState>,
    features: usize,
    guard: bool,
}

impl TermsPlan {
    /// Builds the plan from the graph the engine loaded, or says why this graph has no terms to
    /// show.
    pub fn build(proto: &pb::ModelProto, features: usize) -> Result<TermsPlan, String> {
        let graph = proto.graph.as_ref().ok_or("model has no graph")?;
        let (terms, guard) = terms_value(graph)?;
        let mut proto = proto.clone();
        if let Some(g) = proto.graph.as_mut() {
            g.output.push(pb::ValueInfoProto { name: terms, ..Default::default() });
        }
        let onnx = reduce_axes::onnx();
        let proto = to_tract(&proto).map_err(|e| e.to_string())?;
        let model = onnx.model_for_proto_model(&proto).map_err(|e| format!("{e:#}"))?;
        let plan = bind_batch_input(model, features)
            .map_err(|e| e.to_string())?
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| format!("{e:#}"))?;
        let state = RefCell::new(plan.spawn().map_err(|e| format!("{e:#}"))?);
        Ok(TermsPlan { plan, state, features, guard })
    }

    /// Scores `n` validated readings and their shares through tract.
    pub fn explain(&self, rows: &[f32], n: usize) -> Result<Explained, EngineError> {
        let fail = |e: TractError| EngineError::Inference(format!("{e:#}"));
        let f = self.features;
        let input = Tensor::from_shape(&[n, f], rows).map_err(fail)?;
        let outputs = match self.state.try_borrow_mut() {
            Ok(mut state) => state.run(tvec!(input.into())),
            // Only reachable by re-entrant use; a fresh state is always correct.
            Err(_) => self.plan.spawn().and_then(|mut fresh| fresh.run(tvec!(input.into()))),
        }
        .map_err(fail)?;
        let [scores, terms] = &outputs[..] else {
            return Err(EngineError::Inference("the terms plan gave no terms".into()));
        };
        let scores = floats(scores).map_err(fail)?;
        let terms = floats(terms).map_err(fail)?;
        if scores.len() != n || terms.len() != n * f {
            return Err(EngineError::Inference(format!(
                "{} scores and {} terms for {n} readings of {f}",
                scores.len(),
                terms.len()
            )));
        }
        let mut shares = vec![0f32; n * f];
        let mut guard = vec![0f32; n];
        for (i, (&score, row)) in scores.iter().zip(shares.chunks_exact_mut(f)).enumerate() {
            let t = &terms[i * f..(i + 1) * f];
            let range = if self.guard { score - t.iter().sum::<f32>() / f as f32 } else { 0.0 };
            guard[i] = normalise(score, f, t.iter().copied(), range.max(0.0), row);
        }
        Ok(Explained { scores: scores.to_vec(), columns: f, shares, guard })
    }
}

fn floats(t: &TValue) -> TractResult<&[f32]> {
    t.try_as_plain_ram().and_then(|v| v.as_slice::<f32>())
}

/// The name of the `[batch, F]` tensor of reconstruction terms in `graph`, and whether a range
/// guard's term is added to their mean.
///
/// The score is the mean over the feature axis of `square(a − b)`, alone or added to a second
/// such mean whose difference is `u − bounded(u)` (the guard). Anything else has no terms the
/// engine can name.
fn terms_value(graph: &pb::GraphProto) -> Result<(String, bool), String> {
    let producer = |value: &str| graph.node.iter().find(|n| n.output.iter().any(|o| o == value));
    let output = graph.output.first().ok_or("model has no output")?;
    let last = producer(&output.name).ok_or("the score is not computed by a node")?;
    let means: Vec<&pb::NodeProto> = match last.op_type.as_str() {
        "ReduceMean" => vec![last],
        "Add" => last.input.iter().filter_map(|i| producer(i)).collect(),
        op => return Err(format!("the score is computed by {op}, not a mean squared error")),
    };
    let mut recon = Vec::new();
    let mut guards = 0;
    for mean in &means {
        let Some(squared) = mean.input.first().filter(|_| mean.op_type == "ReduceMean") else {
            return Err("the score adds something other than mean squared errors".into());
        };
        let difference = producer(squared)
            .and_then(|sq| squared_operand(sq))
            .and_then(|d| producer(d).filter(|n| n.op_type == "Sub"))
            .ok_or("a mean in the score does not average squared differences")?;
        if is_bounded_excess(graph, difference) {
            guards += 1;
        } else {
            recon.push(squared.clone());
        }
    }
    match (&recon[..], guards, means.len()) {
        ([terms], 0, 1) | ([terms], 1, 2) => Ok((terms.clone(), guards == 1)),
        _ => Err("the score is not one reconstruction error (plus at most a range guard)".into()),
    }
}

/// `d` when `node` squares it: `Mul(d, d)` or `Pow(d, 2)`.
fn squared_operand(node: &pb::NodeProto) -> Option<&str> {
    match (node.op_type.as_str(), &node.input[..]) {
        ("Mul", [a, b]) if a == b => Some(a),
        ("Pow", [a, _]) => Some(a),
        _ => None,
    }
}

/// Whether `sub` computes `u − bounded(u)` (either order), `bounded` a chain of `Clip`, `Max`
/// and `Min` applied to `u`.
fn is_bounded_excess(graph: &pb::GraphProto, sub: &pb::NodeProto) -> bool {
    let [a, b] = &sub.input[..] else { return false };
    let bounds = |from: &str, to: &str| {
        let mut value = to.to_owned();
        for _ in 0..3 {
            let Some(n) = graph.node.iter().find(|n| n.output.first() == Some(&value)) else {
                return false;
            };
            if !matches!(n.op_type.as_str(), "Clip" | "Max" | "Min") {
                return false;
            }
            match n.input.first() {
                Some(x) if x == from => return true,
                Some(x) => value = x.clone(),
                None => return false,
            }
        }
        false
    };
    bounds(a, b) || bounds(b, a)
}
