//! The link record as the edge sees it: what the origin writes to `link:{domain}:{slug}` in Redis
//! and returns from `GET /internal/domains/{domain}/links/{slug}`.
//!
//! It carries everything a redirect needs and nothing secret (a protected link says which kind of
//! protection applies, never the hash). Entries carry a schema version: an entry written by
//! another version is treated as a cache miss, so a deploy never serves a misread record.

use crate::targeting::Rule;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Schema version of [`CacheEntry`]; bump on any incompatible change.
/// Version 2 moved entries to per-domain keys (`link:{domain}:{slug}`).
pub const SCHEMA_VERSION: u32 = 2;

/// The version of entries under [`legacy_cache_key`], answered to workers of before custom
/// domains while a rollout runs (docs/OPERATIONS.md).
pub const LEGACY_SCHEMA_VERSION: u32 = 1;

/// Redis key of a link's cache entry on `domain` (a hostname, or
/// [`crate::domain::DEFAULT_DOMAIN`]), under an optional key prefix (tests isolate by prefix).
pub fn cache_key(prefix: &str, domain: &str, slug: &str) -> String {
    format!("{prefix}link:{domain}:{slug}")
}

/// The key of a default-domain link before custom domains (`link:{slug}`), still invalidated
/// while old workers may read it.
pub fn legacy_cache_key(prefix: &str, slug: &str) -> String {
    format!("{prefix}link:{slug}")
}

/// One `link:{domain}:{slug}` value: a link, or the knowledge that no link has this slug.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CacheEntry {
    pub v: u32,
    #[serde(flatten)]
    pub link: CachedLink,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CachedLink {
    Found(Arc<LinkCacheRecord>),
    /// Negative entry: cached briefly so a slug scan cannot hammer PostgreSQL.
    Missing,
}

impl CacheEntry {
    pub fn found(record: LinkCacheRecord) -> Self {
        Self {
            v: SCHEMA_VERSION,
            link: CachedLink::Found(Arc::new(record)),
        }
    }

    pub fn missing() -> Self {
        Self {
            v: SCHEMA_VERSION,
            link: CachedLink::Missing,
        }
    }

    /// Parses a cached value; `None` for anything unreadable or of another schema version.
    pub fn from_json(raw: &str) -> Option<Self> {
        serde_json::from_str::<Self>(raw)
            .ok()
            .filter(|entry| entry.v == SCHEMA_VERSION)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a cache entry always serializes")
    }

    /// The same entry as a worker of before custom domains reads it (under
    /// [`legacy_cache_key`]): the fields it knows are unchanged, only the version differs.
    pub fn to_legacy_json(&self) -> String {
        let mut value = serde_json::to_value(self).expect("a cache entry always serializes");
        value["v"] = LEGACY_SCHEMA_VERSION.into();
        value.to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkCacheRecord {
    pub link_id: String,
    pub user_id: String,
    pub slug: String,
    pub destination: String,
    #[serde(default)]
    pub utm: Utm,
    pub redirect_type: RedirectType,
    pub protection: Protection,
    pub status: LinkStatus,
    /// Unix seconds; the edge checks it itself so an entry cached before expiry still answers 410.
    pub expires_at: Option<i64>,
    /// Unix milliseconds of the link's last change: the record's version.
    pub version: i64,
    /// Targeting rules, in order ([`crate::targeting`]); left out when there are none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<Rule>,
}

/// UTM parameters a link adds to its destination.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Utm {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

impl Utm {
    /// `(query parameter, value)` for every field that is set, in a fixed order.
    pub fn pairs(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [
            ("utm_source", &self.source),
            ("utm_medium", &self.medium),
            ("utm_campaign", &self.campaign),
            ("utm_term", &self.term),
            ("utm_content", &self.content),
        ]
        .into_iter()
        .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
    }

    pub fn is_empty(&self) -> bool {
        self.pairs().next().is_none()
    }
}

/// HTTP status a link redirects with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u16", into = "u16")]
pub enum RedirectType {
    Permanent,
    #[default]
    Found,
    Temporary,
    PermanentRedirect,
}

impl RedirectType {
    pub fn status(self) -> u16 {
        match self {
            Self::Permanent => 301,
            Self::Found => 302,
            Self::Temporary => 307,
            Self::PermanentRedirect => 308,
        }
    }
}

impl From<RedirectType> for u16 {
    fn from(value: RedirectType) -> Self {
        value.status()
    }
}

impl TryFrom<u16> for RedirectType {
    type Error = String;

    fn try_from(status: u16) -> Result<Self, Self::Error> {
        match status {
            301 => Ok(Self::Permanent),
            302 => Ok(Self::Found),
            307 => Ok(Self::Temporary),
            308 => Ok(Self::PermanentRedirect),
            other => Err(format!(
                "redirect type must be 301, 302, 307 or 308, not {other}"
            )),
        }
    }
}

/// Mirrors the PostgreSQL enum `protection_type`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Protection {
    #[default]
    None,
    Pin,
    Password,
}

/// Mirrors the PostgreSQL enum `link_status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LinkStatus {
    #[default]
    Active,
    Disabled,
    Expired,
}

impl Protection {
    /// The PostgreSQL enum label (and serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Pin => "pin",
            Self::Password => "password",
        }
    }

    /// From a PostgreSQL enum label.
    pub fn from_label(label: &str) -> Option<Self> {
        [Self::None, Self::Pin, Self::Password]
            .into_iter()
            .find(|p| p.as_str() == label)
    }
}

impl LinkStatus {
    /// The PostgreSQL enum label (and serde name).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::Expired => "expired",
        }
    }

    /// From a PostgreSQL enum label.
    pub fn from_label(label: &str) -> Option<Self> {
        [Self::Active, Self::Disabled, Self::Expired]
            .into_iter()
            .find(|s| s.as_str() == label)
    }
}

#[cfg(test)]
pub(crate) fn sample_record() -> LinkCacheRecord {
    LinkCacheRecord {
        link_id: "7b0c2d1e-0000-4000-8000-000000000001".into(),
        user_id: "7b0c2d1e-0000-4000-8000-000000000002".into(),
        slug: "docs".into(),
        destination: "https://example.com/a?x=1".into(),
        utm: Utm::default(),
        redirect_type: RedirectType::Found,
        protection: Protection::None,
        status: LinkStatus::Active,
        expires_at: None,
        version: 1_700_000_000_000,
        rules: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_json() {
        let found = CacheEntry::found(sample_record());
        assert_eq!(CacheEntry::from_json(&found.to_json()), Some(found));
        let missing = CacheEntry::missing();
        assert_eq!(missing.to_json(), r#"{"v":2,"kind":"missing"}"#);
        let legacy: serde_json::Value = serde_json::from_str(&missing.to_legacy_json()).unwrap();
        assert_eq!(legacy, serde_json::json!({"v": 1, "kind": "missing"}));
        assert_eq!(CacheEntry::from_json(&missing.to_json()), Some(missing));
    }

    #[test]
    fn unreadable_or_foreign_entries_are_misses() {
        assert_eq!(CacheEntry::from_json("not json"), None);
        assert_eq!(CacheEntry::from_json(r#"{"v":1,"kind":"missing"}"#), None);
        assert_eq!(CacheEntry::from_json(r#"{"v":3,"kind":"missing"}"#), None);
        assert_eq!(CacheEntry::from_json(r#"{"kind":"missing"}"#), None);
    }

    #[test]
    fn redirect_types_are_statuses() {
        assert_eq!(
            serde_json::to_string(&RedirectType::Temporary).unwrap(),
            "307"
        );
        assert_eq!(
            serde_json::from_str::<RedirectType>("301").unwrap(),
            RedirectType::Permanent
        );
        assert!(serde_json::from_str::<RedirectType>("303").is_err());
    }

    #[test]
    fn enum_labels_match_serde_names() {
        for p in [Protection::None, Protection::Pin, Protection::Password] {
            assert_eq!(
                serde_json::to_string(&p).unwrap(),
                format!("\"{}\"", p.as_str())
            );
            assert_eq!(Protection::from_label(p.as_str()), Some(p));
        }
        for s in [
            LinkStatus::Active,
            LinkStatus::Disabled,
            LinkStatus::Expired,
        ] {
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
            assert_eq!(LinkStatus::from_label(s.as_str()), Some(s));
        }
        assert_eq!(Protection::from_label("pn"), None);
    }

    #[test]
    fn cache_keys_follow_the_spec() {
        assert_eq!(cache_key("", "default", "abc"), "link:default:abc");
        assert_eq!(
            cache_key("t1:", "go.example", "abc"),
            "t1:link:go.example:abc"
        );
        assert_eq!(legacy_cache_key("t1:", "abc"), "t1:link:abc");
    }
}
