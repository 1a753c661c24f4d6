//! Resource caps on what a model may be, checked before tract builds anything from it.
//!
//! A model arrives over the network (a model update), so its size is an input like any other:
//! the bytes are capped before parsing, and the parsed graph's node count (subgraphs included)
//! and stored parameters (initializers and `Constant` tensors) before tract types, optimizes or
//! allocates it. Rows per call are capped separately, by [`super::EngineConfig::max_batch`].
//! The defaults leave two orders of magnitude of room above the shipped models (about 30 nodes
//! and 3,000 parameters) and keep the worst accepted model's per-row cost bounded (see
//! BENCHMARKS.md for the measured worst case).

use tract_onnx::pb;

use super::error::EngineError;

/// Caps on a model's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelLimits {
    /// Largest ONNX file accepted, in bytes.
    pub max_bytes: usize,
    /// Most graph nodes accepted, subgraphs included.
    pub max_nodes: usize,
    /// Most stored parameters (tensor elements in initializers and `Constant` nodes).
    pub max_parameters: u64,
}

impl Default for ModelLimits {
    fn default() -> Self {
        ModelLimits { max_bytes: 16 << 20, max_nodes: 4_096, max_parameters: 4_000_000 }
    }
}

impl ModelLimits {
    /// Refuses `bytes` longer than the cap, before any parsing.
    pub(super) fn check_bytes(&self, bytes: &[u8]) -> Result<(), EngineError> {
        if bytes.len() > self.max_bytes {
            return Err(EngineError::ModelTooLarge { bytes: bytes.len(), max: self.max_bytes });
        }
        Ok(())
    }

    /// Refuses a parsed model with more nodes or parameters than the caps.
    pub(super) fn check_graph(&self, proto: &pb::ModelProto) -> Result<(), EngineError> {
        let mut size = GraphSize::default();
        if let Some(graph) = &proto.graph {
            size.add(graph);
        }
        if size.nodes > self.max_nodes as u64 {
            return Err(EngineError::GraphTooLarge {
                what: "nodes",
                count: size.nodes,
                max: self.max_nodes as u64,
            });
        }
        if size.parameters > self.max_parameters {
            return Err(EngineError::GraphTooLarge {
                what: "parameters",
                count: size.parameters,
                max: self.max_parameters,
            });
        }
        Ok(())
    }
}

#[derive(Default)]
struct GraphSize {
    nodes: u64,
    parameters: u64,
}

impl GraphSize {
    fn add(&mut self, graph: &pb::GraphProto) {
        self.nodes += graph.node.len() as u64;
        for tensor in &graph.initializer {
            self.parameters = self.parameters.saturating_add(elements(tensor));
        }
        for node in &graph.node {
            for attr in &node.attribute {
                for tensor in attr.t.iter().chain(&attr.tensors) {
                    self.parameters = self.parameters.saturating_add(elements(tensor));
                }
                for sub in attr.g.iter().chain(&attr.graphs) {
                    self.add(sub);
                }
            }
        }
    }
}

/// Elements a tensor declares (a hostile negative or huge dim counts as the largest).
fn elements(tensor: &pb::TensorProto) -> u64 {
    tensor.dims.iter().fold(1u64, |n, &d| n.saturating_mul(u64::try_from(d).unwrap_or(u64::MAX)))
}
