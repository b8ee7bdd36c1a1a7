//! Merchant API keys: 256 random bits shown once, stored as a SHA-256 hash. A plain hash is
//! enough because the key is random, not a password; lookups are by hash.

use sha2::{Digest, Sha256};

/// Every key starts with this, so a leaked one is easy to recognise in logs or code.
pub const KEY_PREFIX: &str = "ck_";

/// A fresh key, as printed to the merchant.
pub fn generate_key() -> String {
    let bytes: [u8; 32] = rand::random();
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

/// What the database stores and looks up.
pub fn key_hash(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hash_stably() {
        let (a, b) = (generate_key(), generate_key());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 64);
        assert_eq!(key_hash(&a), key_hash(&a));
        assert_ne!(key_hash(&a), key_hash(&b));
    }
}
