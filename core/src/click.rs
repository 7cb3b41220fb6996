//! The click event: one row of ClickHouse `link_clicks`, built identically by the edge and by the
//! origin's own redirect path.
//!
//! The event is sent as a `JSONEachRow` line, so field names are the column names. No raw IP is
//! stored anywhere: `visitor_id` is a hash of IP + User-Agent with a salt that changes every UTC
//! day, so a visitor is countable within a day and unlinkable across days.

use crate::link::LinkCacheRecord;
use crate::useragent::{self, DeviceType};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Longest text stored for any free-form field (referrer, destination, UTM, …).
pub const MAX_TEXT: usize = 2048;
/// Longest short field (browser, OS, country, city, …).
pub const MAX_SHORT: usize = 128;
/// Request headers the click is enriched from. Cloudflare sets the `cf-*` ones (the worker prefers
/// `request.cf` when present); other proxies in front of the origin can set the same names.
pub const HEADER_CLIENT_IP: &str = "cf-connecting-ip";
pub const HEADER_COUNTRY: &str = "cf-ipcountry";
pub const HEADER_REGION: &str = "cf-region";
pub const HEADER_CITY: &str = "cf-ipcity";
/// Prefetch/prerender markers, first present wins.
pub const PURPOSE_HEADERS: [&str; 4] = ["sec-purpose", "purpose", "x-purpose", "x-moz"];

/// Where clicks are inserted: the `link_clicks_buffer` Buffer table (ClickHouse without
/// `async_insert`, e.g. Debian's 18.16), or `link_clicks` itself with `async_insert=1` (21.11+),
/// which batches many small inserts server-side. Decided here for the edge and the origin alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InsertTarget {
    pub table: &'static str,
    /// Query-string settings of the insert.
    pub settings: &'static [(&'static str, &'static str)],
}

impl InsertTarget {
    pub fn new(async_insert: bool) -> Self {
        if async_insert {
            Self {
                table: "link_clicks",
                settings: &[("async_insert", "1"), ("wait_for_async_insert", "1")],
            }
        } else {
            Self {
                table: "link_clicks_buffer",
                settings: &[],
            }
        }
    }
}

/// Query parameter that marks a visit from a QR code (`https://sho.rt/abc?qr=1`); it is removed
/// before the visitor's query is merged into the destination.
pub const QR_PARAM: &str = "qr";

/// One click, as the edge sends it to the origin and both write it to ClickHouse.
///
/// The format is read by peers one version apart (a worker deployed before or after its
/// origin, an outbox row written by the previous release), so it evolves compatibly: unknown
/// fields are ignored, and every field other than the click's identity is `#[serde(default)]`.
/// A field added later must be defaulted too; none may be removed or change meaning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickEvent {
    /// Generated at the edge (UUID v4); retries and replays carry the same id.
    pub click_id: String,
    /// Unix seconds (ClickHouse `DateTime('UTC')`).
    pub clicked_at: u32,
    pub link_id: String,
    pub user_id: String,
    pub slug: String,
    /// Where the visitor was sent (after UTM merge).
    #[serde(default)]
    pub destination: String,
    #[serde(default)]
    pub visitor_id: String,
    #[serde(default)]
    pub country: String,
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub city: String,
    #[serde(default = "unknown_device")]
    pub device_type: String,
    #[serde(default)]
    pub browser: String,
    #[serde(default)]
    pub browser_version: String,
    #[serde(default)]
    pub os: String,
    #[serde(default)]
    pub os_version: String,
    #[serde(default)]
    pub referrer: String,
    #[serde(default)]
    pub referrer_domain: String,
    #[serde(default)]
    pub utm_source: String,
    #[serde(default)]
    pub utm_medium: String,
    #[serde(default)]
    pub utm_campaign: String,
    #[serde(default)]
    pub utm_term: String,
    #[serde(default)]
    pub utm_content: String,
    #[serde(default)]
    pub method: String,
    #[serde(default)]
    pub is_qr: u8,
    #[serde(default)]
    pub is_bot: u8,
    /// Empty for humans, else a [`useragent::BotReason`] name.
    #[serde(default)]
    pub bot_reason: String,
    /// The id of the targeting rule that picked the destination; empty: the link's own. Left
    /// out when empty, so the row of a link without rules reads as before on a ClickHouse whose
    /// schema predates the column (migration 0009).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rule_id: String,
}

/// The device type of an event from a peer that does not send one.
fn unknown_device() -> String {
    DeviceType::Other.as_str().to_owned()
}

/// What the redirecting side knows about the request.
#[derive(Debug, Clone, Default)]
pub struct VisitorRequest<'a> {
    pub method: &'a str,
    pub ip: &'a str,
    pub user_agent: &'a str,
    pub referrer: Option<&'a str>,
    pub country: Option<&'a str>,
    pub region: Option<&'a str>,
    pub city: Option<&'a str>,
    /// The first of `Sec-Purpose`, `Purpose`, `X-Purpose`, `X-Moz`.
    pub purpose: Option<&'a str>,
    pub qr: bool,
    /// The id of the targeting rule that picked the destination.
    pub rule: Option<&'a str>,
}

fn clip(value: &str, max: usize) -> String {
    if value.len() <= max {
        return value.to_owned();
    }
    let mut end = max;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    value[..end].to_owned()
}

/// `hex(sha256(salt_secret | utc_day | ip | user_agent))[..32]`.
pub fn visitor_id(salt_secret: &str, now_unix: u32, ip: &str, user_agent: &str) -> String {
    let day = now_unix / 86_400;
    let digest = Sha256::new()
        .chain_update(salt_secret.as_bytes())
        .chain_update(b"|")
        .chain_update(day.to_string().as_bytes())
        .chain_update(b"|")
        .chain_update(ip.as_bytes())
        .chain_update(b"|")
        .chain_update(user_agent.as_bytes())
        .finalize();
    let mut id = format!("{digest:x}");
    id.truncate(32);
    id
}

/// The host of a referrer URL, lower-cased, without a leading `www.`.
pub fn referrer_domain(referrer: &str) -> String {
    url::Url::parse(referrer)
        .ok()
        .and_then(|u| {
            u.host_str()
                .map(|h| h.trim_start_matches("www.").to_ascii_lowercase())
        })
        .unwrap_or_default()
}

/// Splits the QR marker off a visitor's query string: `(is_qr, query without it)`.
pub fn take_qr_marker(query: Option<&str>) -> (bool, Option<String>) {
    let Some(query) = query.filter(|q| !q.is_empty()) else {
        return (false, None);
    };
    let mut is_qr = false;
    let rest: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .filter(|(name, value)| {
            let marker = name == QR_PARAM;
            is_qr |= marker && value != "0";
            !marker
        })
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    if !is_qr && rest.len() == query.split('&').filter(|p| !p.is_empty()).count() {
        return (false, Some(query.to_owned()));
    }
    let rest = (!rest.is_empty()).then(|| {
        url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(rest)
            .finish()
    });
    (is_qr, rest)
}

impl ClickEvent {
    /// Builds the event for a redirect of `record` to `location`.
    pub fn build(
        click_id: String,
        now_unix: u32,
        record: &LinkCacheRecord,
        location: &str,
        request: &VisitorRequest<'_>,
        salt_secret: &str,
    ) -> Self {
        let visitor = useragent::classify(request.method, request.user_agent, request.purpose);
        let referrer = request.referrer.unwrap_or_default();
        let utm = |value: &Option<String>| clip(value.as_deref().unwrap_or_default(), MAX_TEXT);
        let short = |value: Option<&str>| clip(value.unwrap_or_default(), MAX_SHORT);
        Self {
            click_id,
            clicked_at: now_unix,
            link_id: record.link_id.clone(),
            user_id: record.user_id.clone(),
            slug: record.slug.clone(),
            destination: clip(location, MAX_TEXT),
            visitor_id: visitor_id(salt_secret, now_unix, request.ip, request.user_agent),
            country: short(request.country),
            region: short(request.region),
            city: short(request.city),
            device_type: visitor.device_type.as_str().to_owned(),
            browser: clip(&visitor.browser, MAX_SHORT),
            browser_version: clip(&visitor.browser_version, MAX_SHORT),
            os: clip(&visitor.os, MAX_SHORT),
            os_version: clip(&visitor.os_version, MAX_SHORT),
            referrer: clip(referrer, MAX_TEXT),
            referrer_domain: clip(&referrer_domain(referrer), MAX_SHORT),
            utm_source: utm(&record.utm.source),
            utm_medium: utm(&record.utm.medium),
            utm_campaign: utm(&record.utm.campaign),
            utm_term: utm(&record.utm.term),
            utm_content: utm(&record.utm.content),
            method: clip(request.method, 16),
            is_qr: u8::from(request.qr),
            is_bot: u8::from(visitor.bot.is_some()),
            bot_reason: visitor
                .bot
                .map(|b| b.as_str().to_owned())
                .unwrap_or_default(),
            rule_id: short(request.rule),
        }
    }

    /// Checks an event received from outside (the origin's `/internal/clicks`).
    pub fn validate(&self) -> Result<(), String> {
        let id_ok = |v: &str| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if !id_ok(&self.click_id) {
            return Err("click_id must be 1-64 characters of letters, digits and '-'".into());
        }
        if !id_ok(&self.link_id) {
            return Err("link_id must be 1-64 characters of letters, digits and '-'".into());
        }
        // 2020-01-01 .. 2100-01-01: anything else is a broken clock or a forged event.
        if !(1_577_836_800..4_102_444_800).contains(&self.clicked_at) {
            return Err("clicked_at must be a unix time in seconds between 2020 and 2100".into());
        }
        if DeviceType::parse(&self.device_type).is_none() {
            return Err("device_type must be desktop, mobile, tablet, bot or other".into());
        }
        if self.is_qr > 1 || self.is_bot > 1 {
            return Err("is_qr and is_bot must be 0 or 1".into());
        }
        let texts = [
            &self.destination,
            &self.referrer,
            &self.utm_source,
            &self.utm_medium,
            &self.utm_campaign,
            &self.utm_term,
            &self.utm_content,
        ];
        if texts.iter().any(|t| t.len() > MAX_TEXT) {
            return Err(format!("text fields must be at most {MAX_TEXT} bytes"));
        }
        let shorts = [
            &self.user_id,
            &self.slug,
            &self.visitor_id,
            &self.country,
            &self.region,
            &self.city,
            &self.browser,
            &self.browser_version,
            &self.os,
            &self.os_version,
            &self.referrer_domain,
            &self.method,
            &self.bot_reason,
            &self.rule_id,
        ];
        if shorts.iter().any(|t| t.len() > MAX_SHORT) {
            return Err(format!("short fields must be at most {MAX_SHORT} bytes"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::{sample_record, Utm};

    fn request() -> VisitorRequest<'static> {
        VisitorRequest {
            method: "GET",
            ip: "203.0.113.9",
            user_agent: "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
            referrer: Some("https://www.News.example.org/story?id=1"),
            country: Some("DE"),
            region: Some("BE"),
            city: Some("Berlin"),
            purpose: None,
            qr: true,
            rule: Some("r-de"),
        }
    }

    #[test]
    fn builds_an_enriched_event() {
        let mut record = sample_record();
        record.utm = Utm {
            source: Some("news".into()),
            ..Utm::default()
        };
        let event = ClickEvent::build(
            "c0ffee00-0000-4000-8000-000000000000".into(),
            1_764_000_000,
            &record,
            "https://example.com/a?x=1&utm_source=news",
            &request(),
            "salt",
        );
        assert_eq!(event.link_id, record.link_id);
        assert_eq!(event.referrer_domain, "news.example.org");
        assert_eq!(event.browser, "Firefox");
        assert_eq!(event.device_type, "desktop");
        assert_eq!(event.utm_source, "news");
        assert_eq!(
            (event.is_qr, event.is_bot, event.bot_reason.as_str()),
            (1, 0, "")
        );
        assert_eq!(event.rule_id, "r-de");
        assert_eq!(event.visitor_id.len(), 32);
        assert!(!serde_json::to_string(&event)
            .unwrap()
            .contains("203.0.113.9"));
        assert_eq!(event.validate(), Ok(()));
    }

    #[test]
    fn visitor_ids_rotate_daily_and_need_the_salt() {
        let day = 1_764_000_000 - 1_764_000_000 % 86_400;
        let a = visitor_id("s", day, "1.2.3.4", "ua");
        assert_eq!(a, visitor_id("s", day + 86_399, "1.2.3.4", "ua"));
        assert_ne!(a, visitor_id("s", day + 86_400, "1.2.3.4", "ua"));
        assert_ne!(a, visitor_id("t", day, "1.2.3.4", "ua"));
        assert_ne!(a, visitor_id("s", day, "1.2.3.5", "ua"));
    }

    #[test]
    fn visitor_ids_keep_their_format_across_versions() {
        // hex(sha256("s|0|1.2.3.4|ua"))[..32]: a worker and an origin one version apart must
        // count the same visitor once.
        assert_eq!(
            visitor_id("s", 0, "1.2.3.4", "ua"),
            "3b88293efd4d190b0a23ada30140d031"
        );
    }

    #[test]
    fn qr_marker_is_taken_out_of_the_query() {
        assert_eq!(take_qr_marker(None), (false, None));
        assert_eq!(take_qr_marker(Some("qr=1")), (true, None));
        assert_eq!(
            take_qr_marker(Some("a=1&qr=1&b=2")),
            (true, Some("a=1&b=2".into()))
        );
        assert_eq!(
            take_qr_marker(Some("a=%20x")),
            (false, Some("a=%20x".into()))
        );
        assert_eq!(
            take_qr_marker(Some("qr=0&a=1")),
            (false, Some("a=1".into()))
        );
    }

    fn sample_event() -> ClickEvent {
        ClickEvent::build(
            "id-1".into(),
            1_764_000_000,
            &sample_record(),
            "https://e.com/",
            &request(),
            "s",
        )
    }

    #[test]
    fn malformed_events_are_refused_with_a_reason() {
        let good = sample_event();
        let mut bad = good.clone();
        bad.click_id = "x'; DROP TABLE".into();
        assert!(bad.validate().unwrap_err().contains("click_id"));
        let mut bad = good.clone();
        bad.clicked_at = 5;
        assert!(bad.validate().unwrap_err().contains("clicked_at"));
        let mut bad = good.clone();
        bad.device_type = "toaster".into();
        assert!(bad.validate().unwrap_err().contains("device_type"));
        let mut bad = good;
        bad.referrer = "r".repeat(MAX_TEXT + 1);
        assert!(bad.validate().unwrap_err().contains("text fields"));
        assert!(serde_json::from_str::<ClickEvent>(r#"{"click_id":"a","extra":1}"#).is_err());
    }

    #[test]
    fn events_of_a_newer_or_older_peer_are_read() {
        let event = sample_event();
        let mut newer = serde_json::to_value(&event).unwrap();
        newer["edge_colo"] = "FRA".into();
        assert_eq!(serde_json::from_value::<ClickEvent>(newer).unwrap(), event);

        let mut older = serde_json::to_value(&event).unwrap();
        let fields = older.as_object_mut().unwrap();
        fields.retain(|name, _| {
            ["click_id", "clicked_at", "link_id", "user_id", "slug"].contains(&name.as_str())
        });
        let read: ClickEvent = serde_json::from_value(older).unwrap();
        assert_eq!(read.click_id, event.click_id);
        assert_eq!((read.device_type.as_str(), read.is_bot), ("other", 0));
        assert_eq!(read.rule_id, "");
        assert_eq!(read.validate(), Ok(()));
    }

    #[test]
    fn long_values_are_clipped_on_char_boundaries() {
        assert_eq!(clip("ääää", 3), "ä");
        assert_eq!(clip("abc", 5), "abc");
    }
}
