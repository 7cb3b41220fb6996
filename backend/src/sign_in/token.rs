//! Sign-in tokens: 256 random bits in URL-safe base64, stored only as their SHA-256.
//!
//! Like API keys, a token cannot be guessed, so a fast unsalted hash is enough to keep a database
//! dump from holding a usable link, and the lookup stays one indexed equality.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Characters of a token: 32 bytes in unpadded base64.
pub const TOKEN_LEN: usize = 43;

/// A fresh token: `secret` goes into the emailed link, `hash` into PostgreSQL.
pub struct GeneratedToken {
    pub secret: String,
    pub hash: [u8; 32],
}

pub fn generate() -> GeneratedToken {
    let secret = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    GeneratedToken {
        hash: hash(&secret),
        secret,
    }
}

pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

/// Whether `s` could be a token at all; anything else is refused without a query.
pub fn is_well_formed(s: &str) -> bool {
    s.len() == TOKEN_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_url_safe_and_stored_as_their_hash() {
        let a = generate();
        let b = generate();
        assert_ne!(a.secret, b.secret);
        assert!(is_well_formed(&a.secret));
        assert_eq!(a.hash, hash(&a.secret));
        assert_ne!(a.hash, b.hash);
        assert!(!is_well_formed(&a.secret[1..]));
        assert!(!is_well_formed(&format!("{}+", &a.secret[1..])));
    }
}
