//! The worker's bindings. Names match `wrangler.toml` (`[vars]`) and `.dev.vars` (secrets).

use worker::Env;

/// Upstash REST endpoint, e.g. `https://eu1-xyz.upstash.io` (locally the bridge).
pub const UPSTASH_URL: &str = "UPSTASH_REDIS_REST_URL";
/// Upstash REST token (secret).
pub const UPSTASH_TOKEN: &str = "UPSTASH_REDIS_REST_TOKEN";
/// Base URL of the origin, e.g. `https://origin.sho.rt`.
pub const ORIGIN_URL: &str = "ORIGIN_URL";
/// Shared secret for the origin's `/internal/*` endpoints (secret).
pub const INTERNAL_SECRET: &str = "INTERNAL_SECRET";
/// Optional prefix of every Redis key (empty in production; tests isolate by prefix).
pub const CACHE_KEY_PREFIX: &str = "CACHE_KEY_PREFIX";
/// `"false"` turns click recording off (benchmarks compare both).
pub const CLICKS_ENABLED: &str = "CLICKS_ENABLED";
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

pub struct EdgeConfig {
    pub upstash_url: String,
    pub upstash_token: String,
    pub origin_url: String,
    pub internal_secret: String,
    pub key_prefix: String,
    pub unlock_cookie_secret: String,
    /// `None` when click recording is off.
    pub clicks: Option<ClickConfig>,
}

/// What sending a click needs; owned, since sending outlives the request.
#[derive(Clone)]
pub struct ClickConfig {
    pub clickhouse_url: String,
    pub clickhouse_database: String,
    pub clickhouse_user: String,
    pub clickhouse_password: String,
    pub clickhouse_async_insert: bool,
    pub visitor_salt: String,
    pub origin_url: String,
    pub internal_secret: String,
}

impl EdgeConfig {
    /// Reads every binding; a missing one is a deployment error reported by name.
    pub fn from_env(env: &Env) -> worker::Result<Self> {
        let text = |name: &str| -> worker::Result<String> {
            env.var(name)
                .map(|v| v.to_string())
                .map_err(|_| worker::Error::RustError(format!("binding {name} is not set")))
        };
        let origin_url = text(ORIGIN_URL)?.trim_end_matches('/').to_owned();
        let internal_secret = text(INTERNAL_SECRET)?;
        let clicks = if text(CLICKS_ENABLED).is_ok_and(|v| v == "false") {
            None
        } else {
            Some(ClickConfig {
                clickhouse_url: text(CLICKHOUSE_URL)?.trim_end_matches('/').to_owned(),
                clickhouse_database: text(CLICKHOUSE_DATABASE)?,
                clickhouse_user: text(CLICKHOUSE_USER)?,
                clickhouse_password: text(CLICKHOUSE_PASSWORD).unwrap_or_default(),
                clickhouse_async_insert: text(CLICKHOUSE_ASYNC_INSERT).is_ok_and(|v| v == "true"),
                visitor_salt: text(VISITOR_SALT_SECRET)?,
                origin_url: origin_url.clone(),
                internal_secret: internal_secret.clone(),
            })
        };
        Ok(Self {
            upstash_url: text(UPSTASH_URL)?.trim_end_matches('/').to_owned(),
            upstash_token: text(UPSTASH_TOKEN)?,
            origin_url,
            internal_secret,
            key_prefix: text(CACHE_KEY_PREFIX).unwrap_or_default(),
            unlock_cookie_secret: text(UNLOCK_COOKIE_SECRET)?,
            clicks,
        })
    }
}
