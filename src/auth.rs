//! Merchant API keys: 256 random bits shown once, stored as a SHA-256 hash. A plain hash is
//! enough because the key is random, not a password; lookups are by hash.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

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

/// How long a key found valid is trusted without asking the database again. A revoked key
/// stops working on every process within this time.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(1);
const KEY_CACHE_MAX: usize = 1024;

/// Remembers recently verified keys (by hash) so a busy merchant does not cost a database
/// round trip per request. Only valid keys are kept; unknown ones always ask the database.
#[derive(Debug, Default)]
pub struct KeyCache {
    seen: Mutex<HashMap<[u8; 32], (i64, Instant)>>,
}

impl KeyCache {
    /// The key id, if this hash was verified less than [`KEY_CACHE_TTL`] ago.
    pub fn get(&self, hash: &[u8; 32]) -> Option<i64> {
        let seen = self.seen.lock().ok()?;
        seen.get(hash)
            .filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(id, _)| *id)
    }

    pub fn put(&self, hash: [u8; 32], id: i64) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= KEY_CACHE_MAX {
                seen.retain(|_, (_, at)| at.elapsed() < KEY_CACHE_TTL);
                if seen.len() >= KEY_CACHE_MAX {
                    seen.clear();
                }
            }
            seen.insert(hash, (id, Instant::now()));
        }
    }
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
