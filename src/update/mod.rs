//! Model updates: a signed model package is verified, checked and smoke-tested before anything
//! scores with it, and a model that misbehaves once live is rolled back.
//!
//! Platform-free, like the engine and the outbox: the browser (or the gateway) downloads the
//! files and hands them here as bytes.
//!
//! - [`verify_package`] takes the package's files and its OpenSSF model-signing bundle
//!   (`model.sig`, verified by `edge-signing` against [`TrustedKeys`]) and returns a
//!   [`VerifiedModel`] only when every file the app uses is the signed one, `metadata.json`
//!   names a model and a threshold, the model loads under the engine's contract and resource
//!   caps, and it scores the signed `golden.json` rows within the signed tolerance. A half-loaded
//!   or unverified model never reaches the caller.
//! - [`Version`] orders releases, so an older release is refused unless a rollback is asked for
//!   ([`check_upgrade`]).
//! - [`Watch`] follows a new model's first readings and says when to roll back: errors,
//!   non-finite scores, or an anomaly rate far above what its metadata predicts.
//! - [`Models`] is a host's model state: the active model, the previous one for rollback, the
//!   watch, and the log of refusals and rollbacks.
//! - [`trusted_keys`] is the build's pinned key set (see `build.rs`).

mod error;
mod keys;
mod metadata;
mod models;
mod package;
mod version;
mod watch;

pub use edge_signing::TrustedKeys;
pub use error::UpdateError;
pub use keys::{trusted_keys, TRUSTED_KEYS_PEM};
pub use metadata::ModelMetadata;
pub use models::{InstallKind, ModelEvent, ModelInfo, Models, Outcome};
pub use package::{verify_package, ModelFiles, VerifiedModel, SIGNATURE_FILE};
pub use version::{check_upgrade, Version};
pub use watch::{Verdict, Watch, WatchConfig};
