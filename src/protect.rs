//! A PIN/password form posted to a protected link: the origin checks the secret (it holds the
//! hash and counts attempts); the shared flow (`smo1_core::visit::FormPost`) decides the answer.
//! Unlock cookies are verified by the flow itself, without a round trip.

use crate::config::EdgeConfig;
use crate::origin;
use futures_util::StreamExt;
use smo1_core::click;
use smo1_core::pages::Page;
use smo1_core::unlock::UnlockRequest;
use smo1_core::unlock::MAX_FORM_BYTES;
use smo1_core::visit::{FormPost, Outcome};
use worker::{console_error, web_sys, Request};

/// The form's body, read only up to [`MAX_FORM_BYTES`]: a chunked body declares no length, and
/// reading one of any size into memory would let a single request exhaust the isolate.
async fn read_bounded(req: &mut Request) -> Result<Vec<u8>, Page> {
    // No body at all: an empty form.
    let Ok(mut chunks) = req.stream() else {
        return Ok(Vec::new());
    };
    let mut body = Vec::new();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|_| Page::UnsupportedForm)?;
        if body.len() + chunk.len() > MAX_FORM_BYTES {
            return Err(Page::FormTooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Reads the form's body and asks the origin whether its secret unlocks the link on `domain` (a
/// hostname, or `default`).
pub async fn check<'e>(
    req: &web_sys::Request,
    config: &EdgeConfig,
    domain: &str,
    form: FormPost<'e>,
) -> Outcome<'e> {
    let ip = req
        .headers()
        .get(click::HEADER_CLIENT_IP)
        .ok()
        .flatten()
        .unwrap_or_default();
    // `Clone::clone` copies the reference; `web_sys::Request::clone` would copy the request.
    let body = match read_bounded(&mut Request::from(Clone::clone(req))).await {
        Ok(body) => body,
        Err(page) => return Outcome::Page(page),
    };
    let secret = match form.secret(&body) {
        Ok(secret) => secret,
        Err(outcome) => return outcome,
    };
    let slug = form.slug();
    let request = UnlockRequest { secret, ip };
    match origin::unlock(
        &config.origin_url,
        &config.internal_secret,
        domain,
        slug,
        &request,
    )
    .await
    {
        Ok(checked) => form.checked(checked),
        // Every verifier is busy (a flood of guesses): a moment's wait helps, unlike a dead origin.
        Err(origin::OriginError::Status(503)) => Outcome::Page(Page::Unavailable),
        Err(e) => {
            console_error!("unlock check for {slug} failed: {e}");
            Outcome::Page(Page::OriginUnavailable)
        }
    }
}
