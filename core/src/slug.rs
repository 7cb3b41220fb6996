//! Slug rules: which paths can name a link, and which custom slugs a user may claim.
//!
//! Slugs are case-sensitive ASCII (`A-Z a-z 0-9 - _`), so they never need percent-encoding and a
//! malformed path can be rejected before any lookup.

/// Longest slug we ever resolve or accept.
pub const MAX_LEN: usize = 64;
/// Shortest custom slug a user may claim (random uids have their own, fixed length).
pub const MIN_CUSTOM_LEN: usize = 3;
/// Length of generated uids: 62^7 ≈ 3.5e12 values, so random collisions stay negligible.
pub const UID_LEN: usize = 7;
/// Alphabet of generated uids (no `-`/`_`, which read badly at the end of a URL).
pub const UID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Paths the product uses or may use itself; compared case-insensitively.
pub const RESERVED: &[&str] = &[
    "about",
    "admin",
    "api",
    "app",
    "assets",
    "auth",
    "dashboard",
    "docs",
    "favicon",
    "health",
    "healthz",
    "help",
    "internal",
    "login",
    "logout",
    "metrics",
    "openapi",
    "pricing",
    "readyz",
    "robots",
    "settings",
    "signup",
    "static",
    "status",
    "v1",
    "v2",
    "webhooks",
    "www",
];

/// Why a custom slug was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlugError {
    TooShort,
    TooLong,
    InvalidCharacter,
    Reserved,
}

impl std::fmt::Display for SlugError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooShort => write!(f, "slug must be at least {MIN_CUSTOM_LEN} characters"),
            Self::TooLong => write!(f, "slug must be at most {MAX_LEN} characters"),
            Self::InvalidCharacter => {
                write!(f, "slug may contain only letters, digits, '-' and '_'")
            }
            Self::Reserved => write!(f, "slug is reserved"),
        }
    }
}

impl std::error::Error for SlugError {}

fn is_slug_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Whether `path_segment` can name a link at all. Anything else is answered 404 without lookups.
pub fn is_resolvable(path_segment: &str) -> bool {
    !path_segment.is_empty()
        && path_segment.len() <= MAX_LEN
        && path_segment.bytes().all(is_slug_byte)
}

/// Validates a slug a user wants to claim.
pub fn validate_custom(slug: &str) -> Result<(), SlugError> {
    if slug.len() > MAX_LEN {
        return Err(SlugError::TooLong);
    }
    if !slug.bytes().all(is_slug_byte) {
        return Err(SlugError::InvalidCharacter);
    }
    if slug.len() < MIN_CUSTOM_LEN {
        return Err(SlugError::TooShort);
    }
    if RESERVED.iter().any(|r| r.eq_ignore_ascii_case(slug)) {
        return Err(SlugError::Reserved);
    }
    Ok(())
}

/// Builds a uid from random bytes (the caller owns the randomness, so this stays pure).
pub fn uid_from_random(random: [u8; UID_LEN]) -> String {
    random
        .iter()
        .map(|b| UID_ALPHABET[usize::from(*b) % UID_ALPHABET.len()] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolvable_paths() {
        assert!(is_resolvable("abc"));
        assert!(is_resolvable("A-b_9"));
        assert!(is_resolvable(&"x".repeat(MAX_LEN)));
        assert!(!is_resolvable(""));
        assert!(!is_resolvable(&"x".repeat(MAX_LEN + 1)));
        for bad in ["a/b", "a.b", "a b", "%41", "ä", "a\0", "..", "a?b"] {
            assert!(!is_resolvable(bad), "{bad:?} must not resolve");
        }
    }

    #[test]
    fn custom_slug_rules() {
        assert_eq!(validate_custom("my-link_1"), Ok(()));
        assert_eq!(validate_custom("ab"), Err(SlugError::TooShort));
        assert_eq!(validate_custom(&"a".repeat(65)), Err(SlugError::TooLong));
        assert_eq!(validate_custom("a.b.c"), Err(SlugError::InvalidCharacter));
        assert_eq!(validate_custom("API"), Err(SlugError::Reserved));
        assert_eq!(validate_custom("webhooks"), Err(SlugError::Reserved));
    }

    #[test]
    fn uids_use_the_alphabet_and_length() {
        let uid = uid_from_random([0, 61, 62, 255, 7, 100, 200]);
        assert_eq!(uid.len(), UID_LEN);
        assert!(is_resolvable(&uid));
        assert_eq!(&uid[..3], "A9A");
    }
}
