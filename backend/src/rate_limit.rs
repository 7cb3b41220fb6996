//! Per-account rate limits for `/v1` (applied by `http::rate_limit`): a sliding minute counted
//! by [`crate::sliding_window`] (`rate:api-user:{user id}:{minute bucket}` for API keys,
//! `rate:session-user:…` for dashboard sessions, TTL 3600 s). If Redis is unavailable the limit fails open:
//! the request is served, the failure logged and counted in `smo1_rate_limit_fail_open_total`.

use crate::cache::Redis;
use crate::config::RateLimitConfig;
use crate::sliding_window;
use crate::users::SubscriptionTier;
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
