//! Checks, before tract builds a graph, that every graph output names a tensor the graph defines.
//!
//! tract's ONNX importer looks each output name up in its table of tensors and panics on a
//! name nothing defines; the release wasm build aborts on a panic, so such a model must be
//! refused here, as a parse error, before tract sees it. Subgraphs (`If`, `Loop`, `Scan`
//! bodies) are checked the same way, against their own tensors only.

use std::collections::HashSet;

use crate::onnx::pb;

use super::error::EngineError;

/// Refuses a model whose graph, or any subgraph, outputs a tensor nothing defines.
pub(super) fn check_outputs_defined(proto: &pb::ModelProto) -> Result<(), EngineError> {
    match &proto.graph {
        Some(graph) => check_graph(graph),
        None => Ok(()),
    }
}

fn check_graph(graph: &pb::GraphProto) -> Result<(), EngineError> {
    let mut defined: HashSet<&str> = HashSet::new();
    defined.extend(graph.input.iter().map(|i| i.name.as_str()));
    defined.extend(graph.initializer.iter().map(|t| t.name.as_str()));
    for node in &graph.node {
        // tract turns a node input it cannot resolve into a source of its own name.
        defined.extend(node.input.iter().chain(&node.output).map(String::as_str));
        for attr in &node.attribute {
            for sub in attr.g.iter().chain(&attr.graphs) {
                check_graph(sub)?;
            }
        }
    }
    match graph.output.iter().find(|o| !defined.contains(o.name.as_str())) {
        Some(o) => Err(EngineError::Parse(format!(
            "graph `{}` outputs `{}`, which no input, initializer or node defines",
            graph.name, o.name
        ))),
        None => Ok(()),
    }
}
