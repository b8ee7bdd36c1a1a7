//! The BCH signature hash (SIGHASH_FORKID, with the CashTokens and SIGHASH_UTXOS rules) and
//! P2PKH signing and checking with ECDSA. BCHN `SignatureHash` (interpreter.cpp) is the
//! reference; `tests/vectors.rs` runs its `sighash.json`.

use bitcoin::hashes::{hash160, sha256d, Hash};
use bitcoin::secp256k1::{ecdsa, Message, PublicKey, Secp256k1, SecretKey, Signing, Verification};

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

/// Signs every input of `tx` (each spending a P2PKH coin of `key`, `spent[i]`) with
/// SIGHASH_ALL|FORKID, writing `<sig> <pubkey>` scriptSigs.
pub fn sign_p2pkh<C: Signing>(
    secp: &Secp256k1<C>,
    tx: &mut Tx,
    spent: &[Output],
    key: &SecretKey,
) -> Result<(), SighashError> {
    let pubkey = PublicKey::from_secret_key(secp, key).serialize();
    for index in 0..tx.inputs.len() {
        let coin = spent.get(index).ok_or(SighashError::MissingUtxos {
            needed: tx.inputs.len(),
            got: spent.len(),
        })?;
        let digest = signature_hash(tx, index, &coin.locking_bytecode, spent, SIGHASH_ALL_FORKID)?;
        let sig = secp.sign_ecdsa(&Message::from_digest(digest), key);
        let mut sig = sig.serialize_der().to_vec();
        sig.push(SIGHASH_ALL_FORKID as u8);
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
    #[error("signature is malformed or not strict DER")]
    BadSignatureEncoding,
    #[error("64-byte Schnorr signatures are not checked by this chain; sign with ECDSA")]
    Schnorr,
    #[error("signature hash type 0x{0:02x} is not allowed")]
    BadHashType(u32),
    #[error("signature does not verify")]
    BadSignature,
    #[error("only P2PKH coins can be spent here")]
    NotP2pkhCoin,
    #[error(transparent)]
    Sighash(#[from] SighashError),
}

/// Checks that input `index` validly spends the P2PKH coin `spent[index]` with an ECDSA
/// signature (low-S, strict DER, FORKID), as BCHN's standard rules require.
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
    let pubkey = PublicKey::from_slice(pubkey).map_err(|_| ScriptError::WrongKey)?;
    let (&hash_type, der) = sig.split_last().ok_or(ScriptError::BadSignatureEncoding)?;
    if der.len() == 64 {
        return Err(ScriptError::Schnorr);
    }
    let hash_type = u32::from(hash_type);
    let base = hash_type & 0x1f;
    if hash_type & SIGHASH_FORKID == 0
        || !(SIGHASH_ALL..=SIGHASH_SINGLE).contains(&base)
        || hash_type & 0x1c != 0
    {
        return Err(ScriptError::BadHashType(hash_type));
    }
    let sig = ecdsa::Signature::from_der(der).map_err(|_| ScriptError::BadSignatureEncoding)?;
    let mut normalized = sig;
    normalized.normalize_s();
    if normalized != sig {
        return Err(ScriptError::BadSignatureEncoding);
    }
    let digest = signature_hash(tx, index, script, spent, hash_type)?;
    secp.verify_ecdsa(&Message::from_digest(digest), &sig, &pubkey)
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
