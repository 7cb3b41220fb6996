//! Shared state of the origin's handlers.

use crate::cache::Redis;
use crate::config::OriginConfig;
use sqlx::PgPool;
use std::sync::Arc;

#[derive(Clone)]
pub struct AppState {
    pub db: PgPool,
    pub redis: Redis,
    pub http: reqwest::Client,
    pub config: Arc<OriginConfig>,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
}

impl AppState {
    pub fn new(config: OriginConfig) -> anyhow::Result<Self> {
        Ok(Self {
            db: crate::db::pool(&config.data)?,
            redis: Redis::new(&config.data.redis_url, config.data.redis_key_prefix.clone())?,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()?,
            config: Arc::new(config),
            metrics: crate::metrics::handle(),
        })
    }
}
