//! Unlock attempts on protected links in PostgreSQL (`protection_attempts`): each check of a
//! secret is recorded first, so failures past either limit lock out before any secret is checked:
//! [`MAX_FAILED_ATTEMPTS`] per address (IPv6: per /64, [`crate::client_ip::bucket`]) and a
//! ceiling per link across all addresses (`UNLOCK_MAX_FAILURES_PER_LINK`), so neither a /64 full
//! of addresses nor a botnet gets more guesses. Every query uses bound parameters.

use smo1_core::unlock::{MAX_FAILED_ATTEMPTS, WINDOW_SECS};
use sqlx::PgPool;
use uuid::Uuid;

/// The outcome of asking to check one more secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reservation {
    /// A failed attempt is recorded (to be marked succeeded if the secret is right); if it stays
    /// failed, `attempts_left` more are allowed before the lockout.
    Reserved { attempt: i64, attempts_left: u32 },
    /// A limit of failures in the window is reached; it lifts in `retry_after` seconds.
    Locked { retry_after: i64 },
}

/// Records a failed attempt of `ip` on `link_id` unless its address group already has
/// [`MAX_FAILED_ATTEMPTS`] failures within the window, or the link `link_ceiling` from all
/// addresses. An advisory lock per link makes the counts and the insert one step, so
/// concurrent guesses cannot slip past either limit. Uses `protection_attempts_link_created_idx`.
#[tracing::instrument(skip(db))]
pub async fn reserve_attempt(
    db: &PgPool,
    link_id: Uuid,
    ip: std::net::IpAddr,
    link_ceiling: u32,
) -> sqlx::Result<Reservation> {
    let group = crate::client_ip::bucket(ip).to_string();
    let mut tx = db.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('unlock|' || $1::text, 0))")
        .bind(link_id)
        .execute(&mut *tx)
        .await?;
    // The link's recent failures, newest first: seconds until each leaves the window, and
    // whether it came from this address group.
    let recent: Vec<(i64, bool)> = sqlx::query_as(
        "SELECT ceil(extract(epoch FROM created_at - now()) + $3)::bigint,
                ip_address <<= $2::inet
           FROM protection_attempts
          WHERE link_id = $1 AND NOT succeeded
            AND created_at > now() - make_interval(secs => $3)
          ORDER BY created_at DESC
          LIMIT $4",
    )
    .bind(link_id)
    .bind(&group)
    .bind(WINDOW_SECS as f64)
    .bind(i64::from(link_ceiling))
    .fetch_all(&mut *tx)
    .await?;
    let from_group: Vec<i64> = recent
        .iter()
        .filter(|(_, ours)| *ours)
        .map(|(leaving, _)| *leaving)
        .collect();
    // A lock lifts when the oldest of the failures that make it leaves the window.
    let locked_until = |failures: &[i64], limit: u32| {
        failures
            .get(limit as usize - 1)
            .map(|leaving| (*leaving).max(1))
    };
    let all: Vec<i64> = recent.iter().map(|(leaving, _)| *leaving).collect();
    let retry_after = [
        locked_until(&from_group, MAX_FAILED_ATTEMPTS),
        locked_until(&all, link_ceiling),
    ]
    .into_iter()
    .flatten()
    .max();
    if let Some(retry_after) = retry_after {
        return Ok(Reservation::Locked { retry_after });
    }
    let attempt: i64 = sqlx::query_scalar(
        "INSERT INTO protection_attempts (link_id, ip_address, succeeded)
         VALUES ($1, $2::inet, false) RETURNING id",
    )
    .bind(link_id)
    .bind(ip.to_string())
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    let left = |used: usize, limit: u32| limit.saturating_sub(used as u32 + 1);
    Ok(Reservation::Reserved {
        attempt,
        attempts_left: left(from_group.len(), MAX_FAILED_ATTEMPTS)
            .min(left(all.len(), link_ceiling)),
    })
}

/// Forgets a reserved attempt whose secret was never checked (no verifier was free).
#[tracing::instrument(skip(db))]
pub async fn cancel_attempt(db: &PgPool, attempt: i64) -> sqlx::Result<()> {
    sqlx::query("DELETE FROM protection_attempts WHERE id = $1")
        .bind(attempt)
        .execute(db)
        .await?;
    Ok(())
}

#[tracing::instrument(skip(db))]
pub async fn mark_attempt_succeeded(db: &PgPool, attempt: i64) -> sqlx::Result<()> {
    sqlx::query("UPDATE protection_attempts SET succeeded = true WHERE id = $1")
        .bind(attempt)
        .execute(db)
        .await?;
    Ok(())
}
