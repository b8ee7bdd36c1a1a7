//! A store's extended public key and the receiving addresses derived from it.
//!
//! BCH wallets (Electron Cash, Paytaca, Cashonize) export the account key, the one at
//! m/44'/145'/0'. Its external chain `<key>/0` holds the addresses the wallet itself watches
//! for incoming coins, so an invoice paid to `<key>/0/<n>` lands in the merchant's wallet
//! without the server ever holding a secret. Addresses are P2PKH, written as CashAddr.
//!
//! The derivation is the `bitcoin` crate's BIP32 code; this module decides which keys a server
//! accepts, which addresses it hands out, and how far ahead of the last payment it may go
//! ([`may_allocate`]). The account should be one the merchant uses only for this server: a
//! wallet that also hands out addresses from it would give two payers the same address.

use std::fmt;

use bitcoin::base58;
use bitcoin::bip32::{self, ChildNumber, Fingerprint, Xpub};
use bitcoin::hashes::{hash160, Hash};
use bitcoin::secp256k1::Secp256k1;
use bitcoin::NetworkKind;

use super::address::{Address, Network};

/// Every xpub and tpub is this many base58 characters: the version bytes were chosen so that
/// a 78-byte key always writes as `xpub…`/`tpub…` of one length. A key of another length was
/// cut short or has something stuck to it.
const KEY_CHARS: usize = 111;

/// Bytes of a serialised extended key (BIP32): version, depth, parent fingerprint, child
/// number, chain code, compressed public key.
const KEY_BYTES: usize = 78;

/// Longest text worth decoding; base58 decoding takes time quadratic in the length, so a
/// pasted page is refused before it is read.
const MAX_TEXT_CHARS: usize = 120;

/// Deepest account key accepted: a receiving address sits two levels below it and BIP32
/// cannot write a depth above 255.
const MAX_ACCOUNT_DEPTH: u8 = u8::MAX - 2;

/// The external (receiving) chain under an account key; chain 1 is change, which wallets
/// use for their own outputs.
const RECEIVING_CHAIN: u32 = 0;

/// The highest receiving index: the ones above are hardened, which a public key cannot
/// derive.
pub const MAX_RECEIVE_INDEX: u32 = (1 << 31) - 1;

/// How many unused addresses in a row a restoring wallet checks before it stops: BIP44's
/// figure, and Electron Cash's default for the receiving chain.
pub const DEFAULT_GAP_LIMIT: u32 = 20;

/// Why an extended public key was refused or an address could not be derived. The messages
/// never repeat the text that was given: it may be a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HdError {
    #[error("no extended public key was given: export the account's xpub (tpub on testnet) from the wallet and paste it here")]
    Empty,
    #[error("this is {0}, which can spend the wallet's coins: never paste a private key or seed phrase into a server. Export the account's extended public key (xpub…, or tpub… on testnet) instead, and if this secret was saved or sent anywhere, move the funds to a new wallet")]
    Secret(&'static str),
    #[error("the key contains {0}, which never appears in an xpub: copy it again from the wallet")]
    NotBase58(String),
    #[error("the key's checksum does not match, so a character was mistyped or changed: copy it again from the wallet")]
    BadChecksum,
    #[error("the key is {chars} characters long, but an xpub or tpub has {KEY_CHARS}: copy the whole key, and nothing else")]
    WrongLength { chars: usize },
    #[error("the key's version bytes {0} are neither an xpub's (mainnet) nor a tpub's (testnet); keys such as ypub or zpub belong to BTC SegWit wallets: export the account's xpub from a Bitcoin Cash wallet")]
    UnknownVersion(String),
    #[error("the key is damaged: {0}. Copy it again from the wallet")]
    Damaged(&'static str),
    #[error("this is a mainnet key (xpub…), but the server runs on the {0} network: export the account's testnet key (tpub…)")]
    MainnetKey(Network),
    #[error("this is a testnet key (tpub…), but the server runs on mainnet: export the account's mainnet key (xpub…)")]
    TestnetKey,
    #[error(
        "the key cannot derive its receiving chain (a one in 2^127 chance): use another account"
    )]
    NoReceivingChain,
    #[error("address index {0} is hardened; receiving indices run from 0 to {MAX_RECEIVE_INDEX}")]
    HardenedIndex(u32),
    #[error("index {0} gives no valid key (BIP32 says to skip it, a one in 2^127 chance): use the next index")]
    UnusableIndex(u32),
}

/// An account's extended public key on the server's network, ready to give out receiving
/// addresses. Its `Display` is the canonical xpub/tpub text, which is what a store keeps;
/// [`AccountKey::parse`] reads that text back.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountKey {
    account: Xpub,
    /// `<account>/0`, derived once: every receiving address is one step below it.
    receiving: Xpub,
    network: Network,
}

impl AccountKey {
    /// Reads an account's extended public key (`xpub…` for mainnet, `tpub…` for testnet and
    /// regtest) for a server on `network`. Surrounding whitespace is ignored. Private keys,
    /// seed phrases, damaged keys and keys of the other network are refused.
    pub fn parse(text: &str, network: Network) -> Result<AccountKey, HdError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(HdError::Empty);
        }
        refuse_secret_text(text)?;
        let account = decode(text)?;
        check_structure(&account)?;
        match (account.network, network) {
            (NetworkKind::Main, Network::Main)
            | (NetworkKind::Test, Network::Test | Network::Regtest) => {}
            (NetworkKind::Main, server) => return Err(HdError::MainnetKey(server)),
            (NetworkKind::Test, _) => return Err(HdError::TestnetKey),
        }
        let receiving = account
            .ckd_pub(
                &Secp256k1::verification_only(),
                ChildNumber::Normal {
                    index: RECEIVING_CHAIN,
                },
            )
            .map_err(|_| HdError::NoReceivingChain)?;
        Ok(AccountKey {
            account,
            receiving,
            network,
        })
    }

    /// The network the key's addresses are written for.
    pub fn network(&self) -> Network {
        self.network
    }

    /// The P2PKH address at `<account>/0/<index>`: the wallet's receiving address number
    /// `index`, 0 being the first.
    /// Indices above [`MAX_RECEIVE_INDEX`] are hardened and refused.
    pub fn receive_address(&self, index: u32) -> Result<Address, HdError> {
        let child =
            ChildNumber::from_normal_idx(index).map_err(|_| HdError::HardenedIndex(index))?;
        // With the index normal and the depth checked on parse, the one failure left is
        // BIP32's "IL is not below n, or the key is the point at infinity".
        let key = self
            .receiving
            .ckd_pub(&Secp256k1::verification_only(), child)
            .map_err(|_| HdError::UnusableIndex(index))?;
        let key_hash = hash160::Hash::hash(&key.public_key.serialize()).to_byte_array();
        Ok(Address::p2pkh(self.network, key_hash))
    }
}

impl fmt::Display for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.account.fmt(f)
    }
}

/// Shows the key's ends only: the whole key in a log would let its reader list every address
/// of the account and so every payment the merchant has received.
impl fmt::Debug for AccountKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.account.to_string();
        let (head, tail) = (
            text.get(..8).unwrap_or_default(),
            text.get(text.len().saturating_sub(4)..).unwrap_or_default(),
        );
        f.debug_struct("AccountKey")
            .field("key", &format_args!("{head}…{tail}"))
            .field("network", &self.network)
            .finish()
    }
}

/// Refuses what is recognisably a secret before anything else is said about it, so that a
/// mistyped private key is still called a private key.
fn refuse_secret_text(text: &str) -> Result<(), HdError> {
    // BIP39 and Electrum phrases are 12 words or more, letters only.
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.len() >= 12 && words.iter().all(|w| w.chars().all(char::is_alphabetic)) {
        return Err(HdError::Secret("a seed phrase"));
    }
    // xprv, tprv and their SLIP-132 cousins (yprv, zprv, uprv, vprv, Yprv, Zprv…): a
    // private key's version bytes always write as a letter then `prv`.
    let bytes = text.as_bytes();
    if bytes.len() >= 4 && bytes[0].is_ascii_alphabetic() && &bytes[1..4] == b"prv" {
        return Err(HdError::Secret("an extended private key"));
    }
    Ok(())
}

fn decode(text: &str) -> Result<Xpub, HdError> {
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(HdError::WrongLength { chars });
    }
    let data = base58::decode_check(text).map_err(|e| match e {
        base58::Error::Decode(bad) => HdError::NotBase58(match bad.invalid_base58_character() {
            c if c.is_ascii_graphic() => format!("`{}`", char::from(c)),
            c if c.is_ascii_whitespace() => "a space or line break".to_owned(),
            _ => "a character outside base58".to_owned(),
        }),
        // A key of the wrong length fails its checksum too; the length says more.
        base58::Error::IncorrectChecksum(_) if chars == KEY_CHARS => HdError::BadChecksum,
        _ => HdError::WrongLength { chars },
    })?;
    if is_wif_private_key(&data) {
        return Err(HdError::Secret("a private key (WIF)"));
    }
    if data.len() != KEY_BYTES {
        return Err(HdError::WrongLength { chars });
    }
    Xpub::decode(&data).map_err(|e| match e {
        bip32::Error::UnknownVersion(version) => {
            HdError::UnknownVersion(format!("0x{}", hex::encode(version)))
        }
        // The length is checked above, so what is left is a key off the curve.
        _ => HdError::Damaged("its public key is not a point on the curve"),
    })
}

/// A base58 private key (wallet import format): a 0x80 (mainnet) or 0xef (testnet) byte, the
/// 32-byte secret, and 0x01 when its public key is compressed.
fn is_wif_private_key(data: &[u8]) -> bool {
    match data {
        [0x80 | 0xef, secret @ ..] if secret.len() == 32 => true,
        [0x80 | 0xef, secret @ .., 0x01] if secret.len() == 32 => true,
        _ => false,
    }
}

/// BIP32's rules on the other fields: a master key (depth 0) has no parent and no index.
fn check_structure(key: &Xpub) -> Result<(), HdError> {
    if key.depth == 0 && key.parent_fingerprint != Fingerprint::default() {
        return Err(HdError::Damaged("it says depth 0 but names a parent"));
    }
    if key.depth == 0 && u32::from(key.child_number) != 0 {
        return Err(HdError::Damaged("it says depth 0 but has a child index"));
    }
    if key.depth > MAX_ACCOUNT_DEPTH {
        return Err(HdError::Damaged(
            "it is too deep in its tree for addresses to be derived below it",
        ));
    }
    Ok(())
}

/// The first receiving index that may not be allocated yet: `last_used + 1 + gap_limit`, or
/// `gap_limit` when no address has been used, and at most 2^31 (the first hardened index).
/// See [`may_allocate`] for why.
pub fn allocation_limit(last_used: Option<u32>, gap_limit: u32) -> u32 {
    let after_last = last_used.map_or(0, |i| i.saturating_add(1));
    // Saturating is exact here: whenever the sum would pass u32::MAX it is past 2^31 anyway.
    after_last
        .saturating_add(gap_limit)
        .min(MAX_RECEIVE_INDEX + 1)
}

/// Whether receiving index `next` may be handed out now, so that a wallet restored from the
/// seed still finds any payment to it.
///
/// A restoring wallet walks the receiving chain from index 0 and stops once it has seen
/// `gap_limit` unused addresses in a row. So it finds a payment at index `i` exactly when
/// `i <= u + gap_limit`, where `u` is the highest used index below `i` (-1 when there is
/// none): with `gap_limit` 20 and nothing used it looks at 0 to 19; after a payment at 5 it
/// looks up to 25.
///
/// The rule, exactly: `next` may be allocated if and only if
/// `next < last_used + 1 + gap_limit` (`next < gap_limit` when nothing has been used) and
/// `next <= MAX_RECEIVE_INDEX`. In words: fewer than `gap_limit` addresses lie unused between
/// the last used one and `next` (`last_used + 1 ..= next - 1`), so `next` is found even if
/// it is paid while all of those stay unpaid. With the default 20: nothing used, 0 to 19;
/// last used 5, up to 25.
///
/// Why that is enough: indices are handed out in increasing order, every used index was
/// handed out earlier (so `last_used < next`), and a used address stays used. The highest used
/// index below `next` can therefore only grow after `next` is handed out, and `next` stays
/// within reach whatever is paid later.
///
/// What the caller counts as used: an index whose address a payment on the chain reached.
/// Counting fewer makes the rule stricter, never unsafe; counting an address no transaction
/// reached (a payment refused or double-spent) is unsafe. When the limit is reached, the
/// server waits for a payment rather than hand out an address a restored wallet would miss.
pub fn may_allocate(last_used: Option<u32>, next: u32, gap_limit: u32) -> bool {
    next < allocation_limit(last_used, gap_limit)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::str::FromStr;

    use bitcoin::bip32::Xpriv;
    use bitcoin::hashes::{hmac, sha512, HashEngine};
    use bitcoin::secp256k1::{PublicKey, SecretKey};

    use super::*;

    /// BIP-0032, test vector 1 (seed 000102030405060708090a0b0c0d0e0f).
    const V1_M_0H: &str = "xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw";
    const V1_M_0H_1: &str = "xpub6ASuArnXKPbfEwhqN6e3mwBcDTgzisQN1wXN9BJcM47sSikHjJf3UFHKkNAWbWMiGj7Wf5uMash7SyYq527Hqck2AxYysAA7xmALppuCkwQ";
    const V1_M_0H_1_2H_2: &str = "xpub6FHa3pjLCk84BayeJxFW2SP4XRrFd1JYnxeLeU8EqN3vDfZmbqBqaGJAyiLjTAwm6ZLRQUMv1ZACTj37sR62cfN7fe5JnJ7dh8zL4fiyLHV";
    const V1_M_0H_1_2H_2_1000000000: &str = "xpub6H1LXWLaKsWFhvm6RVpEL9P4KfRZSW7abD2ttkWP3SSQvnyA8FSVqNTEcYFgJS2UaFcxupHiYkro49S8yGasTvXEYBVPamhGW6cFJodrTHy";

    /// BIP-0032, test vector 2 (seed fffcf9f6…4b484542).
    const V2_M: &str = "xpub661MyMwAqRbcFW31YEwpkMuc5THy2PSt5bDMsktWQcFF8syAmRUapSCGu8ED9W6oDMSgv6Zz8idoc4a6mr8BDzTJY47LJhkJ8UB7WEGuduB";
    const V2_M_0: &str = "xpub69H7F5d8KSRgmmdJg2KhpAK8SR3DjMwAdkxj3ZuxV27CprR9LgpeyGmXUbC6wb7ERfvrnKZjXoUmmDznezpbZb7ap6r1D3tgFxHmwMkQTPH";
    const V2_M_0_H: &str = "xpub6ASAVgeehLbnwdqV6UKMHVzgqAG8Gr6riv3Fxxpj8ksbH9ebxaEyBLZ85ySDhKiLDBrQSARLq1uNRts8RuJiHjaDMBU4Zn9h8LZNnBC5y4a";
    const V2_M_0_H_1: &str = "xpub6DF8uhdarytz3FWdA8TvFSvvAh8dP3283MY7p2V4SeE2wyWmG5mg5EwVvmdMVCQcoNJxGoWaU9DCWh89LojfZ537wTfunKau47EL2dhHKon";
    const V2_M_0_H_1_H: &str = "xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL";
    const V2_M_0_H_1_H_2: &str = "xpub6FnCn6nSzZAw5Tw7cgR9bi15UV96gLZhjDstkXXxvCLsUXBGXPdSnLFbdpq8p9HmGsApME5hQTZ3emM2rnY5agb9rXpVGyy3bdW6EEgAtqt";

    /// Electron Cash's tests (electroncash/tests/test_wallet.py): restoring this xpub, the
    /// first receiving address is qzrseeup….
    const EC_XPUB: &str = "xpub6CUzEfgtza7ZNtfDGYwHPnbPMPiQh93mAbP6v7C3ozUgkZq4tXSgYb9qqZ62oh8RCeexdSF7ZJmTzCm5bdWLB3zSMF8rNfuY8kccNAsdF4d";
    const EC_XPUB_FIRST: &str = "bitcoincash:qzrseeup3rhehuaf9e6nr3sgm6t5eegufu96l404mu";
    /// Same file: restoring this xprv, the first receiving address is qr2q6aad….
    const EC_XPRV: &str = "xprv9y4nb6Akxru8R68sYGrihutfqUgMNxmiF83ViTf65MobJrRRyHWc1M8mSZJSmZ1nQCJntxmF99sKGkkcQQGziECvdkwA4kqxsH5srNAzRin";
    const EC_XPRV_FIRST: &str = "bitcoincash:qr2q6aadv6nxmqwjt8qmax76yqp09mlqzq5jsz5fe9";
    /// Same file: the private key of EC_XPUB's first address, in wallet import format.
    const EC_WIF: &str = "Kz7FS9Adyj6RgSVGx5YLjZPanUhuze4yvcziZ1qLA24a3GJJZvBr";
    /// electroncash/tests/test_wallet_vertical.py: an Electrum-seed wallet (its key is the
    /// master, depth 0) and a BIP44 one (m/44'/0'/0'), each with its first receiving address.
    const EC_ELECTRUM_XPUB: &str = "xpub661MyMwAqRbcFWohJWt7PHsFEJfZAvw9ZxwQoDa4SoMgsDDM1T7WK3u9E4edkC4ugRnZ8E4xDZRpk8Rnts3Nbt97dPwT52CwBdDWroaZf8U";
    const EC_ELECTRUM_FIRST: &str = "1NNkttn1YvVGdqBW4PR6zvc3Zx3H5owKRf";
    const EC_BIP44_XPUB: &str = "xpub6DFh1smUsyqmYD4obDX6ngaxhd53Zx7aeFjoobebm7vbkT6f9awJWFuGzBT9FQJEWFBL7UyhMXtYzRcwDuVbcxtv9Ce2W9eMm4KXLdvdbjv";
    const EC_BIP44_FIRST: &str = "16j7Dqk3Z9DdTdBtHcCVLaNQy9MTgywUUo";

    fn xpub(s: &str) -> Xpub {
        Xpub::from_str(s).unwrap()
    }

    fn key(s: &str) -> AccountKey {
        AccountKey::parse(s, Network::Main).unwrap()
    }

    /// The same key written for testnet (`tpub…`).
    fn as_tpub(s: &str) -> String {
        Xpub {
            network: NetworkKind::Test,
            ..xpub(s)
        }
        .to_string()
    }

    #[test]
    fn bip32_vectors_public_derivation() {
        let secp = Secp256k1::verification_only();
        // Every non-hardened step of vectors 1 and 2, from the parent's xpub alone.
        for (parent, index, child) in [
            (V1_M_0H, 1, V1_M_0H_1),
            (V1_M_0H_1_2H_2, 1_000_000_000, V1_M_0H_1_2H_2_1000000000),
            (V2_M, 0, V2_M_0),
            (V2_M_0_H, 1, V2_M_0_H_1),
            (V2_M_0_H_1_H, 2, V2_M_0_H_1_H_2),
        ] {
            let derived = xpub(parent)
                .ckd_pub(&secp, ChildNumber::Normal { index })
                .unwrap();
            assert_eq!(derived.to_string(), child, "{parent}/{index}");
        }
    }

    #[test]
    fn receive_address_is_external_chain_child() {
        // Vector 2's m/0 is its m's child 0, so m's address 5 is m/0's child 5.
        let secp = Secp256k1::verification_only();
        let from_vector = xpub(V2_M_0)
            .ckd_pub(&secp, ChildNumber::Normal { index: 5 })
            .unwrap();
        let hash = hash160::Hash::hash(&from_vector.public_key.serialize()).to_byte_array();
        assert_eq!(
            key(V2_M).receive_address(5).unwrap(),
            Address::p2pkh(Network::Main, hash)
        );
    }

    /// CKDpub written out from BIP32 itself, sharing no code with the module: I =
    /// HMAC-SHA512(c, serP(K) || ser32(i)), K_i = point(I_L) + K, c_i = I_R.
    fn ckd_pub_by_hand(key: &PublicKey, chain_code: &[u8], i: u32) -> (PublicKey, Vec<u8>) {
        let secp = Secp256k1::new();
        let mut engine = hmac::HmacEngine::<sha512::Hash>::new(chain_code);
        engine.input(&key.serialize());
        engine.input(&i.to_be_bytes());
        let mac = hmac::Hmac::<sha512::Hash>::from_engine(engine).to_byte_array();
        let (il, ir) = mac.split_at(32);
        let tweak = SecretKey::from_slice(il).unwrap().public_key(&secp);
        (key.combine(&tweak).unwrap(), ir.to_vec())
    }

    fn address_by_hand(xpub_text: &str, network: Network, index: u32) -> Address {
        let data = base58::decode_check(xpub_text).unwrap();
        assert_eq!(data.len(), 78);
        let (chain_code, key) = (&data[13..45], PublicKey::from_slice(&data[45..78]).unwrap());
        let (chain_key, chain_code) = ckd_pub_by_hand(&key, chain_code, 0);
        let (child, _) = ckd_pub_by_hand(&chain_key, &chain_code, index);
        let hash = hash160::Hash::hash(&child.serialize()).to_byte_array();
        Address::p2pkh(network, hash)
    }

    #[test]
    fn receive_address_matches_a_hand_written_derivation() {
        for text in [EC_XPUB, V1_M_0H_1, V2_M] {
            let account = key(text);
            for index in [0, 1, 2, 19, 20, 1000, MAX_RECEIVE_INDEX] {
                assert_eq!(
                    account.receive_address(index).unwrap(),
                    address_by_hand(text, Network::Main, index),
                    "{text}/0/{index}"
                );
            }
        }
        let tpub = as_tpub(EC_XPUB);
        for network in [Network::Test, Network::Regtest] {
            let account = AccountKey::parse(&tpub, network).unwrap();
            for index in [0, 7] {
                let address = account.receive_address(index).unwrap();
                assert_eq!(address, address_by_hand(&tpub, network, index));
                assert_eq!(address.network(), network);
            }
        }
    }

    #[test]
    fn first_receiving_addresses_match_electron_cash() {
        let first = key(EC_XPUB).receive_address(0).unwrap();
        assert_eq!(first.to_cashaddr(false), EC_XPUB_FIRST);

        // Electron Cash's xprv, turned into its xpub here: the server only ever sees the xpub.
        let xprv = Xpriv::from_str(EC_XPRV).unwrap();
        let its_xpub = Xpub::from_priv(&Secp256k1::new(), &xprv).to_string();
        let first = key(&its_xpub).receive_address(0).unwrap();
        assert_eq!(first.to_cashaddr(false), EC_XPRV_FIRST);

        for (text, legacy) in [
            (EC_ELECTRUM_XPUB, EC_ELECTRUM_FIRST),
            (EC_BIP44_XPUB, EC_BIP44_FIRST),
        ] {
            assert_eq!(
                key(text).receive_address(0).unwrap(),
                Address::parse(legacy, Network::Main).unwrap(),
                "{text}"
            );
        }

        // On testnet the same key (as a tpub) pays the same hash, written bchtest:.
        let tpub = AccountKey::parse(&as_tpub(EC_XPUB), Network::Test).unwrap();
        let first = tpub.receive_address(0).unwrap();
        assert_eq!(
            first.locking_bytecode(),
            Address::parse(EC_XPUB_FIRST, Network::Main)
                .unwrap()
                .locking_bytecode()
        );
        assert!(first.to_cashaddr(false).starts_with("bchtest:q"));
    }

    #[test]
    fn display_gives_back_the_canonical_text() {
        let tpub = as_tpub(EC_XPUB);
        for (text, network) in [
            (EC_XPUB, Network::Main),
            (V2_M, Network::Main),
            (tpub.as_str(), Network::Regtest),
        ] {
            let account = AccountKey::parse(&format!("  {text}\n"), network).unwrap();
            assert_eq!(account.to_string(), text);
            assert_eq!(account.network(), network);
            assert_eq!(
                AccountKey::parse(&account.to_string(), network).unwrap(),
                account
            );
        }
        let shown = format!("{:?}", key(EC_XPUB));
        assert!(shown.contains("xpub6CUz…dF4d"), "{shown}");
        assert!(!shown.contains(EC_XPUB), "{shown}");
    }

    #[test]
    fn private_keys_and_seeds_are_refused_as_secrets() {
        for secret in [
            EC_XPRV,
            // A private key with a typo is still a private key.
            &EC_XPRV[..100],
            EC_WIF,
            "cycle rocket west magnet parrot shuffle foot correct salt library feed song",
        ] {
            let e = AccountKey::parse(secret, Network::Main).unwrap_err();
            assert!(matches!(e, HdError::Secret(_)), "{e}");
            let message = e.to_string();
            assert!(message.contains("never paste a private key"), "{message}");
            assert!(
                !message.contains(&secret[..12]),
                "the message repeats the secret"
            );
        }
        let tprv = Xpriv::from_str(EC_XPRV).unwrap();
        let tprv = Xpriv {
            network: NetworkKind::Test,
            ..tprv
        }
        .to_string();
        assert!(tprv.starts_with("tprv"));
        assert!(matches!(
            AccountKey::parse(&tprv, Network::Test),
            Err(HdError::Secret(_))
        ));
    }

    #[test]
    fn keys_of_the_other_network_are_refused() {
        for network in [Network::Test, Network::Regtest] {
            let e = AccountKey::parse(EC_XPUB, network).unwrap_err();
            assert_eq!(e, HdError::MainnetKey(network));
            assert!(e.to_string().contains("tpub"), "{e}");
        }
        let e = AccountKey::parse(&as_tpub(EC_XPUB), Network::Main).unwrap_err();
        assert_eq!(e, HdError::TestnetKey);
        assert!(e.to_string().contains("xpub"), "{e}");
    }

    #[test]
    fn damaged_text_is_refused() {
        // One character changed: the checksum catches it.
        let mut typo = EC_XPUB.to_owned();
        typo.replace_range(50..51, if &EC_XPUB[50..51] == "a" { "b" } else { "a" });
        assert_eq!(
            AccountKey::parse(&typo, Network::Main),
            Err(HdError::BadChecksum)
        );
        // Cut short, or with something stuck to it.
        let longer = format!("{EC_XPUB}a");
        for (text, chars) in [
            (&EC_XPUB[..110], 110),
            (&EC_XPUB[..60], 60),
            (&longer[..], 112),
        ] {
            assert_eq!(
                AccountKey::parse(text, Network::Main),
                Err(HdError::WrongLength { chars }),
                "{text}"
            );
        }
        let pasted_page = "x".repeat(100_000);
        assert!(matches!(
            AccountKey::parse(&pasted_page, Network::Main),
            Err(HdError::WrongLength { chars: 100_000 })
        ));
        // A valid checksum around a payload of the wrong size.
        let short = base58::encode_check(&[4u8; 40]);
        assert!(matches!(
            AccountKey::parse(&short, Network::Main),
            Err(HdError::WrongLength { .. })
        ));
        assert_eq!(
            AccountKey::parse(&EC_XPUB.replace('U', "0"), Network::Main),
            Err(HdError::NotBase58("`0`".into()))
        );
        assert_eq!(AccountKey::parse(" \n", Network::Main), Err(HdError::Empty));
        // Twelve words, but not a seed phrase: no alarm about secrets.
        let sentence = "this is my key, I think: it came from the wallet's export screen";
        assert!(matches!(
            AccountKey::parse(sentence, Network::Main),
            Err(HdError::NotBase58(_))
        ));
        for odd in ["xpub", "é", "\u{0}", "xpub6CUz EfgtZa"] {
            assert!(AccountKey::parse(odd, Network::Main).is_err(), "{odd:?}");
        }
    }

    /// BIP-0032 test vector 5, the public keys: invalid keys a parser must refuse.
    #[test]
    fn bip32_invalid_public_keys_are_refused() {
        for (text, why) in [
            ("xpub661MyMwAqRbcEYS8w7XLSVeEsBXy79zSzH1J8vCdxAZningWLdN3zgtU6LBpB85b3D2yc8sfvZU521AAwdZafEz7mnzBBsz4wKY5fTtTQBm", "pubkey version / prvkey mismatch"),
            ("xpub661MyMwAqRbcEYS8w7XLSVeEsBXy79zSzH1J8vCdxAZningWLdN3zgtU6Txnt3siSujt9RCVYsx4qHZGc62TG4McvMGcAUjeuwZdduYEvFn", "invalid pubkey prefix 04"),
            ("xpub661MyMwAqRbcEYS8w7XLSVeEsBXy79zSzH1J8vCdxAZningWLdN3zgtU6N8ZMMXctdiCjxTNq964yKkwrkBJJwpzZS4HS2fxvyYUA4q2Xe4", "invalid pubkey prefix 01"),
            ("xpub661no6RGEX3uJkY4bNnPcw4URcQTrSibUZ4NqJEw5eBkv7ovTwgiT91XX27VbEXGENhYRCf7hyEbWrR3FewATdCEebj6znwMfQkhRYHRLpJ", "zero depth with non-zero parent fingerprint"),
            ("xpub661MyMwAuDcm6CRQ5N4qiHKrJ39Xe1R1NyfouMKTTWcguwVcfrZJaNvhpebzGerh7gucBvzEQWRugZDuDXjNDRmXzSZe4c7mnTK97pTvGS8", "zero depth with non-zero index"),
            ("xpub661MyMwAqRbcEYS8w7XLSVeEsBXy79zSzH1J8vCdxAZningWLdN3zgtU6Q5JXayek4PRsn35jii4veMimro1xefsM58PgBMrvdYre8QyULY", "invalid pubkey 020000…07"),
        ] {
            let e = AccountKey::parse(text, Network::Main).unwrap_err();
            assert!(matches!(e, HdError::Damaged(_)), "{why}: {e}");
        }
        for unknown in [
            "DMwo58pR1QLEFihHiXPVykYB6fJmsTeHvyTp7hRThAtCX8CvYzgPcn8XnmdfHGMQzT7ayAmfo4z3gY5KfbrZWZ6St24UVf2Qgo6oujFktLHdHY4",
            "DMwo58pR1QLEFihHiXPVykYB6fJmsTeHvyTp7hRThAtCX8CvYzgPcn8XnmdfHPmHJiEDXkTiJTVV9rHEBUem2mwVbbNfvT2MTcAqj3nesx8uBf9",
        ] {
            let e = AccountKey::parse(unknown, Network::Main).unwrap_err();
            assert!(matches!(e, HdError::UnknownVersion(_)), "{e}");
        }
        // The vector's bad checksum is on an xprv; the same change on an xpub.
        let mut bad = V1_M_0H.to_owned();
        bad.replace_range(110..111, "L");
        assert_eq!(
            AccountKey::parse(&bad, Network::Main),
            Err(HdError::BadChecksum)
        );
    }

    #[test]
    fn a_key_too_deep_to_derive_under_is_refused() {
        for (depth, accepted) in [(253u8, true), (254, false), (255, false)] {
            let deep = Xpub {
                depth,
                ..xpub(V1_M_0H)
            }
            .to_string();
            let parsed = AccountKey::parse(&deep, Network::Main);
            assert_eq!(parsed.is_ok(), accepted, "depth {depth}");
            if let Ok(account) = parsed {
                assert!(account.receive_address(0).is_ok());
            }
        }
    }

    #[test]
    fn hardened_indices_are_refused() {
        let account = key(EC_XPUB);
        assert!(account.receive_address(MAX_RECEIVE_INDEX).is_ok());
        for index in [MAX_RECEIVE_INDEX + 1, u32::MAX] {
            let e = account.receive_address(index).unwrap_err();
            assert_eq!(e, HdError::HardenedIndex(index));
            assert!(e.to_string().contains("2147483647"), "{e}");
        }
    }

    #[test]
    fn gap_limit_boundaries() {
        let g = DEFAULT_GAP_LIMIT;
        // Nothing used: 0 to 19.
        assert!(may_allocate(None, 0, g));
        assert!(may_allocate(None, 19, g));
        assert!(!may_allocate(None, 20, g));
        // Last used 0: up to 20; last used 5: up to 25.
        assert!(may_allocate(Some(0), 20, g));
        assert!(!may_allocate(Some(0), 21, g));
        assert!(may_allocate(Some(5), 25, g));
        assert!(!may_allocate(Some(5), 26, g));
        assert_eq!(allocation_limit(Some(5), g), 26);
        assert_eq!(allocation_limit(None, g), 20);
        // A gap of 1: only the address right after the last used one.
        assert!(may_allocate(None, 0, 1));
        assert!(!may_allocate(None, 1, 1));
        assert!(may_allocate(Some(3), 4, 1));
        assert!(!may_allocate(Some(3), 5, 1));
        // A gap of 0 allows nothing new.
        assert!(!may_allocate(None, 0, 0));
        assert!(!may_allocate(Some(3), 4, 0));
        // The end of the chain: no hardened index, no overflow.
        let top = MAX_RECEIVE_INDEX;
        assert!(may_allocate(Some(top - 10), top, g));
        assert!(!may_allocate(Some(top - 10), top + 1, g));
        assert!(!may_allocate(Some(top), top + 1, u32::MAX));
        assert!(!may_allocate(Some(u32::MAX), u32::MAX, u32::MAX));
        assert_eq!(allocation_limit(Some(u32::MAX), u32::MAX), top + 1);
    }

    /// What a restoring wallet finds: it walks from index 0 and stops after `gap` unused
    /// addresses in a row.
    fn restored(used: &BTreeSet<u32>, gap: u32) -> BTreeSet<u32> {
        let (mut found, mut unused_run, mut i) = (BTreeSet::new(), 0, 0);
        while unused_run < gap {
            if used.contains(&i) {
                found.insert(i);
                unused_run = 0;
            } else {
                unused_run += 1;
            }
            i += 1;
        }
        found
    }

    #[test]
    fn gap_rule_is_safe_and_tight_against_a_restoring_wallet() {
        // A small deterministic generator picks, step by step, whether to allocate the next
        // address or pay one already handed out.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut roll = |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        for gap in [1, 2, 3, 5, DEFAULT_GAP_LIMIT] {
            let (mut next, mut used) = (0u32, BTreeSet::new());
            for _ in 0..2_000 {
                let last_used = used.last().copied();
                if roll(3) > 0 {
                    if may_allocate(last_used, next, gap) {
                        next += 1;
                    } else {
                        // Tight: had `next` been handed out and paid, with nothing paid
                        // since the last payment, a restored wallet would miss it.
                        let mut with_next = used.clone();
                        with_next.insert(next);
                        assert!(!restored(&with_next, gap).contains(&next), "gap {gap}");
                    }
                } else if next > 0 {
                    used.insert(roll(u64::from(next)) as u32);
                }
                // Safe: whatever has been paid, the restored wallet finds every payment,
                // and finds them even if the newest address handed out is paid next.
                assert_eq!(restored(&used, gap), used, "gap {gap}");
                if let Some(newest) = next.checked_sub(1) {
                    let mut worst = used.clone();
                    worst.insert(newest);
                    assert_eq!(restored(&worst, gap), worst, "gap {gap}");
                }
            }
            assert!(
                next > 3 * gap,
                "the walk went far enough to test (gap {gap})"
            );
        }
    }
}
