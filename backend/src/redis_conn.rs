//! One Redis connection per process that fails fast while Redis is down and comes back on its own.
//!
//! Every command has a time limit ([`RedisTimeouts::redis_timeout`]). A command or connection
//! attempt that fails for a reason of the connection (refused, reset, timed out; not a server
//! error such as `WRONGTYPE`) opens a circuit breaker: for [`RedisTimeouts::redis_retry_after`]
//! every call fails at once without touching the network, so a dead Redis costs callers nothing.
//! Then one call at a time probes with a fresh connection; its success closes the breaker. Redis
//! is therefore used again at most `redis_retry_after` plus one connection attempt after it
//! returns.
//!
//! `redis`'s `ConnectionManager` is not used: it retries with backoff inside callers' requests
//! and, in 0.32, can stop reconnecting for good after a failed reconnection (a Redis blip broke
//! the Upstash bridge until restart).

use crate::breaker::Breaker;
use crate::config::RedisTimeouts;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{AsyncConnectionConfig, Cmd, ErrorKind, Pipeline, RedisError, RedisFuture, Value};
use std::sync::Arc;

/// The shared handle; cheap to clone.
#[derive(Clone)]
pub struct RedisConn {
    inner: Arc<Inner>,
}

struct Inner {
    client: redis::Client,
    timeouts: RedisTimeouts,
    /// The live connection and its generation (so a failure drops only the connection it saw).
    slot: tokio::sync::Mutex<Option<(u64, MultiplexedConnection)>>,
    breaker: Breaker,
}

impl RedisConn {
    /// A handle to `url`; connects on first use.
    pub fn new(url: &str, timeouts: RedisTimeouts) -> redis::RedisResult<Self> {
        Ok(Self {
            inner: Arc::new(Inner {
                client: redis::Client::open(url)?,
                breaker: Breaker::new(
                    "Redis",
                    crate::metrics::REDIS_BREAKER_OPENED,
                    timeouts.redis_retry_after,
                    timeouts.redis_timeout * 2,
                ),
                timeouts,
                slot: Default::default(),
            }),
        })
    }

    /// A connection to run commands on, connecting now if there is none. Fails at once while the
    /// breaker is open.
    pub async fn get(&self) -> redis::RedisResult<Conn> {
        if !self.inner.breaker.admit() {
            metrics::counter!(crate::metrics::REDIS_BREAKER_REJECTIONS).increment(1);
            return Err(RedisError::from((
                ErrorKind::IoError,
                "Redis is unavailable",
                "the circuit breaker is open after a recent failure".to_owned(),
            )));
        }
        let mut slot = self.inner.slot.lock().await;
        if let Some((generation, conn)) = slot.as_ref() {
            return Ok(self.wrap(*generation, conn.clone()));
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(self.inner.timeouts.redis_timeout)
            .set_response_timeout(self.inner.timeouts.redis_timeout);
        let connecting = self
            .inner
            .client
            .get_multiplexed_async_connection_with_config(&config);
        // The handshake after the TCP connect is bounded too.
        let connected = tokio::time::timeout(self.inner.timeouts.redis_timeout * 2, connecting)
            .await
            .unwrap_or_else(|_| {
                Err(RedisError::from((
                    ErrorKind::IoError,
                    "connecting to Redis timed out",
                )))
            });
        match connected {
            Ok(conn) => {
                let generation = slot.as_ref().map_or(0, |(g, _)| g + 1);
                *slot = Some((generation, conn.clone()));
                Ok(self.wrap(generation, conn))
            }
            Err(e) => {
                self.inner.breaker.failure();
                Err(e)
            }
        }
    }

    fn wrap(&self, generation: u64, conn: MultiplexedConnection) -> Conn {
        Conn {
            conn,
            generation,
            owner: self.clone(),
        }
    }

    /// Records the outcome of a command on connection `generation`.
    async fn observe<T>(&self, generation: u64, result: &redis::RedisResult<T>) {
        match result {
            Err(e) if is_connection_failure(e) => {
                self.inner.breaker.failure();
                let mut slot = self.inner.slot.lock().await;
                if slot.as_ref().is_some_and(|(g, _)| *g == generation) {
                    *slot = None;
                }
            }
            _ => self.inner.breaker.success(),
        }
    }

    /// A dedicated connection for subscriptions (outside the breaker: its caller retries).
    pub async fn pubsub(&self) -> redis::RedisResult<redis::aio::PubSub> {
        self.inner.client.get_async_pubsub().await
    }

    /// Whether calls go to Redis now (the breaker is not open).
    pub fn available(&self) -> bool {
        self.inner.breaker.closed_or_due()
    }
}

/// A failure of the connection rather than of the command.
pub fn is_connection_failure(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_unrecoverable_error()
}

/// A connection from [`RedisConn::get`]: runs commands like any `redis` async connection and
/// reports connection failures to the breaker.
pub struct Conn {
    conn: MultiplexedConnection,
    generation: u64,
    owner: RedisConn,
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let result = self.conn.req_packed_command(cmd).await;
            self.owner.observe(self.generation, &result).await;
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let result = self.conn.req_packed_commands(cmd, offset, count).await;
            self.owner.observe(self.generation, &result).await;
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.conn.get_db()
    }
}
