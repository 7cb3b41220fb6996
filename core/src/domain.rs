//! Custom domains as the edge and the origin both see them: which domain a request's `Host`
//! names ([`site`]), the hostname rules ([`normalise_hostname`]), the DNS name of the TXT
//! challenge, and the cached state of a domain (`domain:{host}` in Redis, [`DomainEntry`]).
//!
//! The default domain is every host of `SHORT_DOMAINS` (and any IP address): its links keep the
//! slugs they always had. A custom domain serves only its own links, and only while verified;
//! otherwise it answers [`Page::DomainUnavailable`](crate::pages::Page::DomainUnavailable).

use crate::destination::normalise_host;
use crate::pages::Page;
use crate::visit::Outcome;
use serde::{Deserialize, Serialize};
use url::Host;

/// The domain segment of the cache key of the default domain's links (`link:default:{slug}`);
/// never a hostname, which always has a dot.
pub const DEFAULT_DOMAIN: &str = "default";

/// The label under a domain that carries its verification token: `_smo1-challenge.<domain>`.
pub const CHALLENGE_LABEL: &str = "_smo1-challenge";

/// Longest hostname DNS allows (in its dotted form).
pub const MAX_HOSTNAME_LEN: usize = 253;

/// Schema version of [`DomainEntry`]; bump on any incompatible change.
pub const DOMAIN_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostnameError {
    Empty,
    TooLong,
    /// Not a DNS name: characters other than letters, digits and hyphens, an empty label, a
    /// label longer than 63 characters or starting or ending with a hyphen.
    Invalid,
    /// One label only (`localhost`): a custom domain is a name in a public zone.
    SingleLabel,
    IpAddress,
}

impl std::fmt::Display for HostnameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Empty => "hostname is empty",
            Self::TooLong => "hostname is longer than 253 characters",
            Self::Invalid => "hostname is not a valid DNS name",
            Self::SingleLabel => "hostname must have at least two labels (links.example.com)",
            Self::IpAddress => "hostname must be a DNS name, not an IP address",
        })
    }
}

impl std::error::Error for HostnameError {}

/// A custom domain's hostname as stored and compared: lower case, without the trailing dot,
/// internationalised names in their ASCII (IDNA) form (`Bücher.Example.` → `xn--bcher-kva.example`).
pub fn normalise_hostname(raw: &str) -> Result<String, HostnameError> {
    let trimmed = raw.trim();
    let trimmed = trimmed.strip_suffix('.').unwrap_or(trimmed);
    if trimmed.is_empty() {
        return Err(HostnameError::Empty);
    }
    let ascii = match Host::parse(trimmed).map_err(|_| HostnameError::Invalid)? {
        Host::Domain(domain) => domain,
        Host::Ipv4(_) | Host::Ipv6(_) => return Err(HostnameError::IpAddress),
    };
    if ascii.len() > MAX_HOSTNAME_LEN {
        return Err(HostnameError::TooLong);
    }
    let labels: Vec<&str> = ascii.split('.').collect();
    let label_ok = |label: &&str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !labels.iter().all(label_ok) {
        return Err(HostnameError::Invalid);
    }
    if labels.len() < 2 {
        return Err(HostnameError::SingleLabel);
    }
    Ok(ascii)
}

/// The DNS name whose TXT record must carry a domain's token.
pub fn challenge_name(hostname: &str) -> String {
    format!("{CHALLENGE_LABEL}.{hostname}")
}

/// The domain a request is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Site {
    /// The default domain: today's slugs.
    Default,
    /// A custom domain, by its normalised hostname.
    Custom(String),
}

impl Site {
    /// The domain segment of this site's cache keys.
    pub fn cache_name(&self) -> &str {
        match self {
            Self::Default => DEFAULT_DOMAIN,
            Self::Custom(host) => host,
        }
    }
}

/// Which domain a request with this `Host` header is for. No header, an IP address, an empty
/// `default_hosts` (a deployment that names none serves only the default domain) or one of
/// `default_hosts` (compared case- and trailing-dot-insensitively, port ignored): the default
/// domain. Anything else is a custom domain.
pub fn site(host_header: Option<&str>, default_hosts: &[String]) -> Site {
    let Some(header) = host_header.map(str::trim).filter(|h| !h.is_empty()) else {
        return Site::Default;
    };
    if header.starts_with('[') || default_hosts.is_empty() {
        return Site::Default;
    }
    let host = normalise_host(header.rsplit_once(':').map_or(header, |(host, _port)| host));
    if host.parse::<std::net::IpAddr>().is_ok()
        || default_hosts.iter().any(|own| normalise_host(own) == host)
    {
        return Site::Default;
    }
    Site::Custom(host)
}

/// Redis key of a custom domain's cache entry, under an optional key prefix.
pub fn cache_key(prefix: &str, hostname: &str) -> String {
    format!("{prefix}domain:{hostname}")
}

/// One `domain:{host}` value: a verified domain's settings, or the knowledge that the host
/// serves nothing (unknown, pending, failed or removed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainEntry {
    pub v: u32,
    #[serde(flatten)]
    pub state: DomainState,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum DomainState {
    Serving(DomainSettings),
    Unserved,
}

/// Where a verified domain sends visitors who match no link.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainSettings {
    /// Target of the domain's root (`/`); `None`: the home page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root_redirect: Option<String>,
    /// Target of unknown or malformed slugs; `None`: the not-found page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_found_redirect: Option<String>,
}

/// The status of a domain's root and not-found redirects: temporary, so a changed setting
/// takes effect for browsers that saw the old one.
pub const FALLBACK_REDIRECT_STATUS: u16 = 302;

impl DomainSettings {
    /// Where the domain sends a visitor instead of the flow's `outcome`: the root target
    /// instead of the home page, the not-found target instead of the not-found page (unknown or
    /// malformed slugs). Sent with [`FALLBACK_REDIRECT_STATUS`]; no click is recorded.
    pub fn redirect_instead(&self, outcome: &Outcome<'_>) -> Option<&str> {
        match outcome {
            Outcome::Page(Page::Home) => self.root_redirect.as_deref(),
            Outcome::Page(Page::NotFound) => self.not_found_redirect.as_deref(),
            _ => None,
        }
    }
}

impl DomainEntry {
    pub fn serving(settings: DomainSettings) -> Self {
        Self {
            v: DOMAIN_SCHEMA_VERSION,
            state: DomainState::Serving(settings),
        }
    }

    pub fn unserved() -> Self {
        Self {
            v: DOMAIN_SCHEMA_VERSION,
            state: DomainState::Unserved,
        }
    }

    /// Parses a cached value; `None` for anything unreadable or of another schema version.
    pub fn from_json(raw: &str) -> Option<Self> {
        serde_json::from_str::<Self>(raw)
            .ok()
            .filter(|entry| entry.v == DOMAIN_SCHEMA_VERSION)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a domain entry always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_are_lower_case_ascii_without_the_trailing_dot() {
        assert_eq!(
            normalise_hostname(" Links.Example.COM. ").as_deref(),
            Ok("links.example.com")
        );
        assert_eq!(
            normalise_hostname("Bücher.example").as_deref(),
            Ok("xn--bcher-kva.example")
        );
        let cases = [
            ("", HostnameError::Empty),
            (".", HostnameError::Empty),
            ("localhost", HostnameError::SingleLabel),
            ("127.0.0.1", HostnameError::IpAddress),
            ("[::1]", HostnameError::IpAddress),
            ("under_score.example", HostnameError::Invalid),
            ("-lead.example", HostnameError::Invalid),
            ("a..example", HostnameError::Invalid),
            ("https://x.example", HostnameError::Invalid),
            ("x.example/path", HostnameError::Invalid),
            ("x.example:8080", HostnameError::Invalid),
        ];
        for (raw, expected) in cases {
            assert_eq!(normalise_hostname(raw), Err(expected), "{raw:?}");
        }
        let long = format!("{}.example", vec!["a".repeat(63); 4].join("."));
        assert_eq!(normalise_hostname(&long), Err(HostnameError::TooLong));
        let label = format!("{}.example", "a".repeat(64));
        assert_eq!(normalise_hostname(&label), Err(HostnameError::Invalid));
    }

    #[test]
    fn the_host_header_picks_the_domain() {
        let defaults = vec!["sho.rt".to_owned(), "Go.Example.".to_owned()];
        let custom = |h: &str| Site::Custom(h.to_owned());
        assert_eq!(site(None, &defaults), Site::Default);
        assert_eq!(site(Some("SHO.RT."), &defaults), Site::Default);
        assert_eq!(site(Some("go.example:8443"), &defaults), Site::Default);
        assert_eq!(site(Some("127.0.0.1:8787"), &defaults), Site::Default);
        assert_eq!(site(Some("[::1]:8787"), &defaults), Site::Default);
        assert_eq!(
            site(Some("Links.Brand.example.:443"), &defaults),
            custom("links.brand.example")
        );
        assert_eq!(site(Some("links.brand.example"), &[]), Site::Default);
        assert_eq!(Site::Default.cache_name(), "default");
        assert_eq!(custom("a.example").cache_name(), "a.example");
    }

    #[test]
    fn entries_round_trip_and_foreign_ones_are_misses() {
        let serving = DomainEntry::serving(DomainSettings {
            root_redirect: Some("https://brand.example/".into()),
            not_found_redirect: None,
        });
        assert_eq!(
            serving.to_json(),
            r#"{"v":1,"kind":"serving","root_redirect":"https://brand.example/"}"#
        );
        assert_eq!(DomainEntry::from_json(&serving.to_json()), Some(serving));
        let unserved = DomainEntry::unserved();
        assert_eq!(unserved.to_json(), r#"{"v":1,"kind":"unserved"}"#);
        assert_eq!(DomainEntry::from_json(&unserved.to_json()), Some(unserved));
        assert_eq!(DomainEntry::from_json(r#"{"v":2,"kind":"unserved"}"#), None);
        assert_eq!(DomainEntry::from_json("nope"), None);
        assert_eq!(cache_key("t:", "a.example"), "t:domain:a.example");
        assert_eq!(challenge_name("a.example"), "_smo1-challenge.a.example");
    }

    #[test]
    fn settings_replace_the_home_and_not_found_pages_only() {
        let settings = DomainSettings {
            root_redirect: Some("https://brand.example/".into()),
            not_found_redirect: Some("https://brand.example/404".into()),
        };
        let page = |p| Outcome::Page(p);
        assert_eq!(
            settings.redirect_instead(&page(Page::Home)),
            Some("https://brand.example/")
        );
        assert_eq!(
            settings.redirect_instead(&page(Page::NotFound)),
            Some("https://brand.example/404")
        );
        assert_eq!(settings.redirect_instead(&page(Page::Disabled)), None);
        assert_eq!(settings.redirect_instead(&Outcome::MethodNotAllowed), None);
        assert_eq!(
            DomainSettings::default().redirect_instead(&page(Page::Home)),
            None
        );
    }
}
