//! Standard Webhooks signatures (<https://www.standardwebhooks.com>), as Polar sends them.
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}`, HMAC-SHA256, base64, sent as
//! `webhook-signature: v1,<sig> [v1,<sig> …]` (several during secret rotation). Polar's SDK keys
//! the HMAC with the UTF-8 bytes of the secret exactly as its dashboard shows it, so that is the
//! key here too — no `whsec_` prefix handling, no base64 decoding of the secret.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far `webhook-timestamp` may be from now, either way.
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing or malformed {0} header")]
    Header(&'static str),
    #[error("webhook timestamp is more than 5 minutes from now")]
    Stale,
    #[error("no webhook signature matches")]
    Mismatch,
}

/// The `webhook-*` headers of one delivery.
pub struct Delivery<'a> {
    pub id: &'a str,
    pub timestamp: &'a str,
    pub signatures: &'a str,
}

fn sign(secret: &[u8], id: &str, timestamp: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// The `v1,<base64>` signature of a delivery (for senders and tests).
pub fn signature(secret: &str, id: &str, timestamp: &str, body: &[u8]) -> String {
    let tag = sign(secret.as_bytes(), id, timestamp, body)
        .finalize()
        .into_bytes();
    format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(tag)
    )
}

/// Verifies a delivery against `secret` at `now_unix`.
pub fn verify(
    secret: &str,
    delivery: &Delivery<'_>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    if delivery.id.is_empty() || delivery.id.len() > 255 {
        return Err(SignatureError::Header("webhook-id"));
    }
    let timestamp: i64 = delivery
        .timestamp
        .parse()
        .map_err(|_| SignatureError::Header("webhook-timestamp"))?;
    if (now_unix - timestamp).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let candidates: Vec<Vec<u8>> = delivery
        .signatures
        .split_whitespace()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .collect();
    if candidates.is_empty() {
        return Err(SignatureError::Header("webhook-signature"));
    }
    let matches = candidates.iter().any(|candidate| {
        // verify_slice compares in constant time.
        sign(secret.as_bytes(), delivery.id, delivery.timestamp, body)
            .verify_slice(candidate)
            .is_ok()
    });
    if matches {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "polar_whs_exampleSecretAsShownInTheDashboard";

    fn delivery<'a>(timestamp: &'a str, signatures: &'a str) -> Delivery<'a> {
        Delivery {
            id: "msg_1",
            timestamp,
            signatures,
        }
    }

    #[test]
    fn a_signed_delivery_verifies_within_the_tolerance() {
        let sig = signature(SECRET, "msg_1", "1764000000", b"{}");
        assert_eq!(
            verify(SECRET, &delivery("1764000000", &sig), b"{}", 1_764_000_000),
            Ok(())
        );
        assert_eq!(
            verify(SECRET, &delivery("1764000000", &sig), b"{}", 1_764_000_300),
            Ok(())
        );
        assert_eq!(
            verify(SECRET, &delivery("1764000000", &sig), b"{}", 1_764_000_301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(SECRET, &delivery("1764000000", &sig), b"{}", 1_763_999_699),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn any_of_several_signatures_may_match() {
        let good = signature(SECRET, "msg_1", "1764000000", b"{}");
        let other = signature("old-secret", "msg_1", "1764000000", b"{}");
        let both = format!("{other} {good}");
        assert_eq!(
            verify(SECRET, &delivery("1764000000", &both), b"{}", 1_764_000_000),
            Ok(())
        );
    }

    #[test]
    fn tampering_and_malformed_headers_are_refused() {
        let sig = signature(SECRET, "msg_1", "1764000000", b"{}");
        assert_eq!(
            verify(SECRET, &delivery("1764000000", &sig), b"{ }", 1_764_000_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("wrong", &delivery("1764000000", &sig), b"{}", 1_764_000_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(SECRET, &delivery("soon", &sig), b"{}", 1_764_000_000),
            Err(SignatureError::Header("webhook-timestamp"))
        );
        assert_eq!(
            verify(
                SECRET,
                &delivery("1764000000", "v2,abc"),
                b"{}",
                1_764_000_000
            ),
            Err(SignatureError::Header("webhook-signature"))
        );
    }
}
