//! [`Watch`]: follows a newly activated model's first readings and says when to roll back.
//!
//! A model that passed every check can still be wrong for the data it meets. Over its first
//! [`WatchConfig::readings`] readings the watch counts engine errors and non-finite scores (any
//! is a reason to roll back) and anomalies. When the window is full, an anomaly rate above
//! [`WatchConfig::rate_factor`] times the metadata's expected rate (plus a floor, so a rate of 1%
//! does not trip on a handful of real anomalies) rolls back too. After the window the model is
//! trusted and the watch says nothing more.

/// When the watch rolls back.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WatchConfig {
    /// Readings watched after activation.
    pub readings: u64,
    /// The observed anomaly rate may be this many times the expected one…
    pub rate_factor: f64,
    /// …plus this much (absolute), before the model is rolled back.
    pub rate_floor: f64,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig { readings: 200, rate_factor: 10.0, rate_floor: 0.05 }
    }
}

/// What the watch says after a reading.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Still watching (or done watching): keep the model.
    Keep,
    /// Roll back to the previous model, for this reason (shown and sent as telemetry).
    RollBack(String),
}

/// The state of one model's watch.
#[derive(Debug, Clone, PartialEq)]
pub struct Watch {
    config: WatchConfig,
    expected_rate: f64,
    seen: u64,
    anomalies: u64,
    done: bool,
}

impl Watch {
    /// Starts watching a model whose metadata expects `expected_rate` anomalies on normal data.
    pub fn new(config: WatchConfig, expected_rate: f64) -> Watch {
        Watch { config, expected_rate, seen: 0, anomalies: 0, done: false }
    }

    /// Whether the window is over (the model is trusted, or was rolled back).
    pub fn done(&self) -> bool {
        self.done
    }

    /// Notes one reading's outcome: its score (`Err` = the engine's error code) and flag.
    /// Readings recorded unscored for their own reason (a NaN input) are not passed here.
    pub fn observe(&mut self, outcome: Result<(f32, bool), &str>) -> Verdict {
        if self.done {
            return Verdict::Keep;
        }
        self.seen += 1;
        let verdict = match outcome {
            Err(code) => Verdict::RollBack(format!("engine error {code} on reading {}", self.seen)),
            Ok((score, _)) if !score.is_finite() => {
                Verdict::RollBack(format!("non-finite score on reading {}", self.seen))
            }
            Ok((_, anomaly)) => {
                self.anomalies += u64::from(anomaly);
                self.rate_verdict()
            }
        };
        if verdict != Verdict::Keep || self.seen >= self.config.readings {
            self.done = true;
        }
        verdict
    }

    fn rate_verdict(&self) -> Verdict {
        if self.seen < self.config.readings {
            return Verdict::Keep;
        }
        let rate = self.anomalies as f64 / self.seen as f64;
        let limit = self.expected_rate * self.config.rate_factor + self.config.rate_floor;
        if rate > limit {
            return Verdict::RollBack(format!(
                "anomaly rate {:.1}% over its first {} readings, expected {:.1}% (limit {:.1}%)",
                rate * 100.0,
                self.seen,
                self.expected_rate * 100.0,
                limit * 100.0
            ));
        }
        Verdict::Keep
    }
}

#[cfg(test)]
#[allow(clippy::expect_used, reason = "a failed expectation is the test failure")]
mod tests {
    use super::*;

    fn watch() -> Watch {
        Watch::new(WatchConfig { readings: 10, rate_factor: 10.0, rate_floor: 0.05 }, 0.01)
    }

    #[test]
    fn a_model_that_behaves_is_kept_and_then_trusted() {
        let mut w = watch();
        for i in 0..10 {
            assert_eq!(w.observe(Ok((0.1, i == 3))), Verdict::Keep, "reading {i}");
        }
        assert!(w.done());
        assert_eq!(w.observe(Err("INFERENCE")), Verdict::Keep, "trusted after the window");
    }

    #[test]
    fn errors_and_non_finite_scores_roll_back_at_once() {
        let mut w = watch();
        w.observe(Ok((0.1, false)));
        assert!(
            matches!(w.observe(Err("INFERENCE")), Verdict::RollBack(r) if r.contains("INFERENCE"))
        );
        let mut w = watch();
        assert!(
            matches!(w.observe(Ok((f32::NAN, false))), Verdict::RollBack(r) if r.contains("non-finite"))
        );
    }

    #[test]
    fn an_anomaly_rate_far_above_the_expected_one_rolls_back_when_the_window_fills() {
        // Limit 0.01 * 10 + 0.05 = 15%: 2 of 10 (20%) rolls back, 1 of 10 does not.
        let mut w = watch();
        for i in 0..9 {
            assert_eq!(w.observe(Ok((0.5, i < 2))), Verdict::Keep);
        }
        assert!(matches!(w.observe(Ok((0.5, false))), Verdict::RollBack(r) if r.contains("20.0%")));
        let mut w = watch();
        for i in 0..10 {
            assert_eq!(w.observe(Ok((0.5, i == 0))), Verdict::Keep);
        }
    }
}
