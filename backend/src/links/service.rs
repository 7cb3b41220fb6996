//! Link operations that span PostgreSQL and the Redis cache.

use super::repo::{self, NewLink};
use crate::error::{AppError, Result};
use crate::state::AppState;
use smo1_core::link::CacheEntry;
use smo1_core::{destination, slug};
use uuid::Uuid;

/// The entry for `slug` from PostgreSQL, written to Redis (positive TTL, or the short negative
/// TTL for unknown slugs). A Redis failure is logged, never fatal: PostgreSQL answered.
pub async fn load_and_cache(state: &AppState, slug: &str) -> Result<CacheEntry> {
    let found = repo::find_by_slug(&state.db, slug).await?;
    let outcome = if found.is_some() { "found" } else { "missing" };
    metrics::counter!("smo1_link_lookups_total", "outcome" => outcome).increment(1);
    let (entry, ttl) = match found {
        Some(record) => (CacheEntry::found(record), state.config.link_cache_ttl),
        None => (CacheEntry::missing(), state.config.negative_cache_ttl),
    };
    if let Err(e) = state.redis.put_link(slug, &entry, ttl).await {
        metrics::counter!("smo1_link_cache_write_failures_total").increment(1);
        tracing::warn!(error = %e, slug, "could not write link cache entry");
    }
    Ok(entry)
}

/// The entry for `slug`: Redis first, PostgreSQL on a miss or when Redis is down.
pub async fn resolve_cached(state: &AppState, slug: &str) -> Result<CacheEntry> {
    match state.redis.get_link(slug).await {
        Ok(Some(entry)) => return Ok(entry),
        Ok(None) => {}
        Err(e) => {
            metrics::counter!("smo1_link_cache_read_failures_total").increment(1);
            tracing::warn!(error = %e, "link cache unavailable, reading PostgreSQL");
        }
    }
    load_and_cache(state, slug).await
}

/// Deletes the cache entries of `slugs`. Failing to invalidate would serve a stale link for up
/// to the TTL, so it is an error the caller sees.
async fn invalidate(state: &AppState, slugs: &[String]) -> Result<()> {
    for slug in slugs {
        state.redis.invalidate_link(slug).await?;
    }
    Ok(())
}

/// Input for [`create`]; validated here.
#[derive(Debug, Clone, Default)]
pub struct CreateLink {
    pub custom_slug: Option<String>,
    pub destination: String,
    pub title: Option<String>,
    pub redirect_type: smo1_core::link::RedirectType,
    pub utm: smo1_core::link::Utm,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// A created link: its id and the slug visitors use.
#[derive(Debug, Clone)]
pub struct CreatedLink {
    pub id: Uuid,
    pub uid: String,
    pub slug: String,
}

pub async fn create(state: &AppState, user_id: Uuid, input: CreateLink) -> Result<CreatedLink> {
    if let Some(custom) = &input.custom_slug {
        slug::validate_custom(custom).map_err(|e| AppError::Validation(e.to_string()))?;
    }
    let destination = destination::validate(&input.destination, &state.config.short_domains)
        .map_err(|e| AppError::Validation(e.to_string()))?;
    let uid = slug::uid_from_random(rand::random());
    let link = NewLink {
        user_id,
        uid: uid.clone(),
        custom_slug: input.custom_slug.clone(),
        destination: destination.into(),
        title: input.title,
        utm: input.utm,
        redirect_type: input.redirect_type,
        expires_at: input.expires_at,
    };
    let id = repo::insert(&state.db, &link).await?;
    let slug = input.custom_slug.unwrap_or_else(|| uid.clone());
    // A negative entry may be cached for the new slug.
    invalidate(state, std::slice::from_ref(&slug)).await?;
    Ok(CreatedLink { id, uid, slug })
}

pub async fn update_destination(state: &AppState, id: Uuid, new_destination: &str) -> Result<()> {
    let destination = destination::validate(new_destination, &state.config.short_domains)
        .map_err(|e| AppError::Validation(e.to_string()))?;
    let slugs = repo::update_destination(&state.db, id, destination.as_str())
        .await?
        .ok_or(AppError::NotFound("link"))?;
    invalidate(state, &slugs).await
}
