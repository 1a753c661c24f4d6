//! The dense path's arithmetic: an MLP autoencoder's layers and its score, four readings at a
//! time.
//!
//! Activations move between layers as *broadcast lanes*: feature `k` of a reading is stored as
//! an [`F4`] holding that value in all four lanes, which is exactly what the next layer multiplies
//! a packed weight row by. A layer therefore reads one broadcast and `C` weight vectors per input
//! feature and does `R × C` multiply-adds on them (`R` readings, `C` groups of four outputs),
//! keeping `R × C` accumulators in registers; the broadcasts are made once, when a layer writes
//! its outputs, not in the inner loop. The last layer never writes its outputs: it subtracts the
//! normalised input and accumulates squares in place, so the reconstruction is never stored.

use super::lanes::{pack, F4};

/// Readings per tile; the tail of a batch goes one reading at a time.
pub(super) const TILE: usize = 4;

/// One dense layer `y = x · W + b` (optionally followed by `Relu`), packed for the kernel.
#[derive(Clone, Debug)]
pub(super) struct Layer {
    /// Input width `K`.
    pub inputs: usize,
    /// Output width `N`.
    pub outputs: usize,
    /// `ceil(N / 4)`: output lane groups per weight row.
    pub groups: usize,
    /// `K` rows of `groups` vectors; lanes past `N` are zero.
    pub weights: Vec<F4>,
    /// `groups` vectors; lanes past `N` are zero.
    pub bias: Vec<F4>,
    /// Whether `Relu` follows the affine map.
    pub relu: bool,
}

impl Layer {
    /// Packs a row-major `[K, N]` weight matrix and an `N`-long bias.
    pub fn new(inputs: usize, outputs: usize, weights: &[f32], bias: &[f32], relu: bool) -> Layer {
        let groups = outputs.div_ceil(4);
        Layer {
            inputs,
            outputs,
            groups,
            weights: weights.chunks_exact(outputs).flat_map(pack).collect(),
            bias: pack(bias).collect(),
            relu,
        }
    }

    /// Runs the layer on `R` readings: `input` holds `R × K` broadcasts, `output` receives
    /// `R × N` broadcasts.
    #[inline(always)]
    pub fn forward<const R: usize>(&self, input: &[F4], output: &mut [F4]) {
        let mut g = 0;
        // One reading has few independent sums: take four output groups at a time so the adds
        // do not wait on each other. Four readings already give eight.
        if R == 1 {
            while g + 4 <= self.groups {
                let acc = self.block::<R, 4>(input, g);
                self.emit(&acc, g, output);
                g += 4;
            }
        }
        while g + 2 <= self.groups {
            let acc = self.block::<R, 2>(input, g);
            self.emit(&acc, g, output);
            g += 2;
        }
        if g < self.groups {
            let acc = self.block::<R, 1>(input, g);
            self.emit(&acc, g, output);
        }
    }

    /// Runs the layer as the reconstruction of `R` readings and adds each reading's squared
    /// error against `target` (`R × groups` packed vectors, zero past `N`) into `squares`.
    ///
    /// With `KEEP`, each output's squared error is also written to `terms` (`R × groups` packed
    /// vectors, laid out like `target`); without it `terms` is not touched and may be empty.
    #[inline(always)]
    pub fn squared_error<const R: usize, const KEEP: bool>(
        &self,
        input: &[F4],
        target: &[F4],
        squares: &mut [F4; R],
        terms: &mut [F4],
    ) {
        let mut g = 0;
        while g + 2 <= self.groups {
            let acc = self.block::<R, 2>(input, g);
            self.accumulate::<R, 2, KEEP>(&acc, g, target, squares, terms);
            g += 2;
        }
        if g < self.groups {
            let acc = self.block::<R, 1>(input, g);
            self.accumulate::<R, 1, KEEP>(&acc, g, target, squares, terms);
        }
    }

    /// `R × C` accumulators: output groups `g..g + C` of `R` readings.
    #[inline(always)]
    fn block<const R: usize, const C: usize>(&self, input: &[F4], g: usize) -> [[F4; C]; R] {
        let k = self.inputs;
        let mut acc = [[F4::zero(); C]; R];
        for row in acc.iter_mut() {
            row.copy_from_slice(&self.bias[g..g + C]);
        }
        // Exact-length views, so indexing by `kk < k` needs no bounds checks in the loop.
        let rows: [&[F4]; R] = std::array::from_fn(|r| &input[r * k..(r + 1) * k]);
        let weights = &self.weights[..k * self.groups];
        for (kk, w_row) in (0..k).zip(weights.chunks_exact(self.groups)) {
            // A fixed-size array: the compiler keeps the C weight vectors in registers.
            let Ok(w) = <&[F4; C]>::try_from(&w_row[g..g + C]) else { continue };
            for r in 0..R {
                let x = rows[r][kk];
                for c in 0..C {
                    acc[r][c] = x.mul_add(w[c], acc[r][c]);
                }
            }
        }
        if self.relu {
            for row in acc.iter_mut() {
                for v in row.iter_mut() {
                    *v = v.relu();
                }
            }
        }
        acc
    }

    /// Writes accumulators as broadcasts for the next layer.
    #[inline(always)]
    fn emit<const R: usize, const C: usize>(
        &self,
        acc: &[[F4; C]; R],
        g: usize,
        output: &mut [F4],
    ) {
        let n = self.outputs;
        for (r, row) in acc.iter().enumerate() {
            let out = &mut output[r * n..(r + 1) * n];
            for (c, v) in row.iter().enumerate() {
                let first = 4 * (g + c);
                for (l, b) in v.broadcasts().into_iter().enumerate() {
                    if let Some(slot) = out.get_mut(first + l) {
                        *slot = b;
                    }
                }
            }
        }
    }

    /// Adds `(acc - target)²` into `squares` (and, with `KEEP`, stores it in `terms`).
    #[inline(always)]
    fn accumulate<const R: usize, const C: usize, const KEEP: bool>(
        &self,
        acc: &[[F4; C]; R],
        g: usize,
        target: &[F4],
        squares: &mut [F4; R],
        terms: &mut [F4],
    ) {
        for (r, row) in acc.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                let at = r * self.groups + g + c;
                let d = v.sub(target[at]);
                if KEEP {
                    if let Some(slot) = terms.get_mut(at) {
                        *slot = d.mul_add(d, F4::zero());
                    }
                }
                squares[r] = d.mul_add(d, squares[r]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3→5 layer against the plain formula, for one reading and a tile of four.
    #[test]
    fn layer_matches_the_formula() {
        let (k, n) = (3, 5);
        let w: Vec<f32> = (0..k * n).map(|i| (i as f32 - 7.0) * 0.25).collect();
        let b: Vec<f32> = (0..n).map(|i| i as f32 - 2.0).collect();
        let layer = Layer::new(k, n, &w, &b, true);
        let xs: Vec<[f32; 3]> =
            vec![[1.0, -2.0, 0.5], [0.0, 0.0, 0.0], [3.0, 1.0, -1.0], [-1.0, 2.0, 4.0]];
        let expected: Vec<Vec<f32>> = xs
            .iter()
            .map(|x| {
                (0..n)
                    .map(|j| (b[j] + (0..k).map(|i| x[i] * w[i * n + j]).sum::<f32>()).max(0.0))
                    .collect()
            })
            .collect();
        let input: Vec<F4> = xs.iter().flat_map(|x| x.map(F4::splat)).collect();
        let mut out = vec![F4::zero(); 4 * n];
        layer.forward::<4>(&input, &mut out);
        let got: Vec<f32> = out.iter().map(|v| v.to_array()[0]).collect();
        let flat: Vec<f32> = expected.concat();
        for (g, e) in got.iter().zip(&flat) {
            assert!((g - e).abs() < 1e-6, "{got:?} vs {flat:?}");
        }
        let mut one = vec![F4::zero(); n];
        layer.forward::<1>(&input[..k], &mut one);
        assert_eq!(one.iter().map(|v| v.to_array()[0]).collect::<Vec<_>>(), got[..n]);
        assert!(out.iter().all(|v| v.to_array().iter().all(|l| *l == v.to_array()[0])));
    }
}
