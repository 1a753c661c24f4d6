//! The worst case the engine's resource caps allow: an MLP autoencoder with as many parameters
//! as [`ModelLimits`] accepts (9 → H → H → 9, H = 1,990: 3,999,909 parameters, 16.0 MB of
//! float weights, under the 16 MiB byte cap), built here byte by byte, loaded, and timed for one
//! reading and for the largest call the work cap lets through. Reported in BENCHMARKS.md.
//!
//! ```text
//! cargo run --release --example caps_bench
//! ```
#![allow(clippy::expect_used, reason = "a benchmark binary: a failure is the answer")]

#[path = "../tests/common/onnx_bytes.rs"]
mod onnx_bytes;

use std::time::Instant;

use edge_anomaly::engine::ModelLimits;
use edge_anomaly::{Backend, Engine, EngineConfig};
use onnx_bytes::{attr_int, attr_ints, initializer, model, node, value_info, Dim, FLOAT};

const F: usize = 9;
const H: usize = 1_990;

fn weights(name: &str, dims: &[usize], seed: u32) -> Vec<u8> {
    let n: usize = dims.iter().product();
    let scale = 1.0 / (dims[0] as f32).sqrt();
    let raw: Vec<u8> = (0..n)
        .flat_map(|i| {
            let x = ((i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed) >> 8) as f32;
            ((x / (1u32 << 24) as f32 - 0.5) * scale).to_le_bytes()
        })
        .collect();
    let dims: Vec<i64> = dims.iter().map(|&d| d as i64).collect();
    initializer(name, FLOAT, &dims, &raw)
}

fn largest_model() -> Vec<u8> {
    let layer = |i: usize, input: &str, out: &str, relu: bool| {
        let (mm, add) = (format!("mm{i}"), if relu { format!("a{i}") } else { out.to_owned() });
        let mut nodes = vec![
            node("MatMul", &[input, &format!("w{i}")], &[&mm], &[]),
            node("Add", &[&mm, &format!("b{i}")], &[&add], &[]),
        ];
        if relu {
            nodes.push(node("Relu", &[&add], &[out], &[]));
        }
        nodes
    };
    let mut nodes = Vec::new();
    nodes.extend(layer(1, "x", "h1", true));
    nodes.extend(layer(2, "h1", "h2", true));
    nodes.extend(layer(3, "h2", "r", false));
    nodes.push(node("Sub", &["r", "x"], &["d"], &[]));
    nodes.push(node("Mul", &["d", "d"], &["sq"], &[]));
    nodes.push(node(
        "ReduceMean",
        &["sq"],
        &["y"],
        &[attr_ints("axes", &[1]), attr_int("keepdims", 0)],
    ));
    let inits = vec![
        weights("w1", &[F, H], 1),
        weights("b1", &[H], 2),
        weights("w2", &[H, H], 3),
        weights("b2", &[H], 4),
        weights("w3", &[H, F], 5),
        weights("b3", &[F], 6),
    ];
    model(
        &nodes,
        &inits,
        &[value_info("x", FLOAT, &[Dim::Param("N"), Dim::Value(F as i64)])],
        &[value_info("y", FLOAT, &[Dim::Param("N")])],
    )
}

fn time_call(engine: &Engine, rows: usize, reps: usize) -> (f64, f64) {
    let input: Vec<f32> = (0..rows * F).map(|i| (i % 17) as f32 * 0.1).collect();
    engine.score(&input).expect("warm-up");
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            engine.score(&input).expect("scores");
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[times.len() - 1])
}

fn main() {
    let bytes = largest_model();
    let limits = ModelLimits::default();
    println!(
        "model: {} bytes (cap {}), {} parameters (cap {})",
        bytes.len(),
        limits.max_bytes,
        F * H + H + H * H + H + H * F + F,
        limits.max_parameters
    );
    println!("| backend | load ms | rows per call (cap) | 1 row: p50 / max ms | largest call: p50 / max ms |");
    println!("|---|---|---|---|---|");
    for backend in [Backend::Auto, Backend::Tract] {
        let t = Instant::now();
        let engine = Engine::load(&bytes, EngineConfig { backend, ..EngineConfig::default() })
            .expect("the largest accepted model loads");
        let load_ms = t.elapsed().as_secs_f64() * 1e3;
        let rows = engine.max_rows();
        let (one, one_max) = time_call(&engine, 1, 21);
        let (big, big_max) = time_call(&engine, rows, 5);
        println!(
            "| {} | {load_ms:.0} | {rows} | {one:.2} / {one_max:.2} | {big:.0} / {big_max:.0} |",
            engine.backend().name()
        );
        let over = vec![0.0f32; (rows + 1) * F];
        let err = engine.score(&over).expect_err("one row past the work cap");
        assert_eq!(err.code(), "BATCH_TOO_LARGE");
    }
    let over = ModelLimits { max_parameters: 3_999_908, ..ModelLimits::default() };
    let refused = Engine::load(&bytes, EngineConfig { limits: over, ..EngineConfig::default() });
    println!(
        "one parameter over the cap: {}",
        refused.err().map_or("loaded?!".into(), |e| e.code().to_string())
    );
}
