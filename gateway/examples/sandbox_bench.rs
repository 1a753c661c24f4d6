//! Native engine against the sandboxed one: per-reading latency and rows/s for batches of 1 and
//! 256, warm, the median of several repetitions; plus what the sandbox costs to set up (module
//! size, compile, load) and how much fuel and memory a call uses, which is what the
//! `SandboxLimits` defaults are derived from.
//!
//! ```text
//! gateway/build-sandbox.sh
//! cargo run --release -p edge-gateway --example sandbox_bench
//! ```

use std::error::Error;
use std::hint::black_box;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use edge_anomaly::{Engine, EngineConfig};
use edge_gateway::sandbox::{Sandbox, SandboxLimits, SandboxModule};

const MODELS: [(&str, &[u8]); 2] = [
    ("f32", include_bytes!("../../models/shuttle/model.f32.onnx")),
    ("int8", include_bytes!("../../models/shuttle/model.int8.onnx")),
];
/// A real reading from the golden set (features f1..f9).
const READING: [f32; 9] = [37.0, 0.0, 90.0, 0.0, 36.0, 28.0, 53.0, 54.0, 2.0];
const REPS: usize = 7;
/// Readings scored per repetition, so each repetition takes a measurable while.
const ROWS_PER_REP: usize = 64 * 1024;

fn main() -> Result<(), Box<dyn Error>> {
    let path = Sandbox::default_module_path();
    let wasm = std::fs::read(&path)
        .map_err(|e| format!("{}: {e} (run gateway/build-sandbox.sh)", path.display()))?;
    println!("module: {}", path.display());
    println!("  size {} bytes, gzip -9 {}", wasm.len(), gzip_len(&wasm));
    let t = Instant::now();
    let module = SandboxModule::compile(&wasm)?;
    println!("  compile {:.2} s", t.elapsed().as_secs_f64());

    for (name, model) in MODELS {
        println!("\nmodel {name}");
        let engine = Engine::load(model, EngineConfig::default())?;
        let t = Instant::now();
        let mut sandbox = Sandbox::with_module(&module, model, SandboxLimits::default())?;
        println!(
            "  sandbox start + load {:.1} ms, load fuel {}, memory after load {} KiB",
            t.elapsed().as_secs_f64() * 1e3,
            sandbox.fuel_used(),
            sandbox.memory_bytes() >> 10
        );
        for batch in [1, 256] {
            let rows = READING.repeat(batch);
            let native = time(|| engine.score(&rows).map(drop).map_err(Into::into), batch)?;
            let boxed = time(|| sandbox.score(&rows).map(drop).map_err(Into::into), batch)?;
            let fuel = sandbox.fuel_used();
            println!(
                "  batch {batch:>3}: native {:>8.3} µs/reading {:>10.0} rows/s | sandbox {:>8.3} µs/reading {:>10.0} rows/s | sandbox/native time {:.2}x | fuel/call {fuel}",
                native * 1e6,
                1.0 / native,
                boxed * 1e6,
                1.0 / boxed,
                boxed / native,
            );
        }
        let max = READING.repeat(sandbox.max_rows());
        let t = Instant::now();
        sandbox.score(&max)?;
        println!(
            "  batch {} (max_rows): {:.2} ms, fuel {}, memory after {} KiB",
            sandbox.max_rows(),
            t.elapsed().as_secs_f64() * 1e3,
            sandbox.fuel_used(),
            sandbox.memory_bytes() >> 10
        );
    }
    Ok(())
}

/// Median seconds per reading over [`REPS`] repetitions of `call` on `batch` readings, after
/// one warm-up repetition.
fn time(
    mut call: impl FnMut() -> Result<(), Box<dyn Error>>,
    batch: usize,
) -> Result<f64, Box<dyn Error>> {
    let calls = (ROWS_PER_REP / batch).max(1);
    let mut reps: Vec<Duration> = Vec::with_capacity(REPS);
    for rep in 0..=REPS {
        let t = Instant::now();
        for _ in 0..calls {
            black_box(call()?);
        }
        if rep > 0 {
            reps.push(t.elapsed());
        }
    }
    reps.sort();
    Ok(reps[REPS / 2].as_secs_f64() / (calls * batch) as f64)
}

/// Size of `bytes` compressed by `gzip -9`, or "n/a" without a gzip binary.
fn gzip_len(bytes: &[u8]) -> String {
    let run = || -> std::io::Result<usize> {
        let mut child =
            Command::new("gzip").arg("-9c").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        let mut stdin = child.stdin.take().ok_or(std::io::ErrorKind::BrokenPipe)?;
        let input = bytes.to_vec();
        let writer = std::thread::spawn(move || stdin.write_all(&input));
        let out = child.wait_with_output()?;
        writer.join().map_err(|_| std::io::ErrorKind::Other)??;
        Ok(out.stdout.len())
    };
    run().map_or_else(|e| format!("n/a ({e})"), |n| format!("{n} bytes"))
}
