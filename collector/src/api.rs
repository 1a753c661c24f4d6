//! The read-only JSON API for the dashboard and tests, `/healthz`, and `/admin/faults`.
//!
//! - `GET /healthz` → `ok`
//! - `GET /api/stats` → totals from the database plus this process's request counters
//! - `GET /api/records?limit=100&device=ID` → `{"records": [...]}`, newest first (limit 1–1000)
//! - `GET /api/devices` → `{"devices": [...]}`, one summary per device
//! - `GET /admin/faults` → the current fault; `POST /admin/faults` sets it (token-protected
//!   like `/v1/logs` when `--token` is set)

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::auth;
use crate::error::ApiError;
use crate::faults::{FaultSpec, FaultStatus};
use crate::state::{AppState, RequestStats};
use crate::store::StoredStats;

/// Default and maximum `limit` of `GET /api/records`.
pub const DEFAULT_RECORDS_LIMIT: u32 = 100;
/// Largest accepted `limit`.
pub const MAX_RECORDS_LIMIT: u32 = 1000;

/// `GET /healthz`.
pub async fn healthz() -> &'static str {
    "ok"
}

/// The body of `GET /api/stats`.
#[derive(Debug, Serialize)]
pub struct Stats {
    /// Totals from the database.
    #[serde(flatten)]
    pub stored: StoredStats,
    /// `/v1/logs` outcomes since this process started.
    pub requests: RequestStats,
}

/// `GET /api/stats`.
pub async fn stats(State(state): State<AppState>) -> Result<Json<Stats>, ApiError> {
    let stored = state.store(|s| s.stats()).await?;
    Ok(Json(Stats { stored, requests: state.counters().snapshot() }))
}

/// Query of `GET /api/records`.
#[derive(Debug, Deserialize)]
pub struct RecordsQuery {
    /// How many records (1–1000, default 100).
    pub limit: Option<u32>,
    /// Only this device's records.
    pub device: Option<String>,
}

/// `GET /api/records`.
pub async fn records(
    State(state): State<AppState>,
    query: Result<Query<RecordsQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = query.limit.unwrap_or(DEFAULT_RECORDS_LIMIT);
    if !(1..=MAX_RECORDS_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!(
            "limit must be between 1 and {MAX_RECORDS_LIMIT}"
        )));
    }
    let device = query.device;
    let records = state.store(move |s| s.records(limit, device.as_deref())).await?;
    Ok(Json(json!({ "records": records })))
}

/// `GET /api/devices`.
pub async fn devices(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let devices = state.store(|s| s.devices()).await?;
    Ok(Json(json!({ "devices": devices })))
}

/// `GET /admin/faults`.
pub async fn get_faults(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<FaultStatus>, ApiError> {
    auth::check(state.config().token.as_deref(), &headers)?;
    Ok(Json(state.faults().status()))
}

/// `POST /admin/faults` with a [`FaultSpec`] as JSON (any `Content-Type`).
pub async fn set_faults(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<FaultStatus>, ApiError> {
    auth::check(state.config().token.as_deref(), &headers)?;
    let spec = FaultSpec::from_json(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    state.faults().set(spec);
    Ok(Json(state.faults().status()))
}
