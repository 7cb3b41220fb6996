//! Unlock attempts on protected links in PostgreSQL (`protection_attempts`): each check of a
//! secret is recorded per (link, IP) first, so failures past the limit lock that IP out for the
//! window. Every query uses bound parameters.

use sqlx::PgPool;
use uuid::Uuid;

/// The outcome of asking to check one more secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// A failed attempt is recorded (to be marked succeeded if the secret is right).
    Reserved { attempt: i64, earlier_failures: u32 },
    /// The limit of failures in the window is reached; it lifts in `retry_after` seconds.
    Locked { retry_after: i64 },
}

/// Records a failed attempt of `ip` on `link_id` unless it already has
/// [`MAX_FAILED_ATTEMPTS`](smo1_core::unlock::MAX_FAILED_ATTEMPTS) failures within the window.
/// An advisory lock per (link, IP) makes the count and the insert one step, so concurrent
/// guesses cannot slip past the limit. Uses `protection_attempts_link_ip_idx`.
#[tracing::instrument(skip(db))]
pub async fn reserve_attempt(
    db: &PgPool,
    link_id: Uuid,
    ip: std::net::IpAddr,
) -> sqlx::Result<Reservation> {
    use smo1_core::unlock::{MAX_FAILED_ATTEMPTS, WINDOW_SECS};
    let ip = ip.to_string();
    let mut tx = db.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1::text || '|' || $2, 0))")
        .bind(link_id)
        .bind(&ip)
        .execute(&mut *tx)
        .await?;
    // Seconds until each recent failure leaves the window, newest first.
    let leaving: Vec<i64> = sqlx::query_scalar(
        "SELECT ceil(extract(epoch FROM created_at - now()) + $3)::bigint
           FROM protection_attempts
          WHERE link_id = $1 AND ip_address = $2::inet AND NOT succeeded
            AND created_at > now() - make_interval(secs => $3)
          ORDER BY created_at DESC
          LIMIT $4",
    )
    .bind(link_id)
    .bind(&ip)
    .bind(WINDOW_SECS as f64)
    .bind(i64::from(MAX_FAILED_ATTEMPTS))
    .fetch_all(&mut *tx)
    .await?;
    if leaving.len() >= MAX_FAILED_ATTEMPTS as usize {
        // The lock lifts when the oldest of the last N failures leaves the window.
        let retry_after = leaving.last().copied().unwrap_or(1).max(1);
        return Ok(Reservation::Locked { retry_after });
    }
    let attempt: i64 = sqlx::query_scalar(
        "INSERT INTO protection_attempts (link_id, ip_address, succeeded)
         VALUES ($1, $2::inet, false) RETURNING id",
    )
    .bind(link_id)
    .bind(&ip)
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(Reservation::Reserved {
        attempt,
        earlier_failures: leaving.len() as u32,
    })
}

#[tracing::instrument(skip(db))]
pub async fn mark_attempt_succeeded(db: &PgPool, attempt: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE protection_attempts SET succeeded = true WHERE id = $1")
        .bind(attempt)
        .execute(db)
        .await?;
    Ok(())
}
