//! Sign-in link and invitation rows in PostgreSQL.

use chrono::{DateTime, TimeDelta, Utc};
use sqlx::PgPool;
use std::net::IpAddr;
use uuid::Uuid;

/// The id of the user with `email`, compared case-insensitively (`users_email_lower_key`).
#[tracing::instrument(skip(db))]
pub async fn find_user_id(db: &PgPool, email: &str) -> sqlx::Result<Option<Uuid>> {
    sqlx::query_scalar("SELECT id FROM users WHERE lower(email) = lower($1)")
        .bind(email)
        .fetch_optional(db)
        .await
}

/// Stores a token's hash; answers when it expires.
#[tracing::instrument(skip(db, hash))]
pub async fn insert_token(
    db: &PgPool,
    hash: &[u8; 32],
    email: &str,
    user_id: Option<Uuid>,
    ip: Option<IpAddr>,
    ttl: TimeDelta,
) -> sqlx::Result<DateTime<Utc>> {
    sqlx::query_scalar(
        "INSERT INTO sign_in_tokens (token_hash, email, user_id, requested_ip, expires_at)
         VALUES ($1, $2, $3, $4::inet, now() + make_interval(secs => $5))
         RETURNING expires_at",
    )
    .bind(hash.as_slice())
    .bind(email)
    .bind(user_id)
    .bind(ip.map(|ip| ip.to_string()))
    .bind(ttl.as_seconds_f64())
    .fetch_one(db)
    .await
}

/// A token that was just used: whom it was for.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RedeemedToken {
    pub email: String,
    pub user_id: Option<Uuid>,
}

/// Marks the unused, unexpired token with this hash used, in one statement, so two requests with
/// the same link cannot both succeed. `None` for unknown, used and expired tokens alike.
#[tracing::instrument(skip_all)]
pub async fn redeem(db: &PgPool, hash: &[u8; 32]) -> sqlx::Result<Option<RedeemedToken>> {
    sqlx::query_as(
        "UPDATE sign_in_tokens SET used_at = now()
          WHERE token_hash = $1 AND used_at IS NULL AND expires_at > now()
          RETURNING email, user_id",
    )
    .bind(hash.as_slice())
    .fetch_optional(db)
    .await
}

/// Deletes tokens that expired before `before` (used or not); answers how many.
#[tracing::instrument(skip(db))]
pub async fn delete_expired(db: &PgPool, before: DateTime<Utc>) -> sqlx::Result<u64> {
    let done = sqlx::query("DELETE FROM sign_in_tokens WHERE expires_at < $1")
        .bind(before)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Puts `email` on the invite list (`smo1-origin admin invite`); `false` when it already was.
#[tracing::instrument(skip(db))]
pub async fn add_invite(db: &PgPool, email: &str) -> sqlx::Result<bool> {
    let done = sqlx::query(
        "INSERT INTO invites (email) VALUES ($1) ON CONFLICT (lower(email)) DO NOTHING",
    )
    .bind(email)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Whether `email` is on the invite list.
#[tracing::instrument(skip(db))]
pub async fn is_invited(db: &PgPool, email: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM invites WHERE lower(email) = lower($1))")
        .bind(email)
        .fetch_one(db)
        .await
}

/// Records the invited person's first sign-in (the first one only).
#[tracing::instrument(skip(db))]
pub async fn mark_invite_accepted(db: &PgPool, email: &str) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE invites SET accepted_at = now()
          WHERE lower(email) = lower($1) AND accepted_at IS NULL",
    )
    .bind(email)
    .execute(db)
    .await?;
    Ok(())
}
