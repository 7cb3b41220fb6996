//! `click_outbox`: clicks waiting for ClickHouse, durable in PostgreSQL.

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
    #[error("outbox row {id} is not a click event: {error}")]
    Unreadable { id: i64, error: serde_json::Error },
    #[error(transparent)]
    ClickHouse(#[from] ClickHouseError),
}

/// Moves up to `limit` of the oldest clicks into ClickHouse; returns how many.
///
/// Rows are locked (`SKIP LOCKED`, so several origins can replay at once) and deleted in the same
/// transaction only after ClickHouse accepted them. If the delete is lost after the insert, the
/// rows are sent again later: a duplicate that distinct-`click_id` counting absorbs.
pub async fn replay_batch(db: &PgPool, ch: &ClickHouse, limit: i64) -> Result<usize, ReplayError> {
    let mut tx = db.begin().await?;
    let rows: Vec<(i64, serde_json::Value)> = sqlx::query_as(
        "SELECT id, payload FROM click_outbox ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut body = Vec::new();
    let mut ids = Vec::with_capacity(rows.len());
    for (id, payload) in rows {
        let event: ClickEvent = serde_json::from_value(payload)
            .map_err(|error| ReplayError::Unreadable { id, error })?;
        serde_json::to_writer(&mut body, &event).expect("a click event always serializes");
        body.push(b'\n');
        ids.push(id);
    }
    let target = clickhouse::insert_target(ch.config());
    ch.insert_json_rows(target.table, target.settings, body)
        .await?;
    sqlx::query("DELETE FROM click_outbox WHERE id = ANY($1)")
        .bind(&ids)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(ids.len())
}

pub async fn depth(db: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT count(*) FROM click_outbox")
        .fetch_one(db)
        .await
}
