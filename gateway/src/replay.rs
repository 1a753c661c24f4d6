//! A CSV replayed as a sensor at a fixed rate: the demo input, and the gateway's benchmark.
//! Each line is a reading (a header line is skipped, and a last column the header names
//! `anomaly`, `label` or `class` is the ground truth, not a feature); its reading id is its line
//! number, so a restarted replay does not record the same lines twice.

use std::path::Path;
use std::time::{Duration, Instant};

use tracing::info;

use crate::ingest::{AlertSink, Ingest, Ingested};
use crate::payload::{self, Reading};

/// What a replay did.
#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct ReplayStats {
    /// Lines sent.
    pub readings: u64,
    /// Of those, flagged.
    pub anomalies: u64,
    /// Refused (malformed or the wrong width), counted by the app.
    pub refused: u64,
    /// Not recorded (store failures).
    pub failed: u64,
    /// Wall time, s.
    pub seconds: f64,
}

/// Replays `path` at `rate_hz` (at most `limit` readings) into `ingest` as sensor `replay`.
pub async fn run<A: AlertSink>(
    ingest: &Ingest<A>,
    path: &Path,
    rate_hz: f64,
    limit: Option<u64>,
) -> std::io::Result<ReplayStats> {
    let text = tokio::fs::read_to_string(path).await?;
    let period = Duration::from_secs_f64(1.0 / rate_hz);
    let mut stats = ReplayStats::default();
    let start = Instant::now();
    let mut next = tokio::time::Instant::now();
    let labelled = text.lines().next().and_then(|h| h.rsplit(',').next()).is_some_and(|last| {
        matches!(last.trim().to_ascii_lowercase().as_str(), "anomaly" | "label" | "class")
    });
    for (line_no, line) in text.lines().enumerate() {
        if limit.is_some_and(|l| stats.readings >= l) {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        let values = match payload::parse_csv(line) {
            Ok(mut values) => {
                if labelled {
                    values.pop();
                }
                values
            }
            Err(_) if line_no == 0 => continue, // the header
            Err(e) => {
                ingest.payload("replay", Err(e)).await;
                stats.refused += 1;
                continue;
            }
        };
        tokio::time::sleep_until(next).await;
        next += period;
        let reading = Reading { values, id: Some((line_no + 1).to_string()) };
        match ingest.reading("replay", reading).await {
            Ingested::Recorded(flagged) => stats.anomalies += u64::from(flagged),
            Ingested::Refused(_) => stats.refused += 1,
            Ingested::Failed(_) => stats.failed += 1,
        }
        stats.readings += 1;
    }
    stats.seconds = start.elapsed().as_secs_f64();
    info!(?stats, "replay finished");
    Ok(stats)
}
