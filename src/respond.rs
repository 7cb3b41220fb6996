//! Turning the shared flow's answers into the worker's responses, with or without a body (HEAD).

use smo1_core::pages::{self, Page};
use smo1_core::resolve::REDIRECT_CACHE_CONTROL;
use smo1_core::visit::{Outcome, ALLOWED_METHODS};
use worker::{Headers, Response, Result};

pub fn outcome(outcome: Outcome<'_>, head: bool) -> Result<Response> {
    match outcome {
        Outcome::Redirect {
            status,
            location,
            set_cookie,
            ..
        } => redirect(status, &location, set_cookie.as_deref()),
        Outcome::Page(page) => self::page(page, head),
        Outcome::Form { status, html } => self::html(status, html, head),
        Outcome::Locked { retry_after } => {
            let response = self::page(Page::TooManyAttempts, head)?;
            response
                .headers()
                .set("Retry-After", &retry_after.to_string())?;
            Ok(response)
        }
        Outcome::MethodNotAllowed => {
            let headers = Headers::new();
            headers.set("Allow", ALLOWED_METHODS)?;
            Ok(Response::builder()
                .empty()
                .with_status(405)
                .with_headers(headers))
        }
    }
}

fn with_body(body: String, head: bool) -> Response {
    if head {
        Response::builder().empty()
    } else {
        Response::builder().fixed(body.into_bytes())
    }
}

pub fn page(page: Page, head: bool) -> Result<Response> {
    html(page.status(), page.html(), head)
}

/// An HTML document with `status`; never cached (pages depend on the link's current state).
fn html(status: u16, body: String, head: bool) -> Result<Response> {
    let headers = Headers::new();
    headers.set("Content-Type", pages::CONTENT_TYPE)?;
    headers.set("Cache-Control", "no-store")?;
    Ok(with_body(body, head)
        .with_status(status)
        .with_headers(headers))
}

/// A redirect; `set_cookie` is the unlock cookie after a protected link's form.
pub fn redirect(status: u16, location: &str, set_cookie: Option<&str>) -> Result<Response> {
    let headers = Headers::new();
    headers.set("Location", location)?;
    if let Some(cookie) = set_cookie {
        headers.set("Set-Cookie", cookie)?;
    }
    headers.set("Cache-Control", REDIRECT_CACHE_CONTROL)?;
    Ok(Response::builder()
        .empty()
        .with_status(status)
        .with_headers(headers))
}
