//! The model loader against truncated, mutated, random and hostile ONNX bytes: every load ends
//! in `Ok` or a typed [`EngineError`] — never a panic — and a model that loads scores the golden
//! rows without panicking.
//!
//! Case counts follow `PROPTEST_CASES` (default 256 per property); the prefix sweep checks every
//! `PREFIX_STRIDE`-th prefix (default 97, `1` for all of them).
#![cfg(not(target_arch = "wasm32"))] // native; proptest does not target the browser
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

mod common;
#[path = "common/onnx_bytes.rs"]
mod onnx_bytes;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::{golden, F32_MODEL, INT8_MODEL};
use edge_anomaly::{Backend, Engine, EngineConfig, EngineError, Int8Mode};
use onnx_bytes::{
    attr_int, attr_ints, field_bytes, field_varint, initializer, mean_model, model, node,
    value_info, varint, Dim, FLOAT, INT64,
};
use proptest::prelude::*;

/// Error codes a load may end in; anything else from a load is a bug.
const LOAD_CODES: &[&str] =
    &["MODEL_PARSE", "MODEL_CONTRACT", "MODEL_OPTIMIZE", "MODEL_TOO_LARGE", "GRAPH_TOO_LARGE"];

/// Loads `bytes` under every engine configuration and checks the outcome is typed; a model that
/// loads must score the golden rows (or its own width of zeros) without panicking.
fn check_load(bytes: &[u8]) -> Result<(), String> {
    let configs = [
        EngineConfig::default(),
        EngineConfig { backend: Backend::Tract, ..EngineConfig::default() },
        EngineConfig { int8: Int8Mode::AsWritten, ..EngineConfig::default() },
    ];
    for config in configs {
        let outcome = catch_unwind(AssertUnwindSafe(|| match Engine::load(bytes, config) {
            // Wider than any buffer worth building: loading without a panic is the property.
            Ok(engine) if engine.features() > 1 << 16 => Ok(()),
            Ok(engine) => {
                let rows = golden_or_zeros(engine.features());
                match engine.score(&rows) {
                    Ok(scores) if scores.len() * engine.features() == rows.len() => Ok(()),
                    Ok(scores) => Err(format!("{} scores for {} values", scores.len(), rows.len())),
                    Err(EngineError::Inference(_)) => Ok(()),
                    Err(e) => Err(format!("validated rows refused: {e}")),
                }
            }
            Err(e) if LOAD_CODES.contains(&e.code()) => Ok(()),
            Err(e) => Err(format!("load ended in {} ({e})", e.code())),
        }));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(why)) => return Err(format!("{config:?}: {why}")),
            Err(panic) => return Err(format!("{config:?}: panicked: {}", panic_text(&panic))),
        }
    }
    Ok(())
}

fn golden_or_zeros(features: usize) -> Vec<f32> {
    let g = golden();
    if features == g.features.len() {
        g.flat_rows()
    } else {
        vec![0.0; features]
    }
}

fn panic_text(p: &Box<dyn std::any::Any + Send>) -> String {
    p.downcast_ref::<String>()
        .cloned()
        .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "<non-string panic>".into())
}

fn assert_typed(what: &str, bytes: &[u8]) {
    if let Err(why) = check_load(bytes) {
        panic!("{what}: {why}");
    }
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[test]
fn every_sampled_prefix_of_the_shipped_models_is_typed() {
    let stride = env_usize("PREFIX_STRIDE", 97).max(1);
    for (name, bytes) in [("f32", F32_MODEL), ("int8", INT8_MODEL)] {
        let mut tried = 0;
        for len in (0..bytes.len()).step_by(stride).chain([bytes.len() - 1]) {
            assert_typed(&format!("{name} prefix {len}"), &bytes[..len]);
            tried += 1;
        }
        eprintln!("{name}: {tried} prefixes of {} bytes", bytes.len());
    }
}

/// One edit to a model's bytes.
#[derive(Clone, Debug)]
enum Edit {
    Flip { at: usize, mask: u8 },
    Set { at: usize, byte: u8 },
    Insert { at: usize, bytes: Vec<u8> },
    Delete { at: usize, len: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (any::<usize>(), 1u8..).prop_map(|(at, mask)| Edit::Flip { at, mask }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Set { at, byte }),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Edit::Insert { at, bytes }),
        (any::<usize>(), 1usize..64).prop_map(|(at, len)| Edit::Delete { at, len }),
    ]
}

fn apply(base: &[u8], edits: &[Edit]) -> Vec<u8> {
    let mut b = base.to_vec();
    for e in edits {
        let n = b.len().max(1);
        match e {
            Edit::Flip { at, mask } => {
                if let Some(v) = b.get_mut(at % n) {
                    *v ^= mask;
                }
            }
            Edit::Set { at, byte } => {
                if let Some(v) = b.get_mut(at % n) {
                    *v = *byte;
                }
            }
            Edit::Insert { at, bytes } => {
                let at = at % (b.len() + 1);
                b.splice(at..at, bytes.iter().copied());
            }
            Edit::Delete { at, len } => {
                let at = at % n;
                let end = (at + len).min(b.len());
                b.drain(at.min(end)..end);
            }
        }
    }
    b
}

/// Protobuf framing with nonsense inside: valid tags, varints and lengths, random contents,
/// nested up to three levels, with ONNX's field numbers over-represented.
fn proto_garbage() -> impl Strategy<Value = Vec<u8>> {
    let field = prop_oneof![1u32..16, 1u32..30, Just(7), Just(8), Just(1), Just(5)];
    let leaf = prop::collection::vec(
        prop_oneof![
            (field.clone(), any::<u64>()).prop_map(|(f, v)| {
                let mut o = Vec::new();
                field_varint(&mut o, f, v);
                o
            }),
            (field.clone(), prop::collection::vec(any::<u8>(), 0..24)).prop_map(|(f, v)| {
                let mut o = Vec::new();
                field_bytes(&mut o, f, &v);
                o
            }),
        ],
        0..8,
    )
    .prop_map(|parts| parts.concat());
    leaf.prop_recursive(3, 64, 6, move |inner| {
        prop::collection::vec((field.clone(), inner), 1..6).prop_map(|parts| {
            let mut o = Vec::new();
            for (f, body) in parts {
                field_bytes(&mut o, f, &body);
            }
            o
        })
    })
}

proptest! {
    #[test]
    fn edited_shipped_models_load_or_fail_typed(
        int8 in any::<bool>(),
        edits in prop::collection::vec(edit(), 1..6),
    ) {
        let base = if int8 { INT8_MODEL } else { F32_MODEL };
        let bytes = apply(base, &edits);
        prop_assert!(check_load(&bytes).is_ok(), "{:?}", check_load(&bytes));
    }

    #[test]
    fn random_bytes_fail_typed(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        prop_assert!(check_load(&bytes).is_ok(), "{:?}", check_load(&bytes));
    }

    #[test]
    fn protobuf_shaped_garbage_fails_typed(bytes in proto_garbage()) {
        prop_assert!(check_load(&bytes).is_ok(), "{:?}", check_load(&bytes));
    }

    #[test]
    fn mean_models_of_any_declared_width_are_typed(features in prop_oneof![
        Just(0i64), Just(-1), Just(i64::MIN), Just(i64::MAX), Just(1 << 31), Just(1 << 40),
        1i64..64,
    ]) {
        let bytes = mean_model(Dim::Value(features));
        prop_assert!(check_load(&bytes).is_ok(), "{:?}", check_load(&bytes));
    }
}

#[test]
fn the_hand_built_baseline_loads_and_scores() {
    // Guards the hostile graphs below: each differs from this one model by its one defect.
    let e = Engine::load(&mean_model(Dim::Value(4)), EngineConfig::default()).expect("loads");
    assert_eq!(e.score(&[1.0, 2.0, 3.0, 6.0]).expect("scores"), vec![3.0]);
}

fn expect_code(what: &str, bytes: &[u8], code: &str) {
    assert_typed(what, bytes);
    match Engine::load(bytes, EngineConfig::default()) {
        Err(e) => assert_eq!(e.code(), code, "{what}: {e}"),
        Ok(_) => panic!("{what}: loaded"),
    }
}

#[test]
fn a_zero_feature_input_is_a_contract_violation() {
    expect_code("zero features", &mean_model(Dim::Value(0)), "MODEL_CONTRACT");
}

#[test]
fn an_int64_input_is_a_contract_violation() {
    let bytes = model(
        &[node("ReduceMean", &["x"], &["y"], &[attr_ints("axes", &[1]), attr_int("keepdims", 0)])],
        &[],
        &[value_info("x", INT64, &[Dim::Param("N"), Dim::Value(4)])],
        &[value_info("y", INT64, &[Dim::Param("N")])],
    );
    expect_code("int64 input", &bytes, "MODEL_CONTRACT");
}

#[test]
fn an_unknown_element_type_is_typed() {
    let bytes = model(
        &[node("ReduceMean", &["x"], &["y"], &[attr_ints("axes", &[1]), attr_int("keepdims", 0)])],
        &[],
        &[value_info("x", 999, &[Dim::Param("N"), Dim::Value(4)])],
        &[value_info("y", FLOAT, &[Dim::Param("N")])],
    );
    assert_typed("unknown element type", &bytes);
}

#[test]
fn a_graph_without_inputs_or_outputs_is_typed() {
    let n =
        || node("ReduceMean", &["x"], &["y"], &[attr_ints("axes", &[1]), attr_int("keepdims", 0)]);
    let x = || value_info("x", FLOAT, &[Dim::Param("N"), Dim::Value(4)]);
    let y = || value_info("y", FLOAT, &[Dim::Param("N")]);
    assert_typed("no inputs", &model(&[n()], &[], &[], &[y()]));
    assert_typed("no outputs", &model(&[n()], &[], &[x()], &[]));
    assert_typed("no graph content", &model(&[], &[], &[], &[]));
}

#[test]
fn an_output_naming_no_tensor_is_refused_not_panicked() {
    // tract's importer indexes its tensor table by each output name and panicked here.
    let x = value_info("x", FLOAT, &[Dim::Param("N"), Dim::Value(4)]);
    let y = value_info("y", FLOAT, &[Dim::Param("N")]);
    expect_code(
        "output names nothing",
        &model(&[], &[], std::slice::from_ref(&x), std::slice::from_ref(&y)),
        "MODEL_PARSE",
    );
    let orphan = model(
        &[node("ReduceMean", &["x"], &["z"], &[attr_ints("axes", &[1]), attr_int("keepdims", 0)])],
        &[],
        &[x],
        &[y],
    );
    expect_code("output beside the node's", &orphan, "MODEL_PARSE");
}

#[test]
fn a_node_reading_a_missing_tensor_is_typed() {
    let bytes = model(
        &[node("Add", &["x", "ghost"], &["y"], &[])],
        &[],
        &[value_info("x", FLOAT, &[Dim::Param("N"), Dim::Value(4)])],
        &[value_info("y", FLOAT, &[Dim::Param("N")])],
    );
    assert_typed("missing tensor", &bytes);
}

#[test]
fn a_cycle_is_typed() {
    // a = x + b, b = a + x: no order satisfies both.
    let bytes = model(
        &[node("Add", &["x", "b"], &["a"], &[]), node("Add", &["a", "x"], &["b"], &[])],
        &[],
        &[value_info("x", FLOAT, &[Dim::Param("N"), Dim::Value(4)])],
        &[value_info("b", FLOAT, &[Dim::Param("N")])],
    );
    assert_typed("cycle", &bytes);
    let self_loop = model(
        &[node("Add", &["x", "y"], &["y"], &[])],
        &[],
        &[value_info("x", FLOAT, &[Dim::Param("N"), Dim::Value(4)])],
        &[value_info("y", FLOAT, &[Dim::Param("N")])],
    );
    assert_typed("self loop", &self_loop);
}

#[test]
fn an_initializer_declaring_huge_dims_without_data_is_typed() {
    for dims in [vec![1i64 << 20, 1 << 20], vec![1 << 40, 1 << 40], vec![-1, 4], vec![i64::MAX]] {
        let bytes = model(
            &[node("Add", &["x", "w"], &["z"], &[]), {
                node(
                    "ReduceMean",
                    &["z"],
                    &["y"],
                    &[attr_ints("axes", &[1]), attr_int("keepdims", 0)],
                )
            }],
            &[initializer("w", FLOAT, &dims, &[0; 16])],
            &[value_info("x", FLOAT, &[Dim::Param("N"), Dim::Value(4)])],
            &[value_info("y", FLOAT, &[Dim::Param("N")])],
        );
        assert_typed(&format!("initializer dims {dims:?}"), &bytes);
    }
}

#[test]
fn varint_framing_edge_cases_are_typed() {
    // A length prefix far past the end, a ten-byte varint, and a tag with field number 0.
    let mut huge_len = Vec::new();
    varint(&mut huge_len, (7 << 3) | 2);
    varint(&mut huge_len, u64::MAX);
    assert_typed("huge length", &huge_len);
    assert_typed(
        "overlong varint",
        &[0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
    );
    assert_typed("field zero", &[0x00, 0x01]);
}

#[test]
fn a_flipped_bit_in_the_int8_reduction_axes_is_typed() {
    // Found by the edit property: the flip turns `ReduceMean`'s axis 1 into 13, which tract
    // resolved against the rank with an `unwrap()`.
    let bytes = apply(INT8_MODEL, &[Edit::Flip { at: 536_798_441_345_487_735, mask: 2 }]);
    assert_typed("flipped int8 axes", &bytes);
}

/// `x [N, 4]` → `op` with `attributes` (and `extra` inputs) → `y [N]`.
fn reduction(op: &str, attributes: &[Vec<u8>], extra: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let inputs: Vec<&str> = std::iter::once("x").chain(extra.iter().map(|(n, _)| *n)).collect();
    let initializers: Vec<Vec<u8>> = extra.iter().map(|(_, t)| t.clone()).collect();
    model(
        &[node(op, &inputs, &["y"], attributes)],
        &initializers,
        &[value_info("x", FLOAT, &[Dim::Param("N"), Dim::Value(4)])],
        &[value_info("y", FLOAT, &[Dim::Param("N")])],
    )
}

#[test]
fn reduction_axes_outside_the_input_rank_are_refused() {
    let keep = || attr_int("keepdims", 0);
    for axis in [2, -3, 13, i64::MAX, i64::MIN] {
        for op in ["ReduceMean", "ReduceMax", "ReduceL2", "ReduceSumSquare"] {
            let bytes = reduction(op, &[attr_ints("axes", &[axis]), keep()], &[]);
            expect_code(&format!("{op} axes [{axis}]"), &bytes, "MODEL_CONTRACT");
        }
        let both = reduction("ReduceMean", &[attr_ints("axes", &[1, axis]), keep()], &[]);
        expect_code(&format!("ReduceMean axes [1, {axis}]"), &both, "MODEL_CONTRACT");
        // Since opset 13 ReduceSum reads its axes from a second input.
        let axes = initializer("axes", INT64, &[1], &axis.to_le_bytes());
        let sum = reduction("ReduceSum", &[keep()], &[("axes", axes)]);
        expect_code(&format!("ReduceSum axes input [{axis}]"), &sum, "MODEL_CONTRACT");
        let arg = reduction("ArgMax", &[attr_int("axis", axis), keep()], &[]);
        assert_typed(&format!("ArgMax axis {axis}"), &arg);
    }
}

#[test]
fn reduction_axes_inside_the_input_rank_still_load() {
    let keep = || attr_int("keepdims", 0);
    for axis in [1, -1] {
        let mean = reduction("ReduceMean", &[attr_ints("axes", &[axis]), keep()], &[]);
        let e = Engine::load(&mean, EngineConfig::default()).expect("ReduceMean loads");
        assert_eq!(e.score(&[1.0, 2.0, 3.0, 6.0]).expect("scores"), vec![3.0], "axis {axis}");
        let axes = initializer("axes", INT64, &[1], &axis.to_le_bytes());
        let sum = reduction("ReduceSum", &[keep()], &[("axes", axes)]);
        let e = Engine::load(&sum, EngineConfig::default()).expect("ReduceSum loads");
        assert_eq!(e.score(&[1.0, 2.0, 3.0, 6.0]).expect("scores"), vec![12.0], "axis {axis}");
    }
}
