//! Sliding-window request counting over Redis: the one counter behind every rate limit (the `/v1`
//! per-key limit and the sign-in limits per email and per IP).
//!
//! Counters are `rate:{identifier}:{bucket}`, one bucket per window length. A request is counted
//! against the current bucket plus the previous bucket weighted by how much of it still lies inside
//! the sliding window (rounded up, so a burst across a bucket boundary never exceeds the limit).
//! One Lua script reads, decides and increments, so concurrent requests (on any number of origin
//! instances) are counted exactly. What to do when Redis is unavailable is the caller's choice.

use crate::cache::Redis;
use std::sync::LazyLock;
use std::time::Duration;

/// Shortest TTL of a counter key (the spec's `rate:*` keys live an hour).
pub const MIN_COUNTER_TTL_SECS: u64 = 3600;

/// KEYS: current bucket, previous bucket. ARGV: limit, window ms, now ms, TTL s.
/// Returns {allowed (0/1), requests in the window after this one, retry-after ms, reset ms}.
static SLIDING_WINDOW: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local limit = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local elapsed = tonumber(ARGV[3]) % window
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
local reset = window - elapsed
local used = current + math.ceil(previous * (window - elapsed) / window)
if used >= limit then
  local retry
  if current >= limit then
    -- Wait for the next bucket, then until this bucket's weight lets one more through.
    retry = reset + math.ceil(window * (current - limit + 1) / current)
  else
    retry = math.ceil(window * (previous - (limit - current - 1)) / previous) - elapsed
  end
  return {0, used, math.max(retry, 1), reset}
end
redis.call('INCR', KEYS[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[4]))
return {1, used + 1, 0, reset}
",
    )
});

/// The outcome of counting one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the current bucket ends.
    pub reset_secs: u64,
    /// Seconds until a request would be allowed (0 when allowed).
    pub retry_after_secs: u64,
}

/// Counts one request of `identifier` against `limit` per sliding `window` (whole milliseconds,
/// at least 1 ms). A refused request is not counted.
#[tracing::instrument(skip(redis))]
pub async fn count(
    redis: &Redis,
    identifier: &str,
    limit: u32,
    window: Duration,
) -> redis::RedisResult<Decision> {
    let window_ms = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
    let now_ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or_default();
    let bucket = now_ms / window_ms;
    // The previous bucket must outlive the current one by a window.
    let ttl_secs = (2 * window_ms).div_ceil(1000).max(MIN_COUNTER_TTL_SECS);
    let key = |bucket: u64| redis.prefixed(&format!("rate:{identifier}:{bucket}"));
    let (allowed, used, retry_ms, reset_ms): (u8, u64, u64, u64) = SLIDING_WINDOW
        .key(key(bucket))
        .key(key(bucket.saturating_sub(1)))
        .arg(limit)
        .arg(window_ms)
        .arg(now_ms)
        .arg(ttl_secs)
        .invoke_async(&mut redis.conn().await?)
        .await?;
    Ok(Decision {
        allowed: allowed == 1,
        limit,
        remaining: u32::try_from(u64::from(limit).saturating_sub(used)).unwrap_or(0),
        reset_secs: reset_ms.div_ceil(1000),
        retry_after_secs: retry_ms.div_ceil(1000),
    })
}
