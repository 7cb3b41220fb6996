//! A click as the origin's redirect path leaves it: the request's facts, taken without parsing
//! anything. The writer task turns it into a [`ClickEvent`] (User-Agent classification, visitor
//! hash, referrer host, click id), so none of that work delays the redirect.

use axum::http::{header, HeaderMap, HeaderValue, Method};
use smo1_core::click::{self, ClickEvent, VisitorRequest};
use smo1_core::link::LinkCacheRecord;
use smo1_core::visit::Click;
use std::net::IpAddr;
use std::sync::Arc;

/// One redirect's click, not yet enriched. Header values are shared with the request (cloning
/// one is a reference count, not a copy).
#[derive(Debug, Clone)]
pub struct PendingClick {
    /// Unix seconds of the redirect.
    pub clicked_at: u32,
    pub record: Arc<LinkCacheRecord>,
    /// Where the visitor was sent (after UTM merge).
    pub location: String,
    pub method: Method,
    pub ip: IpAddr,
    pub qr: bool,
    /// The id of the targeting rule that picked the destination.
    pub rule: Option<String>,
    user_agent: Option<HeaderValue>,
    referrer: Option<HeaderValue>,
    country: Option<HeaderValue>,
    region: Option<HeaderValue>,
    city: Option<HeaderValue>,
    /// The first prefetch marker of [`click::PURPOSE_HEADERS`] present.
    purpose: Option<HeaderValue>,
}

fn text(value: Option<&HeaderValue>) -> Option<&str> {
    value.and_then(|v| v.to_str().ok())
}

impl PendingClick {
    /// The `click` of a redirect to `location`, answered at `clicked_at`.
    pub fn new(
        clicked_at: u32,
        click: Click<'_>,
        location: String,
        method: Method,
        ip: IpAddr,
        headers: &HeaderMap,
    ) -> Self {
        let get = |name: &str| headers.get(name).cloned();
        Self {
            clicked_at,
            record: click.record.clone(),
            location,
            method,
            ip,
            qr: click.qr,
            rule: click.rule.map(str::to_owned),
            user_agent: get(header::USER_AGENT.as_str()),
            referrer: get(header::REFERER.as_str()),
            country: get(click::HEADER_COUNTRY),
            region: get(click::HEADER_REGION),
            city: get(click::HEADER_CITY),
            purpose: click::PURPOSE_HEADERS
                .iter()
                .find_map(|name| headers.get(*name).filter(|v| v.to_str().is_ok()))
                .cloned(),
        }
    }

    /// The enriched event, under a new click id.
    pub fn into_event(self, salt_secret: &str) -> ClickEvent {
        let ip = self.ip.to_string();
        let request = VisitorRequest {
            method: self.method.as_str(),
            ip: &ip,
            user_agent: text(self.user_agent.as_ref()).unwrap_or_default(),
            referrer: text(self.referrer.as_ref()),
            country: text(self.country.as_ref()),
            region: text(self.region.as_ref()),
            city: text(self.city.as_ref()),
            purpose: text(self.purpose.as_ref()),
            qr: self.qr,
            rule: self.rule.as_deref(),
        };
        // A version-4 id from the thread's CSPRNG: `Uuid::new_v4` asks the kernel once per id.
        let click_id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        ClickEvent::build(
            click_id.to_string(),
            self.clicked_at,
            &self.record,
            &self.location,
            &request,
            salt_secret,
        )
    }
}
