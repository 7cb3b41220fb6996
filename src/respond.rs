//! Building the worker's responses: redirects and pages, with or without a body (HEAD).

use smo1_core::pages::{self, Page};
use smo1_core::resolve::REDIRECT_CACHE_CONTROL;
use worker::{Headers, Response, Result};

fn with_body(body: String, head: bool) -> Response {
    if head {
        Response::builder().empty()
    } else {
        Response::builder().fixed(body.into_bytes())
    }
}

pub fn page(page: Page, head: bool) -> Result<Response> {
    let headers = Headers::new();
    headers.set("Content-Type", pages::CONTENT_TYPE)?;
    headers.set("Cache-Control", "no-store")?;
    Ok(with_body(page.html(), head)
        .with_status(page.status())
        .with_headers(headers))
}

pub fn redirect(status: u16, location: &str) -> Result<Response> {
    let headers = Headers::new();
    headers.set("Location", location)?;
    headers.set("Cache-Control", REDIRECT_CACHE_CONTROL)?;
    Ok(Response::builder()
        .empty()
        .with_status(status)
        .with_headers(headers))
}

pub fn method_not_allowed() -> Result<Response> {
    let headers = Headers::new();
    headers.set("Allow", "GET, HEAD")?;
    Ok(Response::builder()
        .empty()
        .with_status(405)
        .with_headers(headers))
}
