//! Shared state of the origin: handles to the databases, the click queue, the configuration and
//! the metrics recorder. Building it connects lazily and starts nothing; the background work
//! that serves with it is started by [`crate::app::Background`].

use crate::cache::Redis;
use crate::clickhouse::ClickHouse;
use crate::clicks::ClickSink;
use crate::config::OriginConfig;
use crate::links::verifier::Verifier;
use sqlx::PgPool;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub redis: Redis,
    pub clickhouse: ClickHouse,
    pub clicks: ClickSink,
    pub config: Arc<OriginConfig>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// Bounds concurrent argon2id work (protected links).
    pub verifier: Verifier,
}

impl AppState {
    /// Handles to everything `config` names; connects on first use, spawns no task.
    pub fn new(config: OriginConfig) -> anyhow::Result<Self> {
        let db = crate::db::pool(&config.data)?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()?;
        Ok(Self {
            verifier: Verifier::new(config.unlock.unlock_verify_concurrency as usize),
            redis: Redis::new(&config.data.redis_url, config.data.redis_key_prefix.clone())?,
            clickhouse: ClickHouse::new(http, config.data.clickhouse.clone()),
            clicks: ClickSink::new(db.clone(), config.clicks.click_queue_capacity),
            db,
            config: Arc::new(config),
            metrics: crate::metrics::handle(),
        })
    }
}
