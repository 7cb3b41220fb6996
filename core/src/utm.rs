//! Merging a link's UTM parameters and the visitor's query string into the destination.
//!
//! Rules, in order of precedence:
//! 1. the link's UTM fields replace any parameter of the same name in the destination;
//! 2. the destination's own parameters stay as they are, byte for byte, in their order (a signed
//!    URL's `%20` stays `%20` and a bare `flag` stays `flag`: only names are decoded, to compare);
//! 3. parameters from the visitor's request are appended, as sent, when the destination does not
//!    already name them (so `?ref=newsletter` passes through, but a visitor cannot override the
//!    link's UTM).

use crate::link::Utm;
use url::Url;

/// The decoded name of one `name=value` segment of a query.
fn name_of(segment: &str) -> String {
    let name = segment.split_once('=').map_or(segment, |(name, _)| name);
    url::form_urlencoded::parse(name.as_bytes())
        .next()
        .map(|(name, _)| name.into_owned())
        .unwrap_or_default()
}

/// Returns the URL to redirect to. `destination` must be a valid absolute URL (validated when the
/// link was saved); an unparsable one is returned unchanged rather than failing the redirect.
pub fn merge(destination: &str, utm: &Utm, visitor_query: Option<&str>) -> String {
    let visitor_query = visitor_query.filter(|q| !q.is_empty());
    if utm.is_empty() && visitor_query.is_none() {
        return destination.to_owned();
    }
    let Ok(mut url) = Url::parse(destination) else {
        return destination.to_owned();
    };
    let replaced = |name: &str| utm.pairs().any(|(utm_name, _)| utm_name == name);
    let mut segments: Vec<String> = url
        .query()
        .filter(|q| !q.is_empty())
        .map(|q| q.split('&'))
        .into_iter()
        .flatten()
        .filter(|segment| !replaced(&name_of(segment)))
        .map(str::to_owned)
        .collect();
    segments.extend(utm.pairs().map(|(name, value)| {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair(name, value)
            .finish()
    }));
    let mut names: Vec<String> = segments.iter().map(|s| name_of(s)).collect();
    for segment in visitor_query.into_iter().flat_map(|q| q.split('&')) {
        let name = name_of(segment);
        if !segment.is_empty() && !names.contains(&name) {
            segments.push(segment.to_owned());
            names.push(name);
        }
    }
    if segments.is_empty() {
        url.set_query(None);
    } else {
        url.set_query(Some(&segments.join("&")));
    }
    url.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utm(source: &str, campaign: &str) -> Utm {
        Utm {
            source: Some(source.into()),
            campaign: Some(campaign.into()),
            ..Utm::default()
        }
    }

    #[test]
    fn nothing_to_merge_keeps_the_destination_byte_for_byte() {
        let d = "https://example.com/path?b=2&a=1#frag";
        assert_eq!(merge(d, &Utm::default(), None), d);
        assert_eq!(merge(d, &Utm::default(), Some("")), d);
    }

    #[test]
    fn link_utm_is_added_and_replaces_same_names() {
        let merged = merge(
            "https://example.com/p?utm_source=old&x=1#top",
            &utm("news", "spring sale"),
            None,
        );
        assert_eq!(
            merged,
            "https://example.com/p?x=1&utm_source=news&utm_campaign=spring+sale#top"
        );
    }

    #[test]
    fn visitor_params_pass_through_but_never_override() {
        let merged = merge(
            "https://example.com/?x=1",
            &utm("news", "c"),
            Some("ref=tw&x=2&utm_source=evil"),
        );
        assert_eq!(
            merged,
            "https://example.com/?x=1&utm_source=news&utm_campaign=c&ref=tw"
        );
    }

    #[test]
    fn the_destinations_own_query_is_kept_byte_for_byte() {
        let signed = "https://cdn.example.com/f?name=a%20b&flag&sig=x%2By%3D&utm_source=old";
        assert_eq!(
            merge(signed, &utm("news", "c"), Some("ref=a%20b&flag=2")),
            "https://cdn.example.com/f?name=a%20b&flag&sig=x%2By%3D\
             &utm_source=news&utm_campaign=c&ref=a%20b"
        );
        assert_eq!(
            merge(
                "https://example.com/?q=%7E+x",
                &Utm::default(),
                Some("v=%C3%A9")
            ),
            "https://example.com/?q=%7E+x&v=%C3%A9"
        );
    }

    #[test]
    fn unparsable_destination_is_returned_unchanged() {
        assert_eq!(merge("not a url", &utm("a", "b"), None), "not a url");
    }
}
