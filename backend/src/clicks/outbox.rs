//! `click_outbox`: clicks waiting for ClickHouse, durable in PostgreSQL; and
//! `click_outbox_quarantine`, the rows the replay could not read, kept out of its way.

use crate::clickhouse::{self, ClickHouse, ClickHouseError};
use smo1_core::click::ClickEvent;
use sqlx::PgPool;

/// Stores events; a click already waiting (same `click_id`) is kept once.
pub async fn store(db: &PgPool, events: &[ClickEvent]) -> sqlx::Result<()> {
    let ids: Vec<&str> = events.iter().map(|e| e.click_id.as_str()).collect();
    let payloads: Vec<serde_json::Value> = events
        .iter()
        .map(|e| serde_json::to_value(e).expect("a click event always serializes"))
        .collect();
    sqlx::query(
        "INSERT INTO click_outbox (click_id, payload)
         SELECT * FROM UNNEST($1::text[], $2::jsonb[])
         ON CONFLICT (click_id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&payloads)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("outbox: {0}")]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
}

/// What one replay batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replayed {
    /// Rows taken out of the outbox: sent plus quarantined.
    pub moved: usize,
    /// Clicks sent to ClickHouse.
    pub sent: usize,
}

/// The event in an outbox row, or why it is not one.
fn read(payload: serde_json::Value) -> Result<ClickEvent, String> {
    let event: ClickEvent = serde_json::from_value(payload).map_err(|e| e.to_string())?;
    event.validate()?;
    Ok(event)
}

/// Moves up to `limit` of the oldest clicks into ClickHouse.
///
/// Rows are locked (`SKIP LOCKED`, so several origins can replay at once) and deleted in the same
/// transaction only after ClickHouse accepted them. If the delete is lost after the insert, the
/// rows are sent again later: a duplicate that distinct-`click_id` counting absorbs. A row that
/// is not a readable click event is moved to the quarantine in the same transaction, logged and
/// counted, and the rest of the batch goes on.
pub async fn replay_batch(
    db: &PgPool,
    ch: &ClickHouse,
    limit: i64,
) -> Result<Replayed, ReplayError> {
    let mut tx = db.begin().await?;
    let rows: Vec<(i64, serde_json::Value)> = sqlx::query_as(
        "SELECT id, payload FROM click_outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let mut body = Vec::new();
    let mut sent = Vec::with_capacity(rows.len());
    let mut poison = Vec::new();
    let mut reasons = Vec::new();
    for (id, payload) in rows {
        match read(payload) {
            Ok(event) => {
                serde_json::to_writer(&mut body, &event).expect("a click event always serializes");
                body.push(b'\n');
                sent.push(id);
            }
            Err(error) => {
                tracing::error!(id, %error, "outbox row is not a click event; quarantined");
                poison.push(id);
                reasons.push(error);
            }
        }
    }
    if !sent.is_empty() {
        let target = clickhouse::insert_target(ch.config());
        ch.insert_json_rows(target.table, target.settings, body)
            .await?;
    }
    if !poison.is_empty() {
        sqlx::query(
            "INSERT INTO click_outbox_quarantine (id, click_id, payload, error, enqueued_at)
             SELECT o.id, o.click_id, o.payload, r.error, o.enqueued_at
             FROM click_outbox o JOIN UNNEST($1::bigint[], $2::text[]) AS r (id, error) USING (id)",
        )
        .bind(&poison)
        .bind(&reasons)
        .execute(&mut *tx)
        .await?;
    }
    let moved: Vec<i64> = sent.iter().chain(&poison).copied().collect();
    sqlx::query("DELETE FROM click_outbox WHERE id = ANY($1)")
        .bind(&moved)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    metrics::counter!(crate::metrics::CLICKS_QUARANTINED).increment(poison.len() as u64);
    Ok(Replayed {
        moved: moved.len(),
        sent: sent.len(),
    })
}

/// Rows waiting in the outbox, and rows in its quarantine.
pub async fn depths(db: &PgPool) -> sqlx::Result<(i64, i64)> {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM click_outbox), (SELECT count(*) FROM click_outbox_quarantine)",
    )
    .fetch_one(db)
    .await
}

/// Seconds the oldest click in the outbox has waited; 0 when it is empty.
pub async fn oldest_age_secs(db: &PgPool) -> sqlx::Result<f64> {
    sqlx::query_scalar(
        "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(enqueued_at)), 0)::float8 FROM click_outbox",
    )
    .fetch_one(db)
    .await
}

pub async fn depth(db: &PgPool) -> sqlx::Result<i64> {
    Ok(depths(db).await?.0)
}
