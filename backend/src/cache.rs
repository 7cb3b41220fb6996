//! Redis access for the link cache (`link:{domain}:{slug}`, and `domain:{hostname}` for custom
//! domains), over the fail-fast connection of [`crate::redis_conn`]: the origin starts and keeps
//! serving from PostgreSQL while Redis is down.
//!
//! Writes are versioned so the cache never goes back in time. Beside each entry ([`Slot`]) Redis
//! keeps `version:{entry key}`, the highest version (a number from PostgreSQL's
//! `link_cache_version`) any write for that entry carried. A refill carries the number it took *before* reading
//! PostgreSQL and is refused unless it is higher; an invalidation carries a number taken *after*
//! its change committed. A refill that read the state before a change therefore always carries a
//! lower number than that change's invalidation, and can never overwrite it, whatever the order
//! in which the two reach Redis.

use crate::config::RedisTimeouts;
use crate::links::local_cache;
use crate::redis_conn::{Conn, RedisConn};
use redis::AsyncCommands;
use smo1_core::domain::{self, DomainEntry, DEFAULT_DOMAIN};
use smo1_core::link::{self, CacheEntry};
use std::sync::LazyLock;
use std::time::Duration;

/// How long Redis remembers an entry's version. A refill older than [`REFILL_MAX_AGE`] is dropped
/// before it reaches Redis, so every version it could lose to is still remembered.
const VERSION_TTL: Duration = Duration::from_secs(60);

/// A refill whose PostgreSQL read began longer ago than this is not cached.
pub const REFILL_MAX_AGE: Duration = Duration::from_secs(10);

/// KEYS: entry, version key. ARGV: entry JSON, entry TTL ms, the refill's version, version TTL ms.
/// Returns 1 when written, 0 when Redis has seen a newer version.
static REFILL: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local seen = tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[3]) <= seen then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
return 1
",
    )
});

/// KEYS: pairs of (entry, version key). ARGV: the invalidation's version, version TTL ms, the
/// channel origins listen on, the message (the entries' names as a JSON array).
static INVALIDATE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local version = tonumber(ARGV[1])
for i = 1, #KEYS, 2 do
  if version > tonumber(redis.call('GET', KEYS[i + 1]) or '0') then
    redis.call('SET', KEYS[i + 1], ARGV[1], 'PX', ARGV[2])
  end
  redis.call('DEL', KEYS[i])
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
",
    )
});

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Version keys of per-domain entries: `version:link:{domain}:{slug}`, `version:domain:{host}`.
const VERSION_PREFIX: &str = "version:";

/// One cached value: its key, the key Redis keeps its highest version under, and its name in the
/// origins' memory and in invalidation messages (its key without the prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slot {
    entry: String,
    version: String,
    pub local: String,
}

#[derive(Clone)]
pub struct Redis {
    conn: RedisConn,
    prefix: String,
}

impl Redis {
    pub fn new(
        url: &str,
        prefix: impl Into<String>,
        timeouts: RedisTimeouts,
    ) -> redis::RedisResult<Self> {
        Ok(Self {
            conn: RedisConn::new(url, timeouts)?,
            prefix: prefix.into(),
        })
    }

    /// A connection; fails at once while Redis is known to be down.
    pub async fn conn(&self) -> redis::RedisResult<Conn> {
        self.conn.get().await
    }

    /// A dedicated connection for subscriptions.
    pub async fn pubsub(&self) -> redis::RedisResult<redis::aio::PubSub> {
        self.conn.pubsub().await
    }

    /// Whether Redis is used now (false for a while after a connection failure).
    pub fn available(&self) -> bool {
        self.conn.available()
    }

    /// `name` under this instance's key prefix.
    pub fn prefixed(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The name of `slug` on `domain` (`None`: the default domain), without the key prefix: what
    /// origins' memory and invalidation messages use.
    pub fn link_name(domain: Option<&str>, slug: &str) -> String {
        link::cache_key("", domain.unwrap_or(DEFAULT_DOMAIN), slug)
    }

    /// The slot of `link:{domain}:{slug}` (`domain` `None`: the default domain).
    pub fn link_slot(&self, domain: Option<&str>, slug: &str) -> Slot {
        let name = Self::link_name(domain, slug);
        Slot {
            entry: self.prefixed(&name),
            version: self.prefixed(&format!("{VERSION_PREFIX}{name}")),
            local: name,
        }
    }

    /// The slot of `link:{slug}`, the default domain's key before custom domains, still read by
    /// workers of before them while a rollout runs. Its name in origins' memory and messages is
    /// the bare slug, as origins of before custom domains use it.
    pub fn legacy_link_slot(&self, slug: &str) -> Slot {
        Slot {
            entry: self.prefixed(&link::legacy_cache_key("", slug)),
            version: self.prefixed(&format!("link-version:{slug}")),
            local: slug.to_owned(),
        }
    }

    /// The name of `hostname`'s entry without the key prefix, like [`Self::link_name`].
    pub fn domain_name(hostname: &str) -> String {
        domain::cache_key("", hostname)
    }

    /// The slot of `domain:{hostname}`.
    pub fn domain_slot(&self, hostname: &str) -> Slot {
        let name = Self::domain_name(hostname);
        Slot {
            entry: self.prefixed(&name),
            version: self.prefixed(&format!("{VERSION_PREFIX}{name}")),
            local: name,
        }
    }

    async fn get(&self, slot: &Slot) -> redis::RedisResult<Option<String>> {
        self.conn().await?.get(&slot.entry).await
    }

    /// The cached entry of `slug` on `domain`, `None` on a miss or an unreadable entry.
    pub async fn get_link(
        &self,
        domain: Option<&str>,
        slug: &str,
    ) -> redis::RedisResult<Option<CacheEntry>> {
        let raw = self.get(&self.link_slot(domain, slug)).await?;
        Ok(raw.as_deref().and_then(CacheEntry::from_json))
    }

    /// The cached state of a custom domain, `None` on a miss or an unreadable entry.
    pub async fn get_domain(&self, hostname: &str) -> redis::RedisResult<Option<DomainEntry>> {
        let raw = self.get(&self.domain_slot(hostname)).await?;
        Ok(raw.as_deref().and_then(DomainEntry::from_json))
    }

    /// Stores `json` in `slot`, read at `version`, unless Redis has seen a newer version of the
    /// slot; answers whether it was stored.
    pub async fn put(
        &self,
        slot: &Slot,
        json: &str,
        ttl: Duration,
        version: i64,
    ) -> redis::RedisResult<bool> {
        let written: u8 = REFILL
            .key(&slot.entry)
            .key(&slot.version)
            .arg(json)
            .arg(millis(ttl))
            .arg(version)
            .arg(millis(VERSION_TTL))
            .invoke_async(&mut self.conn().await?)
            .await?;
        Ok(written == 1)
    }

    /// Deletes the entries of `slots` so the next request at the edge reads the new state,
    /// makes Redis refuse refills older than `version`, and tells every origin to drop them from
    /// its memory (`crate::links::local_cache`).
    pub async fn invalidate(&self, slots: &[Slot], version: i64) -> redis::RedisResult<()> {
        let mut invocation = INVALIDATE.prepare_invoke();
        for slot in slots {
            invocation.key(&slot.entry).key(&slot.version);
        }
        let names: Vec<&str> = slots.iter().map(|slot| slot.local.as_str()).collect();
        invocation
            .arg(version)
            .arg(millis(VERSION_TTL))
            .arg(self.prefixed(local_cache::CHANNEL))
            .arg(serde_json::to_string(&names).expect("strings serialize"))
            .invoke_async::<()>(&mut self.conn().await?)
            .await
    }

    pub async fn ping(&self) -> redis::RedisResult<()> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.conn().await?)
            .await
    }
}
