//! Protected links at the edge. `GET|HEAD /{slug}` with a valid unlock cookie redirects; without
//! one it shows the PIN/password form. `POST /{slug}` (the form) asks the origin to check the
//! secret — it holds the hash and counts attempts — and on success sets the signed cookie.
//! The cookie is verified here, without a round trip (`smo1_core::unlock`).

use crate::config::EdgeConfig;
use crate::{origin, respond};
use smo1_core::click;
use smo1_core::link::{LinkCacheRecord, Protection};
use smo1_core::pages::{self, FormError, Page};
use smo1_core::unlock::{self, UnlockOutcome, UnlockRequest};
use worker::{console_error, Method, Request, Response, Result};

/// One visit to a protected link.
pub struct Visit<'a> {
    pub config: &'a EdgeConfig,
    pub record: &'a LinkCacheRecord,
    pub kind: Protection,
    pub now: i64,
    pub head: bool,
    /// Where the form posts (the visited path and query).
    pub action: &'a str,
}

pub enum Answer {
    /// Redirect to the destination; `set_cookie` after a successful form.
    Unlocked { set_cookie: Option<String> },
    /// The form, an error page or the lockout page.
    Page(Response),
}

pub async fn handle(req: &mut Request, visit: &Visit<'_>) -> Result<Answer> {
    if req.method() == Method::Post {
        return submit(req, visit).await;
    }
    let cookies = req.headers().get("cookie")?.unwrap_or_default();
    let key = &visit.config.unlock_cookie_secret;
    if unlock::cookie_unlocks(key, visit.record, &cookies, visit.now) {
        return Ok(Answer::Unlocked { set_cookie: None });
    }
    form(visit, None)
}

fn form(visit: &Visit<'_>, error: Option<FormError>) -> Result<Answer> {
    let html = pages::protection_form(visit.kind, visit.action, error);
    respond::html(pages::form_status(error), html, visit.head).map(Answer::Page)
}

fn page(page: Page) -> Result<Answer> {
    respond::page(page, false).map(Answer::Page)
}

/// The form's POST: only `application/x-www-form-urlencoded` bodies of a sane size are read.
async fn submit(req: &mut Request, visit: &Visit<'_>) -> Result<Answer> {
    let headers = req.headers();
    let is_form = headers
        .get("content-type")?
        .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return page(Page::UnsupportedForm);
    }
    let declared = headers
        .get("content-length")?
        .and_then(|n| n.parse::<usize>().ok());
    if declared.is_some_and(|n| n > unlock::MAX_FORM_BYTES) {
        return page(Page::FormTooLarge);
    }
    let ip = headers.get(click::HEADER_CLIENT_IP)?.unwrap_or_default();
    let Ok(body) = req.bytes().await else {
        return page(Page::UnsupportedForm);
    };
    if body.len() > unlock::MAX_FORM_BYTES {
        return page(Page::FormTooLarge);
    }
    let Some(secret) = unlock::secret_from_form(&String::from_utf8_lossy(&body), visit.kind) else {
        return form(visit, Some(FormError::Empty));
    };
    let request = UnlockRequest { secret, ip };
    let config = visit.config;
    let slug = &visit.record.slug;
    match origin::unlock(&config.origin_url, &config.internal_secret, slug, &request).await {
        Ok(UnlockOutcome::Unlocked { cookie, max_age }) => Ok(Answer::Unlocked {
            set_cookie: Some(unlock::set_cookie(slug, &cookie, max_age)),
        }),
        Ok(UnlockOutcome::Wrong { attempts_left }) => {
            form(visit, Some(FormError::Wrong { attempts_left }))
        }
        Ok(UnlockOutcome::Locked { retry_after }) => {
            respond::too_many_attempts(retry_after).map(Answer::Page)
        }
        // Every verifier is busy (a flood of guesses): a moment's wait helps, unlike a dead origin.
        Err(origin::OriginError::Status(503)) => page(Page::Unavailable),
        Err(e) => {
            console_error!("unlock check for {slug} failed: {e}");
            page(Page::OriginUnavailable)
        }
    }
}
