//! Which implementation scores a loaded model: the fused dense kernel when the graph is an MLP
//! autoencoder it covers *and* it agrees with tract on probe readings, tract otherwise.
//!
//! The check at load is cheap (one tract call and one dense call on a few dozen readings) and
//! turns a pattern-matching mistake into a slower engine instead of wrong scores. The build
//! without tract has only the kernel ([`dense_only`]); its check is the signed reference scores a
//! model package carries.

use crate::onnx::pb;

use super::dense::{self, DensePlan};
use super::EngineError;

/// Which scoring implementations the engine may use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Backend {
    /// The dense kernel where it applies and verifies, tract elsewhere (default).
    #[default]
    Auto,
    /// tract only (for comparison and as a reference).
    Tract,
}

/// What the engine chose at load, and why.
#[derive(Clone, Debug, PartialEq)]
pub enum Chosen {
    /// The dense kernel, with this many layers.
    Dense {
        /// Dense layers in the recognised autoencoder.
        layers: usize,
    },
    /// tract, and why not the dense kernel.
    Tract {
        /// Why the dense kernel is not used.
        reason: String,
    },
}

impl Chosen {
    /// `"dense"` or `"tract"`.
    pub fn name(&self) -> &'static str {
        match self {
            Chosen::Dense { .. } => "dense",
            Chosen::Tract { .. } => "tract",
        }
    }
}

/// The dense kernel for `proto`, or why the model needs the general engine.
pub(super) fn dense_only(
    backend: Backend,
    proto: &pb::ModelProto,
    features: usize,
) -> Result<(DensePlan, Chosen), EngineError> {
    if backend == Backend::Tract {
        return Err(EngineError::NeedsGeneralEngine("configured".into()));
    }
    let recipe = dense::recognize(proto, features)
        .map_err(|dense::NotDense(reason)| EngineError::NeedsGeneralEngine(reason))?;
    let plan = DensePlan::new(recipe);
    let layers = plan.layers();
    Ok((plan, Chosen::Dense { layers }))
}

/// Relative and absolute tolerance between the two implementations on probe readings: the
/// golden files' tolerance, which summation order alone stays far inside.
#[cfg(feature = "tract")]
const RTOL: f32 = 1e-3;
#[cfg(feature = "tract")]
const ATOL: f32 = 1e-5;

/// Probe readings: `features`-wide rows at several magnitudes (a model's inputs are raw sensor
/// values of any scale), deterministic so a load is reproducible.
#[cfg(feature = "tract")]
fn probe_rows(features: usize) -> Vec<f32> {
    let mut state: u32 = 0x9e37_79b9;
    let scales = [0.1f32, 1.0, 10.0, 100.0, 1000.0];
    (0..32 * features)
        .map(|i| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let unit = (state >> 8) as f32 / (1u32 << 24) as f32 * 2.0 - 1.0;
            unit * scales[(i / features) % scales.len()]
        })
        .collect()
}

/// Picks the implementation for `proto`; `tract_score` runs the model through tract.
#[cfg(feature = "tract")]
pub(super) fn choose(
    backend: Backend,
    proto: &pb::ModelProto,
    features: usize,
    tract_score: impl Fn(&[f32], &mut [f32]) -> Result<(), EngineError>,
) -> (Option<DensePlan>, Chosen) {
    let (plan, chosen) = match dense_only(backend, proto, features) {
        Ok(found) => found,
        Err(EngineError::NeedsGeneralEngine(reason)) => return (None, Chosen::Tract { reason }),
        Err(e) => return (None, Chosen::Tract { reason: e.to_string() }),
    };
    let rows = probe_rows(features);
    let n = rows.len() / features;
    let (mut want, mut got) = (vec![0f32; n], vec![0f32; n]);
    if let Err(e) = tract_score(&rows, &mut want) {
        return (None, Chosen::Tract { reason: format!("probe run failed: {e}") });
    }
    plan.score_into(&rows, &mut got);
    // Written so that a NaN on either side counts as a disagreement.
    let close = |g: f32, w: f32| (g - w).abs() <= ATOL + RTOL * w.abs();
    let off = got.iter().zip(&want).position(|(g, w)| !close(*g, *w));
    if let Some(i) = off {
        let reason =
            format!("dense kernel gave {} where tract gave {} (probe {i})", got[i], want[i]);
        return (None, Chosen::Tract { reason });
    }
    (Some(plan), chosen)
}
