//! `POST /v1/logs`: the OTLP/HTTP JSON logs endpoint.
//!
//! Order of checks: bearer token (401) → injected fault, if any → `Content-Type` (415) →
//! `Content-Encoding` (415) → body size (413) → gzip (400/413) → OTLP JSON (400) →
//! `Idempotency-Key` header (400) → one SQLite transaction. A request that fails any check
//! stores nothing. Success is 200 with `{}`, or with `{"partialSuccess": …}` when records with
//! non-finite numbers were rejected individually (see [`crate::otlp`]). A replayed
//! `Idempotency-Key` gets the stored response back with an `Idempotent-Replayed: true` header.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;
use crate::faults::Action;
use crate::state::AppState;
use crate::store::IngestOutcome;
use crate::{auth, body, otlp, server};

/// The idempotency header our client sends, one value per logical batch.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Longest accepted `Idempotency-Key`.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 256;

/// The handler.
pub async fn post_logs(State(state): State<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    if let Err(e) = auth::check(state.config().token.as_deref(), &parts.headers) {
        state.counters().rejected();
        return e.into_response();
    }

    let mut reset_after = false;
    if let Some(injection) = state.faults().take() {
        state.counters().faulted();
        if let Some(delay) = injection.delay {
            tokio::time::sleep(delay).await;
        }
        match injection.action {
            Action::Proceed => {}
            Action::Status { status, retry_after } => return fault_status(status, retry_after),
            Action::ResetBeforeStore => return server::reset_connection(),
            Action::ResetAfterStore => reset_after = true,
        }
    }

    let result = handle(&state, &parts.headers, body).await;
    if reset_after {
        // The batch is stored (if it was valid); the client never learns it.
        return server::reset_connection();
    }
    match result {
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

async fn handle(
    state: &AppState,
    headers: &HeaderMap,
    raw: axum::body::Body,
) -> Result<Response, ApiError> {
    body::check_content_type(headers)?;
    let encoding = body::encoding(headers)?;
    let limit = state.config().max_body_bytes;
    let raw = body::read_limited(headers, raw, limit).await?;
    let decoded = body::decode(encoding, raw, limit)?;
    let batch = otlp::parse(&decoded)?;
    let key = idempotency_key(headers)?;
    let response_json = batch.response_json();
    let received_at = now_ms();

    let to_store = response_json.clone();
    let outcome = state
        .store(move |store| store.ingest(key.as_deref(), &batch.records, &to_store, received_at))
        .await?;
    let (body, replayed) = match outcome {
        IngestOutcome::Replayed { response_json: stored } => (stored, true),
        IngestOutcome::Stored { .. } => (response_json, false),
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

fn fault_status(status: StatusCode, retry_after: Option<u64>) -> Response {
    let body = serde_json::json!({ "error": format!("injected fault: {status}") }).to_string();
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
