//! [`AppError`]: why an app call did nothing, with a stable code for the host to branch on.

use crate::engine::EngineError;
use crate::outbox::{OutboxError, StoreError};
use crate::update::UpdateError;

/// An app call that failed; nothing it would have recorded was recorded (the readings are
/// counted as not recorded under [`AppError::code`]).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request does not split into readings of the model's width (`WRONG_LENGTH`).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The request named a different number of reading ids than it has readings.
    #[error("{ids} reading ids for {readings} readings")]
    BadIds {
        /// Ids given.
        ids: usize,
        /// Readings in the request.
        readings: usize,
    },
    /// The outbox or the syncer failed.
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    /// A model package was refused (`MODEL_SIGNATURE`, …; [`UpdateError::detail_code`] says
    /// what underneath).
    #[error(transparent)]
    Update(#[from] UpdateError),
    /// The build's trusted keys do not parse.
    #[error("trusted keys: {0}")]
    Keys(#[from] edge_signing::SigningError),
    /// An install kind the host named is not one of `update`, `rollback`, `restore`.
    #[error("install kind {0:?}")]
    BadKind(String),
    /// The request was recorded together with others (group commit) and that write failed:
    /// the failure's code and message.
    #[error("{message}")]
    Grouped {
        /// The failure's code (any of the codes above).
        code: &'static str,
        /// What went wrong.
        message: String,
    },
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::Outbox(e.into())
    }
}

impl AppError {
    /// A stable code: the engine's, outbox's or update's own, `BAD_IDS`, or `BAD_KIND`.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Engine(e) => e.code(),
            AppError::BadIds { .. } => "BAD_IDS",
            AppError::Outbox(e) => e.code(),
            AppError::Update(e) => e.code(),
            AppError::Keys(e) => e.code(),
            AppError::BadKind(_) => "BAD_KIND",
            AppError::Grouped { code, .. } => code,
        }
    }
}
