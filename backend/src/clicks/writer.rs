//! The batching writer and the outbox replayer, as background tasks.

use super::outbox;
use crate::clickhouse::{self, ClickHouse};
use crate::config::ClickConfig;
use crate::periodic::{PassMetrics, Periodic};
use smo1_core::click::ClickEvent;
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Mutex};
use tokio::task::JoinHandle;

/// Rows per outbox replay transaction.
const REPLAY_BATCH: i64 = 5_000;

/// Where the origin's redirect path drops clicks. Cheap to clone; never blocks.
#[derive(Clone)]
pub struct ClickSink {
    tx: mpsc::Sender<ClickEvent>,
    db: PgPool,
    /// The queue's other end, until [`start`] hands it to the writer.
    queue: Arc<std::sync::Mutex<Option<mpsc::Receiver<ClickEvent>>>>,
}

impl ClickSink {
    /// An in-memory queue of `capacity` clicks; nothing drains it until [`start`].
    pub fn new(db: PgPool, capacity: usize) -> Self {
        let (tx, rx) = mpsc::channel(capacity);
        Self {
            tx,
            db,
            queue: Arc::new(std::sync::Mutex::new(Some(rx))),
        }
    }

    /// Queues a click for the batching writer. When the queue is full the click goes straight to
    /// the outbox instead (off the request path), so a burst can slow analytics but lose nothing.
    pub fn enqueue(&self, event: ClickEvent) {
        match self.tx.try_send(event) {
            Ok(()) => metrics::counter!("smo1_clicks_enqueued_total").increment(1),
            Err(
                mpsc::error::TrySendError::Full(event) | mpsc::error::TrySendError::Closed(event),
            ) => {
                metrics::counter!("smo1_clicks_queue_overflow_total").increment(1);
                let db = self.db.clone();
                tokio::spawn(async move { spool(&db, &[event]).await });
            }
        }
    }
}

/// The running background tasks; [`Pipeline::shutdown`] flushes what is queued.
pub struct Pipeline {
    stop: watch::Sender<bool>,
    writer: Mutex<Option<JoinHandle<()>>>,
    replayer: Periodic,
}

impl Pipeline {
    /// Stops taking new work, writes every queued click (to ClickHouse or the outbox) and waits.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        if let Some(writer) = self.writer.lock().await.take() {
            let _ = writer.await;
        }
        self.replayer.shutdown().await;
    }
}

/// Starts the writer draining `sink`'s queue, and the outbox replayer.
///
/// # Panics
/// When `sink`'s queue is already drained by a pipeline (started twice).
pub fn start(sink: &ClickSink, ch: ClickHouse, config: &ClickConfig) -> Pipeline {
    let rx = sink
        .queue
        .lock()
        .expect("the click queue lock is never poisoned")
        .take()
        .expect("the click pipeline is started once");
    let db = sink.db.clone();
    let (stop, stopped) = watch::channel(false);
    let writer = tokio::spawn(write_batches(
        rx,
        db.clone(),
        ch.clone(),
        config.click_batch_size,
        config.click_flush_interval,
        stopped.clone(),
    ));
    let replayer = {
        let db = db.clone();
        Periodic::start(
            "outbox replay",
            config.click_replay_interval,
            PassMetrics {
                done: "smo1_clicks_replayed_total",
                failures: "smo1_clicks_replay_failures_total",
            },
            move || {
                let (db, ch) = (db.clone(), ch.clone());
                async move {
                    let replayed = replay_all(&db, &ch, |_| {}).await;
                    if let Ok(depth) = outbox::depth(&db).await {
                        metrics::gauge!("smo1_click_outbox_depth").set(depth as f64);
                    }
                    replayed.map(|n| n as u64)
                }
            },
        )
    };
    Pipeline {
        stop,
        writer: Mutex::new(Some(writer)),
        replayer,
    }
}

async fn write_batches(
    mut rx: mpsc::Receiver<ClickEvent>,
    db: PgPool,
    ch: ClickHouse,
    batch_size: usize,
    flush_interval: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(batch_size);
    loop {
        let received = tokio::select! {
            n = rx.recv_many(&mut batch, batch_size) => n,
            _ = stopped.wait_for(|stop| *stop) => 0,
        };
        if received == 0 {
            break;
        }
        // Wait for more only until the oldest click has waited `flush_interval`, or shutdown.
        let deadline = tokio::time::Instant::now() + flush_interval;
        while batch.len() < batch_size {
            let room = batch_size - batch.len();
            let more = tokio::select! {
                r = tokio::time::timeout_at(deadline, rx.recv_many(&mut batch, room)) => {
                    matches!(r, Ok(n) if n > 0)
                }
                _ = stopped.wait_for(|stop| *stop) => false,
            };
            if !more {
                break;
            }
        }
        flush(&db, &ch, std::mem::take(&mut batch)).await;
    }
    rx.close();
    while rx.recv_many(&mut batch, batch_size).await > 0 {
        flush(&db, &ch, std::mem::take(&mut batch)).await;
    }
}

/// One insert; on failure the batch goes to the outbox.
async fn flush(db: &PgPool, ch: &ClickHouse, batch: Vec<ClickEvent>) {
    let mut body = Vec::with_capacity(batch.len() * 512);
    for event in &batch {
        serde_json::to_writer(&mut body, event).expect("a click event always serializes");
        body.push(b'\n');
    }
    let target = clickhouse::insert_target(ch.config());
    let count = batch.len() as u64;
    match ch
        .insert_json_rows(target.table, target.settings, body)
        .await
    {
        Ok(()) => metrics::counter!("smo1_clicks_sent_total").increment(count),
        Err(e) => {
            metrics::counter!("smo1_clicks_failed_total").increment(count);
            tracing::warn!(error = %e, count, "clickhouse insert failed; spooling to the outbox");
            spool(db, &batch).await;
        }
    }
}

async fn spool(db: &PgPool, events: &[ClickEvent]) {
    let count = events.len() as u64;
    match outbox::store(db, events).await {
        Ok(()) => metrics::counter!("smo1_clicks_spooled_total").increment(count),
        Err(e) => {
            // Only reachable with ClickHouse and PostgreSQL both failing.
            metrics::counter!("smo1_clicks_lost_total").increment(count);
            tracing::error!(error = %e, count, "clicks lost: neither ClickHouse nor the outbox took them");
        }
    }
}

/// Drains the outbox batch by batch until it is empty or a batch fails; `progress` sees the
/// running total. Returns the total replayed.
pub async fn replay_all(
    db: &PgPool,
    ch: &ClickHouse,
    mut progress: impl FnMut(usize),
) -> Result<usize, outbox::ReplayError> {
    let mut total = 0;
    loop {
        match outbox::replay_batch(db, ch, REPLAY_BATCH).await {
            Ok(0) => return Ok(total),
            Ok(n) => {
                total += n;
                progress(total);
            }
            Err(e) => {
                tracing::warn!(error = %e, "outbox replay stopped");
                return Err(e);
            }
        }
    }
}
