//! SMO1 origin: the source-of-truth service over PostgreSQL, the read-through writer of the
//! edge's Redis cache, a redirect server of its own, and the local Upstash REST bridge.
//!
//! Layout: [`http`] is the web face (server, middleware, one module per resource); the other
//! modules are the domain (repositories, services, background tasks) and never import `http`.
//! [`state`] holds handles only; [`app`] starts and stops the background work of `serve`.

pub mod achievements;
pub mod analytics;
pub mod api_keys;
pub mod app;
pub mod billing;
pub mod breaker;
pub mod cache;
pub mod clickhouse;
pub mod clicks;
pub mod client_ip;
pub mod config;
pub mod db;
pub mod domains;
pub mod error;
pub mod http;
pub mod links;
pub mod mail;
pub mod metrics;
pub mod periodic;
pub mod rate_limit;
pub mod read_replica;
pub mod redis_conn;
pub mod sessions;
pub mod sign_in;
pub mod sliding_window;
pub mod state;
pub mod users;

/// Installs the global tracing subscriber: `RUST_LOG` filters, `LOG_FORMAT=json` for JSON lines.
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if std::env::var("LOG_FORMAT").is_ok_and(|f| f == "json") {
        builder.json().init();
    } else {
        builder.init();
    }
}
