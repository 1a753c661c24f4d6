//! The retry policy of the OTLP/HTTP spec: which answers are retried, and when.
//!
//! Network errors, timeouts, 429, 502, 503 and 504 are retryable, and so is a redirect (the
//! transport never follows one: a login page behind it must not acknowledge a batch). 401 and
//! 403 hold the queue until the credentials change: every batch would be refused the same way,
//! and dead-lettering them all would only move the whole queue aside. Any other non-2xx is
//! final (the batch is dead-lettered). A retry waits for the server's `Retry-After` when it
//! gives one (seconds, or an IMF-fixdate HTTP-date), and otherwise for an exponential backoff
//! with jitter; both are capped, and so is every stored wait (see [`RetryPolicy::max_wait_ms`]),
//! so neither a huge header nor a clock that jumps backwards can stall sending for long.
//! Everything here is a pure function of its inputs so each rule is tested without a clock.

use super::error::ConfigError;

/// Backoff parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Backoff after the first failure, before jitter.
    pub initial_backoff_ms: u64,
    /// Longest backoff, before jitter.
    pub max_backoff_ms: u64,
    /// Growth factor per failed attempt (at least 1).
    pub multiplier: f64,
    /// Fraction of the backoff that is randomized, in `[0, 1]`: the delay falls in
    /// `[nominal × (1 − jitter), nominal]`.
    pub jitter: f64,
    /// Longest `Retry-After` honoured; a longer one is cut to this.
    pub max_retry_after_ms: u64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            initial_backoff_ms: 1_000,
            max_backoff_ms: 5 * 60 * 1_000,
            multiplier: 2.0,
            jitter: 0.5,
            max_retry_after_ms: 60 * 60 * 1_000,
        }
    }
}

/// What to do with a batch after an HTTP answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disposition {
    /// 2xx: acknowledged, delete the records.
    Acknowledge,
    /// Retryable: keep the batch inflight and try again later.
    Retry,
    /// The credentials were refused: keep the batch inflight and hold the queue until they
    /// change.
    AuthNeeded,
    /// Final refusal: move the batch to the dead-letter store.
    DeadLetter,
}

/// Classifies an HTTP status per the OTLP/HTTP spec. A 2xx still has to carry an OTLP
/// response body to acknowledge (the syncer checks it with [`edge_wire::response::parse`]).
pub fn classify(status: u16) -> Disposition {
    match status {
        200..=299 => Disposition::Acknowledge,
        300..=399 | 429 | 502 | 503 | 504 => Disposition::Retry,
        401 | 403 => Disposition::AuthNeeded,
        _ => Disposition::DeadLetter,
    }
}

impl RetryPolicy {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.initial_backoff_ms == 0 {
            return Err(ConfigError::Retry("initial_backoff_ms must be at least 1"));
        }
        if self.max_backoff_ms < self.initial_backoff_ms {
            return Err(ConfigError::Retry("max_backoff_ms must be >= initial_backoff_ms"));
        }
        if !(self.multiplier >= 1.0 && self.multiplier.is_finite()) {
            return Err(ConfigError::Retry("multiplier must be finite and >= 1"));
        }
        if !(0.0..=1.0).contains(&self.jitter) {
            return Err(ConfigError::Retry("jitter must be within [0, 1]"));
        }
        Ok(())
    }

    /// Backoff before jitter after `attempts` failures (1 = first failure): grows by
    /// `multiplier` per attempt up to `max_backoff_ms`.
    pub fn nominal_backoff_ms(&self, attempts: u32) -> u64 {
        let exponent = i32::try_from(attempts.saturating_sub(1)).unwrap_or(i32::MAX);
        let grown = self.initial_backoff_ms as f64 * self.multiplier.powi(exponent);
        // `as` saturates, and the cap keeps it in range anyway.
        grown.min(self.max_backoff_ms as f64) as u64
    }

    /// The jittered backoff after `attempts` failures, for `unit` uniform in `[0, 1)`.
    pub fn backoff_ms(&self, attempts: u32, unit: f64) -> u64 {
        let nominal = self.nominal_backoff_ms(attempts);
        let cut = (nominal as f64 * self.jitter * unit.clamp(0.0, 1.0)) as u64;
        nominal - cut.min(nominal)
    }

    /// The longest any stored wait may still last: the larger of the backoff cap and the
    /// `Retry-After` cap. A stored retry time further away than this was made by a clock that
    /// has since jumped backwards, and is pulled in.
    pub fn max_wait_ms(&self) -> u64 {
        self.max_backoff_ms.max(self.max_retry_after_ms)
    }

    /// The delay a `Retry-After` header value asks for, capped at `max_retry_after_ms`; `None`
    /// when it is neither delay-seconds nor an IMF-fixdate.
    pub fn retry_after_ms(&self, value: &str, now_ms: u64) -> Option<u64> {
        parse_retry_after(value, now_ms).map(|ms| ms.min(self.max_retry_after_ms))
    }
}

/// Parses `Retry-After` (RFC 9110 §10.2.3) into a delay from `now_ms`: delay-seconds, or an
/// HTTP-date in the IMF-fixdate form (`Sun, 06 Nov 1994 08:49:37 GMT`); a date in the past
/// means no delay. The obsolete date forms are not accepted.
pub fn parse_retry_after(value: &str, now_ms: u64) -> Option<u64> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Absurdly long digit strings saturate rather than fail: the cap applies later.
        let seconds = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(seconds.saturating_mul(1_000));
    }
    parse_imf_fixdate(value).map(|at_ms| at_ms.saturating_sub(now_ms))
}

/// `Sun, 06 Nov 1994 08:49:37 GMT` → milliseconds since the Unix epoch.
pub fn parse_imf_fixdate(value: &str) -> Option<u64> {
    let mut parts = value.split_ascii_whitespace();
    let weekday = parts.next()?;
    if weekday.len() != 4 || !weekday.ends_with(',') {
        return None;
    }
    let day: u32 = parse_fixed(parts.next()?, 2)?;
    let month_name = parts.next()?;
    let month = MONTHS.iter().position(|&m| m == month_name)? as u32 + 1;
    let year: u32 = parse_fixed(parts.next()?, 4)?;
    let mut clock = parts.next()?.split(':');
    let hour: u32 = parse_fixed(clock.next()?, 2)?;
    let minute: u32 = parse_fixed(clock.next()?, 2)?;
    let second: u32 = parse_fixed(clock.next()?, 2)?;
    if clock.next().is_some() || parts.next()? != "GMT" || parts.next().is_some() {
        return None;
    }
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 || year < 1970 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + u64::from(hour * 3_600 + minute * 60 + second);
    Some(seconds * 1_000)
}

const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

fn parse_fixed(s: &str, digits: usize) -> Option<u32> {
    if s.len() != digits || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm), for years from
/// 1970 on.
fn days_from_civil(year: u32, month: u32, day: u32) -> u64 {
    let y = u64::from(if month <= 2 { year - 1 } else { year });
    let era = y / 400;
    let yoe = y - era * 400;
    let m = u64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + u64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imf_fixdate_matches_known_instants() {
        assert_eq!(parse_imf_fixdate("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(parse_imf_fixdate("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777_000));
        assert_eq!(parse_imf_fixdate("Tue, 29 Feb 2000 12:00:00 GMT"), Some(951_825_600_000));
        assert_eq!(parse_imf_fixdate("Wed, 21 Oct 2015 07:28:00 GMT"), Some(1_445_412_480_000));
    }

    #[test]
    fn malformed_dates_are_rejected() {
        for bad in [
            "",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 08:49:37 GMT extra",
        ] {
            assert_eq!(parse_imf_fixdate(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn retry_after_forms() {
        let now = 784_111_777_000;
        assert_eq!(parse_retry_after("120", now), Some(120_000));
        assert_eq!(parse_retry_after(" 0 ", now), Some(0));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now), Some(30_000));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now), Some(0));
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("1.5", now), None);
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("99999999999999999999999", now), Some(u64::MAX));
    }
}
