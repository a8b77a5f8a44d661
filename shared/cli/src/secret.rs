//! Secrets both programs hand out — API keys, one-time links, session ids — drawn from the
//! operating system, and the SHA-256 form in which only their digests are kept.
//!
//! Not here: where they are stored or how long they live (the callers'), passwords (Argon2id,
//! the server's accounts).

use sha2::{Digest, Sha256};

/// Bytes of randomness in a secret (256 bits; 64 hex digits).
pub const SECRET_BYTES: usize = 32;

/// A fresh secret from the operating system, as hex.
pub fn random_hex() -> std::io::Result<String> {
    let mut b = [0u8; SECRET_BYTES];
    getrandom::fill(&mut b).map_err(|e| std::io::Error::other(format!("no randomness: {e}")))?;
    Ok(hex::encode(b))
}

/// The hex SHA-256 of `s`: what is kept of a secret.
pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Equal strings, in time independent of where they differ (secrets compared).
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_fresh_and_kept_as_digests() {
        let (a, b) = (random_hex().expect("a"), random_hex().expect("b"));
        assert_eq!(a.len(), 2 * SECRET_BYTES);
        assert_ne!(a, b);
        assert_eq!(sha256_hex("abc").len(), 64);
        assert!(same(&sha256_hex(&a), &sha256_hex(&a)));
        assert!(!same(&sha256_hex(&a), &sha256_hex(&b)));
        assert!(!same("ab", "abc"));
    }
}
