//! Destination URL validation (SPEC §6): what a link may point to.

use url::{Host, Url};

/// Longest destination accepted; longer URLs break in browsers and proxies.
pub const MAX_LEN: usize = 2048;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DestinationError {
    Empty,
    TooLong,
    Malformed,
    /// `javascript:`, `data:`, `ftp:` … only http and https redirect safely.
    Scheme,
    Credentials,
    MissingHost,
    /// Points at one of our own short domains, which would loop.
    OwnDomain,
}

impl std::fmt::Display for DestinationError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Empty => "destination is empty",
            Self::TooLong => "destination is longer than 2048 characters",
            Self::Malformed => "destination is not a valid absolute URL",
            Self::Scheme => "destination must use http or https",
            Self::Credentials => "destination must not contain a user name or password",
            Self::MissingHost => "destination must name a host",
            Self::OwnDomain => "destination must not point at this short domain",
        })
    }
}

impl std::error::Error for DestinationError {}

/// A host as compared here: lower case, without the trailing dot of a fully qualified name
/// (`Sho.RT.` is `sho.rt`), surrounding spaces dropped.
pub fn normalise_host(host: &str) -> String {
    host.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// The host of an absolute URL (`https://Links.Example.com:8443/x` → `links.example.com`),
/// normalised ([`normalise_host`]); `None` when it has none.
pub fn host_of(url: &str) -> Option<String> {
    let url = Url::parse(url).ok()?;
    match url.host()? {
        Host::Domain(domain) => Some(normalise_host(domain)),
        ip => Some(ip.to_string()),
    }
}

/// Validates `raw` and returns it normalised. `own_hosts` are the hosts we serve (short domains,
/// the origin's own), compared after [`normalise_host`], ports ignored.
pub fn validate(raw: &str, own_hosts: &[String]) -> Result<Url, DestinationError> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Err(DestinationError::Empty);
    }
    if raw.len() > MAX_LEN {
        return Err(DestinationError::TooLong);
    }
    if raw.chars().any(char::is_control) {
        return Err(DestinationError::Malformed);
    }
    let url = Url::parse(raw).map_err(|_| DestinationError::Malformed)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(DestinationError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(DestinationError::Credentials);
    }
    let host = host_of(url.as_str()).ok_or(DestinationError::MissingHost)?;
    if own_hosts.iter().any(|own| normalise_host(own) == host) {
        return Err(DestinationError::OwnDomain);
    }
    if url.as_str().len() > MAX_LEN {
        return Err(DestinationError::TooLong);
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    #[test]
    fn hosts_of_urls_are_normalised() {
        assert_eq!(
            host_of("https://Links.Example.com.:8443/x").as_deref(),
            Some("links.example.com")
        );
        assert_eq!(
            host_of("http://127.0.0.1:8080").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(host_of("not a url"), None);
    }

    use super::*;

    fn own() -> Vec<String> {
        vec!["sho.rt".into()]
    }

    #[test]
    fn accepts_http_and_https() {
        assert_eq!(
            validate(" https://Example.com/a?b=1 ", &own())
                .unwrap()
                .as_str(),
            "https://example.com/a?b=1"
        );
        assert!(validate("http://127.0.0.1:8080/", &own()).is_ok());
    }

    #[test]
    fn rejects_what_spec_6_lists() {
        let cases = [
            ("", DestinationError::Empty),
            ("javascript:alert(1)", DestinationError::Scheme),
            ("data:text/html,<b>x</b>", DestinationError::Scheme),
            ("ftp://example.com/", DestinationError::Scheme),
            (
                "https://user:pw@example.com/",
                DestinationError::Credentials,
            ),
            ("https://user@example.com/", DestinationError::Credentials),
            ("https://SHO.RT/abc", DestinationError::OwnDomain),
            ("https://sho.rt./abc", DestinationError::OwnDomain),
            ("example.com/path", DestinationError::Malformed),
            ("https://exa mple.com/", DestinationError::Malformed),
            ("https://example.com/a\nb", DestinationError::Malformed),
            ("https://exa\tmple.com/", DestinationError::Malformed),
        ];
        for (raw, expected) in cases {
            assert_eq!(validate(raw, &own()), Err(expected), "{raw:?}");
        }
        let untidy = vec![" Go.Sho.rt. ".to_owned()];
        assert_eq!(
            validate("https://GO.sho.rt./x", &untidy),
            Err(DestinationError::OwnDomain)
        );
        let long = format!("https://example.com/{}", "a".repeat(MAX_LEN));
        assert_eq!(validate(&long, &own()), Err(DestinationError::TooLong));
    }
}
