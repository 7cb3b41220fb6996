//! Visitors at the origin (`/` and `/{slug}`), for deployments without an edge and as the
//! benchmark baseline: the shared flow (`smo1_core::visit`, the same the worker runs) around the
//! origin's own I/O — the domain the `Host` names (`smo1_core::domain::site`: the default domain
//! for our own hosts, else a custom domain, served only while verified), the client address (the TCP peer, or what a trusted proxy says:
//! [`crate::client_ip`]), the cached lookup, the secret check of a posted PIN/password form, and the
//! click queued for the batching writer.

use super::extract::ClientIp;
use crate::clicks::PendingClick;
use crate::domains;
use crate::links::{protection, service};
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use smo1_core::domain::{self, DomainSettings, DomainState, Site, FALLBACK_REDIRECT_STATUS};
use smo1_core::pages::{self, Page};
use smo1_core::resolve::REDIRECT_CACHE_CONTROL;
use smo1_core::visit::{self, Click, FormPost, Outcome, Start, Step, ALLOWED_METHODS};
use std::net::IpAddr;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", any(handle))
        .route("/{slug}", any(handle))
}

async fn handle(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let headers = &parts.headers;
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let path = parts.uri.path();
    let request = visit::Request {
        method: parts.method.as_str(),
        path,
        query: parts.uri.query(),
        header,
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let site = domain::site(host, &state.own_hosts);
    let hostname = match &site {
        Site::Default => None,
        Site::Custom(hostname) => Some(hostname.as_str()),
    };
    let settings = match hostname {
        None => None,
        Some(hostname) => match domains::service::resolve_cached(&state, hostname).await {
            Ok(entry) => match &entry.state {
                DomainState::Serving(settings) => Some(settings.clone()),
                DomainState::Unserved => return page(Page::DomainUnavailable),
            },
            Err(e) => {
                tracing::error!(error = %e, path, "domain lookup failed");
                return page(Page::Unavailable);
            }
        },
    };
    let slug = match visit::start(&request) {
        Start::Answer(outcome) => return answer(settings.as_ref(), outcome),
        Start::Lookup { slug } => slug,
    };
    let entry = match service::resolve_cached(&state, hostname, slug).await {
        Ok(entry) => entry,
        Err(e) => {
            tracing::error!(error = %e, path, "link lookup failed");
            return page(Page::Unavailable);
        }
    };
    let now = chrono::Utc::now().timestamp();
    let key = state.config.unlock.unlock_cookie_secret.expose();
    let outcome = match visit::answer(&request, slug, &entry.link, now, key) {
        Step::Answer(outcome) => outcome,
        Step::CheckForm(form) => check(&state, hostname, form, body, ip).await,
    };
    if let Outcome::Redirect {
        location, click, ..
    } = &outcome
    {
        record_click(&state, *click, location, &parts.method, headers, ip, now);
    }
    answer(settings.as_ref(), outcome)
}

/// The response for `outcome`, or the redirect a custom domain's settings put in its place.
fn answer(settings: Option<&DomainSettings>, outcome: Outcome<'_>) -> Response {
    match settings.and_then(|s| s.redirect_instead(&outcome)) {
        Some(target) => redirect(FALLBACK_REDIRECT_STATUS, target, None),
        None => respond(outcome),
    }
}

/// Checks the posted form's secret with the origin's own unlock check.
async fn check<'e>(
    state: &AppState,
    domain: Option<&str>,
    form: FormPost<'e>,
    body: Body,
    ip: IpAddr,
) -> Outcome<'e> {
    // The body limit layer caps the form (`MAX_BODY_BYTES`); past it the form is unreadable.
    let Ok(body) = axum::body::to_bytes(body, super::MAX_BODY_BYTES).await else {
        return Outcome::Page(Page::FormTooLarge);
    };
    let secret = match form.secret(&body) {
        Ok(secret) => secret,
        Err(outcome) => return outcome,
    };
    match protection::unlock(state, domain, form.slug(), secret, ip).await {
        Ok(checked) => form.checked(checked),
        Err(e) => {
            tracing::error!(error = %e, "unlock check failed");
            Outcome::Page(Page::Unavailable)
        }
    }
}

/// Queues the click of a redirect for the batching writer, which classifies and enriches it:
/// nothing here parses, hashes or waits on ClickHouse or PostgreSQL.
fn record_click(
    state: &AppState,
    click: Click<'_>,
    location: &str,
    method: &Method,
    headers: &HeaderMap,
    ip: IpAddr,
    now: i64,
) {
    state.clicks.enqueue(PendingClick::new(
        u32::try_from(now).unwrap_or(u32::MAX),
        click,
        location.to_owned(),
        method.clone(),
        ip,
        headers,
    ));
}

/// The response for an answer of the shared flow (axum drops the body of a HEAD).
pub fn respond(outcome: Outcome<'_>) -> Response {
    match outcome {
        Outcome::Redirect {
            status,
            location,
            set_cookie,
            ..
        } => redirect(status, &location, set_cookie.as_deref()),
        Outcome::Page(answer) => page(answer),
        Outcome::Form { status, html: body } => html(status, body),
        Outcome::Locked { retry_after } => {
            let mut response = page(Page::TooManyAttempts);
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            response
        }
        Outcome::MethodNotAllowed => (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, ALLOWED_METHODS)],
        )
            .into_response(),
    }
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
    html(page.status(), page.html())
}

fn redirect(status: u16, location: &str, set_cookie: Option<&str>) -> Response {
    let Ok(location) = HeaderValue::from_str(location) else {
        tracing::error!(location, "destination is not a valid header value");
        return page(Page::Unavailable);
    };
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::FOUND);
    let mut response = (
        status,
        [
            (header::LOCATION, location),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static(REDIRECT_CACHE_CONTROL),
            ),
        ],
    )
        .into_response();
    if let Some(cookie) = set_cookie.and_then(|c| HeaderValue::from_str(c).ok()) {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}
