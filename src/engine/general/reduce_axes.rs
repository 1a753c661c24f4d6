//! The ONNX parser the engine uses: tract's, with every reduction checked for axes its input
//! does not have.
//!
//! tract's `Reduce` resolves each axis against the input's rank with an `unwrap()` while it
//! infers shapes, so a `ReduceMean` whose `axes` name a dimension the tensor lacks — one flipped
//! bit in a model file is enough — panics, and the release wasm build aborts on a panic. Each
//! reduction (`Reduce*`, `ArgMax`, `ArgMin`) is built by tract's own parser and then wrapped in
//! [`CheckedAxes`], whose first inference rule refuses out-of-range axes as an error before
//! tract's rules run: the solver applies rules in the order they were added, and the check needs
//! only the input's rank, which tract's rule needs too.

use std::collections::HashMap;
use std::sync::OnceLock;

use tract_onnx::model::ParsingContext;
use tract_onnx::pb::NodeProto;
use tract_onnx::tract_hir::internal::*;
use tract_onnx::tract_hir::ops::expandable::Expansion;

type Builder = fn(&ParsingContext, &NodeProto) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)>;

/// Operators whose axes tract resolves with a panic on an axis out of range.
const REDUCTIONS: &[&str] = &[
    "ArgMax",
    "ArgMin",
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSum",
    "ReduceSumSquare",
];

/// tract's ONNX parser with every reduction's axes checked against its input's rank.
pub(super) fn onnx() -> tract_onnx::Onnx {
    let mut onnx = tract_onnx::onnx();
    for name in REDUCTIONS {
        onnx.op_register.insert(name, checked_reduction);
    }
    onnx
}

/// tract's own builders for the reductions, looked up by operator name.
fn tract_builders() -> &'static HashMap<String, Builder> {
    static BUILDERS: OnceLock<HashMap<String, Builder>> = OnceLock::new();
    BUILDERS.get_or_init(|| {
        let all = tract_onnx::onnx().op_register.0;
        REDUCTIONS.iter().filter_map(|n| Some((n.to_string(), *all.get(*n)?))).collect()
    })
}

fn checked_reduction(
    ctx: &ParsingContext,
    node: &NodeProto,
) -> TractResult<(Box<dyn InferenceOp>, Vec<String>)> {
    let Some(build) = tract_builders().get(&node.op_type) else {
        bail!("no parser for {}", node.op_type);
    };
    let (op, extra) = build(ctx, node)?;
    let Some(inner) = op.as_op().downcast_ref::<Box<dyn Expansion>>() else {
        // Not an expansion: tract built something this check does not know; leave it alone.
        return Ok((op, extra));
    };
    let axes = match node.op_type.as_str() {
        "ArgMax" | "ArgMin" => Some(vec![node.get_attr_opt::<i64>("axis")?.unwrap_or(0)]),
        _ => node.get_attr_opt_vec::<i64>("axes")?,
    };
    let checked = CheckedAxes { inner: inner.clone(), axes, axes_input: node.input.len() > 1 };
    Ok((expand(checked), extra))
}

/// A reduction whose axes — the attribute, the second input, or both — must each lie in
/// `-rank..rank` of the first input.
#[derive(Debug, Clone)]
struct CheckedAxes {
    inner: Box<dyn Expansion>,
    axes: Option<Vec<i64>>,
    axes_input: bool,
}

fn check(op: &str, axes: &[i64], rank: i64) -> TractResult<()> {
    match axes.iter().find(|&&a| a < -rank || a >= rank) {
        Some(a) => bail!("{op}: axis {a} is out of range for an input of rank {rank}"),
        None => Ok(()),
    }
}

impl Expansion for CheckedAxes {
    fn name(&self) -> StaticName {
        self.inner.as_ref().name()
    }

    fn validation(&self) -> Validation {
        self.inner.as_ref().validation()
    }

    fn info(&self) -> TractResult<Vec<String>> {
        self.inner.as_ref().info()
    }

    fn nboutputs(&self) -> TractResult<usize> {
        self.inner.as_ref().nboutputs()
    }

    fn wire(
        &self,
        prefix: &str,
        model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        self.inner.as_ref().wire(prefix, model, inputs)
    }

    fn wire_with_inference_model_and_node(
        &self,
        prefix: &str,
        model: &InferenceModel,
        node: &InferenceNode,
        typed_model: &mut TypedModel,
        inputs: &[OutletId],
    ) -> TractResult<TVec<OutletId>> {
        self.inner.as_ref().wire_with_inference_model_and_node(
            prefix,
            model,
            node,
            typed_model,
            inputs,
        )
    }

    fn rules<'r, 'p: 'r, 's: 'r>(
        &'s self,
        s: &mut Solver<'r>,
        inputs: &'p [TensorProxy],
        outputs: &'p [TensorProxy],
    ) -> InferenceResult {
        if let (Some(axes), Some(input)) = (&self.axes, inputs.first()) {
            s.given(&input.rank, move |_, rank| check(&self.name(), axes, rank))?;
        }
        if let (true, [input, axes, ..]) = (self.axes_input, inputs) {
            s.given_2(&input.rank, &axes.value, move |_, rank, axes| {
                let axes = axes.cast_to::<i64>()?;
                check(&self.name(), axes.try_as_plain_ram()?.as_slice::<i64>()?, rank)
            })?;
        }
        self.inner.as_ref().rules(s, inputs, outputs)
    }

    fn runs_out_of_plan(&self) -> bool {
        self.inner.as_ref().runs_out_of_plan()
    }
}
