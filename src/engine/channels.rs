//! Naming the sensor behind a score: a model's input columns grouped into channels (the
//! sensors of its metadata), and each channel's part in one reading's score.
//!
//! A tabular model has one column per sensor. A window model's columns are one sensor's recent
//! readings, named `value[t-15]` … `value[t-0]`: the part in brackets is dropped, so they sum to
//! the channel `value` (its range guard's share goes to the channel too when the model has one
//! sensor; with several it is a channel of its own, [`GUARD_CHANNEL`]).
//!
//! Two ways to share a score out, [`Attribution`]: where a model with one column per sensor and
//! known training statistics can be searched, [`Engine::repair`] (how much of the score goes
//! when one sensor alone is repaired) names the faulty sensor far more often than the error
//! terms, which smear a fault over the sensors the model has learnt move with it; elsewhere the
//! error terms of [`Engine::explain`].

use serde::{Deserialize, Serialize};

use super::{Axis, Engine, EngineError};

/// The channel a multi-sensor window model's range guard is reported as.
pub const GUARD_CHANNEL: &str = "(range)";

/// How a reading's score was shared out between channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Attribution {
    /// Each channel's [`Engine::repair`] share, scaled to sum to 1.
    Repair,
    /// Each channel's squared reconstruction error (and guard term) over the score.
    Terms,
}

/// One channel and its share of a score.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChannelShare {
    /// The channel's name (a feature name from the model's metadata).
    pub channel: String,
    /// Its share, in `[0, 1]`.
    #[serde(with = "edge_wire::double::f32_serde")]
    pub share: f32,
}

/// The channels of one reading's score, largest share first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contributions {
    /// How the shares were computed.
    pub method: Attribution,
    /// The channels, largest share first; their shares sum to 1 (or to less when only the
    /// largest are kept, see [`Contributions::top`]).
    pub channels: Vec<ChannelShare>,
}

impl Contributions {
    /// The same with only the `k` largest shares kept.
    pub fn top(mut self, k: usize) -> Contributions {
        self.channels.truncate(k);
        self
    }
}

/// A model's columns as channels, and how to search them.
#[derive(Clone, Debug, PartialEq)]
pub struct ChannelMap {
    names: Vec<String>,
    /// The channel of each column.
    of_column: Vec<usize>,
    /// One search axis per column, where each channel is one column and the training
    /// statistics are known.
    axes: Option<Vec<Axis>>,
}

impl ChannelMap {
    /// Channels from the feature names (one per column) and, when known, each column's training
    /// mean and standard deviation.
    pub fn new(features: &[String], stats: Option<(&[f32], &[f32])>) -> ChannelMap {
        let mut names: Vec<String> = Vec::new();
        let mut of_column = Vec::with_capacity(features.len());
        for feature in features {
            let name = channel_of(feature);
            let at = names.iter().position(|n| n == name).unwrap_or_else(|| {
                names.push(name.to_owned());
                names.len() - 1
            });
            of_column.push(at);
        }
        let axes = match stats {
            Some((mean, std))
                if names.len() == features.len()
                    && mean.len() == features.len()
                    && std.len() == features.len()
                    && mean.iter().chain(std).all(|v| v.is_finite()) =>
            {
                Some(
                    mean.iter()
                        .zip(std)
                        .map(|(&centre, &spread)| Axis { centre, spread })
                        .collect(),
                )
            }
            _ => None,
        };
        ChannelMap { names, of_column, axes }
    }

    /// Input columns the map was made for.
    pub fn columns(&self) -> usize {
        self.of_column.len()
    }

    /// The channel names, in column order of first appearance.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// One reading's channels and shares, largest first.
    pub fn contributions(
        &self,
        engine: &Engine,
        row: &[f32],
    ) -> Result<Contributions, EngineError> {
        if engine.features() != self.columns() {
            return Err(EngineError::Unexplained(format!(
                "the metadata names {} columns, the model reads {}",
                self.columns(),
                engine.features()
            )));
        }
        if let Some(axes) = &self.axes {
            let drops = engine.repair(row, axes)?;
            let total: f32 = drops.iter().sum();
            if total > 0.0 {
                let shares = drops.iter().map(|d| d / total);
                return Ok(self.ranked(Attribution::Repair, shares.collect(), 0.0));
            }
        }
        let explained = engine.explain(row)?;
        let (shares, guard) = explained
            .row(0)
            .ok_or_else(|| EngineError::Inference("the engine explained no reading".into()))?;
        Ok(self.ranked(Attribution::Terms, shares.to_vec(), guard))
    }

    /// Column shares summed per channel (the guard's too), largest first; ties keep column
    /// order.
    fn ranked(&self, method: Attribution, columns: Vec<f32>, guard: f32) -> Contributions {
        let mut sums = vec![0f32; self.names.len()];
        for (&channel, share) in self.of_column.iter().zip(columns) {
            sums[channel] += share;
        }
        let mut channels: Vec<ChannelShare> = self
            .names
            .iter()
            .zip(sums)
            .map(|(name, share)| ChannelShare { channel: name.clone(), share })
            .collect();
        if guard > 0.0 {
            match &mut channels[..] {
                [only] => only.share += guard,
                _ => channels.push(ChannelShare { channel: GUARD_CHANNEL.into(), share: guard }),
            }
        }
        for c in &mut channels {
            c.share = c.share.clamp(0.0, 1.0);
        }
        channels.sort_by(|a, b| b.share.total_cmp(&a.share));
        Contributions { method, channels }
    }
}

/// `value` for a window column `value[t-3]`; any other name as it is.
fn channel_of(feature: &str) -> &str {
    match feature.strip_suffix(']').and_then(|f| f.rsplit_once('[')) {
        Some((name, lag)) if !name.is_empty() && lag.starts_with('t') => name,
        _ => feature,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn window_columns_are_one_channel_per_sensor() {
        let map = ChannelMap::new(&names(&["temp[t-2]", "temp[t-1]", "temp[t-0]"]), None);
        assert_eq!(map.names(), ["temp"]);
        let two = ChannelMap::new(&names(&["a[t-1]", "b[t-1]", "a[t-0]", "b[t-0]", "c"]), None);
        assert_eq!(two.names(), ["a", "b", "c"]);
        assert_eq!(two.of_column, [0, 1, 0, 1, 2]);
        // Brackets that are not a lag stay part of the name.
        assert_eq!(channel_of("flow[l/min]"), "flow[l/min]");
        assert_eq!(channel_of("[t-1]"), "[t-1]");
    }

    #[test]
    fn shares_are_summed_per_channel_and_ranked() {
        let map = ChannelMap::new(&names(&["a[t-1]", "b[t-1]", "a[t-0]", "b[t-0]"]), None);
        let c = map.ranked(Attribution::Terms, vec![0.1, 0.3, 0.2, 0.1], 0.3);
        let got: Vec<(&str, f32)> =
            c.channels.iter().map(|c| (c.channel.as_str(), c.share)).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0].0, "b");
        assert!((got[0].1 - 0.4).abs() < 1e-6);
        assert_eq!(got[1].0, "a");
        assert_eq!(got[2].0, GUARD_CHANNEL);
        let one = ChannelMap::new(&names(&["v[t-1]", "v[t-0]"]), None);
        let c = one.ranked(Attribution::Terms, vec![0.2, 0.3], 0.5);
        assert_eq!(c.channels, vec![ChannelShare { channel: "v".into(), share: 1.0 }]);
        assert_eq!(c.clone().top(0).channels, vec![]);
    }

    #[test]
    fn repair_needs_one_column_per_channel_and_finite_statistics() {
        let (mean, std) = ([0.0f32, 1.0], [1.0f32, 2.0]);
        let tabular = ChannelMap::new(&names(&["a", "b"]), Some((&mean, &std)));
        assert!(tabular.axes.is_some());
        let window = ChannelMap::new(&names(&["a[t-1]", "a[t-0]"]), Some((&mean, &std)));
        assert!(window.axes.is_none());
        let nan = [0.0f32, f32::NAN];
        assert!(ChannelMap::new(&names(&["a", "b"]), Some((&nan, &std))).axes.is_none());
        assert!(ChannelMap::new(&names(&["a", "b"]), Some((&mean[..1], &std))).axes.is_none());
    }
}
