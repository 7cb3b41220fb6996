//! The HTML pages visitors see instead of a redirect. Self-contained (inline CSS, no scripts, no
//! third-party assets) so they render the same from the edge and the origin.

/// A page and the status it is served with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Home,
    NotFound,
    Expired,
    Disabled,
    Protected,
    /// The origin could not be reached to resolve an uncached link.
    OriginUnavailable,
    /// Neither the cache nor the origin answered.
    Unavailable,
}

impl Page {
    pub fn status(self) -> u16 {
        match self {
            Self::Home => 200,
            Self::NotFound => 404,
            Self::Expired | Self::Disabled => 410,
            Self::Protected => 403,
            Self::OriginUnavailable => 502,
            Self::Unavailable => 503,
        }
    }

    fn text(self) -> (&'static str, &'static str) {
        match self {
            Self::Home => (
                "SMO1 link service",
                "This domain serves short links. Add a slug to the address to follow one.",
            ),
            Self::NotFound => (
                "Link not found",
                "There is no link at this address. Check the spelling, or ask whoever shared it.",
            ),
            Self::Expired => (
                "This link has expired",
                "The owner of this link set it to stop working after a date that has passed.",
            ),
            Self::Disabled => (
                "This link is disabled",
                "The owner of this link has turned it off.",
            ),
            Self::Protected => (
                "This link is protected",
                "This link needs a PIN or password, which this server cannot ask for yet.",
            ),
            Self::OriginUnavailable => (
                "Link service unreachable",
                "We could not look this link up just now. Please try again in a moment.",
            ),
            Self::Unavailable => (
                "Temporarily unavailable",
                "Our link service is having trouble. Please try again in a moment.",
            ),
        }
    }

    /// Full HTML document for this page.
    pub fn html(self) -> String {
        let (title, body) = self.text();
        let status = self.status();
        format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><title>{title}</title><style>\
body{{margin:0;min-height:100vh;display:grid;place-items:center;\
font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f7f7f8;color:#1f2328}}\
main{{max-width:32rem;padding:2rem;text-align:center}}\
.code{{font-size:.875rem;color:#6e7781;letter-spacing:.08em}}h1{{font-size:1.5rem;margin:.5rem 0}}\
@media (prefers-color-scheme:dark){{body{{background:#0d1117;color:#e6edf3}}}}\
</style></head><body><main><p class=\"code\">{status}</p><h1>{title}</h1><p>{body}</p></main></body></html>\n"
        )
    }
}

/// `Content-Type` of every page.
pub const CONTENT_TYPE: &str = "text/html; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_carry_their_status_and_title() {
        let html = Page::Expired.html();
        assert!(html.starts_with("<!doctype html>"));
        assert!(html.contains("<title>This link has expired</title>"));
        assert!(html.contains(">410<"));
        assert_eq!(Page::OriginUnavailable.status(), 502);
        assert_eq!(Page::Unavailable.status(), 503);
    }
}
