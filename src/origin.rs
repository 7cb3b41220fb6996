//! The origin's internal endpoints: the read-through lookup (`GET /internal/links/{slug}` answers
//! the cache entry, found or missing, after writing it to Redis itself) and the unlock check of
//! protected links (`POST /internal/links/{slug}/unlock`).

use crate::fetch::{self, Auth, FetchError};
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

pub async fn lookup(origin_url: &str, secret: &str, slug: &str) -> Result<CacheEntry, OriginError> {
    let url = format!("{origin_url}/internal/links/{slug}");
    let mut response = fetch::send(Method::Get, &url, Auth::Bearer(secret), None, TIMEOUT)
        .await
        .map_err(OriginError::Fetch)?;
    let status = response.status_code();
    if status != 200 {
        return Err(OriginError::Status(status));
    }
    let text = response.text().await.map_err(|_| OriginError::Body)?;
    CacheEntry::from_json(&text).ok_or(OriginError::Body)
}

/// Asks the origin whether `request.secret` unlocks `slug` (the origin counts the attempt).
pub async fn unlock(
    origin_url: &str,
    secret: &str,
    slug: &str,
    request: &UnlockRequest,
) -> Result<UnlockOutcome, OriginError> {
    let url = format!("{origin_url}/internal/links/{slug}/unlock");
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
