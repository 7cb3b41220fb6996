//! The origin's own redirect path (`GET|HEAD /{slug}`), for deployments without an edge and as the
//! benchmark baseline. Same decision as the worker: `smo1_core::resolve`.

use crate::links::service;
use crate::state::AppState;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use smo1_core::pages::{self, Page};
use smo1_core::resolve::{resolve, GoneReason, Resolution, REDIRECT_CACHE_CONTROL};
use smo1_core::slug;

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

#[tracing::instrument(skip(state, query))]
async fn redirect(
    State(state): State<AppState>,
    Path(slug): Path<String>,
    RawQuery(query): RawQuery,
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
    match resolve(
        &entry.link,
        chrono::Utc::now().timestamp(),
        query.as_deref(),
    ) {
        Resolution::Redirect { status, location } => redirect_response(status, &location),
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
