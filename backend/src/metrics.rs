//! Prometheus metrics: one process-wide recorder (rendered at `GET /metrics` by `http::health`).
//!
//! Code records with the `metrics` macros (`metrics::counter!("smo1_…_total").increment(1)`);
//! names are prefixed `smo1_` and counters end in `_total`.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use (every origin in one process shares it).
pub fn handle() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .expect("no other metrics recorder is installed")
        })
        .clone()
}
