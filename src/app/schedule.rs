//! [`FlushSchedule`]: when the app flushes its outbox, decided in one place for every host.
//!
//! Three triggers: a write (only while the endpoint is answering, spaced so a 10 Hz sensor
//! sends batches, not a request per reading), a timer (every [`ScheduleConfig::timer_ms`], or
//! sooner when the syncer's retry is due, so an endpoint that comes back is found by the retry
//! schedule), and the host saying the network is back. The host supplies the sleeping
//! ([`Timer`]: `gloo-timers` in the browser, the gateway's runtime natively) and runs
//! [`crate::app::App::run_timer`] once; the decisions here are pure and tested natively.

use std::cell::Cell;
use std::future::Future;

use crate::outbox::{FlushOutcome, FlushStatus};

/// Sleeping and a precise monotonic clock, supplied by the host.
pub trait Timer {
    /// Resolves after `ms` milliseconds.
    fn sleep(&self, ms: u64) -> impl Future<Output = ()>;

    /// A monotonic clock in milliseconds (sub-millisecond where the platform has it), for
    /// latency figures.
    fn monotonic_ms(&self) -> f64;
}

impl<T: Timer + ?Sized> Timer for std::rc::Rc<T> {
    fn sleep(&self, ms: u64) -> impl Future<Output = ()> {
        (**self).sleep(ms)
    }

    fn monotonic_ms(&self) -> f64 {
        (**self).monotonic_ms()
    }
}

/// How often the app flushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleConfig {
    /// Least time between two write-triggered flushes (ms).
    pub write_spacing_ms: u64,
    /// Time between timer flushes (ms).
    pub timer_ms: u64,
    /// Shortest timer sleep (ms), so a retry time in the past never spins.
    pub min_sleep_ms: u64,
}

impl Default for ScheduleConfig {
    /// The service worker's: write-triggered flushes at most every 2 s, a timer every 10 s
    /// (a worker lives for seconds to minutes between events).
    fn default() -> Self {
        ScheduleConfig { write_spacing_ms: 2_000, timer_ms: 10_000, min_sleep_ms: 250 }
    }
}

/// The flush decisions; interior mutability because the app is shared by its handlers.
#[derive(Debug)]
pub struct FlushSchedule {
    config: ScheduleConfig,
    /// When a write last triggered a flush (ms since the epoch); `None` before the first.
    last_write_flush_ms: Cell<Option<u64>>,
}

impl FlushSchedule {
    /// A schedule with `config`.
    pub fn new(config: ScheduleConfig) -> Self {
        FlushSchedule { config, last_write_flush_ms: Cell::new(None) }
    }

    /// Its configuration.
    pub fn config(&self) -> ScheduleConfig {
        self.config
    }

    /// After readings were recorded at `now_ms`: flush now? Only when the last flush found the
    /// endpoint answering (drained, or more pending), none is running, and the last
    /// write-triggered flush is at least [`ScheduleConfig::write_spacing_ms`] ago. A `true`
    /// counts as that flush.
    pub fn after_write(&self, now_ms: u64, last: Option<&FlushOutcome>, running: bool) -> bool {
        let answering =
            matches!(last.map(|o| o.status), Some(FlushStatus::Drained | FlushStatus::MorePending));
        let spaced = self
            .last_write_flush_ms
            .get()
            .is_none_or(|t| now_ms.saturating_sub(t) >= self.config.write_spacing_ms);
        let due = answering && spaced && !running;
        if due {
            self.last_write_flush_ms.set(Some(now_ms));
        }
        due
    }

    /// How long the timer sleeps before its next flush, after `last` at `now_ms`: the timer
    /// period, or less when the syncer's next retry comes sooner (never under
    /// [`ScheduleConfig::min_sleep_ms`]).
    pub fn timer_sleep_ms(&self, now_ms: u64, last: Option<&FlushOutcome>) -> u64 {
        let retry = last.and_then(|o| o.next_attempt_at_ms).map(|at| at.saturating_sub(now_ms));
        let sleep = retry.map_or(self.config.timer_ms, |r| r.min(self.config.timer_ms));
        sleep.max(self.config.min_sleep_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(status: FlushStatus, next_attempt_at_ms: Option<u64>) -> FlushOutcome {
        FlushOutcome { status, next_attempt_at_ms, ..FlushOutcome::default() }
    }

    #[test]
    fn writes_flush_only_while_the_endpoint_answers() {
        let s = FlushSchedule::new(ScheduleConfig::default());
        assert!(!s.after_write(0, None, false), "no flush yet: nothing known of the endpoint");
        let backoff = outcome(FlushStatus::Backoff, Some(5_000));
        assert!(!s.after_write(10_000, Some(&backoff), false));
        let auth = outcome(FlushStatus::AuthNeeded, None);
        assert!(!s.after_write(20_000, Some(&auth), false));
        let drained = outcome(FlushStatus::Drained, None);
        assert!(s.after_write(30_000, Some(&drained), false));
        let more = outcome(FlushStatus::MorePending, None);
        assert!(s.after_write(40_000, Some(&more), false));
    }

    #[test]
    fn write_flushes_are_spaced_and_never_beside_a_running_one() {
        let s = FlushSchedule::new(ScheduleConfig::default());
        let drained = outcome(FlushStatus::Drained, None);
        assert!(s.after_write(1_000, Some(&drained), false));
        assert!(!s.after_write(1_100, Some(&drained), false), "100 ms later");
        assert!(!s.after_write(2_999, Some(&drained), false), "1,999 ms later");
        assert!(!s.after_write(3_000, Some(&drained), true), "due, but one is running");
        assert!(s.after_write(3_000, Some(&drained), false), "due once it is not");
        assert!(!s.after_write(3_001, Some(&drained), false), "that one counted");
    }

    #[test]
    fn the_timer_wakes_for_the_retry_when_it_comes_first() {
        let s = FlushSchedule::new(ScheduleConfig {
            write_spacing_ms: 2_000,
            timer_ms: 30_000,
            min_sleep_ms: 250,
        });
        assert_eq!(s.timer_sleep_ms(0, None), 30_000);
        assert_eq!(s.timer_sleep_ms(0, Some(&outcome(FlushStatus::Drained, None))), 30_000);
        let retry = outcome(FlushStatus::Backoff, Some(10_000));
        assert_eq!(s.timer_sleep_ms(4_000, Some(&retry)), 6_000);
        let late = outcome(FlushStatus::Backoff, Some(100_000));
        assert_eq!(s.timer_sleep_ms(0, Some(&late)), 30_000, "the period caps a long backoff");
        assert_eq!(s.timer_sleep_ms(20_000, Some(&retry)), 250, "a past retry: the floor");
    }
}
