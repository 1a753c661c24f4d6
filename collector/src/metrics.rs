//! `POST /v1/metrics` (OTLP/HTTP JSON metrics: the devices' drift statistics) and
//! `GET /api/drift?device=ID` (what is stored, as a JSON list).
//!
//! The POST takes the guards of `/v1/logs`: bearer token (401), `Content-Type` (415),
//! `Content-Encoding` (415), body size (413) and read time (408), gzip (400/413), then the body
//! is read by [`edge_wire::metrics::decode`] — the same crate the device encodes with — (400 with
//! the reason, 413 over a limit) and every snapshot is upserted in one transaction: newest
//! `time_unix_nano` wins, so a late or replayed export changes nothing ([`crate::store::drift`]).
//! A request that fails any check stores nothing. Success is 200 with `{}`, or with an OTLP
//! `partialSuccess` counting the data points that are not part of a snapshot (foreign
//! metrics, a model version missing one of its metrics). There is no `Idempotency-Key`:
//! cumulative snapshots make a repeat harmless.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use edge_wire::metrics::{decode, DecodedMetrics, Limits, MetricsError};
use serde::Deserialize;
use serde_json::json;

use crate::error::ApiError;
use crate::otlp::ParseError;
use crate::state::AppState;
use crate::store::drift::StoredDrift;
use crate::store::StoreError;
use crate::{auth, body};

/// The handler of `POST /v1/metrics`.
pub async fn post_metrics(State(state): State<AppState>, request: Request) -> Response {
    match handle(&state, request).await {
        Ok(response) => response,
        Err(e) => e.into_response(),
    }
}

async fn handle(state: &AppState, request: Request) -> Result<Response, ApiError> {
    let (parts, raw) = request.into_parts();
    let headers = &parts.headers;
    auth::check(state.config().token.as_deref(), headers)?;
    body::check_content_type(headers)?;
    let encoding = body::encoding(headers)?;
    let config = state.config();
    let limit = config.max_body_bytes;
    let raw = tokio::time::timeout(config.body_timeout, body::read_limited(headers, raw, limit))
        .await
        .map_err(|_| ApiError::BodyTimeout(config.body_timeout.as_secs()))??;

    let store = state.store_handle();
    let received_at = now_ms();
    let decoded = tokio::task::spawn_blocking(move || -> Result<DecodedMetrics, ApiError> {
        let inflated = body::decode(encoding, raw, limit)?;
        let decoded = decode(&inflated, &Limits::default()).map_err(refused)?;
        fits_sqlite(&decoded)?;
        store.upsert_drift(&decoded.devices, received_at)?;
        Ok(decoded)
    })
    .await
    .map_err(|e| ApiError::Store(StoreError::Task(e.to_string())))??;

    let body = match decoded.error_message() {
        None => json!({}),
        Some(message) => json!({"partialSuccess": {
            "rejectedDataPoints": decoded.rejected_data_points.to_string(),
            "errorMessage": message,
        }}),
    };
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body.to_string())
        .into_response())
}

/// 413 for a body over a decoder limit, else 400 with the reason.
fn refused(e: MetricsError) -> ApiError {
    if e.is_too_large() {
        ApiError::Malformed(ParseError::Limit(e.to_string()))
    } else {
        ApiError::BadRequest(format!("not an OTLP ExportMetricsServiceRequest: {e}"))
    }
}

/// SQLite integers are signed: a time or count above `i64::MAX` is refused (400) before the
/// transaction, rather than failing it.
fn fits_sqlite(decoded: &DecodedMetrics) -> Result<(), ApiError> {
    for device in &decoded.devices {
        for s in &device.snapshots {
            let fields = [
                ("startTimeUnixNano", s.start_time_unix_nano),
                ("timeUnixNano", s.time_unix_nano),
                ("count", s.count),
                ("anomalies", s.anomalies),
            ];
            if let Some((name, _)) = fields.iter().find(|(_, v)| i64::try_from(*v).is_err()) {
                return Err(ApiError::BadRequest(format!(
                    "model version {:?}: {name} is above {}",
                    s.model_version,
                    i64::MAX
                )));
            }
        }
    }
    Ok(())
}

/// Query of `GET /api/drift`.
#[derive(Debug, Deserialize)]
pub struct DriftQuery {
    /// Only this device's snapshots.
    pub device: Option<String>,
}

/// `GET /api/drift?device=ID`: the latest snapshot per device and model version, by device
/// then version.
pub async fn get_drift(
    State(state): State<AppState>,
    query: Result<Query<DriftQuery>, QueryRejection>,
) -> Result<Json<Vec<StoredDrift>>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    let rows = state.store(move |s| s.drift(query.device.as_deref())).await?;
    Ok(Json(rows))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
