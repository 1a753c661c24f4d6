//! A load generator for a running collector, shared by `examples/load.rs` (the long, documented
//! run) and `tests/load.rs` (a few seconds in `cargo test`).
//!
//! `workers` tasks send batches of 100 records over loopback until `duration` passes or
//! `max_requests` are sent, each to one of the collectors in `base` (a comma-separated list:
//! worker `w` sends to collector `w mod n`, as a load balancer pinning devices would). With
//! `mixed`, of every 20 requests: 16 are new batches, one re-sends an earlier batch under a new
//! key (duplicates), one replays an earlier key, one re-uses an earlier record id with other
//! content (a conflict), one is malformed (bad JSON or truncated gzip); without it, every request
//! is a new batch. Bodies come from the device's own encoder. Each worker is its own device
//! (`{device_prefix}{w}`) with consecutive seqs, so the collector must end up holding exactly
//! the new batches' records, once each, with no gaps.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use edge_anomaly::outbox::otlp::{encode, Origin};
use edge_anomaly::outbox::{Entry, Record};

/// Records per batch in the mixed load (the device's batch size before batches of 1,000).
pub const BATCH: u64 = 100;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// `http://host:port`, or several, comma-separated.
    pub base: String,
    /// Device ids are this and the worker's number.
    pub device_prefix: String,
    /// Duplicates, replays, conflicts and malformed bodies among the new batches.
    pub mixed: bool,
    /// Concurrent senders.
    pub workers: u64,
    /// Stop after this long.
    pub duration: Duration,
    /// Stop after this many requests in all.
    pub max_requests: u64,
}

/// What happened.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Requests sent.
    pub requests: u64,
    /// New records acknowledged (200 on a new batch).
    pub accepted_records: u64,
    /// Duplicate re-sends, key replays, conflicts and malformed bodies sent.
    pub duplicates_sent: u64,
    /// Key replays sent.
    pub replays_sent: u64,
    /// Conflicting records sent.
    pub conflicts_sent: u64,
    /// Malformed bodies sent.
    pub malformed_sent: u64,
    /// Answers that were not what the request called for (or transport errors).
    pub unexpected: u64,
    /// Milliseconds the run took.
    pub elapsed_ms: u64,
}

/// Record `seq` of a device, scored `score`, as the device's encoder writes it.
fn record(seq: u64, score: f32) -> Record {
    Record::new(seq, Entry::scored(1_700_000_000_000 + seq, "load@1", score, score > 0.9, 40))
}

fn body(device: &str, records: &[Record]) -> String {
    let origin = Origin::new(device, "0.1.0");
    encode(records, &origin).unwrap()
}

fn batch(device: &str, first: u64) -> String {
    batch_of(device, first, BATCH)
}

/// A device's body of `size` scored records with seqs from `first`, as its encoder writes it.
pub fn batch_of(device: &str, first: u64, size: u64) -> String {
    let records: Vec<_> =
        (first..first + size).map(|s| record(s, (s % 97) as f32 / 100.0)).collect();
    body(device, &records)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(data).unwrap();
    enc.finish().unwrap()
}

/// Runs the load and reports.
pub async fn run(config: LoadConfig) -> LoadReport {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    let sent = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..config.workers {
        let (client, config, sent) = (client.clone(), config.clone(), Arc::clone(&sent));
        tasks.push(tokio::spawn(async move {
            let device = format!("{}{w}", config.device_prefix);
            let bases: Vec<&str> = config.base.split(',').collect();
            let url = format!("{}/v1/logs", bases[w as usize % bases.len()]);
            let mut report = LoadReport::default();
            let mut next_seq = 0u64;
            let mut i = 0u64;
            while started.elapsed() < config.duration
                && sent.fetch_add(1, Ordering::Relaxed) < config.max_requests
            {
                i += 1;
                let earlier = next_seq.saturating_sub(BATCH) / BATCH * BATCH;
                let mut request = client.post(&url).header("content-type", "application/json");
                let slot = if config.mixed { i % 20 } else { 1 };
                let (payload, expect, new_records): (Vec<u8>, u16, u64) = match slot {
                    5 if next_seq > 0 => {
                        report.duplicates_sent += 1;
                        request = request.header("idempotency-key", format!("{device}-dup-{i}"));
                        (batch(&device, earlier).into_bytes(), 200, 0)
                    }
                    10 if next_seq > 0 => {
                        report.replays_sent += 1;
                        request = request.header("idempotency-key", format!("{device}-{earlier}"));
                        (batch(&device, earlier).into_bytes(), 200, 0)
                    }
                    15 if next_seq > 0 => {
                        report.conflicts_sent += 1;
                        request =
                            request.header("idempotency-key", format!("{device}-conflict-{i}"));
                        (body(&device, &[record(earlier, 2.5)]).into_bytes(), 200, 0)
                    }
                    0 => {
                        report.malformed_sent += 1;
                        if i.is_multiple_of(40) {
                            ("{\"resourceLogs\": [".as_bytes().to_vec(), 400, 0)
                        } else {
                            request = request.header("content-encoding", "gzip");
                            let packed = gzip(batch(&device, 1_000_000).as_bytes());
                            (packed[..packed.len() / 2].to_vec(), 400, 0)
                        }
                    }
                    _ => {
                        request = request.header("idempotency-key", format!("{device}-{next_seq}"));
                        let payload = batch(&device, next_seq).into_bytes();
                        next_seq += BATCH;
                        (payload, 200, BATCH)
                    }
                };
                report.requests += 1;
                match request.body(payload).send().await {
                    Ok(response) if response.status().as_u16() == expect => {
                        report.accepted_records += new_records;
                    }
                    _ => report.unexpected += 1,
                }
            }
            report
        }));
    }
    let mut total = LoadReport::default();
    for task in tasks {
        let r = task.await.unwrap();
        total.requests += r.requests;
        total.accepted_records += r.accepted_records;
        total.duplicates_sent += r.duplicates_sent;
        total.replays_sent += r.replays_sent;
        total.conflicts_sent += r.conflicts_sent;
        total.malformed_sent += r.malformed_sent;
        total.unexpected += r.unexpected;
    }
    total.elapsed_ms = started.elapsed().as_millis() as u64;
    total
}

/// A process's peak resident set (`VmHWM`) in KiB, from `/proc/PID/status` (Linux).
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
