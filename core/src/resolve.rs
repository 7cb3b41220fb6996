//! How a cache entry answers a visitor: the one decision both the edge and the origin make.

use crate::link::{CachedLink, LinkStatus, Protection};
use crate::targeting::{self, Visitor};
use crate::utm;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution<'l> {
    Redirect {
        status: u16,
        location: String,
        /// The id of the targeting rule that picked the destination; `None`: the link's own.
        rule: Option<&'l str>,
    },
    /// The link exists but needs a PIN or password first; once unlocked it redirects like
    /// [`Resolution::Redirect`].
    Protected {
        kind: Protection,
        status: u16,
        location: String,
        rule: Option<&'l str>,
    },
    /// The link existed but no longer redirects.
    Gone(GoneReason),
    NotFound,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoneReason {
    Expired,
    Disabled,
}

/// Decides the answer for `link` at `now_unix` (seconds): the destination of the first targeting
/// rule that holds for the visitor, else the link's own, with `visitor_query` merged in. The
/// `visitor`'s facts are read only for an active link with rules.
pub fn resolve<'l>(
    link: &'l CachedLink,
    now_unix: i64,
    visitor_query: Option<&str>,
    visitor: impl FnOnce() -> Visitor,
) -> Resolution<'l> {
    let CachedLink::Found(record) = link else {
        return Resolution::NotFound;
    };
    match record.status {
        LinkStatus::Disabled => return Resolution::Gone(GoneReason::Disabled),
        LinkStatus::Expired => return Resolution::Gone(GoneReason::Expired),
        LinkStatus::Active => {}
    }
    if record.expires_at.is_some_and(|at| at <= now_unix) {
        return Resolution::Gone(GoneReason::Expired);
    }
    let status = record.redirect_type.status();
    let rule = if record.rules.is_empty() {
        None
    } else {
        targeting::choose(&record.rules, &visitor(), now_unix)
    };
    let destination = rule.map_or(record.destination.as_str(), |r| r.destination.as_str());
    let location = utm::merge(destination, &record.utm, visitor_query);
    let rule = rule.map(|r| r.id.as_str());
    match record.protection {
        Protection::None => Resolution::Redirect {
            status,
            location,
            rule,
        },
        kind => Resolution::Protected {
            kind,
            status,
            location,
            rule,
        },
    }
}

/// `Cache-Control` for every redirect: browsers must come back so each click is counted and
/// edits take effect, even for 301/308.
pub const REDIRECT_CACHE_CONTROL: &str = "private, max-age=0";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::{sample_record, RedirectType, Utm};
    use crate::targeting::{Os, Rule};
    use std::sync::Arc;

    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

    fn anyone() -> Visitor {
        Visitor::default()
    }

    #[test]
    fn active_link_redirects_with_its_type_and_utm() {
        let mut record = sample_record();
        record.redirect_type = RedirectType::PermanentRedirect;
        record.utm = Utm {
            medium: Some("email".into()),
            ..Utm::default()
        };
        assert_eq!(
            resolve(
                &CachedLink::Found(Arc::new(record)),
                0,
                Some("ref=a"),
                anyone
            ),
            Resolution::Redirect {
                status: 308,
                location: "https://example.com/a?x=1&utm_medium=email&ref=a".into(),
                rule: None,
            }
        );
    }

    #[test]
    fn expiry_is_checked_against_now() {
        let mut record = sample_record();
        record.expires_at = Some(100);
        let link = CachedLink::Found(Arc::new(record));
        assert!(matches!(
            resolve(&link, 99, None, anyone),
            Resolution::Redirect { .. }
        ));
        assert_eq!(
            resolve(&link, 100, None, anyone),
            Resolution::Gone(GoneReason::Expired)
        );
    }

    #[test]
    fn status_and_protection_and_missing() {
        let mut record = sample_record();
        record.status = LinkStatus::Disabled;
        assert_eq!(
            resolve(
                &CachedLink::Found(Arc::new(record.clone())),
                0,
                None,
                anyone
            ),
            Resolution::Gone(GoneReason::Disabled)
        );
        record.status = LinkStatus::Expired;
        assert_eq!(
            resolve(
                &CachedLink::Found(Arc::new(record.clone())),
                0,
                None,
                anyone
            ),
            Resolution::Gone(GoneReason::Expired)
        );
        record.status = LinkStatus::Active;
        record.protection = Protection::Pin;
        assert_eq!(
            resolve(&CachedLink::Found(Arc::new(record)), 0, None, anyone),
            Resolution::Protected {
                kind: Protection::Pin,
                status: 302,
                location: "https://example.com/a?x=1".into(),
                rule: None,
            }
        );
        assert_eq!(
            resolve(&CachedLink::Missing, 0, None, anyone),
            Resolution::NotFound
        );
    }

    #[test]
    fn a_matching_rule_picks_the_destination_with_utm_and_protection_kept() {
        let mut record = sample_record();
        record.utm = Utm {
            source: Some("qr".into()),
            ..Utm::default()
        };
        record.protection = Protection::Password;
        let mut ios = Rule::new("r-ios", "https://apps.apple.com/app?id=1");
        ios.os = vec![Os::Ios];
        record.rules = vec![ios];
        let link = CachedLink::Found(Arc::new(record));
        let iphone = || Visitor {
            method: "GET".into(),
            user_agent: Some(IPHONE.into()),
            ..Visitor::default()
        };
        assert_eq!(
            resolve(&link, 0, Some("ref=a"), iphone),
            Resolution::Protected {
                kind: Protection::Password,
                status: 302,
                location: "https://apps.apple.com/app?id=1&utm_source=qr&ref=a".into(),
                rule: Some("r-ios"),
            }
        );
        assert!(matches!(
            resolve(&link, 0, None, anyone),
            Resolution::Protected { rule: None, ref location, .. }
                if location == "https://example.com/a?x=1&utm_source=qr"
        ));
    }

    #[test]
    fn the_visitor_is_read_only_for_active_links_with_rules() {
        let untouched = || -> Visitor { panic!("the visitor was read") };
        let mut record = sample_record();
        assert!(matches!(
            resolve(
                &CachedLink::Found(Arc::new(record.clone())),
                0,
                None,
                untouched
            ),
            Resolution::Redirect { rule: None, .. }
        ));
        record.rules = vec![Rule::new("r", "https://example.org/")];
        record.expires_at = Some(10);
        assert_eq!(
            resolve(&CachedLink::Found(Arc::new(record)), 10, None, untouched),
            Resolution::Gone(GoneReason::Expired)
        );
    }
}
