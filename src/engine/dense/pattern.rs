//! Recognises the graphs the dense path runs: an MLP autoencoder scored by its mean squared
//! reconstruction error, the shape the model pipeline exports (and most hand-made anomaly
//! autoencoders have).
//!
//! ```text
//! x ─► [Sub|Add|Mul|Div by a per-feature constant, Clip, Relu]* ─► xn
//! xn ─► (Gemm | MatMul [+ Add bias]) [+ Relu] ─► … ─► recon            (one or more layers)
//! (recon − xn | xn − recon) ─► (d · d | d ^ 2) ─► ReduceMean(axis 1, keepdims 0) ─► score
//! ```
//!
//! Optionally a range guard sits beside the autoencoder (the pipeline exports one for series,
//! see `models/edge_pipeline/guard.py`), matched in [`guard`]:
//!
//! ```text
//! xn ─► (Gemm | MatMul [+ Add bias]) [+ Relu] ─► … ─► u              (one or more layers)
//! u − (Clip(u, lo, hi) | Min(Max(u, lo), hi) | …) ─► square ─► ReduceMean(axis 1) ─► range error
//! score = Add(mean squared error, range error)
//! ```
//!
//! The match is exact: every node of the graph must be part of it, every intermediate value
//! has the one consumer the pattern says, constants must broadcast along the feature axis only.
//! Anything else is [`NotDense`], and the engine runs the model through tract as before. It reads
//! the (already int8-rewritten) ONNX protobuf, where the graph is still as the exporter wrote it.

use std::collections::HashMap;

use crate::onnx::pb;

use super::super::dequantize::{load_floats, tensor_floats, Floats};

mod guard;

/// Why a graph is not one the dense path runs (diagnostic text, not an error: tract runs it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotDense(pub String);

/// A per-feature step before the first layer, with constants expanded to one per feature.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Pre {
    /// `x + c`
    Add(Vec<f32>),
    /// `x - c`
    Sub(Vec<f32>),
    /// `x * c`
    Mul(Vec<f32>),
    /// `x / c`
    Div(Vec<f32>),
    /// `min(max(x, lo), hi)` (ONNX `Clip`; `Relu` is `Clip(0, ∞)`).
    Clip(f32, f32),
}

/// One dense layer as read from the graph: row-major `[K, N]` weights.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct DenseLayer {
    pub inputs: usize,
    pub outputs: usize,
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
    pub relu: bool,
}

/// What the graph computes, in the dense path's terms.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Recipe {
    pub features: usize,
    pub pre: Vec<Pre>,
    pub layers: Vec<DenseLayer>,
    /// A range guard added to the reconstruction error, if the graph has one.
    pub guard: Option<GuardRecipe>,
}

/// A second chain of dense layers from the normalised input to `u`, scored by how far `u` lies
/// outside per-channel bounds: `mean((u - clamp(u, lo, hi))²)`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct GuardRecipe {
    pub layers: Vec<DenseLayer>,
    pub lo: Vec<f32>,
    pub hi: Vec<f32>,
}

fn no(why: impl Into<String>) -> NotDense {
    NotDense(why.into())
}

/// Reads `model` as a [`Recipe`] for readings of `features` values, or says why it is not one.
pub(crate) fn recognize(model: &pb::ModelProto, features: usize) -> Result<Recipe, NotDense> {
    let graph = model.graph.as_ref().ok_or_else(|| no("model has no graph"))?;
    Matcher::new(graph, features).recipe()
}

struct Matcher<'g> {
    graph: &'g pb::GraphProto,
    features: usize,
    consumers: HashMap<&'g str, Vec<usize>>,
    used: Vec<bool>,
}

impl<'g> Matcher<'g> {
    fn new(graph: &'g pb::GraphProto, features: usize) -> Self {
        let mut consumers: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, n) in graph.node.iter().enumerate() {
            for input in n.input.iter().filter(|s| !s.is_empty()) {
                let readers = consumers.entry(input.as_str()).or_default();
                // `Mul(d, d)` reads `d` twice but is one consumer.
                if readers.last() != Some(&i) {
                    readers.push(i);
                }
            }
        }
        Matcher { graph, features, consumers, used: vec![false; graph.node.len()] }
    }

    fn recipe(mut self) -> Result<Recipe, NotDense> {
        let g = self.graph;
        let init = |name: &str| g.initializer.iter().any(|t| t.name == name);
        let inputs: Vec<&pb::ValueInfoProto> = g.input.iter().filter(|i| !init(&i.name)).collect();
        let ([input], [output]) = (&inputs[..], &g.output[..]) else {
            return Err(no("not one input and one output"));
        };
        for n in &g.node {
            if !n.domain.is_empty() && n.domain != "ai.onnx" {
                return Err(no(format!(
                    "op {}::{} is outside the ONNX domain",
                    n.domain, n.op_type
                )));
            }
        }
        // Constant nodes are read as values wherever they are used.
        for (i, n) in g.node.iter().enumerate() {
            if n.op_type == "Constant" {
                self.used[i] = true;
            }
        }

        let (pre, xn) = self.preprocessing(&input.name)?;
        let readers = self.consumers_of(xn);
        let spread =
            "the normalised input must feed the first layer, the error and at most a guard";
        if readers.contains(&usize::MAX) || !(2..=3).contains(&readers.len()) {
            return Err(no(spread));
        }
        let subs: Vec<usize> =
            readers.iter().copied().filter(|&i| g.node[i].op_type == "Sub").collect();
        let [sub] = subs[..] else { return Err(no(spread)) };
        self.used[sub] = true;

        // The autoencoder is the chain that ends in the Sub; a second chain is the guard.
        let (mut autoencoder, mut guard) = (None, None);
        for first in readers.into_iter().filter(|&i| i != sub) {
            let (layers, out) = self.chain(first, xn)?;
            if self.only_consumer(out) == Some(sub) {
                autoencoder = Some((layers, out));
            } else {
                guard = Some((layers, out));
            }
        }
        let (layers, recon) =
            autoencoder.ok_or_else(|| no("no chain of layers ends in the error"))?;
        if layers.last().map(|l| l.outputs) != Some(self.features) {
            return Err(no("the reconstruction is not as wide as the input"));
        }
        let s = &g.node[sub];
        let operands_ok = s.input.len() == 2
            && ((s.input[0] == recon && s.input[1] == xn)
                || (s.input[0] == xn && s.input[1] == recon));
        if !operands_ok {
            return Err(no("the error is not reconstruction minus input"));
        }
        let squared = self.square(self.single_consumer(&s.output[0])?)?;
        let mut score = self.mean_over_features(self.single_consumer(squared)?)?;
        let guard = match guard {
            Some((layers, u)) => {
                let width = layers.last().map_or(self.features, |l: &DenseLayer| l.outputs);
                let (lo, hi, range_error) = self.range_excess(u, width)?;
                score = self.sum_of(score, range_error)?;
                Some(GuardRecipe { layers, lo, hi })
            }
            None => None,
        };
        if score != output.name {
            return Err(no("the mean squared error is not the graph output"));
        }
        if let Some(i) = self.used.iter().position(|u| !u) {
            return Err(no(format!(
                "node {} ({}) is not part of the pattern",
                g.node[i].name, g.node[i].op_type
            )));
        }
        Ok(Recipe { features: self.features, pre, layers, guard })
    }

    /// Dense layers from node `first`, which reads `value` (`features` wide), for as long as the
    /// one reader of a layer's output is another dense layer. Returns them and the last output.
    fn chain(
        &mut self,
        first: usize,
        value: &'g str,
    ) -> Result<(Vec<DenseLayer>, &'g str), NotDense> {
        let mut layers: Vec<DenseLayer> = Vec::new();
        let (mut value, mut next) = (value, first);
        loop {
            let (layer, out) = self.layer(next, value)?;
            let width = layers.last().map_or(self.features, |l| l.outputs);
            if layer.inputs != width {
                return Err(no(format!(
                    "layer {} takes {} values, gets {width}",
                    layers.len(),
                    layer.inputs
                )));
            }
            layers.push(layer);
            value = out;
            match self.only_consumer(value).map(|n| (n, self.graph.node[n].op_type.as_str())) {
                Some((n, "Gemm" | "MatMul")) => next = n,
                // The autoencoder ends in the error's Sub; a guard's output has two readers.
                Some((_, "Sub")) | None => return Ok((layers, value)),
                Some((_, op)) => return Err(no(format!("{op} where a dense layer was expected"))),
            }
        }
    }

    /// Per-feature steps from the input to the value that feeds the first layer.
    fn preprocessing(&mut self, input: &'g str) -> Result<(Vec<Pre>, &'g str), NotDense> {
        let mut pre = Vec::new();
        let mut value = input;
        loop {
            let Some(i) = self.only_consumer(value) else { return Ok((pre, value)) };
            let n = &self.graph.node[i];
            let step = match n.op_type.as_str() {
                "Add" | "Mul" => {
                    let other =
                        other_operand(n, value).ok_or_else(|| no("Add/Mul needs two operands"))?;
                    let c = self.per_feature(other)?;
                    if n.op_type == "Add" {
                        Pre::Add(c)
                    } else {
                        Pre::Mul(c)
                    }
                }
                "Sub" | "Div"
                    if n.input.len() == 2 && n.input[0] == value && n.input[1] != value =>
                {
                    let c = self.per_feature(&n.input[1])?;
                    if n.op_type == "Sub" {
                        Pre::Sub(c)
                    } else {
                        Pre::Div(c)
                    }
                }
                "Relu" | "Clip" if n.input.first().map(String::as_str) != Some(value) => {
                    return Ok((pre, value))
                }
                "Clip" => {
                    let bound = |k: usize, attr: &str, default: f32| -> Result<f32, NotDense> {
                        match n.input.get(k).filter(|s| !s.is_empty()) {
                            Some(name) => self.scalar(name),
                            None => Ok(n
                                .attribute
                                .iter()
                                .find(|a| a.name == attr)
                                .map_or(default, |a| a.f)),
                        }
                    };
                    Pre::Clip(bound(1, "min", f32::NEG_INFINITY)?, bound(2, "max", f32::INFINITY)?)
                }
                "Relu" => Pre::Clip(0.0, f32::INFINITY),
                _ => return Ok((pre, value)),
            };
            self.used[i] = true;
            pre.push(step);
            value = &n.output[0];
        }
    }

    /// A `Gemm`, or a `MatMul` with an optional bias `Add`, then an optional `Relu`, starting at
    /// node `at`, which must read `value`. Returns the layer and the value it produces.
    fn layer(&mut self, at: usize, value: &str) -> Result<(DenseLayer, &'g str), NotDense> {
        let n = &self.graph.node[at];
        if n.input.first().map(String::as_str) != Some(value) {
            return Err(no(format!(
                "{} does not take the activation as its first input",
                n.op_type
            )));
        }
        self.used[at] = true;
        let (weights, k, nn, mut out, bias_name) = match n.op_type.as_str() {
            "Gemm" => {
                let attr_f =
                    |name: &str| n.attribute.iter().find(|a| a.name == name).map_or(1.0, |a| a.f);
                let attr_i =
                    |name: &str| n.attribute.iter().find(|a| a.name == name).map_or(0, |a| a.i);
                if attr_f("alpha") != 1.0 || attr_f("beta") != 1.0 || attr_i("transA") != 0 {
                    return Err(no("Gemm with alpha/beta ≠ 1 or transA"));
                }
                let w = self.constant(n.input.get(1).ok_or_else(|| no("Gemm without weights"))?)?;
                let [r, c] = w.shape[..] else { return Err(no("Gemm weights are not 2-D")) };
                let (values, k, nn) = if attr_i("transB") != 0 {
                    ((0..c * r).map(|i| w.values[(i % r) * c + i / r]).collect(), c, r)
                } else {
                    (w.values, r, c)
                };
                (values, k, nn, n.output[0].as_str(), n.input.get(2).filter(|s| !s.is_empty()))
            }
            "MatMul" => {
                let w =
                    self.constant(n.input.get(1).ok_or_else(|| no("MatMul without weights"))?)?;
                let [k, nn] = w.shape[..] else { return Err(no("MatMul weights are not 2-D")) };
                (w.values, k, nn, n.output[0].as_str(), None)
            }
            op => return Err(no(format!("{op} where a dense layer was expected"))),
        };
        let mut bias = match bias_name {
            Some(b) => self.broadcast(b, nn)?,
            None => vec![0.0; nn],
        };
        if n.op_type == "MatMul" {
            if let Some(a) = self.only_consumer(out) {
                let add = &self.graph.node[a];
                if add.op_type == "Add" {
                    let other =
                        other_operand(add, out).ok_or_else(|| no("bias Add needs two operands"))?;
                    bias = self.broadcast(other, nn)?;
                    self.used[a] = true;
                    out = &add.output[0];
                }
            }
        }
        let mut relu = false;
        if let Some(r) = self.only_consumer(out) {
            if self.graph.node[r].op_type == "Relu" {
                self.used[r] = true;
                relu = true;
                out = &self.graph.node[r].output[0];
            }
        }
        Ok((DenseLayer { inputs: k, outputs: nn, weights, bias, relu }, out))
    }

    /// `d · d` or `d ^ 2` at node `at`; returns its output.
    fn square(&mut self, at: usize) -> Result<&'g str, NotDense> {
        let n = &self.graph.node[at];
        let ok = match n.op_type.as_str() {
            "Mul" => n.input.len() == 2 && n.input[0] == n.input[1],
            "Pow" => n.input.len() == 2 && self.scalar(&n.input[1])? == 2.0,
            _ => false,
        };
        if !ok {
            return Err(no("the error is not squared"));
        }
        self.used[at] = true;
        Ok(&n.output[0])
    }

    /// `ReduceMean` over the feature axis without keeping it, at node `at`; returns its output.
    fn mean_over_features(&mut self, at: usize) -> Result<&'g str, NotDense> {
        let n = &self.graph.node[at];
        if n.op_type != "ReduceMean" {
            return Err(no("the squared error is not averaged"));
        }
        let keepdims = n.attribute.iter().find(|a| a.name == "keepdims").map_or(1, |a| a.i);
        let axes: Vec<i64> = match n.input.get(1).filter(|s| !s.is_empty()) {
            Some(name) => self.constant(name)?.values.iter().map(|v| *v as i64).collect(),
            None => n
                .attribute
                .iter()
                .find(|a| a.name == "axes")
                .map(|a| a.ints.clone())
                .unwrap_or_default(),
        };
        if keepdims != 0 || !(axes == [1] || axes == [-1]) {
            return Err(no("ReduceMean is not over the feature axis with keepdims = 0"));
        }
        self.used[at] = true;
        Ok(&n.output[0])
    }

    fn consumers_of(&self, value: &str) -> Vec<usize> {
        let is_output = self.graph.output.iter().any(|o| o.name == value);
        let mut c = self.consumers.get(value).cloned().unwrap_or_default();
        if is_output {
            c.push(usize::MAX); // a graph output is a consumer the pattern cannot fuse away
        }
        c
    }

    /// The one node reading `value`, if exactly one does and it is not a graph output.
    fn only_consumer(&self, value: &str) -> Option<usize> {
        match self.consumers_of(value)[..] {
            [i] if i != usize::MAX => Some(i),
            _ => None,
        }
    }

    fn single_consumer(&self, value: &str) -> Result<usize, NotDense> {
        self.only_consumer(value).ok_or_else(|| no(format!("{value} has other uses")))
    }

    /// An initializer or `Constant` node output.
    fn constant(&self, name: &str) -> Result<Floats, NotDense> {
        if self.graph.initializer.iter().any(|t| t.name == name) {
            return load_floats(self.graph, name).map_err(|e| no(e.to_string()));
        }
        let node = self
            .graph
            .node
            .iter()
            .find(|n| n.op_type == "Constant" && n.output.first().map(String::as_str) == Some(name))
            .ok_or_else(|| no(format!("{name} is not a constant")))?;
        let tensor = node
            .attribute
            .iter()
            .find(|a| a.name == "value")
            .and_then(|a| a.t.as_ref())
            .ok_or_else(|| no(format!("Constant {name} has no tensor value")))?;
        tensor_floats(tensor, name).map_err(|e| no(e.to_string()))
    }

    fn scalar(&self, name: &str) -> Result<f32, NotDense> {
        match self.constant(name)?.values[..] {
            [v] => Ok(v),
            _ => Err(no(format!("{name} is not a scalar"))),
        }
    }

    /// A constant that broadcasts along the last axis of `[batch, width]` only: shape `[]`,
    /// `[1]`, `[width]` or `[1, width]`; expanded to `width` values.
    fn broadcast(&self, name: &str, width: usize) -> Result<Vec<f32>, NotDense> {
        let c = self.constant(name)?;
        let last = c.shape.last().copied().unwrap_or(1);
        let leading_ones = c.shape.len() <= 2 && c.shape.iter().rev().skip(1).all(|d| *d == 1);
        match (leading_ones, last) {
            (true, 1) => Ok(vec![c.values[0]; width]),
            (true, l) if l == width => Ok(c.values),
            _ => Err(no(format!(
                "{name} of shape {:?} does not broadcast over {width} values",
                c.shape
            ))),
        }
    }

    fn per_feature(&self, name: &str) -> Result<Vec<f32>, NotDense> {
        self.broadcast(name, self.features)
    }
}

/// The operand of a binary node that is not `value` (when `value` is one of two operands).
fn other_operand<'n>(n: &'n pb::NodeProto, value: &str) -> Option<&'n str> {
    match &n.input[..] {
        [a, b] if a == value && b != value => Some(b),
        [a, b] if b == value && a != value => Some(a),
        _ => None,
    }
}
