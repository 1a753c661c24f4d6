//! The range guard's tail in the graph: `u`, the guard's last layer output, bounded per channel
//! (`Clip`, or `Max` and `Min` by constants), the excess over the bounds squared and averaged,
//! then added to the reconstruction error.
//!
//! Read together with `models/edge_pipeline/guard.py`, which exports it: there the guard's
//! layers compute a window's level, newest reading and roughness, scaled so that the bounds are
//! their training range (or `[0, 0]` for a term that always counts). The matcher does not care
//! what the layers compute, only that the score adds `mean((u − clamp(u, lo, hi))²)`.

use super::{no, Matcher, NotDense};

impl<'g> Matcher<'g> {
    /// Matches the bounds of `u` (`width` channels), `u − bounded` (either order), its square
    /// and its mean over the channel axis; returns the per-channel `lo`, `hi` and the mean.
    pub(super) fn range_excess(
        &mut self,
        u: &'g str,
        width: usize,
    ) -> Result<(Vec<f32>, Vec<f32>, &'g str), NotDense> {
        let g = self.graph;
        let readers = self.consumers_of(u);
        let wrong = || no("the guard output must feed its bounds and the excess Sub only");
        let [a, b] = readers[..] else { return Err(wrong()) };
        if a == usize::MAX || b == usize::MAX {
            return Err(wrong());
        }
        let (first, sub) = if g.node[a].op_type == "Sub" { (b, a) } else { (a, b) };
        let (mut lo, mut hi) = (vec![f32::NEG_INFINITY; width], vec![f32::INFINITY; width]);
        // One Clip, or up to one Max and one Min in either order.
        let (mut value, mut at, mut steps) = (u, first, 0);
        while at != sub {
            let n = &g.node[at];
            if steps == 2 || n.input.first().map(String::as_str) != Some(value) {
                return Err(no("the guard's bounds are not Clip, Max or Min of its output"));
            }
            match n.op_type.as_str() {
                "Clip" if steps == 0 => {
                    let bound = |k: usize| -> Result<Option<f32>, NotDense> {
                        n.input.get(k).filter(|s| !s.is_empty()).map(|s| self.scalar(s)).transpose()
                    };
                    if let Some(l) = bound(1)? {
                        lo.fill(l);
                    }
                    if let Some(h) = bound(2)? {
                        hi.fill(h);
                    }
                    steps = 2;
                }
                "Max" | "Min" if n.input.len() == 2 && n.input[1] != value => {
                    let c = self.broadcast(&n.input[1], width)?;
                    let target = if n.op_type == "Max" { &mut lo } else { &mut hi };
                    if target.iter().any(|v| v.is_finite()) {
                        return Err(no("the guard bounds one side twice"));
                    }
                    *target = c;
                    steps += 1;
                }
                op => return Err(no(format!("{op} where the guard's bounds were expected"))),
            }
            self.used[at] = true;
            value = &n.output[0];
            at = self.single_consumer(value)?;
        }
        if lo.iter().zip(&hi).any(|(l, h)| l.is_nan() || h.is_nan() || l > h) {
            return Err(no("the guard's bounds are empty"));
        }
        let s = &g.node[sub];
        let operands_ok = s.input.len() == 2
            && ((s.input[0] == u && s.input[1] == value)
                || (s.input[0] == value && s.input[1] == u));
        if steps == 0 || !operands_ok {
            return Err(no("the guard's excess is not u minus its bounded value"));
        }
        self.used[sub] = true;
        let squared = self.square(self.single_consumer(&s.output[0])?)?;
        let mean = self.mean_over_features(self.single_consumer(squared)?)?;
        Ok((lo, hi, mean))
    }

    /// The `Add` of `a` and `b`, each read by it alone; returns its output.
    pub(super) fn sum_of(&mut self, a: &'g str, b: &'g str) -> Result<&'g str, NotDense> {
        let at = self.single_consumer(a)?;
        let n = &self.graph.node[at];
        let pair = n.input.len() == 2
            && ((n.input[0] == a && n.input[1] == b) || (n.input[0] == b && n.input[1] == a));
        if n.op_type != "Add" || !pair || self.only_consumer(b) != Some(at) {
            return Err(no("the reconstruction and range errors are not added"));
        }
        self.used[at] = true;
        Ok(&n.output[0])
    }
}
