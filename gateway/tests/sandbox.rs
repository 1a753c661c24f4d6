//! The sandboxed engine against the native one: the same scores and the same typed errors, and
//! the sandbox's own limits (fuel, memory) stopping a call without breaking the next.
//!
//! These tests need the built module: run `gateway/build-sandbox.sh` first (CI does), or point
//! `EDGE_SANDBOX_MODULE` at a build of it.

use std::sync::OnceLock;

use edge_anomaly::{Engine, EngineConfig};
use edge_gateway::sandbox::{Sandbox, SandboxError, SandboxLimits, SandboxModule};
use serde::Deserialize;

const F32_MODEL: &[u8] = include_bytes!("../../models/shuttle/model.f32.onnx");
const INT8_MODEL: &[u8] = include_bytes!("../../models/shuttle/model.int8.onnx");
const GOLDEN_JSON: &str = include_str!("../../models/shuttle/golden.json");

#[derive(Deserialize)]
struct Golden {
    rows: Vec<Vec<f32>>,
}

fn golden_rows() -> Vec<Vec<f32>> {
    match serde_json::from_str::<Golden>(GOLDEN_JSON) {
        Ok(g) => g.rows,
        Err(e) => panic!("golden.json does not parse: {e}"),
    }
}

/// The module, compiled once for the whole test binary (compiling is the slow part).
fn module() -> &'static SandboxModule {
    static MODULE: OnceLock<SandboxModule> = OnceLock::new();
    MODULE.get_or_init(|| {
        let path = Sandbox::default_module_path();
        let wasm = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "cannot read the sandbox module at {}: {e}. Build it with gateway/build-sandbox.sh \
                 (or set EDGE_SANDBOX_MODULE to its path).",
                path.display()
            )
        });
        SandboxModule::compile(&wasm).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    })
}

fn sandbox(model: &[u8], limits: SandboxLimits) -> Sandbox {
    Sandbox::with_module(module(), model, limits).unwrap_or_else(|e| panic!("sandbox: {e}"))
}

fn native(model: &[u8]) -> Engine {
    Engine::load(model, EngineConfig::default()).unwrap_or_else(|e| panic!("native: {e}"))
}

fn bits(v: &[f32]) -> Vec<u32> {
    v.iter().map(|x| x.to_bits()).collect()
}

/// Both engines run the same code: the dense kernel computes in the same order with separate
/// multiply and add roundings natively and in wasm SIMD, so the scores must be bit-identical,
/// one reading at a time and as one batch.
#[test]
fn golden_rows_score_bit_for_bit_like_the_native_engine() {
    let rows = golden_rows();
    for (name, model) in [("f32", F32_MODEL), ("int8", INT8_MODEL)] {
        let engine = native(model);
        let mut sandboxed = sandbox(model, SandboxLimits::default());
        assert_eq!(sandboxed.features(), engine.features(), "{name}: features");
        assert_eq!(sandboxed.max_rows(), engine.max_rows(), "{name}: max_rows");
        for (i, row) in rows.iter().enumerate() {
            let want = engine.score(row).unwrap_or_else(|e| panic!("{name} row {i}: {e}"));
            let got = sandboxed.score(row).unwrap_or_else(|e| panic!("{name} row {i}: {e}"));
            assert_eq!(bits(&got), bits(&want), "{name} row {i}: {got:?} vs native {want:?}");
        }
        let flat: Vec<f32> = rows.iter().flatten().copied().collect();
        let want = engine.score(&flat).unwrap_or_else(|e| panic!("{name} batch: {e}"));
        let got = sandboxed.score(&flat).unwrap_or_else(|e| panic!("{name} batch: {e}"));
        assert_eq!(bits(&got), bits(&want), "{name} batch");
    }
}

/// The defaults must leave the largest call the engine accepts well inside its budget.
#[test]
fn the_largest_batch_fits_the_default_limits_with_room() {
    let limits = SandboxLimits::default();
    let mut sandboxed = sandbox(F32_MODEL, limits);
    let load_fuel = sandboxed.fuel_used();
    assert!(load_fuel * 5 < limits.fuel_per_load, "load used {load_fuel} fuel");
    let big = golden_rows()[0].repeat(sandboxed.max_rows());
    let scores = sandboxed.score(&big).unwrap_or_else(|e| panic!("largest batch: {e}"));
    assert_eq!(scores.len(), sandboxed.max_rows());
    let fuel = sandboxed.fuel_used();
    assert!(fuel * 5 < limits.fuel_per_call, "largest batch used {fuel} fuel");
    assert!(
        sandboxed.memory_bytes() * 5 < limits.memory_bytes,
        "{} bytes",
        sandboxed.memory_bytes()
    );
}

#[test]
fn a_call_out_of_fuel_fails_and_the_next_call_works() {
    let row = &golden_rows()[0];
    let mut sandboxed = sandbox(F32_MODEL, SandboxLimits::default());
    let want = sandboxed.score(row).unwrap_or_else(|e| panic!("{e}"));

    sandboxed.set_fuel_per_call(1_000);
    let err = sandboxed.score(row).err();
    assert!(matches!(err, Some(SandboxError::Fuel { budget: 1_000 })), "{err:?}");
    assert_eq!(err.as_ref().map(SandboxError::code), Some("SANDBOX_FUEL"));
    assert_eq!(sandboxed.restarts(), 1, "the stopped guest is replaced");

    sandboxed.set_fuel_per_call(SandboxLimits::default().fuel_per_call);
    let got = sandboxed.score(row).unwrap_or_else(|e| panic!("after running out of fuel: {e}"));
    assert_eq!(bits(&got), bits(&want));
}

#[test]
fn a_memory_cap_below_the_module_fails_to_start_cleanly() {
    let limits = SandboxLimits { memory_bytes: 1 << 20, ..SandboxLimits::default() };
    let err = Sandbox::with_module(module(), F32_MODEL, limits).err();
    assert!(
        matches!(err, Some(SandboxError::Memory { limit, requested }) if limit == 1 << 20 && requested > limit),
        "{err:?}"
    );
}

#[test]
fn a_batch_beyond_the_memory_cap_fails_and_the_next_call_works() {
    let loaded = sandbox(F32_MODEL, SandboxLimits::default()).memory_bytes();
    // Room for small batches, not for the largest one (its readings alone are ~590 KB).
    let limits = SandboxLimits { memory_bytes: loaded + (256 << 10), ..SandboxLimits::default() };
    let mut sandboxed = sandbox(F32_MODEL, limits);
    let big = golden_rows()[0].repeat(sandboxed.max_rows());

    let err = sandboxed.score(&big).err();
    assert!(matches!(err, Some(SandboxError::Memory { .. })), "{err:?}");
    assert_eq!(err.as_ref().map(SandboxError::code), Some("SANDBOX_MEMORY"));

    let got = sandboxed.score(&golden_rows()[0]).unwrap_or_else(|e| panic!("after: {e}"));
    assert_eq!(got.len(), 1);
    assert_eq!(sandboxed.restarts(), 1);
}

/// A rejected request is the engine's answer, not a sandbox failure: same code, same message,
/// and the guest keeps running.
#[test]
fn refused_requests_carry_the_native_engine_error() {
    let engine = native(F32_MODEL);
    let mut sandboxed = sandbox(F32_MODEL, SandboxLimits::default());
    let row = golden_rows()[0].clone();
    let mut nan = row.clone();
    nan[3] = f32::NAN;
    let mut inf = row.repeat(2);
    inf[11] = f32::NEG_INFINITY;
    let too_many = row.repeat(engine.max_rows() + 1);
    let cases: [(&str, Vec<f32>, &str); 6] = [
        ("empty", vec![], "WRONG_LENGTH"),
        ("short", row[..5].to_vec(), "WRONG_LENGTH"),
        ("one and a half", [&row[..], &row[..4]].concat(), "WRONG_LENGTH"),
        ("NaN", nan, "NON_FINITE"),
        ("infinity", inf, "NON_FINITE"),
        ("too many", too_many, "BATCH_TOO_LARGE"),
    ];
    for (what, input, code) in cases {
        let want = engine.score(&input).err().unwrap_or_else(|| panic!("{what}: native accepts"));
        let got =
            sandboxed.score(&input).err().unwrap_or_else(|| panic!("{what}: sandbox accepts"));
        assert_eq!(want.code(), code, "{what}");
        assert_eq!(got.code(), code, "{what}: {got}");
        assert_eq!(got.to_string(), want.to_string(), "{what}");
    }
    assert_eq!(sandboxed.restarts(), 0, "engine refusals do not restart the guest");
    assert!(sandboxed.score(&row).is_ok());
}

#[test]
fn a_corrupt_model_is_a_typed_load_error() {
    let mut truncated = F32_MODEL[..F32_MODEL.len() / 2].to_vec();
    let mut flipped = F32_MODEL.to_vec();
    for b in flipped.iter_mut().take(64) {
        *b ^= 0xa5;
    }
    truncated.push(0xff);
    for (what, model) in
        [("garbage", b"not an onnx model".to_vec()), ("truncated", truncated), ("flipped", flipped)]
    {
        let want = Engine::load(&model, EngineConfig::default()).err();
        let want = want.unwrap_or_else(|| panic!("{what}: native loads it"));
        let got = Sandbox::with_module(module(), &model, SandboxLimits::default()).err();
        let got = got.unwrap_or_else(|| panic!("{what}: sandbox loads it"));
        assert!(matches!(got, SandboxError::Engine { .. }), "{what}: {got:?}");
        assert_eq!(got.code(), want.code(), "{what}: {got}");
    }
}

#[test]
fn bytes_that_are_not_the_module_are_refused() {
    let err = Sandbox::new(b"\0asm\x01\0\0\0garbage", F32_MODEL, SandboxLimits::default()).err();
    assert_eq!(err.as_ref().map(SandboxError::code), Some("SANDBOX_MODULE"), "{err:?}");
}
