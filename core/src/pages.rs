//! The HTML pages visitors see instead of a redirect. Self-contained (inline CSS, no scripts, no
//! third-party assets) so they render the same from the edge and the origin.

use crate::link::Protection;
use crate::unlock;

/// A page and the status it is served with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Home,
    NotFound,
    Expired,
    Disabled,
    /// Too many wrong PINs or passwords from this address (sent with `Retry-After`).
    TooManyAttempts,
    /// A POST to a protected link that is not a form.
    UnsupportedForm,
    /// A POST body larger than [`unlock::MAX_FORM_BYTES`].
    FormTooLarge,
    /// The origin could not be reached to resolve an uncached link.
    OriginUnavailable,
    /// Neither the cache nor the origin answered.
    Unavailable,
    /// A custom domain that is not (or no longer) verified, or not known here at all.
    DomainUnavailable,
}

impl Page {
    pub fn status(self) -> u16 {
        match self {
            Self::Home => 200,
            Self::NotFound | Self::DomainUnavailable => 404,
            Self::Expired | Self::Disabled => 410,
            Self::TooManyAttempts => 429,
            Self::UnsupportedForm => 415,
            Self::FormTooLarge => 413,
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
            Self::TooManyAttempts => (
                "Too many attempts",
                "Too many wrong entries came from your network for this link. \
                 Please wait a few minutes before trying again.",
            ),
            Self::UnsupportedForm => (
                "Unsupported request",
                "This address accepts the form on its own page only. Open the link and use the form.",
            ),
            Self::FormTooLarge => (
                "Request too large",
                "What was sent is far larger than a PIN or password. Open the link and try again.",
            ),
            Self::OriginUnavailable => (
                "Link service unreachable",
                "We could not look this link up just now. Please try again in a moment.",
            ),
            Self::Unavailable => (
                "Temporarily unavailable",
                "Our link service is having trouble. Please try again in a moment.",
            ),
            Self::DomainUnavailable => (
                "This domain serves no links",
                "This domain is not connected to a verified account of this link service, so \
                 none of its links work. If it is your domain, check its verification (the \
                 _smo1-challenge TXT record) in your dashboard.",
            ),
        }
    }

    /// Full HTML document for this page.
    pub fn html(self) -> String {
        let (title, body) = self.text();
        document(title, self.status(), &format!("<p>{body}</p>"))
    }
}

/// What went wrong with the last submission of a protection form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormError {
    /// Submitted without a value.
    Empty,
    /// Wrong secret; this many attempts remain.
    Wrong { attempts_left: u32 },
}

/// The page asking for a link's PIN or password. Served with [`form_status`]. The form posts back
/// to the same address (`action`, the path and query the visitor came with), so the visitor's
/// query parameters still reach the destination. Works without JavaScript; the error is tied to
/// the field (`aria-describedby`) and announced (`role="alert"`).
pub fn protection_form(kind: Protection, action: &str, error: Option<FormError>) -> String {
    let (noun, input) = match kind {
        Protection::Pin => (
            "PIN",
            "inputmode=\"numeric\" pattern=\"[0-9]*\" autocomplete=\"off\"",
        ),
        Protection::Password | Protection::None => {
            ("password", "autocomplete=\"current-password\"")
        }
    };
    let message = error.map(|e| match e {
        FormError::Empty => format!("Enter the {noun} to continue."),
        FormError::Wrong { attempts_left: 0 } => {
            format!("That {noun} is not right. No attempts left for now: try again in 15 minutes.")
        }
        FormError::Wrong { attempts_left: 1 } => {
            format!("That {noun} is not right. 1 attempt left.")
        }
        FormError::Wrong { attempts_left } => {
            format!("That {noun} is not right. {attempts_left} attempts left.")
        }
    });
    let (alert, invalid) = match &message {
        Some(m) => (
            format!("<p id=\"secret-error\" class=\"error\" role=\"alert\">{m}</p>"),
            " aria-invalid=\"true\" aria-describedby=\"secret-error\"",
        ),
        None => (String::new(), ""),
    };
    let label = match kind {
        Protection::Pin => "PIN",
        _ => "Password",
    };
    let field = unlock::FORM_FIELD;
    let body = format!(
        "<p>The owner of this link asks for a {noun} before it opens.</p>\
<form method=\"post\" action=\"{action}\">{alert}\
<label for=\"secret\">{label}</label>\
<input id=\"secret\" name=\"{field}\" type=\"password\" {input} required autofocus{invalid}>\
<button type=\"submit\">Open link</button></form>",
        action = escape_html(action),
    );
    document("This link is protected", form_status(error), &body)
}

/// Status of the protection form: 403 until unlocked, 400 for an empty submission.
pub fn form_status(error: Option<FormError>) -> u16 {
    match error {
        Some(FormError::Empty) => 400,
        _ => 403,
    }
}

/// Escapes text for HTML content and double-quoted attributes.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The page frame every page shares; `body` is trusted HTML.
fn document(title: &str, status: u16, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><title>{title}</title><style>\
body{{margin:0;min-height:100vh;display:grid;place-items:center;\
font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;background:#f7f7f8;color:#1f2328}}\
main{{max-width:32rem;padding:2rem;text-align:center}}\
.code{{font-size:.875rem;color:#6e7781;letter-spacing:.08em}}h1{{font-size:1.5rem;margin:.5rem 0}}\
form{{display:grid;gap:.5rem;text-align:left;margin-top:1rem}}label{{font-weight:600}}\
input,button{{font:inherit;padding:.75rem;border-radius:.5rem;border:1px solid #8c959f;min-height:44px}}\
button{{background:#1f6feb;color:#fff;border-color:#1f6feb;cursor:pointer}}\
input:focus,button:focus{{outline:3px solid #54aeff;outline-offset:2px}}.error{{color:#cf222e;margin:0}}\
@media (prefers-color-scheme:dark){{body{{background:#0d1117;color:#e6edf3}}.error{{color:#ff7b72}}}}\
</style></head><body><main><p class=\"code\">{status}</p><h1>{title}</h1>{body}</main></body></html>\n"
    )
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
        let domain = Page::DomainUnavailable.html();
        assert!(domain.contains("<title>This domain serves no links</title>"));
        assert!(domain.contains("_smo1-challenge TXT record"));
        assert_eq!(Page::DomainUnavailable.status(), 404);
    }

    #[test]
    fn the_form_labels_its_field_and_posts_back_to_the_same_address() {
        let html = protection_form(Protection::Pin, "/docs?a=1&b=\"x\"", None);
        assert!(html.contains("<title>This link is protected</title>"));
        assert!(html.contains("action=\"/docs?a=1&amp;b=&quot;x&quot;\""));
        assert!(html.contains("<label for=\"secret\">PIN</label>"));
        assert!(
            html.contains("id=\"secret\" name=\"secret\" type=\"password\" inputmode=\"numeric\"")
        );
        assert!(!html.contains("role=\"alert\""));
        assert!(!html.contains("<script"));
        assert_eq!(form_status(None), 403);
    }

    #[test]
    fn form_errors_are_announced_and_tied_to_the_field() {
        let html = protection_form(
            Protection::Password,
            "/docs",
            Some(FormError::Wrong { attempts_left: 1 }),
        );
        assert!(html.contains("<label for=\"secret\">Password</label>"));
        assert!(html.contains("role=\"alert\">That password is not right. 1 attempt left.</p>"));
        assert!(html.contains("aria-invalid=\"true\" aria-describedby=\"secret-error\""));
        let empty = protection_form(Protection::Pin, "/docs", Some(FormError::Empty));
        assert!(empty.contains("Enter the PIN to continue."));
        assert_eq!(form_status(Some(FormError::Empty)), 400);
    }
}
