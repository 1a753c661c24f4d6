//! Drift snapshots and the `/v1/metrics` requests the device's own exporter builds for them.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use edge_anomaly::app::metrics_export::metrics_request;
use edge_anomaly::outbox::{HttpRequest, SyncConfig};
use edge_wire::drift::DriftSnapshot;

/// The snapshots' start time (ns since the epoch).
pub const T: u64 = 1_700_000_000_000_000_000;

/// A snapshot of `count` scores of `version` taken at `time`.
pub fn snapshot(version: &str, time: u64, count: u64) -> DriftSnapshot {
    // Many bins, as a real model's quantile edges: the body passes the gzip threshold.
    let bins = 40;
    let mut buckets = vec![0u64; bins + 1];
    buckets[bins / 2] = count;
    DriftSnapshot {
        model_version: version.into(),
        start_time_unix_nano: T,
        time_unix_nano: time,
        count,
        anomalies: count / 4,
        sum: count as f64 * 0.25,
        bounds: (0..bins).map(|i| i as f64 * 0.05).collect(),
        bucket_counts: buckets,
        expected_shares: vec![1.0 / (bins + 1) as f64; bins + 1],
        quantiles: vec![(0.5, 0.25), (0.9, 0.3)],
        psi: 0.12,
        expected_anomaly_rate: 0.05,
    }
}

/// The request the device's exporter builds.
pub fn metrics_device_request(device: &str, snapshots: &[DriftSnapshot]) -> HttpRequest {
    let config = SyncConfig::new("http://collector.test", "0.2.0");
    metrics_request(snapshots, device, &config).unwrap()
}
