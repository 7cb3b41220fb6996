//! A visitor's request: the shared flow (`smo1_core::visit`) around the edge's I/O — the domain
//! the `Host` names (`smo1_core::domain::site`; a custom domain serves only while verified), the
//! cache and origin lookups, the origin's check of a posted PIN/password ([`crate::protect`]),
//! the response, and the click recorded after it.

use crate::config::EdgeConfig;
use crate::recent::Record;
use crate::upstash::UpstashError;
use crate::{clicks, clock, origin, protect, recent, respond};
use http::Uri;
use smo1_core::click;
use smo1_core::domain::FALLBACK_REDIRECT_STATUS;
use smo1_core::domain::{self, DomainEntry, DomainSettings, DomainState, Site};
use smo1_core::link::{self, CacheEntry};
use smo1_core::pages::Page;
use smo1_core::visit::{self, Click, Outcome, Start, Step};
use std::rc::Rc;
use worker::{console_error, console_warn, web_sys, Context, Env, Result};

pub async fn handle(req: web_sys::Request, env: &Env, ctx: &Context) -> Result<web_sys::Response> {
    let method = req.method();
    let head = method == "HEAD";
    // The runtime's URL is already normalised (WHATWG): only split it, do not parse it again.
    let Ok(url) = req.url().parse::<Uri>() else {
        return respond::page(Page::NotFound, head);
    };
    let headers = req.headers();
    // The flow asks for the country by its header name: the edge's own metadata answers first.
    let header = |name: &str| {
        let header = |name: &str| headers.get(name).ok().flatten();
        if name == click::HEADER_COUNTRY {
            clicks::country(&req, header)
        } else {
            header(name)
        }
    };
    let request = visit::Request {
        method: &method,
        path: url.path(),
        query: url.query(),
        header,
    };
    let config = EdgeConfig::get(env)?;
    let site = domain::site(url.host(), &config.default_hosts);
    let settings = match &site {
        Site::Default => None,
        Site::Custom(hostname) => match find_domain(&config, hostname).await {
            Ok(entry) => match &entry.state {
                DomainState::Serving(settings) => Some(settings.clone()),
                DomainState::Unserved => return respond::page(Page::DomainUnavailable, head),
            },
            Err(page) => return respond::page(page, head),
        },
    };
    let slug = match visit::start(&request) {
        Start::Answer(outcome) => return answer(settings.as_ref(), outcome, head),
        Start::Lookup { slug } => slug,
    };
    let entry = match find(&config, site.cache_name(), slug).await {
        Ok(entry) => entry,
        Err(page) => return respond::page(page, head),
    };
    let now = (clock::now_ms() / 1000) as i64;
    let outcome = match visit::answer(
        &request,
        slug,
        &entry.link,
        now,
        &config.unlock_cookie_secret,
    ) {
        Step::Answer(outcome) => outcome,
        Step::CheckForm(form) => protect::check(&req, &config, site.cache_name(), form).await,
    };
    if let Outcome::Redirect {
        location, click, ..
    } = &outcome
    {
        record_click(&req, &method, &config, ctx, *click, location, now);
    }
    answer(settings.as_ref(), outcome, head)
}

/// The response for `outcome`, or the redirect a custom domain's settings put in its place.
fn answer(
    settings: Option<&DomainSettings>,
    outcome: Outcome<'_>,
    head: bool,
) -> Result<web_sys::Response> {
    match settings.and_then(|s| s.redirect_instead(&outcome)) {
        Some(target) => respond::redirect(FALLBACK_REDIRECT_STATUS, target, None),
        None => respond::outcome(outcome, head),
    }
}

/// Adds the click of a redirect to this isolate's batch; the request that sends the batch does
/// so after its response (`ctx.wait_until`).
fn record_click(
    req: &web_sys::Request,
    method: &str,
    config: &EdgeConfig,
    ctx: &Context,
    click: Click<'_>,
    location: &str,
    now: i64,
) {
    if let Some(clicks) = &config.clicks {
        let now = u32::try_from(now).unwrap_or(u32::MAX);
        if let Some(send) = clicks::capture(req, method, click, location, now)
            .and_then(|capture| clicks::record(capture, clicks))
        {
            ctx.wait_until(send);
        }
    }
}

/// The cache entry for `slug` on `domain` (a hostname, or `default`): from this isolate's recent
/// reads, else from Redis, else from the origin (which fills Redis). Errs with the page to show
/// when neither can answer.
async fn find(
    config: &EdgeConfig,
    domain: &str,
    slug: &str,
) -> std::result::Result<Rc<CacheEntry>, Page> {
    let name = link::cache_key("", domain, slug);
    if let Some(Record::Link(entry)) = recent::get(&name, config.link_cache) {
        return Ok(entry);
    }
    let entry = Rc::new(
        read(config, &name, CacheEntry::from_json, || {
            origin::lookup(&config.origin_url, &config.internal_secret, domain, slug)
        })
        .await?,
    );
    recent::put(&name, Record::Link(Rc::clone(&entry)), config.link_cache);
    Ok(entry)
}

/// The entry of the custom domain `hostname`, like [`find`].
async fn find_domain(
    config: &EdgeConfig,
    hostname: &str,
) -> std::result::Result<Rc<DomainEntry>, Page> {
    let name = domain::cache_key("", hostname);
    if let Some(Record::Domain(entry)) = recent::get(&name, config.link_cache) {
        return Ok(entry);
    }
    let entry = Rc::new(
        read(config, &name, DomainEntry::from_json, || {
            origin::lookup_domain(&config.origin_url, &config.internal_secret, hostname)
        })
        .await?,
    );
    recent::put(&name, Record::Domain(Rc::clone(&entry)), config.link_cache);
    Ok(entry)
}

/// The entry named `name` from Redis (read by `parse`), else from the origin (`ask`).
async fn read<T, F, Fut>(
    config: &EdgeConfig,
    name: &str,
    parse: fn(&str) -> Option<T>,
    ask: F,
) -> std::result::Result<T, Page>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = std::result::Result<T, origin::OriginError>>,
{
    let key = format!("{}{name}", config.key_prefix);
    let cache_up = match config.cache.get(&key).await {
        Ok(Some(raw)) => match parse(&raw) {
            Some(entry) => return Ok(entry),
            None => {
                console_warn!("unreadable cache entry {name}; asking the origin");
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
    ask().await.map_err(|e| {
        console_error!("origin lookup of {name} failed: {e}");
        if cache_up {
            Page::OriginUnavailable
        } else {
            Page::Unavailable
        }
    })
}
