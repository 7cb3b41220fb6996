//! HTTP handlers for achievements and XP.

use super::auth::Principal;
use super::extract::AppQuery;
use super::tags;
use crate::achievements::{evaluate, level_start};
use crate::error::{AppError, AuthErrors, QueryErrors, Result};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// `GET /v1/achievements`, `GET /v1/xp`.
pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(xp))
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct Achievement {
    pub code: String,
    pub name: String,
    pub description: String,
    /// links, clicks, protection, utm or streak.
    pub category: String,
    pub threshold: i64,
    pub xp_reward: i32,
    /// The caller's progress toward `threshold`.
    pub progress: i64,
    pub unlocked_at: Option<DateTime<Utc>>,
}

/// Every achievement with the caller's progress (brought up to date first).
#[utoipa::path(
    get, path = "/v1/achievements", tag = tags::ACHIEVEMENTS, operation_id = "list_achievements",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "All achievements with the caller's progress", body = [Achievement]),
        AuthErrors,
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Vec<Achievement>>> {
    evaluate(&state.db, principal.user_id).await?;
    let rows = sqlx::query_as(
        "SELECT a.code, a.name, a.description, a.category::text AS category, a.threshold,
                a.xp_reward, coalesce(ua.progress, 0) AS progress, ua.unlocked_at
           FROM achievements a
           LEFT JOIN user_achievements ua ON ua.achievement_id = a.id AND ua.user_id = $1
          ORDER BY a.category, a.threshold",
    )
    .bind(principal.user_id)
    .fetch_all(&state.db)
    .await?;
    Ok(Json(rows))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct XpQuery {
    /// Most events to return, newest first.
    #[param(minimum = 1, maximum = 100, default = 50)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, sqlx::FromRow, ToSchema)]
pub struct XpEvent {
    /// link_created, achievement_unlocked, …
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub kind: String,
    pub amount: i32,
    /// What earned it: a link id or an achievement code.
    pub reference: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct XpSummary {
    pub xp: i64,
    pub level: i32,
    /// XP at which the current level started and the next one starts.
    pub level_start_xp: i64,
    pub next_level_xp: i64,
    /// Share of the way to the next level, 0–1.
    pub progress: f64,
    pub events: Vec<XpEvent>,
}

/// The caller's XP, level, progress to the next level, and XP history (newest first).
#[utoipa::path(
    get, path = "/v1/xp", tag = tags::ACHIEVEMENTS,
    security(("api_key" = [])),
    params(XpQuery),
    responses(
        (status = 200, description = "XP, level and history", body = XpSummary),
        AuthErrors,
        QueryErrors,
    )
)]
#[tracing::instrument(skip_all, fields(user_id = %principal.user_id))]
pub async fn xp(
    State(state): State<AppState>,
    principal: Principal,
    AppQuery(query): AppQuery<XpQuery>,
) -> Result<Json<XpSummary>> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=100).contains(&limit) {
        return Err(AppError::Validation(
            "limit must be between 1 and 100".into(),
        ));
    }
    evaluate(&state.db, principal.user_id).await?;
    let (xp, level): (i64, i32) = sqlx::query_as("SELECT xp, level FROM users WHERE id = $1")
        .bind(principal.user_id)
        .fetch_one(&state.db)
        .await?;
    let events = sqlx::query_as(
        "SELECT type::text AS type, amount, reference, created_at FROM xp_events
          WHERE user_id = $1 ORDER BY created_at DESC, id LIMIT $2",
    )
    .bind(principal.user_id)
    .bind(limit)
    .fetch_all(&state.db)
    .await?;
    let (start, next) = (level_start(level), level_start(level + 1));
    Ok(Json(XpSummary {
        xp,
        level,
        level_start_xp: start,
        next_level_xp: next,
        progress: (xp - start) as f64 / (next - start) as f64,
        events,
    }))
}
