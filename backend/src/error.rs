//! `AppError`: every outcome a client can see, with its status and stable snake_case code.
//! Bodies are always `{"error":{"code":…,"message":…}}`; 5xx bodies are generic and the cause is
//! logged once, by the tracing middleware's response hook.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

pub type Result<T, E = AppError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    InvalidClickEvents(String),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
}

impl AppError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::InvalidClickEvents(_) => StatusCode::BAD_REQUEST,
            Self::Database(_) | Self::Redis(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::NotFound(_) => "not_found",
            Self::Validation(_) => "validation_failed",
            Self::InvalidClickEvents(_) => "invalid_click_event",
            Self::Database(_) => "database_unavailable",
            Self::Redis(_) => "cache_unavailable",
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let message = if status.is_server_error() {
            "the service is temporarily unavailable; please retry".to_owned()
        } else {
            self.to_string()
        };
        let mut response = (
            status,
            Json(json!({"error": {"code": self.code(), "message": message}})),
        )
            .into_response();
        if status.is_server_error() {
            // Picked up by the trace layer, which logs the cause once.
            response
                .extensions_mut()
                .insert(LoggedCause(self.to_string()));
        }
        response
    }
}

/// The internal cause of a 5xx, carried to the logging middleware instead of the client.
#[derive(Clone, Debug)]
pub struct LoggedCause(pub String);
