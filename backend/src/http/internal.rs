//! `/internal/*`, for the edge only (shared-secret auth is applied by the caller): link lookups
//! that fill the cache, PIN/password checks of protected links, and clicks the edge could not
//! deliver to ClickHouse.

use super::extract::AppJson;
use crate::clicks::outbox;
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
use smo1_core::slug;
use smo1_core::unlock::{UnlockOutcome, UnlockRequest};
use std::net::{IpAddr, Ipv4Addr};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/internal/links/{slug}", get(lookup))
        .route("/internal/links/{slug}/unlock", post(unlock))
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
    Path(slug): Path<String>,
) -> Result<impl IntoResponse> {
    if !slug::is_resolvable(&slug) {
        return Err(AppError::NotFound("link"));
    }
    let entry = service::load_and_cache(&state, &slug).await?;
    Ok((
        [(header::CONTENT_TYPE, "application/json")],
        entry.to_json(),
    ))
}

/// The edge's unlock check for a protected link: answers `unlocked` (with the cookie value),
/// `wrong` (with the attempts left) or `locked` (with the seconds until the lockout lifts).
#[tracing::instrument(skip(state, input), fields(ip = %input.ip))]
async fn unlock(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    AppJson(input): AppJson<UnlockRequest>,
) -> Result<Json<UnlockOutcome>> {
    if !slug::is_resolvable(&slug) {
        return Err(AppError::NotFound("link"));
    }
    // The edge read the address from Cloudflare (`cf-connecting-ip`); one it could not tell
    // shares a single group with every other such request.
    let ip = input
        .ip
        .parse()
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let outcome = protection::unlock(&state, &slug, input.secret, ip).await?;
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
