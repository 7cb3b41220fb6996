//! Keeps `links.total_clicks` in PostgreSQL following ClickHouse, so listing links by clicks
//! never touches ClickHouse. Every `TOTAL_CLICKS_SYNC_INTERVAL_SECS` the task reads each link's
//! distinct human clicks (what the API counts by default) from `link_clicks_daily` and writes
//! only the counts that changed, in batches; the lag is bounded by the interval plus one pass.
//! The owners of links whose count changed get their achievements evaluated (click milestones).

use crate::clickhouse::{ClickHouse, ClickHouseError};
use serde::Deserialize;
use sqlx::PgPool;
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

/// Links per UPDATE statement.
const BATCH: usize = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

#[derive(Deserialize)]
struct LinkTotal {
    link_id: String,
    /// Quoted by ClickHouse (a 64-bit integer in JSON).
    clicks: String,
}

/// Each link's distinct human clicks, all time.
pub const TOTALS_SQL: &str = "SELECT link_id, toString(uniqExactIfMerge(human_clicks)) AS clicks \
     FROM link_clicks_daily GROUP BY link_id";

/// One pass: returns how many links changed.
#[tracing::instrument(skip_all)]
pub async fn sync_total_clicks(db: &PgPool, ch: &ClickHouse) -> Result<u64, SyncError> {
    let totals: Vec<LinkTotal> = ch.query(TOTALS_SQL).await?;
    // Rows of links that are not ours (bad ids) are skipped rather than failing the pass.
    let totals: Vec<(Uuid, i64)> = totals
        .into_iter()
        .filter_map(|t| Some((t.link_id.parse().ok()?, t.clicks.parse().ok()?)))
        .collect();
    let mut owners: Vec<Uuid> = Vec::new();
    for chunk in totals.chunks(BATCH) {
        let (ids, clicks): (Vec<Uuid>, Vec<i64>) = chunk.iter().copied().unzip();
        owners.extend(
            sqlx::query_scalar::<_, Uuid>(
                "UPDATE links SET total_clicks = t.clicks
                   FROM UNNEST($1::uuid[], $2::bigint[]) AS t(id, clicks)
                  WHERE links.id = t.id AND links.total_clicks <> t.clicks
              RETURNING links.user_id",
            )
            .bind(&ids)
            .bind(&clicks)
            .fetch_all(db)
            .await?,
        );
    }
    let changed = owners.len() as u64;
    // Click milestones follow total_clicks.
    owners.sort_unstable();
    owners.dedup();
    for user_id in owners {
        crate::achievements::catch_up(db, user_id).await;
    }
    Ok(changed)
}

/// The running sync task.
pub struct TotalClicksSync {
    stop: watch::Sender<bool>,
    task: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl TotalClicksSync {
    /// Starts syncing every `interval` (the first pass right away).
    pub fn start(db: PgPool, ch: ClickHouse, interval: Duration) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = ticker.tick() => {}
                    _ = stopped.wait_for(|stop| *stop) => return,
                }
                match sync_total_clicks(&db, &ch).await {
                    Ok(changed) => {
                        metrics::counter!("smo1_total_clicks_synced_total").increment(changed);
                    }
                    Err(e) => {
                        metrics::counter!("smo1_total_clicks_sync_failures_total").increment(1);
                        tracing::warn!(error = %e, "total_clicks sync failed; retrying next interval");
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
