//! Redis access for the link cache (`link:{slug}`).
//!
//! The connection is made on first use and re-made by the connection manager after failures, so
//! the origin starts and keeps serving from PostgreSQL while Redis is down.

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::AsyncCommands;
use smo1_core::link::{self, CacheEntry};
use std::time::Duration;
use tokio::sync::OnceCell;

#[derive(Clone)]
pub struct Redis {
    client: redis::Client,
    conn: std::sync::Arc<OnceCell<ConnectionManager>>,
    prefix: String,
}

impl Redis {
    pub fn new(url: &str, prefix: impl Into<String>) -> redis::RedisResult<Self> {
        Ok(Self {
            client: redis::Client::open(url)?,
            conn: Default::default(),
            prefix: prefix.into(),
        })
    }

    /// A live connection, connecting now if this is the first use (or the first since start
    /// failed). Operations fail fast instead of queueing behind a dead server.
    pub async fn conn(&self) -> redis::RedisResult<ConnectionManager> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Duration::from_millis(500))
            .set_response_timeout(Duration::from_millis(500))
            .set_number_of_retries(1);
        self.conn
            .get_or_try_init(|| ConnectionManager::new_with_config(self.client.clone(), config))
            .await
            .cloned()
    }

    /// `name` under this instance's key prefix.
    pub fn prefixed(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    pub fn link_key(&self, slug: &str) -> String {
        link::cache_key(&self.prefix, slug)
    }

    /// The cached entry for `slug`, `None` on a miss or an unreadable entry.
    pub async fn get_link(&self, slug: &str) -> redis::RedisResult<Option<CacheEntry>> {
        let raw: Option<String> = self.conn().await?.get(self.link_key(slug)).await?;
        Ok(raw.as_deref().and_then(CacheEntry::from_json))
    }

    pub async fn put_link(
        &self,
        slug: &str,
        entry: &CacheEntry,
        ttl: Duration,
    ) -> redis::RedisResult<()> {
        self.conn()
            .await?
            .set_ex::<_, _, ()>(self.link_key(slug), entry.to_json(), ttl.as_secs())
            .await
    }

    /// Deletes `link:{slug}` so the next request at the edge reads the new state.
    pub async fn invalidate_link(&self, slug: &str) -> redis::RedisResult<()> {
        self.conn().await?.del::<_, ()>(self.link_key(slug)).await
    }

    pub async fn ping(&self) -> redis::RedisResult<()> {
        redis::cmd("PING")
            .query_async::<()>(&mut self.conn().await?)
            .await
    }
}
