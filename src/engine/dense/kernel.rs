//! The dense path's arithmetic: an MLP autoencoder's layers and its score, four readings at a
//! time.
//!
//! Activations move between layers as plain `f32`s, *reading-interleaved*: for a tile of `R`
//! readings, value `k` of reading `r` sits at `k * R + r`, so the `R` values one weight row
//! multiplies are adjacent. Each is loaded straight into all four lanes of an [`F4`] (one
//! `v128.load32_splat`, which needs no shuffle unit), and multiplied by `C` packed weight vectors
//! (`C` groups of four outputs), giving `R × C` multiply-adds on `R + C` loads with `R × C`
//! accumulators in registers. A layer writes its outputs back interleaved, transposing each
//! 4 × 4 block of results (eight shuffles for sixteen values). The last layer never writes its
//! outputs: it subtracts the normalised input and accumulates squares in place, so the
//! reconstruction is never stored.
//!
//! Weights are packed in column blocks of [`PAIR`] output groups (the last block may hold one):
//! `K` rows of the block's vectors, contiguous, so the inner loop walks two arrays in step and
//! has no bounds checks or index arithmetic.

use super::lanes::{pack, transpose, F4};

/// Readings per tile; the tail of a batch goes one reading at a time.
pub(super) const TILE: usize = 4;

/// Output groups per weight block. With `TILE = 4` that is 8 accumulators; with the 2 weight
/// vectors and the 4 broadcasts (LLVM loads all six before the first multiply) and a product, 15
/// values are live in the inner loop: what V8 can keep in SIMD registers on x86-64 (xmm0–xmm14;
/// xmm15 is its scratch). Wider blocks, or two rows per trip, spill and ran slower
/// (BENCHMARKS.md, "The dense kernel, round three").
const PAIR: usize = 2;

/// Room for `n` values of `readings` readings in an interleaved activation buffer: layers write
/// whole groups of four outputs, so `n` is rounded up to a multiple of four.
pub(super) fn room(n: usize, readings: usize) -> usize {
    n.next_multiple_of(4) * readings
}

/// One dense layer `y = x · W + b` (optionally followed by `Relu`), packed for the kernel.
#[derive(Clone, Debug)]
pub(super) struct Layer {
    /// Input width `K`.
    pub inputs: usize,
    /// Output width `N`.
    pub outputs: usize,
    /// `ceil(N / 4)`: output lane groups.
    pub groups: usize,
    /// Column blocks of `PAIR` groups (the last one may be narrower), one after another: each
    /// holds `K` rows of its groups' vectors. Lanes past `N` are zero.
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
        let rows: Vec<Vec<F4>> = weights.chunks_exact(outputs).map(|r| pack(r).collect()).collect();
        let mut packed = Vec::with_capacity(inputs * groups);
        for first in (0..groups).step_by(PAIR) {
            let width = PAIR.min(groups - first);
            for row in &rows {
                packed.extend_from_slice(&row[first..first + width]);
            }
        }
        Layer { inputs, outputs, groups, weights: packed, bias: pack(bias).collect(), relu }
    }

    /// The weights of the column block starting at group `g` (`width` groups wide).
    #[inline(always)]
    fn columns(&self, g: usize, width: usize) -> &[F4] {
        let start = g * self.inputs;
        &self.weights[start..start + width * self.inputs]
    }

    /// Runs the layer on `R` readings: `input` holds their `K` values interleaved, `output`
    /// receives their `N` values interleaved (and zeros up to the next multiple of four).
    #[inline(always)]
    pub fn forward<const R: usize>(&self, input: &[f32], output: &mut [f32]) {
        let mut g = 0;
        // One reading has few independent sums: take two blocks at a time so the adds do not
        // wait on each other. Four readings already give eight.
        if R == 1 {
            while g + 2 * PAIR <= self.groups {
                let [a, b] = self.two_blocks(input, g);
                self.emit::<1, PAIR>(&a, g, output);
                self.emit::<1, PAIR>(&b, g + PAIR, output);
                g += 2 * PAIR;
            }
        }
        while g + PAIR <= self.groups {
            let acc = self.block::<R, PAIR>(input, g);
            self.emit(&acc, g, output);
            g += PAIR;
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
        input: &[f32],
        target: &[F4],
        squares: &mut [F4; R],
        terms: &mut [F4],
    ) {
        let mut g = 0;
        while g + PAIR <= self.groups {
            let acc = self.block::<R, PAIR>(input, g);
            self.accumulate::<R, PAIR, KEEP>(&acc, g, target, squares, terms);
            g += PAIR;
        }
        if g < self.groups {
            let acc = self.block::<R, 1>(input, g);
            self.accumulate::<R, 1, KEEP>(&acc, g, target, squares, terms);
        }
    }

    /// `R × C` accumulators: output groups `g..g + C` of `R` readings (`C` is the width of the
    /// block starting at `g`).
    #[inline(always)]
    fn block<const R: usize, const C: usize>(&self, input: &[f32], g: usize) -> [[F4; C]; R] {
        let k = self.inputs;
        let mut acc = [[F4::zero(); C]; R];
        let bias = self.bias.get(g..g + C).and_then(|b| <&[F4; C]>::try_from(b).ok());
        if let Some(bias) = bias {
            acc = [*bias; R];
        }
        let (xs, _) = input[..k * R].as_chunks::<R>();
        let (ws, _) = self.columns(g, C).as_chunks::<C>();
        for (x, w) in xs.iter().zip(ws) {
            for r in 0..R {
                let x = F4::splat(x[r]);
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

    /// One reading, the blocks at `g` and `g + PAIR` together: four independent sums.
    #[inline(always)]
    fn two_blocks(&self, input: &[f32], g: usize) -> [[[F4; PAIR]; 1]; 2] {
        let k = self.inputs;
        let mut acc = [[[F4::zero(); PAIR]; 1]; 2];
        for (h, acc) in acc.iter_mut().enumerate() {
            let from = g + h * PAIR;
            if let Some(bias) = self.bias.get(from..from + PAIR) {
                acc[0].copy_from_slice(bias);
            }
        }
        let (wa, _) = self.columns(g, PAIR).as_chunks::<PAIR>();
        let (wb, _) = self.columns(g + PAIR, PAIR).as_chunks::<PAIR>();
        for ((x, a), b) in input[..k].iter().zip(wa).zip(wb) {
            let x = F4::splat(*x);
            for c in 0..PAIR {
                acc[0][0][c] = x.mul_add(a[c], acc[0][0][c]);
                acc[1][0][c] = x.mul_add(b[c], acc[1][0][c]);
            }
        }
        if self.relu {
            for v in acc.iter_mut().flatten().flatten() {
                *v = v.relu();
            }
        }
        acc
    }

    /// Writes accumulators back interleaved: value `n` of reading `r` at `n * R + r`.
    #[inline(always)]
    fn emit<const R: usize, const C: usize>(
        &self,
        acc: &[[F4; C]; R],
        g: usize,
        output: &mut [f32],
    ) {
        for c in 0..C {
            let at = 4 * (g + c) * R;
            let Some(out) = output.get_mut(at..at + 4 * R) else { continue };
            if R == 1 {
                out.copy_from_slice(&acc[0][c].to_array());
            } else if R == 4 {
                // Lane l of reading r goes to 4 l + r: a 4 × 4 transpose.
                let t = transpose([acc[0][c], acc[1][c], acc[2][c], acc[3][c]]);
                for (slot, v) in out.chunks_exact_mut(4).zip(t) {
                    slot.copy_from_slice(&v.to_array());
                }
            } else {
                for (r, row) in acc.iter().enumerate() {
                    for (l, v) in row[c].to_array().into_iter().enumerate() {
                        out[l * R + r] = v;
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

    /// Layers of several widths (one, two and five output groups) against the plain formula,
    /// for one reading and a tile of four, with the output written interleaved and padded.
    #[test]
    fn layer_matches_the_formula() {
        for (k, n) in [(3, 5), (9, 20), (7, 4), (2, 17)] {
            let w: Vec<f32> = (0..k * n).map(|i| ((i * 7 % 23) as f32 - 11.0) * 0.25).collect();
            let b: Vec<f32> = (0..n).map(|i| i as f32 - 2.0).collect();
            let layer = Layer::new(k, n, &w, &b, true);
            let xs: Vec<Vec<f32>> =
                (0..4).map(|r| (0..k).map(|i| ((r * k + i) % 5) as f32 - 2.0).collect()).collect();
            let expected: Vec<Vec<f32>> = xs
                .iter()
                .map(|x| {
                    (0..n)
                        .map(|j| (b[j] + (0..k).map(|i| x[i] * w[i * n + j]).sum::<f32>()).max(0.0))
                        .collect()
                })
                .collect();
            let input: Vec<f32> = (0..k * 4).map(|i| xs[i % 4][i / 4]).collect();
            let mut out = vec![f32::NAN; room(n, 4)];
            layer.forward::<4>(&input, &mut out);
            for (r, e) in expected.iter().enumerate() {
                for (j, e) in e.iter().enumerate() {
                    let got = out[j * 4 + r];
                    assert!(
                        (got - e).abs() < 1e-5,
                        "k={k} n={n} reading {r} output {j}: {got} vs {e}"
                    );
                }
                assert!((n..room(n, 1)).all(|j| out[j * 4 + r] == 0.0), "padding k={k} n={n}");
            }
            for (r, x) in xs.iter().enumerate() {
                let mut one = vec![f32::NAN; room(n, 1)];
                layer.forward::<1>(x, &mut one);
                let four: Vec<f32> = (0..room(n, 1)).map(|j| out[j * 4 + r]).collect();
                assert_eq!(one, four, "k={k} n={n} reading {r}");
            }
        }
    }
}
