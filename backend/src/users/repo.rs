//! User rows in PostgreSQL.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

/// The `subscription_tier` enum: decides the API rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, sqlx::Type, ToSchema, clap::ValueEnum)]
#[sqlx(type_name = "subscription_tier", rename_all = "lowercase")]
#[serde(rename_all = "lowercase")]
pub enum SubscriptionTier {
    Free,
    Pro,
    Business,
}

impl SubscriptionTier {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Free => "free",
            Self::Pro => "pro",
            Self::Business => "business",
        }
    }

    /// Most live (unrevoked) API keys an account of this tier may hold: the rate limit is per
    /// account, and this bounds the key table and the work of listing keys.
    pub fn max_api_keys(self) -> u32 {
        match self {
            Self::Free => 5,
            Self::Pro => 25,
            Self::Business => 100,
        }
    }
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow, ToSchema)]
pub struct User {
    pub id: Uuid,
    pub email: String,
    pub display_name: Option<String>,
    pub subscription_tier: SubscriptionTier,
    pub xp: i64,
    pub level: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str =
    "id, email, display_name, subscription_tier, xp, level, created_at, updated_at";

#[tracing::instrument(skip(db))]
pub async fn find(db: &PgPool, id: Uuid) -> sqlx::Result<Option<User>> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(id)
        .fetch_optional(db)
        .await
}

/// Creates a user; `None` when the email (case-insensitively) is already registered.
#[tracing::instrument(skip(db))]
pub async fn create(
    db: impl sqlx::PgExecutor<'_>,
    email: &str,
    display_name: Option<&str>,
    tier: SubscriptionTier,
) -> sqlx::Result<Option<User>> {
    sqlx::query_as(&format!(
        "INSERT INTO users (email, display_name, subscription_tier) VALUES ($1, $2, $3)
         ON CONFLICT (lower(email)) DO NOTHING
         RETURNING {COLUMNS}"
    ))
    .bind(email)
    .bind(display_name)
    .bind(tier)
    .fetch_optional(db)
    .await
}

/// Finds the user with `email` (case-insensitive) or creates them.
#[tracing::instrument(skip(db))]
pub async fn upsert_user(db: &PgPool, email: &str) -> sqlx::Result<Uuid> {
    sqlx::query_scalar(
        "INSERT INTO users (email) VALUES ($1)
         ON CONFLICT (lower(email)) DO UPDATE SET email = users.email
         RETURNING id",
    )
    .bind(email)
    .fetch_one(db)
    .await
}
