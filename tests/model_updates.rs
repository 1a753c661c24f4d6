//! A host's model state through a release's life: the bundled model, an upgrade, refusals
//! (tampered, untrusted key, older version) that leave the active model scoring, a manual
//! rollback, a restart that restores what was active, and the watch rolling back a release that
//! flags everything. The packages are signed fixtures (`tests/fixtures/releases/`).
#![cfg(not(target_arch = "wasm32"))] // native; the browser runs tests/e2e/model_update.test.mjs
#![allow(clippy::expect_used, reason = "a failed expectation is the test failure")]

use std::path::Path;

use edge_anomaly::update::{trusted_keys, InstallKind, ModelFiles, Models, Outcome};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn package(dir: &str) -> (Vec<u8>, ModelFiles) {
    let dir = Path::new(ROOT).join(dir);
    let read = |name: &str| std::fs::read(dir.join(name)).expect(name);
    let files = ["metadata.json", "golden.json", "model.int8.onnx"]
        .iter()
        .map(|n| (n.to_string(), read(n)))
        .collect();
    (read("model.sig"), files)
}

fn install(models: &mut Models, dir: &str, kind: InstallKind) -> Result<String, String> {
    let (bundle, files) = package(dir);
    let keys = trusted_keys().expect("keys");
    models
        .install_package(&bundle, &files, &keys, kind, 0.0)
        .map(|m| m.version)
        .map_err(|e| format!("{}:{}", e.code(), e.detail_code()))
}

fn version(models: &Models) -> String {
    models.version().expect("a model is active")
}

fn score(models: &Models) -> f32 {
    models.slot().score(&[50.0, 0.0, 80.0, 0.0, 40.0, 2.0, 40.0, 45.0, 5.0]).expect("scores")[0]
}

const BUNDLED: &str = "models/shuttle";
const V2: &str = "tests/fixtures/releases/2.0.0";

#[test]
fn upgrades_refusals_rollback_and_restore() {
    let mut m = Models::default();
    assert_eq!(install(&mut m, BUNDLED, InstallKind::Update).expect("bundled"), "1.0.0+8d0b1cd9");
    assert!(m.previous().is_none(), "nothing to roll back to yet");
    assert!(m.consider("2.0.0+8d0b1cd9", 0.0), "newer: download it");
    assert!(!m.consider("1.0.0+other", 0.0), "another build of the active release");
    assert!(!m.consider("0.9.0", 0.0) && !m.consider("0.9.0", 0.0), "older, refused once");
    let refusals: Vec<_> = m.events().into_iter().filter(|e| e.kind == "refused").collect();
    assert_eq!(refusals.len(), 1, "{refusals:?}");
    assert_eq!(refusals[0].code, "MODEL_NOT_NEWER");

    assert_eq!(install(&mut m, V2, InstallKind::Update).expect("v2"), "2.0.0+8d0b1cd9");
    assert_eq!(m.previous().expect("v1 kept").version, "1.0.0+8d0b1cd9");
    let v2_score = score(&m);

    // Each refusal names its reason and leaves v2 scoring.
    let mut tampered = package(V2);
    if let Some(model) = tampered.1.get_mut("model.int8.onnx") {
        model[200] ^= 0x40;
    }
    let keys = trusted_keys().expect("keys");
    let err = m.install_package(&tampered.0, &tampered.1, &keys, InstallKind::Update, 0.0);
    assert_eq!(err.map_err(|e| e.code()).err(), Some("MODEL_FILE_DIGEST"));
    let untrusted = install(&mut m, "tests/fixtures/releases/3.0.0-untrusted", InstallKind::Update);
    assert_eq!(untrusted, Err("MODEL_SIGNATURE:untrusted_key".into()));
    let older = install(&mut m, "tests/fixtures/releases/0.9.0", InstallKind::Update);
    assert_eq!(older, Err("MODEL_NOT_NEWER:MODEL_NOT_NEWER".into()), "refused when offered anyway");
    assert_eq!((version(&m), score(&m)), ("2.0.0+8d0b1cd9".into(), v2_score));
    let codes: Vec<String> = m.events().iter().map(|e| format!("{}:{}", e.kind, e.code)).collect();
    assert_eq!(
        codes,
        [
            "activated:ACTIVATED",
            "refused:MODEL_NOT_NEWER",
            "activated:ACTIVATED",
            "refused:MODEL_FILE_DIGEST",
            "refused:MODEL_SIGNATURE:untrusted_key",
            "refused:MODEL_NOT_NEWER"
        ]
    );
    assert!(!m.consider("3.0.0+8d0b1cd9", 0.0), "a refused release is not downloaded again");

    // The user rolls back to v1; v2 is not offered again by the channel.
    assert!(m.roll_back("asked for", "ROLLBACK_MANUAL", 0.0));
    assert_eq!(version(&m), "1.0.0+8d0b1cd9");
    assert!(!m.consider("2.0.0+8d0b1cd9", 0.0), "rolled back from: not offered again");
    assert!(!m.roll_back("again", "ROLLBACK_MANUAL", 0.0), "one step back only");
    // An older release by name, as a rollback, is accepted.
    assert_eq!(
        install(&mut m, "tests/fixtures/releases/0.9.0", InstallKind::Rollback).expect("0.9"),
        "0.9.0+8d0b1cd9"
    );

    // After a restart the host restores what it had active, whatever its version.
    let mut restarted = Models::default();
    install(&mut restarted, BUNDLED, InstallKind::Update).expect("bundled");
    let restored = install(&mut restarted, "tests/fixtures/releases/0.9.0", InstallKind::Restore);
    assert_eq!(restored.expect("restore"), "0.9.0+8d0b1cd9");
    assert_eq!(restarted.events().last().map(|e| e.kind), Some("restored"));
}

#[test]
fn the_watch_rolls_back_a_release_that_flags_everything() {
    let mut m = Models::default();
    install(&mut m, BUNDLED, InstallKind::Update).expect("bundled");
    let v4 = install(&mut m, "tests/fixtures/releases/4.0.0-oversensitive", InstallKind::Update);
    assert_eq!(v4.expect("passes every check: its golden scores are right"), "4.0.0+8d0b1cd9");
    let mut rolled_back = None;
    for i in 0..1_000 {
        let s = score(&m);
        let flagged = s > m.threshold();
        let outcome: Outcome<'_> = (Some(s), None, flagged);
        if let Some(reason) = m.observe(&[outcome], 0.0) {
            rolled_back = Some((i, reason));
            break;
        }
    }
    let (at, reason) = rolled_back.expect("rolled back");
    assert_eq!(at + 1, 200, "after the watch window");
    assert!(reason.contains("anomaly rate 100.0%"), "{reason}");
    assert_eq!(version(&m), "1.0.0+8d0b1cd9");
    assert_eq!(m.events().last().map(|e| e.code.as_str()), Some("ROLLBACK_WATCH"));
}

#[test]
fn an_engine_error_on_a_new_model_rolls_back_at_once_and_unscored_inputs_do_not() {
    let mut m = Models::default();
    install(&mut m, BUNDLED, InstallKind::Update).expect("bundled");
    install(&mut m, V2, InstallKind::Update).expect("v2");
    assert_eq!(
        m.observe(&[(None, Some("NON_FINITE"), false)], 0.0),
        None,
        "a NaN input says nothing"
    );
    let reason = m.observe(&[(None, Some("INFERENCE"), false)], 0.0).expect("rolled back");
    assert!(reason.contains("INFERENCE"), "{reason}");
    assert_eq!(version(&m), "1.0.0+8d0b1cd9");
}

#[test]
fn the_telemetry_counts_every_kind_of_event() {
    let mut m = Models::default();
    install(&mut m, BUNDLED, InstallKind::Update).expect("bundled");
    install(&mut m, V2, InstallKind::Update).expect("v2");
    install(&mut m, "tests/fixtures/releases/3.0.0-untrusted", InstallKind::Update)
        .expect_err("untrusted");
    m.roll_back("asked for", "ROLLBACK_MANUAL", 0.0);
    let t = m.telemetry();
    assert_eq!(
        (t.active.as_deref(), t.activations, t.refusals, t.rollbacks),
        (Some("1.0.0+8d0b1cd9"), 2, 1, 1)
    );
    assert_eq!(t.last_event.as_deref(), Some("rolled_back ROLLBACK_MANUAL 1.0.0+8d0b1cd9"));
}
