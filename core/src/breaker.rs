//! A circuit breaker over one dependency (Redis at the origin, Upstash at the edge), so a dead
//! dependency costs callers nothing instead of a timeout each.
//!
//! Closed → (a failure) → open for `open_for` → one probe at a time → closed on success, open
//! again on failure. A probe that never reports (its request was cancelled) is given up after
//! `probe_for`, so the breaker can never stay shut for good. Time is passed in (milliseconds on
//! any monotonic-enough clock) so the same machine runs on native and in the Workers runtime.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Breaker {
    state: State,
    open_for_ms: u64,
    probe_for_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Open { until: u64 },
    Probing { until: u64 },
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Breaker {
    pub fn new(open_for: Duration, probe_for: Duration) -> Self {
        Self {
            state: State::Closed,
            open_for_ms: millis(open_for),
            probe_for_ms: millis(probe_for),
        }
    }

    /// Whether a call may go to the dependency at `now`; the first call after the open period
    /// is the probe.
    pub fn admit(&mut self, now: u64) -> bool {
        match self.state {
            State::Closed => true,
            State::Open { until } | State::Probing { until } if now >= until => {
                self.state = State::Probing {
                    until: now.saturating_add(self.probe_for_ms),
                };
                true
            }
            State::Open { .. } | State::Probing { .. } => false,
        }
    }

    /// Whether calls go to the dependency at `now` (closed, or its next probe is due).
    pub fn closed_or_due(&self, now: u64) -> bool {
        match self.state {
            State::Closed => true,
            State::Open { until } | State::Probing { until } => now >= until,
        }
    }

    /// Records a success; `true` when it closes the breaker (the probe answered).
    pub fn success(&mut self) -> bool {
        let closes = matches!(self.state, State::Probing { .. });
        if closes {
            self.state = State::Closed;
        }
        closes
    }

    /// Records a failure at `now`; `true` when it opens a closed breaker.
    pub fn failure(&mut self, now: u64) -> bool {
        let opens = self.state == State::Closed;
        self.state = State::Open {
            until: now.saturating_add(self.open_for_ms),
        };
        opens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    #[test]
    fn a_failure_opens_it_for_the_open_period_then_one_probe_goes_through() {
        let mut breaker = Breaker::new(Duration::from_millis(100), MINUTE);
        assert!(breaker.admit(0));
        assert!(breaker.failure(10), "a closed breaker opens");
        assert!(!breaker.admit(109));
        assert!(!breaker.closed_or_due(109));
        assert!(breaker.closed_or_due(110));
        assert!(
            breaker.admit(110),
            "the open period is over: this call probes"
        );
        assert!(!breaker.admit(111), "only one probe at a time");
        assert!(breaker.success(), "the probe closes it");
        assert!(breaker.admit(112) && breaker.admit(112), "closed again");
        assert!(!breaker.success(), "a success while closed changes nothing");
    }

    #[test]
    fn a_failed_probe_opens_it_again() {
        let mut breaker = Breaker::new(Duration::from_millis(100), MINUTE);
        breaker.failure(0);
        assert!(breaker.admit(100));
        assert!(!breaker.failure(150), "already open: not a new opening");
        assert!(!breaker.admit(249));
        assert!(breaker.admit(250));
    }

    #[test]
    fn a_probe_that_never_reports_is_given_up() {
        let mut breaker = Breaker::new(Duration::ZERO, Duration::from_millis(50));
        breaker.failure(0);
        assert!(breaker.admit(0));
        assert!(!breaker.admit(49));
        assert!(
            breaker.admit(50),
            "the silent probe's time is up: another may probe"
        );
    }
}
