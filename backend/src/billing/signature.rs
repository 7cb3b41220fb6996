//! Standard Webhooks signatures (<https://www.standardwebhooks.com>), as Polar sends them.
//!
//! The signed content is `{webhook-id}.{webhook-timestamp}.{body}`, HMAC-SHA256, base64, sent as
//! `webhook-signature: v1,<sig> [v1,<sig> …]` (several during secret rotation). Polar's SDK keys
//! the HMAC with the UTF-8 bytes of the secret exactly as its dashboard shows it, so that is the
//! key here too — no `whsec_` prefix handling, no base64 decoding of the secret.
//!
//! Verification runs before any authentication, so its cost is bounded whatever is sent: the
//! body and the signature header have size limits, at most [`MAX_SIGNATURES`] candidates are
//! read, and the MAC is computed once and compared (in constant time) with each candidate.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How far `webhook-timestamp` may be from now, either way.
pub const TOLERANCE_SECS: i64 = 300;
/// Largest body verified: Polar's subscription events are a few KiB.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest `webhook-signature` header: one `v1,<44 base64 characters>` is 47 bytes.
pub const MAX_SIGNATURE_HEADER_BYTES: usize = 1024;
/// Most signatures in one header (a secret rotation needs two).
pub const MAX_SIGNATURES: usize = 8;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing or malformed {0} header")]
    Header(&'static str),
    #[error("webhook-signature header is over {MAX_SIGNATURE_HEADER_BYTES} bytes or holds over {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    #[error("webhook body is over {MAX_BODY_BYTES} bytes")]
    BodyTooLarge,
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

/// The candidate tags of a `webhook-signature` header: its `v1,` entries, base64-decoded.
fn candidates(header: &str) -> Result<Vec<Vec<u8>>, SignatureError> {
    if header.len() > MAX_SIGNATURE_HEADER_BYTES {
        return Err(SignatureError::TooManySignatures);
    }
    let entries: Vec<&str> = header.split_whitespace().take(MAX_SIGNATURES + 1).collect();
    if entries.len() > MAX_SIGNATURES {
        return Err(SignatureError::TooManySignatures);
    }
    let tags: Vec<Vec<u8>> = entries
        .iter()
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .collect();
    if tags.is_empty() {
        return Err(SignatureError::Header("webhook-signature"));
    }
    Ok(tags)
}

/// Verifies a delivery against `secret` at `now_unix`. Every bound is checked before the one MAC.
pub fn verify(
    secret: &str,
    delivery: &Delivery<'_>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(SignatureError::BodyTooLarge);
    }
    if delivery.id.is_empty() || delivery.id.len() > 255 {
        return Err(SignatureError::Header("webhook-id"));
    }
    let timestamp: i64 = delivery
        .timestamp
        .parse()
        .map_err(|_| SignatureError::Header("webhook-timestamp"))?;
    let candidates = candidates(delivery.signatures)?;
    if (now_unix - timestamp).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    let expected = sign(secret.as_bytes(), delivery.id, delivery.timestamp, body)
        .finalize()
        .into_bytes();
    // Every candidate is compared, in constant time, so timing tells nothing of which matched.
    let matches = candidates.iter().fold(false, |found, tag| {
        constant_time_eq::constant_time_eq(tag, &expected) | found
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

    #[test]
    fn header_and_body_sizes_are_bounded_before_any_mac() {
        let good = signature(SECRET, "msg_1", "1764000000", b"{}");
        let decoy = signature("other", "msg_1", "1764000000", b"{}");
        let mut eight = vec![decoy.as_str(); MAX_SIGNATURES - 1];
        eight.push(&good);
        assert_eq!(
            verify(
                SECRET,
                &delivery("1764000000", &eight.join(" ")),
                b"{}",
                1_764_000_000
            ),
            Ok(()),
            "the last of the allowed candidates"
        );
        let nine = [decoy.as_str(); MAX_SIGNATURES + 1].join(" ");
        assert_eq!(
            verify(SECRET, &delivery("1764000000", &nine), b"{}", 1_764_000_000),
            Err(SignatureError::TooManySignatures)
        );
        let empties = "v1, ".repeat(20_000);
        assert_eq!(
            verify(
                SECRET,
                &delivery("1764000000", &empties),
                b"{}",
                1_764_000_000
            ),
            Err(SignatureError::TooManySignatures)
        );
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(
            verify(SECRET, &delivery("1764000000", &good), &body, 1_764_000_000),
            Err(SignatureError::BodyTooLarge)
        );
    }
}
