//! Concurrent load against a running collector: new batches mixed with duplicates, key replays,
//! conflicting records and malformed bodies, over loopback, bounded in time and count. Prints
//! accepted records/s, what the collector stored, and its peak RSS.
//!
//! ```sh
//! target/release/collector --addr 127.0.0.1:18080 --db /tmp/load.sqlite &
//! cargo run --release -p collector --example load -- http://127.0.0.1:18080 \
//!     [WORKERS=8] [SECONDS=60] [MAX_REQUESTS=100000] [COLLECTOR_PID]
//! ```

#[path = "../tests/common/load.rs"]
mod load;

use std::time::Duration;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize, default: u64| -> anyhow::Result<u64> {
        Ok(args.get(i).map(|a| a.parse()).transpose()?.unwrap_or(default))
    };
    let base = args.first().cloned().unwrap_or_else(|| "http://127.0.0.1:8080".to_owned());
    let config = load::LoadConfig {
        base: base.clone(),
        device_prefix: "load-".into(),
        mixed: true,
        workers: arg(1, 8)?,
        duration: Duration::from_secs(arg(2, 60)?),
        max_requests: arg(3, 100_000)?,
    };
    let pid = args.get(4).map(|p| p.parse::<u32>()).transpose()?;
    println!("{config:?}");
    let report = load::run(config).await;
    let seconds = report.elapsed_ms as f64 / 1000.0;
    println!("{report:?}");
    println!(
        "accepted: {:.0} records/s over {seconds:.1} s",
        report.accepted_records as f64 / seconds
    );
    let stats: serde_json::Value = serde_json::from_str(
        &reqwest::get(format!("{}/api/stats", base.split(',').next().unwrap_or(&base)))
            .await?
            .text()
            .await?,
    )?;
    println!("collector stats: {stats}");
    if let Some(kib) = pid.and_then(load::peak_rss_kib) {
        println!("collector peak RSS (VmHWM): {:.1} MiB", kib as f64 / 1024.0);
    }
    Ok(())
}
