//! The worker's bindings, read once per isolate. Names match `wrangler.toml` (`[vars]`) and
//! `.dev.vars` (secrets).

use crate::upstash::Upstash;
use std::cell::OnceCell;
use std::rc::Rc;
use std::time::Duration;
use worker::Env;

/// Upstash REST endpoint, e.g. `https://eu1-xyz.upstash.io` (locally the bridge).
pub const UPSTASH_URL: &str = "UPSTASH_REDIS_REST_URL";
/// Upstash REST token (secret).
pub const UPSTASH_TOKEN: &str = "UPSTASH_REDIS_REST_TOKEN";
/// Longest (ms) the edge waits for Upstash before asking the origin, default
/// [`DEFAULT_REDIS_TIMEOUT_MS`].
pub const EDGE_REDIS_TIMEOUT_MS: &str = "EDGE_REDIS_TIMEOUT_MS";
/// After an Upstash failure, how long (ms) this isolate skips Upstash and asks the origin
/// directly before one request probes again, default [`DEFAULT_REDIS_RETRY_AFTER_MS`].
pub const EDGE_REDIS_RETRY_AFTER_MS: &str = "EDGE_REDIS_RETRY_AFTER_MS";
/// Base URL of the origin, e.g. `https://origin.sho.rt`.
pub const ORIGIN_URL: &str = "ORIGIN_URL";
/// Shared secret for the origin's `/internal/*` endpoints (secret).
pub const INTERNAL_SECRET: &str = "INTERNAL_SECRET";
/// Optional prefix of every Redis key (empty in production; tests isolate by prefix).
pub const CACHE_KEY_PREFIX: &str = "CACHE_KEY_PREFIX";
/// Comma-separated hosts of the default domain (the origin's `SHORT_DOMAINS`): requests for any
/// other host are for a custom domain. Unset or empty: every host is the default domain (no
/// custom domains), as before they existed.
pub const SHORT_DOMAINS: &str = "SHORT_DOMAINS";
/// How long (ms) an isolate reuses a link record it read, default [`DEFAULT_LINK_CACHE_MS`];
/// `0` reads the cache on every request. The longest an edit, disable, delete or protection
/// change takes to reach the edge.
pub const EDGE_LINK_CACHE_MS: &str = "EDGE_LINK_CACHE_MS";
/// `"false"` turns click recording off (benchmarks compare both).
pub const CLICKS_ENABLED: &str = "CLICKS_ENABLED";
/// Most clicks one isolate sends in one ClickHouse insert, default [`DEFAULT_CLICK_BATCH_SIZE`].
pub const EDGE_CLICK_BATCH_SIZE: &str = "EDGE_CLICK_BATCH_SIZE";
/// Longest (ms) a click waits in its isolate for others to join its insert, default
/// [`DEFAULT_CLICK_FLUSH_MS`].
pub const EDGE_CLICK_FLUSH_MS: &str = "EDGE_CLICK_FLUSH_MS";
/// ClickHouse HTTP interface, e.g. `https://ch.example.com:8443`.
pub const CLICKHOUSE_URL: &str = "CLICKHOUSE_URL";
pub const CLICKHOUSE_DATABASE: &str = "CLICKHOUSE_DATABASE";
pub const CLICKHOUSE_USER: &str = "CLICKHOUSE_USER";
/// ClickHouse password (secret; optional).
pub const CLICKHOUSE_PASSWORD: &str = "CLICKHOUSE_PASSWORD";
/// `"true"`: insert into `link_clicks` with `async_insert=1` (ClickHouse 21.11+) instead of the
/// `link_clicks_buffer` Buffer table.
pub const CLICKHOUSE_ASYNC_INSERT: &str = "CLICKHOUSE_ASYNC_INSERT";
/// Salt of visitor ids (secret); must equal the origin's.
pub const VISITOR_SALT_SECRET: &str = "VISITOR_SALT_SECRET";
/// HMAC key of protected links' unlock cookies (secret); must equal the origin's.
pub const UNLOCK_COOKIE_SECRET: &str = "UNLOCK_COOKIE_SECRET";

pub const DEFAULT_LINK_CACHE_MS: u64 = 2000;
pub const DEFAULT_REDIS_TIMEOUT_MS: u64 = 1000;
pub const DEFAULT_REDIS_RETRY_AFTER_MS: u64 = 2000;
/// Large enough that at one isolate's peak (about 10k redirects a second on the benchmark's
/// machine) the batch is sent by its wait, not by its size: at most one insert per 100 ms.
pub const DEFAULT_CLICK_BATCH_SIZE: usize = 2000;
pub const DEFAULT_CLICK_FLUSH_MS: u64 = 100;

pub struct EdgeConfig {
    /// The link cache, with this isolate's circuit breaker.
    pub cache: Upstash,
    pub origin_url: String,
    pub internal_secret: String,
    pub key_prefix: String,
    /// Hosts of the default domain; empty: all hosts.
    pub default_hosts: Vec<String>,
    pub unlock_cookie_secret: String,
    /// Zero: no per-isolate reuse of link records.
    pub link_cache: Duration,
    /// `None` when click recording is off.
    pub clicks: Option<Rc<ClickConfig>>,
}

/// What sending a click needs; shared, since sending outlives the request.
pub struct ClickConfig {
    pub clickhouse_url: String,
    pub clickhouse_database: String,
    pub clickhouse_user: String,
    pub clickhouse_password: String,
    pub clickhouse_async_insert: bool,
    pub visitor_salt: String,
    pub origin_url: String,
    pub internal_secret: String,
    /// At least 1.
    pub batch_size: usize,
    pub flush_after: Duration,
}

thread_local! {
    /// Bindings are fixed for an isolate's life, so they are read on its first request.
    static CONFIG: OnceCell<Rc<EdgeConfig>> = const { OnceCell::new() };
}

impl EdgeConfig {
    /// This isolate's config, read from `env` on first use. A missing or malformed binding is a
    /// deployment error reported by name (and read again on the next request).
    pub fn get(env: &Env) -> worker::Result<Rc<Self>> {
        if let Some(config) = CONFIG.with(|c| c.get().cloned()) {
            return Ok(config);
        }
        let config = Rc::new(Self::from_env(env)?);
        Ok(CONFIG.with(|c| Rc::clone(c.get_or_init(|| config))))
    }

    fn from_env(env: &Env) -> worker::Result<Self> {
        let text = |name: &str| -> worker::Result<String> {
            env.var(name)
                .map(|v| v.to_string())
                .map_err(|_| worker::Error::RustError(format!("binding {name} is not set")))
        };
        let number = |name: &str, default: u64| -> worker::Result<u64> {
            match text(name) {
                Err(_) => Ok(default),
                Ok(value) => value.trim().parse().map_err(|_| {
                    worker::Error::RustError(format!("binding {name} is not a number: {value:?}"))
                }),
            }
        };
        let origin_url = text(ORIGIN_URL)?.trim_end_matches('/').to_owned();
        let internal_secret = text(INTERNAL_SECRET)?;
        let clicks = if text(CLICKS_ENABLED).is_ok_and(|v| v == "false") {
            None
        } else {
            let batch_size = number(EDGE_CLICK_BATCH_SIZE, DEFAULT_CLICK_BATCH_SIZE as u64)?;
            Some(Rc::new(ClickConfig {
                clickhouse_url: text(CLICKHOUSE_URL)?.trim_end_matches('/').to_owned(),
                clickhouse_database: text(CLICKHOUSE_DATABASE)?,
                clickhouse_user: text(CLICKHOUSE_USER)?,
                clickhouse_password: text(CLICKHOUSE_PASSWORD).unwrap_or_default(),
                clickhouse_async_insert: text(CLICKHOUSE_ASYNC_INSERT).is_ok_and(|v| v == "true"),
                visitor_salt: text(VISITOR_SALT_SECRET)?,
                origin_url: origin_url.clone(),
                internal_secret: internal_secret.clone(),
                batch_size: usize::try_from(batch_size).unwrap_or(usize::MAX).max(1),
                flush_after: Duration::from_millis(number(
                    EDGE_CLICK_FLUSH_MS,
                    DEFAULT_CLICK_FLUSH_MS,
                )?),
            }))
        };
        Ok(Self {
            cache: Upstash::new(
                text(UPSTASH_URL)?.trim_end_matches('/').to_owned(),
                text(UPSTASH_TOKEN)?,
                Duration::from_millis(number(EDGE_REDIS_TIMEOUT_MS, DEFAULT_REDIS_TIMEOUT_MS)?),
                Duration::from_millis(number(
                    EDGE_REDIS_RETRY_AFTER_MS,
                    DEFAULT_REDIS_RETRY_AFTER_MS,
                )?),
            ),
            origin_url,
            internal_secret,
            key_prefix: text(CACHE_KEY_PREFIX).unwrap_or_default(),
            default_hosts: text(SHORT_DOMAINS)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|host| !host.is_empty())
                .map(str::to_owned)
                .collect(),
            unlock_cookie_secret: text(UNLOCK_COOKIE_SECRET)?,
            link_cache: Duration::from_millis(number(EDGE_LINK_CACHE_MS, DEFAULT_LINK_CACHE_MS)?),
            clicks,
        })
    }
}
