//! Links: rows in PostgreSQL, the read-through cache in Redis, and the edge's internal lookup.

mod handlers;
pub mod repo;
pub mod service;

use crate::state::AppState;
use axum::routing::get;
use axum::Router;

/// `/internal/links/{slug}` (shared-secret auth is applied by the caller).
pub fn internal_router() -> Router<AppState> {
    Router::new().route("/internal/links/{slug}", get(handlers::internal_lookup))
}
