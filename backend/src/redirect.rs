//! The origin's own redirect path (`GET|HEAD /{slug}`), for deployments without an edge and as the
//! benchmark baseline. Same decision as the worker: `smo1_core::resolve`.

use crate::links::service;
use crate::state::AppState;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use smo1_core::click::{self, ClickEvent, VisitorRequest};
use smo1_core::link::CachedLink;
use smo1_core::pages::{self, Page};
use smo1_core::resolve::{resolve, GoneReason, Resolution, REDIRECT_CACHE_CONTROL};
use smo1_core::slug;
use std::net::SocketAddr;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { page(Page::Home) }))
        .route("/{slug}", get(redirect))
}

pub fn page(page: Page) -> Response {
    let status = StatusCode::from_u16(page.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [
            (header::CONTENT_TYPE, pages::CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        page.html(),
    )
        .into_response()
}

#[tracing::instrument(skip_all, fields(slug))]
async fn redirect(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    RawQuery(query): RawQuery,
    method: Method,
    headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> Response {
    if !slug::is_resolvable(&slug) {
        return page(Page::NotFound);
    }
    let entry = match service::resolve_cached(&state, &slug).await {
        Ok(entry) => entry,
        Err(e) => {
            tracing::error!(error = %e, "link lookup failed");
            return page(Page::Unavailable);
        }
    };
    let (qr, query) = click::take_qr_marker(query.as_deref());
    let now = chrono::Utc::now().timestamp();
    match resolve(&entry.link, now, query.as_deref()) {
        Resolution::Redirect { status, location } => {
            if let CachedLink::Found(record) = &entry.link {
                let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
                let peer_ip = peer.ip().to_string();
                let request = VisitorRequest {
                    method: method.as_str(),
                    ip: header(click::HEADER_CLIENT_IP).unwrap_or(&peer_ip),
                    user_agent: header(header::USER_AGENT.as_str()).unwrap_or_default(),
                    referrer: header(header::REFERER.as_str()),
                    country: header(click::HEADER_COUNTRY),
                    region: header(click::HEADER_REGION),
                    city: header(click::HEADER_CITY),
                    purpose: click::PURPOSE_HEADERS.iter().find_map(|h| header(h)),
                    qr,
                };
                // Queued for the batching writer: never waits on ClickHouse or PostgreSQL.
                state.clicks.enqueue(ClickEvent::build(
                    uuid::Uuid::new_v4().to_string(),
                    u32::try_from(now).unwrap_or(u32::MAX),
                    record,
                    &location,
                    &request,
                    state.config.clicks.visitor_salt_secret.expose(),
                ));
            }
            redirect_response(status, &location)
        }
        Resolution::NotFound => page(Page::NotFound),
        Resolution::Gone(GoneReason::Expired) => page(Page::Expired),
        Resolution::Gone(GoneReason::Disabled) => page(Page::Disabled),
        Resolution::Protected(_) => page(Page::Protected),
    }
}

fn redirect_response(status: u16, location: &str) -> Response {
    let Ok(location) = HeaderValue::from_str(location) else {
        tracing::error!(location, "destination is not a valid header value");
        return page(Page::Unavailable);
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FOUND);
    (
        status,
        [
            (header::LOCATION, location),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(REDIRECT_CACHE_CONTROL),
            ),
        ],
    )
        .into_response()
}
