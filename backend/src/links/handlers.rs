//! HTTP handlers for links.

use super::service;
use crate::error::{AppError, Result};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use smo1_core::slug;

/// The edge's cache-miss path: answers the cache entry (found or missing) after storing it in
/// Redis, so the edge's next request for this slug is a hit.
#[tracing::instrument(skip(state))]
pub async fn internal_lookup(
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
