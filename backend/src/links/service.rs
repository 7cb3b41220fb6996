//! Link operations that span PostgreSQL and the Redis cache.

use super::repo::{self, Link, LinkChanges, NewLink, Queued, QueuedInvalidation, SlugConflict};
use super::rules::{self, RuleInput};
use crate::cache::{Slot, REFILL_MAX_AGE};
use crate::error::{AppError, Result};
use crate::periodic::{PassMetrics, Periodic};
use crate::state::AppState;
use chrono::{DateTime, Utc};
use smo1_core::link::{CacheEntry, CachedLink, LinkStatus, RedirectType, Utm};
use smo1_core::{destination, slug};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The entry for `slug` on `domain` (`None`: the default domain) from PostgreSQL (the read
/// replica when it is caught up, see [`read_through`]), written to Redis (positive TTL, or the short negative TTL for unknown slugs) unless an invalidation newer
/// than the read got there first. A Redis failure is logged, never fatal: PostgreSQL answered.
pub async fn load_and_cache(
    state: &AppState,
    domain: Option<&str>,
    slug: &str,
) -> Result<CacheEntry> {
    let slot = state.redis.link_slot(domain, slug);
    let entry = read_through(state, &slot, CacheEntry::to_json, |db| async move {
        Ok(match repo::find_by_slug(&db, domain, slug).await? {
            Some(record) => (CacheEntry::found(record), state.config.link_cache_ttl),
            None => (CacheEntry::missing(), state.config.negative_cache_ttl),
        })
    })
    .await?;
    let outcome = match entry.link {
        CachedLink::Found(_) => "found",
        CachedLink::Missing => "missing",
    };
    metrics::counter!(crate::metrics::LINK_LOOKUPS, "outcome" => outcome).increment(1);
    Ok(entry)
}

/// [`load_and_cache`] of a default-domain slug for a worker of before custom domains: written
/// to `link:{slug}` in the version it reads (docs/OPERATIONS.md, "Rolling out custom domains").
pub async fn load_and_cache_legacy(state: &AppState, slug: &str) -> Result<CacheEntry> {
    let slot = state.redis.legacy_link_slot(slug);
    read_through(state, &slot, CacheEntry::to_legacy_json, |db| async move {
        Ok(match repo::find_by_slug(&db, None, slug).await? {
            Some(record) => (CacheEntry::found(record), state.config.link_cache_ttl),
            None => (CacheEntry::missing(), state.config.negative_cache_ttl),
        })
    })
    .await
}

/// Reads a value from PostgreSQL (`read` answers it with its TTL, from the pool it is given) and
/// stores it in `slot` under a version taken before the read, unless the read took longer than
/// [`REFILL_MAX_AGE`] or an invalidation newer than the read reached Redis first (see
/// `crate::cache`).
///
/// With a read replica, the version comes with the primary's WAL position and the replica is read
/// only once it has replayed that far (`crate::read_replica`): its answer then includes every
/// change committed before the version was taken, exactly as a read of the primary would, so a
/// refill from a lagging replica can never carry a version newer than the invalidation of a
/// change it does not show. Otherwise, and whenever the replica cannot answer so, the primary
/// is read.
pub async fn read_through<T, F, Fut>(
    state: &AppState,
    slot: &Slot,
    to_json: fn(&T) -> String,
    read: F,
) -> Result<T>
where
    F: Fn(PgPool) -> Fut,
    Fut: std::future::Future<Output = sqlx::Result<(T, Duration)>>,
{
    // Without Redis there is nothing to version: just read.
    let cache = state.redis.available();
    let started = Instant::now();
    let (version, (value, ttl)) = match &state.read_replica {
        None => {
            let version = if cache {
                Some(repo::next_cache_version(&state.db).await?)
            } else {
                None
            };
            (version, read(state.db.clone()).await?)
        }
        Some(replica) => {
            // The floor is needed even unversioned: the origin's memory holds what this returns.
            let (version, floor) = repo::next_cache_version_and_floor(&state.db).await?;
            let answer = match replica.read(floor, &read).await {
                Some(answer) => answer,
                None => read(state.db.clone()).await?,
            };
            (cache.then_some(version), answer)
        }
    };
    let Some(version) = version.filter(|_| started.elapsed() < REFILL_MAX_AGE) else {
        return Ok(value);
    };
    match state.redis.put(slot, &to_json(&value), ttl, version).await {
        Ok(true) => {}
        Ok(false) => metrics::counter!(crate::metrics::LINK_CACHE_STALE_REFILLS).increment(1),
        Err(e) => {
            metrics::counter!(crate::metrics::LINK_CACHE_WRITE_FAILURES).increment(1);
            tracing::warn!(error = %e, key = slot.local, "could not write cache entry");
        }
    }
    Ok(value)
}

/// The entry for `slug` on `domain` for the origin's own redirects: this process's memory first
/// (at most `ORIGIN_CACHE_STALENESS_MS` old), then Redis, then PostgreSQL on a miss or when Redis
/// is down.
pub async fn resolve_cached(
    state: &AppState,
    domain: Option<&str>,
    slug: &str,
) -> Result<Arc<CacheEntry>> {
    let name = crate::cache::Redis::link_name(domain, slug);
    if let Some(entry) = state.local_links.get(&name) {
        return Ok(entry);
    }
    let entry = Arc::new(match state.redis.get_link(domain, slug).await {
        Ok(Some(entry)) => entry,
        Ok(None) => load_and_cache(state, domain, slug).await?,
        Err(e) => {
            metrics::counter!(crate::metrics::LINK_CACHE_READ_FAILURES).increment(1);
            tracing::debug!(error = %e, "link cache unavailable, reading PostgreSQL");
            load_and_cache(state, domain, slug).await?
        }
    });
    state.local_links.put(&name, &entry);
    Ok(entry)
}

/// Most queued invalidations taken in one pass.
const INVALIDATION_BATCH: i64 = 1_000;

/// How often queued invalidations that failed are retried.
pub const INVALIDATION_RETRY_INTERVAL: Duration = Duration::from_secs(1);

/// Invalidates the cache entries of `slugs` that committed changes queued (every change to
/// `links` queues its slugs in the same transaction). Failing here serves a stale link until the
/// retry ([`start_invalidation_retry`]) gets through, so it is also an error the caller sees.
pub async fn invalidate(state: &AppState, slugs: &[String]) -> Result<()> {
    invalidate_queued(state, Queued::Slugs(slugs)).await
}

/// Applies the queued invalidations `which` selects (see [`invalidate`]).
pub async fn invalidate_queued(state: &AppState, which: Queued<'_>) -> Result<()> {
    let queued = repo::queued_invalidations(&state.db, which, INVALIDATION_BATCH).await?;
    apply_invalidations(state, queued).await?;
    Ok(())
}

/// Applies `queued` in Redis under a version taken now, after their changes committed, and
/// forgets them; answers how many were applied.
async fn apply_invalidations(state: &AppState, queued: Vec<QueuedInvalidation>) -> Result<u64> {
    if queued.is_empty() {
        return Ok(0);
    }
    let version = repo::next_cache_version(&state.db).await?;
    let mut slots: Vec<Slot> = queued
        .iter()
        .filter_map(|q| match q {
            QueuedInvalidation::Entry {
                domain,
                slug: Some(slug),
                ..
            } => Some(state.redis.link_slot(domain.as_deref(), slug)),
            QueuedInvalidation::Entry {
                domain: Some(domain),
                slug: None,
                ..
            } => Some(state.redis.domain_slot(domain)),
            // The table's CHECK forbids a row naming nothing.
            QueuedInvalidation::Entry {
                domain: None,
                slug: None,
                ..
            } => None,
            QueuedInvalidation::Legacy { slug, .. } => Some(state.redis.legacy_link_slot(slug)),
        })
        .collect();
    slots.sort_unstable_by(|a, b| a.local.cmp(&b.local));
    slots.dedup();
    let applied = state.redis.invalidate(&slots, version).await;
    // After Redis (a refill here meanwhile read the old entry), and even if Redis failed.
    let names: Vec<&str> = slots.iter().map(|slot| slot.local.as_str()).collect();
    state.local_links.forget(&names);
    applied?;
    repo::forget_invalidations(&state.db, &queued).await?;
    Ok(queued.len() as u64)
}

/// One retry pass: applies the oldest queued invalidations (left by a change whose own attempt
/// failed, by an origin that stopped in between, or by an origin of before custom domains).
/// Skipped while Redis is known to be down.
pub async fn retry_invalidations(state: &AppState) -> Result<u64> {
    if !state.redis.available() {
        return Ok(0);
    }
    let queued = repo::queued_invalidations(&state.db, Queued::All, INVALIDATION_BATCH).await?;
    apply_invalidations(state, queued).await
}

/// Retries queued invalidations every [`INVALIDATION_RETRY_INTERVAL`].
pub fn start_invalidation_retry(state: &AppState) -> Periodic {
    let state = state.clone();
    Periodic::start(
        "cache invalidation retry",
        INVALIDATION_RETRY_INTERVAL,
        PassMetrics {
            done: crate::metrics::LINK_CACHE_INVALIDATIONS_RETRIED,
            failures: crate::metrics::LINK_CACHE_INVALIDATION_RETRY_FAILURES,
        },
        move || {
            let state = state.clone();
            async move { retry_invalidations(&state).await }
        },
    )
}

/// Input for [`create`]; validated here.
#[derive(Debug, Clone, Default)]
pub struct CreateLink {
    /// A verified custom domain of the user; `None`: the default domain.
    pub domain: Option<String>,
    pub custom_slug: Option<String>,
    pub destination: String,
    pub title: Option<String>,
    pub redirect_type: RedirectType,
    pub utm: Utm,
    pub expires_at: Option<DateTime<Utc>>,
    pub rules: Vec<RuleInput>,
}

/// How many uids to draw before giving up: a collision is already a one-in-10^12 event.
const UID_ATTEMPTS: usize = 3;

/// Longest title and UTM value (the table's CHECK constraints).
pub const MAX_TEXT_LEN: usize = 200;

fn validate_text(field: &str, value: Option<&str>) -> Result<()> {
    match value {
        Some(v) if v.chars().count() > MAX_TEXT_LEN => Err(AppError::Validation(format!(
            "{field} must be at most {MAX_TEXT_LEN} characters"
        ))),
        _ => Ok(()),
    }
}

fn validate_fields(title: Option<&str>, utm: &Utm) -> Result<()> {
    validate_text("title", title)?;
    validate_text("utm.source", utm.source.as_deref())?;
    validate_text("utm.medium", utm.medium.as_deref())?;
    validate_text("utm.campaign", utm.campaign.as_deref())?;
    validate_text("utm.term", utm.term.as_deref())?;
    validate_text("utm.content", utm.content.as_deref())
}

fn validate_custom_slug(custom: &str) -> Result<()> {
    slug::validate_custom(custom).map_err(|e| AppError::Validation(e.to_string()))
}

/// A destination normalised, or 422: not a safe http(s) URL, or a loop back to us — one of our
/// own hosts, `also_own` (a domain's targets may not point at that domain, verified or not), or
/// any account's verified custom domain.
pub async fn validate_destination(
    state: &AppState,
    raw: &str,
    also_own: Option<&str>,
) -> Result<String> {
    let mut own = state.own_hosts.to_vec();
    own.extend(also_own.map(str::to_owned));
    let url = destination::validate(raw, &own).map_err(|e| AppError::Validation(e.to_string()))?;
    let host = destination::host_of(url.as_str()).unwrap_or_default();
    if crate::domains::repo::is_verified(&state.db, &host).await? {
        return Err(AppError::Validation(
            destination::DestinationError::OwnDomain.to_string(),
        ));
    }
    Ok(url.into())
}

/// The id of the user's verified domain `hostname`, for a new link; 422 when it is not one of
/// the user's domains or not verified.
async fn usable_domain(state: &AppState, user_id: Uuid, raw: &str) -> Result<Uuid> {
    let hostname = smo1_core::domain::normalise_hostname(raw)
        .map_err(|e| AppError::Validation(format!("domain: {e}")))?;
    let domain = crate::domains::repo::find_by_hostname(&state.db, user_id, &hostname)
        .await?
        .ok_or_else(|| {
            AppError::Validation(format!("domain {hostname} is not one of your domains"))
        })?;
    if domain.status != crate::domains::repo::DomainStatus::Verified {
        return Err(AppError::DomainNotVerified(hostname));
    }
    Ok(domain.id)
}

/// `inputs` checked into the rules to store (`existing`: the ids of the link's rules now);
/// each rule's destination is checked exactly like the link's own. The destination checks ask
/// PostgreSQL (verified domains), so they run first, for at most the rules a link may have;
/// `rules::validate` takes their verdicts in order with everything else.
async fn validate_rules(
    state: &AppState,
    inputs: Vec<RuleInput>,
    existing: &[&str],
) -> Result<Vec<smo1_core::targeting::Rule>> {
    let mut verdicts = Vec::with_capacity(inputs.len().min(smo1_core::targeting::MAX_RULES));
    for input in inputs.iter().take(smo1_core::targeting::MAX_RULES) {
        verdicts.push(validate_destination(state, &input.destination, None).await);
    }
    let mut verdicts = verdicts.into_iter();
    rules::validate(inputs, existing, |_| {
        verdicts
            .next()
            .expect("rules::validate checks one destination per rule, at most MAX_RULES")
    })
}

/// Creates a link with a fresh uid (and the custom slug, if any); 409 `slug_taken` when the
/// custom slug is another link's custom slug or uid.
pub async fn create(state: &AppState, user_id: Uuid, input: CreateLink) -> Result<Link> {
    if let Some(custom) = &input.custom_slug {
        validate_custom_slug(custom)?;
    }
    let domain_id = match &input.domain {
        Some(raw) => Some(usable_domain(state, user_id, raw).await?),
        None => None,
    };
    let destination = validate_destination(state, &input.destination, None).await?;
    validate_fields(input.title.as_deref(), &input.utm)?;
    let rules = validate_rules(state, input.rules, &[]).await?;
    let mut link = NewLink {
        user_id,
        domain_id,
        uid: String::new(),
        custom_slug: input.custom_slug,
        destination,
        title: input.title,
        utm: input.utm,
        redirect_type: input.redirect_type,
        expires_at: input.expires_at,
        rules,
    };
    for _ in 0..UID_ATTEMPTS {
        link.uid = slug::uid_from_random(rand::random());
        match repo::insert(&state.db, &link).await? {
            Ok(created) => {
                // A negative entry may be cached for the new slugs.
                invalidate(state, &created.slugs()).await?;
                metrics::counter!(crate::metrics::LINKS_CREATED).increment(1);
                crate::achievements::catch_up(&state.db, user_id).await;
                return Ok(created);
            }
            Err(SlugConflict::SlugTaken) => return Err(AppError::SlugTaken),
            Err(SlugConflict::UidTaken) => continue,
        }
    }
    // Three random 62^7 uids all taken means something is wrong with us, not with PostgreSQL.
    Err(AppError::Internal(format!(
        "no free uid after {UID_ATTEMPTS} attempts"
    )))
}

/// A partial update: `None` leaves a field alone, `Some(None)` clears a clearable one.
#[derive(Debug, Clone, Default)]
pub struct LinkPatch {
    pub custom_slug: Option<Option<String>>,
    pub destination: Option<String>,
    pub title: Option<Option<String>>,
    pub utm: Option<Utm>,
    pub redirect_type: Option<RedirectType>,
    pub expires_at: Option<Option<DateTime<Utc>>>,
    pub status: Option<LinkStatus>,
    /// Replaces the whole list; rules named by id keep their id.
    pub rules: Option<Vec<RuleInput>>,
}

/// Applies `patch` to the user's link and deletes the cache entries of every slug the link
/// answered to before or answers to now.
pub async fn update(state: &AppState, user_id: Uuid, id: Uuid, patch: LinkPatch) -> Result<Link> {
    if let Some(Some(custom)) = &patch.custom_slug {
        validate_custom_slug(custom)?;
    }
    let destination = match &patch.destination {
        Some(raw) => Some(validate_destination(state, raw, None).await?),
        None => None,
    };
    validate_fields(
        patch.title.clone().flatten().as_deref(),
        patch.utm.as_ref().unwrap_or(&Utm::default()),
    )?;
    let rules = match patch.rules {
        Some(inputs) => {
            // Which ids may be kept is asked before the locked update: a rule removed in
            // between by a concurrent edit comes back under its id, still unique in the link.
            let current = repo::find(&state.db, user_id, id)
                .await?
                .ok_or(AppError::NotFound("link"))?;
            let ids: Vec<&str> = current.rules.iter().map(|r| r.id.as_str()).collect();
            Some(validate_rules(state, inputs, &ids).await?)
        }
        None => None,
    };
    let updated = repo::update(&state.db, user_id, id, |link| {
        let mut changes = LinkChanges::from(link);
        if let Some(custom) = patch.custom_slug {
            changes.custom_slug = custom;
        }
        if let Some(destination) = destination {
            changes.destination = destination;
        }
        if let Some(title) = patch.title {
            changes.title = title;
        }
        if let Some(utm) = patch.utm {
            changes.utm = utm;
        }
        if let Some(redirect_type) = patch.redirect_type {
            changes.redirect_type = redirect_type;
        }
        if let Some(expires_at) = patch.expires_at {
            changes.expires_at = expires_at;
        }
        if let Some(status) = patch.status {
            changes.status = status;
        }
        if let Some(rules) = rules {
            changes.rules = rules;
        }
        changes
    })
    .await?
    .ok_or(AppError::NotFound("link"))?
    .map_err(|_| AppError::SlugTaken)?;
    let mut slugs = updated.before.slugs();
    slugs.extend(updated.after.slugs());
    slugs.sort_unstable();
    slugs.dedup();
    invalidate(state, &slugs).await?;
    Ok(updated.after)
}

/// Deletes the user's link and its cache entries.
pub async fn delete(state: &AppState, user_id: Uuid, id: Uuid) -> Result<()> {
    let deleted = repo::delete(&state.db, user_id, id)
        .await?
        .ok_or(AppError::NotFound("link"))?;
    invalidate(state, &deleted.slugs()).await
}

pub async fn update_destination(state: &AppState, id: Uuid, new_destination: &str) -> Result<()> {
    let destination = validate_destination(state, new_destination, None).await?;
    let slugs = repo::update_destination(&state.db, id, &destination)
        .await?
        .ok_or(AppError::NotFound("link"))?;
    invalidate(state, &slugs).await
}
