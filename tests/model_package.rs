//! A signed model package is verified, loaded and smoke-tested before anything scores with it:
//! the shipped package (signed with the development key) is accepted, and every way a package
//! can differ from what was signed is refused with its own code.
#![cfg(not(target_arch = "wasm32"))] // native; the browser runs tests/web_*.rs
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

use std::path::Path;

use edge_anomaly::update::{
    trusted_keys, verify_package, ModelFiles, TrustedKeys, UpdateError, SIGNATURE_FILE,
};
use edge_anomaly::EngineConfig;

const PACKAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/models/shuttle");
/// The files the app downloads: not the float model or the sample data.
const USED: [&str; 3] = ["metadata.json", "golden.json", "model.int8.onnx"];

fn read(name: &str) -> Vec<u8> {
    let path = Path::new(PACKAGE).join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn package() -> (Vec<u8>, ModelFiles) {
    let files = USED.iter().map(|n| (n.to_string(), read(n))).collect();
    (read(SIGNATURE_FILE), files)
}

fn verify(bundle: &[u8], files: &ModelFiles) -> Result<String, UpdateError> {
    let keys = trusted_keys().expect("the pinned keys parse");
    verify_package(bundle, files, &keys, EngineConfig::default()).map(|m| m.metadata.version)
}

#[test]
fn the_shipped_package_verifies_with_the_pinned_key() {
    let (bundle, files) = package();
    let version = verify(&bundle, &files).expect("accepted");
    assert!(version.starts_with("1.0.0"), "{version}");
    let keys = trusted_keys().expect("keys");
    let model = verify_package(&bundle, &files, &keys, EngineConfig::default()).expect("ok");
    assert_eq!(model.key_index, 0);
    assert_eq!(model.engine.features(), model.metadata.features.len());
}

#[test]
fn every_difference_from_the_signed_package_is_refused_with_its_code() {
    let (bundle, files) = package();
    let mut cases: Vec<(&str, Vec<u8>, ModelFiles, &str)> = Vec::new();
    for name in USED {
        let mut changed = files.clone();
        if let Some(bytes) = changed.get_mut(name) {
            let mid = bytes.len() / 2;
            bytes[mid] ^= 1;
        }
        cases.push(("a changed byte", bundle.clone(), changed, "MODEL_FILE_DIGEST"));
        let mut missing = files.clone();
        missing.remove(name);
        cases.push(("a missing file", bundle.clone(), missing, "MODEL_FILE_MISSING"));
    }
    let truncated = bundle[..bundle.len() / 2].to_vec();
    cases.push(("a truncated bundle", truncated, files.clone(), "MODEL_SIGNATURE"));
    let mut edited: serde_json::Value = serde_json::from_slice(&bundle).expect("bundle json");
    let sig = &mut edited["dsseEnvelope"]["signatures"][0]["sig"];
    let text = sig.as_str().expect("sig").to_owned();
    // Another valid base64 signature value: flip a character in the middle.
    let mut chars: Vec<char> = text.chars().collect();
    let mid = chars.len() / 2;
    chars[mid] = if chars[mid] == 'A' { 'B' } else { 'A' };
    *sig = serde_json::Value::String(chars.into_iter().collect());
    let edited = serde_json::to_vec(&edited).expect("json");
    cases.push(("an altered signature", edited, files.clone(), "MODEL_SIGNATURE"));
    for (what, bundle, files, code) in cases {
        let err = verify(&bundle, &files).expect_err(what);
        assert_eq!(err.code(), code, "{what}: {err}");
    }
}

#[test]
fn a_key_that_is_not_trusted_is_refused() {
    let (bundle, files) = package();
    // A valid P-256 public key that did not sign the package.
    let other = "-----BEGIN PUBLIC KEY-----\n\
        MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEHf1tu0qWneJ75xMGzdd/Jizai1jn\n\
        5XdRPkinlceyRtAkNWfvJwciFkPoG+idwphcSD9IRHxGHzPSSLJXNAPoJA==\n\
        -----END PUBLIC KEY-----\n";
    let keys = TrustedKeys::from_pems(&[other]).expect("a valid key");
    let err =
        verify_package(&bundle, &files, &keys, EngineConfig::default()).expect_err("untrusted");
    assert_eq!(err.code(), "MODEL_SIGNATURE", "{err}");
}

#[test]
fn the_engine_caps_apply_to_a_signed_model_too() {
    let (bundle, files) = package();
    let mut config = EngineConfig::default();
    config.limits.max_bytes = 1024;
    let keys = trusted_keys().expect("keys");
    let err = verify_package(&bundle, &files, &keys, config).expect_err("over the cap");
    assert_eq!((err.code(), err.detail_code()), ("MODEL_REFUSED", "MODEL_TOO_LARGE"));
}
