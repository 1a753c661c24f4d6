//! The scoring input path under arbitrary input: any length, any f32 bit pattern, batches
//! around the tile size and the cap. A call never panics; a bad input gets exactly the
//! documented [`EngineError`]; a valid one gets one finite score per reading, the same alone or
//! in a batch, and the dense kernel agrees with tract within the golden tolerance.
//!
//! Case counts follow `PROPTEST_CASES` (default 256 per property).
#![cfg(not(target_arch = "wasm32"))] // native; proptest does not target the browser
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};

use common::{golden, F32_MODEL, INT8_MODEL};
use edge_anomaly::{Backend, Engine, EngineConfig, EngineError, ModelSlot};
use proptest::prelude::*;

/// Features per reading of the shipped models.
const F: usize = 9;
/// A small cap so batches around it stay cheap; the default cap is checked separately.
const CAP: usize = 64;

/// The training distribution per feature (models/shuttle/metadata.json).
const MEAN: [f32; F] = [43.979, -0.458, 84.768, 0.379, 39.230, 2.304, 40.800, 45.519, 4.920];
const STD: [f32; F] = [6.484, 30.976, 8.696, 44.331, 14.006, 127.675, 9.883, 15.457, 9.681];

/// The engines under test: each shipped model on each backend, with the small cap.
struct Engines {
    /// `(name, dense-or-auto engine, tract engine)` per model.
    models: Vec<(&'static str, Engine, Engine)>,
}

fn load(bytes: &[u8], backend: Backend) -> Engine {
    Engine::load(bytes, EngineConfig { max_batch: CAP, backend, ..EngineConfig::default() })
        .expect("shipped model loads")
}

thread_local! {
    static ENGINES: Engines = Engines {
        models: vec![
            ("f32", load(F32_MODEL, Backend::Auto), load(F32_MODEL, Backend::Tract)),
            ("int8", load(INT8_MODEL, Backend::Auto), load(INT8_MODEL, Backend::Tract)),
        ],
    };
}

/// What the documented checks say a call on `rows` must answer, if it must fail.
fn expected_error(rows: &[f32], max: usize) -> Option<EngineError> {
    if rows.is_empty() || !rows.len().is_multiple_of(F) {
        return Some(EngineError::WrongLength { len: rows.len(), features: F });
    }
    if rows.len() / F > max {
        return Some(EngineError::BatchTooLarge { rows: rows.len() / F, max });
    }
    let i = rows.iter().position(|v| !v.is_finite())?;
    Some(EngineError::NonFinite { row: i / F, column: i % F })
}

/// Scores without letting a panic escape the property (a panic is reported as a failure).
fn score(engine: &Engine, rows: &[f32]) -> Result<Result<Vec<f32>, EngineError>, String> {
    catch_unwind(AssertUnwindSafe(|| engine.score(rows))).map_err(|_| "panicked".into())
}

/// Any f32, with the special values over-represented.
fn any_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        4 => any::<u32>().prop_map(f32::from_bits),
        1 => prop::sample::select(vec![
            f32::NAN, -f32::NAN, f32::from_bits(0x7fc0_1234), f32::from_bits(0xff80_0001),
            f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, f32::MIN_POSITIVE,
            f32::from_bits(1), -f32::from_bits(1), f32::MAX, f32::MIN, f32::EPSILON,
        ]),
        2 => -1e3f32..1e3,
    ]
}

/// A plausible reading: each feature drawn around its training mean (±8σ), sometimes a far
/// outlier (a stuck or saturated sensor).
fn reading() -> impl Strategy<Value = Vec<f32>> {
    prop::collection::vec(
        (
            -8.0f32..8.0,
            prop_oneof![
                8 => Just(None),
                1 => prop::sample::select(vec![1e6f32, -1e6, 1e30, -1e30, 0.0]).prop_map(Some),
            ],
        ),
        F,
    )
    .prop_map(|cols| {
        cols.iter()
            .enumerate()
            .map(|(k, (z, outlier))| outlier.unwrap_or(MEAN[k] + z * STD[k]))
            .collect()
    })
}

/// Batch sizes at the tile edges (1–9) and around the cap (63–65).
fn batch_size() -> impl Strategy<Value = usize> {
    prop_oneof![1usize..=9, CAP - 1..=CAP + 1]
}

fn close(got: f32, want: f32) -> bool {
    let tol = golden().tolerance;
    (got - want).abs() <= tol.atol + tol.rtol * want.abs()
}

proptest! {
    #[test]
    fn any_input_gets_its_documented_answer(
        rows in prop::collection::vec(any_f32(), 0..(CAP + 2) * F),
    ) {
        ENGINES.with(|e| -> Result<(), TestCaseError> {
            for (name, auto, tract) in &e.models {
                for engine in [auto, tract] {
                    let got = score(engine, &rows).map_err(TestCaseError::fail)?;
                    match (expected_error(&rows, CAP), got) {
                        (Some(want), Err(got)) => {
                            prop_assert_eq!(got.code(), want.code());
                            prop_assert_eq!(got, want);
                        }
                        (None, Ok(scores)) => {
                            prop_assert_eq!(scores.len(), rows.len() / F);
                            prop_assert!(
                                scores.iter().all(|s| s.is_finite() && *s >= 0.0),
                                "{name} {}: {scores:?}", engine.backend().name()
                            );
                        }
                        (want, got) => prop_assert!(
                            false, "{name} {}: want {want:?}, got {got:?}", engine.backend().name()
                        ),
                    }
                }
            }
            Ok(())
        })?;
    }

    #[test]
    fn a_batch_scores_each_reading_as_alone_and_backends_agree(
        batch in batch_size().prop_flat_map(|n| prop::collection::vec(reading(), n)),
    ) {
        let rows: Vec<f32> = batch.concat();
        ENGINES.with(|e| -> Result<(), TestCaseError> {
            for (name, auto, tract) in &e.models {
                prop_assert_eq!(auto.backend().name(), "dense", "{} picks the dense kernel", name);
                let want = expected_error(&rows, CAP);
                let dense = score(auto, &rows).map_err(TestCaseError::fail)?;
                let reference = score(tract, &rows).map_err(TestCaseError::fail)?;
                if let Some(want) = want {
                    prop_assert_eq!(dense, Err(want.clone()));
                    prop_assert_eq!(reference, Err(want));
                    continue;
                }
                let (dense, reference) = (dense.expect("valid"), reference.expect("valid"));
                for (i, row) in batch.iter().enumerate() {
                    let alone = auto.score(row).expect("valid")[0];
                    // The dense kernel computes each reading in its own lane with one fixed
                    // summation order: a reading scores bit for bit the same in any batch.
                    prop_assert_eq!(
                        alone.to_bits(), dense[i].to_bits(),
                        "{} dense row {}: alone {} vs batch {}", name, i, alone, dense[i]
                    );
                    let tract_alone = tract.score(row).expect("valid")[0];
                    prop_assert!(
                        close(reference[i], tract_alone),
                        "{name} tract row {i}: batch {} vs alone {tract_alone}", reference[i]
                    );
                    prop_assert!(
                        close(dense[i], reference[i]),
                        "{name} row {i} {row:?}: dense {} vs tract {}", dense[i], reference[i]
                    );
                }
            }
            Ok(())
        })?;
    }
}

#[test]
fn the_default_cap_is_exact() {
    let cap = EngineConfig::default().max_batch;
    let g = golden();
    let row = &g.rows[0];
    for backend in [Backend::Auto, Backend::Tract] {
        let config = EngineConfig { backend, ..EngineConfig::default() };
        let engine = Engine::load(F32_MODEL, config).expect("loads");
        let at_cap: Vec<f32> = row.iter().copied().cycle().take(cap * F).collect();
        let scores = engine.score(&at_cap).expect("a full batch scores");
        assert_eq!(scores.len(), cap);
        let alone = engine.score(row).expect("scores")[0];
        assert!(scores.iter().all(|s| close(*s, alone)), "{backend:?}: a full batch row differs");
        let over: Vec<f32> = row.iter().copied().cycle().take((cap + 1) * F).collect();
        let err = engine.score(&over).expect_err("one past the cap is refused");
        assert_eq!(err, EngineError::BatchTooLarge { rows: cap + 1, max: cap });
        assert_eq!(err.code(), "BATCH_TOO_LARGE");
    }
}

#[test]
fn an_empty_slot_and_a_loaded_slot_answer_typed() {
    let mut slot = ModelSlot::new();
    assert_eq!(slot.score(&[0.0; F]).map_err(|e| e.code()), Err("NOT_LOADED"));
    slot.load(INT8_MODEL, EngineConfig::default()).expect("loads");
    assert_eq!(slot.score(&[f32::NAN; F]).map_err(|e| e.code()), Err("NON_FINITE"));
    assert_eq!(slot.score(&[0.0; F + 1]).map_err(|e| e.code()), Err("WRONG_LENGTH"));
    assert_eq!(slot.score(&[0.0; F]).map(|s| s.len()), Ok(1));
}
