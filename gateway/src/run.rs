//! The gateway's main loop: open the outbox and the app, install the signed model (natively or
//! in the sandbox), start the flush timer, read the input until told to stop, flush once more.

use std::rc::Rc;
use std::time::Duration;

use edge_anomaly::app::{App, AppError, AppOptions, ScheduleConfig};
use edge_anomaly::outbox::OutboxConfig;
use tracing::{error, info, warn};

use crate::config::{Config, Input};
use crate::env::{SystemEnv, TokioTimer};
use crate::ingest::Ingest;
use crate::store::SqliteStore;
use crate::transport::HttpTransport;
use crate::{flush_logged, mqtt, package, replay, sandboxed, GatewayApp};

/// The gateway's version (sent with every batch; releases name the least one they need).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Longest a request to the collector may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest the last flush at shutdown may take.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(10);

/// What stops the gateway from starting.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The outbox cannot be opened.
    #[error("outbox {path}: {message}")]
    Store {
        /// Its file.
        path: String,
        /// Why.
        message: String,
    },
    /// The app core refused to open.
    #[error(transparent)]
    App(#[from] AppError),
    /// The HTTP client cannot be built.
    #[error(transparent)]
    Transport(#[from] edge_anomaly::outbox::TransportError),
    /// `--sandbox` was asked for and the sandbox cannot hold the model.
    #[error(transparent)]
    Sandbox(#[from] sandboxed::SandboxSetupError),
    /// The replay file cannot be read.
    #[error("replay: {0}")]
    Replay(std::io::Error),
}

/// Opens the outbox and the app core.
pub async fn open(config: &Config) -> Result<Rc<GatewayApp>, RunError> {
    if let Some(dir) = config.db.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| RunError::Store {
            path: config.db.display().to_string(),
            message: e.to_string(),
        })?;
    }
    let store = SqliteStore::open(&config.db).map_err(|e| RunError::Store {
        path: config.db.display().to_string(),
        message: e.to_string(),
    })?;
    let outbox = OutboxConfig { capacity: config.capacity };
    let options = AppOptions {
        outbox,
        endpoint: config.endpoint.clone(),
        token: config.token.clone(),
        app_version: VERSION.to_owned(),
        schedule: ScheduleConfig {
            timer_ms: config.flush_secs * 1000,
            ..ScheduleConfig::default()
        },
        send_readings: config.send_readings,
    };
    let transport = HttpTransport::new(REQUEST_TIMEOUT)?;
    let app =
        App::open(Rc::new(store), transport, SystemEnv, TokioTimer::default(), options).await?;
    Ok(Rc::new(app))
}

/// Installs the signed package in `config.model`. A package that does not verify leaves the
/// gateway without a model: it keeps recording every reading raw (`NOT_LOADED`), and says so.
pub fn install_model(
    app: &GatewayApp,
    config: &Config,
) -> Option<edge_anomaly::update::ModelFiles> {
    let (files, bundle) = match package::read(&config.model) {
        Ok(read) => read,
        Err(e) => {
            error!("model package: {e}; readings are recorded unscored");
            return None;
        }
    };
    match app.install_package(&files, &bundle, "update") {
        Ok(model) => {
            info!(
                version = model.version,
                subject = model.subject_sha256,
                "model verified and active"
            );
            Some(files)
        }
        Err(e) => {
            error!(code = e.code(), "model package refused: {e}; readings are recorded unscored");
            None
        }
    }
}

/// Runs the gateway until SIGINT/SIGTERM (or the end of a replay).
pub async fn run(config: Config) -> Result<(), RunError> {
    let app = open(&config).await?;
    info!(device_id = app.device_id(), db = %config.db.display(), endpoint = config.endpoint, "outbox open");
    let files = install_model(&app, &config);
    if config.sandbox {
        match &files {
            Some(files) => sandboxed::install(&app, &config, files)?,
            None => warn!("--sandbox: no verified model to load into the sandbox"),
        }
    }
    let timer_app = Rc::clone(&app);
    tokio::task::spawn_local(async move {
        let app = Rc::clone(&timer_app);
        timer_app
            .run_timer(move || {
                let app = Rc::clone(&app);
                async move {
                    flush_logged(&app, "timer").await;
                    true
                }
            })
            .await;
    });
    flush_logged(&app, "start").await;

    let input = async {
        match &config.input {
            Input::Mqtt => {
                let (client, events) = mqtt::connect(&config);
                let ingest = Ingest::new(Rc::clone(&app), mqtt::alerts(&client, &config));
                info!(
                    broker = format!("{}:{}", config.mqtt_host, config.mqtt_port),
                    topic = config.topic,
                    "reading MQTT"
                );
                mqtt::run(client, events, config.topic.clone(), ingest).await;
                Ok(())
            }
            Input::Replay { path, rate_hz, limit } => {
                let ingest = Ingest::new(Rc::clone(&app), LogAlerts);
                replay::run(&ingest, path, *rate_hz, *limit)
                    .await
                    .map(|_| ())
                    .map_err(RunError::Replay)
            }
        }
    };
    let result = tokio::select! {
        r = input => r,
        () = shutdown_signal() => {
            info!("stopping");
            Ok(())
        }
    };
    match tokio::time::timeout(SHUTDOWN_FLUSH, flush_logged(&app, "shutdown")).await {
        Ok(_) => {}
        Err(_) => warn!("the last flush did not finish; the queue stays in the outbox"),
    }
    result
}

/// Alerts of a replay go to the log only.
struct LogAlerts;

impl crate::ingest::AlertSink for LogAlerts {
    fn alert(&self, _alert: &crate::ingest::Alert) {}
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
