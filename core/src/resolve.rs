//! How a cache entry answers a visitor: the one decision both the edge and the origin make.

use crate::link::{CachedLink, LinkStatus, Protection};
use crate::utm;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    Redirect {
        status: u16,
        location: String,
    },
    /// The link exists but needs a PIN or password first; once unlocked it redirects like
    /// [`Resolution::Redirect`].
    Protected {
        kind: Protection,
        status: u16,
        location: String,
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

/// Decides the answer for `link` at `now_unix` (seconds), merging `visitor_query` into the target.
pub fn resolve(link: &CachedLink, now_unix: i64, visitor_query: Option<&str>) -> Resolution {
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
    let location = utm::merge(&record.destination, &record.utm, visitor_query);
    match record.protection {
        Protection::None => Resolution::Redirect { status, location },
        kind => Resolution::Protected {
            kind,
            status,
            location,
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

    #[test]
    fn active_link_redirects_with_its_type_and_utm() {
        let mut record = sample_record();
        record.redirect_type = RedirectType::PermanentRedirect;
        record.utm = Utm {
            medium: Some("email".into()),
            ..Utm::default()
        };
        assert_eq!(
            resolve(&CachedLink::Found(Box::new(record)), 0, Some("ref=a")),
            Resolution::Redirect {
                status: 308,
                location: "https://example.com/a?x=1&utm_medium=email&ref=a".into()
            }
        );
    }

    #[test]
    fn expiry_is_checked_against_now() {
        let mut record = sample_record();
        record.expires_at = Some(100);
        let link = CachedLink::Found(Box::new(record));
        assert!(matches!(
            resolve(&link, 99, None),
            Resolution::Redirect { .. }
        ));
        assert_eq!(
            resolve(&link, 100, None),
            Resolution::Gone(GoneReason::Expired)
        );
    }

    #[test]
    fn status_and_protection_and_missing() {
        let mut record = sample_record();
        record.status = LinkStatus::Disabled;
        assert_eq!(
            resolve(&CachedLink::Found(Box::new(record.clone())), 0, None),
            Resolution::Gone(GoneReason::Disabled)
        );
        record.status = LinkStatus::Expired;
        assert_eq!(
            resolve(&CachedLink::Found(Box::new(record.clone())), 0, None),
            Resolution::Gone(GoneReason::Expired)
        );
        record.status = LinkStatus::Active;
        record.protection = Protection::Pin;
        assert_eq!(
            resolve(&CachedLink::Found(Box::new(record)), 0, None),
            Resolution::Protected {
                kind: Protection::Pin,
                status: 302,
                location: "https://example.com/a?x=1".into()
            }
        );
        assert_eq!(resolve(&CachedLink::Missing, 0, None), Resolution::NotFound);
    }
}
