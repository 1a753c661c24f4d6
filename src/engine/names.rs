//! Fresh names for nodes and values the engine adds to a graph at load time.
//!
//! Node names are optional in ONNX and tools leave them out (onnxruntime's `quantize_dynamic`
//! does), while tract refuses two nodes of one name: a new node or value takes the wanted name,
//! or that name with the first free numeric suffix.

use crate::onnx::pb;

/// `wanted`, or `wanted_N` for the first `N` no node of `graph` is called.
pub(super) fn unused_node_name(graph: &pb::GraphProto, wanted: &str) -> String {
    first_free(wanted, |name| graph.node.iter().any(|n| n.name == name))
}

/// `wanted`, or `wanted_N` for the first `N` no input, output, initializer or node output of
/// `graph` is called.
pub(super) fn unused_value_name(graph: &pb::GraphProto, wanted: &str) -> String {
    first_free(wanted, |name| {
        graph.input.iter().any(|v| v.name == name)
            || graph.output.iter().any(|v| v.name == name)
            || graph.initializer.iter().any(|t| t.name == name)
            || graph.node.iter().any(|n| n.output.iter().any(|o| o == name))
    })
}

fn first_free(wanted: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(wanted) {
        return wanted.to_owned();
    }
    (1..).map(|i| format!("{wanted}_{i}")).find(|n| !taken(n)).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(nodes: &[(&str, &str)]) -> pb::GraphProto {
        pb::GraphProto {
            node: nodes
                .iter()
                .map(|(name, out)| pb::NodeProto {
                    name: (*name).into(),
                    output: vec![(*out).into()],
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn a_taken_name_gets_the_first_free_suffix() {
        let g = graph(&[("a", "x"), ("a_1", "y"), ("", "z")]);
        assert_eq!(unused_node_name(&g, "b"), "b");
        assert_eq!(unused_node_name(&g, "a"), "a_2");
        assert_eq!(unused_value_name(&g, "x"), "x_1");
        assert_eq!(unused_value_name(&g, "a"), "a");
    }
}
