//! Models from elsewhere: MLP autoencoders in every spelling other tools export them (node names
//! or none, `Gemm` with or without `transB` or `MatMul` + `Add`, the square as `Pow` or `Mul`,
//! `ReduceMean` axes as an attribute or an input, opset 17 and 18, a score output or the
//! reconstruction as output), and the pipeline's own window export with its range guard, each as
//! f32 and as onnxruntime `quantize_dynamic` int8 (`tests/fixtures/interop/`, made by its
//! `generate.py`). Each must load, run on the dense kernel, and match onnxruntime; tract (the
//! reference) too. Models the engine cannot run must be refused with the node that stops it.
#![cfg(not(target_arch = "wasm32"))] // native; the browser runs tests/web_*.rs
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;

use common::{assert_close, Tolerance};
use edge_anomaly::{Backend, Engine, EngineConfig, Int8Mode};
use serde::Deserialize;

#[derive(Deserialize)]
struct Expected {
    rows: Vec<Vec<f32>>,
    models: BTreeMap<String, Scores>,
    /// Models the engine must refuse, with the node its error must name.
    refused: BTreeMap<String, Refused>,
}

#[derive(Deserialize)]
struct Scores {
    /// onnxruntime on the file as written (for a reconstruction output: its mean squared error
    /// against the input).
    scores: Vec<f32>,
    /// int8 files only: onnxruntime on the f32 graph with the dequantized int8 weights.
    weight_only: Option<Vec<f32>>,
    /// int8 files only: how many `MatMulInteger` chains the file has.
    matmul_integer: Option<usize>,
}

#[derive(Deserialize)]
struct Refused {
    node: String,
    /// What stops it, as the error words it.
    reason: String,
}

const TOLERANCE: Tolerance = Tolerance { rtol: 1e-4, atol: 1e-5 };

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/interop")
}

fn expected() -> Expected {
    let text = std::fs::read_to_string(dir().join("expected.json")).expect("expected.json");
    serde_json::from_str(&text).expect("parses")
}

fn load(name: &str, config: EngineConfig) -> Engine {
    let bytes = std::fs::read(dir().join(name)).expect(name);
    Engine::load(&bytes, config).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Per row (a live sensor) and as one batch.
fn check(engine: &Engine, rows: &[Vec<f32>], want: &[f32], what: &str) {
    let single: Vec<f32> = rows.iter().map(|r| engine.score(r).expect("scores")[0]).collect();
    assert_close(&single, want, TOLERANCE, &format!("{what}, per row"));
    let flat: Vec<f32> = rows.concat();
    assert_close(&engine.score(&flat).expect("scores"), want, TOLERANCE, &format!("{what}, batch"));
}

#[test]
fn every_variant_loads_on_the_dense_kernel_and_matches_onnxruntime() {
    let e = expected();
    assert_eq!(e.models.len(), 74, "36 variants and the pipeline's export, f32 and int8");
    for (name, want) in &e.models {
        let engine = load(name, EngineConfig::default());
        assert_eq!(engine.features(), 16, "{name}");
        assert_eq!(engine.backend().name(), "dense", "{name}: {:?}", engine.backend());
        match (&want.weight_only, want.matmul_integer) {
            // int8: every quantize_dynamic matmul rewritten, float activations.
            (Some(weight_only), Some(matmuls)) => {
                assert!(matmuls > 0, "{name}");
                assert_eq!(engine.dequantized_matmuls(), matmuls, "{name}");
                check(&engine, &e.rows, weight_only, name);
            }
            (None, None) => check(&engine, &e.rows, &want.scores, name),
            _ => panic!("{name}: int8 entries have both weight_only and matmul_integer"),
        }
    }
}

#[test]
fn tract_runs_every_variant_as_the_reference() {
    let e = expected();
    for (name, want) in &e.models {
        let config = EngineConfig { backend: Backend::Tract, ..EngineConfig::default() };
        let engine = load(name, config);
        assert_eq!(engine.backend().name(), "tract", "{name}");
        check(&engine, &e.rows, want.weight_only.as_ref().unwrap_or(&want.scores), name);
    }
}

#[test]
fn int8_as_written_matches_onnxruntime_on_the_same_batch() {
    // Activations quantized over the call, as onnxruntime does: only the same batch compares.
    let e = expected();
    for (name, want) in e.models.iter().filter(|(_, s)| s.weight_only.is_some()) {
        let config = EngineConfig { int8: Int8Mode::AsWritten, ..EngineConfig::default() };
        let engine = load(name, config);
        let got = engine.score(&e.rows.concat()).expect("scores");
        let loose = Tolerance { rtol: 1e-3, atol: 1e-4 };
        assert_close(&got, &want.scores, loose, &format!("{name}, as written"));
    }
}

#[test]
fn a_reconstruction_output_is_scored_by_the_engine() {
    let e = expected();
    let recon: Vec<_> = e.models.keys().filter(|n| n.starts_with("recon-")).collect();
    assert_eq!(recon.len(), 24, "12 variants, f32 and int8");
    for name in recon {
        let contract = load(name, EngineConfig::default()).contract().clone();
        assert!(contract.reconstruction_output, "{name}");
    }
    let score_model = load("gemm-mul-opset17-named.onnx", EngineConfig::default());
    assert!(!score_model.contract().reconstruction_output);
}

#[test]
fn a_model_the_engine_cannot_run_is_refused_naming_the_node() {
    let e = expected();
    assert_eq!(e.refused.len(), 2);
    for (name, refused) in &e.refused {
        let bytes = std::fs::read(dir().join(name)).expect(name);
        for backend in [Backend::Auto, Backend::Tract] {
            let config = EngineConfig { backend, ..EngineConfig::default() };
            let err = Engine::load(&bytes, config).expect_err(name);
            let message = err.to_string();
            assert_eq!(err.code(), "MODEL_CONTRACT", "{name}: {message}");
            assert!(message.contains(&format!("\"{}\"", refused.node)), "{name}: {message}");
            assert!(message.contains(&refused.reason), "{name}: {message}");
        }
    }
}
