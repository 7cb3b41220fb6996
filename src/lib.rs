//! SMO1 edge worker: resolves `/{slug}` from the Upstash cache, falls back to the origin on a
//! miss, and answers with a redirect or a page. This file only wires events to handlers.

mod clicks;
mod config;
mod fetch;
mod origin;
mod protect;
mod recent;
mod redirect;
mod respond;
mod upstash;

use worker::{event, web_sys, Context, Env, Result};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

/// Takes and gives the runtime's own request and response: workers-rs' wrappers would cost
/// calls across the wasm boundary the redirect never needs.
#[event(fetch)]
async fn fetch(req: web_sys::Request, env: Env, ctx: Context) -> Result<web_sys::Response> {
    redirect::handle(req, &env, &ctx).await
}
