//! Pins the model-signing keys this build trusts (see `src/update/keys.rs`): the PEM file named
//! by `EDGE_TRUSTED_KEYS`, or the repository's development key.

use std::path::PathBuf;
use std::{env, fs};

fn main() {
    println!("cargo:rerun-if-env-changed=EDGE_TRUSTED_KEYS");
    let manifest = PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let source = match env::var_os("EDGE_TRUSTED_KEYS") {
        Some(path) => PathBuf::from(path),
        None => manifest.join("models/keys/dev-signing-key.pub.pem"),
    };
    println!("cargo:rerun-if-changed={}", source.display());
    let pem = fs::read_to_string(&source)
        .unwrap_or_else(|e| panic!("trusted keys {}: {e}", source.display()));
    if !pem.contains("-----BEGIN PUBLIC KEY-----") {
        panic!("trusted keys {}: no PUBLIC KEY block", source.display());
    }
    let out = PathBuf::from(env::var_os("OUT_DIR").unwrap_or_default()).join("trusted_keys.pem");
    fs::write(&out, pem).unwrap_or_else(|e| panic!("{}: {e}", out.display()));
}
