//! A circuit breaker for a dependency that may go away (Redis, the PostgreSQL read replica): after
//! a connection failure, callers skip the dependency at once for a while instead of each waiting
//! for its own timeout, then one call at a time probes whether it is back.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Closed → (a connection failure) → open for `open_for` → one probe at a time → closed on
/// success, open again on failure. A probe that never reports (its request was cancelled) is
/// given up after `probe_for`, so the breaker can never stay shut for good.
pub struct Breaker {
    /// The dependency, as logs name it.
    name: &'static str,
    /// Counter of the times the breaker opened.
    opened_metric: &'static str,
    state: Mutex<State>,
    open_for: Duration,
    probe_for: Duration,
}

#[derive(Clone, Copy)]
enum State {
    Closed,
    Open { until: Instant },
    Probing { until: Instant },
}

impl Breaker {
    pub fn new(
        name: &'static str,
        opened_metric: &'static str,
        open_for: Duration,
        probe_for: Duration,
    ) -> Self {
        Self {
            name,
            opened_metric,
            state: Mutex::new(State::Closed),
            open_for,
            probe_for,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a call may go to the dependency now; the first call after the open period is the
    /// probe.
    pub fn admit(&self) -> bool {
        let mut state = self.lock();
        let now = Instant::now();
        match *state {
            State::Closed => true,
            State::Open { until } | State::Probing { until } if now >= until => {
                *state = State::Probing {
                    until: now + self.probe_for,
                };
                true
            }
            State::Open { .. } | State::Probing { .. } => false,
        }
    }

    /// Whether a call would be admitted now, without taking the probe.
    pub fn closed_or_due(&self) -> bool {
        match *self.lock() {
            State::Closed => true,
            State::Open { until } | State::Probing { until } => Instant::now() >= until,
        }
    }

    pub fn success(&self) {
        let mut state = self.lock();
        if let State::Probing { .. } = *state {
            tracing::info!(
                dependency = self.name,
                "{} answers again; closing the circuit breaker",
                self.name
            );
            *state = State::Closed;
        }
    }

    pub fn failure(&self) {
        let mut state = self.lock();
        if let State::Closed = *state {
            tracing::warn!(
                dependency = self.name,
                retry_after_ms = self.open_for.as_millis(),
                "{} failed; opening the circuit breaker",
                self.name
            );
            metrics::counter!(self.opened_metric).increment(1);
        }
        *state = State::Open {
            until: Instant::now() + self.open_for,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(open_for: Duration, probe_for: Duration) -> Breaker {
        Breaker::new(
            "test",
            "smo1_test_breaker_opened_total",
            open_for,
            probe_for,
        )
    }

    #[test]
    fn breaker_admits_one_probe_after_the_open_period() {
        let breaker = breaker(Duration::ZERO, Duration::from_secs(60));
        assert!(breaker.admit());
        breaker.failure();
        assert!(breaker.admit(), "the open period is over: this call probes");
        assert!(!breaker.admit(), "only one probe at a time");
        breaker.success();
        assert!(breaker.admit() && breaker.admit(), "closed again");
    }

    #[test]
    fn a_failed_probe_opens_the_breaker_again() {
        let breaker = breaker(Duration::from_secs(60), Duration::from_secs(60));
        breaker.failure();
        assert!(!breaker.admit());
        assert!(!breaker.closed_or_due());
    }

    #[test]
    fn a_probe_that_never_reports_is_given_up() {
        let breaker = breaker(Duration::ZERO, Duration::ZERO);
        breaker.failure();
        assert!(breaker.admit());
        assert!(
            breaker.admit(),
            "the silent probe's time is up: another may probe"
        );
    }
}
