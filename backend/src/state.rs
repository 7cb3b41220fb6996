//! Shared state of the origin's handlers, and the background tasks that run with it.

use crate::analytics::{rollup, sync};
use crate::cache::Redis;
use crate::clickhouse::ClickHouse;
use crate::clicks::{self, ClickSink, Pipeline};
use crate::config::OriginConfig;
use crate::links::protection::Verifier;
use crate::periodic::Periodic;
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
    pipeline: Arc<Pipeline>,
    total_clicks_sync: Arc<Periodic>,
    analytics_rollup: Arc<Periodic>,
}

impl AppState {
    /// Connects lazily and starts the background tasks: the click pipeline, the total_clicks
    /// sync and the analytics rollup (needs a tokio runtime).
    pub fn new(config: OriginConfig) -> anyhow::Result<Self> {
        let db = crate::db::pool(&config.data)?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()?;
        let clickhouse = ClickHouse::new(http, config.data.clickhouse.clone());
        let (clicks, pipeline) = clicks::start(db.clone(), clickhouse.clone(), &config.clicks);
        let total_clicks_sync = Arc::new(sync::start(
            db.clone(),
            clickhouse.clone(),
            config.total_clicks_sync_interval,
        ));
        let analytics_rollup = Arc::new(rollup::start(
            clickhouse.clone(),
            config.analytics_rollup_interval,
        ));
        Ok(Self {
            verifier: Verifier::new(config.unlock.unlock_verify_concurrency as usize),
            redis: Redis::new(&config.data.redis_url, config.data.redis_key_prefix.clone())?,
            db,
            clickhouse,
            clicks,
            config: Arc::new(config),
            metrics: crate::metrics::handle(),
            pipeline,
            total_clicks_sync,
            analytics_rollup,
        })
    }

    /// Flushes queued clicks (to ClickHouse, else the outbox) and stops background tasks.
    pub async fn shutdown(&self) {
        self.total_clicks_sync.shutdown().await;
        self.analytics_rollup.shutdown().await;
        self.pipeline.shutdown().await;
    }
}
