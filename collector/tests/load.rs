//! A few seconds of concurrent load on the real binary in its own process: the collector keeps
//! answering, stores each record once, counts every duplicate, replay and conflict, and reports
//! no gap. The long run is `examples/load.rs` (see BENCHMARKS.md).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "common/load.rs"]
mod load;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixed_concurrent_load_stores_each_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_collector"))
            .args(["--addr", "127.0.0.1:0", "--static", "/nonexistent"])
            .arg("--db")
            .arg(dir.path().join("load.sqlite"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stdout = child.0.stdout.take().unwrap();
    let line = tokio::task::spawn_blocking(move || {
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).map(|_| line)
    })
    .await
    .unwrap()
    .unwrap();
    let base = line.trim().strip_prefix("collector listening on ").unwrap().trim_end_matches('/');

    let report = load::run(load::LoadConfig {
        base: base.to_owned(),
        device_prefix: "load-".into(),
        mixed: true,
        workers: 4,
        duration: Duration::from_secs(3),
        max_requests: 2_000,
    })
    .await;
    let peak = load::peak_rss_kib(child.0.id());
    eprintln!("load: {report:?}, collector peak RSS {peak:?} KiB");
    assert_eq!(report.unexpected, 0, "{report:?}");
    assert!(report.accepted_records > 0 && report.malformed_sent > 0, "{report:?}");

    let text = reqwest::get(format!("{base}/api/stats")).await.unwrap().text().await.unwrap();
    let stats: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(stats["records"], report.accepted_records, "each record stored once: {stats}");
    assert_eq!(stats["duplicates_ignored"], report.duplicates_sent * load::BATCH, "{stats}");
    assert_eq!(stats["idempotent_replays"], report.replays_sent, "{stats}");
    assert_eq!(stats["conflicts"], report.conflicts_sent, "{stats}");
    assert_eq!(stats["missing_seqs"], 0, "{stats}");
    assert_eq!(stats["requests"]["rejected"], report.malformed_sent, "{stats}");
}
