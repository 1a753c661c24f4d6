//! The stored form of the outbox's values: JSON text, with floats in the wire's encoding.
//!
//! A store that keeps values as text (IndexedDB here) encodes and decodes through these two
//! functions, so every record round-trips exactly: finite `f32`s come back bit for bit (`-0.0`
//! and subnormals included), infinities stay infinite and a NaN stays a NaN (its payload bits
//! may change). Values written before the wire encoding existed, where serde_json had put
//! `null` for a non-finite float, decode with NaN in its place instead of failing.

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::StoreError;

/// `value` as stored text.
pub fn encode<T: Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(format!("encode: {e}")))
}

/// A value back from its stored text.
pub fn decode<T: DeserializeOwned>(text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("decode: {e}")))
}
