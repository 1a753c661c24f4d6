//! The fleet view: a page at `/fleet` listing every device, and the two queries behind it.
//!
//! - `GET /fleet` → the page (HTML, its script and the dashboard's own stylesheet and chart
//!   code, compiled into the binary so the collector shows the fleet without the PWA built);
//! - `GET /api/fleet?limit=50&after=ID` → one page of devices by id (`next_after` for the next);
//! - `GET /api/devices/{id}/series?limit=500&before=CURSOR` → the device's scores newest first,
//!   each marked with who scored it.
//!
//! The page is static and talks only to those endpoints (same origin, strict CSP: no inline
//! script or style). The queries are index walks on the reader connection (see
//! [`crate::store`]), so the page stays fast with millions of records and never blocks ingest.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{DevicePage, Series};

/// Default and largest `limit` of `/api/fleet`.
pub const DEVICES_LIMIT: (u32, u32) = (50, 500);
/// Default and largest `limit` of `/api/devices/{id}/series`.
pub const SERIES_LIMIT: (u32, u32) = (500, 5000);

const PAGE: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/fleet.js");
const STYLE: &str = include_str!("page/fleet.css");
/// The dashboard's look and its score chart, shared rather than copied.
const DASHBOARD_STYLE: &str = include_str!("../../../www/style.css");
const CHART: &str = include_str!("../../../www/chart.js");

/// Query of `GET /api/fleet`.
#[derive(Debug, Deserialize)]
pub struct FleetQuery {
    /// Devices per page.
    pub limit: Option<u32>,
    /// Only devices whose id sorts after this one (the previous page's `next_after`).
    pub after: Option<String>,
}

/// Query of `GET /api/devices/{id}/series`.
#[derive(Debug, Deserialize)]
pub struct SeriesQuery {
    /// Points per page.
    pub limit: Option<u32>,
    /// Only records older than this cursor.
    pub before: Option<i64>,
}

fn limit(value: Option<u32>, (default, max): (u32, u32)) -> Result<u32, ApiError> {
    let limit = value.unwrap_or(default);
    if !(1..=max).contains(&limit) {
        return Err(ApiError::BadRequest(format!("limit must be between 1 and {max}")));
    }
    Ok(limit)
}

/// `GET /api/fleet`.
pub async fn devices(
    State(state): State<AppState>,
    query: Result<Query<FleetQuery>, QueryRejection>,
) -> Result<Json<DevicePage>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = limit(query.limit, DEVICES_LIMIT)?;
    let after = query.after;
    Ok(Json(state.store(move |s| s.devices_page(limit, after.as_deref())).await?))
}

/// `GET /api/devices/{id}/series`.
pub async fn series(
    State(state): State<AppState>,
    Path(device): Path<String>,
    query: Result<Query<SeriesQuery>, QueryRejection>,
) -> Result<Json<Series>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let limit = limit(query.limit, SERIES_LIMIT)?;
    let before = query.before;
    Ok(Json(state.store(move |s| s.series(&device, limit, before)).await?))
}

/// `GET /fleet` and its assets.
pub async fn page() -> Response {
    asset("text/html; charset=utf-8", PAGE)
}

/// `GET /fleet/fleet.js`.
pub async fn script() -> Response {
    asset("text/javascript", SCRIPT)
}

/// `GET /fleet/chart.js`.
pub async fn chart() -> Response {
    asset("text/javascript", CHART)
}

/// `GET /fleet/style.css`: the dashboard's stylesheet, then the fleet page's additions.
pub async fn style() -> Response {
    asset("text/css", &format!("{DASHBOARD_STYLE}\n{STYLE}"))
}

fn asset(media_type: &'static str, body: &str) -> Response {
    let mut response = body.to_owned().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
