//! SMO1 edge worker: resolves `/{slug}` from the Upstash cache, falls back to the origin on a
//! miss, and answers with a redirect or a page. This file only wires events to handlers.

mod clicks;
mod config;
mod fetch;
mod origin;
mod protect;
mod redirect;
mod respond;
mod upstash;

use smo1_core::pages::Page;
use worker::{event, Context, Env, Method, Request, Response, Result};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    let head = match req.method() {
        Method::Get | Method::Post => false,
        Method::Head => true,
        _ => return respond::method_not_allowed(),
    };
    let path = req.path();
    match path.trim_start_matches('/') {
        "" if req.method() == Method::Post => respond::method_not_allowed(),
        "" => respond::page(Page::Home, head),
        // POST is the PIN/password form of a protected link; redirect decides.
        slug => redirect::handle(req, &env, &ctx, slug, head).await,
    }
}
