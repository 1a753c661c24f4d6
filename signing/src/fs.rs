//! Native convenience: verify a model directory on disk, as `model_signing verify key` does.
//!
//! The signature is checked before the directory is read, so the statement's ignore paths are
//! never walked (a `.git` directory is not hashed) and an untrusted bundle costs no I/O.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::verify::verify_bundle;
use crate::{SigningError, Statement, TrustedKeys, VerifiedManifest};

/// Symlinked directories could loop; a model is never this deep.
const MAX_DEPTH: usize = 64;

/// Verifies the directory `dir` against the bundle at `bundle_path`. The bundle file is skipped
/// when it lies inside `dir`, whether or not the statement lists it as ignored.
pub fn verify_dir(
    dir: &Path,
    bundle_path: &Path,
    keys: &TrustedKeys,
) -> Result<VerifiedManifest, SigningError> {
    let bundle = fs::read(bundle_path).map_err(|e| io_error(bundle_path, &e))?;
    let (statement, key_index) = verify_bundle(&bundle, keys)?;
    let walk = Walk { statement: &statement, skip: bundle_name_inside(dir, bundle_path) };
    let mut digests = BTreeMap::new();
    walk.dir(dir, "", 0, &mut digests)?;
    statement.check_digests(&digests)?;
    Ok(VerifiedManifest::new(statement, key_index))
}

struct Walk<'a> {
    statement: &'a Statement,
    /// The bundle's own name relative to the directory, if it lies inside it.
    skip: Option<String>,
}

impl Walk<'_> {
    fn dir(
        &self,
        path: &Path,
        prefix: &str,
        depth: usize,
        out: &mut BTreeMap<String, [u8; 32]>,
    ) -> Result<(), SigningError> {
        if depth > MAX_DEPTH {
            return Err(SigningError::Io {
                path: path.display().to_string(),
                reason: "too deep".into(),
            });
        }
        let entries = fs::read_dir(path).map_err(|e| io_error(path, &e))?;
        for entry in entries {
            let entry = entry.map_err(|e| io_error(path, &e))?;
            let entry_path = entry.path();
            let Some(file_name) = entry.file_name().to_str().map(String::from) else {
                let reason = "the name is not UTF-8".into();
                return Err(SigningError::Io { path: entry_path.display().to_string(), reason });
            };
            let name = if prefix.is_empty() { file_name } else { format!("{prefix}/{file_name}") };
            if self.statement.is_ignored(&name) || self.skip.as_deref() == Some(name.as_str()) {
                continue;
            }
            let link = fs::symlink_metadata(&entry_path).map_err(|e| io_error(&entry_path, &e))?;
            if link.file_type().is_symlink() && !self.statement.allow_symlinks {
                return Err(SigningError::SymlinkNotAllowed { name });
            }
            let meta = fs::metadata(&entry_path).map_err(|e| io_error(&entry_path, &e))?;
            if meta.is_dir() {
                self.dir(&entry_path, &name, depth + 1, out)?;
            } else if meta.is_file() {
                let bytes = fs::read(&entry_path).map_err(|e| io_error(&entry_path, &e))?;
                out.insert(name, Sha256::digest(&bytes).into());
            } else {
                let reason = "neither a file nor a directory".into();
                return Err(SigningError::Io { path: entry_path.display().to_string(), reason });
            }
        }
        Ok(())
    }
}

/// The bundle's path relative to `dir`, `/`-separated, if it lies inside it.
fn bundle_name_inside(dir: &Path, bundle_path: &Path) -> Option<String> {
    let dir = fs::canonicalize(dir).ok()?;
    let bundle = fs::canonicalize(bundle_path).ok()?;
    let relative = bundle.strip_prefix(&dir).ok()?;
    let parts: Option<Vec<&str>> = relative.iter().map(|p| p.to_str()).collect();
    Some(parts?.join("/"))
}

fn io_error(path: &Path, e: &std::io::Error) -> SigningError {
    SigningError::Io { path: path.display().to_string(), reason: e.to_string() }
}
