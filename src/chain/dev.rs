//! The built-in development chain's rules: a regtest-like chain inside Cashier, so a new user
//! can pay an invoice end to end with no node and no wallet. No real money moves.
//!
//! The chain's state (a UTXO set with spends, transactions, blocks) lives in the database and
//! is kept by `service::DevChain`; this file holds what it decides with, as pure functions: the
//! checks BCHN's mempool applies to what payments touch (wire format, context-free consensus
//! checks, size, standard outputs and dust, 1 sat/byte relay fee, CashToken conservation,
//! P2PKH signatures with SIGHASH_FORKID, Schnorr or ECDSA), in BCHN's words, and the faucet's
//! coinbase-shaped transactions.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use bitcoin::secp256k1::{All, Secp256k1};

use super::node::{RejectKind, Rejection, RELAY_FEE_PER_KB};
use super::sighash::verify_p2pkh;
use super::{
    dust_threshold, Address, Input, NftCapability, OutPoint, Output, TokenData, Tx, TxError, Txid,
    MAX_TX_SIZE, MIN_TX_SIZE,
};

/// BCHN refuses fees above this by default (`maxtxfee`, 0.1 BCH): it protects the payer.
pub const ABSURD_FEE: u64 = 10_000_000;
/// Most transactions remembered as verified.
const VERIFIED_CACHE_MAX: usize = 100_000;
/// Most one faucet call hands out: 1000 BCH.
pub const FAUCET_MAX: u64 = 100_000_000_000;

/// A coin as the chain stores it: `script` is the whole locking bytecode field, token prefix
/// included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCoin {
    pub value: i64,
    pub script: Vec<u8>,
    /// The block it was mined in; `None` while in the mempool.
    pub height: Option<i64>,
    pub spent: bool,
}

/// What checking a transaction against the chain found.
#[derive(Debug)]
pub enum Checked {
    New(Tx),
    Known { confirmed: bool, first_seen_ms: i64 },
    Rejected(Rejection),
}

fn reject(kind: RejectKind, reason: impl Into<String>) -> Rejection {
    Rejection {
        kind,
        reason: reason.into(),
    }
}

/// The checks that need nothing but the transaction: decoding, consensus, standardness.
pub fn check_alone(raw: &[u8]) -> Result<Tx, Rejection> {
    let tx = Tx::decode(raw).map_err(|_| reject(RejectKind::Invalid, "TX decode failed"))?;
    tx.check()
        .map_err(|e| reject(RejectKind::Invalid, consensus_reason(&e)))?;
    if tx.is_coinbase() {
        return Err(reject(RejectKind::Invalid, "coinbase"));
    }
    if let Some(reason) = standardness(&tx, raw.len()) {
        return Err(reject(RejectKind::Invalid, reason));
    }
    Ok(tx)
}

/// The outputs `coins` hold, in input order, or BCHN's refusal: the first input whose coin is
/// missing or spent decides it (a spend by a mempool transaction is a conflict, one by a
/// mined transaction a missing input). `coins` may end at the first missing one.
pub fn spent_outputs(
    coins: Vec<Option<StoredCoin>>,
    spender_in_mempool: bool,
) -> Result<Vec<Output>, Rejection> {
    let mut spent = Vec::with_capacity(coins.len());
    for coin in coins {
        let Some(coin) = coin else {
            return Err(reject(RejectKind::MissingInputs, "missing-inputs"));
        };
        if coin.spent {
            return Err(if spender_in_mempool {
                reject(RejectKind::Conflict, "txn-mempool-conflict")
            } else {
                reject(RejectKind::MissingInputs, "bad-txns-inputs-missingorspent")
            });
        }
        match stored_output(coin.value, &coin.script) {
            Some(o) => spent.push(o),
            None => return Err(reject(RejectKind::Invalid, "bad-txns-token-prefix")),
        }
    }
    Ok(spent)
}

/// The checks against the coins spent: relay fee, absurd fee, token conservation.
pub fn check_with_coins(tx: &Tx, size: usize, spent: &[Output]) -> Result<(), Rejection> {
    let fee = fee(tx, spent).map_err(|reason| reject(RejectKind::Invalid, reason))?;
    if u128::from(fee) * 1000 < u128::from(RELAY_FEE_PER_KB) * size as u128 {
        return Err(reject(RejectKind::Invalid, "min relay fee not met"));
    }
    if fee > ABSURD_FEE {
        return Err(reject(RejectKind::Invalid, "absurdly-high-fee"));
    }
    tokens_conserved(tx, spent).map_err(|reason| reject(RejectKind::Invalid, reason))
}

/// Checks signatures, remembering transactions that passed. Like BCHN's script cache: a coin
/// never changes once created and a txid commits to everything signed, so one check is enough
/// (the acceptance check before a broadcast and the broadcast itself share it).
pub struct Verifier {
    secp: Secp256k1<All>,
    verified: Mutex<HashSet<Txid>>,
}

impl Default for Verifier {
    fn default() -> Self {
        Verifier {
            secp: Secp256k1::new(),
            verified: Mutex::default(),
        }
    }
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Verifier")
    }
}

impl Verifier {
    /// Every input's P2PKH signature against the coin it spends.
    pub fn verify(&self, txid: Txid, tx: &Tx, spent: &[Output]) -> Result<(), Rejection> {
        if self.already_verified(txid) {
            return Ok(());
        }
        for index in 0..tx.inputs.len() {
            verify_p2pkh(&self.secp, tx, index, spent).map_err(|e| {
                reject(
                    RejectKind::Invalid,
                    format!("mandatory-script-verify-flag-failed ({e})"),
                )
            })?;
        }
        self.remember_verified(txid);
        Ok(())
    }

    fn already_verified(&self, txid: Txid) -> bool {
        self.verified
            .lock()
            .map(|v| v.contains(&txid))
            .unwrap_or(false)
    }

    fn remember_verified(&self, txid: Txid) {
        if let Ok(mut v) = self.verified.lock() {
            // Bounded: forgetting only costs a second check.
            if v.len() >= VERIFIED_CACHE_MAX {
                v.clear();
            }
            v.insert(txid);
        }
    }
}

/// A coin the faucet made.
#[derive(Debug, Clone)]
pub struct FaucetCoin {
    pub outpoint: OutPoint,
    pub output: Output,
    pub height: i64,
}

/// The faucet's transaction paying `amount` sats (and `token`) to `address`, or the smallest
/// amount allowed for that output when `amount` is out of range. On a real chain tokens come
/// only from a genesis transaction; the faucet is the miner here and makes them directly, so
/// any category can be tested.
pub fn faucet_tx(
    address: &Address,
    amount: u64,
    token: Option<TokenData>,
) -> Result<(Tx, Output), u64> {
    let output = Output {
        value: amount,
        token,
        locking_bytecode: address.locking_bytecode(),
    };
    let min = dust_threshold(output.script_field().len());
    if !(min..=FAUCET_MAX).contains(&amount) {
        return Err(min);
    }
    // A coinbase-shaped transaction; random bytes in its unlocking bytecode make each
    // faucet transaction unique.
    let mut script_sig = vec![0x08];
    script_sig.extend_from_slice(&rand::random::<[u8; 8]>());
    let tx = Tx {
        version: 1,
        inputs: vec![Input {
            prevout: OutPoint {
                txid: Txid([0; 32]),
                vout: u32::MAX,
            },
            script_sig,
            sequence: u32::MAX,
        }],
        outputs: vec![output.clone()],
        lock_time: 0,
    };
    Ok((tx, output))
}

/// BCHN records when a transaction entered its mempool in whole seconds (`getmempoolentry`'s
/// `time`); the dev chain answers the same, so the pay flow meets here what it meets there.
/// The dev chain's genesis block: the tip's parent at height 1, and the tip before any block
/// is mined.
pub const GENESIS: [u8; 32] = [0x0d; 32];

/// The conflicting transaction a double-spend rehearsal makes for `tx`, as someone who held
/// the same keys would: the same coins (`spent`, in input order) paid elsewhere, less a fee of
/// 1 sat/byte. The dev chain never checks its signatures: on a real network it would come from
/// another node, and this chain only records it (or mines it, in a reorg that replaces `tx`).
pub fn conflict_tx(tx: &Tx, spent: &[Output]) -> Option<Tx> {
    let total: u64 = spent.iter().map(|o| o.value).sum();
    // Sent to a script nobody can spend (OP_RETURN would be refused as an only output).
    let elsewhere = [&[0x76, 0xa9, 0x14][..], &[0xd5; 20][..], &[0x88, 0xac][..]].concat();
    let mut conflict = Tx {
        version: tx.version,
        inputs: tx.inputs.clone(),
        outputs: vec![Output {
            value: 0,
            token: None,
            locking_bytecode: elsewhere,
        }],
        lock_time: tx.lock_time,
    };
    let fee = conflict.serialize().len() as u64;
    let value = total
        .checked_sub(fee)
        .filter(|v| *v >= dust_threshold(25))?;
    conflict.outputs[0].value = value;
    Some(conflict)
}

pub fn whole_second(ms: i64) -> i64 {
    ms - ms.rem_euclid(1000)
}

/// The fee and size of a transaction, as `getmempoolentry` gives them, from the coins it
/// spends; `None` if one of them cannot be read back.
pub fn fee_and_size(tx: &Tx, size: usize, coins: Vec<Option<StoredCoin>>) -> Option<(u64, u64)> {
    let spent = coins
        .into_iter()
        .map(|coin| coin.and_then(|c| stored_output(c.value, &c.script)))
        .collect::<Option<Vec<_>>>()?;
    fee(tx, &spent).ok().map(|fee| (fee, size as u64))
}

/// A stored coin as an output, its token prefix split off.
pub fn stored_output(value: i64, script: &[u8]) -> Option<Output> {
    let (token, locking) = TokenData::split_prefix(script).ok()?;
    Some(Output {
        value: u64::try_from(value).ok()?,
        token,
        locking_bytecode: locking.to_vec(),
    })
}

/// BCHN's reject reasons for the context-free checks.
fn consensus_reason(e: &TxError) -> &'static str {
    match e {
        TxError::NoInputs => "bad-txns-vin-empty",
        TxError::NoOutputs => "bad-txns-vout-empty",
        TxError::ValueOutOfRange => "bad-txns-vout-toolarge",
        TxError::DuplicateInput => "bad-txns-inputs-duplicate",
        TxError::NullPrevout(_) => "bad-txns-prevout-null",
        TxError::BadCoinbase => "bad-cb-length",
        TxError::Token { .. } => "bad-txns-token-commitment-oversized",
        TxError::TooLarge(_) => "tx-size",
        TxError::TooSmall(_) => "bad-txns-undersize",
        TxError::Malformed(_) | TxError::NotCanonical => "TX decode failed",
    }
}

/// BCHN's `IsStandardTx` as far as payments meet it.
fn standardness(tx: &Tx, size: usize) -> Option<&'static str> {
    if size < MIN_TX_SIZE {
        return Some("bad-txns-undersize");
    }
    if size > MAX_TX_SIZE {
        return Some("tx-size");
    }
    if !(1..=2).contains(&tx.version) {
        return Some("version");
    }
    let mut data_outputs = 0;
    for o in &tx.outputs {
        let s = &o.locking_bytecode;
        let p2pkh = s.len() == 25 && s[..3] == [0x76, 0xa9, 0x14] && s[23..] == [0x88, 0xac];
        let p2sh20 = s.len() == 23 && s[..2] == [0xa9, 0x14] && s[22] == 0x87;
        let p2sh32 = s.len() == 35 && s[..2] == [0xaa, 0x20] && s[34] == 0x87;
        let data = s.first() == Some(&0x6a) && s.len() <= 223 && o.token.is_none();
        if data {
            data_outputs += 1;
            continue;
        }
        if !(p2pkh || p2sh20 || p2sh32) {
            return Some("scriptpubkey");
        }
        if o.value < dust_threshold(o.script_field().len()) {
            return Some("dust");
        }
    }
    if data_outputs > 1 {
        return Some("multi-op-return");
    }
    None
}

/// Σ inputs − Σ outputs, in sats.
fn fee(tx: &Tx, spent: &[Output]) -> Result<u64, &'static str> {
    let total_in = spent
        .iter()
        .try_fold(0u64, |sum, o| sum.checked_add(o.value))
        .ok_or("bad-txns-inputvalues-outofrange")?;
    let total_out: u64 = tx.outputs.iter().map(|o| o.value).sum();
    total_in
        .checked_sub(total_out)
        .ok_or("bad-txns-in-belowout")
}

/// CashTokens conservation (the CHIP's rules, as BCHN applies them): fungible amounts never
/// grow, NFTs come from a matching, mutable or minting NFT of their category, and a genesis
/// input (one spending output 0 of a transaction) may create the category named by that
/// transaction's id.
fn tokens_conserved(tx: &Tx, spent: &[Output]) -> Result<(), &'static str> {
    let genesis: Vec<[u8; 32]> = tx
        .inputs
        .iter()
        .filter(|i| i.prevout.vout == 0)
        .map(|i| i.prevout.txid.0)
        .collect();
    let mut fungible_in: HashMap<[u8; 32], u128> = HashMap::new();
    let mut nfts_in: Vec<(&[u8; 32], NftCapability, &[u8])> = Vec::new();
    for token in spent.iter().filter_map(|o| o.token.as_ref()) {
        *fungible_in.entry(token.category).or_default() += u128::from(token.amount);
        if let Some(nft) = &token.nft {
            nfts_in.push((&token.category, nft.capability, &nft.commitment));
        }
    }
    let mut fungible_out: HashMap<[u8; 32], u128> = HashMap::new();
    let mut used = vec![false; nfts_in.len()];
    for token in tx.outputs.iter().filter_map(|o| o.token.as_ref()) {
        if genesis.contains(&token.category) {
            continue;
        }
        *fungible_out.entry(token.category).or_default() += u128::from(token.amount);
        let Some(nft) = &token.nft else { continue };
        let minting = nfts_in
            .iter()
            .any(|(c, cap, _)| **c == token.category && *cap == NftCapability::Minting);
        if minting {
            continue;
        }
        let same = nfts_in
            .iter()
            .enumerate()
            .position(|(i, (c, cap, commitment))| {
                !used[i]
                    && **c == token.category
                    && *cap == nft.capability
                    && *commitment == nft.commitment.as_slice()
            });
        let parent = same.or_else(|| {
            nfts_in.iter().enumerate().position(|(i, (c, cap, _))| {
                !used[i]
                    && **c == token.category
                    && *cap == NftCapability::Mutable
                    && nft.capability != NftCapability::Minting
            })
        });
        match parent {
            Some(i) => used[i] = true,
            None => return Err("bad-txns-token-nft-ex-nihilo"),
        }
    }
    for (category, out) in fungible_out {
        if out > fungible_in.get(&category).copied().unwrap_or(0) {
            return Err("bad-txns-token-in-belowout");
        }
    }
    Ok(())
}
