//! Wire bytes per reading: scores the held-out shuttle sample with the shipped int8 model, cuts
//! 100-record outbox batches exactly as the syncer does, and prints JSON and gzipped sizes.
//!
//! `cargo run --release --example wire_size`

use edge_anomaly::outbox::otlp::Origin;
use edge_anomaly::outbox::{make_batch, wire_size, Entry, Record, SyncConfig};
use edge_anomaly::{Engine, EngineConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = env!("CARGO_MANIFEST_DIR");
    let engine = Engine::load(
        &std::fs::read(format!("{root}/models/shuttle/model.int8.onnx"))?,
        EngineConfig::default(),
    )?;
    let sample = std::fs::read_to_string(format!("{root}/models/shuttle/sample.csv"))?;
    let config = SyncConfig::new("http://127.0.0.1:8080", "0.1.0");
    let origin = Origin { device_id: "3f9c2a7e51d04b88".into(), service_version: "0.1.0".into() };
    let t0 = 1_795_000_000_000u64;
    let mut records = Vec::new();
    for (i, line) in sample.lines().skip(1).enumerate() {
        let row: Vec<f32> = line.split(',').take(9).map(str::parse).collect::<Result<_, _>>()?;
        let score = engine.score(&row)?[0];
        let entry = Entry::scored(t0 + 100 * i as u64, "1.0.0+8d0b1cd9", score, score > 0.0182, 35);
        records.push(Record::new(i as u64, entry));
    }
    let (mut json, mut wire, mut n) = (0usize, 0usize, 0usize);
    for chunk in records.chunks(config.max_batch_records) {
        let batch = make_batch(chunk.to_vec(), &origin, &config, t0, 7)?.ok_or("empty batch")?;
        let size = wire_size(&batch, &config);
        json += size.json_bytes;
        wire += size.wire_bytes;
        n += size.records;
    }
    println!(
        "{n} readings in {} batches: {:.1} JSON bytes/reading, {:.1} wire bytes/reading (gzip)",
        n.div_ceil(config.max_batch_records),
        json as f64 / n as f64,
        wire as f64 / n as f64
    );
    Ok(())
}
