//! Typed configuration, loaded once at startup from environment variables (or flags).
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `DATABASE_URL` | `postgres://postgres@127.0.0.1:5432/smo1` | PostgreSQL, the source of truth |
//! | `DATABASE_MAX_CONNECTIONS` | `16` | pool size per origin instance |
//! | `DATABASE_READ_URL` | empty (all reads on `DATABASE_URL`) | a streaming replica of `DATABASE_URL` that serves link lookups (cache misses of redirects and `/internal/links`); TLS as for `DATABASE_URL`; a lookup uses it only once it has replayed every change committed before the lookup began, else reads the primary |
//! | `DATABASE_READ_MAX_CONNECTIONS` | `16` | replica pool size per origin instance |
//! | `DATABASE_READ_TIMEOUT_MS` | `250` | longest wait for the replica (connection and lookup) before the lookup reads the primary |
//! | `DATABASE_READ_CATCH_UP_MS` | `50` | how long a lookup waits for the replica to replay the primary's changes up to the lookup's start; still behind then: the primary answers; `0`: no wait |
//! | `DATABASE_READ_RETRY_AFTER_MS` | `2000` | after the replica failed or was still behind, lookups skip it this long, then one probes |
//! | `REDIS_URL` | `redis://127.0.0.1:6379` | Redis: link cache and rate limits |
//! | `REDIS_KEY_PREFIX` | empty | prefix of every Redis key (tests isolate by prefix) |
//! | `REDIS_TIMEOUT_MS` | `500` | longest wait for a Redis connection or answer (origin and bridge) |
//! | `REDIS_RETRY_AFTER_MS` | `2000` | after a Redis connection failure, Redis is skipped this long, then probed |
//! | `CLICKHOUSE_URL` | `http://127.0.0.1:8123` | ClickHouse HTTP interface |
//! | `CLICKHOUSE_USER` | `default` | ClickHouse user |
//! | `CLICKHOUSE_PASSWORD` | empty | ClickHouse password (secret) |
//! | `ORIGIN_BIND` | `127.0.0.1:8080` | address the origin listens on |
//! | `DASHBOARD_DIR` | `dashboard/dist` | the built dashboard (`npm run build` in `dashboard/`), served at `/dashboard/`; relative to the working directory |
//! | `METRICS_TOKEN` | empty (`/metrics` off) | bearer token of `/metrics` and of `/readyz`'s per-dependency details; without it `/readyz` only says `ready` or `degraded` (secret) |
//! | `INTERNAL_SECRET` | required | shared secret the edge sends to `/internal/*` (secret) |
//! | `SHORT_DOMAINS` | `localhost` | comma-separated domains we serve (spaces around entries ignored); destinations may not point there, nor at the hosts of `PUBLIC_URL` and `SHORT_URL_BASE` |
//! | `SHORT_URL_BASE` | `http://127.0.0.1:8787` (the local edge) | public base of short links (`https://sho.rt`): the dashboard shows `<base>/<slug>` and QR codes encode it |
//! | `LINK_CACHE_TTL_SECS` | `300` | TTL of `link:{domain}:{slug}` and `domain:{hostname}` entries |
//! | `NEGATIVE_CACHE_TTL_SECS` | `30` | TTL of "no such link" entries |
//! | `ORIGIN_CACHE_STALENESS_MS` | `2000` | the origin's own redirects use link entries held in memory at most this long (invalidated across origins at once via Redis pub/sub); `0`: off |
//! | `CLICKHOUSE_DATABASE` | `smo1` | ClickHouse database of `link_clicks` |
//! | `CLICKHOUSE_ASYNC_INSERT` | `false` | insert with `async_insert=1` (24+) instead of via the Buffer table |
//! | `CLICKHOUSE_CLUSTER` | empty (one server) | ClickHouse cluster name (`remote_servers`): migrations run `ON CLUSTER` with replicated local tables behind `Distributed` tables (docs/DEPLOY.md) |
//! | `VISITOR_SALT_SECRET` | required | salt of visitor ids; must equal the worker's (secret) |
//! | `CLICK_BATCH_SIZE` | `10000` | most clicks per ClickHouse insert |
//! | `CLICK_FLUSH_INTERVAL_MS` | `1000` | longest a click waits in memory before its batch is sent |
//! | `CLICK_QUEUE_CAPACITY` | `200000` | in-memory click queue; when full, an overflow lane of 2 × `CLICK_BATCH_SIZE` goes to the outbox |
//! | `CLICK_REPLAY_INTERVAL_SECS` | `5` | how often the outbox is drained into ClickHouse |
//! | `POLAR_WEBHOOK_SECRET` | empty (off) | Polar webhook secret, exactly as Polar shows it (secret) |
//! | `POLAR_PRODUCT_TIERS` | empty | `product_id=tier,…`: which Polar product grants which tier |
//! | `TOTAL_CLICKS_SYNC_INTERVAL_SECS` | `60` | how often `links.total_clicks` is synced from ClickHouse |
//! | `BRIDGE_BIND` | `127.0.0.1:8079` | address of the local Upstash REST bridge |
//! | `UPSTASH_REDIS_REST_TOKEN` | required for the bridge | token the bridge expects (secret) |
//! | `RATE_LIMIT_FREE_PER_MINUTE` | `60` | `/v1` requests per account (all its API keys together) per sliding minute, free tier |
//! | `RATE_LIMIT_PRO_PER_MINUTE` | `600` | the same, pro tier |
//! | `RATE_LIMIT_BUSINESS_PER_MINUTE` | `3000` | the same, business tier |
//! | `RATE_LIMIT_SESSION_PER_MINUTE` | `600` | `/v1` requests per dashboard user per sliding minute, any tier |
//! | `UNLOCK_COOKIE_SECRET` | required | HMAC key of unlock cookies of protected links; must equal the worker's (secret) |
//! | `UNLOCK_COOKIE_TTL_SECS` | `3600` | how long an unlocked protected link stays unlocked for a browser |
//! | `UNLOCK_MAX_FAILURES_PER_LINK` | `30` | failed PIN/password entries per protected link per 15 minutes, across all addresses, before it refuses every entry until the oldest leaves the window (each address, or IPv6 /64, has 5 of its own) |
//! | `TRUSTED_PROXIES` | empty (none) | comma-separated addresses or CIDR blocks of reverse proxies in front of the origin; only from them is `CLIENT_IP_HEADER` believed, otherwise the client address is the TCP peer |
//! | `CLIENT_IP_HEADER` | `x-forwarded-for` | where a trusted proxy puts the client address: `x-forwarded-for` (read right to left past trusted proxies) or a one-address header such as `cf-connecting-ip` or `x-real-ip` |
//! | `UNLOCK_VERIFY_CONCURRENCY` | `2` | argon2id hashes/verifications running at once (each ~19 MiB, tens of ms of one core) |
//! | `PUBLIC_URL` | `http://127.0.0.1:8080` | the origin's public base URL; sign-in links point there |
//! | `REGISTRATION` | `closed` | who may sign in: `closed` (existing users only), `invite` (plus invited emails), `open` (anyone; the first sign-in creates the user) |
//! | `SIGN_IN_LIMIT_PER_EMAIL` | `5` | sign-in link requests per email per sliding 15 minutes |
//! | `SIGN_IN_LIMIT_PER_IP` | `20` | sign-in link requests per client IP (IPv6: per /64) per sliding 15 minutes |
//! | `SESSION_IDLE_SECS` | `604800` (7 days) | a dashboard session unused this long ends |
//! | `SESSION_ABSOLUTE_SECS` | `2592000` (30 days) | a dashboard session ends this long after sign-in, however used |
//! | `SMTP_URL` | empty (no mail) | `smtp://host:port` (plain), `smtp://user:pass@host:587?tls=required` (STARTTLS), `smtps://user:pass@host:465` (TLS); empty: sign-in links only via `admin sign-in-link` (secret) |
//! | `MAIL_FROM` | `SMO1 <no-reply@localhost>` | sender of sign-in mail |
//! | `DNS_RESOLVER` | empty (the system's resolvers) | `ip:port` of the DNS server that domain verification asks (e.g. `127.0.0.1:5353`) |
//! | `DNS_TIMEOUT_MS` | `3000` | longest wait for one answer to a domain's TXT lookup; no answer leaves the domain as it was |
//! | `DOMAIN_RECHECK_INTERVAL_SECS` | `3600` | how often custom domains' TXT records are checked again (pending and failed ones too, which recover once the record appears) |
//! | `DOMAIN_FAILURES_BEFORE_UNVERIFIED` | `3` | a verified domain whose record is missing or wrong this many checks in a row turns `failed` and serves nothing |
//! | `RUST_LOG` | `info` | log filter; `LOG_FORMAT=json` for JSON lines |
//!
//! A bad value fails at start and names the variable (clap reports it).

use clap::Args;
use smo1_core::destination;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A secret value: never printed by `Debug` or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl FromStr for Secret {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            Err("must not be empty".into())
        } else {
            Ok(Self(s.to_owned()))
        }
    }
}

fn parse_secs(s: &str) -> Result<Duration, String> {
    s.parse::<u64>()
        .ok()
        .filter(|secs| *secs > 0)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is not a positive number of seconds"))
}

/// Where the data lives; shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct DataConfig {
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/smo1"
    )]
    pub database_url: String,
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_max_connections: u32,
    #[command(flatten)]
    pub read_replica: ReadReplicaConfig,
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    #[arg(long, env = "REDIS_KEY_PREFIX", default_value = "")]
    pub redis_key_prefix: String,
    #[command(flatten)]
    pub redis_timeouts: RedisTimeouts,
    #[command(flatten)]
    pub clickhouse: ClickHouseConfig,
}

/// The optional read replica of `DATABASE_URL` for link lookups (see `crate::read_replica`).
#[derive(Debug, Clone, Args)]
pub struct ReadReplicaConfig {
    /// Empty: every read goes to `DATABASE_URL`.
    #[arg(long, env = "DATABASE_READ_URL", default_value = "")]
    pub database_read_url: String,
    #[arg(long, env = "DATABASE_READ_MAX_CONNECTIONS", default_value_t = 16)]
    pub database_read_max_connections: u32,
    /// Longest wait for a replica connection and lookup; then the primary answers.
    #[arg(long, env = "DATABASE_READ_TIMEOUT_MS", default_value = "250", value_parser = parse_millis)]
    pub database_read_timeout: Duration,
    /// How long a lookup waits for the replica to catch up with the primary; then the primary
    /// answers.
    #[arg(long, env = "DATABASE_READ_CATCH_UP_MS", default_value = "50", value_parser = parse_millis_or_off)]
    pub database_read_catch_up: Duration,
    /// After the replica failed or was still behind, lookups skip it this long; then one probes.
    #[arg(long, env = "DATABASE_READ_RETRY_AFTER_MS", default_value = "2000", value_parser = parse_millis)]
    pub database_read_retry_after: Duration,
}

impl Default for ReadReplicaConfig {
    /// No replica.
    fn default() -> Self {
        Self {
            database_read_url: String::new(),
            database_read_max_connections: 16,
            database_read_timeout: Duration::from_millis(250),
            database_read_catch_up: Duration::from_millis(50),
            database_read_retry_after: Duration::from_secs(2),
        }
    }
}

/// How long Redis may take, and how long a failed Redis is left alone (see `redis_conn`).
#[derive(Debug, Clone, Copy, Args)]
pub struct RedisTimeouts {
    /// Longest wait for a connection or for one command's answer.
    #[arg(long, env = "REDIS_TIMEOUT_MS", default_value = "500", value_parser = parse_millis)]
    pub redis_timeout: Duration,
    /// After a connection failure, calls fail at once for this long; then one call probes.
    #[arg(long, env = "REDIS_RETRY_AFTER_MS", default_value = "2000", value_parser = parse_millis)]
    pub redis_retry_after: Duration,
}

/// The ClickHouse HTTP interface.
#[derive(Debug, Clone, Args)]
pub struct ClickHouseConfig {
    #[arg(long, env = "CLICKHOUSE_URL", default_value = "http://127.0.0.1:8123")]
    pub clickhouse_url: String,
    #[arg(long, env = "CLICKHOUSE_USER", default_value = "default")]
    pub clickhouse_user: String,
    /// Empty: no password.
    #[arg(long, env = "CLICKHOUSE_PASSWORD", hide_env_values = true, default_value = "", value_parser = parse_optional_secret)]
    pub clickhouse_password: Secret,
    #[arg(long, env = "CLICKHOUSE_DATABASE", default_value = "smo1", value_parser = parse_identifier)]
    pub clickhouse_database: String,
    /// Insert into `link_clicks` with `async_insert=1` (ClickHouse 21.11+) instead of through the
    /// `link_clicks_buffer` Buffer table.
    #[arg(long, env = "CLICKHOUSE_ASYNC_INSERT", default_value_t = false, action = clap::ArgAction::Set)]
    pub clickhouse_async_insert: bool,
    /// Empty: one server. Otherwise the cluster (`remote_servers`) whose every node the
    /// migrations create the tables on (`ON CLUSTER`): replicated local tables and `Distributed`
    /// tables under the names the origin reads and writes (docs/DEPLOY.md).
    #[arg(long, env = "CLICKHOUSE_CLUSTER", default_value = "", value_parser = parse_optional_identifier)]
    pub clickhouse_cluster: String,
}

/// Most clicks in one ClickHouse insert by default (`CLICK_BATCH_SIZE`). A batch stays well below
/// a layer of `link_clicks_buffer` (100 MB, about 400,000 clicks): a larger one is written through
/// to `link_clicks` while the insert waits, and the writer falls behind a burst
/// (docs/BENCHMARKS.md, "Click ingest").
pub const DEFAULT_CLICK_BATCH_SIZE: usize = 10_000;
/// Clicks the in-memory queue holds by default (`CLICK_QUEUE_CAPACITY`).
pub const DEFAULT_CLICK_QUEUE_CAPACITY: usize = 200_000;

/// The click pipeline: how the origin batches clicks and drains the outbox.
#[derive(Debug, Clone, Args)]
pub struct ClickConfig {
    /// Salt of visitor ids (rotated daily by date); must equal the worker's.
    #[arg(long, env = "VISITOR_SALT_SECRET", hide_env_values = true)]
    pub visitor_salt_secret: Secret,
    #[arg(long, env = "CLICK_BATCH_SIZE", default_value_t = DEFAULT_CLICK_BATCH_SIZE)]
    pub click_batch_size: usize,
    #[arg(long, env = "CLICK_FLUSH_INTERVAL_MS", default_value = "1000", value_parser = parse_millis)]
    pub click_flush_interval: Duration,
    #[arg(long, env = "CLICK_QUEUE_CAPACITY", default_value_t = DEFAULT_CLICK_QUEUE_CAPACITY)]
    pub click_queue_capacity: usize,
    #[arg(long, env = "CLICK_REPLAY_INTERVAL_SECS", default_value = "5", value_parser = parse_secs)]
    pub click_replay_interval: Duration,
}

fn parse_optional_secret(s: &str) -> Result<Secret, String> {
    Ok(Secret::new(s))
}

fn parse_millis(s: &str) -> Result<Duration, String> {
    s.parse::<u64>()
        .ok()
        .filter(|ms| *ms > 0)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{s:?} is not a positive number of milliseconds"))
}

fn parse_millis_or_off(s: &str) -> Result<Duration, String> {
    s.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| format!("{s:?} is not a number of milliseconds (0: off)"))
}

/// An identifier, or empty for "none".
fn parse_optional_identifier(s: &str) -> Result<String, String> {
    if s.is_empty() {
        Ok(String::new())
    } else {
        parse_identifier(s)
    }
}

/// SQL identifiers we interpolate (database and cluster names) must be plain.
fn parse_identifier(s: &str) -> Result<String, String> {
    if !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(s.to_owned())
    } else {
        Err(format!("{s:?} must be 1-64 letters, digits or '_'"))
    }
}

/// Where `serve` listens unless `ORIGIN_BIND` says otherwise (and where `health` asks).
pub const DEFAULT_ORIGIN_BIND: &str = "127.0.0.1:8080";

/// Everything `smo1-origin serve` needs.
#[derive(Debug, Clone, Args)]
pub struct OriginConfig {
    #[command(flatten)]
    pub data: DataConfig,
    #[arg(long, env = "ORIGIN_BIND", default_value = DEFAULT_ORIGIN_BIND)]
    pub bind: SocketAddr,
    /// The built dashboard (`npm run build` in `dashboard/`), served at `/dashboard/`. Without an
    /// `index.html` there, `/dashboard/` says it is not built (the origin still starts).
    #[arg(long, env = "DASHBOARD_DIR", default_value = "dashboard/dist")]
    pub dashboard_dir: PathBuf,
    #[arg(long, env = "INTERNAL_SECRET", hide_env_values = true)]
    pub internal_secret: Secret,
    /// Operators' bearer token for `/metrics` and `/readyz` details; empty: `/metrics` is off.
    #[arg(long, env = "METRICS_TOKEN", hide_env_values = true, default_value = "", value_parser = parse_optional_secret)]
    pub metrics_token: Secret,
    #[arg(
        long,
        env = "SHORT_DOMAINS",
        default_value = "localhost",
        value_delimiter = ',',
        value_parser = parse_domain
    )]
    pub short_domains: Vec<String>,
    /// Where visitors follow short links (scheme, host, optional port), no trailing slash: what
    /// the dashboard shows and QR codes encode, as `<SHORT_URL_BASE>/<slug>`.
    #[arg(long, env = "SHORT_URL_BASE", default_value = "http://127.0.0.1:8787", value_parser = parse_public_url)]
    pub short_url_base: String,
    #[arg(long, env = "LINK_CACHE_TTL_SECS", default_value = "300", value_parser = parse_secs)]
    pub link_cache_ttl: Duration,
    #[arg(long, env = "NEGATIVE_CACHE_TTL_SECS", default_value = "30", value_parser = parse_secs)]
    pub negative_cache_ttl: Duration,
    /// How long the origin's own redirects may use an entry held in its memory; 0: off.
    #[arg(long, env = "ORIGIN_CACHE_STALENESS_MS", default_value = "2000", value_parser = parse_millis_or_off)]
    pub origin_cache_staleness: Duration,
    #[command(flatten)]
    pub clicks: ClickConfig,
    #[command(flatten)]
    pub rate_limits: RateLimitConfig,
    /// How often `links.total_clicks` is brought up to date from ClickHouse (the longest it lags).
    #[arg(long, env = "TOTAL_CLICKS_SYNC_INTERVAL_SECS", default_value = "60", value_parser = parse_secs)]
    pub total_clicks_sync_interval: Duration,
    /// How often finished UTC days are rolled up for fast analytics (and re-rolled after late
    /// clicks). Until then, analytics read those days from the raw data: same answers, slower.
    #[arg(long, env = "ANALYTICS_ROLLUP_INTERVAL_SECS", default_value = "60", value_parser = parse_secs)]
    pub analytics_rollup_interval: Duration,
    #[command(flatten)]
    pub billing: BillingConfig,
    #[command(flatten)]
    pub unlock: UnlockConfig,
    #[command(flatten)]
    pub sign_in: SignInConfig,
    #[command(flatten)]
    pub client_address: ClientAddressConfig,
    #[command(flatten)]
    pub domains: DomainConfig,
}

/// Verification of custom domains by DNS.
#[derive(Debug, Clone, Args)]
pub struct DomainConfig {
    /// The DNS server asked for `_smo1-challenge.<domain>` TXT records; unset: the system's.
    #[arg(long, env = "DNS_RESOLVER", value_parser = parse_optional_socket_addr, default_value = "")]
    pub dns_resolver: OptionalAddr,
    #[arg(long, env = "DNS_TIMEOUT_MS", default_value = "3000", value_parser = parse_millis)]
    pub dns_timeout: Duration,
    #[arg(long, env = "DOMAIN_RECHECK_INTERVAL_SECS", default_value = "3600", value_parser = parse_secs)]
    pub domain_recheck_interval: Duration,
    #[arg(long, env = "DOMAIN_FAILURES_BEFORE_UNVERIFIED", default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..1000))]
    pub domain_failures_before_unverified: u32,
}

/// An address that may be left empty. An alias, not `Option` written out: clap reads an
/// `Option` field as "may be absent" and would hand the empty `DNS_RESOLVER=` of `.env` files
/// to the parser as an address.
pub type OptionalAddr = Option<SocketAddr>;

/// `ip:port`, or empty for none.
fn parse_optional_socket_addr(s: &str) -> Result<Option<SocketAddr>, String> {
    match s.trim() {
        "" => Ok(None),
        addr => addr
            .parse()
            .map(Some)
            .map_err(|_| format!("{s:?} is not an ip:port address")),
    }
}

/// Where the client address of a visitor or a sign-in request comes from
/// ([`crate::client_ip::client_ip`]).
#[derive(Debug, Clone, Args)]
pub struct ClientAddressConfig {
    /// Reverse proxies whose `CLIENT_IP_HEADER` is believed; empty: the TCP peer, always.
    #[arg(long, env = "TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: crate::client_ip::TrustedProxies,
    #[arg(long, env = "CLIENT_IP_HEADER", default_value = "x-forwarded-for", value_parser = parse_header_name)]
    pub client_ip_header: String,
}

impl Default for ClientAddressConfig {
    fn default() -> Self {
        Self {
            trusted_proxies: crate::client_ip::TrustedProxies::default(),
            client_ip_header: "x-forwarded-for".into(),
        }
    }
}

/// A header name, lower-cased as `HeaderMap` looks it up.
fn parse_header_name(s: &str) -> Result<String, String> {
    axum::http::HeaderName::from_bytes(s.trim().as_bytes())
        .map(|name| name.as_str().to_owned())
        .map_err(|_| format!("{s:?} is not a header name"))
}

impl OriginConfig {
    /// Hosts a destination may not point at, as a loop back to us: the short domains and the
    /// hosts of `SHORT_URL_BASE` and `PUBLIC_URL`.
    pub fn own_hosts(&self) -> Vec<String> {
        let bases = [&self.short_url_base, &self.sign_in.public_url];
        self.short_domains
            .iter()
            .cloned()
            .chain(bases.iter().filter_map(|base| destination::host_of(base)))
            .collect()
    }
}

/// A domain of `SHORT_DOMAINS`, compared as [`destination::normalise_host`] does.
fn parse_domain(s: &str) -> Result<String, String> {
    let domain = destination::normalise_host(s);
    if domain.is_empty() || domain.contains(['/', ':', ' ']) {
        return Err(format!("{s:?} is not a domain name"));
    }
    Ok(domain)
}

/// Who may sign in to the dashboard with an emailed link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Registration {
    /// Only users that already exist (`smo1-origin admin create-user`).
    #[default]
    Closed,
    /// Existing users and emails on the invite list (`smo1-origin admin invite`).
    Invite,
    /// Anyone; the first sign-in creates the user.
    Open,
}

/// Dashboard sign-in: the public URL links point to, who may register, request limits, sessions
/// and mail.
#[derive(Debug, Clone, Args)]
pub struct SignInConfig {
    /// The origin's public base URL (scheme, host, optional port and path), no trailing slash.
    #[arg(long, env = "PUBLIC_URL", default_value = "http://127.0.0.1:8080", value_parser = parse_public_url)]
    pub public_url: String,
    #[arg(long, env = "REGISTRATION", value_enum, default_value_t = Registration::Closed)]
    pub registration: Registration,
    #[arg(long, env = "SIGN_IN_LIMIT_PER_EMAIL", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit_per_email: u32,
    #[arg(long, env = "SIGN_IN_LIMIT_PER_IP", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..))]
    pub limit_per_ip: u32,
    #[command(flatten)]
    pub sessions: SessionConfig,
    #[command(flatten)]
    pub mail: MailConfig,
}

impl Default for SignInConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".into(),
            registration: Registration::Closed,
            limit_per_email: 5,
            limit_per_ip: 20,
            sessions: SessionConfig::default(),
            mail: MailConfig::default(),
        }
    }
}

/// Dashboard sessions: an idle bound (refreshed on use) and an absolute bound (from sign-in).
#[derive(Debug, Clone, Args)]
pub struct SessionConfig {
    #[arg(long, env = "SESSION_IDLE_SECS", default_value = "604800", value_parser = parse_secs)]
    pub session_idle: Duration,
    #[arg(long, env = "SESSION_ABSOLUTE_SECS", default_value = "2592000", value_parser = parse_secs)]
    pub session_absolute: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            session_idle: Duration::from_secs(7 * 24 * 3600),
            session_absolute: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

/// Outgoing mail (sign-in links).
#[derive(Debug, Clone, Args)]
pub struct MailConfig {
    /// Empty: no SMTP; sign-in links come from `smo1-origin admin sign-in-link`. May hold a
    /// password, so it is a secret.
    #[arg(long, env = "SMTP_URL", hide_env_values = true, default_value = "", value_parser = parse_smtp_url)]
    pub smtp_url: Secret,
    #[arg(long, env = "MAIL_FROM", default_value = "SMO1 <no-reply@localhost>")]
    pub mail_from: lettre::message::Mailbox,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            smtp_url: Secret::new(""),
            mail_from: "SMO1 <no-reply@localhost>"
                .parse()
                .expect("the default sender is a valid mailbox"),
        }
    }
}

/// Accepts what `lettre` can connect to, so a typo fails at start rather than at the first mail.
fn parse_smtp_url(s: &str) -> Result<Secret, String> {
    if !s.is_empty() {
        lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(s)
            .map_err(|_| "must be smtp://[user:pass@]host[:port][?tls=required|opportunistic] or smtps://[user:pass@]host[:port]".to_owned())?;
    }
    Ok(Secret::new(s))
}

/// An absolute http(s) URL without query or fragment, kept without its trailing slash.
fn parse_public_url(s: &str) -> Result<String, String> {
    let trimmed = s.trim_end_matches('/');
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(rest)
            if !rest.is_empty()
                && !rest.starts_with('/')
                && !rest.contains(['?', '#', '@'])
                && !rest.chars().any(char::is_whitespace) =>
        {
            Ok(trimmed.to_owned())
        }
        _ => Err(format!(
            "{s:?} must be an http(s) URL like https://links.example.com, without query or fragment"
        )),
    }
}

/// Polar billing webhooks.
#[derive(Debug, Clone, Args)]
pub struct BillingConfig {
    /// The webhook secret exactly as Polar's dashboard shows it; empty: `/webhooks/polar` is off.
    #[arg(long, env = "POLAR_WEBHOOK_SECRET", hide_env_values = true, default_value = "", value_parser = parse_optional_secret)]
    pub polar_webhook_secret: Secret,
    /// `product_id=tier,…` (tiers: free, pro, business).
    #[arg(long, env = "POLAR_PRODUCT_TIERS", default_value = "")]
    pub polar_product_tiers: crate::billing::tiers::ProductTiers,
}

/// Protected links: the unlock cookie and the cost bound of argon2id work.
#[derive(Debug, Clone, Args)]
pub struct UnlockConfig {
    /// HMAC key of unlock cookies; must equal the worker's `UNLOCK_COOKIE_SECRET`.
    #[arg(long, env = "UNLOCK_COOKIE_SECRET", hide_env_values = true)]
    pub unlock_cookie_secret: Secret,
    #[arg(long, env = "UNLOCK_COOKIE_TTL_SECS", default_value = "3600", value_parser = parse_secs)]
    pub unlock_cookie_ttl: Duration,
    /// Bounds CPU and memory spent on guesses, so a flood of them cannot starve redirects.
    #[arg(long, env = "UNLOCK_VERIFY_CONCURRENCY", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub unlock_verify_concurrency: u32,
    /// The ceiling per link across all addresses: stops a guesser with many addresses.
    #[arg(long, env = "UNLOCK_MAX_FAILURES_PER_LINK", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..))]
    pub unlock_max_failures_per_link: u32,
}

/// Requests per account per sliding minute: all of a user's API keys share one budget, by their
/// subscription tier; their dashboard sessions share another.
#[derive(Debug, Clone, Args)]
pub struct RateLimitConfig {
    #[arg(long, env = "RATE_LIMIT_FREE_PER_MINUTE", default_value_t = 60, value_parser = clap::value_parser!(u32).range(1..))]
    pub free_per_minute: u32,
    #[arg(long, env = "RATE_LIMIT_PRO_PER_MINUTE", default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..))]
    pub pro_per_minute: u32,
    #[arg(long, env = "RATE_LIMIT_BUSINESS_PER_MINUTE", default_value_t = 3000, value_parser = clap::value_parser!(u32).range(1..))]
    pub business_per_minute: u32,
    /// A person in the dashboard, whatever the tier: one analytics page is a dozen calls, and a
    /// free-tier integration budget would lock a person out after a few clicks.
    #[arg(long, env = "RATE_LIMIT_SESSION_PER_MINUTE", default_value_t = 600, value_parser = clap::value_parser!(u32).range(1..))]
    pub session_per_minute: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            free_per_minute: 60,
            pro_per_minute: 600,
            business_per_minute: 3000,
            session_per_minute: 600,
        }
    }
}

/// Everything `smo1-origin bridge` needs.
#[derive(Debug, Clone, Args)]
pub struct BridgeConfig {
    #[arg(long, env = "REDIS_URL", default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
    #[command(flatten)]
    pub redis_timeouts: RedisTimeouts,
    #[arg(long, env = "BRIDGE_BIND", default_value = "127.0.0.1:8079")]
    pub bind: SocketAddr,
    #[arg(long, env = "UPSTASH_REDIS_REST_TOKEN", hide_env_values = true)]
    pub token: Secret,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let secret: Secret = "hunter2".parse().unwrap();
        assert_eq!(format!("{secret:?}"), "Secret([redacted])");
        assert!("".parse::<Secret>().is_err());
    }

    #[test]
    fn identifiers_are_plain() {
        assert_eq!(parse_identifier("smo1_test_1"), Ok("smo1_test_1".into()));
        assert!(parse_identifier("a;b").is_err());
        assert!(parse_identifier("").is_err());
    }

    #[test]
    fn public_urls_are_plain_http_bases() {
        assert_eq!(
            parse_public_url("https://links.example.com/"),
            Ok("https://links.example.com".into())
        );
        assert_eq!(
            parse_public_url("http://127.0.0.1:8080/smo1"),
            Ok("http://127.0.0.1:8080/smo1".into())
        );
        assert!(parse_public_url("ftp://example.com").is_err());
        assert!(parse_public_url("https://").is_err());
        assert!(parse_public_url("https://a.example?x=1").is_err());
        assert!(parse_public_url("https://user@a.example").is_err());
    }

    #[test]
    fn smtp_urls_are_checked_at_start_and_never_print() {
        let url = parse_smtp_url("smtps://me:hunter2@mail.example.com:465").unwrap();
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(parse_smtp_url("smtp://127.0.0.1:1025").is_ok());
        assert_eq!(parse_smtp_url(""), Ok(Secret::new("")));
        assert!(parse_smtp_url("http://mail.example.com").is_err());
    }

    #[test]
    fn short_domains_are_trimmed_and_the_origins_own_hosts_are_ours() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            config: OriginConfig,
        }
        let Cli { config } = clap::Parser::try_parse_from([
            "smo1-origin",
            "--short-domains=sho.rt, go.sho.rt ,GO2.sho.rt.",
            "--short-url-base=https://S.example.com",
            "--public-url=https://app.example.com:8443/smo1",
            "--internal-secret=i",
            "--visitor-salt-secret=v",
            "--unlock-cookie-secret=u",
        ])
        .unwrap();
        assert_eq!(
            config.own_hosts(),
            [
                "sho.rt",
                "go.sho.rt",
                "go2.sho.rt",
                "s.example.com",
                "app.example.com"
            ]
        );
        assert!(parse_domain(" ").is_err());
    }

    #[test]
    fn durations_must_be_positive_seconds() {
        assert_eq!(parse_secs("300"), Ok(Duration::from_secs(300)));
        assert!(parse_secs("0").is_err());
        assert!(parse_secs("5m").is_err());
    }
}
