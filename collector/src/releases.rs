//! Model releases: `collector publish-model DIR` and the update channel devices poll.
//!
//! Publishing verifies the directory's OpenSSF model-signing bundle (`model.sig`) against the
//! trusted keys (the collector's build pins the repository's development key; `--trust` names
//! others), reads the release version from the signed `metadata.json`, and copies the signed
//! files into `RELEASES/<version>/` through a temporary directory renamed into place, so a
//! release is either whole or absent. A version already published with other content is
//! refused; the same content again is a no-op.
//!
//! Served (read-only, no token: a model is public like the app itself; the signature is what
//! devices trust, not the channel):
//! - `GET /releases/manifest.json`: every release, newest last, with each file's size and
//!   signed SHA-256, the signature's subject digest, the base URL of its files and the minimum
//!   app version (`min_app_version` in `metadata.json`, else `0.0.0`);
//! - `GET /releases/{version}/{file}`: one file of a release.

use std::cmp::Ordering;
use std::fs;
use std::path::{Path, PathBuf};

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use edge_signing::{verify_dir, SigningError, TrustedKeys};
use serde::{Deserialize, Serialize};

use crate::state::AppState;

/// The signature bundle's name inside a model directory.
pub const SIGNATURE_FILE: &str = "model.sig";
/// Each release's manifest entry, written at publish time.
const RELEASE_FILE: &str = "release.json";
/// The development key the collector trusts when given no `--trust` (see models/keys/).
pub const DEV_KEY_PEM: &str = include_str!("../../models/keys/dev-signing-key.pub.pem");

/// One file of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReleaseFile {
    /// Its name inside the release.
    pub name: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// Its SHA-256 (hex), as signed.
    pub sha256: String,
}

/// One release in the manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// Release version from the signed metadata.
    pub version: String,
    /// Where its files are: `/releases/{version}/`.
    pub base: String,
    /// The signature bundle's file name.
    pub signature: String,
    /// The signature's subject digest (hex): names exactly this set of files.
    pub subject_sha256: String,
    /// Oldest app version that can run it.
    pub min_app_version: String,
    /// Its files (the signature included), with sizes and signed digests.
    pub files: Vec<ReleaseFile>,
}

/// `GET /releases/manifest.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Every release, oldest first.
    pub releases: Vec<Release>,
}

/// Why publishing failed.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The signature does not verify (the signing error says how).
    #[error("signature refused ({code}): {0}", code = .0.code())]
    Signature(#[from] SigningError),
    /// `metadata.json` has no usable version.
    #[error("metadata.json: {0}")]
    Metadata(String),
    /// That version is already published with other files.
    #[error("version {0} is already published with other content")]
    Conflict(String),
    /// Reading or writing files failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PublishError + '_ {
    move |source| PublishError::Io { path: path.to_owned(), source }
}

/// Trusted keys from PEM files, or the development key when none is given.
pub fn trusted_keys(pem_files: &[PathBuf]) -> anyhow::Result<TrustedKeys> {
    let pems: Vec<String> = if pem_files.is_empty() {
        vec![DEV_KEY_PEM.to_owned()]
    } else {
        pem_files
            .iter()
            .map(|p| fs::read_to_string(p).map_err(|e| anyhow::anyhow!("{}: {e}", p.display())))
            .collect::<anyhow::Result<_>>()?
    };
    let refs: Vec<&str> = pems.iter().map(String::as_str).collect();
    Ok(TrustedKeys::from_pems(&refs)?)
}

/// Verifies `dir` and publishes it under `releases`. Returns the release.
pub fn publish(dir: &Path, releases: &Path, keys: &TrustedKeys) -> Result<Release, PublishError> {
    let bundle = dir.join(SIGNATURE_FILE);
    let verified = verify_dir(dir, &bundle, keys)?;
    let metadata_path = dir.join("metadata.json");
    let metadata: serde_json::Value =
        serde_json::from_slice(&fs::read(&metadata_path).map_err(io(&metadata_path))?)
            .map_err(|e| PublishError::Metadata(e.to_string()))?;
    let version = metadata["version"]
        .as_str()
        .filter(|v| valid_version(v))
        .ok_or_else(|| PublishError::Metadata("no MAJOR.MINOR.PATCH[+build] version".into()))?
        .to_owned();
    let mut files: Vec<ReleaseFile> = verified
        .resources
        .iter()
        .map(|r| {
            let path = dir.join(&r.name);
            let bytes = fs::metadata(&path).map_err(io(&path))?.len();
            Ok(ReleaseFile { name: r.name.clone(), bytes, sha256: hex(&r.sha256) })
        })
        .collect::<Result<_, PublishError>>()?;
    let signature = fs::read(&bundle).map_err(io(&bundle))?;
    files.push(ReleaseFile {
        name: SIGNATURE_FILE.into(),
        bytes: signature.len() as u64,
        sha256: hex(&sha256(&signature)),
    });
    let release = Release {
        base: format!("/releases/{version}/"),
        signature: SIGNATURE_FILE.into(),
        subject_sha256: hex(&verified.subject_sha256),
        min_app_version: metadata["min_app_version"].as_str().unwrap_or("0.0.0").to_owned(),
        files,
        version: version.clone(),
    };
    let target = releases.join(&version);
    if target.exists() {
        return match read_release(&target) {
            Some(existing) if existing.subject_sha256 == release.subject_sha256 => Ok(existing),
            _ => Err(PublishError::Conflict(version)),
        };
    }
    fs::create_dir_all(releases).map_err(io(releases))?;
    let staging = releases.join(format!(".staging-{version}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&staging);
    fs::create_dir_all(&staging).map_err(io(&staging))?;
    for file in &release.files {
        let (from, to) = (dir.join(&file.name), staging.join(&file.name));
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(io(parent))?;
        }
        fs::copy(&from, &to).map_err(io(&from))?;
    }
    let entry =
        serde_json::to_vec_pretty(&release).map_err(|e| PublishError::Metadata(e.to_string()))?;
    let release_path = staging.join(RELEASE_FILE);
    fs::write(&release_path, entry).map_err(io(&release_path))?;
    fs::rename(&staging, &target).map_err(io(&target))?;
    Ok(release)
}

/// Every published release under `releases`, oldest first.
pub fn manifest(releases: &Path) -> Manifest {
    let mut list: Vec<Release> = fs::read_dir(releases)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| read_release(&e.path()))
        .collect();
    list.sort_by(|a, b| compare_versions(&a.version, &b.version));
    Manifest { releases: list }
}

fn read_release(dir: &Path) -> Option<Release> {
    serde_json::from_slice(&fs::read(dir.join(RELEASE_FILE)).ok()?).ok()
}

/// `GET /releases/manifest.json`.
pub async fn get_manifest(State(state): State<AppState>) -> Response {
    match state.config().releases_dir.clone() {
        Some(dir) => {
            let manifest = tokio::task::spawn_blocking(move || manifest(&dir)).await;
            let mut response = Json(manifest.unwrap_or_default()).into_response();
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-cache"));
            response
        }
        None => Json(Manifest::default()).into_response(),
    }
}

/// `GET /releases/{version}/{file}`.
pub async fn get_file(
    State(state): State<AppState>,
    UrlPath((version, file)): UrlPath<(String, String)>,
) -> Response {
    let Some(dir) = state.config().releases_dir.clone() else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if !valid_version(&version) || !valid_name(&file) || file == RELEASE_FILE {
        return StatusCode::NOT_FOUND.into_response();
    }
    let path = dir.join(&version).join(&file);
    match tokio::fs::read(&path).await {
        Ok(bytes) => {
            let media = if file.ends_with(".json") || file.ends_with(".sig") {
                "application/json"
            } else {
                "application/octet-stream"
            };
            ([(header::CONTENT_TYPE, media)], bytes).into_response()
        }
        Err(_) => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `MAJOR.MINOR.PATCH` with an optional `+build` of letters, digits, `.` and `-`.
fn valid_version(v: &str) -> bool {
    let (core, build) = v.split_once('+').unwrap_or((v, "x"));
    let parts: Vec<&str> = core.split('.').collect();
    parts.len() == 3
        && parts.iter().all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && !build.is_empty()
        && build.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// A plain file name: no separators, no leading dot.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn compare_versions(a: &str, b: &str) -> Ordering {
    let key = |v: &str| -> Vec<u64> {
        v.split('+').next().unwrap_or("").split('.').map(|p| p.parse().unwrap_or(0)).collect()
    };
    key(a).cmp(&key(b)).then_with(|| a.cmp(b))
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
