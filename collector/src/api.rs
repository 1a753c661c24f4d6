//! The read-only JSON API for the dashboard and tests, and `/healthz`.
//!
//! - `GET /healthz` → `ok`
//! - `GET /api/stats` → totals from the database plus this process's request counters
//! - `GET /api/records?limit=100&device=ID&before=CURSOR` → one page, newest first
//! - `GET /api/devices` → `{"devices": [...]}`, one summary per device
//! - `GET /api/devices/{id}/gaps?limit=100` → the device's missing seq ranges, lowest first
//!
//! Every query runs on the store's reader connection and reads summaries or walks an index, so
//! none of them scans the records table or waits for an ingest transaction.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::ApiError;
use crate::state::{AppState, RequestStats};
use crate::store::{Gaps, RecordPage, StoredStats};

/// Default `limit` of `GET /api/records` and `GET /api/devices/{id}/gaps`.
pub const DEFAULT_LIMIT: u32 = 100;
/// Largest accepted `limit`.
pub const MAX_LIMIT: u32 = 1000;

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
    /// Only records older than this cursor (a record's `cursor`, or the previous page's
    /// `next_before`).
    pub before: Option<i64>,
}

/// Query of `GET /api/devices/{id}/gaps`.
#[derive(Debug, Deserialize)]
pub struct LimitQuery {
    /// How many items (1–1000, default 100).
    pub limit: Option<u32>,
}

fn limit(value: Option<u32>) -> Result<u32, ApiError> {
    let limit = value.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit must be between 1 and {MAX_LIMIT}")));
    }
    Ok(limit)
}

/// `GET /api/records`.
pub async fn records(
    State(state): State<AppState>,
    query: Result<Query<RecordsQuery>, QueryRejection>,
) -> Result<Json<RecordPage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = limit(query.limit)?;
    let (device, before) = (query.device, query.before);
    let page = state.store(move |s| s.records(limit, device.as_deref(), before)).await?;
    Ok(Json(page))
}

/// `GET /api/devices`.
pub async fn devices(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let devices = state.store(|s| s.devices()).await?;
    Ok(Json(json!({ "devices": devices })))
}

/// `GET /api/devices/{id}/gaps`.
pub async fn gaps(
    State(state): State<AppState>,
    Path(device): Path<String>,
    query: Result<Query<LimitQuery>, QueryRejection>,
) -> Result<Json<Gaps>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = limit(query.limit)? as usize;
    let gaps = state.store(move |s| s.gaps(&device, limit)).await?;
    Ok(Json(gaps))
}
