//! `collector`: command line and startup.
//!
//! Parses the flags; `publish-model DIR` verifies and publishes a signed model release and
//! exits. Otherwise: opens the database, arms the startup fault (`--fault`, only with
//! `--test-faults`), binds the address, prints the URL, and serves until Ctrl-C or SIGTERM. Errors here are reported with `anyhow`
//! and end the process with a non-zero status; request-time errors never reach this file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use collector::log;
use collector::state::{DEFAULT_BODY_TIMEOUT, DEFAULT_MAX_BODY_BYTES, DEFAULT_MAX_CONNECTIONS};
use collector::{AppState, Config, Database, FaultSpec, PgStore, Store};

/// Edge Anomaly's telemetry endpoint (OTLP/HTTP JSON logs into SQLite) and PWA dev server.
#[derive(Debug, Parser)]
#[command(version, about, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Directory of published model releases, served at /releases/.
    #[arg(long, default_value = "./data/releases")]
    releases: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// SQLite database file (its directory is created if missing).
    #[arg(long, default_value = "./data/telemetry.sqlite")]
    db: PathBuf,
    /// PostgreSQL database instead of the SQLite file, e.g. `postgres://user@host:5432/edge`;
    /// several collectors may share one.
    #[arg(long, env = "EDGE_DATABASE_URL", hide_env_values = true, value_name = "URL")]
    database_url: Option<String>,
    /// Directory of the built PWA to serve at `/`.
    #[arg(long = "static", default_value = "dist")]
    static_dir: PathBuf,
    /// Largest accepted /v1/logs body in bytes, before and after gzip decompression.
    #[arg(long, default_value_t = DEFAULT_MAX_BODY_BYTES)]
    max_body_bytes: usize,
    /// Seconds allowed for a whole /v1/logs body to arrive (408 after that).
    #[arg(long, default_value_t = DEFAULT_BODY_TIMEOUT.as_secs())]
    body_timeout_secs: u64,
    /// Connections served at once; more wait in the kernel's accept queue.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Require `Authorization: Bearer TOKEN` on /v1/logs, /api/* and /admin/*.
    #[arg(long, env = "COLLECTOR_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Another `Host` this collector answers to (repeatable), e.g. `box.lan` or `box.lan:8080`.
    #[arg(long = "allowed-host", value_name = "HOST")]
    allowed_hosts: Vec<String>,
    /// An origin allowed to POST /v1/logs cross-origin (repeatable), e.g. `https://app.example`.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    cors_origins: Vec<String>,
    /// An origin the served PWA may connect to besides its own (repeatable; CSP connect-src).
    #[arg(long = "connect-src", value_name = "ORIGIN")]
    connect_src: Vec<String>,
    /// Enable fault injection (/admin/faults and --fault). For tests only; never in production.
    /// Public keys (PEM) whose signed releases cloud scoring may run; default: the
    /// development key.
    #[arg(long = "trust", value_name = "PEM")]
    trust: Vec<PathBuf>,
    /// Do not score, with the published releases, the readings devices sent unscored.
    #[arg(long)]
    no_cloud_scoring: bool,
    #[arg(long)]
    test_faults: bool,
    /// Fault to inject from startup (needs --test-faults), as the JSON of POST /admin/faults,
    /// e.g. '{"mode":"status","status":503,"retry_after":2,"count":3}'.
    #[arg(long)]
    fault: Option<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verifies a signed model directory (model.sig, as `model_signing sign key` writes it) and
    /// publishes it as a release that devices download from /releases/.
    PublishModel {
        /// The signed model directory.
        dir: PathBuf,
        /// Directory of published releases.
        #[arg(long, default_value = "./data/releases")]
        releases: PathBuf,
        /// A trusted public key (PEM; repeatable). Default: the repository's development key.
        #[arg(long = "trust", value_name = "PEM")]
        trust: Vec<PathBuf>,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    if let Some(Command::PublishModel { dir, releases, trust }) = &cli.command {
        let keys = collector::releases::trusted_keys(trust)?;
        let release = collector::releases::publish(dir, releases, &keys)
            .with_context(|| format!("publishing {}", dir.display()))?;
        println!("{}", serde_json::to_string(&release)?);
        return Ok(());
    }

    let fault = match &cli.fault {
        Some(_) if !cli.test_faults => {
            anyhow::bail!("--fault needs --test-faults (fault injection is off by default)")
        }
        Some(json) => FaultSpec::from_json(json.as_bytes()).context("--fault")?,
        None => FaultSpec::default(),
    };
    if cli.max_body_bytes == 0 {
        anyhow::bail!("--max-body-bytes must be at least 1");
    }
    if cli.max_connections == 0 {
        anyhow::bail!("--max-connections must be at least 1");
    }
    if cli.body_timeout_secs == 0 {
        anyhow::bail!("--body-timeout-secs must be at least 1");
    }
    for origin in &cli.cors_origins {
        if !(origin.starts_with("http://") || origin.starts_with("https://"))
            || origin.trim_end_matches('/') != origin
        {
            anyhow::bail!("--cors-origin {origin:?}: expected scheme://host[:port], no path");
        }
    }
    let static_dir = if cli.static_dir.is_dir() {
        Some(cli.static_dir.clone())
    } else {
        log::warn(format_args!(
            "warning: static directory {} not found; serving the API only (build the PWA first)",
            cli.static_dir.display()
        ));
        None
    };

    let (store, database): (Database, String) = match &cli.database_url {
        Some(url) => {
            // The synchronous client must not start on an async worker.
            let url = url.clone();
            let store = tokio::task::spawn_blocking(move || PgStore::open(&url))
                .await
                .context("opening the PostgreSQL database")?
                .context("opening the PostgreSQL database")?;
            (store.into(), "PostgreSQL (--database-url)".to_owned())
        }
        None => {
            let store = Store::open(&cli.db)
                .with_context(|| format!("opening database {}", cli.db.display()))?;
            (store.into(), cli.db.display().to_string())
        }
    };
    let config = Config {
        max_body_bytes: cli.max_body_bytes,
        token: cli.token.clone(),
        static_dir,
        test_faults: cli.test_faults,
        allowed_hosts: cli.allowed_hosts.clone(),
        cors_origins: cli.cors_origins.clone(),
        connect_src: cli.connect_src.clone(),
        body_timeout: Duration::from_secs(cli.body_timeout_secs),
        max_connections: cli.max_connections,
        releases_dir: Some(cli.releases.clone()),
        ..Config::default()
    };
    let state = AppState::with_fault(store, config, fault);

    if !cli.no_cloud_scoring {
        let keys = collector::releases::trusted_keys(&cli.trust)?;
        let models = collector::cloud::CloudModels::new(cli.releases.clone(), keys);
        collector::cloud::spawn(state.clone(), models);
    }

    let listener = tokio::net::TcpListener::bind(cli.addr)
        .await
        .with_context(|| format!("binding {}", cli.addr))?;
    let local = listener.local_addr().context("reading the bound address")?;
    log::info(format_args!("collector listening on http://{local}/"));
    log::info(format_args!("  database: {database}"));
    if let Some(dir) = &state.config().static_dir {
        log::info(format_args!("  static:   {}", dir.display()));
    }
    if state.config().token.is_some() {
        log::info(format_args!("  auth:     bearer token required on /v1/logs, /api/*, /admin/*"));
    }
    if state.config().test_faults {
        log::warn(format_args!("fault injection enabled (--test-faults): for tests only"));
        let armed = state.faults().status();
        if armed.spec.mode != collector::FaultMode::None {
            log::info(format_args!(
                "  fault:    {}",
                serde_json::to_string(&armed.spec).unwrap_or_default()
            ));
        }
    }

    let shutdown = async {
        shutdown_signal().await;
        log::info(format_args!("collector: shutting down"));
    };
    collector::serve_with_shutdown(listener, state, shutdown).await.context("serving")?;
    Ok(())
}

/// Ctrl-C, or SIGTERM on Unix (what `kill` and container runtimes send).
async fn shutdown_signal() {
    let ctrl_c = async {
        // If the handler cannot be installed, wait for the other signal (or forever).
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sigterm) => {
                sigterm.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}
