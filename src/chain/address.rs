//! Addresses: CashAddr of the four types (P2PKH, P2SH, and their token-aware twins) with 20- or
//! 32-byte hashes, and legacy base58 accepted as input only.
//!
//! The codec is the `bitcoincash` crate's (it passes BCHN's vectors and never panics on forged
//! strings); this module decides what an invoice accepts and how it is written back.

use std::fmt;

use bitcoincash::address::cashaddr::{self, DecodeError};

/// The BCH network a server runs on. Its CashAddr prefix doubles as the payment URI scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Network {
    Main,
    Test,
    Regtest,
}

impl Network {
    pub const ALL: [Network; 3] = [Network::Main, Network::Test, Network::Regtest];

    /// The name used in invoice JSON and on the command line (`main`, `test`, `regtest`).
    pub fn as_str(self) -> &'static str {
        match self {
            Network::Main => "main",
            Network::Test => "test",
            Network::Regtest => "regtest",
        }
    }

    /// CashAddr prefix, also the `bitcoincash:?r=` URI scheme.
    pub fn cashaddr_prefix(self) -> &'static str {
        match self {
            Network::Main => "bitcoincash",
            Network::Test => "bchtest",
            Network::Regtest => "bchreg",
        }
    }

    fn from_prefix(prefix: &str) -> Option<Network> {
        Network::ALL
            .into_iter()
            .find(|n| n.cashaddr_prefix() == prefix)
    }

    /// Legacy base58 version bytes (P2PKH, P2SH). Regtest shares testnet's.
    fn base58_versions(self) -> (u8, u8) {
        match self {
            Network::Main => (0x00, 0x05),
            Network::Test | Network::Regtest => (0x6f, 0xc4),
        }
    }

    pub fn parse(s: &str) -> Option<Network> {
        match s {
            "main" | "mainnet" => Some(Network::Main),
            "test" | "testnet" | "chipnet" => Some(Network::Test),
            "regtest" => Some(Network::Regtest),
            _ => None,
        }
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a locking bytecode does with the hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    P2pkh,
    P2sh,
}

/// A parsed destination on one network. Token awareness is part of how the address was
/// written, not of what it locks to: `q…` and `z…` forms of one key pay the same script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    network: Network,
    kind: LockKind,
    /// 20 bytes, or 32 for P2SH32.
    hash: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("is empty")]
    Empty,
    #[error("is a {found} address, but this server runs on {expected} (addresses start with `{prefix}:`)", prefix = .expected.cashaddr_prefix())]
    WrongNetwork { found: Network, expected: Network },
    #[error("has the unknown prefix `{0}:` (expected `bitcoincash:`, `bchtest:` or `bchreg:`)")]
    UnknownPrefix(String),
    #[error("is a CashAddr of type {0}; only P2PKH and P2SH (types 0-3) can be paid")]
    UnsupportedType(u8),
    #[error("has a {len}-byte hash; a {kind} address needs {expected}")]
    BadHashLength {
        kind: &'static str,
        len: usize,
        expected: &'static str,
    },
    #[error("is not a valid CashAddr or legacy address ({0})")]
    Malformed(String),
}

/// CashAddr type bits (version byte >> 3).
const TYPE_P2PKH: u8 = 0;
const TYPE_P2SH: u8 = 1;
const TYPE_P2PKH_TOKEN: u8 = 2;
const TYPE_P2SH_TOKEN: u8 = 3;

impl Address {
    /// Parses a CashAddr (with or without its prefix, either case) or a legacy base58 address,
    /// and requires it to belong to `network`.
    pub fn parse(input: &str, network: Network) -> Result<Address, AddressError> {
        Self::parse_written(input, network).map(|(address, _)| address)
    }

    /// [`Address::parse`], and whether the address was written token-aware (`z…`/`r…`): a
    /// wallet that honours the address type sends tokens only to such an address.
    pub fn parse_written(input: &str, network: Network) -> Result<(Address, bool), AddressError> {
        if input.is_empty() {
            return Err(AddressError::Empty);
        }
        match input.split_once(':') {
            Some((prefix, _)) => {
                let decoded = cashaddr::decode(input).map_err(describe_decode_error)?;
                let found = Network::from_prefix(&decoded.prefix)
                    .ok_or_else(|| AddressError::UnknownPrefix(prefix.to_owned()))?;
                let token_aware = is_token_type(decoded.type_bits);
                Self::from_parts(found, decoded.type_bits, decoded.data)?
                    .on(network)
                    .map(|a| (a, token_aware))
            }
            None => {
                // A bare payload: its checksum covers the prefix, so try ours first and then the
                // other networks, only to say which network it belongs to. Mixed case cannot be
                // CashAddr, but it is what base58 looks like.
                let mixed = input.chars().any(|c| c.is_ascii_lowercase())
                    && input.chars().any(|c| c.is_ascii_uppercase());
                if !mixed {
                    for candidate in std::iter::once(network).chain(Network::ALL) {
                        if let Ok(d) =
                            cashaddr::decode_with_prefix(candidate.cashaddr_prefix(), input)
                        {
                            let token_aware = is_token_type(d.type_bits);
                            return Self::from_parts(candidate, d.type_bits, d.data)?
                                .on(network)
                                .map(|a| (a, token_aware));
                        }
                    }
                }
                // Legacy addresses predate tokens.
                Self::parse_legacy(input, network).map(|a| (a, false))
            }
        }
    }

    fn parse_legacy(input: &str, network: Network) -> Result<Address, AddressError> {
        let bytes = bitcoincash::base58::decode_check(input)
            .map_err(|_| AddressError::Malformed("checksum or characters are wrong".into()))?;
        if bytes.len() != 21 {
            return Err(AddressError::Malformed(format!(
                "a legacy address carries 21 bytes, this one {}",
                bytes.len()
            )));
        }
        let (version, hash) = (bytes[0], bytes[1..].to_vec());
        for candidate in [network, Network::Main, Network::Test] {
            let (pkh, sh) = candidate.base58_versions();
            let kind = if version == pkh {
                LockKind::P2pkh
            } else if version == sh {
                LockKind::P2sh
            } else {
                continue;
            };
            let address = Address {
                network: candidate,
                kind,
                hash,
            };
            // Regtest and testnet share legacy version bytes.
            return if candidate.base58_versions() == network.base58_versions() {
                Ok(Address { network, ..address })
            } else {
                address.on(network)
            };
        }
        Err(AddressError::Malformed(format!(
            "unknown legacy version byte 0x{version:02x}"
        )))
    }

    fn from_parts(network: Network, type_bits: u8, hash: Vec<u8>) -> Result<Address, AddressError> {
        let kind = match type_bits {
            TYPE_P2PKH | TYPE_P2PKH_TOKEN => LockKind::P2pkh,
            TYPE_P2SH | TYPE_P2SH_TOKEN => LockKind::P2sh,
            other => return Err(AddressError::UnsupportedType(other)),
        };
        match (kind, hash.len()) {
            (LockKind::P2pkh, 20) | (LockKind::P2sh, 20 | 32) => Ok(Address {
                network,
                kind,
                hash,
            }),
            (LockKind::P2pkh, len) => Err(AddressError::BadHashLength {
                kind: "P2PKH",
                len,
                expected: "20",
            }),
            (LockKind::P2sh, len) => Err(AddressError::BadHashLength {
                kind: "P2SH",
                len,
                expected: "20 or 32",
            }),
        }
    }

    fn on(self, network: Network) -> Result<Address, AddressError> {
        if self.network == network {
            Ok(self)
        } else {
            Err(AddressError::WrongNetwork {
                found: self.network,
                expected: network,
            })
        }
    }

    pub fn network(&self) -> Network {
        self.network
    }

    /// The P2PKH address of a public key hash.
    pub fn p2pkh(network: Network, key_hash: [u8; 20]) -> Address {
        Address {
            network,
            kind: LockKind::P2pkh,
            hash: key_hash.to_vec(),
        }
    }

    /// The address a standard locking bytecode pays to (P2PKH, P2SH, P2SH32); `None` for any
    /// other script.
    pub fn from_locking_bytecode(script: &[u8], network: Network) -> Option<Address> {
        let (kind, hash) = match script {
            [0x76, 0xa9, 0x14, hash @ .., 0x88, 0xac] if hash.len() == 20 => {
                (LockKind::P2pkh, hash)
            }
            [0xa9, 0x14, hash @ .., 0x87] if hash.len() == 20 => (LockKind::P2sh, hash),
            [0xaa, 0x20, hash @ .., 0x87] if hash.len() == 32 => (LockKind::P2sh, hash),
            _ => return None,
        };
        Some(Address {
            network,
            kind,
            hash: hash.to_vec(),
        })
    }

    /// The locking bytecode this address pays to (without any token prefix).
    pub fn locking_bytecode(&self) -> Vec<u8> {
        let mut script = Vec::with_capacity(25);
        match (self.kind, self.hash.len()) {
            (LockKind::P2pkh, _) => {
                // OP_DUP OP_HASH160 <20> OP_EQUALVERIFY OP_CHECKSIG
                script.extend_from_slice(&[0x76, 0xa9, 0x14]);
                script.extend_from_slice(&self.hash);
                script.extend_from_slice(&[0x88, 0xac]);
            }
            (LockKind::P2sh, 32) => {
                // OP_HASH256 <32> OP_EQUAL
                script.extend_from_slice(&[0xaa, 0x20]);
                script.extend_from_slice(&self.hash);
                script.push(0x87);
            }
            (LockKind::P2sh, _) => {
                // OP_HASH160 <20> OP_EQUAL
                script.extend_from_slice(&[0xa9, 0x14]);
                script.extend_from_slice(&self.hash);
                script.push(0x87);
            }
        }
        script
    }

    /// The CashAddr string with the network prefix; the token-aware (`z…`/`r…`) form when
    /// `token_aware`, which is what wallets expect on outputs that carry tokens.
    pub fn to_cashaddr(&self, token_aware: bool) -> String {
        let type_bits = match (self.kind, token_aware) {
            (LockKind::P2pkh, false) => TYPE_P2PKH,
            (LockKind::P2pkh, true) => TYPE_P2PKH_TOKEN,
            (LockKind::P2sh, false) => TYPE_P2SH,
            (LockKind::P2sh, true) => TYPE_P2SH_TOKEN,
        };
        // The hash lengths were checked on parse, so encoding cannot fail; fall back to hex
        // rather than panic should that invariant ever break.
        cashaddr::encode(self.network.cashaddr_prefix(), type_bits, &self.hash)
            .unwrap_or_else(|_| hex::encode(&self.hash))
    }
}

fn is_token_type(type_bits: u8) -> bool {
    matches!(type_bits, TYPE_P2PKH_TOKEN | TYPE_P2SH_TOKEN)
}

fn describe_decode_error(e: DecodeError) -> AddressError {
    AddressError::Malformed(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_HASH: &str = "f5bf48b397dae70be82b3cca4793f8eb2b6cdac9";

    #[test]
    fn parses_all_forms_of_one_key_to_one_script() {
        let expected = format!("76a914{KEY_HASH}88ac");
        for s in [
            "bitcoincash:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eylep8ekg2",
            "qr6m7j9njldwwzlg9v7v53unlr4jkmx6eylep8ekg2",
            "BITCOINCASH:QR6M7J9NJLDWWZLG9V7V53UNLR4JKMX6EYLEP8EKG2",
            "bitcoincash:zr6m7j9njldwwzlg9v7v53unlr4jkmx6eycnjehshe",
            "1PQPheJQSauxRPTxzNMUco1XmoCyPoEJCp",
        ] {
            let a = Address::parse(s, Network::Main).unwrap_or_else(|e| panic!("{s}: {e}"));
            assert_eq!(hex::encode(a.locking_bytecode()), expected, "{s}");
            assert_eq!(
                a.to_cashaddr(false),
                "bitcoincash:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eylep8ekg2"
            );
            assert_eq!(
                a.to_cashaddr(true),
                "bitcoincash:zr6m7j9njldwwzlg9v7v53unlr4jkmx6eycnjehshe"
            );
        }
    }

    #[test]
    fn wrong_network_says_which() {
        let e = Address::parse(
            "bitcoincash:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eylep8ekg2",
            Network::Regtest,
        )
        .unwrap_err();
        assert_eq!(
            e,
            AddressError::WrongNetwork {
                found: Network::Main,
                expected: Network::Regtest
            }
        );
        assert!(e.to_string().contains("bchreg:"), "{e}");
        let e = Address::parse("qr6m7j9njldwwzlg9v7v53unlr4jkmx6eylep8ekg2", Network::Test)
            .unwrap_err();
        assert!(matches!(e, AddressError::WrongNetwork { .. }), "{e}");
    }

    #[test]
    fn forged_strings_are_errors_not_panics() {
        for s in [
            "bitcoincash:a5a8yrhz",
            "bitcoincash:rnknfhuyl",
            ":",
            "bitcoincash:",
            "q",
            "bitcoincash:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eylep8ekg3",
            "bitcoincash:Qr6m7j9njldwwzlg9v7v53unlr4jkmx6eylep8ekg2",
            "\u{0}\u{ffff}",
        ] {
            assert!(Address::parse(s, Network::Main).is_err(), "{s}");
        }
    }
}
