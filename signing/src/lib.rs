//! Verifies a model directory signed in the OpenSSF Model Signing format, as written by
//! `model_signing sign key` (PyPI `model-signing` 1.1.1), before the device trusts its files.
//!
//! # The format
//!
//! The signature file (`model.sig`) is a Sigstore bundle, JSON:
//!
//! ```text
//! { "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
//!   "verificationMaterial": { "publicKey": { "hint": "<hex sha256 of the signer's public key PEM>" },
//!                             "tlogEntries": [] },
//!   "dsseEnvelope": { "payload": "<base64 statement>",
//!                     "payloadType": "application/vnd.in-toto+json",
//!                     "signatures": [ { "sig": "<base64 DER ECDSA>", "keyid": "" } ] } }
//! ```
//!
//! The signature is ECDSA P-256 with SHA-256 over DSSE's pre-authentication encoding of the
//! decoded payload ([`dsse::pae`]). The hint is the SHA-256 of the public key re-encoded as a
//! SubjectPublicKeyInfo PEM with LF line endings (the tool re-serializes the key; it does not
//! hash the file the user gave it). The payload is an in-toto Statement v1:
//!
//! ```text
//! { "_type": "https://in-toto.io/Statement/v1",
//!   "subject": [ { "name": "<dir name>", "digest": { "sha256": "<hex>" } } ],
//!   "predicateType": "https://model_signing/signature/v1.0",
//!   "predicate": {
//!     "serialization": { "method": "files", "hash_type": "sha256", "allow_symlinks": false,
//!                        "ignore_paths": ["model.sig", ".git", ".gitattributes", ".github", ".gitignore"] },
//!     "resources": [ { "name": "a/b.onnx", "algorithm": "sha256", "digest": "<hex>" }, … ] } }
//! ```
//!
//! Each resource digest is the SHA-256 of one file, named by its `/`-separated path relative to
//! the directory. The subject digest is the SHA-256 of the resources' raw 32-byte digests
//! concatenated in the order listed (the tool lists them sorted by path). A directory matches
//! when every resource is present with its digest and every other file is under an ignored path.
//! `ignore_paths` lists the signature file only when it was written inside the directory; the
//! CLI's default `--signature model.sig` is relative to the working directory, not the model.
//!
//! # Use
//!
//! [`TrustedKeys::from_pems`] holds the keys the device trusts (more than one during a key
//! rotation); [`verify_directory`] checks a bundle against files held in memory, so the browser
//! can pass what it downloaded; `verify_dir` (native only) reads a directory. Every rejection is
//! a [`SigningError`] with a stable [`SigningError::code`].
//!
//! The crate needs no platform services and no randomness, so it builds for wasm32 as is.

pub mod bundle;
pub mod dsse;
mod error;
#[cfg(not(target_arch = "wasm32"))]
mod fs;
mod hex;
pub mod keys;
pub mod statement;
mod verify;

#[cfg(test)]
mod test_support;

pub use error::SigningError;
#[cfg(not(target_arch = "wasm32"))]
pub use fs::verify_dir;
pub use keys::TrustedKeys;
pub use statement::{Resource, Statement};
pub use verify::{verify_bundle, verify_directory, VerifiedManifest};
