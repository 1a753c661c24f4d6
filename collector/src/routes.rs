//! The route table: which path goes to which handler.

use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;
use crate::{api, ingest, static_files};

/// The whole app: the API routes, then the static PWA (if configured) for everything else.
pub fn app(state: AppState) -> Router {
    let static_dir = state.config().static_dir.clone();
    let api = Router::new()
        .route("/v1/logs", post(ingest::post_logs))
        .route("/healthz", get(api::healthz))
        .route("/api/stats", get(api::stats))
        .route("/api/records", get(api::records))
        .route("/api/devices", get(api::devices))
        .route("/admin/faults", get(api::get_faults).post(api::set_faults))
        .with_state(state);
    match static_dir {
        Some(dir) => api.fallback_service(static_files::router(&dir)),
        None => api,
    }
}
