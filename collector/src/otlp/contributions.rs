//! A flagged reading's top contributing channels: `edge.contributions.channels` and
//! `edge.contributions.shares`, read as one list and refused whole when it is not sound.
//!
//! The two attributes are one fact written as two parallel arrays, so they are checked together:
//! both or neither; the same length, 1 to [`MAX_CONTRIBUTIONS`] entries; each channel a
//! non-empty name of at most [`MAX_CHANNEL_BYTES`]; each share a finite number in `[0, 1]`; the
//! shares summing to at most 1 (within [`SHARE_SUM_TOLERANCE`], as the device rounds each share
//! on its own). Only a scored record may carry them: an unscored reading has no score to
//! explain.
//!
//! Unlike the other `edge.*` attributes, a mistyped one is not kept among the leftovers: half
//! an explanation stored as if the device had sent none would mislead whoever reads it, so the
//! record is refused with a [`ContributionError`] and reported in `partialSuccess`.

use edge_wire::attr;
use serde_json::{json, Value as Json};

use super::attributes::Attributes;
use super::limits::{MAX_CHANNEL_BYTES, MAX_CONTRIBUTIONS};

/// How far the shares may sum above 1 (each share is rounded on the device).
pub const SHARE_SUM_TOLERANCE: f64 = 1e-3;

/// One channel's share of a flagged reading's anomaly score.
#[derive(Debug, Clone, PartialEq)]
pub struct Contribution {
    /// The channel: a sensor name from the model's metadata.
    pub channel: String,
    /// Its share of the score, in `[0, 1]`.
    pub share: f64,
}

/// Why a record's contributions are refused (the record is refused with them).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ContributionError {
    /// One of the two attributes came without the other.
    #[error("{present} without {missing}")]
    Unpaired {
        /// The attribute sent.
        present: &'static str,
        /// The one missing.
        missing: &'static str,
    },
    /// An attribute is not an arrayValue of the type it must hold.
    #[error("{key} is not an arrayValue of {expected}")]
    Mistyped {
        /// The attribute.
        key: &'static str,
        /// The element type it must hold (`stringValue` or `doubleValue`).
        expected: &'static str,
    },
    /// The two arrays differ in length.
    #[error("edge.contributions: {channels} channels but {shares} shares")]
    Unequal {
        /// Entries of `edge.contributions.channels`.
        channels: usize,
        /// Entries of `edge.contributions.shares`.
        shares: usize,
    },
    /// No entry, or more than [`MAX_CONTRIBUTIONS`].
    #[error("edge.contributions: {0} entries, expected 1 to {MAX_CONTRIBUTIONS}")]
    Count(usize),
    /// A channel name is empty or longer than [`MAX_CHANNEL_BYTES`].
    #[error("edge.contributions: channel {index} is empty or over {MAX_CHANNEL_BYTES} bytes")]
    Channel {
        /// Its position in the list.
        index: usize,
    },
    /// A share is not finite or lies outside `[0, 1]`.
    #[error("edge.contributions: share {index} ({value}) is not a number in [0, 1]")]
    Share {
        /// Its position in the list.
        index: usize,
        /// The share as sent.
        value: f64,
    },
    /// The shares sum to more than 1 (beyond [`SHARE_SUM_TOLERANCE`]).
    #[error("edge.contributions: the shares sum to {0}, more than 1")]
    Sum(f64),
    /// The record is unscored: it has no score to explain.
    #[error("edge.contributions on an unscored record")]
    Unscored,
}

/// Takes both attributes off a record (whatever their values) and checks them; `Ok(None)` when
/// the record carries neither.
pub(crate) fn take(
    attrs: &mut Attributes,
    scored: bool,
) -> Result<Option<Vec<Contribution>>, ContributionError> {
    const CHANNELS: &str = attr::CONTRIBUTION_CHANNELS;
    const SHARES: &str = attr::CONTRIBUTION_SHARES;
    let (channels, shares) = match (attrs.take_any(CHANNELS), attrs.take_any(SHARES)) {
        (None, None) => return Ok(None),
        (Some(_), None) => {
            return Err(ContributionError::Unpaired { present: CHANNELS, missing: SHARES })
        }
        (None, Some(_)) => {
            return Err(ContributionError::Unpaired { present: SHARES, missing: CHANNELS })
        }
        (Some(channels), Some(shares)) => (channels, shares),
    };
    if !scored {
        return Err(ContributionError::Unscored);
    }
    let channels = channels
        .strings()
        .ok_or(ContributionError::Mistyped { key: CHANNELS, expected: "stringValue" })?;
    let shares = shares
        .doubles()
        .ok_or(ContributionError::Mistyped { key: SHARES, expected: "doubleValue" })?;
    pair(channels, shares).map(Some)
}

/// The checked list of `channels[i]` with `shares[i]`.
fn pair(channels: Vec<String>, shares: Vec<f64>) -> Result<Vec<Contribution>, ContributionError> {
    if channels.len() != shares.len() {
        return Err(ContributionError::Unequal { channels: channels.len(), shares: shares.len() });
    }
    if !(1..=MAX_CONTRIBUTIONS).contains(&channels.len()) {
        return Err(ContributionError::Count(channels.len()));
    }
    if let Some(index) = channels.iter().position(|c| c.is_empty() || c.len() > MAX_CHANNEL_BYTES) {
        return Err(ContributionError::Channel { index });
    }
    if let Some((index, &value)) =
        shares.iter().enumerate().find(|(_, s)| !(0.0..=1.0).contains(*s))
    {
        return Err(ContributionError::Share { index, value });
    }
    let sum: f64 = shares.iter().sum();
    if sum > 1.0 + SHARE_SUM_TOLERANCE {
        return Err(ContributionError::Sum(sum));
    }
    Ok(channels
        .into_iter()
        .zip(shares)
        .map(|(channel, share)| Contribution { channel, share })
        .collect())
}

/// The stored form: `[{"channel": "f3", "share": 0.71}, …]`, in the device's order.
pub fn to_json(list: &[Contribution]) -> String {
    Json::Array(list.iter().map(|c| json!({"channel": c.channel, "share": c.share})).collect())
        .to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Channels, shares, and the length of the checked list or the refusal.
    type Case = (Vec<String>, Vec<f64>, Result<usize, ContributionError>);

    fn names(n: usize) -> Vec<String> {
        (1..=n).map(|i| format!("f{i}")).collect()
    }

    #[test]
    fn table_of_lists() {
        use ContributionError as E;
        let long = "x".repeat(MAX_CHANNEL_BYTES);
        let cases: Vec<Case> = vec![
            (names(3), vec![0.5, 0.3, 0.2], Ok(3)),
            (names(1), vec![1.0], Ok(1)),
            (names(2), vec![0.0, 0.0], Ok(2)),
            (names(3), vec![0.5, 0.3, 0.2005], Ok(3)),
            (vec![long.clone()], vec![0.5], Ok(1)),
            (names(MAX_CONTRIBUTIONS), vec![0.05; MAX_CONTRIBUTIONS], Ok(MAX_CONTRIBUTIONS)),
            (names(3), vec![0.5, 0.3], Err(E::Unequal { channels: 3, shares: 2 })),
            (vec![], vec![], Err(E::Count(0))),
            (
                names(MAX_CONTRIBUTIONS + 1),
                vec![0.01; MAX_CONTRIBUTIONS + 1],
                Err(E::Count(MAX_CONTRIBUTIONS + 1)),
            ),
            (vec!["f1".into(), String::new()], vec![0.5, 0.5], Err(E::Channel { index: 1 })),
            (vec![format!("{long}x")], vec![0.5], Err(E::Channel { index: 0 })),
            (names(2), vec![0.5, 1.5], Err(E::Share { index: 1, value: 1.5 })),
            (names(2), vec![-0.1, 0.5], Err(E::Share { index: 0, value: -0.1 })),
            (names(1), vec![f64::INFINITY], Err(E::Share { index: 0, value: f64::INFINITY })),
            (names(3), vec![0.6, 0.3, 0.2], Err(E::Sum(0.6 + 0.3 + 0.2))),
        ];
        for (channels, shares, expected) in cases {
            let got = pair(channels.clone(), shares.clone()).map(|list| list.len());
            assert_eq!(got, expected, "{channels:?} {shares:?}");
        }
        let nan = pair(names(1), vec![f64::NAN]).unwrap_err();
        assert!(matches!(nan, E::Share { index: 0, value } if value.is_nan()), "{nan}");
    }

    #[test]
    fn stored_form_keeps_the_order() {
        let list = pair(vec!["f3".into(), "f1".into()], vec![0.71, 0.2]).unwrap();
        assert_eq!(
            to_json(&list),
            r#"[{"channel":"f3","share":0.71},{"channel":"f1","share":0.2}]"#
        );
    }
}
