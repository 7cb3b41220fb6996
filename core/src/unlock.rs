//! Unlocking a protected link: the secret rules, the signed unlock cookie, the visitor's form
//! body and the worker ↔ origin messages of `POST /internal/links/{slug}/unlock`.
//!
//! The origin verifies secrets (it alone holds the argon2id hash) and signs the cookie; the edge
//! verifies the cookie itself, without a round trip. Both use this one implementation.
//!
//! Cookie value: `{expires_unix}.{hex(HMAC-SHA256(key, "smo1-unlock-v1|slug|link_id|version|expires"))}`.
//! The link id and version are in the MAC, so any change of the link (a new PIN, clearing and
//! setting protection again, a slug moving to another link) invalidates every old cookie.

use crate::link::{LinkCacheRecord, Protection};
use hmac::Mac;
use serde::{Deserialize, Serialize};
use sha2::Sha256;

type HmacSha256 = hmac::Hmac<Sha256>;

/// Failed attempts per link per IP within [`WINDOW_SECS`] before unlocking is refused (429).
pub const MAX_FAILED_ATTEMPTS: u32 = 5;
/// The lockout window.
pub const WINDOW_SECS: i64 = 15 * 60;
/// Name of the form field the visitor's PIN or password comes in.
pub const FORM_FIELD: &str = "secret";
/// Largest form body the edge reads; a PIN or password form is a few dozen bytes.
pub const MAX_FORM_BYTES: usize = 4096;
/// Longest PIN or password (characters).
pub const MAX_PASSWORD_CHARS: usize = 128;
pub const MIN_PASSWORD_CHARS: usize = 8;
pub const MIN_PIN_DIGITS: usize = 4;
pub const MAX_PIN_DIGITS: usize = 8;

/// Why a secret cannot protect a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretError {
    Pin,
    Password,
}

impl std::fmt::Display for SecretError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pin => write!(f, "a PIN is {MIN_PIN_DIGITS} to {MAX_PIN_DIGITS} digits"),
            Self::Password => write!(
                f,
                "a password is {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters"
            ),
        }
    }
}

/// Checks a secret an owner sets. Only PINs and passwords take a secret; anything else is held
/// to the password rules.
pub fn validate_secret(kind: Protection, secret: &str) -> Result<(), SecretError> {
    match kind {
        Protection::Pin => {
            let ok = (MIN_PIN_DIGITS..=MAX_PIN_DIGITS).contains(&secret.len())
                && secret.bytes().all(|b| b.is_ascii_digit());
            ok.then_some(()).ok_or(SecretError::Pin)
        }
        Protection::Password | Protection::None => {
            let chars = secret.chars().count();
            (MIN_PASSWORD_CHARS..=MAX_PASSWORD_CHARS)
                .contains(&chars)
                .then_some(())
                .ok_or(SecretError::Password)
        }
    }
}

/// The secret in a visitor's `application/x-www-form-urlencoded` body; `None` when the field is
/// missing or empty. A PIN keyboard may add spaces around the digits; they are not part of it.
pub fn secret_from_form(body: &str, kind: Protection) -> Option<String> {
    let (_, value) =
        url::form_urlencoded::parse(body.as_bytes()).find(|(name, _)| name == FORM_FIELD)?;
    let value = match kind {
        Protection::Pin => value.trim().to_owned(),
        _ => value.into_owned(),
    };
    (!value.is_empty()).then_some(value)
}

/// The cookie that unlocks `slug` (slugs are `A-Za-z0-9-_`, valid in a cookie name).
pub fn cookie_name(slug: &str) -> String {
    format!("smo1_unlock_{slug}")
}

/// What a cookie unlocks: one slug of one link in one version (`LinkCacheRecord::version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope<'a> {
    pub slug: &'a str,
    pub link_id: &'a str,
    pub version: i64,
}

impl<'a> From<&'a LinkCacheRecord> for Scope<'a> {
    fn from(record: &'a LinkCacheRecord) -> Self {
        Self {
            slug: &record.slug,
            link_id: &record.link_id,
            version: record.version,
        }
    }
}

fn mac(key: &str, scope: Scope<'_>, expires: i64) -> HmacSha256 {
    let mut mac =
        HmacSha256::new_from_slice(key.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(
        format!(
            "smo1-unlock-v1|{}|{}|{}|{expires}",
            scope.slug, scope.link_id, scope.version
        )
        .as_bytes(),
    );
    mac
}

/// The cookie value unlocking `scope` until `expires` (unix seconds).
pub fn sign(key: &str, scope: Scope<'_>, expires: i64) -> String {
    let tag = mac(key, scope, expires).finalize().into_bytes();
    let hex: String = tag.iter().map(|b| format!("{b:02x}")).collect();
    format!("{expires}.{hex}")
}

/// Whether `value` is an unexpired cookie signed for `record`. The MAC is compared in constant
/// time (`verify_slice`), so the comparison leaks nothing about the expected tag.
pub fn verify(key: &str, record: &LinkCacheRecord, value: &str, now: i64) -> bool {
    let Some((expires, hex)) = value.split_once('.') else {
        return false;
    };
    let Ok(expires) = expires.parse::<i64>() else {
        return false;
    };
    if expires <= now || hex.len() != 64 {
        return false;
    }
    let Some(tag) = (0..32)
        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()
    else {
        return false;
    };
    mac(key, record.into(), expires).verify_slice(&tag).is_ok()
}

/// Whether any cookie named for `record`'s slug in a `Cookie` header unlocks it (a browser may
/// send several of one name, e.g. from an older path).
pub fn cookie_unlocks(key: &str, record: &LinkCacheRecord, cookie_header: &str, now: i64) -> bool {
    let name = cookie_name(&record.slug);
    cookie_header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .any(|(n, v)| n == name && verify(key, record, v, now))
}

/// `Set-Cookie` for an unlock: only this slug's path, not readable by scripts, HTTPS only, sent on
/// top-level navigation from other sites (a shared link) but not on their subrequests.
pub fn set_cookie(slug: &str, value: &str, max_age_secs: i64) -> String {
    format!(
        "{}={value}; Path=/{slug}; Max-Age={max_age_secs}; HttpOnly; Secure; SameSite=Lax",
        cookie_name(slug)
    )
}

/// Body of `POST /internal/links/{slug}/unlock`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UnlockRequest {
    pub secret: String,
    /// The visitor's IP (`cf-connecting-ip`); attempts are counted per link and IP.
    pub ip: String,
}

/// The origin's answer to an unlock request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum UnlockOutcome {
    /// Correct: set this cookie value for `max_age` seconds, then redirect.
    Unlocked { cookie: String, max_age: i64 },
    /// Wrong secret; this many attempts remain before the lockout.
    Wrong { attempts_left: u32 },
    /// Too many failures: no secret is checked for `retry_after` seconds.
    Locked { retry_after: i64 },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::link::sample_record;

    const KEY: &str = "unlock-key";

    #[test]
    fn pins_are_four_to_eight_digits_and_passwords_eight_to_128_characters() {
        assert!(validate_secret(Protection::Pin, "1234").is_ok());
        assert!(validate_secret(Protection::Pin, "12345678").is_ok());
        for bad in ["123", "123456789", "12a4", " 1234", "١٢٣٤"] {
            assert_eq!(
                validate_secret(Protection::Pin, bad),
                Err(SecretError::Pin),
                "{bad}"
            );
        }
        assert!(validate_secret(Protection::Password, "correct horse").is_ok());
        assert!(validate_secret(Protection::Password, &"é".repeat(128)).is_ok());
        assert_eq!(
            validate_secret(Protection::Password, "short"),
            Err(SecretError::Password)
        );
        assert_eq!(
            validate_secret(Protection::Password, &"x".repeat(129)),
            Err(SecretError::Password)
        );
    }

    #[test]
    fn the_secret_comes_from_the_form_field() {
        assert_eq!(
            secret_from_form("secret=+1234+", Protection::Pin),
            Some("1234".into())
        );
        assert_eq!(
            secret_from_form("x=1&secret=a%26b+c", Protection::Password),
            Some("a&b c".into())
        );
        assert_eq!(secret_from_form("secret=", Protection::Password), None);
        assert_eq!(secret_from_form("other=1", Protection::Pin), None);
        assert_eq!(secret_from_form("", Protection::Pin), None);
    }

    #[test]
    fn a_signed_cookie_unlocks_its_link_until_it_expires() {
        let record = sample_record();
        let value = sign(KEY, (&record).into(), 1_000);
        assert!(verify(KEY, &record, &value, 999));
        assert!(!verify(KEY, &record, &value, 1_000), "expired");
        let header = format!("a=b; {}={value}; c=d", cookie_name("docs"));
        assert!(cookie_unlocks(KEY, &record, &header, 10));
        assert!(!cookie_unlocks(KEY, &record, "a=b", 10));
    }

    #[test]
    fn tampered_or_foreign_cookies_are_refused() {
        let record = sample_record();
        let value = sign(KEY, (&record).into(), 1_000);
        assert!(!verify("other-key", &record, &value, 10));
        let extended = value.replacen("1000.", "9999.", 1);
        assert!(!verify(KEY, &record, &extended, 10), "expiry is signed");
        let mut flipped = value.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        assert!(!verify(
            KEY,
            &record,
            &String::from_utf8(flipped).unwrap(),
            10
        ));
        let mut changed = record.clone();
        changed.version += 1;
        assert!(!verify(KEY, &changed, &value, 10), "a change of the link");
        let mut other = record.clone();
        other.slug = "other".into();
        assert!(!verify(KEY, &other, &value, 10), "another slug");
        for junk in [
            "",
            ".",
            "1000",
            "1000.zz",
            "x.00",
            &format!("1000.{}", "g".repeat(64)),
        ] {
            assert!(!verify(KEY, &record, junk, 10), "{junk:?}");
        }
    }

    #[test]
    fn the_cookie_is_scoped_and_locked_down() {
        assert_eq!(
            set_cookie("docs", "1.ab", 3600),
            "smo1_unlock_docs=1.ab; Path=/docs; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"
        );
    }

    #[test]
    fn outcomes_are_tagged_json() {
        let wrong = UnlockOutcome::Wrong { attempts_left: 3 };
        let json = serde_json::to_string(&wrong).unwrap();
        assert_eq!(json, r#"{"outcome":"wrong","attempts_left":3}"#);
        assert_eq!(serde_json::from_str::<UnlockOutcome>(&json).unwrap(), wrong);
    }
}
