//! Resource caps on what a model may be, checked before tract builds anything from it.
//!
//! A model arrives over the network (a model update), so its size is an input like any other:
//! the bytes are capped before parsing, and the parsed graph's node count (subgraphs included)
//! and stored parameters (initializers and `Constant` tensors) before tract types, optimizes or
//! allocates it. Rows per call are capped by [`super::EngineConfig::max_batch`] and, for a large
//! model, by [`ModelLimits::max_work_per_call`]: rows × parameters (about one multiply-add per
//! parameter per row for the MLPs we run), so the worst accepted call stays bounded in time.
//! The defaults leave two orders of magnitude of room above the shipped models (about 30 nodes
//! and 3,000 parameters) and keep the worst accepted model's per-row cost bounded (see
//! BENCHMARKS.md for the measured worst case).

use crate::onnx::pb;

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
    /// Most rows × parameters one scoring call may take.
    pub max_work_per_call: u64,
}

impl Default for ModelLimits {
    fn default() -> Self {
        ModelLimits {
            max_bytes: 16 << 20,
            max_nodes: 4_096,
            max_parameters: 4_000_000,
            max_work_per_call: 1 << 30,
        }
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

    /// Refuses a parsed model with more nodes or parameters than the caps; returns its
    /// parameter count.
    pub(super) fn check_graph(&self, proto: &pb::ModelProto) -> Result<u64, EngineError> {
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
        Ok(size.parameters)
    }

    /// Most rows one call may score on a model of `parameters` parameters, within `max_batch`.
    pub(super) fn rows_per_call(&self, parameters: u64, max_batch: usize) -> usize {
        let by_work = self.max_work_per_call / parameters.max(1);
        max_batch.min(usize::try_from(by_work).unwrap_or(usize::MAX).max(1))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_work_cap_lowers_rows_per_call_only_for_large_models() {
        let limits = ModelLimits { max_work_per_call: 1_000, ..ModelLimits::default() };
        assert_eq!(limits.rows_per_call(10, 50), 50, "the batch cap binds");
        assert_eq!(limits.rows_per_call(100, 50), 10, "the work cap binds");
        assert_eq!(limits.rows_per_call(5_000, 50), 1, "one row is always allowed");
        assert_eq!(limits.rows_per_call(0, 50), 50);
    }
}
