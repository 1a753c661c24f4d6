//! `POST /v1/logs`: the OTLP/HTTP JSON logs endpoint.
//!
//! Order of checks: bearer token (401) → `Content-Type` (415) → `Content-Encoding` (415) →
//! `Idempotency-Key` header (400) → body size (413) and read time (408) → then, on the blocking
//! pool, gzip (400/413) → OTLP JSON (400) and limits (413) → one SQLite transaction. A request
//! that fails any check stores nothing. Success is 200 with `{}`, or with
//! `{"partialSuccess": …}` when records were refused individually (a non-finite score, see
//! [`crate::otlp`]; a record id already stored with other content, see [`crate::store`]). A
//! replayed `Idempotency-Key` gets the stored response back with `Idempotent-Replayed: true`.
//! A storage failure that may pass is 503 with `Retry-After`.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::{IngestOutcome, StoreError};
use crate::{auth, body, otlp};

/// The idempotency header our client sends, one value per logical batch.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 256;

/// The handler.
pub async fn post_logs(State(state): State<AppState>, request: Request) -> Response {
    match handle(&state, request).await {
        Ok(response) => {
            state.counters().ok();
            response
        }
        Err(e) => {
            state.counters().rejected();
            e.into_response()
        }
    }
}

async fn handle(state: &AppState, request: Request) -> Result<Response, ApiError> {
    let (parts, raw) = request.into_parts();
    let headers = &parts.headers;
    auth::check(state.config().token.as_deref(), headers)?;
    body::check_content_type(headers)?;
    let encoding = body::encoding(headers)?;
    let key = idempotency_key(headers)?;
    let config = state.config();
    let limit = config.max_body_bytes;
    let raw = tokio::time::timeout(config.body_timeout, body::read_limited(headers, raw, limit))
        .await
        .map_err(|_| ApiError::BodyTimeout(config.body_timeout.as_secs()))??;

    let limits = config.limits;
    let store = state.store_handle();
    let received_at = now_ms();
    // Inflating, parsing and storing are CPU and disk work: keep them off the async workers.
    let outcome = tokio::task::spawn_blocking(move || -> Result<IngestOutcome, ApiError> {
        let decoded = body::decode(encoding, raw, limit)?;
        let batch = otlp::parse_with(&decoded, &limits)?;
        drop(decoded);
        Ok(store.ingest(key.as_deref(), &batch, received_at)?)
    })
    .await
    .map_err(|e| ApiError::Store(StoreError::Task(e.to_string())))??;

    let (body, replayed) = match outcome {
        IngestOutcome::Replayed { response_json } => (response_json, true),
        IngestOutcome::Stored { response_json, .. } => (response_json, false),
    };
    let mut response =
        (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if replayed {
        response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII".to_owned()))?
        .trim();
    if key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN {
        return Err(ApiError::BadRequest(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} characters"
        )));
    }
    Ok(Some(key.to_owned()))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
