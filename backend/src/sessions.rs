//! Dashboard sessions in Redis (SPEC §9, the design's session cache).
//!
//! A session id is 256 random bits in URL-safe base64: the cookie value. Redis holds only its
//! SHA-256, `session:{hash}` → JSON `{user_id, created_at, absolute_expires_at}` (Unix ms), so a
//! Redis dump or `KEYS` listing holds no live cookie. Two bounds end a session:
//! - idle: the key's TTL, set to `SESSION_IDLE_SECS` at sign-in and refreshed on use (at most once
//!   per [`REFRESH_RESOLUTION`], so reads cost no write);
//! - absolute: `absolute_expires_at`, checked on every read; the TTL never reaches past it.
//!
//! Each user's session hashes are also in the set `sessions:{user_id}`, so "sign out everywhere"
//! deletes them all. Every operation is one Lua script, so a sign-in racing a sign-out-everywhere
//! either happens before it (and is deleted) or after it. Redis errors come back as
//! [`AppError::SignInUnavailable`]: nobody can sign in without Redis, while links keep redirecting.

use crate::cache::Redis;
use crate::config::SessionConfig;
use crate::error::{AppError, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::LazyLock;
use std::time::Duration;
use uuid::Uuid;

/// Length of a session id: 32 bytes in unpadded base64.
pub const ID_LEN: usize = 43;
/// How stale the idle TTL may get before a read refreshes it.
pub const REFRESH_RESOLUTION: Duration = Duration::from_secs(60);

/// A signed-in browser, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub user_id: Uuid,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub created_at: DateTime<Utc>,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    pub absolute_expires_at: DateTime<Utc>,
}

/// A session just created: `id` goes into the cookie and nowhere else.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: String,
    pub session: Session,
}

/// The session store: a handle, cheap to clone.
#[derive(Clone)]
pub struct Sessions {
    redis: Redis,
    idle: Duration,
    absolute: Duration,
}

/// KEYS: session key, user's set. ARGV: JSON value, TTL ms, session hash, set TTL ms.
/// Also drops members of the set whose session has already ended, so the set stays small.
static CREATE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local prefix = string.sub(KEYS[1], 1, string.len(KEYS[1]) - string.len(ARGV[3]))
for _, member in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  if redis.call('EXISTS', prefix .. member) == 0 then
    redis.call('SREM', KEYS[2], member)
  end
end
redis.call('SADD', KEYS[2], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return 1
",
    )
});

/// KEYS: session key. ARGV: now ms, idle ms, refresh resolution ms, prefix of user sets.
/// Returns the value, or nil when there is none or it is past its absolute expiry (then deleted).
static GET: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local value = redis.call('GET', KEYS[1])
if not value then return false end
local ok, session = pcall(cjson.decode, value)
if not ok or type(session) ~= 'table' or type(session.absolute_expires_at) ~= 'number' then
  redis.call('DEL', KEYS[1])
  return false
end
local now = tonumber(ARGV[1])
local left = session.absolute_expires_at - now
if left <= 0 then
  redis.call('DEL', KEYS[1])
  if session.user_id then
    local hash = string.sub(KEYS[1], string.len(KEYS[1]) - 42)
    redis.call('SREM', ARGV[4] .. session.user_id, hash)
  end
  return false
end
local idle = tonumber(ARGV[2])
local ttl = math.min(idle, left)
if redis.call('PTTL', KEYS[1]) < ttl - tonumber(ARGV[3]) then
  redis.call('PEXPIRE', KEYS[1], ttl)
end
return value
",
    )
});

/// KEYS: session key. ARGV: session hash, prefix of user sets. Returns 1 if a session ended.
static DELETE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local value = redis.call('GET', KEYS[1])
if not value then return 0 end
local ok, session = pcall(cjson.decode, value)
if ok and type(session) == 'table' and session.user_id then
  redis.call('SREM', ARGV[2] .. session.user_id, ARGV[1])
end
return redis.call('DEL', KEYS[1])
",
    )
});

/// KEYS: user's set. ARGV: prefix of session keys. Returns how many live sessions ended.
static DELETE_ALL: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local ended = 0
for _, member in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  ended = ended + redis.call('DEL', ARGV[1] .. member)
end
redis.call('DEL', KEYS[1])
return ended
",
    )
});

impl Sessions {
    pub fn new(redis: Redis, config: &SessionConfig) -> Self {
        Self {
            redis,
            idle: config.session_idle,
            absolute: config.session_absolute,
        }
    }

    /// The Redis key of the session with cookie value `id`.
    pub fn key(&self, id: &str) -> String {
        self.redis.prefixed(&format!("session:{}", hash_id(id)))
    }

    fn user_set(&self, user_id: Uuid) -> String {
        self.redis.prefixed(&format!("sessions:{user_id}"))
    }

    /// Signs `user_id` in: a new session whose id goes into the cookie.
    #[tracing::instrument(skip(self))]
    pub async fn create(&self, user_id: Uuid) -> Result<NewSession> {
        let id = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
        // Stored to the millisecond; the caller sees what a read will see.
        let now = Utc::now().trunc_subsecs(3);
        let session = Session {
            user_id,
            created_at: now,
            absolute_expires_at: now + self.absolute,
        };
        let value = serde_json::to_string(&session)
            .map_err(|e| AppError::Internal(format!("session JSON: {e}")))?;
        let ttl = self.idle.min(self.absolute);
        let _: i64 = CREATE
            .key(self.key(&id))
            .key(self.user_set(user_id))
            .arg(value)
            .arg(millis(ttl))
            .arg(hash_id(&id))
            .arg(millis(self.absolute))
            .invoke_async(&mut self.conn().await?)
            .await
            .map_err(AppError::SignInUnavailable)?;
        Ok(NewSession { id, session })
    }

    /// The live session with cookie value `id`, refreshing its idle expiry; `None` when there is
    /// none, it idled out or it is past its absolute expiry. A malformed id costs no Redis call.
    #[tracing::instrument(skip_all)]
    pub async fn get(&self, id: &str) -> Result<Option<Session>> {
        if !is_well_formed(id) {
            return Ok(None);
        }
        let value: Option<String> = GET
            .key(self.key(id))
            .arg(Utc::now().timestamp_millis())
            .arg(millis(self.idle))
            .arg(millis(REFRESH_RESOLUTION))
            .arg(self.redis.prefixed("sessions:"))
            .invoke_async(&mut self.conn().await?)
            .await
            .map_err(AppError::SignInUnavailable)?;
        Ok(value
            .and_then(|v| serde_json::from_str::<Session>(&v).ok())
            .filter(|s| s.absolute_expires_at > Utc::now()))
    }

    /// Signs this browser out; `false` when the session had already ended.
    #[tracing::instrument(skip_all)]
    pub async fn delete(&self, id: &str) -> Result<bool> {
        if !is_well_formed(id) {
            return Ok(false);
        }
        let ended: i64 = DELETE
            .key(self.key(id))
            .arg(hash_id(id))
            .arg(self.redis.prefixed("sessions:"))
            .invoke_async(&mut self.conn().await?)
            .await
            .map_err(AppError::SignInUnavailable)?;
        Ok(ended == 1)
    }

    /// Signs the user out everywhere; answers how many live sessions ended.
    #[tracing::instrument(skip(self))]
    pub async fn delete_all_for_user(&self, user_id: Uuid) -> Result<u64> {
        let ended: u64 = DELETE_ALL
            .key(self.user_set(user_id))
            .arg(self.redis.prefixed("session:"))
            .invoke_async(&mut self.conn().await?)
            .await
            .map_err(AppError::SignInUnavailable)?;
        Ok(ended)
    }

    async fn conn(&self) -> Result<crate::redis_conn::Conn> {
        self.redis.conn().await.map_err(AppError::SignInUnavailable)
    }
}

/// What Redis keys carry instead of the id: its SHA-256 in unpadded base64 (43 characters).
fn hash_id(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(id.as_bytes()))
}

fn is_well_formed(id: &str) -> bool {
    id.len() == ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_checked_before_any_lookup() {
        let id = URL_SAFE_NO_PAD.encode([7u8; 32]);
        assert!(is_well_formed(&id));
        assert!(!is_well_formed(&id[1..]));
        assert!(!is_well_formed(&format!("{}=", &id[1..])));
        assert!(!is_well_formed(""));
    }

    #[test]
    fn keys_hold_a_hash_of_the_id_not_the_id() {
        let id = URL_SAFE_NO_PAD.encode([7u8; 32]);
        let hash = hash_id(&id);
        assert_eq!(hash.len(), ID_LEN);
        assert_ne!(hash, id);
    }

    #[test]
    fn stored_json_uses_unix_millis() {
        let session = Session {
            user_id: Uuid::nil(),
            created_at: DateTime::from_timestamp_millis(1_000).unwrap(),
            absolute_expires_at: DateTime::from_timestamp_millis(2_000).unwrap(),
        };
        assert_eq!(
            serde_json::to_string(&session).unwrap(),
            r#"{"user_id":"00000000-0000-0000-0000-000000000000","created_at":1000,"absolute_expires_at":2000}"#
        );
    }
}
