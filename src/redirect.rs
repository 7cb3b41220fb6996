//! `GET|HEAD /{slug}`: cache → origin → redirect or page; protected links go through
//! [`crate::protect`] (which also answers `POST /{slug}`, the PIN/password form).

use crate::config::EdgeConfig;
use crate::upstash::Upstash;
use crate::{clicks, origin, protect, respond};
use smo1_core::click;
use smo1_core::link::{self, CacheEntry, CachedLink, LinkCacheRecord};
use smo1_core::pages::Page;
use smo1_core::resolve::{resolve, GoneReason, Resolution};
use smo1_core::slug;
use worker::{console_error, console_warn, Context, Date, Env, Method, Request, Response, Result};

pub async fn handle(
    mut req: Request,
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
    let post = req.method() == Method::Post;
    match (resolve(&entry.link, now, query.as_deref()), &entry.link) {
        (Resolution::Redirect { .. }, _) if post => respond::method_not_allowed(),
        (Resolution::Redirect { status, location }, CachedLink::Found(record)) => {
            record_click(&req, &config, ctx, record, &location, qr, now);
            respond::redirect(status, &location, None)
        }
        (
            Resolution::Protected {
                kind,
                status,
                location,
            },
            CachedLink::Found(record),
        ) => {
            let visit = protect::Visit {
                config: &config,
                record,
                kind,
                now,
                head,
                action: &action(&req, slug)?,
            };
            match protect::handle(&mut req, &visit).await? {
                protect::Answer::Unlocked { set_cookie } => {
                    record_click(&req, &config, ctx, record, &location, qr, now);
                    // After the form: 303, so the browser GETs the destination and never
                    // re-posts the secret there (307/308 would).
                    let status = if set_cookie.is_some() { 303 } else { status };
                    respond::redirect(status, &location, set_cookie.as_deref())
                }
                protect::Answer::Page(response) => Ok(response),
            }
        }
        (Resolution::Gone(GoneReason::Expired), _) => respond::page(Page::Expired, head),
        (Resolution::Gone(GoneReason::Disabled), _) => respond::page(Page::Disabled, head),
        _ => respond::page(Page::NotFound, head),
    }
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
    if let Some(clicks) = config.clicks.clone() {
        let now = u32::try_from(now).unwrap_or(u32::MAX);
        match clicks::capture(req, record, location, qr, now) {
            Some(capture) => ctx.wait_until(clicks::record(capture, clicks)),
            None => console_error!("no click id: crypto.randomUUID is unavailable"),
        }
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

/// Where the protection form posts: the address the visitor came with, query included, so the
/// visitor's parameters still reach the destination.
fn action(req: &Request, slug: &str) -> Result<String> {
    Ok(match req.url()?.query() {
        Some(query) => format!("/{slug}?{query}"),
        None => format!("/{slug}"),
    })
}
