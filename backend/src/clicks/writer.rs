//! The batching writer, the overflow spooler and the outbox replayer, as background tasks.
//!
//! Bounds: the in-memory queue holds `CLICK_QUEUE_CAPACITY` clicks; past it, an overflow lane
//! holds two batches more, written to the outbox in batches by one task. A click is counted lost
//! (`smo1_clicks_lost_total`) only when both are full, or when shutdown finds PostgreSQL down.

use super::outbox;
use super::pending::PendingClick;
use crate::clickhouse::{self, ClickHouse, ClickHouseError};
use crate::config::ClickConfig;
use crate::periodic::{PassMetrics, Periodic};
use futures_util::FutureExt;
use smo1_core::click::ClickEvent;
use sqlx::PgPool;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Mutex};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// Rows per outbox replay transaction.
const REPLAY_BATCH: i64 = 5_000;
/// After the stop signal, how long ClickHouse inserts may still take in total; what is left
/// then goes to the outbox, so a ClickHouse outage cannot hold up a shutdown.
const SHUTDOWN_CLICKHOUSE_GRACE: Duration = Duration::from_secs(2);
/// Longest pause between attempts to store clicks in an outbox that refused them.
const MAX_SPOOL_BACKOFF: Duration = Duration::from_secs(5);

/// Where the origin's redirect path drops clicks. Cheap to clone; never blocks.
#[derive(Clone)]
pub struct ClickSink {
    tx: mpsc::Sender<PendingClick>,
    overflow: mpsc::Sender<PendingClick>,
    /// Set while clicks are being dropped, so the loss is logged once per episode.
    dropping: Arc<AtomicBool>,
    db: PgPool,
    /// The queues' other ends, until [`start`] hands them to the writer and the spooler.
    queues: Arc<std::sync::Mutex<Option<Queues>>>,
}

struct Queues {
    queue: mpsc::Receiver<PendingClick>,
    overflow: mpsc::Receiver<PendingClick>,
}

impl ClickSink {
    /// An in-memory queue of `click_queue_capacity` clicks and an overflow lane of two batches;
    /// nothing drains them until [`start`].
    pub fn new(db: PgPool, config: &ClickConfig) -> Self {
        let (tx, queue) = mpsc::channel(config.click_queue_capacity.max(1));
        let (overflow, overflow_rx) = mpsc::channel(2 * config.click_batch_size.max(1));
        Self {
            tx,
            overflow,
            dropping: Arc::new(AtomicBool::new(false)),
            db,
            queues: Arc::new(std::sync::Mutex::new(Some(Queues {
                queue,
                overflow: overflow_rx,
            }))),
        }
    }

    /// Queues a click for the batching writer. When the queue is full the click takes the
    /// overflow lane to the outbox instead (a burst slows analytics but loses nothing); only when
    /// that is full too is it dropped, and counted lost.
    pub fn enqueue(&self, click: PendingClick) {
        let click = match self.tx.try_send(click) {
            Ok(()) => {
                metrics::counter!(crate::metrics::CLICKS_ENQUEUED).increment(1);
                self.dropping.store(false, Ordering::Relaxed);
                return;
            }
            Err(mpsc::error::TrySendError::Full(c) | mpsc::error::TrySendError::Closed(c)) => c,
        };
        metrics::counter!(crate::metrics::CLICKS_QUEUE_OVERFLOW).increment(1);
        if self.overflow.try_send(click).is_err() {
            metrics::counter!(crate::metrics::CLICKS_LOST).increment(1);
            if !self.dropping.swap(true, Ordering::Relaxed) {
                tracing::error!("clicks lost: the click queue and its overflow lane are full");
            }
        }
    }
}

/// The running background tasks; [`Pipeline::shutdown`] makes what is queued durable.
pub struct Pipeline {
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    replayer: Periodic,
}

impl Pipeline {
    /// Stops taking new work and writes every queued click to ClickHouse or, once ClickHouse has
    /// had [`SHUTDOWN_CLICKHOUSE_GRACE`], to the outbox; then waits for the replayer.
    pub async fn shutdown(&self) {
        let _ = self.stop.send(true);
        for task in self.tasks.lock().await.drain(..) {
            let _ = task.await;
        }
        self.replayer.shutdown().await;
    }
}

/// Starts the writer draining `sink`'s queue, the spooler draining its overflow lane, and the
/// outbox replayer.
///
/// # Panics
/// When `sink`'s queues are already drained by a pipeline (started twice).
pub fn start(sink: &ClickSink, ch: ClickHouse, config: &ClickConfig) -> Pipeline {
    let Queues { queue, overflow } = sink
        .queues
        .lock()
        .expect("the click queue lock is never poisoned")
        .take()
        .expect("the click pipeline is started once");
    let db = sink.db.clone();
    let (stop, stopped) = watch::channel(false);
    let enrich = Enrich {
        salt: Arc::from(config.visitor_salt_secret.expose()),
    };
    let spooler = Spooler {
        db: db.clone(),
        stopping: stopped.clone(),
        given_up: Arc::new(AtomicBool::new(false)),
    };
    let writer = Writer {
        ch: ch.clone(),
        enrich: enrich.clone(),
        spooler: spooler.clone(),
        stopping: stopped.clone(),
        grace_ends: None,
    };
    let tasks = vec![
        tokio::spawn(drain(
            queue,
            writer,
            config.click_batch_size,
            config.click_flush_interval,
            stopped.clone(),
        )),
        // Overflow is written as soon as it arrives: it only exists while the writer is behind.
        tokio::spawn(drain(
            overflow,
            OverflowSpool { enrich, spooler },
            config.click_batch_size,
            Duration::ZERO,
            stopped,
        )),
    ];
    let replayer = {
        let db = db.clone();
        Periodic::start(
            "outbox replay",
            config.click_replay_interval,
            PassMetrics {
                done: crate::metrics::CLICKS_REPLAYED,
                failures: crate::metrics::CLICKS_REPLAY_FAILURES,
            },
            move || {
                let (db, ch) = (db.clone(), ch.clone());
                async move {
                    let replayed = replay_all(&db, &ch, |_| {}).await;
                    if let Ok((depth, quarantined)) = outbox::depths(&db).await {
                        metrics::gauge!(crate::metrics::CLICK_OUTBOX_DEPTH).set(depth as f64);
                        metrics::gauge!(crate::metrics::CLICK_OUTBOX_QUARANTINED)
                            .set(quarantined as f64);
                    }
                    if let Ok(age) = outbox::oldest_age_secs(&db).await {
                        metrics::gauge!(crate::metrics::CLICK_OUTBOX_OLDEST_AGE).set(age);
                    }
                    replayed.map(|n| n as u64)
                }
            },
        )
    };
    Pipeline {
        stop,
        tasks: Mutex::new(tasks),
        replayer,
    }
}

/// Turns pending clicks into events, off the async workers: classification is CPU work.
#[derive(Clone)]
struct Enrich {
    salt: Arc<str>,
}

impl Enrich {
    async fn events(&self, batch: Vec<PendingClick>) -> Vec<ClickEvent> {
        let salt = self.salt.clone();
        tokio::task::spawn_blocking(move || {
            batch
                .into_iter()
                .map(|click| click.into_event(&salt))
                .collect()
        })
        .await
        .expect("building click events does not panic")
    }
}

/// How often a batch being filled takes what has been queued since: waking the writer for
/// every click would cost a thread wake-up per redirect.
const FILL_INTERVAL: Duration = Duration::from_millis(10);

/// Fills `batch` from `rx`: waits for a first click, then takes more every [`FILL_INTERVAL`]
/// until the batch is full or the first has waited `flush_interval`. Returns `false` once `rx`
/// is closed and empty.
async fn next_batch(
    rx: &mut mpsc::Receiver<PendingClick>,
    batch: &mut Vec<PendingClick>,
    batch_size: usize,
    flush_interval: Duration,
) -> bool {
    if rx.recv_many(batch, batch_size).await == 0 {
        return false;
    }
    let deadline = Instant::now() + flush_interval;
    while batch.len() < batch_size {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        tokio::time::sleep_until(deadline.min(now + FILL_INTERVAL)).await;
        let room = batch_size - batch.len();
        // What is queued now, without waiting; `Some(0)`: closed and empty.
        if rx.recv_many(batch, room).now_or_never() == Some(0) {
            break;
        }
    }
    true
}

/// What a task does with each batch it takes off its queue.
trait Batches {
    fn write(&mut self, batch: Vec<PendingClick>) -> impl Future<Output = ()> + Send;
}

/// Hands `rx`'s clicks to `batches` in batches ([`next_batch`]) until the stop signal, then
/// drains what is left.
async fn drain(
    mut rx: mpsc::Receiver<PendingClick>,
    mut batches: impl Batches,
    batch_size: usize,
    flush_interval: Duration,
    mut stopping: watch::Receiver<bool>,
) {
    let mut batch = Vec::with_capacity(batch_size);
    loop {
        let more = tokio::select! {
            more = next_batch(&mut rx, &mut batch, batch_size, flush_interval) => more,
            _ = stopping.wait_for(|stop| *stop) => !batch.is_empty(),
        };
        if !more {
            break;
        }
        batches.write(std::mem::take(&mut batch)).await;
        if *stopping.borrow() {
            break;
        }
    }
    rx.close();
    while rx.recv_many(&mut batch, batch_size).await > 0 {
        batches.write(std::mem::take(&mut batch)).await;
    }
}

struct Writer {
    ch: ClickHouse,
    enrich: Enrich,
    spooler: Spooler,
    stopping: watch::Receiver<bool>,
    /// Set at the stop signal: when ClickHouse stops getting batches.
    grace_ends: Option<Instant>,
}

impl Batches for Writer {
    /// One insert; on failure the batch goes to the outbox.
    async fn write(&mut self, batch: Vec<PendingClick>) {
        let events = self.enrich.events(batch).await;
        let count = events.len() as u64;
        match self.insert(&events).await {
            Ok(()) => metrics::counter!(crate::metrics::CLICKS_SENT).increment(count),
            Err(reason) => {
                metrics::counter!(crate::metrics::CLICKS_FAILED).increment(count);
                tracing::warn!(%reason, count, "clickhouse insert failed; spooling to the outbox");
                self.spooler.store(&events).await;
            }
        }
    }
}

impl Writer {
    /// The ClickHouse insert of `events`. Once shutdown has begun it gets only what is left of
    /// [`SHUTDOWN_CLICKHOUSE_GRACE`]; an insert cut off may still have landed, and is then
    /// written again by the replay: a duplicate that distinct-`click_id` counting absorbs.
    async fn insert(&mut self, events: &[ClickEvent]) -> Result<(), String> {
        let mut body = Vec::with_capacity(events.len() * 512);
        for event in events {
            serde_json::to_writer(&mut body, event).expect("a click event always serializes");
            body.push(b'\n');
        }
        let target = clickhouse::insert_target(self.ch.config());
        let insert = self
            .ch
            .insert_json_rows(target.table, target.settings, body);
        tokio::pin!(insert);
        let mut stopping = self.stopping.clone();
        if self.grace_ends.is_none() {
            tokio::select! {
                done = &mut insert => return done.map_err(|e: ClickHouseError| e.to_string()),
                _ = stopping.wait_for(|stop| *stop) => {}
            }
        }
        let grace_ends = *self
            .grace_ends
            .get_or_insert_with(|| Instant::now() + SHUTDOWN_CLICKHOUSE_GRACE);
        match tokio::time::timeout_at(grace_ends, insert).await {
            Ok(done) => done.map_err(|e| e.to_string()),
            Err(_) => Err("shutting down, and clickhouse did not answer in time".into()),
        }
    }
}

/// The overflow lane's task: each batch straight to the outbox.
struct OverflowSpool {
    enrich: Enrich,
    spooler: Spooler,
}

impl Batches for OverflowSpool {
    async fn write(&mut self, batch: Vec<PendingClick>) {
        self.spooler.store(&self.enrich.events(batch).await).await;
    }
}

/// Writes clicks to the outbox, retrying while PostgreSQL refuses them.
#[derive(Clone)]
struct Spooler {
    db: PgPool,
    stopping: watch::Receiver<bool>,
    /// Set when an attempt failed after the stop signal: later batches are not tried, so a
    /// PostgreSQL outage costs a shutdown one attempt, not one per batch.
    given_up: Arc<AtomicBool>,
}

impl Spooler {
    /// Stores `events`, retrying with backoff until PostgreSQL takes them. After the stop signal
    /// a failed attempt is the last: those clicks are counted lost.
    async fn store(&self, events: &[ClickEvent]) {
        let count = events.len() as u64;
        let mut backoff = Duration::from_millis(100);
        let mut stopping = self.stopping.clone();
        loop {
            if self.given_up.load(Ordering::Relaxed) {
                metrics::counter!(crate::metrics::CLICKS_LOST).increment(count);
                return;
            }
            let error = match outbox::store(&self.db, events).await {
                Ok(()) => {
                    metrics::counter!(crate::metrics::CLICKS_SPOOLED).increment(count);
                    return;
                }
                Err(e) => e,
            };
            if *stopping.borrow() {
                self.given_up.store(true, Ordering::Relaxed);
                metrics::counter!(crate::metrics::CLICKS_LOST).increment(count);
                tracing::error!(%error, count, "clicks lost: shutting down with neither ClickHouse nor the outbox taking them");
                return;
            }
            metrics::counter!(crate::metrics::CLICK_OUTBOX_STORE_RETRIES).increment(1);
            tracing::warn!(%error, count, "the outbox refused clicks; retrying");
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = stopping.wait_for(|stop| *stop) => {}
            }
            backoff = (backoff * 2).min(MAX_SPOOL_BACKOFF);
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
            Ok(outbox::Replayed { moved: 0, .. }) => return Ok(total),
            Ok(outbox::Replayed { sent, .. }) => {
                total += sent;
                progress(total);
            }
            Err(e) => {
                tracing::warn!(error = %e, "outbox replay stopped");
                return Err(e);
            }
        }
    }
}
