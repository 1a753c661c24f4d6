//! The route table and the layers around it.
//!
//! Outermost first: the security headers (every response) → per group: `/v1/logs` gets the
//! origin check, CORS and, with `--test-faults`, the fault layer; `/api/*` and `/admin/*` get
//! the guard (same-origin, token). `/admin/faults` exists only with `--test-faults`.
//! `/releases/*` (signed model releases) and the `/fleet` page (which reads `/api/*` like any
//! other client) are public and read-only. Everything
//! else is the static PWA, if configured. The `Host` check wraps all of this in
//! [`crate::serve`], which knows the listen address.

use axum::http::HeaderValue;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;
use crate::{
    admin, api, export, fault_layer, fleet, guard, headers, ingest, metrics, releases, static_files,
};

/// The whole app: the API routes, then the static PWA (if configured) for everything else.
pub fn app(state: AppState) -> Router {
    let config = state.config().clone();

    let mut logs = post(ingest::post_logs);
    if config.test_faults {
        logs = logs.layer(from_fn_with_state(state.clone(), fault_layer::inject));
    }
    let logs = logs
        .layer(headers::logs_cors(&config.cors_origins))
        .layer(from_fn_with_state(state.clone(), guard::logs_origin));

    // The same origin check and CORS as the logs; no fault layer (metrics carry no queue).
    let metrics_route = post(metrics::post_metrics)
        .layer(headers::logs_cors(&config.cors_origins))
        .layer(from_fn_with_state(state.clone(), guard::logs_origin));

    let mut protected = Router::new()
        .route("/api/stats", get(api::stats))
        .route("/api/records", get(api::records))
        .route("/api/devices", get(api::devices))
        .route("/api/devices/{id}/gaps", get(api::gaps))
        .route("/api/fleet", get(fleet::devices))
        .route("/api/export.csv", get(export::export_csv))
        .route("/api/devices/{id}/series", get(fleet::series))
        .route("/api/drift", get(metrics::get_drift));
    if config.test_faults {
        protected =
            protected.route("/admin/faults", get(admin::get_faults).post(admin::set_faults));
    }
    let protected = protected.route_layer(from_fn_with_state(state.clone(), guard::protect));

    let mut router = Router::new()
        .route("/v1/logs", logs)
        .route("/v1/metrics", metrics_route)
        .route("/healthz", get(api::healthz))
        .route("/fleet", get(fleet::page))
        .route("/fleet/fleet.js", get(fleet::script))
        .route("/fleet/chart.js", get(fleet::chart))
        .route("/fleet/style.css", get(fleet::style))
        .route("/releases/manifest.json", get(releases::get_manifest))
        .route("/releases/{version}/{file}", get(releases::get_file))
        .merge(protected)
        .with_state(state);
    if let Some(dir) = &config.static_dir {
        router = router.fallback_service(static_files::router(dir));
    }
    let csp = HeaderValue::from_str(&headers::csp(&config.connect_src))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
    router.layer(from_fn_with_state(csp, headers::security))
}
