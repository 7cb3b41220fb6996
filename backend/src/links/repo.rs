//! Link rows in PostgreSQL. Every query uses bound parameters.

use super::rules::{self, LinkRule};
use crate::read_replica::{Lsn, PRIMARY_POSITION};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::Serialize;
use smo1_core::link::{LinkCacheRecord, LinkStatus, Protection, RedirectType, Utm};
use smo1_core::targeting::Rule;
use sqlx::{PgConnection, PgPool, Postgres, QueryBuilder};
use utoipa::ToSchema;
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
    /// JSON (`rules::text`).
    rules: String,
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
            protection: Protection::from_label(&self.protection_type).unwrap_or_default(),
            status: LinkStatus::from_label(&self.status).unwrap_or_default(),
            expires_at: self.expires_at.map(|at| at.timestamp()),
            version: self.updated_at.timestamp_millis(),
            rules: rules::from_column(&self.rules),
        }
    }
}

/// `WHERE` condition choosing the links of one domain: `$2` is the hostname of a verified custom
/// domain, or NULL for the default domain. Two forms, so each can use its partial index.
fn on_domain(domain: Option<&str>) -> &'static str {
    match domain {
        None => "domain_id IS NULL AND $2::text IS NULL",
        Some(_) => {
            "domain_id = (SELECT id FROM domains WHERE hostname = $2 AND status = 'verified')"
        }
    }
}

/// The link a visitor means by `slug` on `domain` (`None`: the default domain; a custom domain
/// that is not verified has none): a custom slug wins over a uid that happens to be equal.
#[tracing::instrument(skip(db))]
pub async fn find_by_slug(
    db: &PgPool,
    domain: Option<&str>,
    slug: &str,
) -> sqlx::Result<Option<LinkCacheRecord>> {
    let row = sqlx::query_as::<_, LinkRow>(&format!(
        "SELECT id, user_id, $1 AS slug, destination, utm_source, utm_medium, utm_campaign,
                utm_term, utm_content, redirect_type, protection_type::text AS protection_type,
                status::text AS status, expires_at, updated_at, rules::text AS rules
           FROM links
          WHERE (custom_slug = $1 OR uid = $1) AND {}
          ORDER BY (custom_slug = $1) DESC NULLS LAST
          LIMIT 1",
        on_domain(domain)
    ))
    .bind(slug)
    .bind(domain)
    .fetch_optional(db)
    .await?;
    Ok(row.map(LinkRow::into_record))
}

/// Fields of a new link, already validated.
#[derive(Debug, Clone)]
pub struct NewLink {
    pub user_id: Uuid,
    /// `None`: the default domain.
    pub domain_id: Option<Uuid>,
    pub uid: String,
    pub custom_slug: Option<String>,
    pub destination: String,
    pub title: Option<String>,
    pub utm: Utm,
    pub redirect_type: RedirectType,
    pub expires_at: Option<DateTime<Utc>>,
    pub rules: Vec<Rule>,
}

/// A link as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Link {
    pub id: Uuid,
    /// The random slug every link has.
    pub uid: String,
    pub custom_slug: Option<String>,
    /// What visitors use: the custom slug if set, else the uid.
    pub slug: String,
    /// The custom domain the link is on; `null`: the default domain.
    #[schema(example = "go.example.com")]
    pub domain: Option<String>,
    pub destination: String,
    pub title: Option<String>,
    pub utm: Utm,
    #[schema(value_type = u16, example = 302)]
    pub redirect_type: RedirectType,
    pub protection: Protection,
    pub status: LinkStatus,
    pub expires_at: Option<DateTime<Utc>>,
    /// Targeting rules, in order: the first that holds for a visitor picks the destination.
    pub rules: Vec<LinkRule>,
    pub total_clicks: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Link {
    /// Every slug the link answers to on its domain (each has its own cache entry).
    pub fn slugs(&self) -> Vec<String> {
        std::iter::once(self.uid.clone())
            .chain(self.custom_slug.clone())
            .collect()
    }
}

#[derive(sqlx::FromRow)]
struct StoredLink {
    id: Uuid,
    domain: Option<String>,
    uid: String,
    custom_slug: Option<String>,
    destination: String,
    title: Option<String>,
    utm_source: Option<String>,
    utm_medium: Option<String>,
    utm_campaign: Option<String>,
    utm_term: Option<String>,
    utm_content: Option<String>,
    redirect_type: i16,
    protection_type: String,
    status: String,
    expires_at: Option<DateTime<Utc>>,
    /// JSON (`rules::text`).
    rules: String,
    total_clicks: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl From<StoredLink> for Link {
    fn from(row: StoredLink) -> Self {
        Self {
            id: row.id,
            slug: row.custom_slug.clone().unwrap_or_else(|| row.uid.clone()),
            uid: row.uid,
            custom_slug: row.custom_slug,
            domain: row.domain,
            destination: row.destination,
            title: row.title,
            utm: Utm {
                source: row.utm_source,
                medium: row.utm_medium,
                campaign: row.utm_campaign,
                term: row.utm_term,
                content: row.utm_content,
            },
            redirect_type: RedirectType::try_from(row.redirect_type as u16).unwrap_or_default(),
            protection: Protection::from_label(&row.protection_type).unwrap_or_default(),
            status: LinkStatus::from_label(&row.status).unwrap_or_default(),
            expires_at: row.expires_at,
            rules: rules::from_column(&row.rules)
                .iter()
                .map(LinkRule::from)
                .collect(),
            total_clicks: row.total_clicks,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
}

const LINK_COLUMNS: &str = "id,
    (SELECT hostname FROM domains WHERE domains.id = links.domain_id) AS domain, uid, custom_slug, destination, title, utm_source, utm_medium,
    utm_campaign, utm_term, utm_content, redirect_type, protection_type::text AS protection_type,
    status::text AS status, expires_at, rules::text AS rules, total_clicks, created_at,
    updated_at";

/// Why a slug could not be claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlugConflict {
    /// The requested custom slug is another link's custom slug or uid.
    SlugTaken,
    /// The generated uid is another link's uid or custom slug: generate another.
    UidTaken,
}

/// Serialises every claim of `names` on one domain (as a custom slug or as a uid) until the
/// transaction ends: uniqueness across the two columns is not something a unique index can
/// express.
async fn lock_names(
    tx: &mut PgConnection,
    domain_id: Option<Uuid>,
    names: &[&str],
) -> sqlx::Result<()> {
    let mut names = names.to_vec();
    // One order for everyone, so two claims never wait on each other in a cycle.
    names.sort_unstable();
    for name in names {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext(coalesce($2::text || '/', '') || $1))")
            .bind(name)
            .bind(domain_id)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Whether `name` is taken by another link of the same domain, as a uid or as a custom slug.
async fn name_in_use(
    tx: &mut PgConnection,
    domain_id: Option<Uuid>,
    name: &str,
    except: Option<Uuid>,
) -> sqlx::Result<bool> {
    sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM links
                         WHERE (uid = $1 OR custom_slug = $1) AND id IS DISTINCT FROM $2
                           AND domain_id IS NOT DISTINCT FROM $3)",
    )
    .bind(name)
    .bind(except)
    .bind(domain_id)
    .fetch_one(&mut *tx)
    .await
}

/// Maps a unique violation on the slug indexes to its meaning.
fn slug_conflict(error: &sqlx::Error) -> Option<SlugConflict> {
    match error.as_database_error()?.constraint()? {
        "links_custom_slug_key" | "links_domain_custom_slug_key" => Some(SlugConflict::SlugTaken),
        "links_uid_key" => Some(SlugConflict::UidTaken),
        _ => None,
    }
}

/// Inserts a link whose custom slug and uid are each unused as either kind of slug.
#[tracing::instrument(skip_all, fields(uid = %link.uid, custom_slug = ?link.custom_slug))]
pub async fn insert(db: &PgPool, link: &NewLink) -> sqlx::Result<Result<Link, SlugConflict>> {
    let mut tx = db.begin().await?;
    let names: Vec<&str> = std::iter::once(link.uid.as_str())
        .chain(link.custom_slug.as_deref())
        .collect();
    lock_names(&mut tx, link.domain_id, &names).await?;
    if let Some(custom) = &link.custom_slug {
        if name_in_use(&mut tx, link.domain_id, custom, None).await? {
            return Ok(Err(SlugConflict::SlugTaken));
        }
    }
    if name_in_use(&mut tx, link.domain_id, &link.uid, None).await? {
        return Ok(Err(SlugConflict::UidTaken));
    }
    let inserted = sqlx::query_as::<_, StoredLink>(&format!(
        "INSERT INTO links (user_id, uid, custom_slug, destination, title, utm_source, utm_medium,
                            utm_campaign, utm_term, utm_content, redirect_type, expires_at,
                            domain_id, rules)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14::jsonb)
         RETURNING {LINK_COLUMNS}"
    ))
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
    .bind(link.domain_id)
    .bind(rules::to_column(&link.rules))
    .fetch_one(&mut *tx)
    .await;
    match inserted {
        Ok(row) => {
            tx.commit().await?;
            Ok(Ok(row.into()))
        }
        Err(e) => slug_conflict(&e).map(Err).ok_or(e),
    }
}

/// One of the user's links.
#[tracing::instrument(skip(db))]
pub async fn find(db: &PgPool, user_id: Uuid, id: Uuid) -> sqlx::Result<Option<Link>> {
    let row: Option<StoredLink> = sqlx::query_as(&format!(
        "SELECT {LINK_COLUMNS} FROM links WHERE id = $1 AND user_id = $2"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Link::from))
}

/// Whether link `id` is `user_id`'s.
pub async fn owns(db: &PgPool, user_id: Uuid, id: Uuid) -> sqlx::Result<bool> {
    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM links WHERE id = $1 AND user_id = $2)")
        .bind(id)
        .bind(user_id)
        .fetch_one(db)
        .await
}

/// The order of a link listing (always descending, ties by id).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LinkSort {
    /// Newest first.
    #[default]
    Created,
    /// Most clicked first, by `total_clicks` (synced from ClickHouse; no ClickHouse query).
    Clicks,
}

/// Where a page of links starts: after this link in (sort key, id) descending order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cursor {
    Created { created_at: DateTime<Utc>, id: Uuid },
    Clicks { total_clicks: i64, id: Uuid },
}

impl Cursor {
    /// The cursor after `link` in `sort` order.
    pub fn after(link: &Link, sort: LinkSort) -> Self {
        match sort {
            LinkSort::Created => Self::Created {
                created_at: link.created_at,
                id: link.id,
            },
            LinkSort::Clicks => Self::Clicks {
                total_clicks: link.total_clicks,
                id: link.id,
            },
        }
    }

    /// Opaque to clients: URL-safe base64 of `{microseconds}.{id}` or `clicks:{count}.{id}`.
    pub fn encode(&self) -> String {
        let text = match self {
            Self::Created { created_at, id } => format!("{}.{id}", created_at.timestamp_micros()),
            Self::Clicks { total_clicks, id } => format!("clicks:{total_clicks}.{id}"),
        };
        URL_SAFE_NO_PAD.encode(text)
    }

    /// A cursor of the listing in `sort` order; one from another order is invalid.
    pub fn decode(raw: &str, sort: LinkSort) -> Option<Self> {
        let text = String::from_utf8(URL_SAFE_NO_PAD.decode(raw).ok()?).ok()?;
        let (key, id) = text.split_once('.')?;
        let id = id.parse().ok()?;
        match (sort, key.strip_prefix("clicks:")) {
            (LinkSort::Created, None) => Some(Self::Created {
                created_at: DateTime::from_timestamp_micros(key.parse().ok()?)?,
                id,
            }),
            (LinkSort::Clicks, Some(count)) => Some(Self::Clicks {
                total_clicks: count.parse().ok()?,
                id,
            }),
            _ => None,
        }
    }
}

/// Filters of a link listing; `None` filters nothing.
#[derive(Debug, Clone, Default)]
pub struct LinkFilter {
    pub status: Option<LinkStatus>,
    /// Only links with (`true`) or without (`false`) a PIN or password.
    pub protected: Option<bool>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// Fuzzy match against custom slug, uid and title (pg_trgm).
    pub search: Option<String>,
    pub sort: LinkSort,
    pub after: Option<Cursor>,
}

/// Word similarity a search needs (pg_trgm's default, 0.6, misses one-letter typos in short
/// slugs such as "sprng" for "spring"); set per transaction.
const SEARCH_SIMILARITY: &str = "0.4";

/// Up to `limit` of the user's links in `filter.sort` order.
#[tracing::instrument(skip(db))]
pub async fn list(
    db: &PgPool,
    user_id: Uuid,
    filter: &LinkFilter,
    limit: i64,
) -> sqlx::Result<Vec<Link>> {
    let mut query =
        QueryBuilder::<Postgres>::new(format!("SELECT {LINK_COLUMNS} FROM links WHERE user_id = "));
    query.push_bind(user_id);
    if let Some(status) = filter.status {
        query
            .push(" AND status = ")
            .push_bind(status.as_str())
            .push("::link_status");
    }
    match filter.protected {
        Some(true) => query.push(" AND protection_type <> 'none'"),
        Some(false) => query.push(" AND protection_type = 'none'"),
        None => &mut query,
    };
    if let Some(after) = filter.created_after {
        query.push(" AND created_at >= ").push_bind(after);
    }
    if let Some(before) = filter.created_before {
        query.push(" AND created_at < ").push_bind(before);
    }
    if let Some(search) = &filter.search {
        // The expression of the trigram index `links_slug_trgm_idx`, so the index serves both
        // the substring match and the typo-tolerant word similarity.
        const SEARCHED: &str =
            "(coalesce(custom_slug, '') || ' ' || uid || ' ' || coalesce(title, ''))";
        query
            .push(format!(" AND ({SEARCHED} ILIKE "))
            .push_bind(format!("%{}%", escape_like(search)))
            .push(" OR ")
            .push_bind(search.clone())
            .push(format!(" <% {SEARCHED})"));
    }
    match filter.after {
        Some(Cursor::Created { created_at, id }) => {
            query
                .push(" AND (created_at, id) < (")
                .push_bind(created_at)
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        Some(Cursor::Clicks { total_clicks, id }) => {
            query
                .push(" AND (total_clicks, id) < (")
                .push_bind(total_clicks)
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        None => {}
    }
    query
        .push(match filter.sort {
            LinkSort::Created => " ORDER BY created_at DESC, id DESC LIMIT ",
            LinkSort::Clicks => " ORDER BY total_clicks DESC, id DESC LIMIT ",
        })
        .push_bind(limit);
    let mut tx = db.begin().await?;
    if filter.search.is_some() {
        sqlx::query("SELECT set_config('pg_trgm.word_similarity_threshold', $1, true)")
            .bind(SEARCH_SIMILARITY)
            .execute(&mut *tx)
            .await?;
    }
    let rows: Vec<StoredLink> = query.build_query_as().fetch_all(&mut *tx).await?;
    tx.commit().await?;
    Ok(rows.into_iter().map(Link::from).collect())
}

fn escape_like(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Every editable field of a link, as it should be after an update (already validated).
#[derive(Debug, Clone)]
pub struct LinkChanges {
    pub custom_slug: Option<String>,
    pub destination: String,
    pub title: Option<String>,
    pub utm: Utm,
    pub redirect_type: RedirectType,
    pub expires_at: Option<DateTime<Utc>>,
    pub status: LinkStatus,
    pub rules: Vec<Rule>,
}

impl From<&Link> for LinkChanges {
    fn from(link: &Link) -> Self {
        Self {
            custom_slug: link.custom_slug.clone(),
            destination: link.destination.clone(),
            title: link.title.clone(),
            utm: link.utm.clone(),
            redirect_type: link.redirect_type,
            expires_at: link.expires_at,
            status: link.status,
            rules: link.rules.iter().map(Rule::from).collect(),
        }
    }
}

/// The link before and after a change.
#[derive(Debug, Clone)]
pub struct Updated {
    pub before: Link,
    pub after: Link,
}

/// Applies `change` to the user's link `id` under a row lock, so concurrent updates of one link
/// never lose each other's fields. `Ok(None)`: the user has no such link.
#[tracing::instrument(skip(db, change))]
pub async fn update(
    db: &PgPool,
    user_id: Uuid,
    id: Uuid,
    change: impl FnOnce(&Link) -> LinkChanges,
) -> sqlx::Result<Option<Result<Updated, SlugConflict>>> {
    let mut tx = db.begin().await?;
    let Some(before) = sqlx::query_as::<_, StoredLink>(&format!(
        "SELECT {LINK_COLUMNS} FROM links WHERE id = $1 AND user_id = $2 FOR UPDATE"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(&mut *tx)
    .await?
    .map(Link::from) else {
        return Ok(None);
    };
    let changes = change(&before);
    if let Some(custom) = changes.custom_slug.as_deref() {
        if before.custom_slug.as_deref() != Some(custom) {
            let domain_id: Option<Uuid> =
                sqlx::query_scalar("SELECT domain_id FROM links WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await?;
            lock_names(&mut tx, domain_id, &[custom]).await?;
            if name_in_use(&mut tx, domain_id, custom, Some(id)).await? {
                return Ok(Some(Err(SlugConflict::SlugTaken)));
            }
        }
    }
    let updated = sqlx::query_as::<_, StoredLink>(&format!(
        "UPDATE links SET custom_slug = $2, destination = $3, title = $4, utm_source = $5,
                utm_medium = $6, utm_campaign = $7, utm_term = $8, utm_content = $9,
                redirect_type = $10, expires_at = $11, status = $12::link_status,
                rules = $13::jsonb
          WHERE id = $1
          RETURNING {LINK_COLUMNS}"
    ))
    .bind(id)
    .bind(&changes.custom_slug)
    .bind(&changes.destination)
    .bind(&changes.title)
    .bind(&changes.utm.source)
    .bind(&changes.utm.medium)
    .bind(&changes.utm.campaign)
    .bind(&changes.utm.term)
    .bind(&changes.utm.content)
    .bind(changes.redirect_type.status() as i16)
    .bind(changes.expires_at)
    .bind(changes.status.as_str())
    .bind(rules::to_column(&changes.rules))
    .fetch_one(&mut *tx)
    .await;
    match updated {
        Ok(row) => {
            tx.commit().await?;
            Ok(Some(Ok(Updated {
                before,
                after: row.into(),
            })))
        }
        Err(e) => slug_conflict(&e).map(|c| Some(Err(c))).ok_or(e),
    }
}

/// Deletes the user's link; returns it, or `None` when the user has no such link.
#[tracing::instrument(skip(db))]
pub async fn delete(db: &PgPool, user_id: Uuid, id: Uuid) -> sqlx::Result<Option<Link>> {
    let row: Option<StoredLink> = sqlx::query_as(&format!(
        "DELETE FROM links WHERE id = $1 AND user_id = $2 RETURNING {LINK_COLUMNS}"
    ))
    .bind(id)
    .bind(user_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Link::from))
}

/// Sets the user's link's protection (`hash` is `None` exactly for `Protection::None`, as the
/// table's CHECK demands). `None`: the user has no such link.
#[tracing::instrument(skip(db, hash))]
pub async fn set_protection(
    db: &PgPool,
    user_id: Uuid,
    id: Uuid,
    kind: Protection,
    hash: Option<&str>,
) -> sqlx::Result<Option<Link>> {
    let row: Option<StoredLink> = sqlx::query_as(&format!(
        "UPDATE links SET protection_type = $3::protection_type, protection_hash = $4
          WHERE id = $1 AND user_id = $2
          RETURNING {LINK_COLUMNS}"
    ))
    .bind(id)
    .bind(user_id)
    .bind(kind.as_str())
    .bind(hash)
    .fetch_optional(db)
    .await?;
    Ok(row.map(Link::from))
}

/// What an unlock check needs of the link a visitor means by `slug`.
#[derive(sqlx::FromRow)]
pub struct ProtectionTarget {
    pub id: Uuid,
    pub protection_hash: Option<String>,
    /// The version unlock cookies are signed for (as in the cache record).
    pub updated_at: DateTime<Utc>,
}

#[tracing::instrument(skip(db))]
pub async fn find_protection(
    db: &PgPool,
    domain: Option<&str>,
    slug: &str,
) -> sqlx::Result<Option<ProtectionTarget>> {
    sqlx::query_as(&format!(
        "SELECT id, protection_hash, updated_at
           FROM links
          WHERE (custom_slug = $1 OR uid = $1) AND {}
          ORDER BY (custom_slug = $1) DESC NULLS LAST
          LIMIT 1",
        on_domain(domain)
    ))
    .bind(slug)
    .bind(domain)
    .fetch_optional(db)
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

/// A fresh number of `link_cache_version` (see `crate::cache` for how versions are used).
#[tracing::instrument(skip(db))]
pub async fn next_cache_version(db: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar("SELECT nextval('link_cache_version')")
        .fetch_one(db)
        .await
}

/// [`next_cache_version`] and, taken with it, the primary's WAL position: the floor a lookup on
/// the read replica must reach (`crate::read_replica`) to be at least as new as the version.
#[tracing::instrument(skip(db))]
pub async fn next_cache_version_and_floor(db: &PgPool) -> sqlx::Result<(i64, Lsn)> {
    let (version, floor): (i64, i64) = sqlx::query_as(&format!(
        "SELECT nextval('link_cache_version'), {PRIMARY_POSITION}"
    ))
    .fetch_one(db)
    .await?;
    Ok((version, Lsn(floor)))
}

/// A queued cache invalidation: an entry a committed change made stale.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueuedInvalidation {
    /// `link:{domain}:{slug}` (`domain` `None`: the default domain), or `domain:{domain}` when
    /// there is no slug (`cache_invalidations`).
    Entry {
        id: i64,
        domain: Option<String>,
        slug: Option<String>,
    },
    /// `link:{slug}` of the default domain as workers of before custom domains read it
    /// (`link_cache_invalidations`).
    Legacy { id: i64, slug: String },
}

/// Which queued invalidations to take.
#[derive(Debug, Clone, Copy)]
pub enum Queued<'a> {
    /// Those of these slugs (on any domain).
    Slugs(&'a [String]),
    /// Those of this custom domain: its own entry and its links'.
    Domain(&'a str),
    /// The oldest.
    All,
}

/// Up to `limit` queued invalidations of each queue, oldest first.
#[tracing::instrument(skip(db))]
pub async fn queued_invalidations(
    db: &PgPool,
    which: Queued<'_>,
    limit: i64,
) -> sqlx::Result<Vec<QueuedInvalidation>> {
    let (slugs, domain) = match which {
        Queued::Slugs(slugs) => (Some(slugs), None),
        Queued::Domain(domain) => (None, Some(domain)),
        Queued::All => (None, None),
    };
    let entries: Vec<(i64, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT id, domain, slug FROM cache_invalidations
          WHERE ($1::text[] IS NULL OR slug = ANY($1))
            AND ($2::text IS NULL OR domain = $2)
          ORDER BY id
          LIMIT $3",
    )
    .bind(slugs)
    .bind(domain)
    .bind(limit)
    .fetch_all(db)
    .await?;
    let legacy: Vec<(i64, String)> = if domain.is_some() {
        Vec::new()
    } else {
        sqlx::query_as(
            "SELECT id, slug FROM link_cache_invalidations
              WHERE $1::text[] IS NULL OR slug = ANY($1)
              ORDER BY id
              LIMIT $2",
        )
        .bind(slugs)
        .bind(limit)
        .fetch_all(db)
        .await?
    };
    Ok(entries
        .into_iter()
        .map(|(id, domain, slug)| QueuedInvalidation::Entry { id, domain, slug })
        .chain(
            legacy
                .into_iter()
                .map(|(id, slug)| QueuedInvalidation::Legacy { id, slug }),
        )
        .collect())
}

/// Removes invalidations Redis has taken (a removal that fails leaves them to be applied again,
/// which is harmless).
#[tracing::instrument(skip_all, fields(count = taken.len()))]
pub async fn forget_invalidations(db: &PgPool, taken: &[QueuedInvalidation]) -> sqlx::Result<()> {
    let (mut entries, mut legacy) = (Vec::new(), Vec::new());
    for queued in taken {
        match queued {
            QueuedInvalidation::Entry { id, .. } => entries.push(*id),
            QueuedInvalidation::Legacy { id, .. } => legacy.push(*id),
        }
    }
    for (table, ids) in [
        ("cache_invalidations", entries),
        ("link_cache_invalidations", legacy),
    ] {
        if !ids.is_empty() {
            sqlx::query(&format!("DELETE FROM {table} WHERE id = ANY($1)"))
                .bind(ids)
                .execute(db)
                .await?;
        }
    }
    Ok(())
}
