//! What contributions cost on this CPU: rows/s of plain scoring (`score_into`) and of `explain`
//! on the same readings, measured side by side, and the time of one `repair` of a reading the
//! model flags (it runs once per flagged reading). The browser's figures come from
//! `node bench/run.mjs`; both are in BENCHMARKS.md ("Contributions").
//!
//! ```text
//! cargo run --release --example explain_bench [-- --reps 5 --ms 300 MODEL_DIR]
//! ```
//!
//! `MODEL_DIR` (default `models/shuttle`) holds `model.{f32,int8}.onnx`, `metadata.json` (feature
//! names, training mean and spread, threshold) and `sample.csv` (readings with a header row).
#![allow(clippy::expect_used, reason = "a benchmark binary: a failure is the answer")]

use std::path::{Path, PathBuf};
use std::time::Instant;

use edge_anomaly::engine::Axis;
use edge_anomaly::update::ModelMetadata;
use edge_anomaly::{Backend, Engine, EngineConfig};

/// Batch sizes measured; 1 is a reading at a time, as the app scores a live sensor.
const BATCHES: [usize; 3] = [1, 1024, 4096];
/// Slowest `explain` may be, as a share of the plain path's rows/s.
const TARGET: f64 = 0.75;

struct Options {
    reps: usize,
    ms: f64,
    dir: PathBuf,
}

fn options() -> Options {
    let mut o = Options { reps: 5, ms: 300.0, dir: PathBuf::from("models/shuttle") };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--reps" => o.reps = args.next().and_then(|v| v.parse().ok()).expect("--reps N"),
            "--ms" => o.ms = args.next().and_then(|v| v.parse().ok()).expect("--ms N"),
            _ => o.dir = PathBuf::from(a),
        }
    }
    o
}

fn main() {
    let o = options();
    let meta: ModelMetadata =
        serde_json::from_slice(&std::fs::read(o.dir.join("metadata.json")).expect("metadata"))
            .expect("metadata parses");
    let sample = sample(&o.dir.join("sample.csv"), &meta.features);
    let stats = meta.normalization.as_ref().expect("metadata with training mean and spread");
    let axes: Vec<Axis> = stats
        .mean
        .iter()
        .zip(&stats.std)
        .map(|(&centre, &spread)| Axis { centre, spread })
        .collect();
    println!(
        "Median of {} repetitions, each path scored for ≥ {} ms per batch size, paths alternated.",
        o.reps, o.ms
    );
    println!();
    println!(
        "| model | backend | batch | plain rows/s | explain rows/s | explain / plain | ≥ 75% |"
    );
    println!("|---|---|---|---|---|---|---|");
    let mut repairs = Vec::new();
    for kind in ["f32", "int8"] {
        let bytes = std::fs::read(o.dir.join(format!("model.{kind}.onnx"))).expect("model file");
        for backend in [Backend::Auto, Backend::Tract] {
            let config = EngineConfig { backend, max_batch: 4096, ..EngineConfig::default() };
            let engine = Engine::load(&bytes, config).expect("model loads");
            let runs = engine.backend().name();
            for n in BATCHES {
                let rows = tile(&sample, engine.features(), n);
                let (plain, explain) = side_by_side(&engine, &rows, n, &o);
                let ratio = explain / plain;
                let met = if ratio >= TARGET { "met" } else { "missed" };
                println!(
                    "| {kind} | {runs} | {n} | {} | {} | {ratio:.2} | {met} |",
                    rate(plain),
                    rate(explain)
                );
            }
            let flagged = flagged(&engine, &sample, meta.threshold);
            repairs.push((kind, runs, flagged.len(), repair_us(&engine, &flagged, &axes, &o)));
        }
    }
    println!();
    println!("| model | backend | flagged sample readings | one repair (µs, median of reps) |");
    println!("|---|---|---|---|");
    for (kind, runs, count, us) in repairs {
        println!("| {kind} | {runs} | {count} | {us:.1} |");
    }
}

/// The sample's readings, row-major, in the model's feature order.
fn sample(path: &Path, features: &[String]) -> Vec<f32> {
    let text = std::fs::read_to_string(path).expect("sample.csv");
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().expect("a header row").split(',').collect();
    let at: Vec<usize> = features
        .iter()
        .map(|f| header.iter().position(|h| h == f).expect("the sample has every feature"))
        .collect();
    lines
        .flat_map(|l| {
            let v: Vec<&str> = l.split(',').collect();
            at.iter().map(move |&i| v[i].parse::<f32>().expect("a number")).collect::<Vec<_>>()
        })
        .collect()
}

/// `n` readings from `sample`, cycling.
fn tile(sample: &[f32], f: usize, n: usize) -> Vec<f32> {
    sample.iter().copied().cycle().take(n * f).collect()
}

/// The sample readings the model flags (score above the threshold).
fn flagged(engine: &Engine, sample: &[f32], threshold: f32) -> Vec<Vec<f32>> {
    sample
        .chunks_exact(engine.features())
        .filter(|row| engine.score(row).expect("scores")[0] > threshold)
        .map(<[f32]>::to_vec)
        .collect()
}

/// Median over repetitions of each path's rows/s, plain and explain timed in turn.
fn side_by_side(engine: &Engine, rows: &[f32], n: usize, o: &Options) -> (f64, f64) {
    let mut out = vec![0f32; n];
    let plain = |e: &Engine| e.score_into(rows, &mut out).expect("scores");
    let mut plain = plain;
    let explain = |e: &Engine| {
        std::hint::black_box(e.explain(rows).expect("explains"));
    };
    for _ in 0..2 {
        rows_per_s(engine, n, o.ms, &mut plain);
        rows_per_s(engine, n, o.ms, explain);
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for rep in 0..o.reps {
        if rep % 2 == 0 {
            a.push(rows_per_s(engine, n, o.ms, &mut plain));
            b.push(rows_per_s(engine, n, o.ms, explain));
        } else {
            b.push(rows_per_s(engine, n, o.ms, explain));
            a.push(rows_per_s(engine, n, o.ms, &mut plain));
        }
    }
    (median(a), median(b))
}

/// Rows per second of `call` (one batch of `n`) repeated for at least `ms`.
fn rows_per_s(engine: &Engine, n: usize, ms: f64, mut call: impl FnMut(&Engine)) -> f64 {
    let (start, mut calls) = (Instant::now(), 0usize);
    while calls < 3 || start.elapsed().as_secs_f64() * 1e3 < ms {
        call(engine);
        calls += 1;
    }
    (calls * n) as f64 / start.elapsed().as_secs_f64()
}

/// Median over repetitions of the mean µs of one `repair`, cycling through `flagged`.
fn repair_us(engine: &Engine, flagged: &[Vec<f32>], axes: &[Axis], o: &Options) -> f64 {
    let Some(first) = flagged.first() else { return f64::NAN };
    let mut times = Vec::new();
    for rep in 0..=o.reps {
        let (start, mut calls) = (Instant::now(), 0usize);
        while calls < 10 || start.elapsed().as_secs_f64() * 1e3 < o.ms {
            let row = flagged.get(calls % flagged.len()).unwrap_or(first);
            std::hint::black_box(engine.repair(row, axes).expect("repairs"));
            calls += 1;
        }
        // The first repetition warms up.
        if rep > 0 {
            times.push(start.elapsed().as_secs_f64() * 1e6 / calls as f64);
        }
    }
    median(times)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

fn rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else {
        format!("{:.1} k", x / 1e3)
    }
}
