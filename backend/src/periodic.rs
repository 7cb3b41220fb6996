//! A background task that runs one pass every interval (the first right away) until stopped:
//! the shape of the total_clicks sync and the analytics rollup.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What a pass reports to the metrics: units of work done, and failed passes.
pub struct PassMetrics {
    pub done: &'static str,
    pub failures: &'static str,
}

/// The running task.
pub struct Periodic {
    stop: watch::Sender<bool>,
    task: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl Periodic {
    /// Runs `pass` every `interval`. A failed pass is logged and counted, and retried next time.
    pub fn start<F, Fut, E>(
        what: &'static str,
        interval: Duration,
        metrics: PassMetrics,
        mut pass: F,
    ) -> Self
    where
        F: FnMut() -> Fut + Send + 'static,
        Fut: Future<Output = Result<u64, E>> + Send,
        E: Display,
    {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = stopped.wait_for(|stop| *stop) => return,
                }
                match pass().await {
                    Ok(done) => metrics::counter!(metrics.done).increment(done),
                    Err(e) => {
                        metrics::counter!(metrics.failures).increment(1);
                        tracing::warn!(error = %e, "{what} failed; retrying next interval");
                    }
                }
            }
        });
        Self {
            stop,
            task: tokio::sync::Mutex::new(Some(task)),
        }
    }

    /// Stops the task, letting a pass in progress finish.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.lock().await.take() {
            let _ = task.await;
        }
    }
}
