//! Why a model package was refused or a live model rolled back.

use thiserror::Error;

use crate::engine::EngineError;

/// A refused model package (or update step). Each variant has a stable [`UpdateError::code`],
/// shown on the dashboard and sent as telemetry.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum UpdateError {
    /// The signature bundle does not verify: tampered, truncated, for other files, or signed by
    /// a key that is not trusted (the inner code says which).
    #[error("signature refused: {0}")]
    Signature(#[from] edge_signing::SigningError),
    /// A file the app needs is not in the package.
    #[error("file {0} is missing from the package")]
    MissingFile(String),
    /// A file the app uses is not covered by the signature.
    #[error("file {0} is not covered by the signature")]
    UnsignedFile(String),
    /// A file's bytes are not the signed ones.
    #[error("file {0} does not match its signed digest")]
    FileDigest(String),
    /// `metadata.json` or `golden.json` is not what the pipeline writes.
    #[error("{file} is malformed: {reason}")]
    Malformed {
        /// The file.
        file: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The model does not load (contract, caps, parse): the engine's error.
    #[error("model refused: {0}")]
    Model(#[from] EngineError),
    /// The model loads but does not reproduce its signed golden scores.
    #[error("smoke test failed: golden row {row} scored {got}, expected {expected}")]
    SmokeTest {
        /// Index of the first golden row off tolerance.
        row: usize,
        /// What the engine scored.
        got: f32,
        /// The signed reference score.
        expected: f32,
    },
    /// The release is not newer than the active model and no rollback was asked for.
    #[error("version {offered} is not newer than the active {active}")]
    NotNewer {
        /// The release's version.
        offered: String,
        /// The active model's version.
        active: String,
    },
    /// A version string that does not parse as `MAJOR.MINOR.PATCH[+build]`.
    #[error("version {0:?} is not MAJOR.MINOR.PATCH")]
    BadVersion(String),
}

impl UpdateError {
    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            UpdateError::Signature(_) => "MODEL_SIGNATURE",
            UpdateError::MissingFile(_) => "MODEL_FILE_MISSING",
            UpdateError::UnsignedFile(_) => "MODEL_FILE_UNSIGNED",
            UpdateError::FileDigest(_) => "MODEL_FILE_DIGEST",
            UpdateError::Malformed { .. } => "MODEL_METADATA",
            UpdateError::Model(_) => "MODEL_REFUSED",
            UpdateError::SmokeTest { .. } => "MODEL_SMOKE_TEST",
            UpdateError::NotNewer { .. } => "MODEL_NOT_NEWER",
            UpdateError::BadVersion(_) => "MODEL_VERSION",
        }
    }

    /// The most specific code: the signing error's own for a refused signature.
    pub fn detail_code(&self) -> &'static str {
        match self {
            UpdateError::Signature(e) => e.code(),
            UpdateError::Model(e) => e.code(),
            other => other.code(),
        }
    }
}
