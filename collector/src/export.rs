//! `GET /api/export.csv`: stored readings as the model pipeline's CSV, for retraining on what
//! devices actually sent (`python -m edge_pipeline --csv export.csv --label anomaly`).
//!
//! Query: `device`, `from_ms`, `to_ms` (reading time, ms since the epoch, `to_ms` exclusive),
//! `model_version`, `normal_only=true`. The header names the features as the newest published
//! release does when its width matches (else `f1..fN`), then `anomaly` (1 or 0: the device's
//! verdict, else the collector's). Rows of another width than the first, and readings holding a
//! non-finite value, are left out: the pipeline cannot train on them. The body streams a page
//! at a time (see [`crate::store::export`]), so a large export holds little memory and the
//! reader connection only between pages.

use axum::body::{Body, Bytes};
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde::Deserialize;
use serde_json::Value as Json;

use crate::error::ApiError;
use crate::releases;
use crate::state::AppState;
use crate::store::{ExportFilter, ExportRow, StoreError};

/// Rows read per page.
const PAGE: u32 = 2000;

/// Query of `GET /api/export.csv`.
#[derive(Debug, Deserialize)]
pub struct ExportQuery {
    /// Only this device's readings.
    pub device: Option<String>,
    /// Only readings taken at or after this time (ms since the epoch).
    pub from_ms: Option<i64>,
    /// Only readings taken before this time (ms since the epoch).
    pub to_ms: Option<i64>,
    /// Only readings judged by this model version.
    pub model_version: Option<String>,
    /// Only readings judged normal.
    #[serde(default)]
    pub normal_only: bool,
}

struct Cursor {
    state: AppState,
    filter: ExportFilter,
    after: i64,
    /// Column names, once the first row fixed the width.
    width: Option<usize>,
    names: Vec<String>,
    done: bool,
}

/// `GET /api/export.csv`.
pub async fn export_csv(
    State(state): State<AppState>,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = query.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    // Compared with times in ns: a bound whose ns do not fit an i64 matches nothing sensible.
    for bound in [q.from_ms, q.to_ms].into_iter().flatten() {
        if bound.checked_mul(1_000_000).is_none() {
            return Err(ApiError::BadRequest(format!("{bound} ms is out of range")));
        }
    }
    if let (Some(from), Some(to)) = (q.from_ms, q.to_ms) {
        if from >= to {
            return Err(ApiError::BadRequest("from_ms must be before to_ms".into()));
        }
    }
    let filter = ExportFilter {
        device: q.device,
        from_ms: q.from_ms,
        to_ms: q.to_ms,
        model_version: q.model_version,
        normal_only: q.normal_only,
    };
    let names = state.config().releases_dir.as_deref().map(newest_features).unwrap_or_default();
    let cursor = Cursor { state, filter, after: 0, width: None, names, done: false };
    let body = Body::from_stream(stream::unfold(cursor, next_chunk));
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"export.csv\""),
    );
    Ok(response)
}

async fn next_chunk(mut c: Cursor) -> Option<(Result<Bytes, StoreError>, Cursor)> {
    if c.done {
        return None;
    }
    let (filter, after) = (c.filter.clone(), c.after);
    let rows = match c.state.store(move |s| s.export_page(&filter, after, PAGE)).await {
        Ok(rows) => rows,
        Err(e) => {
            c.done = true;
            return Some((Err(e), c));
        }
    };
    c.done = rows.len() < PAGE as usize;
    if let Some(last) = rows.last() {
        c.after = last.cursor;
    }
    let mut out = String::new();
    for row in &rows {
        write_row(&mut c, row, &mut out);
    }
    if c.done && c.width.is_none() {
        out.push_str("anomaly\n");
    }
    Some((Ok(Bytes::from(out)), c))
}

fn write_row(c: &mut Cursor, row: &ExportRow, out: &mut String) {
    let Some(values) = finite_reading(&row.reading_json) else { return };
    let width = *c.width.get_or_insert_with(|| {
        let names: Vec<String> = if c.names.len() == values.len() {
            c.names.clone()
        } else {
            (1..=values.len()).map(|i| format!("f{i}")).collect()
        };
        out.push_str(&names.join(","));
        out.push_str(",anomaly\n");
        values.len()
    });
    if values.len() != width {
        return;
    }
    for v in &values {
        out.push_str(&v.to_string());
        out.push(',');
    }
    out.push_str(if row.anomaly { "1\n" } else { "0\n" });
}

/// The reading's values, or `None` if it is not an array of finite numbers.
fn finite_reading(json: &str) -> Option<Vec<f64>> {
    let Ok(Json::Array(values)) = serde_json::from_str::<Json>(json) else { return None };
    values.iter().map(|v| v.as_f64().filter(|x| x.is_finite())).collect()
}

/// The feature names of the newest published release, if it can be read.
fn newest_features(dir: &std::path::Path) -> Vec<String> {
    let Some(newest) = releases::manifest(dir).releases.pop() else { return Vec::new() };
    let path = dir.join(&newest.version).join("metadata.json");
    let Ok(bytes) = std::fs::read(path) else { return Vec::new() };
    let Ok(meta) = serde_json::from_slice::<Json>(&bytes) else { return Vec::new() };
    meta["features"]
        .as_array()
        .map(|f| f.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}
