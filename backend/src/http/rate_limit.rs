//! Applies the `/v1` rate limit ([`crate::rate_limit`]) per account: one budget for all of a
//! user's API keys, another for their dashboard sessions, and reports it in the `X-RateLimit-*` headers.

use super::auth::{Credential, Principal};
use crate::error::AppError;
use crate::rate_limit::{check, Decision};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// Middleware after [`super::auth::authenticate`]: limits the caller's account by its tier (a
/// dashboard session: its user, by `RATE_LIMIT_SESSION_PER_MINUTE`) and adds the
/// `X-RateLimit-*` headers; 429 `rate_limited` with `Retry-After` over the limit.
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return next.run(request).await;
    };
    let limits = &state.config.rate_limits;
    let limit = match principal.credential {
        Credential::ApiKey(_) => limits.per_minute(principal.tier),
        Credential::Session(_) => limits.session_per_minute,
    };
    let identifier = principal.rate_limit_identifier();
    let decision = match check(&state.redis, &identifier, limit).await {
        Ok(decision) => decision,
        Err(e) => {
            metrics::counter!(crate::metrics::RATE_LIMIT_FAIL_OPEN).increment(1);
            tracing::warn!(error = %e, "rate limiter unavailable, allowing the request");
            return next.run(request).await;
        }
    };
    let mut response = if decision.allowed {
        next.run(request).await
    } else {
        metrics::counter!(crate::metrics::RATE_LIMITED, "tier" => principal.tier.as_str())
            .increment(1);
        AppError::RateLimited {
            retry_after_secs: decision.retry_after_secs,
        }
        .into_response()
    };
    insert_headers(response.headers_mut(), &decision);
    response
}

fn insert_headers(headers: &mut HeaderMap, decision: &Decision) {
    headers.insert("x-ratelimit-limit", HeaderValue::from(decision.limit));
    headers.insert(
        "x-ratelimit-remaining",
        HeaderValue::from(decision.remaining),
    );
    headers.insert("x-ratelimit-reset", HeaderValue::from(decision.reset_secs));
}
