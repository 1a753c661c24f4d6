//! The optional bearer-token check (`--token`).
//!
//! When a token is configured, `/v1/logs` and `/admin/*` require `Authorization: Bearer <token>`
//! (scheme case-insensitive) and answer 401 otherwise. The comparison takes the same time
//! wherever the first differing byte is, so the token cannot be guessed byte by byte.

use axum::http::{header, HeaderMap};

use crate::error::ApiError;

/// Checks `headers` against `token`; no token configured means everything passes.
pub fn check(token: Option<&str>, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(expected) = token else {
        return Ok(());
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, credentials)| credentials.trim());
    match presented {
        Some(given) if constant_time_eq(given.as_bytes(), expected.as_bytes()) => Ok(()),
        _ => Err(ApiError::Unauthorized),
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn table() {
        for (token, header_value, ok) in [
            (None, None, true),
            (None, Some("Bearer whatever"), true),
            (Some("s3cret"), Some("Bearer s3cret"), true),
            (Some("s3cret"), Some("bearer  s3cret "), true),
            (Some("s3cret"), Some("Bearer s3cre"), false),
            (Some("s3cret"), Some("Basic s3cret"), false),
            (Some("s3cret"), Some("s3cret"), false),
            (Some("s3cret"), None, false),
        ] {
            let mut headers = HeaderMap::new();
            if let Some(v) = header_value {
                headers.insert(header::AUTHORIZATION, HeaderValue::from_static(v));
            }
            assert_eq!(check(token, &headers).is_ok(), ok, "{token:?} {header_value:?}");
        }
    }
}
