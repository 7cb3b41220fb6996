//! Link rows in PostgreSQL. Every query uses bound parameters.

use chrono::{DateTime, Utc};
use smo1_core::link::{LinkCacheRecord, LinkStatus, Protection, RedirectType, Utm};
use sqlx::PgPool;
use uuid::Uuid;

/// What the edge needs of a link row.
#[derive(sqlx::FromRow)]
struct LinkRow {
    id: Uuid,
    user_id: Uuid,
    slug: String,
    destination: String,
    utm_source: Option<String>,
    utm_medium: Option<String>,
    utm_campaign: Option<String>,
    utm_term: Option<String>,
    utm_content: Option<String>,
    redirect_type: i16,
    protection_type: String,
    status: String,
    expires_at: Option<DateTime<Utc>>,
    updated_at: DateTime<Utc>,
}

impl LinkRow {
    fn into_record(self) -> LinkCacheRecord {
        LinkCacheRecord {
            link_id: self.id.to_string(),
            user_id: self.user_id.to_string(),
            slug: self.slug,
            destination: self.destination,
            utm: Utm {
                source: self.utm_source,
                medium: self.utm_medium,
                campaign: self.utm_campaign,
                term: self.utm_term,
                content: self.utm_content,
            },
            // The CHECK constraint allows only the four redirect statuses.
            redirect_type: RedirectType::try_from(self.redirect_type as u16).unwrap_or_default(),
            protection: match self.protection_type.as_str() {
                "pin" => Protection::Pin,
                "password" => Protection::Password,
                _ => Protection::None,
            },
            status: match self.status.as_str() {
                "disabled" => LinkStatus::Disabled,
                "expired" => LinkStatus::Expired,
                _ => LinkStatus::Active,
            },
            expires_at: self.expires_at.map(|at| at.timestamp()),
            version: self.updated_at.timestamp_millis(),
        }
    }
}

/// The link a visitor means by `slug`: a custom slug wins over a uid that happens to be equal.
#[tracing::instrument(skip(db))]
pub async fn find_by_slug(db: &PgPool, slug: &str) -> sqlx::Result<Option<LinkCacheRecord>> {
    let row = sqlx::query_as::<_, LinkRow>(
        "SELECT id, user_id, $1 AS slug, destination, utm_source, utm_medium, utm_campaign,
                utm_term, utm_content, redirect_type, protection_type::text AS protection_type,
                status::text AS status, expires_at, updated_at
           FROM links
          WHERE custom_slug = $1 OR uid = $1
          ORDER BY (custom_slug = $1) DESC NULLS LAST
          LIMIT 1",
    )
    .bind(slug)
    .fetch_optional(db)
    .await?;
    Ok(row.map(LinkRow::into_record))
}

/// Fields of a new link, already validated.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub user_id: Uuid,
    pub uid: String,
    pub custom_slug: Option<String>,
    pub destination: String,
    pub title: Option<String>,
    pub utm: Utm,
    pub redirect_type: RedirectType,
    pub expires_at: Option<DateTime<Utc>>,
}

#[tracing::instrument(skip_all)]
pub async fn insert(db: &PgPool, link: &NewLink) -> sqlx::Result<Uuid> {
    sqlx::query_scalar(
        "INSERT INTO links (user_id, uid, custom_slug, destination, title, utm_source, utm_medium,
                            utm_campaign, utm_term, utm_content, redirect_type, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         RETURNING id",
    )
    .bind(link.user_id)
    .bind(&link.uid)
    .bind(&link.custom_slug)
    .bind(&link.destination)
    .bind(&link.title)
    .bind(&link.utm.source)
    .bind(&link.utm.medium)
    .bind(&link.utm.campaign)
    .bind(&link.utm.term)
    .bind(&link.utm.content)
    .bind(link.redirect_type.status() as i16)
    .bind(link.expires_at)
    .fetch_one(db)
    .await
}

/// Changes a link's destination; returns the slugs it answers to (for cache invalidation).
#[tracing::instrument(skip(db))]
pub async fn update_destination(
    db: &PgPool,
    id: Uuid,
    destination: &str,
) -> sqlx::Result<Option<Vec<String>>> {
    let row: Option<(String, Option<String>)> = sqlx::query_as(
        "UPDATE links SET destination = $2 WHERE id = $1 RETURNING uid, custom_slug",
    )
    .bind(id)
    .bind(destination)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(uid, custom)| std::iter::once(uid).chain(custom).collect()))
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
