//! The one error type every HTTP handler returns, and how each variant maps to a status code.
//!
//! Handlers never panic and never answer with a bare string: each failure is an [`ApiError`]
//! variant, rendered as `{"error": "<reason>"}` with the status the OTLP/HTTP spec expects
//! (400 malformed, 401 missing token, 403 forbidden origin, 408 body too slow, 413 too large,
//! 415 wrong media type, 421 unknown host, 503 + `Retry-After` for a storage failure that may
//! pass, 500 for one that will not).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use crate::otlp::ParseError;
use crate::store::StoreError;

/// `Retry-After` seconds sent with a 503 for a transient storage failure.
pub const STORAGE_RETRY_AFTER_SECS: u32 = 2;

/// Everything that can go wrong while answering a request.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// `--token` is set and the request did not carry `Authorization: Bearer <token>`.
    #[error("missing or invalid bearer token")]
    Unauthorized,
    /// The request comes from a web origin that may not call this endpoint.
    #[error("{0}")]
    Forbidden(String),
    /// The `Host` header names a host this collector does not serve (DNS rebinding defence).
    #[error("{0}")]
    MisdirectedHost(String),
    /// The body did not arrive within the time limit.
    #[error("the request body did not arrive within {0} s")]
    BodyTimeout(u64),
    /// The request's `Content-Type` or `Content-Encoding` is not one we accept.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// The body, raw or decompressed, is larger than `--max-body-bytes`.
    #[error("request body exceeds the limit of {limit} bytes{}", if *.decompressed { " after decompression" } else { "" })]
    PayloadTooLarge {
        /// The configured limit in bytes.
        limit: usize,
        /// Whether the limit was hit while inflating a gzip body.
        decompressed: bool,
    },
    /// The body could not be read or decoded (bad gzip, bad header, bad query, …).
    #[error("{0}")]
    BadRequest(String),
    /// The body is not a valid OTLP/HTTP JSON `ExportLogsServiceRequest` for this collector.
    #[error(transparent)]
    Malformed(#[from] ParseError),
    /// SQLite failed; the request's transaction was rolled back. Answered 503 with
    /// `Retry-After` when [`StoreError::is_transient`], else 500.
    #[error("storage error: {0}")]
    Store(#[from] StoreError),
}

impl ApiError {
    /// The HTTP status this error is answered with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::MisdirectedHost(_) => StatusCode::MISDIRECTED_REQUEST,
            ApiError::BodyTimeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Malformed(ParseError::Limit(_)) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BadRequest(_) | ApiError::Malformed(_) => StatusCode::BAD_REQUEST,
            ApiError::Store(e) if e.is_transient() => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            crate::log::warn(format_args!("{self}"));
        }
        let mut response =
            (status, Json(serde_json::json!({ "error": self.to_string() }))).into_response();
        if matches!(self, ApiError::Unauthorized) {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(STORAGE_RETRY_AFTER_SECS));
        }
        if status == StatusCode::REQUEST_TIMEOUT {
            // The body may still be arriving; this connection cannot carry another request.
            response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}
