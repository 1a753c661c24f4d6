//! [`verify_package`]: from downloaded bytes to a model the app may score with.
//!
//! The checks run in order of cost, and nothing is kept unless all pass: the signature over the
//! statement (trusted key, intact bundle), each used file's digest against the statement, the
//! metadata, the engine's load (contract and resource caps), then the smoke test on the signed
//! golden rows. The app needs `metadata.json`, `golden.json` and the model file it runs; other
//! signed files of the package (the float model, sample data) need not be downloaded.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use super::error::UpdateError;
use super::metadata::{Golden, ModelMetadata};
use crate::engine::{Engine, EngineConfig};
use edge_signing::TrustedKeys;

/// Name of the signature bundle inside a package.
pub const SIGNATURE_FILE: &str = "model.sig";

/// A package's files as downloaded: name (relative, `/`-separated) → bytes.
pub type ModelFiles = BTreeMap<String, Vec<u8>>;

/// A package that passed every check, with its engine ready to score.
#[derive(Debug)]
pub struct VerifiedModel {
    /// The loaded, smoke-tested engine.
    pub engine: Engine,
    /// Its metadata.
    pub metadata: ModelMetadata,
    /// The signature's subject digest (hex): names exactly this set of files.
    pub subject_sha256: String,
    /// Which trusted key signed it (index into the trusted keys).
    pub key_index: usize,
}

/// Verifies `files` against `bundle` (the bytes of `model.sig`) and `keys`, loads the model
/// with `config` and smoke-tests it. See the module docs for the order of checks.
pub fn verify_package(
    bundle: &[u8],
    files: &ModelFiles,
    keys: &TrustedKeys,
    config: EngineConfig,
) -> Result<VerifiedModel, UpdateError> {
    let (statement, key_index) = edge_signing::verify_bundle(bundle, keys)?;
    let signed = |name: &str| -> Result<&[u8], UpdateError> {
        let bytes = files.get(name).ok_or_else(|| UpdateError::MissingFile(name.to_owned()))?;
        let resource = statement
            .resources
            .iter()
            .find(|r| r.name == name)
            .ok_or_else(|| UpdateError::UnsignedFile(name.to_owned()))?;
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        if digest != resource.sha256 {
            return Err(UpdateError::FileDigest(name.to_owned()));
        }
        Ok(bytes)
    };
    let metadata = ModelMetadata::parse(signed("metadata.json")?)?;
    let golden = Golden::parse(signed("golden.json")?)?;
    let (model_file, flavour) = metadata.runnable()?;
    let engine = Engine::load(signed(model_file)?, config)?;
    smoke_test(&engine, &golden, flavour).map_err(defer_to_general)?;
    Ok(VerifiedModel {
        engine,
        metadata,
        subject_sha256: hex(&statement.subject_sha256),
        key_index,
    })
}

/// Scores every golden row alone (as a live sensor is scored) and requires the signed score.
fn smoke_test(
    engine: &Engine,
    golden: &Golden,
    flavour: super::metadata::Flavour,
) -> Result<(), UpdateError> {
    let expected = golden.scores(flavour);
    let malformed = |reason: String| UpdateError::Malformed { file: "golden.json", reason };
    if golden.rows.is_empty() || expected.len() != golden.rows.len() {
        return Err(malformed(format!("{} rows, {} scores", golden.rows.len(), expected.len())));
    }
    let tol = golden.tolerance;
    for (row, (values, &want)) in golden.rows.iter().zip(expected).enumerate() {
        let got = engine.score(values)?.first().copied().unwrap_or(f32::NAN);
        if !(got.is_finite() && (got - want).abs() <= tol.atol + tol.rtol * want.abs()) {
            return Err(UpdateError::SmokeTest { row, got, expected: want });
        }
    }
    Ok(())
}

/// With tract in the build, the dense kernel was already checked against it at load, so a missed
/// golden score is the model's fault.
#[cfg(feature = "tract")]
fn defer_to_general(e: UpdateError) -> UpdateError {
    e
}

/// Without tract, the golden rows are the kernel's only check: a miss may be the kernel's, so the
/// build with tract decides (it compares the kernel with tract and can run the graph itself).
#[cfg(not(feature = "tract"))]
fn defer_to_general(e: UpdateError) -> UpdateError {
    match e {
        UpdateError::SmokeTest { .. } => {
            UpdateError::Model(crate::engine::EngineError::NeedsGeneralEngine(e.to_string()))
        }
        other => other,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
#[allow(clippy::expect_used, reason = "a failed expectation is the test failure")]
mod tests {
    use super::super::metadata::{Flavour, GoldenScores, Tolerance};
    use super::*;

    const INT8: &[u8] = include_bytes!("../../models/shuttle/model.int8.onnx");
    const GOLDEN: &[u8] = include_bytes!("../../models/shuttle/golden.json");

    #[test]
    fn the_smoke_test_requires_the_signed_scores() {
        let engine = Engine::load(INT8, EngineConfig::default()).expect("loads");
        let golden = Golden::parse(GOLDEN).expect("golden");
        smoke_test(&engine, &golden, Flavour::Int8).expect("the shipped golden scores");
        let mut off = golden.clone();
        off.scores = GoldenScores {
            f32: golden.scores.f32.clone(),
            int8_weight_only: golden.scores.int8_weight_only.iter().map(|s| s * 1.5).collect(),
        };
        let err = smoke_test(&engine, &off, Flavour::Int8).expect_err("scores off by 50%");
        assert!(matches!(err, UpdateError::SmokeTest { row: 0, .. }), "{err:?}");
        let mut empty = golden.clone();
        empty.rows.clear();
        assert_eq!(
            smoke_test(&engine, &empty, Flavour::Int8).map_err(|e| e.code()),
            Err("MODEL_METADATA")
        );
        let loose = Golden { tolerance: Tolerance { rtol: 1.0, atol: 1.0 }, ..off };
        smoke_test(&engine, &loose, Flavour::Int8).expect("within a loose tolerance");
    }
}
