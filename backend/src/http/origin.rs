//! CSRF protection for `/v1`: a strict `Origin` check on every state-changing request, before
//! authentication reads a credential or a handler reads a body.
//!
//! Browsers send `Origin` with every POST, PUT, PATCH and DELETE, same-site or not, and a page
//! cannot forge it. So a state-changing request is refused with 403 `forbidden_origin` when
//! - its `Origin` is neither the request's own origin (`http://` + its `Host`: the origin speaks
//!   plain HTTP; behind a TLS proxy the public origin is `PUBLIC_URL`) nor the origin of
//!   `PUBLIC_URL`, compared as scheme, host and port; or
//! - it has no `Origin` but carries the session cookie and no bearer key: only a browser holds
//!   the cookie, and a browser would have sent `Origin`.
//!
//! Integrations calling with `Authorization: Bearer` send no `Origin` and are not affected; a
//! bearer key is never sent by a browser on its own, so it needs no CSRF protection. Safe
//! methods (GET, HEAD, OPTIONS) change nothing and pass. The session cookie's `SameSite=Lax`
//! is a second, independent guard.

use super::auth::{bearer_token, session_cookie};
use crate::error::AppError;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::Response;

/// Middleware on `/v1` (outermost): refuses cross-site state-changing requests.
pub async fn check(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    if changes_state(request.method()) {
        verify(request.headers(), &state.config.sign_in.public_url)?;
    }
    Ok(next.run(request).await)
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The decision for a state-changing request with `headers`, given the configured `PUBLIC_URL`.
fn verify(headers: &HeaderMap, public_url: &str) -> Result<(), AppError> {
    let Some(origin) = headers.get(ORIGIN) else {
        return if session_cookie(headers).is_some() && bearer_token(headers).is_none() {
            Err(AppError::ForbiddenOrigin(
                "a request signed in by the session cookie must carry an Origin header",
            ))
        } else {
            Ok(())
        };
    };
    let origin = origin.to_str().ok().and_then(SiteOrigin::parse);
    let own = headers
        .get(HOST)
        .and_then(|host| host.to_str().ok())
        .and_then(|host| SiteOrigin::parse(&format!("http://{host}")));
    let public = SiteOrigin::parse(public_url);
    match origin {
        Some(origin) if Some(&origin) == own.as_ref() || Some(&origin) == public.as_ref() => Ok(()),
        _ => Err(AppError::ForbiddenOrigin(
            "cross-site request refused: the Origin header names another site",
        )),
    }
}

/// Scheme, host and port of a URL, normalised (lower case, default port made explicit).
#[derive(Debug, PartialEq, Eq)]
struct SiteOrigin {
    scheme: String,
    host: String,
    port: u16,
}

impl SiteOrigin {
    /// `scheme://host[:port]` followed by nothing or a path (`Origin: null` and other schemes
    /// give `None`).
    fn parse(url: &str) -> Option<Self> {
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => 80,
            "https" => 443,
            _ => return None,
        };
        let authority = rest.split('/').next()?;
        if authority.is_empty() || authority.contains(['@', '?', '#']) {
            return None;
        }
        // `[v6]:port`, `host:port` or a bare host.
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) if !port.contains(']') => (host, Some(port.parse().ok()?)),
            _ => (authority, None),
        };
        if host.is_empty() {
            return None;
        }
        Some(Self {
            scheme,
            host: host.to_ascii_lowercase(),
            port: port.unwrap_or(default_port),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const PUBLIC: &str = "https://links.example.com";

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn allowed(pairs: &[(&'static str, &str)]) -> bool {
        verify(&headers(pairs), PUBLIC).is_ok()
    }

    #[test]
    fn the_requests_own_origin_and_the_public_url_pass() {
        assert!(allowed(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.1:8080")
        ]));
        assert!(allowed(&[
            ("host", "localhost"),
            ("origin", "HTTP://LocalHost:80")
        ]));
        assert!(allowed(&[
            ("host", "10.0.0.5:8080"),
            ("origin", "https://links.example.com")
        ]));
        assert!(allowed(&[
            ("host", "[::1]:8080"),
            ("origin", "http://[::1]:8080")
        ]));
    }

    #[test]
    fn other_sites_ports_and_schemes_are_refused() {
        for origin in [
            "http://127.0.0.2:8080",
            "http://127.0.0.1:8081",
            "http://127.0.0.1",
            "https://127.0.0.1:8080",
            "http://links.example.com",
            "https://links.example.com.evil.test",
            "null",
            "",
            "file://",
        ] {
            let refused = verify(
                &headers(&[
                    ("host", "127.0.0.1:8080"),
                    ("origin", origin),
                    ("cookie", "smo1_session=abc"),
                ]),
                PUBLIC,
            )
            .unwrap_err();
            assert_eq!(refused.code(), "forbidden_origin", "{origin}");
        }
        // A bearer key does not excuse a foreign Origin: the check does not look at credentials.
        assert!(!allowed(&[
            ("host", "127.0.0.1:8080"),
            ("origin", "http://127.0.0.2:9000"),
            ("authorization", "Bearer smo1_x")
        ]));
    }

    #[test]
    fn without_origin_only_the_cookie_is_refused() {
        assert!(allowed(&[("host", "127.0.0.1:8080")]));
        assert!(allowed(&[
            ("host", "127.0.0.1:8080"),
            ("authorization", "Bearer smo1_x")
        ]));
        assert!(allowed(&[
            ("cookie", "smo1_session=abc"),
            ("authorization", "Bearer smo1_x")
        ]));
        assert!(!allowed(&[
            ("host", "127.0.0.1:8080"),
            ("cookie", "theme=dark; smo1_session=abc")
        ]));
    }

    #[test]
    fn safe_methods_are_not_checked() {
        assert!(!changes_state(&Method::GET));
        assert!(!changes_state(&Method::HEAD));
        assert!(!changes_state(&Method::OPTIONS));
        for method in [Method::POST, Method::PUT, Method::PATCH, Method::DELETE] {
            assert!(changes_state(&method));
        }
    }
}
