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

use worker::{event, Context, Env, Request, Response, Result};

#[event(start)]
fn start() {
    console_error_panic_hook::set_once();
}

#[event(fetch)]
async fn fetch(req: Request, env: Env, ctx: Context) -> Result<Response> {
    redirect::handle(req, &env, &ctx).await
}
