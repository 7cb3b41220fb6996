//! Per-API-key rate limits for `/v1`: a sliding minute counted by [`crate::sliding_window`]
//! (`rate:{key id}:{minute bucket}`, TTL 3600 s). If Redis is unavailable the limit fails open:
//! the request is served, the failure logged and counted in `smo1_rate_limit_fail_open_total`.

use crate::auth::Principal;
use crate::cache::Redis;
use crate::config::RateLimitConfig;
use crate::error::AppError;
use crate::sliding_window;
use crate::state::AppState;
use crate::users::SubscriptionTier;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::Duration;

/// Length of the sliding window.
pub const WINDOW: Duration = Duration::from_secs(60);

pub use crate::sliding_window::Decision;

impl RateLimitConfig {
    pub fn per_minute(&self, tier: SubscriptionTier) -> u32 {
        match tier {
            SubscriptionTier::Free => self.free_per_minute,
            SubscriptionTier::Pro => self.pro_per_minute,
            SubscriptionTier::Business => self.business_per_minute,
        }
    }
}

/// Counts one request of `identifier` against `limit` per sliding minute.
pub async fn check(redis: &Redis, identifier: &str, limit: u32) -> redis::RedisResult<Decision> {
    sliding_window::count(redis, identifier, limit, WINDOW).await
}

/// Middleware after [`crate::auth::authenticate`]: limits the caller's key by its user's tier and
/// adds the `X-RateLimit-*` headers; 429 `rate_limited` with `Retry-After` over the limit.
pub async fn enforce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let Some(principal) = request.extensions().get::<Principal>().cloned() else {
        return next.run(request).await;
    };
    let limit = state.config.rate_limits.per_minute(principal.tier);
    let decision = match check(&state.redis, &principal.key_id.to_string(), limit).await {
        Ok(decision) => decision,
        Err(e) => {
            metrics::counter!("smo1_rate_limit_fail_open_total").increment(1);
            tracing::warn!(error = %e, "rate limiter unavailable, allowing the request");
            return next.run(request).await;
        }
    };
    let mut response = if decision.allowed {
        next.run(request).await
    } else {
        metrics::counter!("smo1_rate_limited_total", "tier" => principal.tier.as_str())
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
