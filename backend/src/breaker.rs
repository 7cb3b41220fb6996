//! A circuit breaker for a dependency that may go away (Redis, the PostgreSQL read replica): after
//! a connection failure, callers skip the dependency at once for a while instead of each waiting
//! for its own timeout, then one call at a time probes whether it is back. The state machine is
//! [`smo1_core::breaker::Breaker`], shared with the edge's breaker over Upstash; this adds the
//! process clock, the log lines and the metric.

use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Breaker {
    /// The dependency, as logs name it.
    name: &'static str,
    /// Counter of the times the breaker opened.
    opened_metric: &'static str,
    state: Mutex<smo1_core::breaker::Breaker>,
    open_for: Duration,
    epoch: Instant,
}

impl Breaker {
    /// Open for `open_for` after a failure; a probe that has not reported after `probe_for` is
    /// given up.
    pub fn new(
        name: &'static str,
        opened_metric: &'static str,
        open_for: Duration,
        probe_for: Duration,
    ) -> Self {
        Self {
            name,
            opened_metric,
            state: Mutex::new(smo1_core::breaker::Breaker::new(open_for, probe_for)),
            open_for,
            epoch: Instant::now(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, smo1_core::breaker::Breaker> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn now(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Whether a call may go to the dependency now; the first call after the open period is the
    /// probe.
    pub fn admit(&self) -> bool {
        let now = self.now();
        self.lock().admit(now)
    }

    /// Whether a call would be admitted now, without taking the probe.
    pub fn closed_or_due(&self) -> bool {
        let now = self.now();
        self.lock().closed_or_due(now)
    }

    pub fn success(&self) {
        if self.lock().success() {
            tracing::info!(
                dependency = self.name,
                "{} answers again; closing the circuit breaker",
                self.name
            );
        }
    }

    pub fn failure(&self) {
        let now = self.now();
        if self.lock().failure(now) {
            tracing::warn!(
                dependency = self.name,
                retry_after_ms = self.open_for.as_millis(),
                "{} failed; opening the circuit breaker",
                self.name
            );
            metrics::counter!(self.opened_metric).increment(1);
        }
    }
}
