//! What each input column contributes to a score.
//!
//! A model's score is `s = (1/F) Σ_j t_j + g`: `t_j` the squared reconstruction error of column
//! `j` (in the model's own space — the normalised input for the pipeline's models, the raw input
//! for models whose output is the reconstruction), `g` the range guard's term where the graph has
//! one (0 otherwise). Column `j`'s share is `t_j / (F s)` and the guard's `g / s`, so a reading's
//! shares sum to 1; a score of 0 has no shares (all 0).
//!
//! The dense kernel keeps the `t_j` it already computes. For tract (the general engine),
//! `general::TermsPlan` is a second plan of the same graph with the `t_j` tensor — the input of
//! the `ReduceMean` that averages the reconstruction error — as an extra output, built the first
//! time it is needed.

/// Scores of a batch with each reading's shares.
#[derive(Clone, Debug, PartialEq)]
pub struct Explained {
    /// One score per reading, the same as [`super::Engine::score`] gives.
    pub scores: Vec<f32>,
    /// Input columns per reading (`F`).
    pub columns: usize,
    /// `F` shares per reading, row-major: column `j`'s part of the score, in `[0, 1]`.
    pub shares: Vec<f32>,
    /// One per reading: the range guard's part of the score (0 for models without one).
    pub guard: Vec<f32>,
}

impl Explained {
    /// Reading `i`'s column shares and guard share.
    pub fn row(&self, i: usize) -> Option<(&[f32], f32)> {
        let shares = self.shares.get(i * self.columns..(i + 1) * self.columns)?;
        Some((shares, *self.guard.get(i)?))
    }
}

/// Writes `t_j / (F s)` for each of the first `F` `terms` into `row` and returns the guard's
/// share `guard / s` (everything 0 when `s` is not a positive number).
pub(crate) fn normalise(
    score: f32,
    features: usize,
    terms: impl Iterator<Item = f32>,
    guard: f32,
    row: &mut [f32],
) -> f32 {
    if !(score > 0.0 && score.is_finite()) {
        row.fill(0.0);
        return 0.0;
    }
    let scale = 1.0 / (features as f32 * score);
    for (slot, t) in row.iter_mut().zip(terms) {
        *slot = (t * scale).clamp(0.0, 1.0);
    }
    (guard / score).clamp(0.0, 1.0)
}
