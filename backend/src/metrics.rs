//! Prometheus metrics: one process-wide recorder (rendered at `GET /metrics` by `http::health`).
//!
//! Code records with the `metrics` macros (`metrics::counter!("smo1_…_total").increment(1)`);
//! names are prefixed `smo1_` and counters end in `_total`.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

/// Counter of responses, labelled `surface` (api, visit, internal, …) and `status` (`302`).
pub const HTTP_REQUESTS: &str = "smo1_http_requests_total";
/// Histogram of seconds from request to response head, labelled `surface`.
pub const HTTP_REQUEST_DURATION: &str = "smo1_http_request_duration_seconds";

/// Seconds: redirects answer in about a millisecond; API calls and outages take longer.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use (every origin in one process shares it).
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full(HTTP_REQUEST_DURATION.to_owned()),
                    LATENCY_BUCKETS,
                )
                .expect("latency buckets are not empty")
                .install_recorder()
                .expect("no other metrics recorder is installed")
        })
        .clone()
}
