//! `GET|HEAD /{slug}`: cache → origin → redirect or page.

use crate::config::EdgeConfig;
use crate::upstash::Upstash;
use crate::{clicks, origin, respond};
use smo1_core::click;
use smo1_core::link::{self, CacheEntry, CachedLink};
use smo1_core::pages::Page;
use smo1_core::resolve::{resolve, GoneReason, Resolution};
use smo1_core::slug;
use worker::{console_error, console_warn, Context, Date, Env, Request, Response, Result};

pub async fn handle(
    req: &Request,
    env: &Env,
    ctx: &Context,
    slug: &str,
    head: bool,
) -> Result<Response> {
    if !slug::is_resolvable(slug) {
        return respond::page(Page::NotFound, head);
    }
    let config = EdgeConfig::from_env(env)?;
    let entry = match find(&config, slug).await {
        Ok(entry) => entry,
        Err(page) => return respond::page(page, head),
    };
    let now = (Date::now().as_millis() / 1000) as i64;
    let (qr, query) = click::take_qr_marker(req.url()?.query());
    match resolve(&entry.link, now, query.as_deref()) {
        Resolution::Redirect { status, location } => {
            if let (Some(clicks), CachedLink::Found(record)) = (config.clicks, &entry.link) {
                let now = u32::try_from(now).unwrap_or(u32::MAX);
                match clicks::capture(req, record, &location, qr, now) {
                    Some(capture) => ctx.wait_until(clicks::record(capture, clicks)),
                    None => console_error!("no click id: crypto.randomUUID is unavailable"),
                }
            }
            respond::redirect(status, &location)
        }
        Resolution::NotFound => respond::page(Page::NotFound, head),
        Resolution::Gone(GoneReason::Expired) => respond::page(Page::Expired, head),
        Resolution::Gone(GoneReason::Disabled) => respond::page(Page::Disabled, head),
        Resolution::Protected(_) => respond::page(Page::Protected, head),
    }
}

/// The cache entry for `slug`: from Redis, else from the origin (which fills Redis).
/// Errs with the page to show when neither can answer.
async fn find(config: &EdgeConfig, slug: &str) -> std::result::Result<CacheEntry, Page> {
    let cache = Upstash {
        url: &config.upstash_url,
        token: &config.upstash_token,
    };
    let cache_up = match cache.get(&link::cache_key(&config.key_prefix, slug)).await {
        Ok(Some(raw)) => match CacheEntry::from_json(&raw) {
            Some(entry) => return Ok(entry),
            None => {
                console_warn!("unreadable cache entry for {slug}; asking the origin");
                true
            }
        },
        Ok(None) => true,
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
