//! A visitor's request, from method and path to the answer: the one flow the edge worker and the
//! origin's own redirect path both run. They only do the I/O around it: the cache or origin
//! lookup between [`start`] and [`answer`], the origin's secret check of a posted form between
//! [`FormPost::secret`] and [`FormPost::checked`], and turning the [`Outcome`] into a response
//! (and, for a redirect, recording its click after the response).

use crate::click;
use crate::link::{CachedLink, LinkCacheRecord, Protection};
use crate::pages::{self, FormError, Page};
use crate::resolve::{resolve, GoneReason, Resolution};
use crate::slug;
use crate::targeting::Visitor;
use crate::unlock::{self, UnlockOutcome};
use std::sync::Arc;

/// `Allow` of every 405 a visitor gets.
pub const ALLOWED_METHODS: &str = "GET, HEAD";

/// The parts of a visitor's request the flow looks at; `H` reads a request header by lower-case
/// name (only protected links and links with targeting rules need any). For
/// [`click::HEADER_COUNTRY`] the edge answers the country of its own metadata first.
pub struct Request<'a, H: Fn(&str) -> Option<String>> {
    pub method: &'a str,
    /// The request path, `/` or `/{slug}`.
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: Option<&'a str>,
    pub header: H,
}

/// How to answer a visitor.
#[derive(Debug, PartialEq)]
pub enum Outcome<'e> {
    /// Redirect; its click is recorded after the response. `set_cookie` unlocks a protected
    /// link after its form.
    Redirect {
        status: u16,
        location: String,
        set_cookie: Option<String>,
        click: Click<'e>,
    },
    /// A product page (its status is [`Page::status`]).
    Page(Page),
    /// The PIN/password form of a protected link, with its status ([`pages::form_status`]).
    Form { status: u16, html: String },
    /// The lockout page of a protected link (`Retry-After: retry_after`).
    Locked { retry_after: i64 },
    /// 405 with `Allow:` [`ALLOWED_METHODS`].
    MethodNotAllowed,
}

/// What the click of a redirect is about.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Click<'e> {
    pub record: &'e Arc<LinkCacheRecord>,
    /// The visit came from a QR code (`?qr=1`).
    pub qr: bool,
    /// The id of the targeting rule that picked the destination; `None`: the link's own.
    pub rule: Option<&'e str>,
}

/// The first step: answer at once, or look `slug` up (cache, then origin) and call [`answer`].
#[derive(Debug, PartialEq)]
pub enum Start<'a> {
    Answer(Outcome<'static>),
    Lookup { slug: &'a str },
}

/// The second step: an answer, or a posted form whose secret the origin must check.
pub enum Step<'e> {
    Answer(Outcome<'e>),
    CheckForm(FormPost<'e>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Read,
    Post,
}

fn method(raw: &str) -> Option<Method> {
    match raw {
        "GET" | "HEAD" => Some(Method::Read),
        "POST" => Some(Method::Post),
        _ => None,
    }
}

/// Method and path, before any lookup: unknown methods, the home page and malformed slugs are
/// answered here.
pub fn start<'a, H: Fn(&str) -> Option<String>>(request: &Request<'a, H>) -> Start<'a> {
    let Some(method) = method(request.method) else {
        return Start::Answer(Outcome::MethodNotAllowed);
    };
    match request.path.strip_prefix('/').unwrap_or(request.path) {
        "" if method == Method::Post => Start::Answer(Outcome::MethodNotAllowed),
        "" => Start::Answer(Outcome::Page(Page::Home)),
        slug if slug::is_resolvable(slug) => Start::Lookup { slug },
        _ => Start::Answer(Outcome::Page(Page::NotFound)),
    }
}

/// The answer for `slug`'s cache entry at `now` (unix seconds). `unlock_key` verifies the unlock
/// cookies of protected links.
pub fn answer<'e, H: Fn(&str) -> Option<String>>(
    request: &Request<'_, H>,
    slug: &str,
    entry: &'e CachedLink,
    now: i64,
    unlock_key: &str,
) -> Step<'e> {
    let post = method(request.method) == Some(Method::Post);
    let (qr, query) = click::take_qr_marker(request.query);
    let record = match entry {
        CachedLink::Found(record) => record,
        CachedLink::Missing => return Step::Answer(Outcome::Page(Page::NotFound)),
    };
    let click = |rule| Click { record, qr, rule };
    let outcome = match resolve(entry, now, query.as_deref(), || visitor(request)) {
        Resolution::Redirect { .. } if post => Outcome::MethodNotAllowed,
        Resolution::Redirect {
            status,
            location,
            rule,
        } => Outcome::Redirect {
            status,
            location,
            set_cookie: None,
            click: click(rule),
        },
        Resolution::Protected {
            kind,
            status,
            location,
            rule,
        } => {
            let click = click(rule);
            // The form posts back to the address the visitor came with, query included, so
            // the visitor's parameters still reach the destination.
            let action = match request.query {
                Some(query) => format!("/{slug}?{query}"),
                None => format!("/{slug}"),
            };
            let form = FormPost {
                kind,
                location,
                action,
                click,
            };
            if post {
                return match form.accepts(request) {
                    Ok(()) => Step::CheckForm(form),
                    Err(page) => Step::Answer(Outcome::Page(page)),
                };
            }
            let cookies = (request.header)("cookie").unwrap_or_default();
            if unlock::cookie_unlocks(unlock_key, record, &cookies, now) {
                Outcome::Redirect {
                    status,
                    location: form.location,
                    set_cookie: None,
                    click,
                }
            } else {
                form.page(None)
            }
        }
        Resolution::Gone(GoneReason::Expired) => Outcome::Page(Page::Expired),
        Resolution::Gone(GoneReason::Disabled) => Outcome::Page(Page::Disabled),
        Resolution::NotFound => Outcome::Page(Page::NotFound),
    };
    Step::Answer(outcome)
}

/// What targeting rules may ask about the visitor, from the request's headers.
fn visitor<H: Fn(&str) -> Option<String>>(request: &Request<'_, H>) -> Visitor {
    let header = &request.header;
    Visitor {
        method: request.method.to_owned(),
        country: header(click::HEADER_COUNTRY),
        user_agent: header("user-agent"),
        accept_language: header("accept-language"),
        purpose: click::PURPOSE_HEADERS.iter().find_map(|name| header(name)),
    }
}

/// A PIN/password form posted to a protected link.
pub struct FormPost<'e> {
    kind: Protection,
    location: String,
    action: String,
    click: Click<'e>,
}

impl<'e> FormPost<'e> {
    /// Only `application/x-www-form-urlencoded` bodies of a sane declared size are read.
    fn accepts<H: Fn(&str) -> Option<String>>(&self, request: &Request<'_, H>) -> Result<(), Page> {
        let is_form = (request.header)("content-type")
            .is_some_and(|t| t.starts_with("application/x-www-form-urlencoded"));
        if !is_form {
            return Err(Page::UnsupportedForm);
        }
        let declared = (request.header)("content-length").and_then(|n| n.parse::<usize>().ok());
        if declared.is_some_and(|n| n > unlock::MAX_FORM_BYTES) {
            return Err(Page::FormTooLarge);
        }
        Ok(())
    }

    /// The protected link's slug.
    pub fn slug(&self) -> &'e str {
        &self.click.record.slug
    }

    fn page(&self, error: Option<FormError>) -> Outcome<'e> {
        Outcome::Form {
            status: pages::form_status(error),
            html: pages::protection_form(self.kind, &self.action, error),
        }
    }

    /// The secret in the form `body`, for the origin to check; else the answer.
    pub fn secret(&self, body: &[u8]) -> Result<String, Outcome<'e>> {
        if body.len() > unlock::MAX_FORM_BYTES {
            return Err(Outcome::Page(Page::FormTooLarge));
        }
        unlock::secret_from_form(&String::from_utf8_lossy(body), self.kind)
            .ok_or_else(|| self.page(Some(FormError::Empty)))
    }

    /// The answer once the origin has checked the secret. A correct one redirects with 303, so
    /// the browser GETs the destination and never re-posts the secret there (307/308 would).
    pub fn checked(self, outcome: UnlockOutcome) -> Outcome<'e> {
        match outcome {
            UnlockOutcome::Unlocked { cookie, max_age } => Outcome::Redirect {
                status: 303,
                set_cookie: Some(unlock::set_cookie(
                    &self.click.record.slug,
                    &cookie,
                    max_age,
                )),
                location: self.location,
                click: self.click,
            },
            UnlockOutcome::Wrong { attempts_left } => {
                self.page(Some(FormError::Wrong { attempts_left }))
            }
            UnlockOutcome::Locked { retry_after } => Outcome::Locked { retry_after },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::{sample_record, LinkStatus};
    use crate::targeting::{Os, Rule};

    const KEY: &str = "unlock-key";

    fn headers(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    fn request<'a, H: Fn(&str) -> Option<String>>(
        method: &'a str,
        path: &'a str,
        query: Option<&'a str>,
        header: H,
    ) -> Request<'a, H> {
        Request {
            method,
            path,
            query,
            header,
        }
    }

    fn protected(kind: Protection) -> CachedLink {
        let mut record = sample_record();
        record.protection = kind;
        CachedLink::Found(Arc::new(record))
    }

    #[test]
    fn methods_home_and_malformed_slugs_are_answered_before_any_lookup() {
        let none = headers(&[]);
        let start_of = |method, path| start(&request(method, path, None, &none));
        assert_eq!(
            start_of("DELETE", "/abc"),
            Start::Answer(Outcome::MethodNotAllowed)
        );
        assert_eq!(
            start_of("POST", "/"),
            Start::Answer(Outcome::MethodNotAllowed)
        );
        assert_eq!(
            start_of("GET", "/"),
            Start::Answer(Outcome::Page(Page::Home))
        );
        assert_eq!(
            start_of("HEAD", "/a%20b"),
            Start::Answer(Outcome::Page(Page::NotFound))
        );
        assert_eq!(start_of("GET", "/abc"), Start::Lookup { slug: "abc" });
        assert_eq!(start_of("POST", "/abc"), Start::Lookup { slug: "abc" });
    }

    #[test]
    fn a_plain_link_redirects_with_its_click_and_refuses_posts() {
        let none = headers(&[]);
        let entry = CachedLink::Found(Arc::new(sample_record()));
        let get = request("GET", "/abc", Some("qr=1&ref=a"), &none);
        let Step::Answer(Outcome::Redirect {
            status,
            location,
            set_cookie,
            click,
        }) = answer(&get, "abc", &entry, 0, KEY)
        else {
            panic!("a redirect");
        };
        assert_eq!(
            (status, location.as_str(), set_cookie),
            (302, "https://example.com/a?x=1&ref=a", None)
        );
        assert!(click.qr, "the QR marker is taken out and recorded");
        let post = request("POST", "/abc", None, &none);
        assert!(matches!(
            answer(&post, "abc", &entry, 0, KEY),
            Step::Answer(Outcome::MethodNotAllowed)
        ));
    }

    #[test]
    fn gone_and_missing_links_get_their_pages() {
        let none = headers(&[]);
        let get = request("GET", "/abc", None, &none);
        let mut record = sample_record();
        record.status = LinkStatus::Disabled;
        let disabled = CachedLink::Found(Arc::new(record));
        assert!(matches!(
            answer(&get, "abc", &disabled, 0, KEY),
            Step::Answer(Outcome::Page(Page::Disabled))
        ));
        assert!(matches!(
            answer(&get, "abc", &CachedLink::Missing, 0, KEY),
            Step::Answer(Outcome::Page(Page::NotFound))
        ));
    }

    #[test]
    fn a_protected_link_shows_its_form_posting_back_to_the_visited_address() {
        let none = headers(&[]);
        let get = request("GET", "/abc", Some("ref=a"), &none);
        let entry = protected(Protection::Pin);
        let Step::Answer(Outcome::Form { status, html }) = answer(&get, "abc", &entry, 0, KEY)
        else {
            panic!("the form");
        };
        assert_eq!(status, 403);
        assert!(html.contains("action=\"/abc?ref=a\""), "{html}");
    }

    #[test]
    fn a_valid_unlock_cookie_redirects_without_the_form() {
        let entry = protected(Protection::Password);
        let CachedLink::Found(record) = &entry else {
            unreachable!()
        };
        let cookie = format!(
            "{}={}",
            unlock::cookie_name(&record.slug),
            unlock::sign(KEY, record.as_ref().into(), 100)
        );
        let header = move |name: &str| (name == "cookie").then(|| cookie.clone());
        let get = request("GET", "/abc", None, &header);
        assert!(matches!(
            answer(&get, &record.slug, &entry, 50, KEY),
            Step::Answer(Outcome::Redirect { status: 302, .. })
        ));
        assert!(matches!(
            answer(&get, &record.slug, &entry, 101, KEY),
            Step::Answer(Outcome::Form { .. })
        ));
    }

    #[test]
    fn posted_forms_are_checked_for_type_and_size_then_read() {
        let entry = protected(Protection::Pin);
        let json = headers(&[("content-type", "application/json")]);
        let post = request("POST", "/abc", None, &json);
        assert!(matches!(
            answer(&post, "abc", &entry, 0, KEY),
            Step::Answer(Outcome::Page(Page::UnsupportedForm))
        ));
        let huge = headers(&[
            ("content-type", "application/x-www-form-urlencoded"),
            ("content-length", "999999"),
        ]);
        let post = request("POST", "/abc", None, &huge);
        assert!(matches!(
            answer(&post, "abc", &entry, 0, KEY),
            Step::Answer(Outcome::Page(Page::FormTooLarge))
        ));
        let form = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        let post = request("POST", "/abc", None, &form);
        let Step::CheckForm(form) = answer(&post, "abc", &entry, 0, KEY) else {
            panic!("a form to check");
        };
        assert_eq!(form.secret(b"secret=4821"), Ok("4821".to_owned()));
        assert!(matches!(
            form.secret(b"secret="),
            Err(Outcome::Form { status: 400, .. })
        ));
        assert_eq!(
            form.secret(&[b'a'; unlock::MAX_FORM_BYTES + 1]),
            Err(Outcome::Page(Page::FormTooLarge))
        );
    }

    const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";

    fn targeted(protection: Protection) -> CachedLink {
        let mut record = sample_record();
        record.protection = protection;
        let mut ios = Rule::new("r-ios", "https://apps.apple.com/app");
        ios.os = vec![Os::Ios];
        let mut german = Rule::new("r-de", "https://example.de/");
        german.countries = vec!["DE".into()];
        record.rules = vec![ios, german];
        CachedLink::Found(Arc::new(record))
    }

    #[test]
    fn rules_pick_the_destination_from_the_headers_and_name_themselves_in_the_click() {
        let entry = targeted(Protection::None);
        let redirect = |pairs| {
            let get = request("GET", "/abc", Some("qr=1"), headers(pairs));
            match answer(&get, "abc", &entry, 0, KEY) {
                Step::Answer(Outcome::Redirect {
                    location, click, ..
                }) => (location, click.rule.map(str::to_owned), click.qr),
                _ => panic!("a redirect"),
            }
        };
        assert_eq!(
            redirect(&[("user-agent", IPHONE), ("cf-ipcountry", "DE")]),
            (
                "https://apps.apple.com/app".into(),
                Some("r-ios".into()),
                true
            )
        );
        assert_eq!(
            redirect(&[("cf-ipcountry", "DE")]),
            ("https://example.de/".into(), Some("r-de".into()), true)
        );
        assert_eq!(
            redirect(&[("cf-ipcountry", "FR")]),
            ("https://example.com/a?x=1".into(), None, true)
        );
    }

    #[test]
    fn a_protected_link_with_rules_unlocks_to_the_rule_destination() {
        let entry = targeted(Protection::Pin);
        let form = headers(&[
            ("content-type", "application/x-www-form-urlencoded"),
            ("cf-ipcountry", "DE"),
        ]);
        let post = request("POST", "/abc", None, &form);
        let Step::CheckForm(form) = answer(&post, "abc", &entry, 0, KEY) else {
            panic!("a form to check");
        };
        let Outcome::Redirect {
            location, click, ..
        } = form.checked(UnlockOutcome::Unlocked {
            cookie: "c".into(),
            max_age: 60,
        })
        else {
            panic!("a redirect");
        };
        assert_eq!(
            (location.as_str(), click.rule),
            ("https://example.de/", Some("r-de"))
        );
    }

    #[test]
    fn the_checked_secret_decides_the_answer() {
        let entry = protected(Protection::Pin);
        let form = headers(&[("content-type", "application/x-www-form-urlencoded")]);
        let post = request("POST", "/abc", None, &form);
        let check = |outcome| match answer(&post, "abc", &entry, 0, KEY) {
            Step::CheckForm(form) => form.checked(outcome),
            Step::Answer(_) => panic!("a form to check"),
        };
        let Outcome::Redirect {
            status, set_cookie, ..
        } = check(UnlockOutcome::Unlocked {
            cookie: "c".into(),
            max_age: 60,
        })
        else {
            panic!("a redirect");
        };
        assert_eq!(status, 303);
        assert!(set_cookie.is_some_and(|c| c.contains("Max-Age=60")));
        assert!(matches!(
            check(UnlockOutcome::Wrong { attempts_left: 2 }),
            Outcome::Form { status: 403, .. }
        ));
        assert_eq!(
            check(UnlockOutcome::Locked { retry_after: 9 }),
            Outcome::Locked { retry_after: 9 }
        );
    }
}
