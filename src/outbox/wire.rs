//! From a stored [`Batch`] to the bytes on the wire: URL, headers, and a body gzipped when that
//! pays; plus the size accounting the lead reports as "wire bytes per reading".
//!
//! The body is the JSON frozen in the batch, so every retry of a batch sends the same payload
//! under the same `Idempotency-Key`. Gzip output is deterministic (fixed header, no mtime), so
//! even the compressed bytes repeat.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;

use super::config::SyncConfig;
use super::store::Batch;
use super::transport::HttpRequest;

/// Size of one batch on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WireSize {
    /// Records in the batch.
    pub records: usize,
    /// Uncompressed JSON body bytes.
    pub json_bytes: usize,
    /// Body bytes actually sent (gzipped or not).
    pub wire_bytes: usize,
    /// Whether the body is gzipped.
    pub gzipped: bool,
}

impl WireSize {
    /// Body bytes sent per record (0 for an empty batch).
    pub fn bytes_per_record(&self) -> f64 {
        if self.records == 0 {
            return 0.0;
        }
        self.wire_bytes as f64 / self.records as f64
    }
}

/// Builds the OTLP/HTTP request for `batch`: `POST {endpoint}/v1/logs` with `content-type:
/// application/json`, `idempotency-key`, optional `authorization: Bearer …`, and the body
/// gzipped (`content-encoding: gzip`) when it is at least `gzip_min_bytes` and compresses smaller.
pub fn build_request(batch: &Batch, config: &SyncConfig) -> HttpRequest {
    let json = batch.body.as_bytes();
    let gzipped = if json.len() >= config.gzip_min_bytes {
        gzip(json).filter(|packed| packed.len() < json.len())
    } else {
        None
    };
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("idempotency-key".to_owned(), batch.key.clone()),
    ];
    if gzipped.is_some() {
        headers.push(("content-encoding".to_owned(), "gzip".to_owned()));
    }
    if let Some(token) = &config.bearer_token {
        headers.push(("authorization".to_owned(), format!("Bearer {token}")));
    }
    HttpRequest {
        method: "POST",
        url: config.logs_url(),
        headers,
        body: gzipped.unwrap_or_else(|| json.to_vec()),
    }
}

/// The wire size of `batch` under `config` (the request is built to measure it).
pub fn wire_size(batch: &Batch, config: &SyncConfig) -> WireSize {
    let request = build_request(batch, config);
    WireSize {
        records: batch.records.len(),
        json_bytes: batch.body.len(),
        wire_bytes: request.body.len(),
        gzipped: request.header("content-encoding").is_some(),
    }
}

/// The gzip level: on a batch of 1,000 scored records (689 kB of JSON) miniz_oxide's level 4
/// gives 24.4 kB in half the time of the default level 6 (23.6 kB); level 3 gives 25.8 kB and
/// level 1 39 kB. Compressing is a large part of preparing a batch on the device.
const GZIP_LEVEL: u32 = 4;

/// Gzips `data`; `None` if the encoder fails (it writes to memory, so it does not in practice,
/// and the body is then sent uncompressed).
pub fn gzip(data: &[u8]) -> Option<Vec<u8>> {
    let mut encoder =
        GzEncoder::new(Vec::with_capacity(data.len() / 8), Compression::new(GZIP_LEVEL));
    encoder.write_all(data).ok()?;
    encoder.finish().ok()
}
