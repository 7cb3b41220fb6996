//! A visitor's request: the shared flow (`smo1_core::visit`) around the edge's I/O — the cache
//! and origin lookup, the origin's check of a posted PIN/password ([`crate::protect`]), the
//! response, and the click recorded after it.

use crate::config::EdgeConfig;
use crate::upstash::UpstashError;
use crate::{clicks, origin, protect, recent, respond};
use smo1_core::link::{self, CacheEntry, LinkCacheRecord};
use smo1_core::pages::Page;
use smo1_core::visit::{self, Outcome, Start, Step};
use std::rc::Rc;
use worker::{console_error, console_warn, Context, Date, Env, Method, Request, Response, Result};

pub async fn handle(mut req: Request, env: &Env, ctx: &Context) -> Result<Response> {
    let method = req.method();
    let head = method == Method::Head;
    let url = req.url()?;
    let headers = req.headers().clone();
    let header = |name: &str| headers.get(name).ok().flatten();
    let request = visit::Request {
        method: method.as_ref(),
        path: url.path(),
        query: url.query(),
        header,
    };
    let slug = match visit::start(&request) {
        Start::Answer(outcome) => return respond::outcome(outcome, head),
        Start::Lookup { slug } => slug,
    };
    let config = EdgeConfig::get(env)?;
    let entry = match find(&config, slug).await {
        Ok(entry) => entry,
        Err(page) => return respond::page(page, head),
    };
    let now = (Date::now().as_millis() / 1000) as i64;
    let outcome = match visit::answer(
        &request,
        slug,
        &entry.link,
        now,
        &config.unlock_cookie_secret,
    ) {
        Step::Answer(outcome) => outcome,
        Step::CheckForm(form) => protect::check(&mut req, &config, form).await,
    };
    if let Outcome::Redirect {
        location, click, ..
    } = &outcome
    {
        record_click(&req, &config, ctx, click.record, location, click.qr, now);
    }
    respond::outcome(outcome, head)
}

/// Sends the click of a redirect after the response (`ctx.wait_until`).
fn record_click(
    req: &Request,
    config: &EdgeConfig,
    ctx: &Context,
    record: &LinkCacheRecord,
    location: &str,
    qr: bool,
    now: i64,
) {
    if let Some(clicks) = &config.clicks {
        let now = u32::try_from(now).unwrap_or(u32::MAX);
        match clicks::capture(req, record, location, qr, now) {
            Some(capture) => ctx.wait_until(clicks::record(capture, Rc::clone(clicks))),
            None => console_error!("no click id: crypto.randomUUID is unavailable"),
        }
    }
}

/// The cache entry for `slug`: from this isolate's recent reads, else from Redis, else from the
/// origin (which fills Redis). Errs with the page to show when neither can answer.
async fn find(config: &EdgeConfig, slug: &str) -> std::result::Result<Rc<CacheEntry>, Page> {
    if let Some(entry) = recent::get(slug, config.link_cache) {
        return Ok(entry);
    }
    let entry = Rc::new(read(config, slug).await?);
    recent::put(slug, Rc::clone(&entry), config.link_cache);
    Ok(entry)
}

/// The cache entry for `slug` from Redis, else from the origin.
async fn read(config: &EdgeConfig, slug: &str) -> std::result::Result<CacheEntry, Page> {
    let cache_up = match config
        .cache
        .get(&link::cache_key(&config.key_prefix, slug))
        .await
    {
        Ok(Some(raw)) => match CacheEntry::from_json(&raw) {
            Some(entry) => return Ok(entry),
            None => {
                console_warn!("unreadable cache entry for {slug}; asking the origin");
                true
            }
        },
        Ok(None) => true,
        // Logged once, by the lookup that opened the breaker.
        Err(UpstashError::Skipped) => false,
        Err(e) => {
            console_error!("cache lookup failed, falling back to origin: {e}");
            false
        }
    };
    origin::lookup(&config.origin_url, &config.internal_secret, slug)
        .await
        .map_err(|e| {
            console_error!("origin lookup for {slug} failed: {e}");
            if cache_up {
                Page::OriginUnavailable
            } else {
                Page::Unavailable
            }
        })
}
