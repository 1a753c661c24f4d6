//! Serving the built PWA (`--static DIR`) with the headers browsers need.
//!
//! `ServeDir` does the file work; a middleware then pins the media types that matter for a
//! wasm PWA regardless of the platform's MIME tables (`.wasm` → `application/wasm`, needed for
//! `WebAssembly.instantiateStreaming`; `.js`/`.mjs` → `text/javascript`; `.webmanifest` →
//! `application/manifest+json`) and marks `sw.js` `Cache-Control: no-cache` so a new service
//! worker is picked up on the next update check. The security and cross-origin isolation headers
//! every response carries are added by [`crate::headers`].
//!
//! Compression costs nothing per request: the build writes `NAME.br` and `NAME.gz` beside each
//! compressible file (`scripts/precompress.sh`, a Trunk post-build hook), and `ServeDir` sends
//! the smallest one the request's `Accept-Encoding` allows, with `Content-Encoding` and `Vary:
//! Accept-Encoding`; a file without them, or a client asking for neither, gets the file as it
//! is. The media type is the original file's either way.

use std::path::Path;

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use tower_http::services::ServeDir;

/// A router serving `dir` for every path it is given.
pub fn router(dir: &Path) -> Router {
    let files = ServeDir::new(dir).precompressed_br().precompressed_gzip();
    Router::new().fallback_service(files).layer(middleware::from_fn(pwa_headers))
}

/// The media type we insist on for `path`, if it is one of ours.
pub fn content_type_for(path: &str) -> Option<&'static str> {
    let extension = path.rsplit_once('.').map(|(_, ext)| ext.to_ascii_lowercase())?;
    match extension.as_str() {
        "wasm" => Some("application/wasm"),
        "js" | "mjs" => Some("text/javascript"),
        "webmanifest" => Some("application/manifest+json"),
        _ => None,
    }
}

async fn pwa_headers(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let mut response = next.run(request).await;
    if response.status().is_success() || response.status().is_redirection() {
        if let Some(media_type) = content_type_for(&path) {
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
        }
        if path == "/sw.js" || path.ends_with("/sw.js") {
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        }
    }
    response
}
