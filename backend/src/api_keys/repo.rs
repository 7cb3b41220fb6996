//! API key rows in PostgreSQL.

use crate::users::SubscriptionTier;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

/// What a key may do. A read-only key has `links:read` and `keys:read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum Scope {
    #[serde(rename = "links:read")]
    LinksRead,
    #[serde(rename = "links:write")]
    LinksWrite,
    #[serde(rename = "keys:read")]
    KeysRead,
    #[serde(rename = "keys:write")]
    KeysWrite,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Self::LinksRead,
        Self::LinksWrite,
        Self::KeysRead,
        Self::KeysWrite,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::LinksRead => "links:read",
            Self::LinksWrite => "links:write",
            Self::KeysRead => "keys:read",
            Self::KeysWrite => "keys:write",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|scope| scope.as_str() == s)
    }
}

fn scope_names(scopes: &[Scope]) -> Vec<&'static str> {
    scopes.iter().map(|s| s.as_str()).collect()
}

/// Scopes as stored; a name this version does not know grants nothing.
fn parse_scopes(names: &[String]) -> Vec<Scope> {
    names.iter().filter_map(|n| Scope::parse(n)).collect()
}

/// A key as listings show it: never the secret, never the hash.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: Uuid,
    pub name: String,
    /// The first characters of the key, to recognise it.
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct ApiKeyRow {
    id: Uuid,
    name: String,
    prefix: String,
    scopes: Vec<String>,
    last_used_at: Option<DateTime<Utc>>,
    revoked_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
}

impl From<ApiKeyRow> for ApiKey {
    fn from(row: ApiKeyRow) -> Self {
        Self {
            id: row.id,
            name: row.name,
            prefix: row.prefix,
            scopes: parse_scopes(&row.scopes),
            last_used_at: row.last_used_at,
            revoked_at: row.revoked_at,
            created_at: row.created_at,
        }
    }
}

const COLUMNS: &str = "id, name, prefix, scopes, last_used_at, revoked_at, created_at";

#[tracing::instrument(skip(db, hash))]
pub async fn insert(
    db: impl sqlx::PgExecutor<'_>,
    user_id: Uuid,
    name: &str,
    prefix: &str,
    hash: &[u8; 32],
    scopes: &[Scope],
) -> sqlx::Result<ApiKey> {
    let row: ApiKeyRow = sqlx::query_as(&format!(
        "INSERT INTO api_keys (user_id, name, prefix, key_hash, scopes)
         VALUES ($1, $2, $3, $4, $5)
         RETURNING {COLUMNS}"
    ))
    .bind(user_id)
    .bind(name)
    .bind(prefix)
    .bind(hash.as_slice())
    .bind(scope_names(scopes))
    .fetch_one(db)
    .await?;
    Ok(row.into())
}

/// Inserts a key unless the user already holds `max_live` unrevoked keys (`None` then). The
/// user's row is locked first, so concurrent creations cannot pass the bound.
#[tracing::instrument(skip(db, hash))]
pub async fn insert_bounded(
    db: &PgPool,
    max_live: u32,
    user_id: Uuid,
    name: &str,
    prefix: &str,
    hash: &[u8; 32],
    scopes: &[Scope],
) -> sqlx::Result<Option<ApiKey>> {
    let mut tx = db.begin().await?;
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR UPDATE")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    let live: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_keys WHERE user_id = $1 AND revoked_at IS NULL",
    )
    .bind(user_id)
    .fetch_one(&mut *tx)
    .await?;
    if live >= i64::from(max_live) {
        return Ok(None);
    }
    let key = insert(&mut *tx, user_id, name, prefix, hash, scopes).await?;
    tx.commit().await?;
    Ok(Some(key))
}

/// The user's keys, newest first, revoked ones included (they show when they were revoked).
#[tracing::instrument(skip(db))]
pub async fn list(db: &PgPool, user_id: Uuid) -> sqlx::Result<Vec<ApiKey>> {
    let rows: Vec<ApiKeyRow> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY created_at DESC, id DESC"
    ))
    .bind(user_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(ApiKey::from).collect())
}

/// Revokes one of the user's keys; `false` when the user has no such key. Revoking twice keeps
/// the first revocation time.
#[tracing::instrument(skip(db))]
pub async fn revoke(db: &PgPool, user_id: Uuid, id: Uuid) -> sqlx::Result<bool> {
    let result = sqlx::query(
        "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
          WHERE id = $1 AND user_id = $2",
    )
    .bind(id)
    .bind(user_id)
    .execute(db)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The live key with this hash and what its owner may do.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct KeyOwner {
    pub key_id: Uuid,
    pub user_id: Uuid,
    pub scopes: Vec<String>,
    pub tier: SubscriptionTier,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl KeyOwner {
    pub fn scopes(&self) -> Vec<Scope> {
        parse_scopes(&self.scopes)
    }
}

#[tracing::instrument(skip_all)]
pub async fn find_live_by_hash(db: &PgPool, hash: &[u8; 32]) -> sqlx::Result<Option<KeyOwner>> {
    sqlx::query_as(
        "SELECT k.id AS key_id, k.user_id, k.scopes, u.subscription_tier AS tier, k.last_used_at
           FROM api_keys k JOIN users u ON u.id = k.user_id
          WHERE k.key_hash = $1 AND k.revoked_at IS NULL",
    )
    .bind(hash.as_slice())
    .fetch_optional(db)
    .await
}

/// How stale `last_used_at` may get: it is written at most once per this interval per key, so
/// authentication costs no write per request.
pub const LAST_USED_RESOLUTION: chrono::TimeDelta = chrono::TimeDelta::minutes(1);

/// Records that the key was used, unless another request did within [`LAST_USED_RESOLUTION`].
#[tracing::instrument(skip(db))]
pub async fn touch(db: &PgPool, key_id: Uuid) -> sqlx::Result<()> {
    sqlx::query(
        "UPDATE api_keys SET last_used_at = now()
          WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')",
    )
    .bind(key_id)
    .execute(db)
    .await?;
    Ok(())
}
