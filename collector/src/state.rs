//! The state every handler shares: configuration, the store, the fault switch and the
//! in-memory request counters.
//!
//! [`AppState`] is a cheap clone (one `Arc`). Store calls go through [`AppState::store`], which
//! runs the blocking database work (SQLite or PostgreSQL, see [`Database`]) on tokio's
//! blocking pool so the async workers never stall.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::database::Database;
use crate::faults::{FaultSpec, Faults};
use crate::otlp::Limits;
use crate::store::StoreError;

/// Default for `--max-body-bytes`: 4 MiB.
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;
/// Default for `--body-timeout-secs`: the whole request body must arrive within 30 s.
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Default for `--max-connections`: connections served at once; more wait in the kernel's
/// accept queue. Each costs a task and its buffers (tens of KiB), so 512 stays far below the
/// default open-file limit of 1024 while serving many more devices than a dev collector sees.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;

/// Run-time settings (from the command line in `main`, built directly in tests).
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest accepted `/v1/logs` body, raw and after gzip decompression.
    pub max_body_bytes: usize,
    /// If set, `/v1/logs` and `/admin/*` require `Authorization: Bearer <token>`.
    pub token: Option<String>,
    /// Directory of the built PWA to serve at `/`; `None` serves only the API.
    pub static_dir: Option<PathBuf>,
    /// Whether fault injection exists (`--test-faults`): the layer around `/v1/logs` and the
    /// `/admin/faults` endpoint. Off, neither exists.
    pub test_faults: bool,
    /// `Host` values accepted besides the listen address and the loopback names with its port
    /// (`--allowed-host`). Checked only when served by [`crate::serve`], which knows the address.
    pub allowed_hosts: Vec<String>,
    /// Origins allowed to call `/v1/logs` cross-origin (`--cors-origin`), e.g.
    /// `https://app.example`.
    pub cors_origins: Vec<String>,
    /// Origins the PWA may connect to besides its own (`--connect-src`), added to the CSP's
    /// `connect-src`.
    pub connect_src: Vec<String>,
    /// Time limit on reading a whole `/v1/logs` body (408 after it).
    pub body_timeout: Duration,
    /// Connections served at once by [`crate::serve`].
    pub max_connections: usize,
    /// Limits on one request's content.
    pub limits: Limits,
    /// Directory of published model releases served at `/releases/` (`--releases`); `None`:
    /// the manifest lists none.
    pub releases_dir: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            token: None,
            static_dir: None,
            test_faults: false,
            allowed_hosts: Vec::new(),
            cors_origins: Vec::new(),
            connect_src: Vec::new(),
            body_timeout: DEFAULT_BODY_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            limits: Limits::default(),
            releases_dir: None,
        }
    }
}

/// Outcome counters for `/v1/logs` since the process started.
#[derive(Debug, Default)]
pub struct RequestCounters {
    ok: AtomicU64,
    rejected: AtomicU64,
    faulted: AtomicU64,
}

/// A snapshot of [`RequestCounters`], as `GET /api/stats` shows it under `requests`.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct RequestStats {
    /// Answered 200 (including idempotent replays and partial successes).
    pub ok: u64,
    /// Answered with an error status (4xx for bad requests, 503/500 for storage failures).
    pub rejected: u64,
    /// Hit by an injected fault (a delayed request is also counted by its outcome).
    pub faulted: u64,
}

impl RequestCounters {
    /// Counts a 200.
    pub fn ok(&self) {
        self.ok.fetch_add(1, Ordering::Relaxed);
    }
    /// Counts an error answer.
    pub fn rejected(&self) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
    }
    /// Counts an injected fault.
    pub fn faulted(&self) {
        self.faulted.fetch_add(1, Ordering::Relaxed);
    }
    /// The current values.
    pub fn snapshot(&self) -> RequestStats {
        RequestStats {
            ok: self.ok.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            faulted: self.faulted.load(Ordering::Relaxed),
        }
    }
}

struct Shared {
    config: Config,
    store: Arc<Database>,
    faults: Faults,
    counters: RequestCounters,
}

/// Everything the handlers share.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// State over `store` (a [`crate::Store`] or a [`Database`]), with `config` and no fault.
    pub fn new(store: impl Into<Database>, config: Config) -> Self {
        Self::with_fault(store, config, FaultSpec::default())
    }

    /// State starting with `fault` armed (validate it first).
    pub fn with_fault(store: impl Into<Database>, config: Config, fault: FaultSpec) -> Self {
        AppState(Arc::new(Shared {
            config,
            store: Arc::new(store.into()),
            faults: Faults::new(fault),
            counters: RequestCounters::default(),
        }))
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.0.config
    }

    /// The fault switch.
    pub fn faults(&self) -> &Faults {
        &self.0.faults
    }

    /// The request counters.
    pub fn counters(&self) -> &RequestCounters {
        &self.0.counters
    }

    /// Runs `f` against the store on the blocking pool.
    pub async fn store<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.0.store);
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|e| StoreError::Task(e.to_string()))?
    }

    /// The store itself, for callers already on a blocking thread.
    pub fn store_handle(&self) -> Arc<Database> {
        Arc::clone(&self.0.store)
    }
}
