//! `/admin/faults`: read and set the fault switch. Routed only with `--test-faults`.
//!
//! The guard in front of `/admin/*` has already checked the host, the origin and the token;
//! `POST` additionally takes only `Content-Type: application/json` (415 otherwise), so a plain
//! HTML form or a `text/plain` fetch from another page cannot arm a fault.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;

use crate::body;
use crate::error::ApiError;
use crate::faults::{FaultSpec, FaultStatus};
use crate::state::AppState;

/// `GET /admin/faults`.
pub async fn get_faults(State(state): State<AppState>) -> Json<FaultStatus> {
    Json(state.faults().status())
}

/// `POST /admin/faults` with a [`FaultSpec`] as `application/json`.
pub async fn set_faults(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<FaultStatus>, ApiError> {
    body::check_json_content_type(&headers)?;
    let spec = FaultSpec::from_json(&body).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    state.faults().set(spec);
    Ok(Json(state.faults().status()))
}
