//! Release versions and the anti-downgrade rule.
//!
//! Versions are `MAJOR.MINOR.PATCH` with optional `+build` metadata (the pipeline appends the
//! model's hash prefix). As in SemVer, build metadata does not order releases: two builds of the
//! same `MAJOR.MINOR.PATCH` are the same release, so neither upgrades the other.

use std::cmp::Ordering;
use std::fmt;

use super::error::UpdateError;

/// A parsed release version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    /// `(MAJOR, MINOR, PATCH)`.
    pub release: (u64, u64, u64),
    /// The `+build` part, if any (not ordered).
    pub build: Option<String>,
}

impl Version {
    /// Parses `MAJOR.MINOR.PATCH[+build]`.
    pub fn parse(text: &str) -> Result<Version, UpdateError> {
        let bad = || UpdateError::BadVersion(text.to_owned());
        let (core, build) = match text.split_once('+') {
            Some((core, build)) if !build.is_empty() => (core, Some(build.to_owned())),
            Some(_) => return Err(bad()),
            None => (text, None),
        };
        let mut parts = core.split('.').map(|p| {
            if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            p.parse::<u64>().map_err(|_| bad())
        });
        let (Some(major), Some(minor), Some(patch), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        Ok(Version { release: (major?, minor?, patch?), build })
    }

    /// Release order, build metadata ignored.
    pub fn cmp_release(&self, other: &Version) -> Ordering {
        self.release.cmp(&other.release)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (a, b, c) = self.release;
        write!(f, "{a}.{b}.{c}")?;
        match &self.build {
            Some(build) => write!(f, "+{build}"),
            None => Ok(()),
        }
    }
}

/// May a release `offered` replace the `active` model? Only a newer release, unless
/// `rollback` is asked for (then any other release that parses). No active model: anything.
pub fn check_upgrade(
    active: Option<&str>,
    offered: &str,
    rollback: bool,
) -> Result<(), UpdateError> {
    let offered_v = Version::parse(offered)?;
    let Some(active) = active else { return Ok(()) };
    let Ok(active_v) = Version::parse(active) else { return Ok(()) };
    if rollback || offered_v.cmp_release(&active_v) == Ordering::Greater {
        return Ok(());
    }
    Err(UpdateError::NotNewer { offered: offered.to_owned(), active: active.to_owned() })
}

#[cfg(test)]
#[allow(clippy::expect_used, reason = "a failed expectation is the test failure")]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order_by_release_only() {
        let v = |s: &str| Version::parse(s).expect(s);
        assert_eq!(v("1.0.0+8d0b1cd9").release, (1, 0, 0));
        assert_eq!(v("1.0.0+8d0b1cd9").to_string(), "1.0.0+8d0b1cd9");
        assert_eq!(v("1.10.0").cmp_release(&v("1.9.9")), Ordering::Greater);
        assert_eq!(v("2.0.0+a").cmp_release(&v("2.0.0+b")), Ordering::Equal);
        for bad in ["", "1", "1.0", "1.0.0.0", "1.0.x", "1.0.0+", "-1.0.0", "1..0", "v1.0.0"] {
            assert!(Version::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_newer_releases_upgrade_unless_rolling_back() {
        let cases = [
            (Some("1.0.0+a"), "2.0.0+b", false, true),
            (Some("2.0.0+a"), "2.0.0+b", false, false),
            (Some("2.0.0"), "1.0.0", false, false),
            (Some("2.0.0"), "1.0.0", true, true),
            (None, "0.1.0", false, true),
        ];
        for (active, offered, rollback, ok) in cases {
            let result = check_upgrade(active, offered, rollback);
            assert_eq!(result.is_ok(), ok, "{active:?} -> {offered} rollback={rollback}");
            if let Err(e) = result {
                assert_eq!(e.code(), "MODEL_NOT_NEWER");
            }
        }
        assert_eq!(check_upgrade(None, "nope", false).map_err(|e| e.code()), Err("MODEL_VERSION"));
    }
}
