//! Ingest rate with `synchronous = FULL` (the default: an acknowledged batch survives a power
//! loss) against `NORMAL` (WAL's faster setting, which can lose the last commits on power
//! loss), on a real database file.
//!
//! ```sh
//! cargo run --release -p collector --features bench --bin ingest_bench -- [BATCHES] [DIR]
//! ```
//!
//! (A binary behind the `bench` feature rather than an example, so a release build of it does
//! not build the dev-dependencies.)
//!
//! Each batch is 100 scored records (the device's batch size) parsed from OTLP JSON, stored in
//! one transaction through `Store::ingest`, as `/v1/logs` does without the HTTP layer. `DIR`
//! (default: the system's temporary directory) picks the disk the database lives on.

use std::time::Instant;

use collector::otlp;
use collector::store::{Store, StoreOptions, Synchronous};
use serde_json::json;

const RECORDS_PER_BATCH: u64 = 100;

fn batch_body(device: &str, batch: u64) -> String {
    let records: Vec<_> = (0..RECORDS_PER_BATCH)
        .map(|i| {
            let seq = batch * RECORDS_PER_BATCH + i;
            let attr = |k: &str, v: serde_json::Value| json!({"key": k, "value": v});
            json!({
                "timeUnixNano": (1_700_000_000_000_000_000u64 + seq).to_string(),
                "attributes": [
                    attr("edge.record_id", json!({"stringValue": format!("{device}:{seq}")})),
                    attr("edge.seq", json!({"intValue": seq.to_string()})),
                    attr("edge.score", json!({"doubleValue": 0.25})),
                    attr("edge.anomaly", json!({"boolValue": false})),
                    attr("edge.model_version", json!({"stringValue": "shuttle@1"})),
                    attr("edge.latency_us", json!({"intValue": "40"})),
                    attr("edge.scored", json!({"boolValue": true})),
                ],
            })
        })
        .collect();
    json!({"resourceLogs": [{
        "resource": {"attributes": [{"key": "device.id", "value": {"stringValue": device}}]},
        "scopeLogs": [{"logRecords": records}],
    }]})
    .to_string()
}

fn run(dir: &std::path::Path, synchronous: Synchronous, batches: u64) -> anyhow::Result<f64> {
    let name = format!("bench-{synchronous:?}.sqlite");
    let path = dir.join(&name);
    let remove = || {
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(dir.join(format!("{name}{suffix}")));
        }
    };
    remove();
    let store = Store::open_with(&path, StoreOptions { synchronous, ..StoreOptions::default() })?;
    let bodies: Vec<String> = (0..batches).map(|b| batch_body("bench-device", b)).collect();
    let started = Instant::now();
    for (i, body) in bodies.iter().enumerate() {
        let batch = otlp::parse(body.as_bytes())?;
        store.ingest(Some(&format!("key-{i}")), &batch, 0)?;
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(store);
    remove();
    Ok((batches * RECORDS_PER_BATCH) as f64 / seconds)
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let batches: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(300);
    let dir = args.next().map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    println!("{batches} batches of {RECORDS_PER_BATCH} records, database in {}", dir.display());
    for synchronous in
        [Synchronous::Normal, Synchronous::Full, Synchronous::Normal, Synchronous::Full]
    {
        let rate = run(&dir, synchronous, batches)?;
        println!(
            "synchronous={synchronous:?}: {rate:.0} records/s, {:.0} batches/s",
            rate / RECORDS_PER_BATCH as f64
        );
    }
    Ok(())
}
