//! Contributions against references with known answers: the column shares match onnxruntime's
//! on the reconstruction terms (`tests/fixtures/contributions/`, made by
//! `python -m edge_pipeline.contributions fixtures`) for f32 and int8, dense kernel and tract;
//! and a fault injected into one channel is named first in at least 90% of the readings the
//! model flags, on held-out shuttle rows and on a synthetic multi-channel series.
#![cfg(not(target_arch = "wasm32"))] // native; the browser runs tests/web_*.rs
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

use std::path::{Path, PathBuf};

use edge_anomaly::engine::{Attribution, ChannelMap};
use edge_anomaly::{Backend, Engine, EngineConfig};
use serde::Deserialize;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/contributions")
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[derive(Deserialize)]
struct Reference {
    rows: Vec<Vec<f32>>,
    f32: Flavour,
    int8_weight_only: Flavour,
    tolerance: Tolerances,
}

#[derive(Deserialize)]
struct Flavour {
    scores: Vec<f32>,
    shares: Vec<Vec<f32>>,
    guard: Vec<f32>,
}

#[derive(Deserialize)]
struct Tolerances {
    scores: Tol,
    shares: Tol,
}

#[derive(Deserialize)]
struct Tol {
    #[serde(default)]
    rtol: f32,
    atol: f32,
}

#[derive(Deserialize)]
struct Metadata {
    features: Vec<String>,
    threshold: f32,
    normalization: Option<Stats>,
}

#[derive(Deserialize)]
struct Stats {
    mean: Vec<f32>,
    std: Vec<f32>,
}

fn metadata(path: &Path) -> Metadata {
    serde_json::from_slice(&read(path)).expect("metadata parses")
}

fn channel_map(meta: &Metadata) -> ChannelMap {
    let stats = meta.normalization.as_ref().map(|n| (&n.mean[..], &n.std[..]));
    ChannelMap::new(&meta.features, stats)
}

/// Every flavour and backend against onnxruntime: scores, column shares, guard shares.
fn matches_reference(reference: &Path, f32_model: &Path, int8_model: &Path) {
    let r: Reference = serde_json::from_slice(&read(reference)).expect("reference parses");
    let flat = r.rows.concat();
    for (model, want) in [(f32_model, &r.f32), (int8_model, &r.int8_weight_only)] {
        let bytes = read(model);
        for backend in [Backend::Auto, Backend::Tract] {
            let e = Engine::load(&bytes, EngineConfig { backend, ..EngineConfig::default() })
                .expect("loads");
            let what = format!("{} on {}", model.display(), e.backend().name());
            let x = e.explain(&flat).expect("explains");
            let (ts, tc) = (&r.tolerance.scores, &r.tolerance.shares);
            for (i, (got, want)) in x.scores.iter().zip(&want.scores).enumerate() {
                let ok = (got - want).abs() <= ts.atol + ts.rtol * want.abs();
                assert!(ok, "{what}: score {i} {got} vs {want}");
            }
            for (i, want_row) in want.shares.iter().enumerate() {
                let (got_row, guard) = x.row(i).expect("row");
                // Shares are ratios of f32 sums: allow the scores' relative tolerance on top.
                let tol = tc.atol + ts.rtol;
                for (j, (g, w)) in got_row.iter().zip(want_row).enumerate() {
                    assert!((g - w).abs() <= tol, "{what}: row {i} column {j}: {g} vs {w}");
                }
                let w = want.guard[i];
                assert!((guard - w).abs() <= tol, "{what}: row {i} guard {guard} vs {w}");
            }
        }
    }
}

#[test]
fn shuttle_shares_match_onnxruntime() {
    let shuttle = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/shuttle");
    matches_reference(
        &fixtures().join("shuttle.json"),
        &shuttle.join("model.f32.onnx"),
        &shuttle.join("model.int8.onnx"),
    );
}

#[test]
fn window_model_shares_and_its_guard_match_onnxruntime() {
    let dir = fixtures().join("window");
    matches_reference(
        &dir.join("reference.json"),
        &dir.join("model.f32.onnx"),
        &dir.join("model.int8.onnx"),
    );
}

#[test]
fn a_window_model_names_its_one_sensor() {
    let dir = fixtures().join("window");
    let meta = metadata(&dir.join("metadata.json"));
    let map = channel_map(&meta);
    assert_eq!(map.names(), ["value"]);
    let e =
        Engine::load(&read(&dir.join("model.int8.onnx")), EngineConfig::default()).expect("loads");
    let r: Reference = serde_json::from_slice(&read(&dir.join("reference.json"))).expect("parses");
    for row in &r.rows {
        let c = map.contributions(&e, row).expect("contributions");
        assert_eq!(c.method, Attribution::Terms);
        assert_eq!(c.channels.len(), 1);
        // The sensor holds the whole score: its columns' terms and the range guard.
        assert!((c.channels[0].share - 1.0).abs() < 1e-3, "{:?}", c.channels);
    }
}

/// Rows with a fault in one channel: how often the flagged ones name that channel first.
struct Ranking {
    flagged: usize,
    first: usize,
    /// The same figure from the error terms alone (no repair search), for comparison.
    first_by_terms: usize,
}

fn rank(e: &Engine, meta: &Metadata, rows: &[Vec<f32>], channels: &[usize]) -> Ranking {
    let map = channel_map(meta);
    let terms_only = ChannelMap::new(&meta.features, None);
    let mut r = Ranking { flagged: 0, first: 0, first_by_terms: 0 };
    for (row, &channel) in rows.iter().zip(channels) {
        if e.score(row).expect("scores")[0] <= meta.threshold {
            continue;
        }
        r.flagged += 1;
        let want = &meta.features[channel];
        let c = map.contributions(e, row).expect("contributions");
        assert_eq!(c.method, Attribution::Repair);
        let total: f32 = c.channels.iter().map(|c| c.share).sum();
        assert!((total - 1.0).abs() < 1e-3, "shares sum to {total}");
        r.first += usize::from(&c.channels[0].channel == want);
        let t = terms_only.contributions(e, row).expect("contributions");
        r.first_by_terms += usize::from(&t.channels[0].channel == want);
    }
    r
}

fn report(what: &str, r: &Ranking) -> f64 {
    let rate = r.first as f64 / r.flagged.max(1) as f64;
    let terms = r.first_by_terms as f64 / r.flagged.max(1) as f64;
    println!(
        "{what}: injected channel first in {} of {} flagged readings ({rate:.3}); by error terms alone {terms:.3}",
        r.first, r.flagged
    );
    rate
}

#[test]
fn a_fault_in_one_shuttle_channel_is_named_first() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models/shuttle");
    let meta = metadata(&root.join("metadata.json"));
    let stats = meta.normalization.as_ref().expect("the shuttle metadata has statistics");
    let csv = String::from_utf8(read(&root.join("sample.csv"))).expect("utf-8");
    // Held-out normal readings (the last column is the label).
    let normals: Vec<Vec<f32>> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().expect("a number")).collect::<Vec<f32>>())
        .filter(|r| r.last() == Some(&0.0))
        .map(|r| r[..r.len() - 1].to_vec())
        .take(12)
        .collect();
    let (mut rows, mut channels) = (Vec::new(), Vec::new());
    for (j, spread) in stats.std.iter().enumerate() {
        for k in [-5.0f32, -3.0, 3.0, 5.0] {
            for n in &normals {
                let mut r = n.clone();
                r[j] += k * spread;
                rows.push(r);
                channels.push(j);
            }
        }
    }
    for model in ["model.f32.onnx", "model.int8.onnx"] {
        let e = Engine::load(&read(&root.join(model)), EngineConfig::default()).expect("loads");
        let r = rank(&e, &meta, &rows, &channels);
        assert!(r.flagged >= rows.len() * 9 / 10, "{model}: faults are flagged ({})", r.flagged);
        assert!(report(&format!("shuttle {model}"), &r) >= 0.9, "{model}");
    }
}

#[test]
fn a_fault_in_one_synthetic_channel_is_named_first() {
    #[derive(Deserialize)]
    struct Injected {
        rows: Vec<Vec<f32>>,
        channel: Vec<usize>,
    }
    let dir = fixtures().join("multichannel");
    let meta = metadata(&dir.join("metadata.json"));
    let injected: Injected =
        serde_json::from_slice(&read(&dir.join("injected.json"))).expect("parses");
    for model in ["model.f32.onnx", "model.int8.onnx"] {
        let e = Engine::load(&read(&dir.join(model)), EngineConfig::default()).expect("loads");
        let r = rank(&e, &meta, &injected.rows, &injected.channel);
        assert!(r.flagged >= injected.rows.len() / 2, "{model}: faults are flagged");
        assert!(report(&format!("synthetic {model}"), &r) >= 0.9, "{model}");
    }
}
