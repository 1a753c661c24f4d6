//! The fault-injection layer around `POST /v1/logs`, present only with `--test-faults`.
//!
//! It is the one place where an injected fault meets a request; the ingest handler knows nothing
//! about faults. Order: a request the bearer-token check would refuse passes through untouched
//! (it does not consume a fault, and the handler answers 401); otherwise the layer draws the
//! current fault, waits its delay, then:
//! - `status`: answers the status (with `Retry-After` if configured) without reading the body;
//! - `reset_before_store`: asks the accept loop to reset the connection;
//! - `hang`: reads the body, then asks the accept loop to keep the connection open and silent;
//! - `reset`: runs the handler (which stores the batch), then asks for a reset instead of
//!   sending its answer;
//! - `delay`: runs the handler normally.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::conn_control::{self, ConnectionControl};
use crate::faults::Action;
use crate::state::AppState;

/// The middleware (install with `axum::middleware::from_fn_with_state`).
pub async fn inject(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    if crate::auth::check(state.config().token.as_deref(), request.headers()).is_err() {
        return next.run(request).await;
    }
    let Some(injection) = state.faults().take() else {
        return next.run(request).await;
    };
    state.counters().faulted();
    if let Some(delay) = injection.delay {
        tokio::time::sleep(delay).await;
    }
    match injection.action {
        Action::Proceed => next.run(request).await,
        Action::Status { status, retry_after } => fault_status(status, retry_after),
        Action::ResetBeforeStore => conn_control::response(ConnectionControl::Reset),
        Action::Hang => {
            // Read the whole request first, so the client is left waiting for an answer and
            // not for us to read.
            let limit = state.config().max_body_bytes;
            let _ = axum::body::to_bytes(request.into_body(), limit).await;
            conn_control::response(ConnectionControl::Hang)
        }
        Action::ResetAfterStore => {
            // The handler stores the batch (if it is valid); the client never learns it.
            let _stored = next.run(request).await;
            conn_control::response(ConnectionControl::Reset)
        }
    }
}

fn fault_status(status: StatusCode, retry_after: Option<u64>) -> Response {
    let body = serde_json::json!({ "error": format!("injected fault: {status}") }).to_string();
    let mut response = (status, [(header::CONTENT_TYPE, "application/json")], body).into_response();
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
