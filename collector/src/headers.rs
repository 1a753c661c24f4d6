//! Response headers: the security headers every response carries, and CORS for `/v1/logs`.
//!
//! Every response gets a strict `Content-Security-Policy` (the PWA's own policy from
//! `www/index.html` — same-origin scripts, workers, styles and connections, wasm compilation —
//! plus `frame-ancestors 'none'`, which a `<meta>` policy cannot express), `X-Content-Type-Options:
//! nosniff`, `Referrer-Policy: no-referrer`, and `Cross-Origin-Opener-Policy: same-origin` +
//! `Cross-Origin-Embedder-Policy: require-corp` (cross-origin isolation: 5 µs timers for the
//! dashboard's latency figures).
//!
//! CORS exists only on `/v1/logs`, for the origins given with `--cors-origin`: a PWA served from
//! another origin may `POST` with the headers the device sends, and may read `Retry-After`.
//! `/api/*` and `/admin/*` never send CORS headers, so no other page can read them.

use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// The policy without `connect-src`, which [`csp`] adds.
const CSP_BASE: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
    style-src 'self'; img-src 'self' data:; worker-src 'self'; manifest-src 'self'; \
    object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

/// The `Content-Security-Policy` value; `connect_src` are extra origins the PWA may send to
/// (`--connect-src`, for a device configured with another collector).
pub fn csp(connect_src: &[String]) -> String {
    let mut connect = String::from("connect-src 'self'");
    for origin in connect_src {
        connect.push(' ');
        connect.push_str(origin.trim());
    }
    format!("{CSP_BASE}; {connect}")
}

/// Middleware adding the security headers (state: the CSP value).
pub async fn security(State(csp): State<HeaderValue>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert("cross-origin-opener-policy", HeaderValue::from_static("same-origin"));
    headers.insert("cross-origin-embedder-policy", HeaderValue::from_static("require-corp"));
    response
}

/// The CORS layer for `/v1/logs`: `origins` may POST OTLP logs; nothing else is allowed.
pub fn logs_cors(origins: &[String]) -> CorsLayer {
    let origins: Vec<HeaderValue> =
        origins.iter().filter_map(|o| HeaderValue::from_str(o.trim()).ok()).collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::POST])
        .allow_headers([
            header::CONTENT_TYPE,
            header::CONTENT_ENCODING,
            header::AUTHORIZATION,
            HeaderName::from_static("idempotency-key"),
        ])
        .expose_headers([header::RETRY_AFTER])
        .max_age(Duration::from_secs(7200))
}
