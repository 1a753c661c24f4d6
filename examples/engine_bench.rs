//! Native companion to the browser benchmark (`node bench/run.mjs`): the engine's per-call
//! latency and batch throughput on this CPU, for trying engine changes without a wasm build.
//! Not a test and not the numbers we publish (those are the browser's, in BENCHMARKS.md).
//!
//! ```text
//! cargo run --release --example engine_bench [-- MODEL.onnx ...]
//! ```
#![allow(clippy::expect_used, reason = "a benchmark binary: a failure is the answer")]

use std::time::Instant;

use edge_anomaly::{Backend, Engine, EngineConfig, Int8Mode};

fn main() {
    let mut paths: Vec<String> = std::env::args().skip(1).collect();
    if paths.is_empty() {
        paths =
            vec!["models/shuttle/model.f32.onnx".into(), "models/shuttle/model.int8.onnx".into()];
    }
    println!("| model | mode | single-row p50 µs | p99 µs | rows/s @64 | @1024 | @4096 |");
    println!("|---|---|---|---|---|---|---|");
    for path in &paths {
        let bytes = std::fs::read(path).expect("model file");
        // A float model has nothing to dequantize: only the default mode makes sense for it.
        let quantized = Engine::load(&bytes, EngineConfig::default())
            .expect("model loads")
            .dequantized_matmuls()
            > 0;
        let modes: &[(Int8Mode, Backend)] = if quantized {
            &[
                (Int8Mode::DequantizeWeights, Backend::Auto),
                (Int8Mode::DequantizeWeights, Backend::Tract),
                (Int8Mode::AsWritten, Backend::Auto),
            ]
        } else {
            &[
                (Int8Mode::DequantizeWeights, Backend::Auto),
                (Int8Mode::DequantizeWeights, Backend::Tract),
            ]
        };
        for &(mode, backend) in modes {
            let config = EngineConfig { int8: mode, backend, ..EngineConfig::default() };
            let mut engine = Engine::load(&bytes, config).expect("model loads");
            let f = engine.features();
            let row: Vec<f32> = (0..f).map(|i| i as f32 * 0.5).collect();
            let (p50, p99) = single_row(&mut engine, &row);
            let rates: Vec<String> = [64, 1024, 4096]
                .iter()
                .map(|&n| format!("{:.2} M", batch_rate(&mut engine, &row, n) / 1e6))
                .collect();
            let runs = engine.backend().name();
            println!("| {path} | {mode:?}, {runs} | {p50:.1} | {p99:.1} | {} |", rates.join(" | "));
        }
    }
}

fn single_row(engine: &mut Engine, row: &[f32]) -> (f64, f64) {
    let mut out = [0f32; 1];
    for _ in 0..1000 {
        engine.score_into(row, &mut out).expect("scores");
    }
    let mut times: Vec<f64> = (0..20_000)
        .map(|_| {
            let t = Instant::now();
            engine.score_into(row, &mut out).expect("scores");
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    (times[times.len() / 2], times[times.len() * 99 / 100])
}

fn batch_rate(engine: &mut Engine, row: &[f32], n: usize) -> f64 {
    let rows: Vec<f32> = row.iter().copied().cycle().take(row.len() * n).collect();
    let mut out = vec![0f32; n];
    engine.score_into(&rows, &mut out).expect("scores");
    let (start, mut done) = (Instant::now(), 0usize);
    while start.elapsed().as_secs_f64() < 0.5 {
        engine.score_into(&rows, &mut out).expect("scores");
        done += n;
    }
    done as f64 / start.elapsed().as_secs_f64()
}
