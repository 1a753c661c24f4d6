//! Reading a signed model package from a directory: every regular file in it, by name, and its
//! OpenSSF model-signing bundle (`model.sig`). What the files must be is checked by the core's
//! signed-update policy ([`edge_anomaly::update::verify_package`]), not here.

use std::path::{Path, PathBuf};

use edge_anomaly::update::{ModelFiles, SIGNATURE_FILE};

/// Largest package file read (the engine refuses larger models anyway).
const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// A package directory that cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// A file or the directory cannot be read.
    #[error("{path}: {source}")]
    Io {
        /// What.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No `model.sig` beside the files: an unsigned package is never loaded.
    #[error("{0}: no {SIGNATURE_FILE}: the package is not signed")]
    Unsigned(PathBuf),
    /// A file over the size cap.
    #[error("{path}: {bytes} bytes is over the {MAX_FILE_BYTES}-byte cap")]
    TooLarge {
        /// What.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
}

/// The package's files (signature excluded) and the signature bundle.
pub fn read(dir: &Path) -> Result<(ModelFiles, Vec<u8>), PackageError> {
    fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PackageError + '_ {
        move |source| PackageError::Io { path: path.to_owned(), source }
    }
    let mut files = ModelFiles::new();
    let mut bundle = None;
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        let meta = entry.metadata().map_err(io(&path))?;
        if !meta.is_file() {
            continue;
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(PackageError::TooLarge { path, bytes: meta.len() });
        }
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name == SIGNATURE_FILE {
            bundle = Some(bytes);
        } else {
            files.insert(name, bytes);
        }
    }
    let bundle = bundle.ok_or_else(|| PackageError::Unsigned(dir.to_owned()))?;
    Ok((files, bundle))
}
