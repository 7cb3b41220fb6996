//! Turning the shared flow's answers into the worker's responses, with or without a body (HEAD).
//! Each response is made by one call into JavaScript ([`make_response`], [`make_redirect`]):
//! building it through `Headers` and `ResponseInit` would cost a call across the wasm boundary
//! per header and field.

use smo1_core::pages::{self, Page};
use smo1_core::resolve::REDIRECT_CACHE_CONTROL;
use smo1_core::visit::{Outcome, ALLOWED_METHODS};
use wasm_bindgen::prelude::*;
use worker::{web_sys, Result};

#[wasm_bindgen(inline_js = r#"
export function makeResponse(status, body, headers) {
  const fields = headers.split("\0");
  const list = [];
  for (let i = 0; i + 1 < fields.length; i += 2) list.push([fields[i], fields[i + 1]]);
  return new Response(body, { status, headers: list });
}

export function makeRedirect(status, location, cacheControl, setCookie) {
  const headers = { Location: location, "Cache-Control": cacheControl };
  if (setCookie !== undefined) headers["Set-Cookie"] = setCookie;
  return new Response(null, { status, headers });
}
"#)]
extern "C" {
    /// A `Response` with `status`, `body` (none when `undefined`) and `headers`: names and
    /// values alternating, NUL-separated (no header name or value holds a NUL).
    #[wasm_bindgen(js_name = makeResponse, catch)]
    fn make_response(
        status: u16,
        body: Option<String>,
        headers: &str,
    ) -> std::result::Result<web_sys::Response, JsValue>;

    /// A redirect: the most common response, made without encoding a header list.
    #[wasm_bindgen(js_name = makeRedirect, catch)]
    fn make_redirect(
        status: u16,
        location: &str,
        cache_control: &JsValue,
        set_cookie: Option<&str>,
    ) -> std::result::Result<web_sys::Response, JsValue>;
}

thread_local! {
    /// [`REDIRECT_CACHE_CONTROL`] as a JavaScript string, made once per isolate.
    static CACHE_CONTROL: JsValue = JsValue::from_str(REDIRECT_CACHE_CONTROL);
}

fn response(
    status: u16,
    body: Option<String>,
    headers: &[(&str, &str)],
) -> Result<web_sys::Response> {
    let mut fields = String::new();
    for (name, value) in headers {
        if !fields.is_empty() {
            fields.push('\0');
        }
        fields.push_str(name);
        fields.push('\0');
        fields.push_str(value);
    }
    Ok(make_response(status, body, &fields)?)
}

pub fn outcome(outcome: Outcome<'_>, head: bool) -> Result<web_sys::Response> {
    match outcome {
        Outcome::Redirect {
            status,
            location,
            set_cookie,
            ..
        } => redirect(status, &location, set_cookie.as_deref()),
        Outcome::Page(page) => self::page(page, head),
        Outcome::Form { status, html } => self::html(status, html, head, &[]),
        Outcome::Locked { retry_after } => {
            let page = Page::TooManyAttempts;
            let retry_after = retry_after.to_string();
            html(
                page.status(),
                page.html(),
                head,
                &[("Retry-After", &retry_after)],
            )
        }
        Outcome::MethodNotAllowed => response(405, None, &[("Allow", ALLOWED_METHODS)]),
    }
}

pub fn page(page: Page, head: bool) -> Result<web_sys::Response> {
    html(page.status(), page.html(), head, &[])
}

/// An HTML document with `status` and `extra` headers; never cached (pages depend on the link's
/// current state).
fn html(
    status: u16,
    body: String,
    head: bool,
    extra: &[(&str, &str)],
) -> Result<web_sys::Response> {
    let mut headers = vec![
        ("Content-Type", pages::CONTENT_TYPE),
        ("Cache-Control", "no-store"),
    ];
    headers.extend_from_slice(extra);
    response(status, (!head).then_some(body), &headers)
}

/// A redirect; `set_cookie` is the unlock cookie after a protected link's form.
pub fn redirect(
    status: u16,
    location: &str,
    set_cookie: Option<&str>,
) -> Result<web_sys::Response> {
    Ok(CACHE_CONTROL
        .with(|cache_control| make_redirect(status, location, cache_control, set_cookie))?)
}
