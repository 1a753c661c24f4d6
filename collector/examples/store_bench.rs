//! The stores side by side: ingest records/s on SQLite, on PostgreSQL, and on one PostgreSQL
//! shared by two collectors; then the fleet view's queries on about a million stored records,
//! alone and while ingest goes on.
//!
//! ```sh
//! cargo build --release -p collector --bin collector --example store_bench
//! target/release/examples/store_bench [SECONDS=20] [WORKERS=8] [FLEET_RECORDS=1000000]
//! ```
//!
//! Everything is real and on this machine: release collector processes (the binary next to this
//! example's directory), a throwaway PostgreSQL cluster of Debian's server started as the tests
//! start it (`fsync` on, default settings), SQLite with its defaults (`synchronous = FULL`).
//! Every acknowledged batch is durable in both. Devices send new batches of 100 records each,
//! one request at a time, as fast as they are answered; the load generator shares the cores.
//!
//! 1. **Ingest**: `WORKERS` devices for `SECONDS` against each setup; records/s acknowledged,
//!    the stored count checked against it, each collector's peak RSS.
//! 2. **Fleet**: `FLEET_RECORDS` more records from 100 devices into each store, then the fleet
//!    page, a device's score series and `/api/stats` timed (median and p95 of 50 warm
//!    requests), and the ingest rate measured again while a reader requests fleet pages back
//!    to back.

#[path = "../tests/common/load.rs"]
mod load;
#[path = "../tests/common/pg.rs"]
mod pg;
#[path = "../tests/common/process.rs"]
mod process;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use process::CollectorProcess;

/// Devices the fleet stores are filled from.
const FLEET_DEVICES: u64 = 100;

fn collector_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let dir = exe.parent().and_then(|d| d.parent()).context("no target directory")?;
    let binary = dir.join("collector");
    if !binary.is_file() {
        bail!("{} not found: cargo build --release -p collector first", binary.display());
    }
    Ok(binary)
}

async fn stats(base: &str) -> anyhow::Result<serde_json::Value> {
    Ok(serde_json::from_str(&reqwest::get(format!("{base}/api/stats")).await?.text().await?)?)
}

/// Sends new batches from `workers` devices named `prefix…` to `bases` for `seconds`.
async fn ingest(
    bases: &[String],
    prefix: &str,
    workers: u64,
    duration: Duration,
    max_requests: u64,
) -> load::LoadReport {
    load::run(load::LoadConfig {
        base: bases.join(","),
        device_prefix: prefix.to_owned(),
        mixed: false,
        workers,
        duration,
        max_requests,
    })
    .await
}

fn rate(report: &load::LoadReport) -> f64 {
    report.accepted_records as f64 / (report.elapsed_ms as f64 / 1000.0)
}

/// Median and 95th percentile of `n` sequential GETs of `path`, in ms.
async fn timed(
    http: &reqwest::Client,
    base: &str,
    path: &str,
    n: usize,
) -> anyhow::Result<(f64, f64)> {
    let mut ms = Vec::with_capacity(n);
    for _ in 0..n + 5 {
        let started = Instant::now();
        let response = http.get(format!("{base}{path}")).send().await?;
        if !response.status().is_success() {
            bail!("{path}: {}", response.status());
        }
        response.bytes().await?;
        ms.push(started.elapsed().as_secs_f64() * 1000.0);
    }
    // The first five warm the caches.
    let mut ms = ms.split_off(5);
    ms.sort_by(f64::total_cmp);
    Ok((ms[ms.len() / 2], ms[ms.len() * 95 / 100]))
}

struct Setup {
    name: &'static str,
    collectors: Vec<CollectorProcess>,
}

impl Setup {
    fn bases(&self) -> Vec<String> {
        self.collectors.iter().map(CollectorProcess::base).collect()
    }

    fn peak_rss_mib(&self) -> Vec<String> {
        self.collectors
            .iter()
            .map(|c| {
                load::peak_rss_kib(c.pid())
                    .map_or_else(|| "?".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0))
            })
            .collect()
    }
}

fn setups(binary: &std::path::Path, dir: &std::path::Path) -> Vec<Setup> {
    let sqlite = dir.join("bench.sqlite");
    let one = pg::cluster().fresh_database();
    let shared = pg::cluster().fresh_database();
    let db =
        |url: &str| vec!["--database-url".to_owned(), url.to_owned(), "--no-cloud-scoring".into()];
    let start = |args: Vec<String>| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        CollectorProcess::start(binary, &args)
    };
    vec![
        Setup {
            name: "SQLite, 1 collector",
            collectors: vec![start(vec![
                "--db".into(),
                sqlite.display().to_string(),
                "--no-cloud-scoring".into(),
            ])],
        },
        Setup { name: "PostgreSQL, 1 collector", collectors: vec![start(db(&one))] },
        Setup {
            name: "PostgreSQL, 2 collectors",
            collectors: vec![start(db(&shared)), start(db(&shared))],
        },
    ]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse()).collect::<Result<_, _>>()?;
    let seconds = args.first().copied().unwrap_or(20);
    let workers = args.get(1).copied().unwrap_or(8);
    let fleet_records = args.get(2).copied().unwrap_or(1_000_000);
    let binary = collector_binary()?;
    let dir = tempfile_dir()?;
    let http = reqwest::Client::new();
    let setups = setups(&binary, &dir);

    println!(
        "## Ingest: {workers} devices, new batches of {} records, {seconds} s each\n",
        load::BATCH
    );
    println!("| setup | records/s | stored = acknowledged | peak RSS per collector (MiB) |");
    println!("|---|---|---|---|");
    for setup in &setups {
        let report =
            ingest(&setup.bases(), "ingest-", workers, Duration::from_secs(seconds), u64::MAX)
                .await;
        let stored = stats(&setup.bases()[0]).await?["records"].as_u64().unwrap_or(0);
        if report.unexpected > 0 || stored != report.accepted_records {
            bail!("{}: {report:?}, stored {stored}", setup.name);
        }
        println!(
            "| {} | {:.0} | {stored} | {} |",
            setup.name,
            rate(&report),
            setup.peak_rss_mib().join(", ")
        );
    }

    println!("\n## Fleet queries, {FLEET_DEVICES} devices holding {fleet_records} records, beside the ingest run's\n");
    println!("| setup | records | fill records/s | fleet page | series (500) | stats | ingest alone → with fleet reader (records/s) | fleet pages while ingesting |");
    println!("|---|---|---|---|---|---|---|---|");
    for setup in setups.iter().filter(|s| s.collectors.len() == 1) {
        let base = setup.bases()[0].clone();
        // The fleet devices' own records, on top of what the ingest run left: the queries read
        // devices that hold FLEET_RECORDS / FLEET_DEVICES records each.
        let per_device = fleet_records.div_ceil(FLEET_DEVICES);
        let requests = FLEET_DEVICES * per_device.div_ceil(load::BATCH);
        let fill =
            ingest(&setup.bases(), "fleet-", FLEET_DEVICES, Duration::from_secs(3600), requests)
                .await;
        let records = stats(&base).await?["records"].as_u64().unwrap_or(0);
        let mut row =
            vec![setup.name.to_owned(), records.to_string(), format!("{:.0}", rate(&fill))];
        for path in [
            "/api/fleet?limit=50&after=fleet-50".to_owned(),
            "/api/devices/fleet-42/series?limit=500".to_owned(),
            "/api/stats".to_owned(),
        ] {
            let (median, p95) = timed(&http, &base, &path, 50).await?;
            row.push(format!("{median:.1} / {p95:.1} ms"));
        }
        let window = Duration::from_secs(seconds / 2);
        let alone = ingest(&setup.bases(), "alone-", workers, window, u64::MAX).await;
        let stop = Arc::new(AtomicBool::new(false));
        let pages = Arc::new(AtomicU64::new(0));
        let reader = {
            let (stop, pages, http, base) =
                (stop.clone(), pages.clone(), http.clone(), base.clone());
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let ok = http.get(format!("{base}/api/fleet?limit=50")).send().await;
                    if let Ok(response) = ok {
                        if response.bytes().await.is_ok() {
                            pages.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            })
        };
        let busy = ingest(&setup.bases(), "busy-", workers, window, u64::MAX).await;
        stop.store(true, Ordering::Relaxed);
        reader.await?;
        row.push(format!("{:.0} → {:.0}", rate(&alone), rate(&busy)));
        row.push(format!("{:.0}/s", pages.load(Ordering::Relaxed) as f64 / window.as_secs_f64()));
        println!("| {} |", row.join(" | "));
    }
    drop(setups);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("edge-store-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
