//! Wire bytes per reading: scores the held-out shuttle sample with the shipped int8 model (the
//! flagged readings with their top channels, as the app records them), cuts 100-record outbox
//! batches exactly as the syncer does, and prints JSON and gzipped sizes.
//!
//! `cargo run --release --example wire_size [-- --dump DIR]`
//!
//! With `--dump DIR` it also writes every request body (plus one batch of unscored readings)
//! as JSON files, which `models/otlp_schema_check.py` parses with the official
//! `opentelemetry-proto` package.

use edge_anomaly::engine::ChannelMap;
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
    let meta: edge_anomaly::update::ModelMetadata =
        serde_json::from_slice(&std::fs::read(format!("{root}/models/shuttle/metadata.json"))?)?;
    let stats = meta.normalization.as_ref().map(|n| (&n.mean[..], &n.std[..]));
    let channels = ChannelMap::new(&meta.features, stats);
    let config = SyncConfig::new("http://127.0.0.1:8080", "0.1.0");
    let origin = Origin::new("3f9c2a7e51d04b88", "0.1.0");
    let t0 = 1_795_000_000_000u64;
    let mut records = Vec::new();
    for (i, line) in sample.lines().skip(1).enumerate() {
        let row: Vec<f32> = line.split(',').take(9).map(str::parse).collect::<Result<_, _>>()?;
        let score = engine.score(&row)?[0];
        let anomaly = score > meta.threshold;
        let mut entry = Entry::scored(t0 + 100 * i as u64, "1.0.0+8d0b1cd9", score, anomaly, 35);
        if anomaly {
            entry = entry.with_contributions(channels.contributions(&engine, &row)?);
        }
        records.push(Record::new(i as u64, entry));
    }
    let dump = std::env::args().skip_while(|a| a != "--dump").nth(1);
    if let Some(dir) = &dump {
        std::fs::create_dir_all(dir)?;
        // Readings the engine could not score travel raw, flagged for cloud scoring.
        let unscored: Vec<Record> = (0..3u64)
            .map(|i| {
                let reading = vec![50.0, -1.5, 80.0, 0.0, 30.0, 2.0, 27.0, 48.0, 22.0];
                Record::new(10_000 + i, Entry::unscored(t0, None, reading, "NOT_LOADED"))
            })
            .collect();
        let batch = make_batch(unscored, &origin, &config, t0, 9)?.ok_or("empty batch")?;
        std::fs::write(format!("{dir}/unscored.json"), &batch.body)?;
    }
    let (mut json, mut wire, mut n) = (0usize, 0usize, 0usize);
    for (i, chunk) in records.chunks(config.max_batch_records).enumerate() {
        let batch = make_batch(chunk.to_vec(), &origin, &config, t0, 7)?.ok_or("empty batch")?;
        if let Some(dir) = &dump {
            std::fs::write(format!("{dir}/batch-{i:03}.json"), &batch.body)?;
        }
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
