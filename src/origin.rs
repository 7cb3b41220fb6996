//! The origin's read-through lookup: `GET /internal/links/{slug}` answers the cache entry
//! (found or missing) after writing it to Redis itself.

use crate::fetch::{self, Auth, FetchError};
use smo1_core::link::CacheEntry;
use std::time::Duration;
use worker::Method;

/// The origin may touch PostgreSQL; give it longer than the cache.
const TIMEOUT: Duration = Duration::from_secs(5);

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
            Self::Body => f.write_str("origin sent an unreadable cache entry"),
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
