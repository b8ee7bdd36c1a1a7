//! Signed JSON Payment Protocol responses (research §2.4), for wallets configured to trust the
//! merchant's key: `digest` is the SHA-256 of the exact body, `signature` a compact ECDSA
//! signature of that digest, `x-identity` the P2PKH address of the public key.

use bitcoin::hashes::{hash160, Hash};
use bitcoin::secp256k1::{All, Message, PublicKey, Secp256k1, SecretKey};
use sha2::{Digest, Sha256};

use crate::chain::Network;

/// The key responses are signed with.
#[derive(Clone)]
pub struct Signer {
    secp: Secp256k1<All>,
    key: SecretKey,
    public: PublicKey,
    identity: String,
}

impl std::fmt::Debug for Signer {
    // The private key never reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("identity", &self.identity)
            .finish()
    }
}

impl Signer {
    /// From a private key written as 64 hex digits.
    pub fn from_hex(hex_key: &str, network: Network) -> Result<Signer, String> {
        let bytes = hex::decode(hex_key.trim())
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or("the signing key must be 64 hex digits (a 32-byte secp256k1 private key)")?;
        let key = SecretKey::from_slice(&bytes)
            .map_err(|_| "the signing key is not a valid secp256k1 private key")?;
        let secp = Secp256k1::new();
        let public = PublicKey::from_secret_key(&secp, &key);
        // Base58check P2PKH of the compressed key: 0x00 on main, 0x6f on the test networks.
        let version = match network {
            Network::Main => 0x00,
            Network::Test | Network::Regtest => 0x6f,
        };
        let mut payload = vec![version];
        payload.extend_from_slice(&hash160::Hash::hash(&public.serialize()).to_byte_array());
        let identity = bitcoin::base58::encode_check(&payload);
        Ok(Signer {
            secp,
            key,
            public,
            identity,
        })
    }

    /// The compressed public key, hex.
    pub fn public_key(&self) -> String {
        hex::encode(self.public.serialize())
    }

    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The headers that sign `body` (the exact bytes sent).
    pub fn headers(&self, body: &[u8]) -> [(&'static str, String); 5] {
        let digest: [u8; 32] = Sha256::digest(body).into();
        let signature = self
            .secp
            .sign_ecdsa(&Message::from_digest(digest), &self.key)
            .serialize_compact();
        let signature = hex::encode(signature);
        [
            ("digest", format!("SHA-256={}", hex::encode(digest))),
            ("x-signature-type", "ecc".into()),
            ("x-identity", self.identity.clone()),
            // Clients read `signature`; the v2 text calls it `x-signature`: both are sent.
            ("signature", signature.clone()),
            ("x-signature", signature),
        ]
    }

    /// `/signingKeys/paymentProtocol.json`: the key and the domain it signs for.
    pub fn key_document(&self, domain: &str, now_ms: i64) -> serde_json::Value {
        const YEAR_MS: i64 = 365 * 24 * 3600 * 1000;
        serde_json::json!({
            "owner": "Cashier",
            "expirationDate": crate::units::iso_millis(now_ms + YEAR_MS),
            "validDomains": [domain],
            "publicKeys": [self.public_key()],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bitcoin::secp256k1::ecdsa::Signature;

    #[test]
    fn headers_sign_the_exact_body() {
        let signer = Signer::from_hex(&"11".repeat(32), Network::Main).unwrap();
        let body = br#"{"a":1}"#;
        let headers = signer.headers(body);
        let get = |name: &str| headers.iter().find(|(n, _)| *n == name).unwrap().1.clone();
        let digest: [u8; 32] = Sha256::digest(body).into();
        assert_eq!(get("digest"), format!("SHA-256={}", hex::encode(digest)));
        let sig = Signature::from_compact(&hex::decode(get("signature")).unwrap()).unwrap();
        let secp = Secp256k1::new();
        let public = PublicKey::from_slice(&hex::decode(signer.public_key()).unwrap()).unwrap();
        assert!(secp
            .verify_ecdsa(&Message::from_digest(digest), &sig, &public)
            .is_ok());
        assert!(signer.identity().starts_with('1'));
        assert_eq!(get("x-signature-type"), "ecc");
        assert!(format!("{signer:?}").contains("identity"));
        assert!(!format!("{signer:?}").contains(&"11".repeat(32)));
    }

    #[test]
    fn bad_keys_are_refused_with_a_reason() {
        for bad in ["", "zz", &"00".repeat(32), &"11".repeat(31)] {
            assert!(Signer::from_hex(bad, Network::Main).is_err(), "{bad}");
        }
        assert!(Signer::from_hex(&"11".repeat(32), Network::Regtest)
            .unwrap()
            .identity()
            .starts_with(['m', 'n']));
    }
}
