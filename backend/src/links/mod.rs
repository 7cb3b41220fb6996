//! Links: rows in PostgreSQL, the read-through cache in Redis, the edge's internal lookup and the
//! `/v1/links` API.

mod handlers;
pub mod protection;
pub mod qr;
pub mod repo;
pub mod service;

use crate::state::AppState;
use axum::routing::{get, post};
use axum::Router;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use repo::Link;

/// `/internal/links/{slug}` and `/internal/links/{slug}/unlock` (shared-secret auth is applied by the caller).
pub fn internal_router() -> Router<AppState> {
    Router::new()
        .route("/internal/links/{slug}", get(handlers::internal_lookup))
        .route(
            "/internal/links/{slug}/unlock",
            post(handlers::internal_unlock),
        )
}

/// `/v1/links…` (API key auth is applied by the caller).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::create, handlers::list))
        .routes(routes!(handlers::get, handlers::update, handlers::delete))
        .routes(routes!(handlers::disable))
        .routes(routes!(handlers::enable))
        .routes(routes!(
            handlers::set_protection,
            handlers::clear_protection
        ))
}
