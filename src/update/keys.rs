//! The public keys a build trusts to sign models.
//!
//! Pinned at build time: `build.rs` copies the PEM file named by `EDGE_TRUSTED_KEYS` (one or
//! more `PUBLIC KEY` blocks; several during a key rotation), or by default the repository's
//! development key `models/keys/dev-signing-key.pub.pem`, into the build. A deployment that
//! signs with its own key builds with `EDGE_TRUSTED_KEYS=/path/to/its.pub.pem`.

use edge_signing::{SigningError, TrustedKeys};

/// The trusted keys' PEM text, as pinned in this build.
pub const TRUSTED_KEYS_PEM: &str = include_str!(concat!(env!("OUT_DIR"), "/trusted_keys.pem"));

/// The build's pinned trusted keys.
pub fn trusted_keys() -> Result<TrustedKeys, SigningError> {
    from_pem_text(TRUSTED_KEYS_PEM)
}

/// Trusted keys from PEM text holding one or more public keys.
pub fn from_pem_text(text: &str) -> Result<TrustedKeys, SigningError> {
    const END: &str = "-----END PUBLIC KEY-----";
    let blocks: Vec<String> = text
        .split_inclusive(END)
        .filter(|b| b.contains(END))
        .map(|b| format!("{}\n", b.trim_start()))
        .collect();
    let refs: Vec<&str> = blocks.iter().map(String::as_str).collect();
    TrustedKeys::from_pems(&refs)
}
