//! Record ids: `"{device_id}:{seq}"`, unique across devices and never reused.
//!
//! The device id is 32 hex digits from a cryptographic random source, so it never contains `:`;
//! the collector still splits at the *last* `:` so any device id it is sent parses the same way.

/// The id of record `seq` of `device_id`.
pub fn format(device_id: &str, seq: u64) -> String {
    format!("{device_id}:{seq}")
}

/// Splits an id into its device id and seq, or `None` when it has no `:` followed by an
/// unsigned integer.
pub fn parse(id: &str) -> Option<(&str, u64)> {
    let (device, seq) = id.rsplit_once(':')?;
    Some((device, seq.parse().ok()?))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_splits_at_the_last_colon() {
        assert_eq!(parse(&format("ab12", 7)), Some(("ab12", 7)));
        assert_eq!(parse("a:b:3"), Some(("a:b", 3)));
        assert_eq!(parse("nocolon"), None);
        assert_eq!(parse("dev:-1"), None);
        assert_eq!(parse("dev:x"), None);
        assert_eq!(parse(":0"), Some(("", 0)));
    }
}
