//! Every engine error variant, and every way a model can break the contract, gives its typed
//! error (never a panic).
#![cfg(not(target_arch = "wasm32"))] // native; the browser runs tests/web_*.rs
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

mod common;
#[path = "common/onnx_bytes.rs"]
mod onnx_bytes;

use common::{F32_MODEL, INT8_MODEL};
use edge_anomaly::engine::ContractViolation as CV;
use edge_anomaly::engine::ModelLimits;
use edge_anomaly::{Engine, EngineConfig, EngineError, ModelSlot};

fn load(bytes: &[u8]) -> Result<Engine, EngineError> {
    Engine::load(bytes, EngineConfig::default())
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_fixture_base_model_is_valid() {
    // Guards the contract tests below: they fail for their one defect, not a broken base.
    let e = load(&fixture("valid_mean.onnx")).expect("valid fixture loads");
    assert_eq!(e.features(), 4);
    assert_eq!(e.score(&[1.0, 2.0, 3.0, 6.0, 0.0, 0.0, 0.0, 4.0]).expect("scores"), vec![3.0, 1.0]);
}

type IsExpected = fn(&CV) -> bool;

#[test]
fn contract_violations_are_named() {
    let cases: &[(&str, IsExpected)] = &[
        ("two_inputs.onnx", |v| matches!(v, CV::InputCount(2))),
        ("two_outputs.onnx", |v| matches!(v, CV::OutputCount(2))),
        ("int_input.onnx", |v| matches!(v, CV::InputType(_))),
        ("rank3_input.onnx", |v| matches!(v, CV::InputShape(_))),
        ("dynamic_features.onnx", |v| matches!(v, CV::FeatureAxis(_))),
        ("output_rank2.onnx", |v| matches!(v, CV::OutputShape(_))),
        ("output_int.onnx", |v| matches!(v, CV::OutputType(_))),
        ("output_per_feature.onnx", |v| matches!(v, CV::OutputShape(_))),
    ];
    for (name, expected) in cases {
        match load(&fixture(name)) {
            Err(EngineError::Contract(v)) => {
                assert!(expected(&v), "{name}: wrong violation {v:?}");
                assert_eq!(EngineError::Contract(v).code(), "MODEL_CONTRACT");
            }
            other => panic!("{name}: expected a contract violation, got {other:?}"),
        }
    }
}

#[test]
fn garbage_and_truncated_models_fail_to_parse() {
    let truncated = &INT8_MODEL[..INT8_MODEL.len() / 2];
    for (what, bytes) in
        [("empty", &[][..]), ("text", b"not a model".as_slice()), ("truncated", truncated)]
    {
        match load(bytes) {
            Err(e @ EngineError::Parse(_)) => assert_eq!(e.code(), "MODEL_PARSE"),
            other => panic!("{what}: expected Parse, got {other:?}"),
        }
    }
}

#[test]
fn scoring_input_errors() {
    let e = load(F32_MODEL).expect("loads");
    let f = e.features();
    let row = vec![0.5f32; f];
    assert_eq!(e.score(&[]), Err(EngineError::WrongLength { len: 0, features: f }));
    assert_eq!(e.score(&row[..f - 1]), Err(EngineError::WrongLength { len: f - 1, features: f }));
    let mut two = [row.clone(), row.clone()].concat();
    two.push(1.0);
    assert_eq!(e.score(&two), Err(EngineError::WrongLength { len: 2 * f + 1, features: f }));
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut rows = [row.clone(), row.clone()].concat();
        rows[f + 3] = bad;
        let err = e.score(&rows).expect_err("non-finite rejected");
        assert_eq!(err, EngineError::NonFinite { row: 1, column: 3 });
        assert_eq!(err.code(), "NON_FINITE");
    }
}

#[test]
fn batch_cap_is_configurable_and_enforced() {
    let e = Engine::load(INT8_MODEL, EngineConfig { max_batch: 3, ..EngineConfig::default() })
        .expect("loads");
    let f = e.features();
    assert_eq!(e.score(&vec![1.0; 3 * f]).expect("at the cap").len(), 3);
    let err = e.score(&vec![1.0; 4 * f]).expect_err("over the cap");
    assert_eq!(err, EngineError::BatchTooLarge { rows: 4, max: 3 });
    assert_eq!(err.code(), "BATCH_TOO_LARGE");
    assert!(matches!(
        Engine::load(INT8_MODEL, EngineConfig { max_batch: 0, ..EngineConfig::default() }),
        Err(EngineError::InvalidConfig(_))
    ));
}

#[test]
fn model_caps_refuse_large_models_before_building_them() {
    let limits = |f: fn(&mut ModelLimits)| {
        let mut limits = ModelLimits::default();
        f(&mut limits);
        EngineConfig { limits, ..EngineConfig::default() }
    };
    let len = INT8_MODEL.len();
    let at_cap = limits(|l| l.max_bytes = INT8_MODEL.len());
    Engine::load(INT8_MODEL, at_cap).expect("a model at the byte cap loads");
    let err = Engine::load(INT8_MODEL, limits(|l| l.max_bytes = 1024)).expect_err("bytes");
    assert_eq!(err, EngineError::ModelTooLarge { bytes: len, max: 1024 });
    assert_eq!(err.code(), "MODEL_TOO_LARGE");

    let err = Engine::load(INT8_MODEL, limits(|l| l.max_nodes = 3)).expect_err("nodes");
    assert!(
        matches!(err, EngineError::GraphTooLarge { what: "nodes", count, max: 3 } if count > 3),
        "{err:?}"
    );
    assert_eq!(err.code(), "GRAPH_TOO_LARGE");
    let err = Engine::load(INT8_MODEL, limits(|l| l.max_parameters = 100)).expect_err("params");
    assert!(
        matches!(err, EngineError::GraphTooLarge { what: "parameters", count, max: 100 } if count > 100),
        "{err:?}"
    );
    // The shipped models sit far inside the defaults.
    Engine::load(INT8_MODEL, EngineConfig::default()).expect("default caps");
}

#[test]
fn a_hostile_declared_shape_counts_as_too_many_parameters() {
    // The valid mean model plus an unused initializer declaring 2^40 floats with no data.
    use onnx_bytes::{attr_int, attr_ints, initializer, model, node, value_info, Dim, FLOAT};
    let bytes = model(
        &[node("ReduceMean", &["x"], &["y"], &[attr_ints("axes", &[1]), attr_int("keepdims", 0)])],
        &[initializer("w", FLOAT, &[1 << 20, 1 << 20], &[])],
        &[value_info("x", FLOAT, &[Dim::Param("N"), Dim::Value(4)])],
        &[value_info("y", FLOAT, &[Dim::Param("N")])],
    );
    let err = Engine::load(&bytes, EngineConfig::default()).expect_err("refused");
    assert_eq!(err.code(), "GRAPH_TOO_LARGE", "{err}");
}

#[test]
fn empty_slot_reports_not_loaded_and_failed_load_keeps_the_old_model() {
    let mut slot = ModelSlot::new();
    let err = slot.score(&[1.0; 9]).expect_err("empty");
    assert_eq!(err, EngineError::NotLoaded);
    assert_eq!(err.code(), "NOT_LOADED");

    slot.load(INT8_MODEL, EngineConfig::default()).expect("loads");
    let before = slot.score(&[1.0; 9]).expect("scores");
    assert!(slot.load(b"tampered", EngineConfig::default()).is_err());
    assert_eq!(slot.score(&[1.0; 9]).expect("old model still active"), before);

    slot.unload();
    assert_eq!(slot.score(&[1.0; 9]), Err(EngineError::NotLoaded));
}

#[test]
fn every_error_code_is_distinct() {
    let all = [
        EngineError::Parse(String::new()),
        EngineError::Contract(CV::InputCount(0)),
        EngineError::Optimize(String::new()),
        EngineError::InvalidConfig(String::new()),
        EngineError::WrongLength { len: 0, features: 1 },
        EngineError::NonFinite { row: 0, column: 0 },
        EngineError::BatchTooLarge { rows: 2, max: 1 },
        EngineError::ModelTooLarge { bytes: 2, max: 1 },
        EngineError::GraphTooLarge { what: "nodes", count: 2, max: 1 },
        EngineError::OutputLength { len: 0, rows: 1 },
        EngineError::NotLoaded,
        EngineError::Inference(String::new()),
    ];
    let mut codes: Vec<_> = all.iter().map(EngineError::code).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), all.len());
}

#[test]
fn score_into_checks_the_output_buffer_and_reuses_state_across_shapes() {
    let e = Engine::load(INT8_MODEL, EngineConfig::default()).expect("loads");
    let f = e.features();
    let rows: Vec<f32> = (0..3 * f).map(|i| i as f32 * 0.25).collect();
    let err = e.score_into(&rows, &mut [0.0; 2]).expect_err("2 slots for 3 readings");
    assert_eq!(err, EngineError::OutputLength { len: 2, rows: 3 });
    assert_eq!(err.code(), "OUTPUT_LENGTH");
    // One persistent state serves every batch size in turn, with the same results as a fresh
    // engine would give.
    let mut three = [0.0; 3];
    e.score_into(&rows, &mut three).expect("3 rows");
    let mut one = [0.0; 1];
    e.score_into(&rows[f..2 * f], &mut one).expect("1 row");
    // (1-row and 3-row calls may take different kernels: equal up to float rounding.)
    assert!((one[0] - three[1]).abs() <= 1e-6 + 1e-4 * three[1].abs(), "{one:?} vs {three:?}");
    let fresh = Engine::load(INT8_MODEL, EngineConfig::default()).expect("loads");
    assert_eq!(fresh.score(&rows).expect("scores"), three.to_vec());
}
