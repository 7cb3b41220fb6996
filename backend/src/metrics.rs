//! Prometheus metrics: one process-wide recorder (rendered at `GET /metrics` by `http::health`),
//! and every metric the origin exports, named once here.
//!
//! Code records with the `metrics` macros and these names
//! (`metrics::counter!(crate::metrics::CLICKS_LOST).increment(1)`); names are prefixed `smo1_` and
//! counters end in `_total`. At start every metric is described and set to zero (each known label
//! value too), so `/metrics` lists all of them from the first scrape and an alert on a rate sees
//! a zero rather than a missing series. The alert rules and the Grafana dashboard in `deploy/`
//! use only names exported here (`backend/tests/monitoring.rs`).

use crate::users::SubscriptionTier;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Responses, by `surface` (api, visit, internal, webhooks, dashboard, health) and `status` (the code).
pub const HTTP_REQUESTS: &str = "smo1_http_requests_total";
/// Seconds from request to response head, by `surface`.
pub const HTTP_REQUEST_DURATION: &str = "smo1_http_request_duration_seconds";
/// PostgreSQL lookups of a slug on a cache miss, by `outcome` (found, missing).
pub const LINK_LOOKUPS: &str = "smo1_link_lookups_total";
/// Link cache reads that failed (Redis down): answered from PostgreSQL.
pub const LINK_CACHE_READ_FAILURES: &str = "smo1_link_cache_read_failures_total";
/// Link cache refills that failed.
pub const LINK_CACHE_WRITE_FAILURES: &str = "smo1_link_cache_write_failures_total";
/// Refills refused because a newer version was already seen.
pub const LINK_CACHE_STALE_REFILLS: &str = "smo1_link_cache_stale_refills_total";
/// Queued invalidations applied by the retry pass.
pub const LINK_CACHE_INVALIDATIONS_RETRIED: &str = "smo1_link_cache_invalidations_retried_total";
/// Retry passes of queued invalidations that failed.
pub const LINK_CACHE_INVALIDATION_RETRY_FAILURES: &str =
    "smo1_link_cache_invalidation_retry_failures_total";
/// DNS checks of custom domains, by `outcome` (verified, failed, inconclusive).
pub const DOMAIN_CHECKS: &str = "smo1_domain_checks_total";
/// Domains checked by the re-check pass.
pub const DOMAIN_RECHECKS: &str = "smo1_domain_rechecks_total";
/// Re-check passes that failed.
pub const DOMAIN_RECHECK_FAILURES: &str = "smo1_domain_recheck_failures_total";
/// Links created.
pub const LINKS_CREATED: &str = "smo1_links_created_total";
/// Times a Redis connection failure opened the circuit breaker.
pub const REDIS_BREAKER_OPENED: &str = "smo1_redis_breaker_opened_total";
/// Redis calls failed at once while the breaker was open.
pub const REDIS_BREAKER_REJECTIONS: &str = "smo1_redis_breaker_rejections_total";
/// Link lookups offered to the read replica, by `outcome`: `replica` (it answered), `behind` (it
/// had not replayed the lookup's floor yet), `failed` (error or timeout), `skipped` (its breaker
/// was open); all but `replica` read the primary.
pub const READ_REPLICA_READS: &str = "smo1_read_replica_reads_total";
/// Times a read replica failure opened its circuit breaker.
pub const READ_REPLICA_BREAKER_OPENED: &str = "smo1_read_replica_breaker_opened_total";
/// `/v1` requests refused with 429, by `tier`.
pub const RATE_LIMITED: &str = "smo1_rate_limited_total";
/// `/v1` requests let through unlimited because Redis was unreachable.
pub const RATE_LIMIT_FAIL_OPEN: &str = "smo1_rate_limit_fail_open_total";
/// API keys created.
pub const API_KEYS_CREATED: &str = "smo1_api_keys_created_total";
/// PIN/password checks of protected links, by `outcome` (unlocked, wrong, locked).
pub const UNLOCK_ATTEMPTS: &str = "smo1_unlock_attempts_total";
/// Unlock checks refused because no argon2 verifier was free within 5 s.
pub const UNLOCK_VERIFIER_BUSY: &str = "smo1_unlock_verifier_busy_total";
/// Clicks of the origin's own redirects put on the in-memory queue.
pub const CLICKS_ENQUEUED: &str = "smo1_clicks_enqueued_total";
/// Clicks past the full queue, sent to the overflow lane.
pub const CLICKS_QUEUE_OVERFLOW: &str = "smo1_clicks_queue_overflow_total";
/// Edge clicks accepted into the outbox by `/internal/clicks`.
pub const CLICKS_RECEIVED: &str = "smo1_clicks_received_total";
/// Edge click events refused as invalid by `/internal/clicks`.
pub const CLICKS_REJECTED: &str = "smo1_clicks_rejected_total";
/// Clicks inserted into ClickHouse by the writer.
pub const CLICKS_SENT: &str = "smo1_clicks_sent_total";
/// Clicks of ClickHouse inserts that failed (they go to the outbox).
pub const CLICKS_FAILED: &str = "smo1_clicks_failed_total";
/// Clicks stored in the PostgreSQL outbox.
pub const CLICKS_SPOOLED: &str = "smo1_clicks_spooled_total";
/// Outbox writes retried after PostgreSQL refused them.
pub const CLICK_OUTBOX_STORE_RETRIES: &str = "smo1_click_outbox_store_retries_total";
/// Clicks stored neither in ClickHouse nor in the outbox.
pub const CLICKS_LOST: &str = "smo1_clicks_lost_total";
/// Outbox clicks replayed into ClickHouse.
pub const CLICKS_REPLAYED: &str = "smo1_clicks_replayed_total";
/// Outbox replay passes that failed.
pub const CLICKS_REPLAY_FAILURES: &str = "smo1_clicks_replay_failures_total";
/// Unreadable outbox rows moved to `click_outbox_quarantine`.
pub const CLICKS_QUARANTINED: &str = "smo1_clicks_quarantined_total";
/// Clicks waiting in the outbox.
pub const CLICK_OUTBOX_DEPTH: &str = "smo1_click_outbox_depth";
/// Seconds the oldest click in the outbox has waited (0 when empty): how far analytics lag.
pub const CLICK_OUTBOX_OLDEST_AGE: &str = "smo1_click_outbox_oldest_age_seconds";
/// Rows in `click_outbox_quarantine`.
pub const CLICK_OUTBOX_QUARANTINED: &str = "smo1_click_outbox_quarantined";
/// `links.total_clicks` values updated from ClickHouse.
pub const TOTAL_CLICKS_SYNCED: &str = "smo1_total_clicks_synced_total";
/// Total-clicks sync passes that failed.
pub const TOTAL_CLICKS_SYNC_FAILURES: &str = "smo1_total_clicks_sync_failures_total";
/// UTC days rolled up.
pub const ANALYTICS_DAYS_ROLLED: &str = "smo1_analytics_days_rolled_total";
/// Rollup passes that failed.
pub const ANALYTICS_ROLLUP_FAILURES: &str = "smo1_analytics_rollup_failures_total";
/// Sign-in link requests refused by the per-email or per-IP limit.
pub const SIGN_IN_RATE_LIMITED: &str = "smo1_sign_in_rate_limited_total";
/// Sign-in mails the SMTP server did not take.
pub const SIGN_IN_MAIL_FAILED: &str = "smo1_sign_in_mail_failed_total";
/// Expired sign-in tokens deleted.
pub const SIGN_IN_TOKENS_PRUNED: &str = "smo1_sign_in_tokens_pruned_total";
/// Sign-in token cleanup passes that failed.
pub const SIGN_IN_TOKEN_PRUNE_FAILURES: &str = "smo1_sign_in_token_prune_failures_total";
/// Billing webhooks applied.
pub const WEBHOOKS_PROCESSED: &str = "smo1_webhooks_processed_total";
/// Billing webhooks already seen (answered, not applied again).
pub const WEBHOOKS_DUPLICATE: &str = "smo1_webhooks_duplicate_total";
/// Billing webhooks refused (signature, size, age).
pub const WEBHOOKS_REJECTED: &str = "smo1_webhooks_rejected_total";
/// Billing webhooks that failed to apply.
pub const WEBHOOKS_FAILED: &str = "smo1_webhooks_failed_total";
/// Achievements unlocked.
pub const ACHIEVEMENTS_UNLOCKED: &str = "smo1_achievements_unlocked_total";

/// What a metric counts, for its description.
#[derive(Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Which label values a metric is registered with at start.
#[derive(Clone, Copy)]
enum Labels {
    /// Unlabelled: one series, at zero.
    None,
    /// One label whose every value is known: a series per value, at zero.
    Known(&'static str, &'static [&'static str]),
    /// Labels that depend on traffic (surface and status): series appear with the first request.
    Dynamic,
}

struct Metric {
    name: &'static str,
    kind: Kind,
    help: &'static str,
    labels: Labels,
}

/// Subscription tiers as the `tier` label writes them.
const TIERS: &[&str] = &[
    SubscriptionTier::Free.as_str(),
    SubscriptionTier::Pro.as_str(),
    SubscriptionTier::Business.as_str(),
];

const CATALOGUE: &[Metric] = &[
    Metric { name: HTTP_REQUESTS, kind: Kind::Counter, help: "responses, by `surface` (api, visit, internal, webhooks, dashboard, health) and `status` (the code)", labels: Labels::Dynamic },
    Metric { name: HTTP_REQUEST_DURATION, kind: Kind::Histogram, help: "seconds from request to response head, by `surface`", labels: Labels::Dynamic },
    Metric { name: LINK_LOOKUPS, kind: Kind::Counter, help: "PostgreSQL lookups of a slug on a cache miss, by `outcome` (found, missing)", labels: Labels::Known("outcome", &["found", "missing"]) },
    Metric { name: LINK_CACHE_READ_FAILURES, kind: Kind::Counter, help: "link cache reads that failed (Redis down): answered from PostgreSQL", labels: Labels::None },
    Metric { name: LINK_CACHE_WRITE_FAILURES, kind: Kind::Counter, help: "link cache refills that failed", labels: Labels::None },
    Metric { name: LINK_CACHE_STALE_REFILLS, kind: Kind::Counter, help: "refills refused because a newer version was already seen", labels: Labels::None },
    Metric { name: LINK_CACHE_INVALIDATIONS_RETRIED, kind: Kind::Counter, help: "queued invalidations applied by the retry pass", labels: Labels::None },
    Metric { name: LINK_CACHE_INVALIDATION_RETRY_FAILURES, kind: Kind::Counter, help: "retry passes of queued invalidations that failed", labels: Labels::None },
    Metric { name: DOMAIN_CHECKS, kind: Kind::Counter, help: "DNS checks of custom domains, by `outcome` (verified, failed, inconclusive)", labels: Labels::Known("outcome", &["verified", "failed", "inconclusive"]) },
    Metric { name: DOMAIN_RECHECKS, kind: Kind::Counter, help: "domains checked by the re-check pass", labels: Labels::None },
    Metric { name: DOMAIN_RECHECK_FAILURES, kind: Kind::Counter, help: "re-check passes that failed", labels: Labels::None },
    Metric { name: LINKS_CREATED, kind: Kind::Counter, help: "links created", labels: Labels::None },
    Metric { name: REDIS_BREAKER_OPENED, kind: Kind::Counter, help: "times a Redis connection failure opened the circuit breaker", labels: Labels::None },
    Metric { name: REDIS_BREAKER_REJECTIONS, kind: Kind::Counter, help: "Redis calls failed at once while the breaker was open", labels: Labels::None },
    Metric { name: READ_REPLICA_READS, kind: Kind::Counter, help: "link lookups offered to the read replica, by `outcome`: replica (it answered), behind (not caught up with the lookup's floor), failed (error or timeout), skipped (breaker open); all but replica read the primary", labels: Labels::Known("outcome", crate::read_replica::OUTCOMES) },
    Metric { name: READ_REPLICA_BREAKER_OPENED, kind: Kind::Counter, help: "times a read replica failure opened its circuit breaker", labels: Labels::None },
    Metric { name: RATE_LIMITED, kind: Kind::Counter, help: "`/v1` requests refused with 429, by `tier`", labels: Labels::Known("tier", TIERS) },
    Metric { name: RATE_LIMIT_FAIL_OPEN, kind: Kind::Counter, help: "`/v1` requests let through unlimited because Redis was unreachable", labels: Labels::None },
    Metric { name: API_KEYS_CREATED, kind: Kind::Counter, help: "API keys created", labels: Labels::None },
    Metric { name: UNLOCK_ATTEMPTS, kind: Kind::Counter, help: "PIN/password checks of protected links, by `outcome` (unlocked, wrong, locked)", labels: Labels::Known("outcome", &["unlocked", "wrong", "locked"]) },
    Metric { name: UNLOCK_VERIFIER_BUSY, kind: Kind::Counter, help: "unlock checks refused because no argon2 verifier was free within 5 s", labels: Labels::None },
    Metric { name: CLICKS_ENQUEUED, kind: Kind::Counter, help: "clicks of the origin's own redirects put on the in-memory queue", labels: Labels::None },
    Metric { name: CLICKS_QUEUE_OVERFLOW, kind: Kind::Counter, help: "clicks past the full queue, sent to the overflow lane", labels: Labels::None },
    Metric { name: CLICKS_RECEIVED, kind: Kind::Counter, help: "edge clicks accepted into the outbox by `/internal/clicks`", labels: Labels::None },
    Metric { name: CLICKS_REJECTED, kind: Kind::Counter, help: "edge click events refused as invalid by `/internal/clicks`", labels: Labels::None },
    Metric { name: CLICKS_SENT, kind: Kind::Counter, help: "clicks inserted into ClickHouse by the writer", labels: Labels::None },
    Metric { name: CLICKS_FAILED, kind: Kind::Counter, help: "clicks of ClickHouse inserts that failed (they go to the outbox)", labels: Labels::None },
    Metric { name: CLICKS_SPOOLED, kind: Kind::Counter, help: "clicks stored in the PostgreSQL outbox", labels: Labels::None },
    Metric { name: CLICK_OUTBOX_STORE_RETRIES, kind: Kind::Counter, help: "outbox writes retried after PostgreSQL refused them", labels: Labels::None },
    Metric { name: CLICKS_LOST, kind: Kind::Counter, help: "clicks stored neither in ClickHouse nor in the outbox", labels: Labels::None },
    Metric { name: CLICKS_REPLAYED, kind: Kind::Counter, help: "outbox clicks replayed into ClickHouse", labels: Labels::None },
    Metric { name: CLICKS_REPLAY_FAILURES, kind: Kind::Counter, help: "outbox replay passes that failed", labels: Labels::None },
    Metric { name: CLICKS_QUARANTINED, kind: Kind::Counter, help: "unreadable outbox rows moved to `click_outbox_quarantine`", labels: Labels::None },
    Metric { name: CLICK_OUTBOX_DEPTH, kind: Kind::Gauge, help: "clicks waiting in the outbox", labels: Labels::None },
    Metric { name: CLICK_OUTBOX_OLDEST_AGE, kind: Kind::Gauge, help: "seconds the oldest click in the outbox has waited (0 when empty): how far analytics lag", labels: Labels::None },
    Metric { name: CLICK_OUTBOX_QUARANTINED, kind: Kind::Gauge, help: "rows in `click_outbox_quarantine`", labels: Labels::None },
    Metric { name: TOTAL_CLICKS_SYNCED, kind: Kind::Counter, help: "`links.total_clicks` values updated from ClickHouse", labels: Labels::None },
    Metric { name: TOTAL_CLICKS_SYNC_FAILURES, kind: Kind::Counter, help: "total-clicks sync passes that failed", labels: Labels::None },
    Metric { name: ANALYTICS_DAYS_ROLLED, kind: Kind::Counter, help: "UTC days rolled up", labels: Labels::None },
    Metric { name: ANALYTICS_ROLLUP_FAILURES, kind: Kind::Counter, help: "rollup passes that failed", labels: Labels::None },
    Metric { name: SIGN_IN_RATE_LIMITED, kind: Kind::Counter, help: "sign-in link requests refused by the per-email or per-IP limit", labels: Labels::None },
    Metric { name: SIGN_IN_MAIL_FAILED, kind: Kind::Counter, help: "sign-in mails the SMTP server did not take", labels: Labels::None },
    Metric { name: SIGN_IN_TOKENS_PRUNED, kind: Kind::Counter, help: "expired sign-in tokens deleted", labels: Labels::None },
    Metric { name: SIGN_IN_TOKEN_PRUNE_FAILURES, kind: Kind::Counter, help: "sign-in token cleanup passes that failed", labels: Labels::None },
    Metric { name: WEBHOOKS_PROCESSED, kind: Kind::Counter, help: "billing webhooks applied", labels: Labels::None },
    Metric { name: WEBHOOKS_DUPLICATE, kind: Kind::Counter, help: "billing webhooks already seen (answered, not applied again)", labels: Labels::None },
    Metric { name: WEBHOOKS_REJECTED, kind: Kind::Counter, help: "billing webhooks refused (signature, size, age)", labels: Labels::None },
    Metric { name: WEBHOOKS_FAILED, kind: Kind::Counter, help: "billing webhooks that failed to apply", labels: Labels::None },
    Metric { name: ACHIEVEMENTS_UNLOCKED, kind: Kind::Counter, help: "achievements unlocked", labels: Labels::None },
];

/// Seconds: redirects answer in about a millisecond; API calls and outages take longer.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use (every origin in one process shares it), with
/// every metric of the catalogue registered.
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(HTTP_REQUEST_DURATION.to_owned()),
                    LATENCY_BUCKETS,
                )
                .expect("latency buckets are not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed");
            register();
            handle
        })
        .clone()
}

fn register() {
    for metric in CATALOGUE {
        match metric.kind {
            Kind::Counter => metrics::describe_counter!(metric.name, metric.help),
            Kind::Gauge => metrics::describe_gauge!(metric.name, metric.help),
            Kind::Histogram => metrics::describe_histogram!(metric.name, metric.help),
        }
        let series: Vec<Vec<(&'static str, &'static str)>> = match metric.labels {
            Labels::None => vec![Vec::new()],
            Labels::Known(label, values) => values.iter().map(|v| vec![(label, *v)]).collect(),
            Labels::Dynamic => Vec::new(),
        };
        for labels in series {
            let labels: Vec<metrics::Label> = labels
                .into_iter()
                .map(|(k, v)| metrics::Label::new(k, v))
                .collect();
            match metric.kind {
                Kind::Counter => metrics::counter!(metric.name, labels).absolute(0),
                Kind::Gauge => metrics::gauge!(metric.name, labels).set(0.0),
                Kind::Histogram => {}
            }
        }
    }
}
