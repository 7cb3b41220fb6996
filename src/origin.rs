//! The origin's internal endpoints: the read-through lookups (`GET
//! /internal/domains/{domain}/links/{slug}` answers a link's cache entry, found or missing, and
//! `GET /internal/domains/{hostname}` a custom domain's, after writing them to Redis itself) and
//! the unlock check of protected links (`POST /internal/domains/{domain}/links/{slug}/unlock`).
//! `{domain}` is a custom domain's hostname or `default`.

use crate::fetch::{self, Auth, FetchError};
use smo1_core::domain::DomainEntry;
use smo1_core::link::CacheEntry;
use smo1_core::unlock::{UnlockOutcome, UnlockRequest};
use std::time::Duration;
use worker::Method;

/// The origin may touch PostgreSQL; give it longer than the cache.
const TIMEOUT: Duration = Duration::from_secs(5);
/// An unlock check may wait for a free argon2id verifier (up to 5 s) and then run one.
const UNLOCK_TIMEOUT: Duration = Duration::from_secs(8);

#[derive(Debug)]
pub enum OriginError {
    Fetch(FetchError),
    Status(u16),
    Body,
}

impl std::fmt::Display for OriginError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Fetch(e) => write!(f, "origin {e}"),
            Self::Status(status) => write!(f, "origin answered {status}"),
            Self::Body => f.write_str("origin sent an unreadable answer"),
        }
    }
}

/// The body of a `GET` of an internal endpoint.
async fn get(url: &str, secret: &str) -> Result<String, OriginError> {
    let mut response = fetch::send(Method::Get, url, Auth::Bearer(secret), None, TIMEOUT)
        .await
        .map_err(OriginError::Fetch)?;
    let status = response.status_code();
    if status != 200 {
        return Err(OriginError::Status(status));
    }
    response.text().await.map_err(|_| OriginError::Body)
}

/// The entry of `slug` on `domain` (a hostname, or `default`).
pub async fn lookup(
    origin_url: &str,
    secret: &str,
    domain: &str,
    slug: &str,
) -> Result<CacheEntry, OriginError> {
    let text = get(
        &format!("{origin_url}/internal/domains/{domain}/links/{slug}"),
        secret,
    )
    .await?;
    CacheEntry::from_json(&text).ok_or(OriginError::Body)
}

/// The entry of the custom domain `hostname`.
pub async fn lookup_domain(
    origin_url: &str,
    secret: &str,
    hostname: &str,
) -> Result<DomainEntry, OriginError> {
    let text = get(&format!("{origin_url}/internal/domains/{hostname}"), secret).await?;
    DomainEntry::from_json(&text).ok_or(OriginError::Body)
}

/// Asks the origin whether `request.secret` unlocks `slug` on `domain` (the origin counts the
/// attempt).
pub async fn unlock(
    origin_url: &str,
    secret: &str,
    domain: &str,
    slug: &str,
    request: &UnlockRequest,
) -> Result<UnlockOutcome, OriginError> {
    let url = format!("{origin_url}/internal/domains/{domain}/links/{slug}/unlock");
    let body = serde_json::to_string(request).expect("an unlock request always serializes");
    let mut response = fetch::send(
        Method::Post,
        &url,
        Auth::Bearer(secret),
        Some(body),
        UNLOCK_TIMEOUT,
    )
    .await
    .map_err(OriginError::Fetch)?;
    let status = response.status_code();
    if status != 200 {
        return Err(OriginError::Status(status));
    }
    let text = response.text().await.map_err(|_| OriginError::Body)?;
    serde_json::from_str(&text).map_err(|_| OriginError::Body)
}
