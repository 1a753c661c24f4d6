//! Responses that ask the accept loop to do something other than answer.
//!
//! Some injected faults must not produce an HTTP status at all: the client has to see a reset
//! connection, or no answer. A handler or layer cannot do that through axum, so it returns a
//! response carrying a [`ConnectionControl`] marker and [`crate::server`] acts on it: `Reset`
//! drops the connection with a TCP RST, `Hang` withholds the answer and keeps the socket open
//! until the client closes it.
//!
//! Served any other way (e.g. `tower::ServiceExt::oneshot` in tests), the marker response is a
//! plain 500 explaining that this needs [`crate::serve`].

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// What the accept loop does instead of sending the response it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionControl {
    /// Drop the connection with a TCP RST and no response.
    Reset,
    /// Send nothing; keep the connection open until the client closes it.
    Hang,
}

/// A response that [`crate::serve`] turns into `control` instead of sending it.
pub fn response(control: ConnectionControl) -> Response {
    let what = match control {
        ConnectionControl::Reset => "connection reset",
        ConnectionControl::Hang => "hang",
    };
    let body = serde_json::json!({
        "error": format!("injected fault: {what} (only effective when served by collector::serve)")
    })
    .to_string();
    let mut response =
        (StatusCode::INTERNAL_SERVER_ERROR, [(header::CONTENT_TYPE, "application/json")], body)
            .into_response();
    response.extensions_mut().insert(control);
    response
}
