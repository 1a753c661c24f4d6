//! The general engine: tract runs every graph the dense kernel does not cover, and is the
//! reference the kernel is checked against when a model loads. Built with the `tract` feature
//! only; the small browser engine leaves it out (and with it nearly all of the wasm's size).

mod bind;
mod reduce_axes;
mod terms;

use std::cell::{OnceCell, RefCell};
use std::sync::Arc;

use prost::Message;
use tract_onnx::prelude::*;

use super::contract::ModelContract;
use super::error::EngineError;
use super::explain::Explained;
use crate::onnx::pb;
use terms::TermsPlan;

/// A model optimized by tract, with one execution state kept across calls (building it is most
/// of a one-row call).
#[derive(Clone)]
pub(crate) struct General {
    plan: Arc<TypedRunnableModel>,
    state: RefCell<TypedSimpleState>,
    features: usize,
    /// The graph as loaded, kept while tract scores it: the terms plan is built from it.
    proto: Option<Arc<pb::ModelProto>>,
    /// tract's plan for `explain`, built on first use (or why there is none).
    terms: OnceCell<Result<TermsPlan, String>>,
}

impl General {
    /// Checks `proto` against the contract with tract's shape inference and optimizes it.
    pub fn load(proto: &pb::ModelProto) -> Result<(General, ModelContract), EngineError> {
        let model = reduce_axes::onnx()
            .model_for_proto_model(&to_tract(proto)?)
            .map_err(|e| EngineError::Parse(format!("{e:#}")))?;
        let (typed, contract) = bind::bind(model)?;
        let plan = typed
            .into_optimized()
            .and_then(|m| m.into_runnable())
            .map_err(|e| EngineError::Optimize(format!("{e:#}")))?;
        let state =
            RefCell::new(plan.spawn().map_err(|e| EngineError::Optimize(format!("{e:#}")))?);
        let features = contract.features;
        Ok((General { plan, state, features, proto: None, terms: OnceCell::new() }, contract))
    }

    /// Keeps the graph so [`Self::explain`] can build its plan from it.
    pub fn keep_graph(&mut self, proto: pb::ModelProto) {
        self.proto = Some(Arc::new(proto));
    }

    /// Scores validated `rows` into `out`, one slot per reading.
    pub fn score_into(&self, rows: &[f32], out: &mut [f32]) -> Result<(), EngineError> {
        let n = out.len();
        let input = Tensor::from_shape(&[n, self.features], rows)
            .map_err(|e| EngineError::Inference(format!("{e:#}")))?;
        match self.state.try_borrow_mut() {
            Ok(mut state) => run(&mut state, input, out, n),
            // Only reachable by re-entrant use; a fresh state is always correct.
            Err(_) => {
                let mut fresh =
                    self.plan.spawn().map_err(|e| EngineError::Inference(format!("{e:#}")))?;
                run(&mut fresh, input, out, n)
            }
        }
    }

    /// Scores `n` validated readings with each column's share, through the terms plan.
    pub fn explain(&self, rows: &[f32], n: usize) -> Result<Explained, EngineError> {
        let plan = self.terms.get_or_init(|| match &self.proto {
            Some(proto) => TermsPlan::build(proto, self.features),
            None => Err("the model's graph was not kept".into()),
        });
        match plan {
            Ok(plan) => plan.explain(rows, n),
            Err(reason) => Err(EngineError::Unexplained(reason.clone())),
        }
    }
}

fn run(
    state: &mut TypedSimpleState,
    input: Tensor,
    out: &mut [f32],
    n: usize,
) -> Result<(), EngineError> {
    let result =
        state.run(tvec!(input.into())).map_err(|e| EngineError::Inference(format!("{e:#}")))?;
    let scores = result
        .first()
        .ok_or_else(|| EngineError::Inference("model produced no output".into()))?
        .try_as_plain_ram()
        .and_then(|view| view.as_slice::<f32>())
        .map_err(|e| EngineError::Inference(format!("{e:#}")))?;
    if scores.len() != n {
        return Err(EngineError::Inference(format!(
            "model returned {} scores for {n} rows",
            scores.len()
        )));
    }
    out.copy_from_slice(scores);
    Ok(())
}

/// The same model as tract's copy of the ONNX messages (identical definitions, so encoding one
/// and decoding the other loses nothing).
pub(crate) fn to_tract(proto: &pb::ModelProto) -> Result<tract_onnx::pb::ModelProto, EngineError> {
    tract_onnx::pb::ModelProto::decode(proto.encode_to_vec().as_slice())
        .map_err(|e| EngineError::Parse(format!("{e}")))
}
