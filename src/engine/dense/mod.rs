//! The dense path: MLP autoencoders scored without walking tract's plan.
//!
//! tract runs any ONNX graph; for the one family this product ships (per-feature
//! normalisation, dense layers with `Relu`, mean squared reconstruction error) most of a call's
//! time goes to tract dispatching ~15 nodes, and batches run tract's generic matmul packing on
//! very narrow layers. [`DensePlan`] recognises that family in the ONNX graph
//! ([`pattern`]) and computes it with one fused kernel ([`kernel`]) in wasm SIMD: four readings
//! at a time, weights packed once at load, no allocation per call.
//!
//! With tract in the build, the engine only switches to this path after the two agree on probe
//! readings (see `Engine::load`), and anything the pattern does not cover runs through tract
//! unchanged. The small build without tract runs this path alone.

mod kernel;
mod lanes;
mod pattern;
#[cfg(all(test, feature = "tract"))]
mod tests;

use std::cell::RefCell;

use kernel::{room, Layer, TILE};
use lanes::{pack, F4};
pub use pattern::NotDense;
pub(crate) use pattern::{recognize, Pre, Recipe};

/// A recognised model, packed for the kernel.
#[derive(Clone, Debug)]
pub(crate) struct DensePlan {
    features: usize,
    pre: Vec<Pre>,
    layers: Vec<Layer>,
    guard: Option<Guard>,
    /// The widest activation (input or any layer output, the guard's included).
    widest: usize,
    scratch: RefCell<Scratch>,
}

/// The range guard, packed: its layers and the bounds its output channels should stay in.
#[derive(Clone, Debug)]
struct Guard {
    layers: Vec<Layer>,
    lo: Vec<f32>,
    hi: Vec<f32>,
}

/// Per-call working memory, kept between calls.
#[derive(Clone, Debug)]
struct Scratch {
    /// Activations of a tile, interleaved (see [`kernel`]), ping-ponged between layers (`c` for
    /// the guard's).
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
    /// The normalised input of a tile, packed four features to a vector.
    target: Vec<F4>,
    /// One normalised reading.
    row: Vec<f32>,
    /// Each output's squared error of a tile, laid out like `target` (kept when explaining).
    terms: Vec<F4>,
}

impl DensePlan {
    /// Packs a recognised recipe.
    pub fn new(recipe: Recipe) -> DensePlan {
        let pack_all = |layers: &[pattern::DenseLayer]| -> Vec<Layer> {
            layers
                .iter()
                .map(|l| Layer::new(l.inputs, l.outputs, &l.weights, &l.bias, l.relu))
                .collect()
        };
        let layers = pack_all(&recipe.layers);
        let guard = recipe.guard.map(|g| Guard { layers: pack_all(&g.layers), lo: g.lo, hi: g.hi });
        let guard_layers = guard.iter().flat_map(|g| &g.layers);
        let widest = layers
            .iter()
            .chain(guard_layers)
            .map(|l| l.outputs)
            .chain([recipe.features])
            .max()
            .unwrap_or(0);
        let scratch = RefCell::new(Scratch::new(widest, recipe.features));
        DensePlan { features: recipe.features, pre: recipe.pre, layers, guard, widest, scratch }
    }

    /// Number of dense layers.
    pub fn layers(&self) -> usize {
        self.layers.len()
    }

    /// Scores `rows` (already validated: a whole number of finite readings) into `out`.
    pub fn score_into(&self, rows: &[f32], out: &mut [f32]) {
        match self.scratch.try_borrow_mut() {
            Ok(mut s) => self.score_with(&mut s, rows, out),
            // Only reachable by re-entrant use; fresh memory is always correct.
            Err(_) => self.score_with(&mut Scratch::new(self.widest, self.features), rows, out),
        }
    }

    /// Scores `rows` into `out` and writes each reading's shares (see [`crate::engine::Explained`]):
    /// `shares` holds one per input column of each reading, `guard` one per reading.
    pub fn explain_into(
        &self,
        rows: &[f32],
        out: &mut [f32],
        shares: &mut [f32],
        guard: &mut [f32],
    ) {
        match self.scratch.try_borrow_mut() {
            Ok(mut s) => self.explain_with(&mut s, rows, out, shares, guard),
            // Only reachable by re-entrant use; fresh memory is always correct.
            Err(_) => {
                let mut fresh = Scratch::new(self.widest, self.features);
                self.explain_with(&mut fresh, rows, out, shares, guard);
            }
        }
    }

    fn explain_with(
        &self,
        s: &mut Scratch,
        rows: &[f32],
        out: &mut [f32],
        shares: &mut [f32],
        guard: &mut [f32],
    ) {
        let f = self.features;
        let per_tile = rows.chunks(TILE * f).zip(out.chunks_mut(TILE));
        let per_tile = per_tile.zip(shares.chunks_mut(TILE * f).zip(guard.chunks_mut(TILE)));
        for ((tile, scores), (shares, guard)) in per_tile {
            if scores.len() == TILE {
                self.tile::<TILE, true>(s, tile, scores, shares, guard);
            } else {
                let rows = tile.chunks_exact(f).zip(scores.iter_mut());
                let outs = shares.chunks_exact_mut(f).zip(guard.iter_mut());
                for ((row, score), (shares, guard)) in rows.zip(outs) {
                    let (score, guard) = (std::slice::from_mut(score), std::slice::from_mut(guard));
                    self.tile::<1, true>(s, row, score, shares, guard);
                }
            }
        }
    }

    fn score_with(&self, s: &mut Scratch, rows: &[f32], out: &mut [f32]) {
        let f = self.features;
        let mut tiles = rows.chunks_exact(TILE * f);
        let mut outs = out.chunks_exact_mut(TILE);
        for (tile, scores) in (&mut tiles).zip(&mut outs) {
            self.tile::<TILE, false>(s, tile, scores, &mut [], &mut []);
        }
        for (row, score) in tiles.remainder().chunks_exact(f).zip(outs.into_remainder()) {
            self.tile::<1, false>(s, row, std::slice::from_mut(score), &mut [], &mut []);
        }
    }

    /// Scores `R` readings; with `KEEP`, also writes their column and guard shares.
    #[inline(always)]
    fn tile<const R: usize, const KEEP: bool>(
        &self,
        s: &mut Scratch,
        rows: &[f32],
        scores: &mut [f32],
        shares: &mut [f32],
        guard_shares: &mut [f32],
    ) {
        let f = self.features;
        let groups = f.div_ceil(4);
        for (r, raw) in rows.chunks_exact(f).enumerate() {
            s.row.copy_from_slice(raw);
            for step in &self.pre {
                apply(step, &mut s.row);
            }
            for (slot, v) in s.a.iter_mut().skip(r).step_by(R).zip(&s.row) {
                *slot = *v;
            }
            for (slot, v) in s.target[r * groups..(r + 1) * groups].iter_mut().zip(pack(&s.row)) {
                *slot = v;
            }
        }
        let mut range_errors = [0f32; R];
        if let Some(guard) = &self.guard {
            guard.range_errors::<R>(&s.a[..R * f], &mut s.b, &mut s.c, &mut range_errors);
        }
        let Some((last, hidden)) = self.layers.split_last() else { return };
        let (mut input, mut output) = (&mut s.a, &mut s.b);
        for layer in hidden {
            layer.forward::<R>(&input[..R * layer.inputs], &mut output[..room(layer.outputs, R)]);
            std::mem::swap(&mut input, &mut output);
        }
        let mut squares = [F4::zero(); R];
        let target = &s.target[..R * groups];
        last.squared_error::<R, KEEP>(
            &input[..R * last.inputs],
            target,
            &mut squares,
            &mut s.terms,
        );
        for ((score, sq), range) in scores.iter_mut().zip(squares).zip(range_errors) {
            *score = sq.sum() / f as f32 + range;
        }
        if KEEP {
            for (r, (&score, range)) in scores.iter().zip(range_errors).enumerate() {
                let terms = s.terms[r * groups..(r + 1) * groups].iter().flat_map(|v| v.to_array());
                let (row, guard) = (&mut shares[r * f..(r + 1) * f], &mut guard_shares[r]);
                *guard = super::explain::normalise(score, f, terms, range, row);
            }
        }
    }
}

impl Guard {
    /// Runs the guard's layers on `R` readings (`input`: their normalised values, interleaved)
    /// and writes each reading's `mean((u − clamp(u, lo, hi))²)`; `a` and `b` are scratch.
    #[inline(always)]
    fn range_errors<const R: usize>(
        &self,
        input: &[f32],
        a: &mut [f32],
        b: &mut [f32],
        out: &mut [f32; R],
    ) {
        let Some(first) = self.layers.first() else { return };
        first.forward::<R>(input, &mut a[..room(first.outputs, R)]);
        let (mut from, mut to) = (a, b);
        for layer in &self.layers[1..] {
            layer.forward::<R>(&from[..R * layer.inputs], &mut to[..room(layer.outputs, R)]);
            std::mem::swap(&mut from, &mut to);
        }
        let width = self.layers.last().map_or(0, |l| l.outputs);
        for (r, slot) in out.iter_mut().enumerate() {
            let u = from.iter().skip(r).step_by(R).take(width).copied();
            let bounds = self.lo.iter().zip(&self.hi);
            let sum: f32 = u.zip(bounds).map(|(v, (lo, hi))| (v - clip(v, *lo, *hi)).powi(2)).sum();
            *slot = sum / width.max(1) as f32;
        }
    }
}

impl Scratch {
    fn new(widest: usize, features: usize) -> Scratch {
        Scratch {
            a: vec![0.0; room(widest, TILE)],
            b: vec![0.0; room(widest, TILE)],
            c: vec![0.0; room(widest, TILE)],
            target: vec![F4::zero(); TILE * features.div_ceil(4)],
            row: vec![0.0; features],
            terms: vec![F4::zero(); TILE * features.div_ceil(4)],
        }
    }
}

/// `v.max(lo).min(hi)`, NaN cases included (a NaN bound is ignored, a NaN value becomes the
/// bound), written as comparisons: wasm has no instruction for Rust's `f32::max` and `min` (its
/// own propagate NaN), so those compile to calls.
#[inline(always)]
fn clip(v: f32, lo: f32, hi: f32) -> f32 {
    let at_least = if v >= lo || lo.is_nan() { v } else { lo };
    if at_least <= hi || hi.is_nan() {
        at_least
    } else {
        hi
    }
}

/// One per-feature step on a normalised reading.
fn apply(step: &Pre, row: &mut [f32]) {
    match step {
        Pre::Add(c) => row.iter_mut().zip(c).for_each(|(v, c)| *v += c),
        Pre::Sub(c) => row.iter_mut().zip(c).for_each(|(v, c)| *v -= c),
        Pre::Mul(c) => row.iter_mut().zip(c).for_each(|(v, c)| *v *= c),
        Pre::Div(c) => row.iter_mut().zip(c).for_each(|(v, c)| *v /= c),
        Pre::Clip(lo, hi) => row.iter_mut().for_each(|v| *v = clip(*v, *lo, *hi)),
    }
}

#[cfg(test)]
mod clip_tests {
    use super::{apply, Pre};

    /// The clip step gives what `v.max(lo).min(hi)` gives, for NaN and infinite values and
    /// bounds too.
    #[test]
    fn clip_is_max_then_min() {
        let values = [-3.0, -1.0, 0.5, 1.0, 2.0, 7.5, f32::INFINITY, f32::NEG_INFINITY, f32::NAN];
        let bounds =
            [(-1.0, 2.0), (2.0, -1.0), (f32::NAN, 2.0), (-1.0, f32::NAN), (f32::NAN, f32::NAN)];
        for (lo, hi) in bounds {
            let mut row = values.to_vec();
            apply(&Pre::Clip(lo, hi), &mut row);
            for (got, v) in row.iter().zip(values) {
                let want = v.max(lo).min(hi);
                assert!(
                    *got == want || (got.is_nan() && want.is_nan()),
                    "{v} in [{lo}, {hi}]: {got} vs {want}"
                );
            }
        }
    }
}
