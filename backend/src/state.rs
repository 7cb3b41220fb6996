//! Shared state of the origin: handles to the databases, the click queue, dashboard sign-in and
//! sessions, the configuration and the metrics recorder. Building it connects lazily and starts nothing; the background work
//! that serves with it is started by [`crate::app::Background`].

use crate::cache::Redis;
use crate::clickhouse::ClickHouse;
use crate::clicks::ClickSink;
use crate::config::OriginConfig;
use crate::domains::dns::Dns;
use crate::links::local_cache::LocalCache;
use crate::links::verifier::Verifier;
use crate::mail::Mailer;
use crate::read_replica::ReadReplica;
use crate::sessions::Sessions;
use crate::sign_in::SignIn;
use smo1_core::domain::DomainEntry;
use sqlx::PgPool;
use std::sync::Arc;

/// The origin's shared state: one reference count to clone (axum clones it for every request).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl From<Shared> for AppState {
    fn from(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

#[derive(Clone)]
pub struct Shared {
    pub db: PgPool,
    /// The read replica for link lookups (`DATABASE_READ_URL`), if any.
    pub read_replica: Option<ReadReplica>,
    pub redis: Redis,
    /// Link entries for the origin's own redirects, held briefly in memory.
    pub local_links: Arc<LocalCache>,
    /// Custom domains' entries for the origin's own redirects, held like `local_links`.
    pub local_domains: Arc<LocalCache<DomainEntry>>,
    /// The TXT lookups of domain verification.
    pub dns: Dns,
    pub clickhouse: ClickHouse,
    pub clicks: ClickSink,
    pub config: Arc<OriginConfig>,
    /// The hosts we serve ([`OriginConfig::own_hosts`]), worked out once: a visitor's `Host` is
    /// compared with them on every redirect.
    pub own_hosts: Arc<[String]>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Bounds concurrent argon2id work (protected links).
    pub verifier: Verifier,
    /// Dashboard sessions (`session:{id}` in Redis).
    pub sessions: Sessions,
    /// Emailed sign-in links: limits, tokens, mail.
    pub sign_in: SignIn,
}

impl AppState {
    /// Handles to everything `config` names; connects on first use, spawns no task.
    pub fn new(config: OriginConfig) -> anyhow::Result<Self> {
        let db = crate::db::pool(&config.data)?;
        let redis = Redis::new(
            &config.data.redis_url,
            config.data.redis_key_prefix.clone(),
            config.data.redis_timeouts,
        )?;
        let sign_in = SignIn {
            db: db.clone(),
            redis: redis.clone(),
            mailer: Mailer::from_config(&config.sign_in.mail)?,
            config: Arc::new(config.sign_in.clone()),
        };
        Ok(Self::from(Shared {
            sessions: Sessions::new(redis.clone(), &config.sign_in.sessions),
            sign_in,
            verifier: Verifier::new(config.unlock.unlock_verify_concurrency as usize),
            redis,
            local_links: Arc::new(LocalCache::new(config.origin_cache_staleness)),
            local_domains: Arc::new(LocalCache::new(config.origin_cache_staleness)),
            dns: Dns::new(config.domains.dns_resolver, config.domains.dns_timeout)?,
            clickhouse: ClickHouse::new(config.data.clickhouse.clone())
                .with_request_timeout(std::time::Duration::from_secs(10)),
            clicks: ClickSink::new(db.clone(), &config.clicks),
            read_replica: ReadReplica::from_config(&config.data.read_replica)?,
            db,
            own_hosts: config.own_hosts().into(),
            config: Arc::new(config),
            metrics: crate::metrics::handle(),
        }))
    }
}
