//! `/healthz` (the process is alive), `/readyz` (ready or not, for load balancers; each
//! dependency's state and error for operators) and `/metrics` (Prometheus, operators only).
//!
//! Operators present `Authorization: Bearer <METRICS_TOKEN>`. Dependency errors name hosts and
//! ports, and metrics tell traffic and failures: neither is for the public. Without a
//! `METRICS_TOKEN`, `/metrics` answers 404.

use super::auth::presents_secret;
use crate::error::{AppError, Result};
use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use std::time::Duration;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/healthz",
            get(|| async { Json(serde_json::json!({"status": "ok"})) }),
        )
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

#[derive(Serialize)]
struct Readiness {
    status: &'static str,
    postgres: Dependency,
    redis: Dependency,
    clickhouse: Dependency,
    /// The read replica (`DATABASE_READ_URL`), when there is one. Not part of readiness: lookups
    /// read the primary while it is down.
    #[serde(skip_serializing_if = "Option::is_none")]
    postgres_read_replica: Option<Dependency>,
}

#[derive(Serialize)]
struct Dependency {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

impl<E: std::fmt::Display> From<Result<(), E>> for Dependency {
    fn from(result: Result<(), E>) -> Self {
        match result {
            Ok(()) => Self {
                status: "up",
                error: None,
            },
            Err(e) => Self {
                status: "down",
                error: Some(e.to_string()),
            },
        }
    }
}

/// Each check is bounded so a hung dependency cannot hang the probe.
async fn bounded<E: std::fmt::Display>(
    check: impl std::future::Future<Output = Result<(), E>>,
) -> Dependency {
    match tokio::time::timeout(Duration::from_secs(2), check).await {
        Ok(result) => result.into(),
        Err(_) => Err::<(), _>("timed out after 2s").into(),
    }
}

#[tracing::instrument(skip_all)]
async fn readyz(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let read_replica = async {
        match &state.read_replica {
            Some(replica) => Some(bounded(replica.ping()).await),
            None => None,
        }
    };
    let (postgres, redis, clickhouse, postgres_read_replica) = tokio::join!(
        bounded(async { sqlx::query("SELECT 1").execute(&state.db).await.map(drop) }),
        bounded(state.redis.ping()),
        bounded(state.clickhouse.ping()),
        read_replica,
    );
    let ready = [&postgres, &redis, &clickhouse]
        .iter()
        .all(|d| d.status == "up");
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let summary = if ready { "ready" } else { "degraded" };
    if !operator(&state, &headers) {
        return (status, Json(serde_json::json!({"status": summary}))).into_response();
    }
    let body = Readiness {
        status: summary,
        postgres,
        redis,
        clickhouse,
        postgres_read_replica,
    };
    (status, Json(body)).into_response()
}

fn operator(state: &AppState, headers: &HeaderMap) -> bool {
    presents_secret(headers, state.config.metrics_token.expose())
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Result<Response> {
    if state.config.metrics_token.expose().is_empty() {
        return Err(AppError::NotFound("endpoint"));
    }
    if !operator(&state, &headers) {
        return Err(AppError::Unauthorized);
    }
    Ok((
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
        .into_response())
}
