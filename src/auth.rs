//! Merchant API keys: 256 random bits shown once, stored as a SHA-256 hash. A plain hash is
//! enough because the key is random, not a password; lookups are by hash.
//!
//! A key belongs to one store (one merchant) and carries scopes: what it may do with that
//! store's invoices. A point-of-sale terminal gets `invoices:create` and nothing more.

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

/// The store every key and invoice made before stores existed belongs to, and the one keyless
/// (`--public-invoices`) invoices go to.
pub const DEFAULT_STORE_ID: i64 = 1;

/// One thing a merchant key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    CreateInvoices,
    ReadInvoices,
    CancelInvoices,
    /// Register, list, remove and redeliver the store's webhooks.
    ManageWebhooks,
}

impl Scope {
    pub const ALL: [Scope; 4] = [
        Scope::CreateInvoices,
        Scope::ReadInvoices,
        Scope::CancelInvoices,
        Scope::ManageWebhooks,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::CreateInvoices => "invoices:create",
            Scope::ReadInvoices => "invoices:read",
            Scope::CancelInvoices => "invoices:cancel",
            Scope::ManageWebhooks => "webhooks:manage",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// The set of scopes a key holds, stored as their names separated by spaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scopes(u8);

impl Scopes {
    pub fn all() -> Scopes {
        Scopes(Scope::ALL.iter().fold(0, |bits, s| bits | s.bit()))
    }

    pub fn contains(self, scope: Scope) -> bool {
        self.0 & scope.bit() != 0
    }

    /// Reads names separated by spaces or commas; `all` stands for every scope. An unknown
    /// name is an error that lists the known ones.
    pub fn parse(text: &str) -> Result<Scopes, String> {
        let mut bits = 0;
        for name in text.split([' ', ',']).filter(|n| !n.is_empty()) {
            bits |= match name {
                "all" => Scopes::all().0,
                _ => Scope::ALL
                    .into_iter()
                    .find(|s| s.as_str() == name)
                    .map(Scope::bit)
                    .ok_or_else(|| {
                        format!(
                            "unknown scope {name:?}; the scopes are {} (or all)",
                            Scopes::all()
                        )
                    })?,
            };
        }
        Ok(Scopes(bits))
    }
}

impl std::fmt::Display for Scopes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = Scope::ALL
            .into_iter()
            .filter(|s| self.contains(*s))
            .map(Scope::as_str)
            .collect();
        f.write_str(&names.join(" "))
    }
}

/// Who a request with a valid key acts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Merchant {
    pub key_id: i64,
    pub store_id: i64,
    pub scopes: Scopes,
}

/// How long a key found valid is trusted without asking the database again. A revoked key
/// stops working on every process within this time.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(1);
const KEY_CACHE_MAX: usize = 1024;

/// Remembers recently verified keys (by hash) so a busy merchant does not cost a database
/// round trip per request. Only valid keys are kept; unknown ones always ask the database.
#[derive(Debug, Default)]
pub struct KeyCache {
    seen: Mutex<HashMap<[u8; 32], (Merchant, Instant)>>,
}

impl KeyCache {
    /// The key's merchant, if this hash was verified less than [`KEY_CACHE_TTL`] ago.
    pub fn get(&self, hash: &[u8; 32]) -> Option<Merchant> {
        let seen = self.seen.lock().ok()?;
        seen.get(hash)
            .filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(id, _)| *id)
    }

    pub fn put(&self, hash: [u8; 32], merchant: Merchant) {
        if let Ok(mut seen) = self.seen.lock() {
            if seen.len() >= KEY_CACHE_MAX {
                seen.retain(|_, (_, at)| at.elapsed() < KEY_CACHE_TTL);
                if seen.len() >= KEY_CACHE_MAX {
                    seen.clear();
                }
            }
            seen.insert(hash, (merchant, Instant::now()));
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

    #[test]
    fn scopes_read_and_write_by_name() {
        assert_eq!(Scopes::parse("all"), Ok(Scopes::all()));
        assert_eq!(
            Scopes::all().to_string(),
            "invoices:create invoices:read invoices:cancel webhooks:manage"
        );
        let pos = Scopes::parse("invoices:create").unwrap();
        assert!(pos.contains(Scope::CreateInvoices));
        assert!(!pos.contains(Scope::ReadInvoices) && !pos.contains(Scope::CancelInvoices));
        assert_eq!(
            Scopes::parse("invoices:read,invoices:cancel")
                .unwrap()
                .to_string(),
            "invoices:read invoices:cancel"
        );
        assert!(Scopes::parse("invoices:delete")
            .unwrap_err()
            .contains("invoices:create"));
        assert_eq!(Scopes::parse(""), Ok(Scopes::default()));
    }
}
