//! PostgreSQL pool and the embedded migrations (`migrations/*.sql`).

use crate::config::DataConfig;
use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use std::time::Duration;

pub static MIGRATOR: Migrator = sqlx::migrate!("../migrations");

/// A lazily connecting pool: the origin starts (and serves cached redirects) while PostgreSQL is
/// down, and `/readyz` reports it.
pub fn pool(config: &DataConfig) -> anyhow::Result<PgPool> {
    Ok(PgPoolOptions::new()
        .max_connections(config.database_max_connections)
        .acquire_timeout(Duration::from_secs(3))
        .connect_lazy(&config.database_url)?)
}

pub async fn migrate(pool: &PgPool) -> anyhow::Result<()> {
    MIGRATOR.run(pool).await?;
    Ok(())
}
