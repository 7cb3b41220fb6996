//! Keeps `links.total_clicks` in PostgreSQL following ClickHouse, so listing links by clicks
//! never touches ClickHouse. Every `TOTAL_CLICKS_SYNC_INTERVAL_SECS` the task reads each link's
//! distinct human clicks (what the API counts by default) and writes only the counts that
//! changed, in batches; the lag is bounded by the interval plus one pass. Days with a current
//! rollup are summed from `link_clicks_rollup_hours` (a click belongs to one hour, so hourly
//! counts add up), the others merged from `link_clicks_daily`'s exact states.
//! The owners of links whose count changed get their achievements evaluated (click milestones).

use super::rollup;
use crate::clickhouse::{uint64, ClickHouse, ClickHouseError};
use crate::periodic::{PassMetrics, Periodic};
use chrono::NaiveDate;
use serde::Deserialize;
use sqlx::PgPool;
use std::time::Duration;
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
    #[serde(deserialize_with = "uint64")]
    clicks: u64,
}

/// Each link's distinct human clicks, all time, given the days whose rollups are current.
pub fn totals_sql(rolled: &[NaiveDate]) -> String {
    let days = rollup::dates_sql(rolled);
    let unrolled = if rolled.is_empty() {
        String::new()
    } else {
        format!("WHERE day NOT IN ({days})")
    };
    let mut parts = vec![format!(
        "SELECT link_id, uniqExactIfMerge(human_clicks) AS c FROM link_clicks_daily {unrolled} \
         GROUP BY link_id"
    )];
    if !rolled.is_empty() {
        parts.push(format!(
            "SELECT link_id, sum(human_clicks) AS c FROM link_clicks_rollup_hours FINAL \
             WHERE link_id != '' AND toDate(hour) IN ({days}) GROUP BY link_id"
        ));
    }
    format!(
        "SELECT link_id, toString(sum(c)) AS clicks FROM ({}) GROUP BY link_id",
        parts.join(" UNION ALL ")
    )
}

/// One pass: returns how many links changed.
#[tracing::instrument(skip_all)]
pub async fn sync_total_clicks(db: &PgPool, ch: &ClickHouse) -> Result<u64, SyncError> {
    let rolled: Vec<NaiveDate> = rollup::current_days(ch, None).await?.into_iter().collect();
    let totals: Vec<LinkTotal> = ch.query(&totals_sql(&rolled)).await?;
    // Rows of links that are not ours (bad ids) are skipped rather than failing the pass.
    let totals: Vec<(Uuid, i64)> = totals
        .into_iter()
        .filter_map(|t| Some((t.link_id.parse().ok()?, i64::try_from(t.clicks).ok()?)))
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

/// Starts syncing every `interval` (the first pass right away).
pub fn start(db: PgPool, ch: ClickHouse, interval: Duration) -> Periodic {
    Periodic::start(
        "total_clicks sync",
        interval,
        PassMetrics {
            done: crate::metrics::TOTAL_CLICKS_SYNCED,
            failures: crate::metrics::TOTAL_CLICKS_SYNC_FAILURES,
        },
        move || {
            let (db, ch) = (db.clone(), ch.clone());
            async move { sync_total_clicks(&db, &ch).await }
        },
    )
}
