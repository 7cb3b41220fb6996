//! Request metrics for `/metrics`: every response counted by surface and status, and its latency
//! by surface, so an operator can alert on the 5xx rate and graph redirect latency per replica.

use crate::metrics::{HTTP_REQUESTS, HTTP_REQUEST_DURATION};
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// Which part of the origin a path belongs to; a handful of values, so label cardinality stays
/// fixed whatever visitors request.
fn surface(path: &str) -> &'static str {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    match first {
        "v1" | "openapi.json" => "api",
        "internal" => "internal",
        "webhooks" => "webhooks",
        "dashboard" => "dashboard",
        "healthz" | "readyz" | "metrics" => "health",
        _ => "visit",
    }
}

pub async fn record(request: Request, next: Next) -> Response {
    let surface = surface(request.uri().path());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics::histogram!(HTTP_REQUEST_DURATION, "surface" => surface)
        .record(started.elapsed().as_secs_f64());
    metrics::counter!(HTTP_REQUESTS, "surface" => surface, "status" => response.status().as_str().to_owned())
        .increment(1);
    response
}

#[cfg(test)]
mod tests {
    use super::surface;

    #[test]
    fn paths_fall_into_a_fixed_set_of_surfaces() {
        for (path, expected) in [
            ("/v1/links", "api"),
            ("/v1", "api"),
            ("/openapi.json", "api"),
            ("/internal/links/abc", "internal"),
            ("/webhooks/polar", "webhooks"),
            ("/dashboard/", "dashboard"),
            ("/healthz", "health"),
            ("/metrics", "health"),
            ("/", "visit"),
            ("/abc", "visit"),
            ("/v1x", "visit"),
            ("/metrics2", "visit"),
        ] {
            assert_eq!(surface(path), expected, "{path}");
        }
    }
}
