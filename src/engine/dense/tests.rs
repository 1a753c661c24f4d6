//! The dense path against tract on the shipped models and on rewritten forms of them: graphs that
//! mean the same must be recognised and agree; anything else must fall back to tract.
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

use prost::Message;

use crate::onnx::pb;

use super::super::backend::{choose, Backend, Chosen};
use super::super::{Engine, EngineConfig, EngineError};

const F32_MODEL: &[u8] = include_bytes!("../../../models/shuttle/model.f32.onnx");
const INT8_MODEL: &[u8] = include_bytes!("../../../models/shuttle/model.int8.onnx");

fn proto(bytes: &[u8]) -> pb::ModelProto {
    crate::onnx::parse(bytes).expect("parses")
}

fn tract_engine(bytes: &[u8]) -> Engine {
    let config = EngineConfig { backend: Backend::Tract, ..EngineConfig::default() };
    Engine::load(bytes, config).expect("loads")
}

/// What the engine picks for `model`, checked against tract running the unmodified f32 model.
fn chosen_for(model: &pb::ModelProto) -> Chosen {
    let reference = tract_engine(F32_MODEL);
    choose(Backend::Auto, model, 9, |rows, out| reference.score_into(rows, out)).1
}

fn graph(model: &mut pb::ModelProto) -> &mut pb::GraphProto {
    model.graph.as_mut().expect("graph")
}

fn node<'m>(model: &'m mut pb::ModelProto, op: &str, nth: usize) -> &'m mut pb::NodeProto {
    graph(model).node.iter_mut().filter(|n| n.op_type == op).nth(nth).expect("node exists")
}

fn initializer<'m>(model: &'m mut pb::ModelProto, name: &str) -> &'m mut pb::TensorProto {
    graph(model).initializer.iter_mut().find(|t| t.name == name).expect("initializer exists")
}

#[test]
fn shipped_models_run_dense() {
    for bytes in [F32_MODEL, INT8_MODEL] {
        let e = Engine::load(bytes, EngineConfig::default()).expect("loads");
        assert_eq!(e.backend(), &Chosen::Dense { layers: 6 });
    }
    assert_eq!(tract_engine(F32_MODEL).backend().name(), "tract");
}

#[test]
fn dense_agrees_with_tract_at_every_batch_size() {
    for bytes in [F32_MODEL, INT8_MODEL] {
        let (dense, tract) =
            (Engine::load(bytes, EngineConfig::default()).expect("loads"), tract_engine(bytes));
        let mut seed = 1u32;
        // Sizes around the 4-reading tile: remainders 0–3 and one lone reading.
        for n in [1, 2, 3, 4, 5, 7, 8, 9, 63, 64, 65, 1000] {
            let rows: Vec<f32> = (0..n * 9)
                .map(|i| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    ((seed >> 9) as f32 / (1 << 23) as f32 - 0.5) * [1.0, 50.0, 200.0][i % 3]
                })
                .collect();
            let (a, b) = (dense.score(&rows).expect("dense"), tract.score(&rows).expect("tract"));
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-5 + 1e-4 * y.abs(),
                    "n={n} row {i}: dense {x} tract {y}"
                );
            }
        }
    }
}

#[test]
fn gemm_with_transposed_weights_is_recognised() {
    let mut m = proto(F32_MODEL);
    let w = initializer(&mut m, "W1");
    let (k, n) = (w.dims[0] as usize, w.dims[1] as usize);
    let src = w.float_data.clone();
    let src = if src.is_empty() {
        w.raw_data.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
    } else {
        src
    };
    w.float_data = (0..k * n).map(|i| src[(i % k) * n + i / k]).collect();
    w.raw_data.clear();
    w.dims = vec![n as i64, k as i64];
    let gemm = node(&mut m, "Gemm", 1);
    gemm.attribute.push(pb::AttributeProto {
        name: "transB".into(),
        i: 1,
        r#type: 2,
        ..Default::default()
    });
    assert_eq!(chosen_for(&m), Chosen::Dense { layers: 6 });
}

#[test]
fn matmul_plus_add_is_a_layer() {
    // The int8 model after its rewrite is all MatMul + Add; check it agrees with its own tract run.
    let reference = tract_engine(INT8_MODEL);
    let mut m = proto(INT8_MODEL);
    let rewritten = super::super::dequantize::dequantize_dynamic_matmuls(&mut m).expect("rewrites");
    assert_eq!(rewritten, 6);
    let (plan, chosen) = choose(Backend::Auto, &m, 9, |rows, out| reference.score_into(rows, out));
    assert!(plan.is_some());
    assert_eq!(chosen, Chosen::Dense { layers: 6 });
}

#[test]
fn other_activations_fall_back_to_tract() {
    let mut m = proto(F32_MODEL);
    node(&mut m, "Relu", 2).op_type = "Sigmoid".into();
    let Chosen::Tract { reason } = chosen_for(&m) else { panic!("Sigmoid is not covered") };
    assert!(reason.contains("Sigmoid"), "{reason}");
}

#[test]
fn extra_nodes_fall_back_to_tract() {
    let mut m = proto(F32_MODEL);
    // A second consumer of a hidden activation: the chain is no longer linear.
    let h1 = node(&mut m, "Relu", 1).output[0].clone();
    graph(&mut m).node.push(pb::NodeProto {
        op_type: "Identity".into(),
        input: vec![h1],
        output: vec!["side".into()],
        ..Default::default()
    });
    assert!(matches!(chosen_for(&m), Chosen::Tract { .. }));
}

#[test]
fn per_row_constants_fall_back_to_tract() {
    // A [F, 1]-shaped mean would broadcast across readings, not features.
    let mut m = proto(F32_MODEL);
    initializer(&mut m, "norm_mean").dims = vec![9, 1];
    let Chosen::Tract { reason } = chosen_for(&m) else { panic!("[9,1] is not per-feature") };
    assert!(reason.contains("broadcast"), "{reason}");
}

#[test]
fn a_wrong_recognition_is_caught_by_the_probe() {
    // Same graph, different weights than the reference: the probe must refuse the dense path.
    let mut m = proto(F32_MODEL);
    let b = initializer(&mut m, "B5");
    if b.float_data.is_empty() {
        // Flip an exponent bit of every bias: each value ×4 or ÷4.
        b.raw_data.iter_mut().skip(3).step_by(4).for_each(|x| *x ^= 0x01);
    } else {
        b.float_data.iter_mut().for_each(|v| *v += 0.5);
    }
    let Chosen::Tract { reason } = chosen_for(&m) else { panic!("probe must catch the mismatch") };
    assert!(reason.contains("dense kernel gave"), "{reason}");
}

#[test]
fn backend_tract_is_honoured() {
    let reference = tract_engine(F32_MODEL);
    let (plan, chosen) =
        choose(Backend::Tract, &proto(F32_MODEL), 9, |rows, out| reference.score_into(rows, out));
    assert!(plan.is_none());
    assert_eq!(chosen, Chosen::Tract { reason: "configured".into() });
}

#[test]
fn fixture_without_layers_runs_on_tract() {
    let bytes =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/valid_mean.onnx"))
            .expect("fixture");
    let e = Engine::load(&bytes, EngineConfig::default()).expect("loads");
    assert_eq!(e.backend().name(), "tract");
}

/// The pipeline's window export: the autoencoder with the range guard beside it
/// (`tests/fixtures/interop/generate.py`).
const GUARDED: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/interop/pipeline-window-guard");

fn guarded(suffix: &str) -> Vec<u8> {
    std::fs::read(format!("{GUARDED}{suffix}")).expect("guarded fixture")
}

/// Readings of `features` values at several scales, deterministic.
fn rows(n: usize, features: usize, seed: &mut u32) -> Vec<f32> {
    (0..n * features)
        .map(|i| {
            *seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            ((*seed >> 9) as f32 / (1 << 23) as f32 - 0.5) * [0.2, 2.0, 20.0][(i / features) % 3]
        })
        .collect()
}

#[test]
fn the_range_guard_runs_dense_and_agrees_with_tract() {
    for suffix in [".onnx", ".int8.onnx"] {
        let bytes = guarded(suffix);
        let dense = Engine::load(&bytes, EngineConfig::default()).expect("loads");
        assert_eq!(dense.backend(), &Chosen::Dense { layers: 6 }, "{suffix}");
        let tract = tract_engine(&bytes);
        let mut seed = 7u32;
        for n in [1, 3, 4, 5, 9, 64, 257] {
            let rows = rows(n, 16, &mut seed);
            let (a, b) = (dense.score(&rows).expect("dense"), tract.score(&rows).expect("tract"));
            for (i, (x, y)) in a.iter().zip(&b).enumerate() {
                assert!(
                    (x - y).abs() <= 1e-5 + 1e-4 * y.abs(),
                    "{suffix} n={n} row {i}: {x} vs {y}"
                );
            }
        }
    }
}

/// tract's scores for a model held as a protobuf (the engine loads bytes).
fn tract_scores(m: &pb::ModelProto) -> impl Fn(&[f32], &mut [f32]) -> Result<(), EngineError> {
    let engine = tract_engine(&m.encode_to_vec());
    move |rows, out| engine.score_into(rows, out)
}

/// What the engine picks for a rewritten guarded model, checked against tract on the original.
fn guarded_chosen(m: &pb::ModelProto) -> Chosen {
    let reference = tract_engine(&guarded(".onnx"));
    choose(Backend::Auto, m, 16, |rows, out| reference.score_into(rows, out)).1
}

#[test]
fn a_guard_whose_bounds_are_one_clip_is_recognised() {
    // Clip(u, -b, b) for every channel is Max(u, -b) then Min(_, b): make the bounds scalar.
    let mut m = proto(&guarded(".onnx"));
    let (lo, hi) = (-0.5f32, 0.5f32);
    for (name, v) in [("guard_lo", lo), ("guard_hi", hi)] {
        let t = initializer(&mut m, name);
        *t = pb::TensorProto {
            name: name.into(),
            data_type: 1,
            float_data: vec![v],
            ..Default::default()
        };
    }
    let reference = tract_scores(&m);
    let mut clip = m.clone();
    let g = graph(&mut clip);
    let max = g.node.iter().position(|n| n.op_type == "Max").expect("Max");
    let min_out = g.node.iter().find(|n| n.op_type == "Min").expect("Min").output[0].clone();
    g.node[max] = pb::NodeProto {
        op_type: "Clip".into(),
        input: vec!["guard_u".into(), "guard_lo".into(), "guard_hi".into()],
        output: vec![min_out],
        ..Default::default()
    };
    g.node.retain(|n| n.op_type != "Min");
    let (plan, chosen) = choose(Backend::Auto, &clip, 16, reference);
    assert!(plan.is_some(), "{chosen:?}");
    assert_eq!(chosen, Chosen::Dense { layers: 6 });
}

#[test]
fn a_guard_not_added_to_the_error_falls_back_to_tract() {
    let mut m = proto(&guarded(".onnx"));
    let add = graph(&mut m).node.iter_mut().rfind(|n| n.op_type == "Add").expect("Add");
    add.op_type = "Sub".into();
    let Chosen::Tract { reason } = guarded_chosen(&m) else { panic!("Sub is not the guard's sum") };
    assert!(reason.contains("not added"), "{reason}");
}

#[test]
fn a_guard_bounded_by_another_op_falls_back_to_tract() {
    let mut m = proto(&guarded(".onnx"));
    node(&mut m, "Max", 0).op_type = "Add".into();
    let Chosen::Tract { reason } = guarded_chosen(&m) else { panic!("Add is not a bound") };
    assert!(reason.contains("guard"), "{reason}");
}
