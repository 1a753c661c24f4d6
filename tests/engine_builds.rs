//! The two builds of the engine on the same packages: the small one (no `tract` feature: the dense
//! kernel and its ONNX reader) and the full one (tract). Both run the shipped models on the dense
//! kernel and reproduce their signed golden scores; a graph the kernel does not cover loads in the
//! full build and is refused with `GENERAL_ENGINE` by the small one, which is the worker's cue
//! to switch builds. `scripts/test.sh` runs this file in both builds.
#![cfg(not(target_arch = "wasm32"))] // native; the browser side is tests/e2e/general_engine.test.mjs
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

use std::path::Path;

use edge_anomaly::update::{trusted_keys, verify_package, ModelFiles};
use edge_anomaly::{Backend, Engine, EngineConfig};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn read(dir: &str, name: &str) -> Vec<u8> {
    std::fs::read(Path::new(ROOT).join(dir).join(name)).expect(name)
}

fn verify(dir: &str) -> Result<edge_anomaly::update::VerifiedModel, String> {
    let files: ModelFiles = ["metadata.json", "golden.json", "model.int8.onnx"]
        .iter()
        .map(|n| (n.to_string(), read(dir, n)))
        .collect();
    let keys = trusted_keys().expect("keys");
    verify_package(&read(dir, "model.sig"), &files, &keys, EngineConfig::default())
        .map_err(|e| format!("{}:{}", e.code(), e.detail_code()))
}

#[test]
fn shipped_models_run_on_the_dense_kernel_in_either_build() {
    for file in ["model.f32.onnx", "model.int8.onnx"] {
        let engine = Engine::load(&read("models/shuttle", file), EngineConfig::default())
            .expect("the shipped model loads");
        assert_eq!(engine.backend().name(), "dense", "{file}");
        assert_eq!(engine.features(), 9);
        let scores =
            engine.score(&[50.0, 0.0, 80.0, 0.0, 40.0, 2.0, 40.0, 45.0, 5.0]).expect("scores");
        assert!(scores[0].is_finite() && scores[0] >= 0.0, "{file}: {scores:?}");
    }
    // The signed package: contract, caps and every golden row within tolerance.
    let verified = verify("models/shuttle").expect("the bundled package verifies");
    assert_eq!(verified.engine.backend().name(), "dense");
}

#[cfg(feature = "tract")]
#[test]
fn the_full_build_runs_what_the_kernel_does_not_cover_on_tract() {
    let verified = verify("tests/fixtures/releases/5.0.0-general").expect("verifies on tract");
    assert_eq!(verified.engine.backend().name(), "tract");
    let tract = Engine::load(
        &read("models/shuttle", "model.f32.onnx"),
        EngineConfig { backend: Backend::Tract, ..EngineConfig::default() },
    )
    .expect("tract when asked for");
    assert_eq!(tract.backend().name(), "tract");
}

#[cfg(not(feature = "tract"))]
#[test]
fn the_small_build_refuses_what_needs_the_general_engine_with_its_code() {
    let refused = verify("tests/fixtures/releases/5.0.0-general").err();
    assert_eq!(refused.as_deref(), Some("MODEL_REFUSED:GENERAL_ENGINE"));
    let err = Engine::load(
        &read("models/shuttle", "model.f32.onnx"),
        EngineConfig { backend: Backend::Tract, ..EngineConfig::default() },
    )
    .expect_err("no tract in this build");
    assert_eq!(err.code(), "GENERAL_ENGINE");
}

/// What every build refuses the same way, whoever parses the file.
#[test]
fn malformed_and_off_contract_files_are_refused_alike() {
    let garbage =
        Engine::load(b"not an onnx file at all", EngineConfig::default()).expect_err("refused");
    assert_eq!(garbage.code(), "MODEL_PARSE");
    let mut truncated = read("models/shuttle", "model.f32.onnx");
    truncated.truncate(truncated.len() / 2);
    assert_eq!(
        Engine::load(&truncated, EngineConfig::default()).expect_err("refused").code(),
        "MODEL_PARSE"
    );
    let two_inputs =
        Engine::load(&read("tests/fixtures", "two_inputs.onnx"), EngineConfig::default())
            .expect_err("refused");
    assert_eq!(two_inputs.code(), "MODEL_CONTRACT");
}
