//! Durable ingest from one device over real HTTP: records/s and the collector's peak memory, at
//! each batch size, for one or more collector binaries side by side (before/after a change).
//!
//! ```sh
//! cargo build --release -p collector --bin collector --example ingest_http
//! target/release/examples/ingest_http [RECORDS=200000] [SIZES=100,1000] [ROUNDS=2] [COLLECTOR…]
//! ```
//!
//! Each run starts a fresh collector process (default: the release `collector` beside this
//! example; name others, e.g. a copy built from an earlier commit, to compare them in one run)
//! on a new SQLite file in the system's temporary directory, with the collector's defaults: WAL
//! and `synchronous = FULL`, so every acknowledged batch is on disk. One client sends `RECORDS`
//! records as batches of each size, one request at a time on one keep-alive connection: the
//! device's own encoder and gzip (the outbox's bodies, `Content-Encoding: gzip`), each batch
//! under its own `Idempotency-Key`. The bodies are built before the clock starts, so the time is
//! the collector's (HTTP, gunzip, parse, checks, the transaction and its fsync) plus the
//! loopback round trips. Every answer must be 200 `{}` and the collector must hold exactly
//! `RECORDS` records afterwards.
//!
//! Reported per run: records/s, the collector's peak RSS (`VmHWM`) and its CPU time (user +
//! system from `/proc/PID/stat`, in the kernel's 100 Hz ticks) as a share of the wall time and
//! per record. On a shared machine the CPU per record moves less than the rate: it is the cost
//! of the work, the rate also says how much of a core the collector got.
//! Rounds alternate the binaries, so a machine that gets busier halfway hurts each alike.

#[path = "../tests/common/load.rs"]
mod load;
#[path = "../tests/common/process.rs"]
mod process;

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context};
use process::CollectorProcess;

/// The kernel's clock ticks per second in `/proc/PID/stat` (`USER_HZ`, 100 on Linux).
const TICKS_PER_SECOND: f64 = 100.0;

/// One measured run.
struct Run {
    records_per_second: f64,
    peak_rss_mib: f64,
    /// Collector CPU seconds per wall second (1.0 = one core busy throughout).
    cpu_share: f64,
    /// Collector CPU time per record, in µs: what the rate would be bound by on an idle core.
    cpu_us_per_record: f64,
}

fn default_collector() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().and_then(Path::parent).context("no target directory")?;
    let binary = dir.join("collector");
    if !binary.is_file() {
        bail!("{} not found: cargo build --release -p collector first", binary.display());
    }
    Ok(binary)
}

/// User + system CPU ticks of process `pid` so far.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name (which may hold spaces, so split after its `)`); utime and
    // stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).context("no ) in stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let tick = |i: usize| -> anyhow::Result<u64> {
        Ok(fields.get(i).context("short /proc stat")?.parse()?)
    };
    Ok(tick(11)? + tick(12)?)
}

/// The device's gzipped bodies carrying `records` records in batches of `size`.
fn bodies(records: u64, size: u64) -> anyhow::Result<Vec<Vec<u8>>> {
    (0..records.div_ceil(size))
        .map(|b| {
            let first = b * size;
            let json = load::batch_of("bench-device", first, size.min(records - first));
            edge_anomaly::outbox::gzip(json.as_bytes()).context("gzip")
        })
        .collect()
}

async fn run(collector: &Path, bodies: &[Vec<u8>], records: u64) -> anyhow::Result<Run> {
    let dir = std::env::temp_dir().join(format!("edge-ingest-http-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let db = dir.join("ingest.sqlite");
    let db_arg = db.display().to_string();
    let server = CollectorProcess::start(collector, &["--db", &db_arg, "--no-cloud-scoring"]);
    let url = format!("{}/v1/logs", server.base());
    let http = reqwest::Client::new();
    let cpu_before = cpu_ticks(server.pid())?;
    let started = Instant::now();
    for (i, body) in bodies.iter().enumerate() {
        let response = http
            .post(&url)
            .header("content-type", "application/json")
            .header("content-encoding", "gzip")
            .header("idempotency-key", format!("bench-{i}"))
            .body(body.clone())
            .send()
            .await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() || text != "{}" {
            bail!("batch {i}: {status} {text}");
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = (cpu_ticks(server.pid())? - cpu_before) as f64 / TICKS_PER_SECOND;
    let peak_rss_mib = load::peak_rss_kib(server.pid()).unwrap_or(0) as f64 / 1024.0;
    let stats: serde_json::Value = serde_json::from_str(
        &http.get(format!("{}/api/stats", server.base())).send().await?.text().await?,
    )?;
    let stored = stats["records"].as_u64().unwrap_or(0);
    if stored != records {
        bail!("stored {stored} of {records} records");
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Run {
        records_per_second: records as f64 / seconds,
        peak_rss_mib,
        cpu_share: cpu_seconds / seconds,
        cpu_us_per_record: cpu_seconds * 1e6 / records as f64,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let records: u64 = args.first().map(|a| a.parse()).transpose()?.unwrap_or(200_000);
    let sizes: Vec<u64> = args
        .get(1)
        .map_or("100,1000", String::as_str)
        .split(',')
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    let rounds: usize = args.get(2).map(|a| a.parse()).transpose()?.unwrap_or(2);
    let mut collectors: Vec<PathBuf> = args.iter().skip(3).map(PathBuf::from).collect();
    if collectors.is_empty() {
        collectors.push(default_collector()?);
    }
    println!("{records} records per run, one client, gzip bodies, SQLite WAL synchronous=FULL\n");
    println!(
        "| collector | records/batch | round | records/s | batches/s | peak RSS | collector CPU \
         | CPU µs/record |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for &size in &sizes {
        let bodies = bodies(records, size)?;
        for round in 1..=rounds {
            for collector in &collectors {
                let r = run(collector, &bodies, records).await?;
                println!(
                    "| {} | {size} | {round} | {:.0} | {:.0} | {:.1} MiB | {:.0} % | {:.1} |",
                    collector.display(),
                    r.records_per_second,
                    r.records_per_second / size as f64,
                    r.peak_rss_mib,
                    r.cpu_share * 100.0,
                    r.cpu_us_per_record
                );
            }
        }
    }
    Ok(())
}
