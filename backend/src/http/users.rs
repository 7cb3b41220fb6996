//! HTTP handlers for users.

use super::auth::Principal;
use super::tags;
use crate::error::{AppError, AuthErrors, Result};
use crate::state::AppState;
use crate::users::repo::{self, User};
use axum::extract::State;
use axum::Json;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `GET /v1/me`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(me))
}

/// The user the presented API key belongs to, with its subscription tier.
#[utoipa::path(
    get, path = "/v1/me", tag = tags::USERS,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The key's user", body = User),
        AuthErrors,
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn me(State(state): State<AppState>, principal: Principal) -> Result<Json<User>> {
    repo::find(&state.db, principal.user_id)
        .await?
        .map(Json)
        .ok_or(AppError::NotFound("user"))
}
