//! Domain rows in PostgreSQL. Every query uses bound parameters.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use smo1_core::domain::challenge_name;
use sqlx::PgPool;
use utoipa::ToSchema;
use uuid::Uuid;

/// Mirrors the PostgreSQL enum `domain_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DomainStatus {
    /// Not verified yet: serves nothing until its TXT record is found.
    Pending,
    /// Its TXT record was found: serves its links.
    Verified,
    /// It was verified, then its TXT record was missing or wrong for
    /// `DOMAIN_FAILURES_BEFORE_UNVERIFIED` checks in a row: serves nothing until found again.
    Failed,
}

impl DomainStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Verified => "verified",
            Self::Failed => "failed",
        }
    }

    fn from_label(label: &str) -> Self {
        match label {
            "verified" => Self::Verified,
            "failed" => Self::Failed,
            _ => Self::Pending,
        }
    }
}

/// The DNS record that verifies a domain.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Verification {
    /// Always `TXT`.
    #[schema(example = "TXT")]
    pub record_type: &'static str,
    /// Where to create it.
    #[schema(example = "_smo1-challenge.go.example.com")]
    pub name: String,
    /// What it must hold.
    pub value: String,
}

/// A custom domain as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Domain {
    pub id: Uuid,
    /// Lower case, without a trailing dot; internationalised names in their ASCII form.
    #[schema(example = "go.example.com")]
    pub hostname: String,
    pub status: DomainStatus,
    /// Why the last check failed; kept while a verified domain is still serving.
    pub failure_reason: Option<String>,
    /// Failed checks in a row (a verified domain turns `failed` at
    /// `DOMAIN_FAILURES_BEFORE_UNVERIFIED`).
    pub consecutive_failures: i32,
    pub verification: Verification,
    pub last_checked_at: Option<DateTime<Utc>>,
    pub verified_at: Option<DateTime<Utc>>,
    /// Where the domain's root (`/`) redirects; `null`: a neutral home page.
    pub root_redirect: Option<String>,
    /// Where unknown slugs redirect; `null`: the not-found page.
    pub not_found_redirect: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct StoredDomain {
    id: Uuid,
    hostname: String,
    status: String,
    verification_token: String,
    failure_reason: Option<String>,
    consecutive_failures: i32,
    last_checked_at: Option<DateTime<Utc>>,
    verified_at: Option<DateTime<Utc>>,
    root_redirect: Option<String>,
    not_found_redirect: Option<String>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<StoredDomain> for Domain {
    fn from(row: StoredDomain) -> Self {
        Self {
            id: row.id,
            verification: Verification {
                record_type: "TXT",
                name: challenge_name(&row.hostname),
                value: row.verification_token,
            },
            hostname: row.hostname,
            status: DomainStatus::from_label(&row.status),
            failure_reason: row.failure_reason,
            consecutive_failures: row.consecutive_failures,
            last_checked_at: row.last_checked_at,
            verified_at: row.verified_at,
            root_redirect: row.root_redirect,
            not_found_redirect: row.not_found_redirect,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

const COLUMNS: &str = "id, hostname, status::text AS status, verification_token, failure_reason,
    consecutive_failures, last_checked_at, verified_at, root_redirect, not_found_redirect,
    created_at, updated_at";

/// Adds a pending domain; `None` when the user already has this hostname.
#[tracing::instrument(skip(db, token))]
pub async fn insert(
    db: &PgPool,
    user_id: Uuid,
    hostname: &str,
    token: &str,
) -> sqlx::Result<Option<Domain>> {
    let inserted = sqlx::query_as::<_, StoredDomain>(&format!(
        "INSERT INTO domains (user_id, hostname, verification_token) VALUES ($1, $2, $3)
         RETURNING {COLUMNS}"
    ))
    .bind(user_id)
    .bind(hostname)
    .bind(token)
    .fetch_one(db)
    .await;
    match inserted {
        Ok(row) => Ok(Some(row.into())),
        Err(e)
            if e.as_database_error()
                .and_then(|d| d.constraint())
                .is_some_and(|c| c == "domains_user_hostname_key") =>
        {
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// The user's domains, by hostname.
#[tracing::instrument(skip(db))]
pub async fn list(db: &PgPool, user_id: Uuid) -> sqlx::Result<Vec<Domain>> {
    let rows: Vec<StoredDomain> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM domains WHERE user_id = $1 ORDER BY hostname"
    ))
    .bind(user_id)
    .fetch_all(db)
    .await?;
    Ok(rows.into_iter().map(Domain::from).collect())
}

#[tracing::instrument(skip(db))]
pub async fn find(db: &PgPool, user_id: Uuid, id: Uuid) -> sqlx::Result<Option<Domain>> {
    let row: Option<StoredDomain> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM domains WHERE id = $1 AND user_id = $2"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Domain::from))
}

/// The user's domain of `hostname`.
#[tracing::instrument(skip(db))]
pub async fn find_by_hostname(
    db: &PgPool,
    user_id: Uuid,
    hostname: &str,
) -> sqlx::Result<Option<Domain>> {
    let row: Option<StoredDomain> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM domains WHERE hostname = $1 AND user_id = $2"
    ))
    .bind(hostname)
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Domain::from))
}

/// What a host serves, when some account's domain of that hostname is verified: its root and
/// not-found targets.
#[tracing::instrument(skip(db))]
pub async fn serving(
    db: &PgPool,
    hostname: &str,
) -> sqlx::Result<Option<(Option<String>, Option<String>)>> {
    sqlx::query_as(
        "SELECT root_redirect, not_found_redirect FROM domains
          WHERE hostname = $1 AND status = 'verified'",
    )
    .bind(hostname)
    .fetch_optional(db)
    .await
}

/// Whether `hostname` is a verified domain of any account (a destination there would loop).
#[tracing::instrument(skip(db))]
pub async fn is_verified(db: &PgPool, hostname: &str) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM domains WHERE hostname = $1 AND status = 'verified')",
    )
    .bind(hostname)
    .fetch_one(db)
    .await
}

/// The outcome of a check, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRecord {
    pub status: DomainStatus,
    pub consecutive_failures: i32,
    pub failure_reason: Option<String>,
}

/// Why a check's outcome could not be stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordConflict {
    /// Another account's domain of this hostname is verified.
    VerifiedElsewhere,
}

/// Stores a check of domain `id`; `Ok(None)` when the domain is gone.
#[tracing::instrument(skip(db))]
pub async fn record_check(
    db: &PgPool,
    id: Uuid,
    record: &CheckRecord,
) -> sqlx::Result<Result<Option<Domain>, RecordConflict>> {
    let updated = sqlx::query_as::<_, StoredDomain>(&format!(
        "UPDATE domains
            SET status = $2::domain_status, consecutive_failures = $3, failure_reason = $4,
                last_checked_at = now(),
                verified_at = CASE WHEN $2 = 'verified' AND status <> 'verified' THEN now()
                                   ELSE verified_at END
          WHERE id = $1
          RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(record.status.as_str())
    .bind(record.consecutive_failures)
    .bind(&record.failure_reason)
    .fetch_optional(db)
    .await;
    match updated {
        Ok(row) => Ok(Ok(row.map(Domain::from))),
        Err(e)
            if e.as_database_error()
                .and_then(|d| d.constraint())
                .is_some_and(|c| c == "domains_verified_hostname_key") =>
        {
            Ok(Err(RecordConflict::VerifiedElsewhere))
        }
        Err(e) => Err(e),
    }
}

/// Sets the user's domain's targets (already validated); `None` when the user has no such
/// domain.
#[tracing::instrument(skip(db))]
pub async fn set_targets(
    db: &PgPool,
    user_id: Uuid,
    id: Uuid,
    root_redirect: Option<&str>,
    not_found_redirect: Option<&str>,
) -> sqlx::Result<Option<Domain>> {
    let row: Option<StoredDomain> = sqlx::query_as(&format!(
        "UPDATE domains SET root_redirect = $3, not_found_redirect = $4
          WHERE id = $1 AND user_id = $2
          RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(user_id)
    .bind(root_redirect)
    .bind(not_found_redirect)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Domain::from))
}

/// Deletes the user's domain and, by cascade, its links; returns it, or `None`.
#[tracing::instrument(skip(db))]
pub async fn delete(db: &PgPool, user_id: Uuid, id: Uuid) -> sqlx::Result<Option<Domain>> {
    let row: Option<StoredDomain> = sqlx::query_as(&format!(
        "DELETE FROM domains WHERE id = $1 AND user_id = $2 RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Domain::from))
}

/// A domain due for a re-check.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Due {
    pub id: Uuid,
    pub hostname: String,
    pub verification_token: String,
    pub status: String,
    pub consecutive_failures: i32,
}

impl Due {
    pub fn status(&self) -> DomainStatus {
        DomainStatus::from_label(&self.status)
    }
}

/// Up to `limit` domains not checked for `min_age`, longest unchecked first.
#[tracing::instrument(skip(db))]
pub async fn due(db: &PgPool, min_age: std::time::Duration, limit: i64) -> sqlx::Result<Vec<Due>> {
    sqlx::query_as(
        "SELECT id, hostname, verification_token, status::text AS status, consecutive_failures
           FROM domains
          WHERE last_checked_at IS NULL OR last_checked_at <= now() - make_interval(secs => $1)
          ORDER BY last_checked_at NULLS FIRST
          LIMIT $2",
    )
    .bind(min_age.as_secs_f64())
    .bind(limit)
    .fetch_all(db)
    .await
}
