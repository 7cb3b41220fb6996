//! Analytics over ClickHouse: totals, time series, breakdowns and recent clicks per link and per
//! account (`/v1/links/{id}/analytics/*`, `/v1/analytics/*`), the one escaping function for
//! values in analytics SQL, the task that rolls finished days into plain numbers, and the task
//! that mirrors click totals into `links.total_clicks`.

pub mod escape;
mod handlers;
pub mod queries;
pub mod rollup;
pub mod sync;

use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The analytics routes (API key auth is applied by the caller).
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::link_summary))
        .routes(routes!(handlers::link_timeseries))
        .routes(routes!(handlers::link_breakdown))
        .routes(routes!(handlers::link_clicks))
        .routes(routes!(handlers::account_summary))
        .routes(routes!(handlers::account_timeseries))
        .routes(routes!(handlers::account_breakdown))
        .routes(routes!(handlers::account_clicks))
}
