//! Users: the account an API key acts for, and its subscription tier. Users are created by the
//! `smo1-origin admin create-user` command (self-hosting bootstrap) and, later, by sign-up.

mod handlers;
pub mod repo;

use crate::state::AppState;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use repo::{SubscriptionTier, User};

/// `GET /v1/me`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(handlers::me))
}
