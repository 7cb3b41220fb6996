//! The background work of a serving origin: the click pipeline (batching writer and outbox
//! replay), the `links.total_clicks` sync, the analytics rollup, the pruning of expired sign-in
//! tokens, the retry of failed link cache invalidations, the subscription that keeps the
//! in-memory link cache in step with other origins, and the re-check of custom domains. Only `smo1-origin serve`
//! starts it; other subcommands build an [`AppState`] and start nothing.

use crate::analytics::{rollup, sync};
use crate::clicks::{self, Pipeline};
use crate::domains;
use crate::links::{local_cache, service};
use crate::periodic::Periodic;
use crate::sign_in;
use crate::state::AppState;

/// Logged once as the background work starts (tests look for it).
pub const STARTED: &str = "background tasks started";

/// The running tasks; [`Background::shutdown`] stops them and flushes queued clicks.
pub struct Background {
    pipeline: Pipeline,
    total_clicks_sync: Periodic,
    analytics_rollup: Periodic,
    sign_in_pruning: Periodic,
    invalidation_retry: Periodic,
    invalidation_listener: local_cache::Listener,
    domain_recheck: Periodic,
}

impl Background {
    /// Starts every task over `state`'s handles (needs a tokio runtime).
    ///
    /// # Panics
    /// When started twice over the same state (its click queue has one reader).
    pub fn start(state: &AppState) -> Self {
        let config = &state.config;
        let background = Self {
            pipeline: clicks::start(&state.clicks, state.clickhouse.clone(), &config.clicks),
            total_clicks_sync: sync::start(
                state.db.clone(),
                state.clickhouse.clone(),
                config.total_clicks_sync_interval,
            ),
            analytics_rollup: rollup::start(
                state.clickhouse.clone(),
                config.analytics_rollup_interval,
            ),
            sign_in_pruning: sign_in::start_pruning(state.db.clone(), sign_in::PRUNE_INTERVAL),
            invalidation_retry: service::start_invalidation_retry(state),
            invalidation_listener: local_cache::start_listener(state),
            domain_recheck: domains::service::start_recheck(state),
        };
        tracing::info!("{STARTED}");
        background
    }

    /// Flushes queued clicks (to ClickHouse, else the outbox) and stops every task, all at once:
    /// a pass of another task waiting on a dead ClickHouse must not hold the clicks back.
    pub async fn shutdown(self) {
        tokio::join!(
            self.pipeline.shutdown(),
            self.total_clicks_sync.shutdown(),
            self.analytics_rollup.shutdown(),
            self.sign_in_pruning.shutdown(),
            self.invalidation_retry.shutdown(),
            self.invalidation_listener.shutdown(),
            self.domain_recheck.shutdown(),
        );
    }
}
