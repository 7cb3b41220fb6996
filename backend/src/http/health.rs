//! `/healthz` (the process is alive), `/readyz` (each dependency's state) and `/metrics`
//! (Prometheus).

use crate::state::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
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

#[tracing::instrument(skip(state))]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let (postgres, redis, clickhouse) = tokio::join!(
        bounded(async { sqlx::query("SELECT 1").execute(&state.db).await.map(drop) }),
        bounded(state.redis.ping()),
        bounded(state.clickhouse.ping()),
    );
    let ready = [&postgres, &redis, &clickhouse]
        .iter()
        .all(|d| d.status == "up");
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    let body = Readiness {
        status: if ready { "ready" } else { "degraded" },
        postgres,
        redis,
        clickhouse,
    };
    (status, Json(body))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    )
}
