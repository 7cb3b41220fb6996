//! Merging a link's UTM parameters and the visitor's query string into the destination.
//!
//! Rules, in order of precedence:
//! 1. the link's UTM fields replace any parameter of the same name in the destination;
//! 2. the destination's own parameters stay as they are, in their order;
//! 3. parameters from the visitor's request are appended when the destination does not already
//!    name them (so `?ref=newsletter` passes through, but a visitor cannot override the link's UTM).

use crate::link::Utm;
use url::Url;

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
    let mut pairs: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| utm.pairs().all(|(utm_name, _)| utm_name != name))
        .map(|(name, value)| (name.into_owned(), value.into_owned()))
        .collect();
    pairs.extend(utm.pairs().map(|(n, v)| (n.to_owned(), v.to_owned())));
    if let Some(query) = visitor_query {
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if !pairs.iter().any(|(existing, _)| *existing == name) {
                pairs.push((name.into_owned(), value.into_owned()));
            }
        }
    }
    if pairs.is_empty() {
        url.set_query(None);
    } else {
        url.query_pairs_mut().clear().extend_pairs(pairs);
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
    fn unparsable_destination_is_returned_unchanged() {
        assert_eq!(merge("not a url", &utm("a", "b"), None), "not a url");
    }
}
