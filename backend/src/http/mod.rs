//! The origin's web face: the router assembled from one module per resource, the middleware,
//! and serving it. Nothing outside this module (but the binary) imports it.
//!
//! | module | serves |
//! |---|---|
//! | [`links`], [`domains`], [`api_keys`], [`users`], [`achievements`], [`analytics`], [`session`] | `/v1/*` (OpenAPI-documented, [`openapi`]) |
//! | [`origin`], [`auth`], [`rate_limit`] | `/v1` CSRF Origin check, API key or session authentication, rate limits |
//! | [`internal`] | `/internal/*`, the edge's lookups, unlocks and undelivered clicks |
//! | [`billing`] | `/webhooks/polar` |
//! | [`health`] | `/healthz`, `/readyz` (details and `/metrics` with `METRICS_TOKEN`) |
//! | [`observe`] | request counts and latencies for `/metrics` |
//! | [`dashboard`] | `/dashboard/`, the browser dashboard's built files (`DASHBOARD_DIR`) |
//! | [`visit`] | visitors: `/` and `/{slug}`, the origin's own redirects |
//! | [`bridge`] | the local Upstash REST bridge (its own server) |

pub mod achievements;
pub mod analytics;
pub mod api_keys;
pub mod auth;
pub mod billing;
pub mod bridge;
pub mod dashboard;
pub mod domains;
pub mod extract;
pub mod health;
pub mod internal;
pub mod links;
pub mod observe;
pub mod openapi;
pub mod origin;
pub mod rate_limit;
pub mod session;
pub mod tags;
pub mod users;
pub mod visit;

use crate::error::{AppError, LoggedCause};
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue};
use axum::http::{StatusCode, Uri};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::response::Response;
use axum::Router;
use smo1_core::pages::Page;
use smo1_core::visit::Outcome;
use std::time::Duration;
use tokio::net::TcpListener;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

/// Largest request body the origin reads (JSON bodies are small; this caps abuse).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Largest body of `POST /internal/clicks` (edge only, behind the internal secret): a failed
/// ClickHouse insert hands the edge's whole batch over in one call (`EDGE_CLICK_BATCH_SIZE`,
/// 2000, clicks: under 1 KB each as browsers send them, up to about 10 KB with the longest
/// destination, User-Agent and referrer a click keeps).
pub const MAX_CLICK_BATCH_BYTES: usize = 32 * 1024 * 1024;

/// The whole origin as a router, apart from binding a port (tests serve it on port 0).
pub fn app(state: AppState) -> Router {
    let internal_only = || middleware::from_fn_with_state(state.clone(), require_internal_secret);
    let edge_clicks = internal::clicks_router()
        .route_layer(internal_only())
        .layer(RequestBodyLimitLayer::new(MAX_CLICK_BATCH_BYTES))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_CLICK_BATCH_BYTES));
    Router::new()
        .merge(health::router())
        .merge(internal::router().route_layer(internal_only()))
        .merge(billing::router())
        .merge(openapi::router(state.clone()))
        .merge(dashboard::router(&state.config.dashboard_dir))
        .merge(visit::router())
        .layer(RequestBodyLimitLayer::new(MAX_BODY_BYTES))
        .merge(edge_clicks)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        // One layer of four (outermost first), not four layers: each `Router::layer` wraps and
        // boxes every route again, and moving a request's future through the nesting showed in
        // the redirect path's profile. The trace layer goes first because it changes the body
        // type the ones inside it would otherwise see.
        .layer((
            TraceLayer::new_for_http().on_response(
                |response: &Response, latency: Duration, _span: &tracing::Span| {
                    if let Some(LoggedCause(cause)) = response.extensions().get::<LoggedCause>() {
                        tracing::error!(status = %response.status(), ?latency, cause, "request failed");
                    } else {
                        tracing::debug!(status = %response.status(), ?latency, "response");
                    }
                },
            ),
            middleware::from_fn(observe::record),
            middleware::map_response(shape_payload_too_large),
            TimeoutLayer::with_status_code(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                Duration::from_secs(10),
            ),
        ))
        .with_state(state)
}

/// Whether `path` belongs to a JSON API (errors in the JSON shape) rather than to visitors.
fn is_api(path: &str) -> bool {
    path == "/v1"
        || ["/v1/", "/internal/", "/webhooks/"]
            .iter()
            .any(|prefix| path.starts_with(prefix))
}

/// Unknown paths: the JSON error under the APIs, the product's 404 page for visitors.
async fn not_found(uri: Uri) -> Response {
    if is_api(uri.path()) {
        AppError::NotFound("endpoint").into_response()
    } else {
        visit::page(Page::NotFound)
    }
}

async fn method_not_allowed(uri: Uri) -> Response {
    if is_api(uri.path()) {
        AppError::MethodNotAllowed.into_response()
    } else {
        visit::respond(Outcome::MethodNotAllowed)
    }
}

/// `/internal/*` is for the edge only: `Authorization: Bearer <INTERNAL_SECRET>`.
async fn require_internal_secret(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    if auth::presents_secret(request.headers(), state.config.internal_secret.expose()) {
        Ok(next.run(request).await)
    } else {
        Err(AppError::Unauthorized)
    }
}

/// Puts a bare 413 (answered by the body-limit layer before any handler runs) into the error shape.
async fn shape_payload_too_large(response: Response) -> Response {
    let is_ours = response.headers().get(header::CONTENT_TYPE)
        == Some(&HeaderValue::from_static("application/json"));
    if response.status() == StatusCode::PAYLOAD_TOO_LARGE && !is_ours {
        AppError::PayloadTooLarge {
            max_bytes: MAX_BODY_BYTES,
        }
        .into_response()
    } else {
        response
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
