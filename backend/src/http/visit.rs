//! The origin's own redirect path (`GET|HEAD /{slug}`), for deployments without an edge and as the
//! benchmark baseline. Same decision as the worker: `smo1_core::resolve`; protected links ask for
//! their PIN or password with the same form and unlock cookie (`smo1_core::unlock`).

use crate::links::{protection, service};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use smo1_core::click::{self, ClickEvent, VisitorRequest};
use smo1_core::link::{CachedLink, LinkCacheRecord, Protection};
use smo1_core::pages::{self, FormError, Page};
use smo1_core::resolve::{resolve, GoneReason, Resolution, REDIRECT_CACHE_CONTROL};
use smo1_core::slug;
use smo1_core::unlock::{self, UnlockOutcome};
use std::net::SocketAddr;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { page(Page::Home) }))
        .route("/{slug}", get(redirect).post(redirect))
}

fn html(status: u16, body: String) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        [
            (header::CONTENT_TYPE, pages::CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
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
    RawQuery(raw_query): RawQuery,
    method: Method,
    headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Bytes,
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
    let (qr, query) = click::take_qr_marker(raw_query.as_deref());
    let now = chrono::Utc::now().timestamp();
    let post = method == Method::POST;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let peer_ip = peer.ip().to_string();
    let ip = header(click::HEADER_CLIENT_IP).unwrap_or(&peer_ip);
    let resolution = resolve(&entry.link, now, query.as_deref());
    let (status, location) = match (resolution, &entry.link) {
        (Resolution::Redirect { .. }, _) if post => return method_not_allowed(),
        (Resolution::Redirect { status, location }, _) => (status, location),
        (
            Resolution::Protected {
                kind,
                status,
                location,
            },
            CachedLink::Found(record),
        ) => {
            let cookies = header(header::COOKIE.as_str()).unwrap_or_default();
            // The form posts back to the address the visitor came with, query included.
            let action = match &raw_query {
                Some(q) => format!("/{slug}?{q}"),
                None => format!("/{slug}"),
            };
            let key = state.config.unlock.unlock_cookie_secret.expose();
            if post {
                match unlock_by_form(&state, record, kind, &headers, &body, ip, &action).await {
                    Ok(cookie) => {
                        let mut response = redirect_response(303, &location);
                        if let Ok(value) = HeaderValue::from_str(&cookie) {
                            response.headers_mut().insert(header::SET_COOKIE, value);
                        }
                        record_click(&state, record, &location, &method, &headers, ip, qr, now);
                        return response;
                    }
                    Err(response) => return response,
                }
            } else if unlock::cookie_unlocks(key, record, cookies, now) {
                (status, location)
            } else {
                return html(
                    pages::form_status(None),
                    pages::protection_form(kind, &action, None),
                );
            }
        }
        (Resolution::Protected { .. }, CachedLink::Missing) | (Resolution::NotFound, _) => {
            return page(Page::NotFound)
        }
        (Resolution::Gone(GoneReason::Expired), _) => return page(Page::Expired),
        (Resolution::Gone(GoneReason::Disabled), _) => return page(Page::Disabled),
    };
    if let CachedLink::Found(record) = &entry.link {
        record_click(&state, record, &location, &method, &headers, ip, qr, now);
    }
    redirect_response(status, &location)
}

fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(header::ALLOW, "GET, HEAD")],
    )
        .into_response()
}

/// Checks the visitor's form against the origin's own unlock check; `Ok` carries the
/// `Set-Cookie` value, `Err` the page to answer with.
async fn unlock_by_form(
    state: &AppState,
    record: &LinkCacheRecord,
    kind: Protection,
    headers: &HeaderMap,
    body: &Bytes,
    ip: &str,
    action: &str,
) -> Result<String, Response> {
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(page(Page::UnsupportedForm));
    }
    if body.len() > unlock::MAX_FORM_BYTES {
        return Err(page(Page::FormTooLarge));
    }
    let form = |error| {
        html(
            pages::form_status(Some(error)),
            pages::protection_form(kind, action, Some(error)),
        )
    };
    let Some(secret) = unlock::secret_from_form(&String::from_utf8_lossy(body), kind) else {
        return Err(form(FormError::Empty));
    };
    match protection::unlock(state, &record.slug, secret, ip).await {
        Ok(UnlockOutcome::Unlocked { cookie, max_age }) => {
            Ok(unlock::set_cookie(&record.slug, &cookie, max_age))
        }
        Ok(UnlockOutcome::Wrong { attempts_left }) => Err(form(FormError::Wrong { attempts_left })),
        Ok(UnlockOutcome::Locked { retry_after }) => {
            let mut response = page(Page::TooManyAttempts);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            Err(response)
        }
        Err(e) => {
            tracing::error!(error = %e, "unlock check failed");
            Err(page(Page::Unavailable))
        }
    }
}

/// Queues the click of a redirect for the batching writer: never waits on ClickHouse or
/// PostgreSQL.
#[allow(clippy::too_many_arguments)]
fn record_click(
    state: &AppState,
    record: &LinkCacheRecord,
    location: &str,
    method: &Method,
    headers: &HeaderMap,
    ip: &str,
    qr: bool,
    now: i64,
) {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let request = VisitorRequest {
        method: method.as_str(),
        ip,
        user_agent: header(header::USER_AGENT.as_str()).unwrap_or_default(),
        referrer: header(header::REFERER.as_str()),
        country: header(click::HEADER_COUNTRY),
        region: header(click::HEADER_REGION),
        city: header(click::HEADER_CITY),
        purpose: click::PURPOSE_HEADERS.iter().find_map(|h| header(h)),
        qr,
    };
    state.clicks.enqueue(ClickEvent::build(
        uuid::Uuid::new_v4().to_string(),
        u32::try_from(now).unwrap_or(u32::MAX),
        record,
        location,
        &request,
        state.config.clicks.visitor_salt_secret.expose(),
    ));
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
