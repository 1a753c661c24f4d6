//! The gateway's configuration: command-line flags over an optional TOML file (`--config`),
//! over the defaults. Every flag has the same key in the file, in snake case.

use std::path::{Path, PathBuf};

use clap::Parser;
use serde::Deserialize;

/// Flags as given (all optional); the file's values fill the gaps, then the defaults.
#[derive(Debug, Clone, Default, Parser, Deserialize)]
#[command(
    name = "gateway",
    version,
    about = "Edge Anomaly gateway: reads sensor readings over MQTT (or replays a CSV), scores \
             each one with the signed model, records every reading in a durable SQLite outbox, \
             publishes alerts for anomalies and sends OTLP batches to the collector.",
    after_help = "Every flag can also be set in the --config TOML file under the same name in \
                  snake case (e.g. flush_secs = 30); flags win over the file. Logs go to stderr; \
                  RUST_LOG filters them (default: info)."
)]
#[serde(default, deny_unknown_fields)]
pub struct Flags {
    /// TOML file with any of these settings.
    #[arg(long, value_name = "FILE")]
    #[serde(skip)]
    pub config: Option<PathBuf>,

    /// MQTT broker address, host:port [default: 127.0.0.1:1883].
    #[arg(long, value_name = "HOST:PORT")]
    pub mqtt: Option<String>,

    /// Topic filter readings arrive on, one topic per sensor; the last level names the sensor
    /// [default: edge/readings/+].
    #[arg(long, value_name = "FILTER")]
    pub topic: Option<String>,

    /// Alerts go to ALERTS/<sensor> as JSON [default: edge/alerts].
    #[arg(long, value_name = "ALERTS")]
    pub alerts_topic: Option<String>,

    /// MQTT client id; the broker keeps this client's session (and queues its readings) while
    /// the gateway is down [default: edge-gateway].
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,

    /// Replay this CSV (one reading per line, a header and a last label column allowed) instead
    /// of reading MQTT.
    #[arg(long, value_name = "CSV")]
    pub replay: Option<PathBuf>,

    /// Replay rate, readings per second [default: 10].
    #[arg(long, value_name = "HZ")]
    pub rate_hz: Option<f64>,

    /// Stop the replay after this many readings [default: the whole file, once].
    #[arg(long, value_name = "N")]
    pub replay_limit: Option<u64>,

    /// The SQLite outbox file [default: data/gateway.db].
    #[arg(long, value_name = "FILE")]
    pub db: Option<PathBuf>,

    /// The collector's base URL; batches go to ENDPOINT/v1/logs [default: http://127.0.0.1:8080].
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,

    /// Bearer token for the collector.
    #[arg(long, env = "EDGE_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// Seconds between timer flushes (sooner when a retry is due) [default: 30].
    #[arg(long, value_name = "SECS")]
    pub flush_secs: Option<u64>,

    /// Directory of the signed model package (model.sig, metadata.json, golden.json, the
    /// model), verified against the build's trusted keys before it scores
    /// [default: models/shuttle].
    #[arg(long, value_name = "DIR")]
    pub model: Option<PathBuf>,

    /// Score inside the WebAssembly sandbox (a wasm32-wasip1 module under wasmtime, memory and
    /// fuel capped per call) instead of natively.
    #[arg(long)]
    pub sandbox: bool,

    /// Send each scored reading's values with its score, so the collector can export them for
    /// retraining (unscored readings always carry theirs).
    #[arg(long)]
    pub send_readings: bool,

    /// The sandbox module [default: $EDGE_SANDBOX_MODULE, else the path gateway/build-sandbox.sh
    /// builds to].
    #[arg(long, value_name = "WASM")]
    pub sandbox_module: Option<PathBuf>,

    /// Fuel (roughly, wasm instructions) one sandboxed call may use [default: the sandbox's].
    #[arg(long, value_name = "UNITS")]
    pub sandbox_fuel: Option<u64>,

    /// Memory the sandboxed module may grow to, MiB [default: the sandbox's].
    #[arg(long, value_name = "MIB")]
    pub sandbox_memory_mib: Option<u64>,

    /// Most readings the outbox holds before evicting the oldest (counted) [default: 1000000].
    #[arg(long, value_name = "N")]
    pub capacity: Option<u64>,

    /// Print the resolved settings and exit.
    #[arg(long)]
    #[serde(skip)]
    pub print_config: bool,
}

/// Where readings come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// MQTT subscription.
    Mqtt,
    /// A CSV replayed at `rate_hz`, `limit` readings at most.
    Replay {
        /// The file.
        path: PathBuf,
        /// Readings per second.
        rate_hz: f64,
        /// Stop after this many.
        limit: Option<u64>,
    },
}

/// The resolved settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Config {
    /// Broker host.
    pub mqtt_host: String,
    /// Broker port.
    pub mqtt_port: u16,
    /// Readings topic filter.
    pub topic: String,
    /// Alerts topic prefix.
    pub alerts_topic: String,
    /// MQTT client id.
    pub client_id: String,
    /// Where readings come from.
    #[serde(skip)]
    pub input: Input,
    /// Outbox file.
    pub db: PathBuf,
    /// Collector base URL.
    pub endpoint: String,
    /// Collector token.
    #[serde(skip)]
    pub token: Option<String>,
    /// Timer flush period, s.
    pub flush_secs: u64,
    /// Signed model package directory.
    pub model: PathBuf,
    /// Score in the sandbox.
    pub sandbox: bool,
    /// Scored records carry their reading.
    pub send_readings: bool,
    /// Sandbox module path (when set).
    pub sandbox_module: Option<PathBuf>,
    /// Fuel per sandboxed call (when set).
    pub sandbox_fuel: Option<u64>,
    /// Sandbox memory cap, MiB (when set).
    pub sandbox_memory_mib: Option<u64>,
    /// Outbox capacity.
    pub capacity: u64,
}

/// A configuration that cannot run.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The `--config` file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for these settings.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line.
        message: String,
    },
    /// A value out of range.
    #[error("{0}")]
    Invalid(String),
}

impl Flags {
    /// Reads the `--config` file, if any, and resolves every setting.
    pub fn resolve(self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => Flags::default(),
        };
        self.over(file).into_config()
    }

    /// `self`'s values where given, else `file`'s.
    fn over(self, file: Flags) -> Flags {
        Flags {
            config: self.config,
            mqtt: self.mqtt.or(file.mqtt),
            topic: self.topic.or(file.topic),
            alerts_topic: self.alerts_topic.or(file.alerts_topic),
            client_id: self.client_id.or(file.client_id),
            replay: self.replay.or(file.replay),
            rate_hz: self.rate_hz.or(file.rate_hz),
            replay_limit: self.replay_limit.or(file.replay_limit),
            db: self.db.or(file.db),
            endpoint: self.endpoint.or(file.endpoint),
            token: self.token.or(file.token),
            flush_secs: self.flush_secs.or(file.flush_secs),
            model: self.model.or(file.model),
            sandbox: self.sandbox || file.sandbox,
            send_readings: self.send_readings || file.send_readings,
            sandbox_module: self.sandbox_module.or(file.sandbox_module),
            sandbox_fuel: self.sandbox_fuel.or(file.sandbox_fuel),
            sandbox_memory_mib: self.sandbox_memory_mib.or(file.sandbox_memory_mib),
            capacity: self.capacity.or(file.capacity),
            print_config: self.print_config,
        }
    }

    fn into_config(self) -> Result<Config, ConfigError> {
        let mqtt = self.mqtt.unwrap_or_else(|| "127.0.0.1:1883".into());
        let (host, port) = mqtt
            .rsplit_once(':')
            .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
            .ok_or_else(|| ConfigError::Invalid(format!("--mqtt {mqtt:?}: expected HOST:PORT")))?;
        let rate_hz = self.rate_hz.unwrap_or(10.0);
        if !(rate_hz.is_finite() && rate_hz > 0.0 && rate_hz <= 100_000.0) {
            return Err(ConfigError::Invalid(format!(
                "--rate-hz {rate_hz}: expected 0 < HZ ≤ 100000"
            )));
        }
        let flush_secs = self.flush_secs.unwrap_or(30);
        if flush_secs == 0 {
            return Err(ConfigError::Invalid("--flush-secs must be at least 1".into()));
        }
        let input = match self.replay {
            Some(path) => Input::Replay { path, rate_hz, limit: self.replay_limit },
            None => Input::Mqtt,
        };
        Ok(Config {
            mqtt_host: host,
            mqtt_port: port,
            topic: self.topic.unwrap_or_else(|| "edge/readings/+".into()),
            alerts_topic: self.alerts_topic.unwrap_or_else(|| "edge/alerts".into()),
            client_id: self.client_id.unwrap_or_else(|| "edge-gateway".into()),
            input,
            db: self.db.unwrap_or_else(|| PathBuf::from("data/gateway.db")),
            endpoint: self.endpoint.unwrap_or_else(|| "http://127.0.0.1:8080".into()),
            token: self.token.filter(|t| !t.is_empty()),
            flush_secs,
            model: self.model.unwrap_or_else(|| PathBuf::from("models/shuttle")),
            sandbox: self.sandbox,
            send_readings: self.send_readings,
            sandbox_module: self.sandbox_module,
            sandbox_fuel: self.sandbox_fuel,
            sandbox_memory_mib: self.sandbox_memory_mib,
            capacity: self.capacity.unwrap_or(1_000_000),
        })
    }
}

fn read_file(path: &Path) -> Result<Flags, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    toml::from_str(&text)
        .map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags(args: &[&str]) -> Flags {
        Flags::try_parse_from(std::iter::once("gateway").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn defaults() {
        let c = flags(&[]).resolve().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.mqtt_host.as_str(), c.mqtt_port), ("127.0.0.1", 1883));
        assert_eq!(c.flush_secs, 30);
        assert_eq!(c.input, Input::Mqtt);
        assert!(!c.sandbox);
    }

    #[test]
    fn flags_win_over_the_file_which_wins_over_defaults() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("gateway.toml");
        let toml = "mqtt = \"broker:1884\"\nflush_secs = 5\nsandbox = true\ntopic = \"t/+\"\n";
        std::fs::write(&file, toml).unwrap_or_else(|e| panic!("{e}"));
        let path = file.to_string_lossy().into_owned();
        let c = flags(&["--config", &path, "--flush-secs", "7"]).resolve();
        let c = c.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((c.mqtt_host.as_str(), c.mqtt_port), ("broker", 1884));
        assert_eq!(c.flush_secs, 7);
        assert!(c.sandbox);
        assert_eq!(c.topic, "t/+");
    }

    #[test]
    fn bad_values_and_unknown_keys_are_refused() {
        assert!(matches!(flags(&["--mqtt", "nohost"]).resolve(), Err(ConfigError::Invalid(_))));
        assert!(matches!(flags(&["--rate-hz", "0"]).resolve(), Err(ConfigError::Invalid(_))));
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("bad.toml");
        std::fs::write(&file, "flush_sec = 5\n").unwrap_or_else(|e| panic!("{e}"));
        let path = file.to_string_lossy().into_owned();
        assert!(matches!(flags(&["--config", &path]).resolve(), Err(ConfigError::Parse { .. })));
    }
}
