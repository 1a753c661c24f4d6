//! End to end with real parts: Debian's mosquitto broker (persistent), the collector (SQLite,
//! fault injection on) and the gateway binary. Readings stream over MQTT from two sensors while
//! the gateway is `kill -9`ed mid-stream several times and restarted, the broker is restarted,
//! and the collector answers 503s and resets connections after storing a batch: at the end the
//! collector holds every reading exactly once (count, no seq gap, no duplicate), and anomalies
//! were published as alerts.
//!
//! `GATEWAY_E2E_READINGS` sets the stream length (default 600).
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a failed expectation is the test failure"
)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn mosquitto_bin() -> PathBuf {
    ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
        .expect("mosquitto is not installed: run scripts/setup.sh (apt-get install mosquitto)")
}

fn collector_bin() -> PathBuf {
    // target/debug/deps/mqtt_e2e-… → target/debug/collector, built by `cargo test --workspace`.
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().and_then(Path::parent).unwrap().join("collector");
    assert!(bin.exists(), "{} missing: cargo build -p collector", bin.display());
    bin
}

struct Broker {
    child: Child,
    config: PathBuf,
    port: u16,
}

impl Broker {
    fn start(dir: &Path) -> Broker {
        let port = free_port();
        let config = dir.join("mosquitto.conf");
        let store = dir.join("mosquitto-data");
        std::fs::create_dir_all(&store).unwrap();
        std::fs::write(
            &config,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n\
                 persistence_location {}/\nautosave_interval 1\nuser root\n\
                 max_queued_messages 100000\n",
                store.display()
            ),
        )
        .unwrap();
        let mut broker = Broker { child: Broker::spawn(&config), config, port };
        wait_for_port(broker.port, "mosquitto");
        broker.child.try_wait().unwrap();
        broker
    }

    fn spawn(config: &Path) -> Child {
        Command::new(mosquitto_bin())
            .arg("-c")
            .arg(config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts")
    }

    /// A clean restart: SIGTERM (the broker saves its sessions and queued messages), then up
    /// again on the same port.
    fn restart(&mut self) {
        Command::new("kill").arg(self.child.id().to_string()).status().unwrap();
        self.child.wait().unwrap();
        self.child = Broker::spawn(&self.config);
        wait_for_port(self.port, "mosquitto (restarted)");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_gateway(dir: &Path, broker: u16, collector: u16, run: usize) -> Proc {
    let log = std::fs::File::create(dir.join(format!("gateway-{run}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .args(["--mqtt", &format!("127.0.0.1:{broker}")])
        .args(["--endpoint", &format!("http://127.0.0.1:{collector}")])
        .arg("--db")
        .arg(dir.join("gateway.db"))
        .arg("--model")
        .arg(Path::new(ROOT).join("models/shuttle"))
        .args(["--flush-secs", "1", "--client-id", "e2e-gateway"])
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the gateway starts");
    Proc(child)
}

fn kill9(p: &mut Proc) {
    Command::new("kill").args(["-9", &p.0.id().to_string()]).status().unwrap();
    p.0.wait().unwrap();
}

async fn get_json(url: &str) -> serde_json::Value {
    let body = reqwest::get(url).await.unwrap().text().await.unwrap();
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"))
}

async fn set_fault(collector: u16, fault: &str) {
    let status = reqwest::Client::new()
        .post(format!("http://127.0.0.1:{collector}/admin/faults"))
        .header("content-type", "application/json")
        .body(fault.to_owned())
        .send()
        .await
        .unwrap()
        .status();
    assert!(status.is_success(), "fault {fault}: {status}");
}

/// The shuttle sample's readings (9 values each), as MQTT JSON payloads with ids.
fn readings(n: usize) -> Vec<String> {
    let text = std::fs::read_to_string(Path::new(ROOT).join("models/shuttle/sample.csv")).unwrap();
    let rows: Vec<Vec<f64>> = text
        .lines()
        .skip(1)
        .filter_map(|l| {
            let v: Vec<f64> = l.split(',').filter_map(|f| f.trim().parse().ok()).collect();
            (v.len() >= 9).then(|| v[..9].to_vec())
        })
        .collect();
    assert!(!rows.is_empty());
    (0..n)
        .map(|i| serde_json::json!({"values": rows[i % rows.len()], "id": i}).to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_reading_reaches_the_collector_once_through_kills_restarts_and_faults() {
    let n: usize =
        std::env::var("GATEWAY_E2E_READINGS").ok().and_then(|v| v.parse().ok()).unwrap_or(600);
    let dir = tempfile::tempdir().unwrap();
    let mut broker = Broker::start(dir.path());
    let cport = free_port();
    let _collector = Proc(
        Command::new(collector_bin())
            .args(["--addr", &format!("127.0.0.1:{cport}"), "--test-faults", "--static"])
            .arg(dir.path().join("no-static"))
            .arg("--db")
            .arg(dir.path().join("collector.sqlite"))
            .arg("--releases")
            .arg(dir.path().join("releases"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the collector starts"),
    );
    wait_for_port(cport, "collector");
    let mut runs = 0;
    let mut gateway = start_gateway(dir.path(), broker.port, cport, runs);
    // The broker queues readings for the gateway's session only once it has subscribed; what a
    // sensor publishes before that has no subscriber.
    let log = dir.path().join("gateway-0.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log).unwrap_or_default().contains("subscribed") {
        assert!(Instant::now() < deadline, "the gateway never subscribed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Alerts are watched by a subscriber of their own.
    let alerts = Arc::new(AtomicU64::new(0));
    let mut watch = MqttOptions::new("e2e-alerts", "127.0.0.1", broker.port);
    watch.set_clean_session(false);
    let (watch_client, mut watch_events) = AsyncClient::new(watch, 64);
    watch_client.subscribe("edge/alerts/+", QoS::AtLeastOnce).await.unwrap();
    // Alerts that name the shuttle channel their score is most about.
    let named = Arc::new(AtomicU64::new(0));
    let (seen, seen_named) = (Arc::clone(&alerts), Arc::clone(&named));
    tokio::spawn(async move {
        loop {
            match watch_events.poll().await {
                Ok(Event::Incoming(Packet::Publish(p))) => {
                    let alert: serde_json::Value =
                        serde_json::from_slice(&p.payload).unwrap_or_default();
                    let top = &alert["contributions"]["channels"][0];
                    let channel = top["channel"].as_str().unwrap_or_default();
                    let share = top["share"].as_f64().unwrap_or(-1.0);
                    if channel.starts_with('f') && (0.0..=1.0).contains(&share) {
                        seen_named.fetch_add(1, Ordering::Relaxed);
                    }
                    seen.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });

    // The sensors: QoS 1 with a persistent session, so a reading the broker has not
    // acknowledged is sent again after a broker restart.
    let mut options = MqttOptions::new("e2e-sensors", "127.0.0.1", broker.port);
    options.set_clean_session(false);
    options.set_inflight(50);
    let (sensors, mut sensor_events) = AsyncClient::new(options, 256);
    let acked = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&acked);
    tokio::spawn(async move {
        loop {
            match sensor_events.poll().await {
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    count.fetch_add(1, Ordering::Relaxed);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    });

    for (i, payload) in readings(n).into_iter().enumerate() {
        let topic = format!("edge/readings/sensor-{}", i % 2);
        sensors.publish(topic, QoS::AtLeastOnce, false, payload).await.unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        let step = n / 6;
        if i == step || i == 3 * step || i == 5 * step {
            // Mid-stream, and likely mid-flush: the flush timer is 1 s and writes trigger more.
            kill9(&mut gateway);
            runs += 1;
            tokio::time::sleep(Duration::from_millis(300)).await;
            gateway = start_gateway(dir.path(), broker.port, cport, runs);
        }
        if i == 2 * step {
            set_fault(cport, r#"{"mode":"status","status":503,"retry_after":1,"count":3}"#).await;
        }
        if i == 4 * step {
            broker.restart();
            set_fault(cport, r#"{"mode":"reset","count":2}"#).await;
        }
    }

    let deadline = Instant::now() + Duration::from_secs(120);
    let stats = loop {
        let stats = get_json(&format!("http://127.0.0.1:{cport}/api/stats")).await;
        if stats["records"].as_u64() == Some(n as u64) || Instant::now() > deadline {
            break stats;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let logs = (0..=runs)
        .map(|r| std::fs::read_to_string(dir.path().join(format!("gateway-{r}.log"))).unwrap())
        .collect::<Vec<_>>()
        .join("\n--- restart ---\n");
    let tail: String = logs.lines().rev().take(40).collect::<Vec<_>>().join("\n");
    assert_eq!(
        stats["records"].as_u64(),
        Some(n as u64),
        "{stats}\nsensor acks: {}\n{tail}",
        acked.load(Ordering::Relaxed)
    );
    assert_eq!(stats["missing_seqs"].as_u64(), Some(0), "{stats}");
    assert_eq!(stats["unique_devices"].as_u64(), Some(1), "one gateway, one device: {stats}");
    let devices = get_json(&format!("http://127.0.0.1:{cport}/api/devices")).await;
    let device = &devices["devices"][0];
    assert_eq!(device["count"].as_u64(), Some(n as u64), "{device}");
    assert_eq!(device["max_seq"].as_u64(), Some(n as u64 - 1), "one seq per reading: {device}");
    // The three 503s, and at least one reset after storing whose retry the collector answered
    // from its idempotency record (the second reset may find no request left to hit).
    assert!(stats["requests"]["faulted"].as_u64().unwrap_or(0) >= 4, "the faults hit: {stats}");
    assert!(stats["idempotent_replays"].as_u64().unwrap_or(0) >= 1, "a reset batch: {stats}");
    if stats["anomalies"].as_u64().unwrap_or(0) > 0 {
        let deadline = Instant::now() + Duration::from_secs(10);
        while alerts.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(alerts.load(Ordering::Relaxed) > 0, "anomalies were stored but no alert came");
        let (all, with) = (alerts.load(Ordering::Relaxed), named.load(Ordering::Relaxed));
        assert_eq!(with, all, "every alert names its top channel");
    }
    assert!(logs.contains("model verified and active"), "{tail}");
    eprintln!(
        "{n} readings, {} gateway runs, alerts {}, collector {stats}",
        runs + 1,
        alerts.load(Ordering::Relaxed)
    );
}
