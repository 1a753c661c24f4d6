//! Per-column shares of a score ([`Engine::explain`]): the dense kernel and tract agree on every
//! model the engine runs (the shipped ones, every interop spelling, the pipeline's window export
//! with its range guard), the shares and the guard's share add up to the whole score, the scores
//! are the plain path's, and a graph whose score is not a reconstruction error says so.
#![cfg(not(target_arch = "wasm32"))] // native; the browser runs tests/web_*.rs
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

mod common;

use std::path::PathBuf;

use common::{golden, F32_MODEL, INT8_MODEL};
use edge_anomaly::{Backend, Engine, EngineConfig, EngineError, Explained};

fn load(bytes: &[u8], backend: Backend) -> Engine {
    Engine::load(bytes, EngineConfig { backend, ..EngineConfig::default() }).expect("loads")
}

fn interop() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/interop");
    let mut models: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("interop fixtures")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
        .map(|p| (p.display().to_string(), std::fs::read(&p).expect("reads")))
        .collect();
    models.sort();
    models
}

/// Rows for an interop model: 16 values each, around the scale the generator trained on.
fn interop_rows() -> Vec<f32> {
    (0..40 * 16).map(|i| ((i * 37 % 101) as f32 / 25.0 - 2.0) * (1 + i / 160) as f32).collect()
}

/// Every reading's shares plus its guard share make 1 (0 for a zero score), each in `[0, 1]`.
fn assert_whole(x: &Explained, what: &str) {
    for (i, &score) in x.scores.iter().enumerate() {
        let (shares, guard) = x.row(i).expect("a row per score");
        assert!(shares.iter().chain([&guard]).all(|s| (0.0..=1.0).contains(s)), "{what} row {i}");
        let total: f32 = shares.iter().sum::<f32>() + guard;
        let want = if score > 0.0 { 1.0 } else { 0.0 };
        assert!((total - want).abs() < 1e-3, "{what} row {i}: shares sum to {total}");
    }
}

fn assert_same(a: &Explained, b: &Explained, what: &str) {
    assert_eq!(a.columns, b.columns, "{what}");
    for (i, (x, y)) in a.scores.iter().zip(&b.scores).enumerate() {
        assert!((x - y).abs() <= 1e-5 + 1e-3 * y.abs(), "{what} score {i}: {x} vs {y}");
    }
    let pairs = a.shares.iter().zip(&b.shares).chain(a.guard.iter().zip(&b.guard));
    for (i, (x, y)) in pairs.enumerate() {
        assert!((x - y).abs() <= 2e-3, "{what} share {i}: dense {x} vs tract {y}");
    }
}

#[test]
fn dense_and_tract_agree_on_the_shipped_models() {
    let rows = golden().flat_rows();
    for (name, bytes) in [("f32", F32_MODEL), ("int8", INT8_MODEL)] {
        let (dense, tract) = (load(bytes, Backend::Auto), load(bytes, Backend::Tract));
        assert_eq!((dense.backend().name(), tract.backend().name()), ("dense", "tract"));
        let (d, t) = (dense.explain(&rows).expect("dense"), tract.explain(&rows).expect("tract"));
        assert_same(&d, &t, name);
        assert_whole(&d, name);
        assert_whole(&t, name);
        assert!(d.guard.iter().all(|g| *g == 0.0), "{name}: no guard in a tabular model");
    }
}

#[test]
fn dense_and_tract_agree_on_every_interop_model() {
    let rows = interop_rows();
    let models = interop();
    assert!(models.len() >= 74, "the interop fixtures are there");
    let mut guarded = 0;
    for (name, bytes) in &models {
        let Ok(dense) = Engine::load(bytes, EngineConfig::default()) else { continue };
        let tract = load(bytes, Backend::Tract);
        let (d, t) = (dense.explain(&rows).expect(name), tract.explain(&rows).expect(name));
        assert_same(&d, &t, name);
        assert_whole(&d, name);
        assert_whole(&t, name);
        if d.guard.iter().any(|g| *g > 0.0) {
            guarded += 1;
        }
    }
    assert!(guarded >= 2, "the window export's range guard takes a share ({guarded} models)");
}

#[test]
fn explained_scores_are_the_plain_scores_one_row_or_many() {
    let rows = golden().flat_rows();
    for backend in [Backend::Auto, Backend::Tract] {
        let e = load(INT8_MODEL, backend);
        let plain = e.score(&rows).expect("scores");
        let x = e.explain(&rows).expect("explains");
        assert_eq!(x.scores, plain, "{backend:?}");
        // One reading at a time (the kernel's tail path) gives the batch's shares.
        for (i, row) in rows.chunks(e.features()).enumerate() {
            let one = e.explain(row).expect("explains");
            let (shares, _) = x.row(i).expect("row");
            assert!(one.shares.iter().zip(shares).all(|(a, b)| (a - b).abs() < 1e-5), "{i}");
        }
    }
}

#[test]
fn explain_checks_its_input_like_scoring_does() {
    let e = load(F32_MODEL, Backend::Auto);
    assert!(matches!(e.explain(&[1.0, 2.0]), Err(EngineError::WrongLength { .. })));
    let mut row = golden().rows[0].clone();
    row[3] = f32::NAN;
    assert_eq!(e.explain(&row), Err(EngineError::NonFinite { row: 0, column: 3 }));
}

#[test]
fn a_score_that_is_no_reconstruction_error_is_unexplained() {
    let bytes = include_bytes!("fixtures/valid_mean.onnx");
    let e = load(bytes, Backend::Auto);
    let err = e.explain(&vec![1.0; e.features()]).expect_err("nothing to break down");
    assert_eq!(err.code(), "UNEXPLAINED", "{err}");
}
