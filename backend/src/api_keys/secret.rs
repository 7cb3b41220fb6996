//! Generating and hashing API key secrets.
//!
//! A key is `smo1_` followed by 32 random bytes in URL-safe base64 (256 bits), so a plain SHA-256
//! is enough to store it: unlike a password it cannot be guessed, and a fast hash keeps the
//! per-request lookup cheap.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

/// Every key starts with this, so leaked keys are easy to recognise (secret scanners).
pub const KEY_MARKER: &str = "smo1_";
/// Characters of the key shown in listings: the marker and 8 random characters.
pub const PREFIX_LEN: usize = KEY_MARKER.len() + 8;

/// A freshly generated key: the secret goes to the user once, the rest to PostgreSQL.
pub struct GeneratedKey {
    pub secret: String,
    pub prefix: String,
    pub hash: [u8; 32],
}

pub fn generate() -> GeneratedKey {
    let random: [u8; 32] = rand::random();
    let secret = format!("{KEY_MARKER}{}", URL_SAFE_NO_PAD.encode(random));
    GeneratedKey {
        prefix: secret[..PREFIX_LEN].to_owned(),
        hash: hash(&secret),
        secret,
    }
}

pub fn hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_long_random_and_stored_as_their_hash() {
        let a = generate();
        let b = generate();
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.secret.len(), KEY_MARKER.len() + 43);
        assert!(a.secret.starts_with(&a.prefix));
        assert!(a.prefix.starts_with(KEY_MARKER));
        assert_eq!(a.hash, hash(&a.secret));
        assert_ne!(a.hash, b.hash);
    }
}
