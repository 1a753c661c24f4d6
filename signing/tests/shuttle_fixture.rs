//! The shipped model directory `models/shuttle`, signed by `model_signing` with the development
//! key, verifies both from disk and from files held in memory (as the browser passes them).
#![cfg(not(target_arch = "wasm32"))] // reads the fixture from disk

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;

use edge_signing::{verify_dir, verify_directory, SigningError, TrustedKeys};

fn models() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../models")
}

fn read(path: PathBuf) -> Result<Vec<u8>, SigningError> {
    fs::read(&path)
        .map_err(|e| SigningError::Io { path: path.display().to_string(), reason: e.to_string() })
}

fn dev_key() -> Result<TrustedKeys, SigningError> {
    let pem =
        String::from_utf8_lossy(&read(models().join("keys/dev-signing-key.pub.pem"))?).into_owned();
    TrustedKeys::from_pems(&[&pem])
}

const SHUTTLE_FILES: [&str; 5] =
    ["golden.json", "metadata.json", "model.f32.onnx", "model.int8.onnx", "sample.csv"];

#[test]
fn shuttle_verifies_from_disk() -> Result<(), SigningError> {
    let dir = models().join("shuttle");
    let m = verify_dir(&dir, &dir.join("model.sig"), &dev_key()?)?;
    let names: Vec<&str> = m.resources.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, SHUTTLE_FILES);
    assert_eq!(m.model_name, "shuttle");
    Ok(())
}

#[test]
fn shuttle_verifies_from_memory_and_catches_a_changed_byte() -> Result<(), SigningError> {
    let dir = models().join("shuttle");
    let bundle = read(dir.join("model.sig"))?;
    let mut files = BTreeMap::new();
    for name in SHUTTLE_FILES {
        files.insert(name.to_string(), read(dir.join(name))?);
    }
    let keys = dev_key()?;
    verify_directory(&bundle, &files, &keys)?;

    if let Some(bytes) = files.get_mut("model.int8.onnx").and_then(|b| b.last_mut()) {
        *bytes ^= 1;
    }
    let err = verify_directory(&bundle, &files, &keys).err();
    assert_eq!(err, Some(SigningError::FileDigestMismatch { name: "model.int8.onnx".into() }));
    Ok(())
}
