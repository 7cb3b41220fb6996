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

pub struct EdgeConfig {
    pub upstash_url: String,
    pub upstash_token: String,
    pub origin_url: String,
    pub internal_secret: String,
    pub key_prefix: String,
}

impl EdgeConfig {
    /// Reads every binding; a missing one is a deployment error reported by name.
    pub fn from_env(env: &Env) -> worker::Result<Self> {
        let text = |name: &str| -> worker::Result<String> {
            env.var(name)
                .map(|v| v.to_string())
                .map_err(|_| worker::Error::RustError(format!("binding {name} is not set")))
        };
        Ok(Self {
            upstash_url: text(UPSTASH_URL)?.trim_end_matches('/').to_owned(),
            upstash_token: text(UPSTASH_TOKEN)?,
            origin_url: text(ORIGIN_URL)?.trim_end_matches('/').to_owned(),
            internal_secret: text(INTERNAL_SECRET)?,
            key_prefix: text(CACHE_KEY_PREFIX).unwrap_or_default(),
        })
    }
}
