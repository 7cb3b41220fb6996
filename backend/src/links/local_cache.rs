//! The origin's in-process cache of link and domain entries for its own redirects
//! (`GET /{slug}`), in front of Redis, keyed by their names (the Redis key without its prefix).
//!
//! An entry is used for at most `ORIGIN_CACHE_STALENESS_MS` (default 2 s; 0 turns the cache off),
//! so whatever else happens a change is visible at every origin within that bound. Usually much
//! sooner: every applied invalidation is published on Redis (`link-invalidations`, by the same
//! script that deletes the entries) and every origin drops those names at once. An origin that
//! loses its subscription drops everything, since it may have missed messages.

use crate::state::AppState;
use futures_util::StreamExt;
use smo1_core::link::CacheEntry;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// Most entries held; when full, expired ones are dropped, and if that is not enough, all.
const CAPACITY: usize = 100_000;

/// Name of the Redis channel of applied invalidations (under the key prefix).
pub const CHANNEL: &str = "link-invalidations";

pub struct LocalCache<T = CacheEntry> {
    entries: RwLock<HashMap<String, (Arc<T>, Instant)>>,
    staleness: Duration,
}

impl<T> LocalCache<T> {
    /// A cache whose entries live `staleness`; zero: off.
    pub fn new(staleness: Duration) -> Self {
        Self {
            entries: RwLock::default(),
            staleness,
        }
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<String, (Arc<T>, Instant)>> {
        self.entries.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The entry named `name` if it is younger than the staleness bound (shared, not copied).
    pub fn get(&self, name: &str) -> Option<Arc<T>> {
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        entries
            .get(name)
            .filter(|(_, stored)| stored.elapsed() < self.staleness)
            .map(|(entry, _)| Arc::clone(entry))
    }

    pub fn put(&self, name: &str, entry: &Arc<T>) {
        if self.staleness.is_zero() {
            return;
        }
        let mut entries = self.write();
        if entries.len() >= CAPACITY && !entries.contains_key(name) {
            entries.retain(|_, (_, stored)| stored.elapsed() < self.staleness);
            if entries.len() >= CAPACITY {
                entries.clear();
            }
        }
        entries.insert(name.to_owned(), (Arc::clone(entry), Instant::now()));
    }

    pub fn forget<S: AsRef<str>>(&self, names: &[S]) {
        let mut entries = self.write();
        for name in names {
            entries.remove(name.as_ref());
        }
    }

    pub fn clear(&self) {
        self.write().clear();
    }
}

/// The running subscription task.
pub struct Listener {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Listener {
    pub async fn shutdown(self) {
        self.stop.send_replace(true);
        let _ = self.task.await;
    }
}

/// Listens for invalidations applied by any origin and drops their names here, reconnecting after
/// `REDIS_RETRY_AFTER_MS` when the subscription is lost. Nothing runs while the cache is off.
pub fn start_listener(state: &AppState) -> Listener {
    let state = state.clone();
    let (stop, stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        if state.config.origin_cache_staleness.is_zero() {
            return;
        }
        let mut stopped = stopped;
        loop {
            tokio::select! {
                result = listen(&state) => {
                    state.local_links.clear();
                    state.local_domains.clear();
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "lost the link invalidation subscription");
                    }
                }
                _ = stopped.wait_for(|stop| *stop) => return,
            }
            tokio::select! {
                _ = tokio::time::sleep(state.config.data.redis_timeouts.redis_retry_after) => {}
                _ = stopped.wait_for(|stop| *stop) => return,
            }
        }
    });
    Listener { stop, task }
}

/// Subscribes and applies messages until the subscription ends.
async fn listen(state: &AppState) -> redis::RedisResult<()> {
    let subscribing = async {
        let mut pubsub = state.redis.pubsub().await?;
        pubsub.subscribe(state.redis.prefixed(CHANNEL)).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    // Bounded like every other Redis call; a silent connection afterwards only costs the
    // staleness bound (entries expire anyway).
    let timeout = state.config.data.redis_timeouts.redis_timeout * 2;
    let mut pubsub = tokio::time::timeout(timeout, subscribing)
        .await
        .map_err(|_| {
            redis::RedisError::from((redis::ErrorKind::IoError, "subscribing timed out"))
        })??;
    // Messages may have been missed while not subscribed.
    state.local_links.clear();
    state.local_domains.clear();
    let mut messages = pubsub.on_message();
    while let Some(message) = messages.next().await {
        let payload: String = message.get_payload()?;
        match serde_json::from_str::<Vec<String>>(&payload) {
            Ok(names) => {
                state.local_links.forget(&names);
                state.local_domains.forget(&names);
            }
            Err(_) => {
                state.local_links.clear();
                state.local_domains.clear();
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_live_for_the_staleness_bound_and_zero_turns_the_cache_off() {
        let cache: LocalCache = LocalCache::new(Duration::from_secs(60));
        cache.put("a", &Arc::new(CacheEntry::missing()));
        assert_eq!(cache.get("a").as_deref(), Some(&CacheEntry::missing()));
        cache.forget(&["a"]);
        assert_eq!(cache.get("a"), None);

        let off: LocalCache = LocalCache::new(Duration::ZERO);
        off.put("a", &Arc::new(CacheEntry::missing()));
        assert_eq!(off.get("a"), None);
    }
}
