//! `AppError`: every outcome a client can see, with its status and stable snake_case code.
//! Bodies are always `{"error":{"code":…,"message":…}}`; 5xx bodies are generic and the cause is
//! logged once, by the tracing middleware's response hook. The shared sets of error responses the
//! OpenAPI document lists ([`AuthErrors`], [`ScopeErrors`], [`OriginErrors`], [`JsonBodyErrors`],
//! [`QueryErrors`], [`LinkNotFound`], [`DomainNotFound`]) sit here too, next to the statuses and codes they describe.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

pub type Result<T, E = AppError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or invalid credentials")]
    Unauthorized,
    #[error("{0}")]
    InvalidSignature(String),
    #[error("this API key lacks the {0} scope")]
    InsufficientScope(&'static str),
    /// A state-changing `/v1` request from another site, or one authenticated by the session
    /// cookie without an `Origin` header: refused before authentication (CSRF).
    #[error("{0}")]
    ForbiddenOrigin(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("this method is not allowed on this endpoint")]
    MethodNotAllowed,
    #[error("this slug is already taken")]
    SlugTaken,
    #[error("this account already has this domain")]
    DomainTaken,
    #[error("domain {0} is not verified; links can be created on it once it is")]
    DomainNotVerified(String),
    #[error(
        "this account already holds {max} API keys, the most its tier allows; revoke one first"
    )]
    ApiKeyLimit { max: u32 },
    #[error("request body is larger than {max_bytes} bytes")]
    PayloadTooLarge { max_bytes: usize },
    #[error("request body must be JSON (Content-Type: application/json)")]
    UnsupportedMediaType,
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    InvalidClickEvents(String),
    #[error("rate limit exceeded; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("webhook processing failed: {0}")]
    WebhookFailed(String),
    /// A failure of our own code, not of a dependency (e.g. a panicked hashing task).
    #[error("internal error: {0}")]
    Internal(String),
    #[error("too many PIN and password checks at once")]
    VerifierBusy,
    /// Expired, already used and unknown sign-in links are one outcome, so a link's fate is
    /// not told apart.
    #[error("this sign-in link is invalid, expired or already used; request a new one")]
    SignInLinkInvalid,
    /// Sessions and sign-in limits live in Redis; without it nobody can sign in (links still
    /// redirect).
    #[error("sign-in is unavailable: {0}")]
    SignInUnavailable(redis::RedisError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("redis error: {0}")]
    Redis(#[from] redis::RedisError),
    #[error("clickhouse error: {0}")]
    ClickHouse(#[from] crate::clickhouse::ClickHouseError),
}

impl AppError {
    pub fn status_code(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized | Self::InvalidSignature(_) => StatusCode::UNAUTHORIZED,
            Self::InsufficientScope(_) | Self::ForbiddenOrigin(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::SlugTaken | Self::DomainTaken | Self::ApiKeyLimit { .. } => StatusCode::CONFLICT,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Validation(_) | Self::DomainNotVerified(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::InvalidClickEvents(_) => StatusCode::BAD_REQUEST,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::SignInLinkInvalid => StatusCode::BAD_REQUEST,
            Self::WebhookFailed(_) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::VerifierBusy
            | Self::SignInUnavailable(_)
            | Self::Database(_)
            | Self::Redis(_)
            | Self::ClickHouse(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(_) => "malformed_request",
            Self::Unauthorized => "unauthorized",
            Self::InvalidSignature(_) => "invalid_signature",
            Self::InsufficientScope(_) => "insufficient_scope",
            Self::ForbiddenOrigin(_) => "forbidden_origin",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::SlugTaken => "slug_taken",
            Self::DomainTaken => "domain_taken",
            Self::DomainNotVerified(_) => "domain_not_verified",
            Self::ApiKeyLimit { .. } => "api_key_limit_reached",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::Validation(_) => "validation_failed",
            Self::InvalidClickEvents(_) => "invalid_click_event",
            Self::RateLimited { .. } => "rate_limited",
            Self::WebhookFailed(_) => "webhook_processing_failed",
            Self::Internal(_) => "internal_error",
            Self::VerifierBusy => "busy",
            Self::SignInLinkInvalid => "sign_in_link_invalid",
            Self::SignInUnavailable(_) => "sign_in_unavailable",
            Self::Database(_) => "database_unavailable",
            Self::Redis(_) => "cache_unavailable",
            Self::ClickHouse(_) => "analytics_unavailable",
        }
    }
}

/// The one error shape: `{"error":{"code":"slug_taken","message":"…"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code: `malformed_request`, `unauthorized`, `insufficient_scope`,
    /// `forbidden_origin`, `not_found`, `slug_taken`, `domain_taken`, `domain_not_verified`,
    /// `api_key_limit_reached`, `payload_too_large`, `unsupported_media_type`,
    /// `validation_failed`, `rate_limited`, `internal_error`, `busy`, `sign_in_link_invalid`,
    /// `sign_in_unavailable`, `database_unavailable`, `cache_unavailable`,
    /// `analytics_unavailable`.
    code: &'static str,
    /// For people; may change.
    message: String,
}

// The error responses many `/v1` operations share, for `responses(...)` of `#[utoipa::path]`
// (never built: they only describe `AppError`s). An operation's own tuple row after a set replaces
// the set's row of the same status, for a more specific description.

/// What any authenticated `/v1` call can answer: the API key (PostgreSQL) or session (Redis) is
/// looked up and rate limited before the handler runs, and the handler may need PostgreSQL, Redis
/// or ClickHouse.
#[derive(IntoResponses)]
pub enum AuthErrors {
    #[response(
        status = 401,
        description = "`unauthorized`: no API key or session cookie, an unknown or revoked key, or \
            a session that has ended"
    )]
    Unauthorized(ErrorBody),
    #[response(
        status = 429,
        description = "`rate_limited`: the key's (or the signed-in user's) requests for this minute \
            are spent",
        headers(("Retry-After" = u64, description = "Seconds until a request is allowed again"))
    )]
    RateLimited(ErrorBody),
    #[response(
        status = 503,
        description = "`database_unavailable`, `cache_unavailable`, `analytics_unavailable`, \
            `busy`, or `sign_in_unavailable` (a session cookie while Redis is down; API keys keep \
            working): a dependency of this call is unavailable; retry later"
    )]
    Unavailable(ErrorBody),
}

/// For state-changing operations (POST, PUT, PATCH, DELETE): the Origin check runs first.
#[derive(IntoResponses)]
#[response(
    status = 403,
    description = "`forbidden_origin`: the `Origin` header names another site, or the request is \
        authenticated by the session cookie and carries no `Origin` header (CSRF protection)"
)]
pub struct OriginErrors(pub ErrorBody);

/// For operations that need a scope (named in their `security`).
#[derive(IntoResponses)]
#[response(
    status = 403,
    description = "`insufficient_scope`: the API key lacks the scope this operation's `security` names"
)]
pub struct ScopeErrors(pub ErrorBody);

/// For operations that read a JSON body.
#[derive(IntoResponses)]
pub enum JsonBodyErrors {
    #[response(
        status = 400,
        description = "`malformed_request`: the body is not JSON"
    )]
    Malformed(ErrorBody),
    #[response(
        status = 413,
        description = "`payload_too_large`: the body is larger than the origin reads"
    )]
    TooLarge(ErrorBody),
    #[response(
        status = 415,
        description = "`unsupported_media_type`: the `Content-Type` is not `application/json`"
    )]
    UnsupportedMediaType(ErrorBody),
    #[response(
        status = 422,
        description = "`validation_failed`: the body breaks its schema (a wrong type, a missing or \
            unknown field, a value outside its declared constraints)"
    )]
    Invalid(ErrorBody),
}

/// For operations that take query parameters.
#[derive(IntoResponses)]
#[response(
    status = 422,
    description = "`validation_failed`: a query parameter is outside its declared constraints or \
        unknown, or a `cursor` is not a `next_cursor` this API gave"
)]
pub struct QueryErrors(pub ErrorBody);

/// For operations on one link (`{id}` in the path).
#[derive(IntoResponses)]
#[response(
    status = 404,
    description = "`not_found`: no such link of this user (also for an id that is not a UUID)"
)]
pub struct LinkNotFound(pub ErrorBody);

/// For operations on one domain (`{id}` in the path).
#[derive(IntoResponses)]
#[response(
    status = 404,
    description = "`not_found`: no such domain of this user (also for an id that is not a UUID)"
)]
pub struct DomainNotFound(pub ErrorBody);

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let message = if let Self::SignInUnavailable(_) = self {
            // Said plainly (the cause stays in the log): the dashboard shows it as is.
            "sign-in is temporarily unavailable (short links keep working); please retry in a few \
             minutes"
                .to_owned()
        } else if status.is_server_error() {
            "the service is temporarily unavailable; please retry".to_owned()
        } else {
            self.to_string()
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message,
            },
        };
        let mut response = (status, Json(body)).into_response();
        if let Self::RateLimited { retry_after_secs } = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
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
