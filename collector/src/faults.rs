//! The fault switch for `/v1/logs`, so tests and demos can exercise the client's retry and
//! idempotency logic against a misbehaving server. It exists only in a collector started with
//! `--test-faults`; [`crate::fault_layer`] applies it around the routes.
//!
//! A [`FaultSpec`] (the JSON of `POST /admin/faults` and `--fault`) selects one mode:
//! - `none`: clear any fault;
//! - `status`: answer `status` (default 503) with an optional `Retry-After: retry_after`
//!   header, reading and storing nothing;
//! - `delay`: wait `delay_ms` (default 500), then process the request normally;
//! - `reset`: process and store the batch, then drop the connection with a TCP RST and no
//!   response ("the server did the work but the ack was lost");
//! - `reset_before_store`: drop the connection with a TCP RST without storing anything;
//! - `hang`: read the request, store nothing and never answer; the connection stays open until
//!   the client gives up (its own timeout) or the collector stops.
//!
//! `delay_ms` also delays the other modes. `count` limits the fault to that many upcoming
//! `/v1/logs` requests (omitted: until cleared). Only requests that pass the bearer-token check
//! consume a fault.

use std::sync::Mutex;
use std::time::Duration;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

/// Longest accepted `delay_ms` (two minutes), so a typo cannot hang a client forever.
pub const MAX_DELAY_MS: u64 = 120_000;
/// `delay_ms` used by `delay` mode when the spec gives none.
pub const DEFAULT_DELAY_MS: u64 = 500;

/// The fault modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum FaultMode {
    /// No fault.
    #[default]
    None,
    /// Answer a fixed status without storing.
    Status,
    /// Wait, then process normally.
    Delay,
    /// Store, then reset the connection.
    Reset,
    /// Reset the connection without storing.
    ResetBeforeStore,
    /// Read the request, never answer, keep the connection open.
    Hang,
}

/// A fault as configured (`POST /admin/faults`, `--fault`) and as shown (`GET /admin/faults`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// Which fault.
    pub mode: FaultMode,
    /// Status for `status` mode (200–599; default 503).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Seconds for the `Retry-After` header in `status` mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// Delay before handling, in ms (`delay` mode defaults to 500).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
    /// How many upcoming requests get the fault (omitted: until cleared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
}

/// Why a [`FaultSpec`] was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FaultError {
    /// Not valid JSON for a fault spec.
    #[error("invalid fault spec: {0}")]
    Json(String),
    /// `status` outside 200–599.
    #[error("status must be between 200 and 599, got {0}")]
    Status(u16),
    /// `delay_ms` above [`MAX_DELAY_MS`].
    #[error("delay_ms must be at most {MAX_DELAY_MS}, got {0}")]
    Delay(u64),
    /// `count` of zero.
    #[error("count must be at least 1 (omit it for \"until cleared\")")]
    Count,
}

impl FaultSpec {
    /// Parses and validates the JSON form.
    pub fn from_json(text: &[u8]) -> Result<Self, FaultError> {
        let spec: FaultSpec =
            serde_json::from_slice(text).map_err(|e| FaultError::Json(e.to_string()))?;
        spec.validate()?;
        Ok(spec)
    }

    /// Checks the ranges; `mode: none` is always valid.
    pub fn validate(&self) -> Result<(), FaultError> {
        if self.mode == FaultMode::None {
            return Ok(());
        }
        if let Some(status) = self.status {
            if !(200..=599).contains(&status) {
                return Err(FaultError::Status(status));
            }
        }
        if let Some(delay) = self.delay_ms.filter(|&d| d > MAX_DELAY_MS) {
            return Err(FaultError::Delay(delay));
        }
        if self.count == Some(0) {
            return Err(FaultError::Count);
        }
        Ok(())
    }
}

/// What to do to one request, as drawn by [`Faults::take`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Injection {
    /// Wait this long first.
    pub delay: Option<Duration>,
    /// Then this.
    pub action: Action,
}

/// The part of an [`Injection`] after the delay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Handle the request normally.
    Proceed,
    /// Answer this status, store nothing.
    Status {
        /// The status.
        status: StatusCode,
        /// `Retry-After` seconds, if any.
        retry_after: Option<u64>,
    },
    /// Handle (and store) the request, then reset the connection.
    ResetAfterStore,
    /// Reset the connection without storing.
    ResetBeforeStore,
    /// Read the request, store nothing, never answer.
    Hang,
}

/// The current fault, shown by `GET /admin/faults`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FaultStatus {
    /// The configured fault (`count` is what was configured).
    #[serde(flatten)]
    pub spec: FaultSpec,
    /// Requests the fault still applies to (null: until cleared).
    pub remaining: Option<u32>,
    /// Faults injected since the process started.
    pub injected: u64,
}

#[derive(Debug, Default)]
struct State {
    spec: FaultSpec,
    remaining: Option<u32>,
    injected: u64,
}

/// The shared fault switch.
#[derive(Debug, Default)]
pub struct Faults {
    state: Mutex<State>,
}

impl Faults {
    /// A switch starting with `spec` (validate it first).
    pub fn new(spec: FaultSpec) -> Self {
        let faults = Faults::default();
        faults.set(spec);
        faults
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is plain data, always consistent; recover it even if a holder panicked.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Replaces the current fault.
    pub fn set(&self, spec: FaultSpec) {
        let mut state = self.lock();
        state.remaining = if spec.mode == FaultMode::None { None } else { spec.count };
        state.spec = spec;
    }

    /// The current fault.
    pub fn status(&self) -> FaultStatus {
        let state = self.lock();
        FaultStatus {
            spec: state.spec.clone(),
            remaining: state.remaining,
            injected: state.injected,
        }
    }

    /// Draws the fault for one `/v1/logs` request, counting it down; `None` when there is none.
    pub fn take(&self) -> Option<Injection> {
        let mut state = self.lock();
        let spec = state.spec.clone();
        if spec.mode == FaultMode::None {
            return None;
        }
        match state.remaining {
            Some(0) => {
                *state = State { injected: state.injected, ..State::default() };
                return None;
            }
            Some(n) => {
                state.remaining = Some(n - 1);
                if n == 1 {
                    state.spec = FaultSpec::default();
                    state.remaining = None;
                }
            }
            None => {}
        }
        state.injected += 1;
        let default_delay =
            if spec.mode == FaultMode::Delay { Some(DEFAULT_DELAY_MS) } else { None };
        let delay = spec.delay_ms.or(default_delay).filter(|&ms| ms > 0).map(Duration::from_millis);
        let action = match spec.mode {
            FaultMode::None | FaultMode::Delay => Action::Proceed,
            FaultMode::Status => Action::Status {
                status: StatusCode::from_u16(spec.status.unwrap_or(503))
                    .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
                retry_after: spec.retry_after,
            },
            FaultMode::Reset => Action::ResetAfterStore,
            FaultMode::ResetBeforeStore => Action::ResetBeforeStore,
            FaultMode::Hang => Action::Hang,
        };
        Some(Injection { delay, action })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates_specs() {
        let cases: &[(&str, Result<FaultMode, &str>)] = &[
            (r#"{"mode": "none"}"#, Ok(FaultMode::None)),
            (
                r#"{"mode": "status", "status": 503, "retry_after": 2, "count": 3}"#,
                Ok(FaultMode::Status),
            ),
            (r#"{"mode": "delay", "delay_ms": 500}"#, Ok(FaultMode::Delay)),
            (r#"{"mode": "reset"}"#, Ok(FaultMode::Reset)),
            (r#"{"mode": "reset_before_store", "count": 1}"#, Ok(FaultMode::ResetBeforeStore)),
            (r#"{"mode": "hang", "count": 1}"#, Ok(FaultMode::Hang)),
            (r#"{"mode": "explode"}"#, Err("invalid fault spec")),
            (r#"{"mode": "status", "stauts": 503}"#, Err("invalid fault spec")),
            (r#"{"mode": "status", "status": 700}"#, Err("status must be")),
            (r#"{"mode": "delay", "delay_ms": 99999999}"#, Err("delay_ms must be")),
            (r#"{"mode": "reset", "count": 0}"#, Err("count must be")),
            ("[]", Err("invalid fault spec")),
        ];
        for (json, expected) in cases {
            match (FaultSpec::from_json(json.as_bytes()), expected) {
                (Ok(spec), Ok(mode)) => assert_eq!(spec.mode, *mode, "{json}"),
                (Err(e), Err(msg)) => assert!(e.to_string().contains(msg), "{json}: {e}"),
                (got, want) => panic!("{json}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn count_expires_and_clears() {
        let faults = Faults::new(
            FaultSpec::from_json(br#"{"mode": "status", "status": 429, "count": 2}"#).unwrap(),
        );
        let expected = Injection {
            delay: None,
            action: Action::Status { status: StatusCode::TOO_MANY_REQUESTS, retry_after: None },
        };
        assert_eq!(faults.take(), Some(expected.clone()));
        assert_eq!(faults.status().remaining, Some(1));
        assert_eq!(faults.take(), Some(expected));
        assert_eq!(faults.take(), None);
        let status = faults.status();
        assert_eq!(status.spec.mode, FaultMode::None);
        assert_eq!(status.injected, 2);
    }

    #[test]
    fn without_count_lasts_until_cleared() {
        let faults = Faults::new(FaultSpec { mode: FaultMode::Delay, ..FaultSpec::default() });
        for _ in 0..5 {
            let injection = faults.take().unwrap();
            assert_eq!(injection.delay, Some(Duration::from_millis(DEFAULT_DELAY_MS)));
            assert_eq!(injection.action, Action::Proceed);
        }
        faults.set(FaultSpec::default());
        assert_eq!(faults.take(), None);
    }
}
