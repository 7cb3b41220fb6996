//! `/internal/*`, for the edge only (shared-secret auth is applied by the caller): link and
//! domain lookups that fill the cache, PIN/password checks of protected links, and clicks the
//! edge could not deliver to ClickHouse.
//!
//! Links are looked up per domain (`/internal/domains/{domain}/links/{slug}`, `domain` a custom
//! hostname or `default`). `/internal/links/{slug}` is what workers of before custom domains
//! call: it answers the default domain in the entry version they read, and fills their key
//! (docs/OPERATIONS.md, "Rolling out custom domains").

use super::extract::AppJson;
use crate::clicks::outbox;
use crate::domains;
use crate::error::{AppError, Result};
use crate::links::{protection, service};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::Json;
use axum::Router;
use serde_json::{json, Value};
use smo1_core::click::ClickEvent;
use smo1_core::domain::{normalise_hostname, DEFAULT_DOMAIN};
use smo1_core::slug;
use smo1_core::unlock::{UnlockOutcome, UnlockRequest};
use std::net::{IpAddr, Ipv4Addr};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/internal/links/{slug}", get(legacy_lookup))
        .route("/internal/links/{slug}/unlock", post(legacy_unlock))
        .route("/internal/domains/{domain}", get(domain_lookup))
        .route("/internal/domains/{domain}/links/{slug}", get(lookup))
        .route(
            "/internal/domains/{domain}/links/{slug}/unlock",
            post(unlock),
        )
}

/// The domain a path segment names: `default`, or a custom domain's hostname (as the edge
/// normalised it from the `Host` header).
fn domain_of(segment: &str) -> Result<Option<&str>> {
    match segment {
        DEFAULT_DOMAIN => Ok(None),
        host if normalise_hostname(host).is_ok_and(|h| h == host) => Ok(Some(host)),
        _ => Err(AppError::NotFound("domain")),
    }
}

fn json(body: String) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], body)
}

/// What a custom domain serves: its settings while verified, else the unavailable page.
#[tracing::instrument(skip(state))]
async fn domain_lookup(
    State(state): State<AppState>,
    Path(domain): Path<String>,
) -> Result<impl IntoResponse> {
    let Some(hostname) = domain_of(&domain)? else {
        return Err(AppError::NotFound("domain"));
    };
    let entry = domains::service::load_and_cache(&state, hostname).await?;
    Ok(json(entry.to_json()))
}

/// [`lookup`] of the default domain for workers of before custom domains.
#[tracing::instrument(skip(state))]
async fn legacy_lookup(
    State(state): State<AppState>,
    Path(slug): Path<String>,
) -> Result<impl IntoResponse> {
    if !slug::is_resolvable(&slug) {
        return Err(AppError::NotFound("link"));
    }
    let entry = service::load_and_cache_legacy(&state, &slug).await?;
    Ok(json(entry.to_legacy_json()))
}

/// [`unlock`] of the default domain for workers of before custom domains.
#[tracing::instrument(skip(state, input), fields(ip = %input.ip))]
async fn legacy_unlock(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    AppJson(input): AppJson<UnlockRequest>,
) -> Result<Json<UnlockOutcome>> {
    check_unlock(&state, None, &slug, input).await
}

/// `POST /internal/clicks` apart: it takes a whole edge batch, so it has its own body limit
/// ([`super::MAX_CLICK_BATCH_BYTES`]).
pub fn clicks_router() -> Router<AppState> {
    Router::new().route("/internal/clicks", post(receive_clicks))
}

/// The edge's cache-miss path: answers the cache entry (found or missing) after storing it in
/// Redis, so the edge's next request for this slug is a hit.
#[tracing::instrument(skip(state))]
async fn lookup(
    State(state): State<AppState>,
    Path((domain, slug)): Path<(String, String)>,
) -> Result<impl IntoResponse> {
    let domain = domain_of(&domain)?;
    if !slug::is_resolvable(&slug) {
        return Err(AppError::NotFound("link"));
    }
    let entry = service::load_and_cache(&state, domain, &slug).await?;
    Ok(json(entry.to_json()))
}

/// The edge's unlock check for a protected link: answers `unlocked` (with the cookie value),
/// `wrong` (with the attempts left) or `locked` (with the seconds until the lockout lifts).
#[tracing::instrument(skip(state, input), fields(ip = %input.ip))]
async fn unlock(
    State(state): State<AppState>,
    Path((domain, slug)): Path<(String, String)>,
    AppJson(input): AppJson<UnlockRequest>,
) -> Result<Json<UnlockOutcome>> {
    check_unlock(&state, domain_of(&domain)?, &slug, input).await
}

async fn check_unlock(
    state: &AppState,
    domain: Option<&str>,
    slug: &str,
    input: UnlockRequest,
) -> Result<Json<UnlockOutcome>> {
    if !slug::is_resolvable(slug) {
        return Err(AppError::NotFound("link"));
    }
    // The edge read the address from Cloudflare (`cf-connecting-ip`); one it could not tell
    // shares a single group with every other such request.
    let ip = input
        .ip
        .parse()
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let outcome = protection::unlock(state, domain, slug, input.secret, ip).await?;
    Ok(Json(outcome))
}

/// Takes a JSON array of click events and stores the valid ones durably in the outbox before
/// answering `202 {"accepted": n}`. Invalid events are refused with `400 invalid_click_event`
/// naming each one by index; the valid ones of the same batch are still stored.
#[tracing::instrument(skip_all)]
async fn receive_clicks(
    State(state): State<AppState>,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>)> {
    let items: Vec<Value> = serde_json::from_slice(&body).map_err(|e| {
        AppError::InvalidClickEvents(format!("body must be a JSON array of click events: {e}"))
    })?;
    let mut valid = Vec::with_capacity(items.len());
    let mut rejected = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match serde_json::from_value::<ClickEvent>(item)
            .map_err(|e| e.to_string())
            .and_then(|event| event.validate().map(|()| event))
        {
            Ok(event) => valid.push(event),
            Err(reason) => rejected.push(format!("#{index}: {reason}")),
        }
    }
    if !valid.is_empty() {
        outbox::store(&state.db, &valid).await?;
        metrics::counter!(crate::metrics::CLICKS_RECEIVED).increment(valid.len() as u64);
    }
    if rejected.is_empty() {
        return Ok((StatusCode::ACCEPTED, Json(json!({"accepted": valid.len()}))));
    }
    metrics::counter!(crate::metrics::CLICKS_REJECTED).increment(rejected.len() as u64);
    Err(AppError::InvalidClickEvents(format!(
        "{} of {} events rejected ({}); the other {} were accepted",
        rejected.len(),
        rejected.len() + valid.len(),
        rejected.join("; "),
        valid.len()
    )))
}
