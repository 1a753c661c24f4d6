//! Turning an HTTP request body into the bytes of an OTLP JSON document, safely.
//!
//! Checks `Content-Type` (only `application/json`: this collector does not speak OTLP protobuf),
//! `Content-Encoding` (`gzip`/`x-gzip` or `identity`), and enforces `--max-body-bytes` twice:
//! on the bytes read from the wire and on the bytes gzip inflates to, so a small gzip bomb
//! cannot make us allocate more than the limit.

use std::io::Read;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderMap};
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::error::ApiError;

/// The body encodings we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// No `Content-Encoding`, or `identity`.
    Identity,
    /// `gzip` or `x-gzip`.
    Gzip,
}

/// Requires `Content-Type: application/json` on a JSON API request other than `/v1/logs`.
pub fn check_json_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("<non-ASCII>"));
    match value.and_then(|v| v.split(';').next()).map(str::trim) {
        Some(m) if m.eq_ignore_ascii_case("application/json") => Ok(()),
        other => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type must be application/json, got {}",
            other.map_or_else(|| "none".to_owned(), |m| format!("{m:?}"))
        ))),
    }
}

/// Requires `Content-Type: application/json` (parameters such as `charset` are allowed).
pub fn check_content_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers.get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap_or("<non-ASCII>"));
    let media_type = value.and_then(|v| v.split(';').next()).map(str::trim);
    match media_type {
        Some(m) if m.eq_ignore_ascii_case("application/json") => Ok(()),
        Some(other) => Err(ApiError::UnsupportedMediaType(format!(
            "unsupported Content-Type {other:?}: this collector only supports OTLP/HTTP JSON (application/json)"
        ))),
        None => Err(ApiError::UnsupportedMediaType(
            "missing Content-Type: this collector only supports OTLP/HTTP JSON (application/json)".to_owned(),
        )),
    }
}

/// Reads `Content-Encoding`.
pub fn encoding(headers: &HeaderMap) -> Result<Encoding, ApiError> {
    let Some(value) = headers.get(header::CONTENT_ENCODING) else {
        return Ok(Encoding::Identity);
    };
    let text = value.to_str().unwrap_or("<non-ASCII>").trim();
    if text.is_empty() || text.eq_ignore_ascii_case("identity") {
        Ok(Encoding::Identity)
    } else if text.eq_ignore_ascii_case("gzip") || text.eq_ignore_ascii_case("x-gzip") {
        Ok(Encoding::Gzip)
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "unsupported Content-Encoding {text:?}: only gzip and identity are supported"
        )))
    }
}

/// Reads at most `limit` bytes of body; more is 413 (checked early from `Content-Length` too).
pub async fn read_limited(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let too_large = ApiError::PayloadTooLarge { limit, decompressed: false };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(too_large);
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => Err(too_large),
        Err(e) => Err(ApiError::BadRequest(format!("could not read the request body: {e}"))),
    }
}

/// Decodes the body; the decoded size is limited to `limit` bytes as well.
pub fn decode(encoding: Encoding, raw: Bytes, limit: usize) -> Result<Bytes, ApiError> {
    match encoding {
        Encoding::Identity => Ok(raw),
        Encoding::Gzip => {
            let mut out = Vec::with_capacity(inflated_size_hint(&raw).min(limit + 1));
            flate2::read::MultiGzDecoder::new(raw.as_ref())
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| ApiError::BadRequest(format!("invalid gzip body: {e}")))?;
            if out.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit, decompressed: true });
            }
            Ok(Bytes::from(out))
        }
    }
}

/// The size a gzip body says it inflates to: the last four bytes of a gzip stream (`ISIZE`) are
/// its last member's uncompressed length modulo 2^32 (little-endian). Only a capacity hint, so
/// the inflated body is not copied as it grows (the caller caps it at the body limit, which
/// inflating may reach anyway); a lying or multi-member body just reallocates.
fn inflated_size_hint(gzip: &[u8]) -> usize {
    gzip.last_chunk::<4>().map_or(0, |isize| u32::from_le_bytes(*isize) as usize)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    #[test]
    fn content_types() {
        for (value, ok) in [
            (Some("application/json"), true),
            (Some("Application/JSON; charset=utf-8"), true),
            (Some("application/x-protobuf"), false),
            (Some("text/plain"), false),
            (None, false),
        ] {
            let mut headers = HeaderMap::new();
            if let Some(v) = value {
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(v));
            }
            assert_eq!(check_content_type(&headers).is_ok(), ok, "{value:?}");
        }
    }

    #[test]
    fn encodings() {
        for (value, expected) in [
            (None, Some(Encoding::Identity)),
            (Some("identity"), Some(Encoding::Identity)),
            (Some("gzip"), Some(Encoding::Gzip)),
            (Some("X-GZIP"), Some(Encoding::Gzip)),
            (Some("br"), None),
        ] {
            let mut headers = HeaderMap::new();
            if let Some(v) = value {
                headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static(v));
            }
            assert_eq!(encoding(&headers).ok(), expected, "{value:?}");
        }
    }

    #[test]
    fn size_hint_is_the_gzip_trailer() {
        assert_eq!(inflated_size_hint(&gzip(&[b'x'; 1234])), 1234);
        assert_eq!(inflated_size_hint(b"xy"), 0);
    }

    #[test]
    fn gzip_limits() {
        let data = vec![b'x'; 1000];
        assert_eq!(decode(Encoding::Gzip, gzip(&data).into(), 1000).unwrap().len(), 1000);
        assert!(matches!(
            decode(Encoding::Gzip, gzip(&data).into(), 999),
            Err(ApiError::PayloadTooLarge { decompressed: true, .. })
        ));
        assert!(matches!(
            decode(Encoding::Gzip, Bytes::from_static(b"not gzip"), 1000),
            Err(ApiError::BadRequest(_))
        ));
    }
}
