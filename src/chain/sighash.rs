//! The BCH signature hash (SIGHASH_FORKID, with the CashTokens and SIGHASH_UTXOS rules) and
//! P2PKH signing and checking, with Schnorr (what libauth, Electron Cash and Paytaca sign
//! with) or ECDSA. BCHN `SignatureHash` and `CheckSig` (interpreter.cpp) are the reference;
//! `tests/vectors.rs` runs its `sighash.json`, its Schnorr vectors and libauth's transactions.

use bitcoin::hashes::{hash160, sha256d, Hash};
use bitcoin::secp256k1::{ecdsa, Message, PublicKey, Secp256k1, SecretKey, Signing, Verification};
use bitcoincash::schnorr;

use super::tx::{Output, Tx};
use super::write_compact_size;

pub const SIGHASH_ALL: u32 = 0x01;
pub const SIGHASH_NONE: u32 = 0x02;
pub const SIGHASH_SINGLE: u32 = 0x03;
pub const SIGHASH_UTXOS: u32 = 0x20;
pub const SIGHASH_FORKID: u32 = 0x40;
pub const SIGHASH_ANYONECANPAY: u32 = 0x80;
/// What wallets sign payments with: all inputs and outputs, BCH replay protection.
pub const SIGHASH_ALL_FORKID: u32 = SIGHASH_ALL | SIGHASH_FORKID;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SighashError {
    #[error("input {0} does not exist")]
    NoSuchInput(usize),
    #[error("the hash type lacks SIGHASH_FORKID, which BCH requires")]
    NoForkId,
    #[error("SIGHASH_UTXOS needs the coin spent by every input ({needed}), got {got}")]
    MissingUtxos { needed: usize, got: usize },
    #[error("SIGHASH_UTXOS cannot be combined with ANYONECANPAY")]
    UtxosWithAnyoneCanPay,
    #[error("hash type 0x{0:02x} is not one a signature may carry")]
    UnsupportedHashType(u32),
}

/// Whether a signature may carry `hash_type` (BCHN's STRICTENC and FORKID rules): one byte,
/// FORKID set, a defined base type (ALL, NONE, SINGLE), no undefined bits. SIGHASH_UTXOS with
/// ANYONECANPAY is refused later, by the digest.
pub fn hash_type_allowed(hash_type: u32) -> bool {
    let base = hash_type & 0x1f;
    hash_type <= 0xff
        && hash_type & SIGHASH_FORKID != 0
        && (SIGHASH_ALL..=SIGHASH_SINGLE).contains(&base)
}

fn sha256d(data: &[u8]) -> [u8; 32] {
    sha256d::Hash::hash(data).to_byte_array()
}

/// The digest input `index` signs. `spent[i]` is the coin input `i` spends; only
/// `spent[index]` is needed unless `hash_type` has SIGHASH_UTXOS. `script_code` is the
/// locking bytecode being satisfied, without its token prefix.
pub fn signature_hash(
    tx: &Tx,
    index: usize,
    script_code: &[u8],
    spent: &[Output],
    hash_type: u32,
) -> Result<[u8; 32], SighashError> {
    digest(tx, index, script_code, spent, hash_type, true)
}

/// The digest as before Upgrade 9 (May 2023): no SIGHASH_UTXOS, no token prefix in the
/// preimage. BCHN's `sighash.json` was made under these rules; nothing is signed with them now.
pub fn signature_hash_before_upgrade9(
    tx: &Tx,
    index: usize,
    script_code: &[u8],
    spent: &[Output],
    hash_type: u32,
) -> Result<[u8; 32], SighashError> {
    digest(tx, index, script_code, spent, hash_type, false)
}

fn digest(
    tx: &Tx,
    index: usize,
    script_code: &[u8],
    spent: &[Output],
    hash_type: u32,
    upgrade9: bool,
) -> Result<[u8; 32], SighashError> {
    let input = tx
        .inputs
        .get(index)
        .ok_or(SighashError::NoSuchInput(index))?;
    if hash_type & SIGHASH_FORKID == 0 {
        return Err(SighashError::NoForkId);
    }
    let base = hash_type & 0x1f;
    let anyone_can_pay = hash_type & SIGHASH_ANYONECANPAY != 0;
    let utxos = upgrade9 && hash_type & SIGHASH_UTXOS != 0;
    if utxos && anyone_can_pay {
        return Err(SighashError::UtxosWithAnyoneCanPay);
    }
    let coin_needed = if utxos { tx.inputs.len() } else { index + 1 };
    if spent.len() < coin_needed {
        return Err(SighashError::MissingUtxos {
            needed: coin_needed,
            got: spent.len(),
        });
    }
    let coin = &spent[index];

    let hash_prevouts = if anyone_can_pay {
        [0u8; 32]
    } else {
        let mut buf = Vec::with_capacity(36 * tx.inputs.len());
        for i in &tx.inputs {
            buf.extend_from_slice(&i.prevout.txid.wire_bytes());
            buf.extend_from_slice(&i.prevout.vout.to_le_bytes());
        }
        sha256d(&buf)
    };
    let hash_sequence = if anyone_can_pay || base == SIGHASH_SINGLE || base == SIGHASH_NONE {
        [0u8; 32]
    } else {
        let buf: Vec<u8> = tx
            .inputs
            .iter()
            .flat_map(|i| i.sequence.to_le_bytes())
            .collect();
        sha256d(&buf)
    };
    let hash_outputs = if base != SIGHASH_SINGLE && base != SIGHASH_NONE {
        let buf: Vec<u8> = tx.outputs.iter().flat_map(Output::serialize).collect();
        sha256d(&buf)
    } else if base == SIGHASH_SINGLE && index < tx.outputs.len() {
        sha256d(&tx.outputs[index].serialize())
    } else {
        [0u8; 32]
    };

    let mut pre = Vec::with_capacity(256 + script_code.len());
    pre.extend_from_slice(&tx.version.to_le_bytes());
    pre.extend_from_slice(&hash_prevouts);
    if utxos {
        let buf: Vec<u8> = spent[..tx.inputs.len()]
            .iter()
            .flat_map(Output::serialize)
            .collect();
        pre.extend_from_slice(&sha256d(&buf));
    }
    pre.extend_from_slice(&hash_sequence);
    pre.extend_from_slice(&input.prevout.txid.wire_bytes());
    pre.extend_from_slice(&input.prevout.vout.to_le_bytes());
    if let Some(token) = coin.token.as_ref().filter(|_| upgrade9) {
        pre.extend_from_slice(&token.prefix_bytes());
    }
    write_compact_size(&mut pre, script_code.len() as u64);
    pre.extend_from_slice(script_code);
    pre.extend_from_slice(&coin.value.to_le_bytes());
    pre.extend_from_slice(&input.sequence.to_le_bytes());
    pre.extend_from_slice(&hash_outputs);
    pre.extend_from_slice(&tx.lock_time.to_le_bytes());
    pre.extend_from_slice(&hash_type.to_le_bytes());
    Ok(sha256d(&pre))
}

/// The P2PKH locking bytecode of a public key.
pub fn p2pkh_locking_bytecode(pubkey: &PublicKey) -> Vec<u8> {
    let hash = hash160::Hash::hash(&pubkey.serialize());
    let mut script = vec![0x76, 0xa9, 0x14];
    script.extend_from_slice(hash.as_byte_array());
    script.extend_from_slice(&[0x88, 0xac]);
    script
}

/// How a wallet signs: the signature scheme and the hash type its signatures carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignWith {
    /// BCH Schnorr (2019-05-15 spec): 64 bytes, so every input's size is known before signing.
    Schnorr { hash_type: u32 },
    /// DER ECDSA, low-S: usually 70 to 72 bytes, varying with the digest.
    Ecdsa { hash_type: u32 },
}

impl SignWith {
    /// What wallets send today: Schnorr over all inputs and outputs.
    pub const SCHNORR: SignWith = SignWith::Schnorr {
        hash_type: SIGHASH_ALL_FORKID,
    };
    /// The older form, still valid everywhere.
    pub const ECDSA: SignWith = SignWith::Ecdsa {
        hash_type: SIGHASH_ALL_FORKID,
    };

    pub fn hash_type(self) -> u32 {
        match self {
            SignWith::Schnorr { hash_type } | SignWith::Ecdsa { hash_type } => hash_type,
        }
    }
}

impl Default for SignWith {
    fn default() -> SignWith {
        SignWith::SCHNORR
    }
}

/// Signs every input of `tx` (each spending a P2PKH coin of `key`, `spent[i]`) with Schnorr
/// and SIGHASH_ALL|FORKID, writing `<sig> <pubkey>` scriptSigs.
pub fn sign_p2pkh<C: Signing>(
    secp: &Secp256k1<C>,
    tx: &mut Tx,
    spent: &[Output],
    key: &SecretKey,
) -> Result<(), SighashError> {
    sign_p2pkh_with(secp, tx, spent, key, SignWith::default())
}

/// [`sign_p2pkh`] with the scheme and hash type chosen.
pub fn sign_p2pkh_with<C: Signing>(
    secp: &Secp256k1<C>,
    tx: &mut Tx,
    spent: &[Output],
    key: &SecretKey,
    how: SignWith,
) -> Result<(), SighashError> {
    let hash_type = how.hash_type();
    // Never make a signature this module's own check would refuse.
    if !hash_type_allowed(hash_type) {
        return Err(SighashError::UnsupportedHashType(hash_type));
    }
    let pubkey = PublicKey::from_secret_key(secp, key).serialize();
    for index in 0..tx.inputs.len() {
        let coin = spent.get(index).ok_or(SighashError::MissingUtxos {
            needed: tx.inputs.len(),
            got: spent.len(),
        })?;
        let digest = signature_hash(tx, index, &coin.locking_bytecode, spent, hash_type)?;
        let mut sig = match how {
            SignWith::Schnorr { .. } => schnorr::sign(secp, &digest, key).to_vec(),
            SignWith::Ecdsa { .. } => secp
                .sign_ecdsa(&Message::from_digest(digest), key)
                .serialize_der()
                .to_vec(),
        };
        // `hash_type_allowed` bounds it to one byte.
        sig.push(hash_type as u8);
        let mut script_sig = Vec::with_capacity(sig.len() + pubkey.len() + 2);
        script_sig.push(sig.len() as u8);
        script_sig.extend_from_slice(&sig);
        script_sig.push(pubkey.len() as u8);
        script_sig.extend_from_slice(&pubkey);
        tx.inputs[index].script_sig = script_sig;
    }
    Ok(())
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("unlocking bytecode is not <signature> <public key>")]
    NotP2pkhUnlock,
    #[error("public key does not match the coin's key hash")]
    WrongKey,
    #[error("public key is neither a compressed nor an uncompressed key")]
    BadPublicKeyEncoding,
    #[error("signature is malformed or not strict DER")]
    BadSignatureEncoding,
    #[error("signature hash type 0x{0:02x} is not allowed")]
    BadHashType(u32),
    #[error("signature does not verify")]
    BadSignature,
    #[error("only P2PKH coins can be spent here")]
    NotP2pkhCoin,
    #[error(transparent)]
    Sighash(#[from] SighashError),
}

/// Checks that input `index` validly spends the P2PKH coin `spent[index]`: the key hashes to
/// the coin's, and the signature (Schnorr, or low-S strict DER ECDSA, with FORKID) verifies,
/// as BCHN's consensus and standard rules require.
pub fn verify_p2pkh<C: Verification>(
    secp: &Secp256k1<C>,
    tx: &Tx,
    index: usize,
    spent: &[Output],
) -> Result<(), ScriptError> {
    let input = tx
        .inputs
        .get(index)
        .ok_or(SighashError::NoSuchInput(index))?;
    let coin = spent.get(index).ok_or(SighashError::MissingUtxos {
        needed: index + 1,
        got: spent.len(),
    })?;
    let script = &coin.locking_bytecode;
    if script.len() != 25 || script[..3] != [0x76, 0xa9, 0x14] || script[23..] != [0x88, 0xac] {
        return Err(ScriptError::NotP2pkhCoin);
    }
    let (sig, pubkey) = two_pushes(&input.script_sig).ok_or(ScriptError::NotP2pkhUnlock)?;
    if hash160::Hash::hash(pubkey).as_byte_array()[..] != script[3..23] {
        return Err(ScriptError::WrongKey);
    }
    check_signature(secp, tx, index, script, spent, sig, pubkey)
}

/// BCHN's `CheckSig` for input `index`: `sig` (with its hash type byte) by `pubkey` over the
/// digest with `script_code` (the locking bytecode, or the redeem bytecode of a P2SH input,
/// without any token prefix). 64 bytes before the hash type make a Schnorr signature, any
/// other length DER ECDSA: BCH tells the two apart by length alone.
pub fn check_signature<C: Verification>(
    secp: &Secp256k1<C>,
    tx: &Tx,
    index: usize,
    script_code: &[u8],
    spent: &[Output],
    sig: &[u8],
    pubkey: &[u8],
) -> Result<(), ScriptError> {
    // STRICTENC: secp256k1 would also parse the "hybrid" 0x06/0x07 form, which BCH refuses.
    let key_form_ok = matches!(
        (pubkey.len(), pubkey.first()),
        (33, Some(0x02 | 0x03)) | (65, Some(0x04))
    );
    if !key_form_ok {
        return Err(ScriptError::BadPublicKeyEncoding);
    }
    let pubkey = PublicKey::from_slice(pubkey).map_err(|_| ScriptError::BadPublicKeyEncoding)?;
    let (&hash_type, body) = sig.split_last().ok_or(ScriptError::BadSignatureEncoding)?;
    let hash_type = u32::from(hash_type);
    if !hash_type_allowed(hash_type) {
        return Err(ScriptError::BadHashType(hash_type));
    }
    if let Ok(rs) = <&[u8; schnorr::SCHNORR_SIGNATURE_SIZE]>::try_from(body) {
        let digest = signature_hash(tx, index, script_code, spent, hash_type)?;
        // The crate refuses r ≥ p, s ≥ n, R at infinity and R.y not a quadratic residue, as
        // BCHN's libsecp256k1 does (tests/vectors.rs holds it to BCHN's vectors).
        return if schnorr::verify(secp, &digest, rs, &pubkey) {
            Ok(())
        } else {
            Err(ScriptError::BadSignature)
        };
    }
    let ecdsa_sig =
        ecdsa::Signature::from_der(body).map_err(|_| ScriptError::BadSignatureEncoding)?;
    let mut normalized = ecdsa_sig;
    normalized.normalize_s();
    if normalized != ecdsa_sig {
        return Err(ScriptError::BadSignatureEncoding);
    }
    let digest = signature_hash(tx, index, script_code, spent, hash_type)?;
    secp.verify_ecdsa(&Message::from_digest(digest), &ecdsa_sig, &pubkey)
        .map_err(|_| ScriptError::BadSignature)
}

/// Splits `<push a> <push b>` (direct pushes only, as P2PKH unlocking bytecode is).
fn two_pushes(script: &[u8]) -> Option<(&[u8], &[u8])> {
    let (&len_a, rest) = script.split_first()?;
    let len_a = usize::from(len_a);
    if !(1..=0x4b).contains(&len_a) || rest.len() < len_a {
        return None;
    }
    let (a, rest) = rest.split_at(len_a);
    let (&len_b, rest) = rest.split_first()?;
    let len_b = usize::from(len_b);
    if !(1..=0x4b).contains(&len_b) || rest.len() != len_b {
        return None;
    }
    Some((a, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{Input, OutPoint, Txid};
    use bitcoin::secp256k1::All;

    /// Field prime p and group order n of secp256k1, big-endian.
    const P: [u8; 32] = bitcoin::secp256k1::constants::FIELD_SIZE;
    const N: [u8; 32] = bitcoin::secp256k1::constants::CURVE_ORDER;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_slice(&[byte; 32]).unwrap()
    }

    /// A two-input, two-output transaction spending P2PKH coins of `key`, unsigned.
    fn unsigned(secp: &Secp256k1<All>, key: &SecretKey) -> (Tx, Vec<Output>) {
        let locking = p2pkh_locking_bytecode(&key.public_key(secp));
        let spent = vec![
            Output {
                value: 50_000,
                token: None,
                locking_bytecode: locking.clone(),
            },
            Output {
                value: 7_000,
                token: None,
                locking_bytecode: locking.clone(),
            },
        ];
        let tx = Tx {
            version: 2,
            inputs: (0..2u8)
                .map(|i| Input {
                    prevout: OutPoint {
                        txid: Txid([i + 1; 32]),
                        vout: u32::from(i),
                    },
                    script_sig: Vec::new(),
                    sequence: u32::MAX,
                })
                .collect(),
            outputs: vec![
                Output {
                    value: 40_000,
                    token: None,
                    locking_bytecode: vec![0x51],
                },
                Output {
                    value: 16_000,
                    token: None,
                    locking_bytecode: locking,
                },
            ],
            lock_time: 0,
        };
        (tx, spent)
    }

    fn signed(how: SignWith) -> (Secp256k1<All>, Tx, Vec<Output>) {
        let secp = Secp256k1::new();
        let (mut tx, spent) = unsigned(&secp, &key(7));
        sign_p2pkh_with(&secp, &mut tx, &spent, &key(7), how).unwrap();
        (secp, tx, spent)
    }

    /// The 64 signature bytes of input 0 (after the push byte, before the hash type).
    fn rs(tx: &mut Tx) -> &mut [u8] {
        &mut tx.inputs[0].script_sig[1..65]
    }

    fn all_verify(secp: &Secp256k1<All>, tx: &Tx, spent: &[Output]) -> Result<(), ScriptError> {
        (0..tx.inputs.len()).try_for_each(|i| verify_p2pkh(secp, tx, i, spent))
    }

    const HASH_TYPES: [u32; 9] = [0x41, 0x42, 0x43, 0x61, 0x62, 0x63, 0xc1, 0xc2, 0xc3];

    #[test]
    fn every_hash_type_signs_and_verifies_with_both_schemes() {
        for hash_type in HASH_TYPES {
            for how in [
                SignWith::Schnorr { hash_type },
                SignWith::Ecdsa { hash_type },
            ] {
                let (secp, tx, spent) = signed(how);
                assert_eq!(all_verify(&secp, &tx, &spent), Ok(()), "{how:?}");
                let sig = two_pushes(&tx.inputs[0].script_sig).unwrap().0;
                assert_eq!(sig.last(), Some(&(hash_type as u8)));
                if let SignWith::Schnorr { .. } = how {
                    assert_eq!(sig.len(), 65, "64 bytes and the hash type");
                }
            }
        }
    }

    #[test]
    fn schnorr_is_the_default_and_signs_deterministically() {
        let (_, tx, _) = signed(SignWith::default());
        let (secp, mut again, spent) = signed(SignWith::SCHNORR);
        assert_eq!(tx, again);
        assert_eq!(tx.inputs[0].script_sig.len(), 1 + 65 + 1 + 33);
        sign_p2pkh(&secp, &mut again, &spent, &key(7)).unwrap();
        assert_eq!(tx, again);
    }

    #[test]
    fn signing_refuses_hash_types_no_node_accepts() {
        let secp = Secp256k1::new();
        let (mut tx, spent) = unsigned(&secp, &key(7));
        for (hash_type, error) in [
            (0x01, SighashError::UnsupportedHashType(0x01)),
            (0x44, SighashError::UnsupportedHashType(0x44)),
            (0x141, SighashError::UnsupportedHashType(0x141)),
            (0xe1, SighashError::UtxosWithAnyoneCanPay),
        ] {
            for how in [
                SignWith::Schnorr { hash_type },
                SignWith::Ecdsa { hash_type },
            ] {
                assert_eq!(
                    sign_p2pkh_with(&secp, &mut tx, &spent, &key(7), how),
                    Err(error.clone())
                );
            }
        }
    }

    #[test]
    fn a_flipped_bit_anywhere_in_a_schnorr_signature_fails() {
        let (secp, tx, spent) = signed(SignWith::SCHNORR);
        for byte in 0..64 {
            for bit in [0x01, 0x80] {
                let mut forged = tx.clone();
                rs(&mut forged)[byte] ^= bit;
                assert!(
                    verify_p2pkh(&secp, &forged, 0, &spent).is_err(),
                    "byte {byte} bit {bit:#x}"
                );
            }
        }
    }

    #[test]
    fn schnorr_s_replaced_by_n_minus_s_fails() {
        let (secp, mut tx, spent) = signed(SignWith::SCHNORR);
        let s = SecretKey::from_slice(&rs(&mut tx)[32..]).unwrap();
        // n - s: what malleates an ECDSA signature; BCH Schnorr has no such twin.
        rs(&mut tx)[32..].copy_from_slice(&s.negate().secret_bytes());
        assert_eq!(
            verify_p2pkh(&secp, &tx, 0, &spent),
            Err(ScriptError::BadSignature)
        );
    }

    #[test]
    fn schnorr_out_of_range_r_or_s_fails() {
        let (secp, tx, spent) = signed(SignWith::SCHNORR);
        // r is an x coordinate, below p; s a scalar, below n. Zero s is in range but forged.
        for (at, value) in [
            (0, P),
            (0, [0xff; 32]),
            (32, N),
            (32, [0xff; 32]),
            (32, [0; 32]),
        ] {
            let mut forged = tx.clone();
            rs(&mut forged)[at..at + 32].copy_from_slice(&value);
            assert_eq!(
                verify_p2pkh(&secp, &forged, 0, &spent),
                Err(ScriptError::BadSignature),
                "{} = {}",
                if at == 0 { "r" } else { "s" },
                hex::encode(value)
            );
        }
    }

    #[test]
    fn a_schnorr_signature_from_another_key_fails() {
        let secp = Secp256k1::new();
        let (mut theirs, spent) = unsigned(&secp, &key(7));
        // Signed by key 8 over the same transaction, then presented with key 7's public key.
        let other_spent: Vec<Output> = spent
            .iter()
            .map(|o| Output {
                locking_bytecode: p2pkh_locking_bytecode(&key(8).public_key(&secp)),
                ..o.clone()
            })
            .collect();
        sign_p2pkh(&secp, &mut theirs, &other_spent, &key(8)).unwrap();
        let (_, mut tx, _) = signed(SignWith::SCHNORR);
        tx.inputs[0].script_sig[..66].copy_from_slice(&theirs.inputs[0].script_sig[..66]);
        assert_eq!(
            verify_p2pkh(&secp, &tx, 0, &spent),
            Err(ScriptError::BadSignature)
        );
        // With its own key it is the wrong coin.
        assert_eq!(
            verify_p2pkh(&secp, &theirs, 0, &spent),
            Err(ScriptError::WrongKey)
        );
    }

    #[test]
    fn changing_the_hash_type_after_signing_fails() {
        for (signed_as, presented_as) in [(0x41, 0x61), (0x61, 0x41), (0x41, 0xc1), (0x41, 0x43)] {
            for how in [
                SignWith::Schnorr {
                    hash_type: signed_as,
                },
                SignWith::Ecdsa {
                    hash_type: signed_as,
                },
            ] {
                let (secp, mut tx, spent) = signed(how);
                let script_sig = &mut tx.inputs[0].script_sig;
                let at = usize::from(script_sig[0]);
                script_sig[at] = presented_as;
                assert_eq!(
                    verify_p2pkh(&secp, &tx, 0, &spent),
                    Err(ScriptError::BadSignature),
                    "{how:?} presented as {presented_as:#x}"
                );
            }
        }
    }

    #[test]
    fn hash_types_a_node_refuses_are_refused() {
        let (secp, tx, spent) = signed(SignWith::SCHNORR);
        for (hash_type, error) in [
            (0x01, ScriptError::BadHashType(0x01)),
            (0x00, ScriptError::BadHashType(0x00)),
            (0x44, ScriptError::BadHashType(0x44)),
            (0x40, ScriptError::BadHashType(0x40)),
            (
                0xe1,
                ScriptError::Sighash(SighashError::UtxosWithAnyoneCanPay),
            ),
        ] {
            let mut forged = tx.clone();
            forged.inputs[0].script_sig[65] = hash_type;
            assert_eq!(verify_p2pkh(&secp, &forged, 0, &spent), Err(error));
        }
    }

    #[test]
    fn the_length_decides_the_scheme() {
        let (secp, tx, spent) = signed(SignWith::SCHNORR);
        // 63 or 65 bytes before the hash type: read as DER, which they are not.
        for len in [63, 65] {
            let mut forged = tx.clone();
            let (sig, pubkey) = two_pushes(&tx.inputs[0].script_sig).unwrap();
            let mut body = sig[..64].to_vec();
            body.resize(len, 0);
            body.push(sig[64]);
            let mut script_sig = vec![body.len() as u8];
            script_sig.extend(&body);
            script_sig.push(pubkey.len() as u8);
            script_sig.extend(pubkey);
            forged.inputs[0].script_sig = script_sig;
            assert_eq!(
                verify_p2pkh(&secp, &forged, 0, &spent),
                Err(ScriptError::BadSignatureEncoding)
            );
        }
    }

    #[test]
    fn a_high_s_ecdsa_signature_is_still_refused() {
        let (secp, tx, spent) = signed(SignWith::ECDSA);
        let (sig, _) = two_pushes(&tx.inputs[0].script_sig).unwrap();
        let low = ecdsa::Signature::from_der(&sig[..sig.len() - 1]).unwrap();
        // The same signature with s replaced by n - s: valid ECDSA, but BCH requires low S.
        let mut compact = low.serialize_compact();
        let s = SecretKey::from_slice(&compact[32..]).unwrap();
        compact[32..].copy_from_slice(&s.negate().secret_bytes());
        let high = ecdsa::Signature::from_compact(&compact).unwrap();
        let mut der = high.serialize_der().to_vec();
        der.push(0x41);
        let pubkey = key(7).public_key(&secp).serialize();
        let mut forged = tx.clone();
        forged.inputs[0].script_sig = [&[der.len() as u8][..], &der, &[33], &pubkey].concat();
        assert_eq!(
            verify_p2pkh(&secp, &forged, 0, &spent),
            Err(ScriptError::BadSignatureEncoding)
        );
    }

    #[test]
    fn an_uncompressed_key_verifies_but_a_hybrid_one_does_not() {
        let secp = Secp256k1::new();
        let pubkey = key(7).public_key(&secp);
        let uncompressed = pubkey.serialize_uncompressed();
        let (mut tx, _) = unsigned(&secp, &key(7));
        let spent: Vec<Output> = (0..2)
            .map(|_| Output {
                value: 1000,
                token: None,
                locking_bytecode: {
                    let hash = hash160::Hash::hash(&uncompressed);
                    [&[0x76, 0xa9, 0x14][..], hash.as_byte_array(), &[0x88, 0xac]].concat()
                },
            })
            .collect();
        let digest = signature_hash(&tx, 0, &spent[0].locking_bytecode, &spent, 0x41).unwrap();
        let mut sig = schnorr::sign(&secp, &digest, &key(7)).to_vec();
        sig.push(0x41);
        tx.inputs[0].script_sig = [&[65][..], &sig, &[65], &uncompressed].concat();
        // BCH Schnorr hashes the compressed key whatever form the script holds.
        assert_eq!(verify_p2pkh(&secp, &tx, 0, &spent), Ok(()));
        // The hybrid form (0x06/0x07 prefix) of the same point.
        let mut hybrid = uncompressed;
        hybrid[0] = 0x06 | (uncompressed[64] & 1);
        let hash = hash160::Hash::hash(&hybrid);
        let hybrid_spent: Vec<Output> = spent
            .iter()
            .map(|o| Output {
                locking_bytecode: [&[0x76, 0xa9, 0x14][..], hash.as_byte_array(), &[0x88, 0xac]]
                    .concat(),
                ..o.clone()
            })
            .collect();
        tx.inputs[0].script_sig = [&[65][..], &sig, &[65], &hybrid].concat();
        assert_eq!(
            verify_p2pkh(&secp, &tx, 0, &hybrid_spent),
            Err(ScriptError::BadPublicKeyEncoding)
        );
    }
}
