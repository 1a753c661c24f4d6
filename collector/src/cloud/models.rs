//! The models cloud scoring can use: every published release (see [`crate::releases`]), verified
//! with the same signed-update policy a device applies (signature, digests, contract, golden
//! rows) and loaded once.
//!
//! A release that fails verification is logged once and never used. Which release scores a
//! record: the version the record names (the model whose engine failed on the device), else the
//! version active on the device when it sent the batch, else the newest release held, so a
//! device that never had a model is scored by the current one.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use edge_anomaly::update::{verify_package, ModelFiles, TrustedKeys, SIGNATURE_FILE};
use edge_anomaly::{Engine, EngineConfig};

use crate::log;
use crate::releases;

/// One loaded release.
pub struct CloudModel {
    /// The release version.
    pub version: String,
    /// Its engine.
    pub engine: Engine,
    /// Its decision threshold.
    pub threshold: f32,
}

/// The releases held, by version, newest last in `order`.
pub struct CloudModels {
    dir: PathBuf,
    keys: TrustedKeys,
    loaded: BTreeMap<String, CloudModel>,
    /// Versions in manifest order (oldest first) that loaded.
    order: Vec<String>,
    refused: BTreeSet<String>,
}

impl CloudModels {
    /// Models from the releases in `dir`, trusting `keys`; nothing is loaded until
    /// [`CloudModels::refresh`].
    pub fn new(dir: PathBuf, keys: TrustedKeys) -> Self {
        CloudModels {
            dir,
            keys,
            loaded: BTreeMap::new(),
            order: Vec::new(),
            refused: BTreeSet::new(),
        }
    }

    /// Loads the releases published since the last call.
    pub fn refresh(&mut self) {
        for release in releases::manifest(&self.dir).releases {
            let version = release.version;
            if self.loaded.contains_key(&version) || self.refused.contains(&version) {
                continue;
            }
            match load(&self.dir.join(&version), &self.keys) {
                Ok((engine, threshold)) => {
                    log::info(format_args!("cloud scoring: loaded release {version}"));
                    self.order.push(version.clone());
                    self.loaded.insert(version.clone(), CloudModel { version, engine, threshold });
                }
                Err(reason) => {
                    log::warn(format_args!("cloud scoring: release {version} refused: {reason}"));
                    self.refused.insert(version);
                }
            }
        }
    }

    /// The release to score a record with: the first of `wanted` held, else the newest.
    pub fn pick(&self, wanted: &[Option<&str>]) -> Option<&CloudModel> {
        wanted
            .iter()
            .flatten()
            .find_map(|v| self.loaded.get(*v))
            .or_else(|| self.order.last().and_then(|v| self.loaded.get(v)))
    }

    /// Whether any release is held.
    pub fn is_empty(&self) -> bool {
        self.loaded.is_empty()
    }
}

/// Reads and verifies one release directory; the engine and its threshold, or why not.
fn load(dir: &Path, keys: &TrustedKeys) -> Result<(Engine, f32), String> {
    let mut files = ModelFiles::new();
    let mut bundle = None;
    let entries = fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| e.to_string())?.path();
        if !path.is_file() {
            continue;
        }
        let bytes = fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        if name == SIGNATURE_FILE {
            bundle = Some(bytes);
        } else {
            files.insert(name, bytes);
        }
    }
    let bundle = bundle.ok_or_else(|| format!("no {SIGNATURE_FILE}"))?;
    let model = verify_package(&bundle, &files, keys, EngineConfig::default())
        .map_err(|e| e.to_string())?;
    Ok((model.engine, model.metadata.threshold))
}
