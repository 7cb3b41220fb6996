//! Bounded argon2id work: at most `UNLOCK_VERIFY_CONCURRENCY` hashes or verifications at once;
//! the rest wait up to [`QUEUE_WAIT`] and then answer 503 `busy`, so a flood of guesses costs a
//! bounded amount of CPU and memory.

use crate::error::{AppError, Result};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Longest a check waits for a free verifier before answering 503 `busy`.
pub const QUEUE_WAIT: Duration = Duration::from_secs(5);

/// Runs argon2id work, at most N at a time, off the async workers.
#[derive(Clone)]
pub struct Verifier {
    permits: Arc<Semaphore>,
    queue_wait: Duration,
}

impl Verifier {
    pub fn new(concurrency: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrency)),
            queue_wait: QUEUE_WAIT,
        }
    }

    /// Waits for a free verifier, at most [`QUEUE_WAIT`]; then [`AppError::VerifierBusy`].
    pub async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit> {
        let waiting = self.permits.clone().acquire_owned();
        match tokio::time::timeout(self.queue_wait, waiting).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => {
                metrics::counter!(crate::metrics::UNLOCK_VERIFIER_BUSY).increment(1);
                Err(AppError::VerifierBusy)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn checks_beyond_the_concurrency_wait_and_then_are_refused() {
        let verifier = Verifier {
            permits: Arc::new(Semaphore::new(1)),
            queue_wait: Duration::from_millis(50),
        };
        let held = verifier.permit().await.expect("a free verifier");
        assert!(matches!(
            verifier.permit().await,
            Err(AppError::VerifierBusy)
        ));
        drop(held);
        assert!(verifier.permit().await.is_ok());
    }
}
