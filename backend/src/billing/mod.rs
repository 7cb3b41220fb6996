//! Polar billing: `POST /webhooks/polar` turns subscription events into the user's
//! `subscription_tier` (which sets their API rate limit on their next request).
//!
//! Every delivery is verified (Standard Webhooks signature, 5-minute tolerance) before anything
//! is stored. Events are stored in `webhook_events` (unique `event_id`) and processed exactly
//! once, in the same transaction that marks them processed; concurrent duplicate deliveries
//! serialise on the unique index. A delivery whose processing fails is stored unprocessed with
//! its error and answered 500, so Polar's retry processes it again.

mod handlers;
pub mod signature;

use crate::state::AppState;
use axum::routing::post;
use axum::Router;

pub use handlers::ProductTiers;

pub fn router() -> Router<AppState> {
    Router::new().route("/webhooks/polar", post(handlers::polar))
}
