//! The built-in development chain: a regtest-like chain inside Cashier, so a new user can pay an
//! invoice end to end with no node and no wallet. No real money moves.
//!
//! It keeps a UTXO set in the database (a restart keeps it), checks transactions the way BCHN's
//! mempool does for what payments touch (wire format, context-free consensus checks, size,
//! standard outputs and dust, 1 sat/byte relay fee, CashToken conservation, P2PKH ECDSA
//! signatures with SIGHASH_FORKID), answers in BCHN's words, and mines on demand. A faucet
//! creates coins from nothing, as a miner would.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bitcoin::secp256k1::{All, Secp256k1};

use super::node::{Acceptance, Broadcast, Coin, NodeError, RejectKind, Rejection, TxStatus};
use super::sighash::verify_p2pkh;
use super::{
    dust_threshold, txid_of, Address, Input, NftCapability, OutPoint, Output, TokenData, Tx,
    TxError, Txid, MAX_TX_SIZE, MIN_TX_SIZE,
};
use crate::store::dev_chain::{self, CoinRow};
use crate::store::{Store, StoreError};

/// BCHN's default relay fee floor, 1 sat/byte.
pub const RELAY_FEE_PER_KB: u64 = 1000;
/// BCHN refuses fees above this by default (`maxtxfee`, 0.1 BCH): it protects the payer.
pub const ABSURD_FEE: u64 = 10_000_000;
/// Most transactions remembered as verified.
const VERIFIED_CACHE_MAX: usize = 100_000;
/// Most one faucet call hands out: 1000 BCH.
pub const FAUCET_MAX: u64 = 100_000_000_000;

#[derive(Clone)]
pub struct DevChain {
    store: Store,
    secp: Arc<Secp256k1<All>>,
    /// `sendrawtransaction` calls answered, for tests and metrics.
    broadcasts: Arc<AtomicU64>,
    /// Transactions whose signatures already verified. Like BCHN's script cache: a coin never
    /// changes once created and a txid commits to everything signed, so one check is enough
    /// (the acceptance check before a broadcast and the broadcast itself share it).
    verified: Arc<Mutex<HashSet<Txid>>>,
}

impl std::fmt::Debug for DevChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevChain")
    }
}

/// What checking a transaction against the chain found.
enum Checked {
    New(Tx),
    Known { confirmed: bool, first_seen_ms: i64 },
    Rejected(Rejection),
}

fn reject(kind: RejectKind, reason: impl Into<String>) -> Checked {
    Checked::Rejected(Rejection {
        kind,
        reason: reason.into(),
    })
}

fn unavailable(e: StoreError) -> NodeError {
    NodeError::Unavailable(format!("dev chain storage: {e}"))
}

#[derive(Debug, thiserror::Error)]
pub enum FaucetError {
    #[error("amount must be between {min} and {FAUCET_MAX} sats for this output")]
    Amount { min: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A coin the faucet made.
#[derive(Debug, Clone)]
pub struct FaucetCoin {
    pub outpoint: OutPoint,
    pub output: Output,
    pub height: i64,
}

impl DevChain {
    pub fn new(store: Store) -> DevChain {
        DevChain {
            store,
            secp: Arc::new(Secp256k1::new()),
            broadcasts: Arc::default(),
            verified: Arc::default(),
        }
    }

    pub async fn coins(&self, outpoints: &[OutPoint]) -> Result<Vec<Option<Coin>>, NodeError> {
        let wanted = outpoints.to_vec();
        let (rows, tip) = self
            .store
            .read(move |c| Ok((dev_chain::coins(c, &wanted)?, dev_chain::tip(c)?)))
            .await
            .map_err(unavailable)?;
        Ok(rows
            .into_iter()
            .map(|row| {
                let row = row.filter(|r| r.spent_by.is_none())?;
                let output = stored_output(row.value, &row.script)?;
                let confirmations = row.height.map_or(0, |h| (tip - h + 1).max(0) as u32);
                Some(Coin {
                    output,
                    confirmations,
                })
            })
            .collect())
    }

    pub async fn test_accept(&self, raw: &[u8]) -> Result<Acceptance, NodeError> {
        Ok(match self.check(raw).await? {
            Checked::New(_) => Acceptance::Allowed,
            Checked::Known { first_seen_ms, .. } => Acceptance::AlreadyKnown {
                first_seen_ms: Some(whole_second(first_seen_ms)),
            },
            Checked::Rejected(r) => Acceptance::Rejected(r),
        })
    }

    /// How many times `broadcast` was called since start.
    pub fn broadcast_calls(&self) -> u64 {
        self.broadcasts.load(Ordering::Relaxed)
    }

    pub async fn broadcast(&self, raw: &[u8]) -> Result<Broadcast, NodeError> {
        self.broadcasts.fetch_add(1, Ordering::Relaxed);
        let tx = match self.check(raw).await? {
            Checked::New(tx) => tx,
            Checked::Known {
                confirmed: false, ..
            } => return Ok(Broadcast::Accepted),
            Checked::Known {
                confirmed: true, ..
            } => return Ok(Broadcast::AlreadyConfirmed),
            Checked::Rejected(r) => return Ok(Broadcast::Rejected(r)),
        };
        let (txid, raw, now) = (txid_of(raw), raw.to_vec(), crate::units::now_ms());
        match self
            .store
            .write(move |c| dev_chain::accept(c, txid, &raw, &tx, now))
            .await
        {
            Ok(()) => Ok(Broadcast::Accepted),
            // Another transaction spent a coin between the check and now.
            Err(StoreError::Conflict(_)) => Ok(Broadcast::Rejected(Rejection {
                kind: RejectKind::Conflict,
                reason: "txn-mempool-conflict".into(),
            })),
            // The same transaction won a race with itself: it is in the mempool now.
            Err(StoreError::Duplicate(_)) => Ok(Broadcast::Accepted),
            Err(e) => Err(unavailable(e)),
        }
    }

    pub async fn tx_status(&self, txid: Txid) -> Result<TxStatus, NodeError> {
        let (found, tip, mempool) = self
            .store
            .read(move |c| {
                let found = dev_chain::tx(c, txid)?;
                // A mempool transaction's inputs' coins stay stored, marked spent by it: its
                // fee can be read back, as `getmempoolentry` gives it.
                let mempool = match found {
                    Some((None, _)) => match dev_chain::raw_tx(c, txid)?
                        .and_then(|raw| Some((Tx::decode(&raw).ok()?, raw.len())))
                    {
                        Some((tx, size)) => {
                            let outpoints: Vec<OutPoint> =
                                tx.inputs.iter().map(|i| i.prevout).collect();
                            let coins = dev_chain::coins(c, &outpoints)?;
                            Some((tx, size, coins))
                        }
                        None => None,
                    },
                    _ => None,
                };
                Ok((found, dev_chain::tip(c)?, mempool))
            })
            .await
            .map_err(unavailable)?;
        let paid = mempool.and_then(|(tx, size, coins)| fee_and_size(&tx, size, coins));
        Ok(match found {
            None => TxStatus::Unknown,
            Some((None, first_seen)) => TxStatus::Mempool {
                first_seen_ms: Some(whole_second(first_seen)),
                fee_sats: paid.map(|(fee, _)| fee),
                size: paid.map(|(_, size)| size),
            },
            Some((Some(height), _)) => TxStatus::Confirmed {
                confirmations: (tip - height + 1).max(1) as u32,
            },
        })
    }

    /// Mines `blocks` blocks (the first takes the whole mempool); returns the new height.
    pub async fn mine(&self, blocks: u32) -> Result<i64, StoreError> {
        let now = crate::units::now_ms();
        self.store
            .write(move |c| dev_chain::mine(c, blocks, now))
            .await
    }

    /// Creates a coin of `amount` sats (and `token`, if given) for `address`, in a block of its
    /// own. On a real chain tokens come only from a genesis transaction; the faucet is the
    /// miner here and makes them directly, so any category can be tested.
    pub async fn faucet(
        &self,
        address: &Address,
        amount: u64,
        token: Option<TokenData>,
    ) -> Result<FaucetCoin, FaucetError> {
        let output = Output {
            value: amount,
            token,
            locking_bytecode: address.locking_bytecode(),
        };
        let min = dust_threshold(output.script_field().len());
        if !(min..=FAUCET_MAX).contains(&amount) {
            return Err(FaucetError::Amount { min });
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
        let raw = tx.serialize();
        let txid = txid_of(&raw);
        let now = crate::units::now_ms();
        let height = self
            .store
            .write(move |c| dev_chain::mine_faucet_tx(c, txid, &raw, &tx, now))
            .await?;
        Ok(FaucetCoin {
            outpoint: OutPoint { txid, vout: 0 },
            output,
            height,
        })
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

    /// Everything BCHN's `testmempoolaccept` would check for a payment.
    async fn check(&self, raw: &[u8]) -> Result<Checked, NodeError> {
        let tx = match Tx::decode(raw) {
            Ok(tx) => tx,
            Err(_) => return Ok(reject(RejectKind::Invalid, "TX decode failed")),
        };
        if let Err(e) = tx.check() {
            return Ok(reject(RejectKind::Invalid, consensus_reason(&e)));
        }
        if tx.is_coinbase() {
            return Ok(reject(RejectKind::Invalid, "coinbase"));
        }
        if let Some(reason) = standardness(&tx, raw.len()) {
            return Ok(reject(RejectKind::Invalid, reason));
        }

        let txid = txid_of(raw);
        let outpoints: Vec<OutPoint> = tx.inputs.iter().map(|i| i.prevout).collect();
        let (known, rows, spender_in_mempool) = self
            .store
            .read(move |c| {
                if let Some(known) = dev_chain::tx(c, txid)? {
                    return Ok((Some(known), Vec::new(), false));
                }
                // The first input that is missing or spent decides the answer, so the lookup
                // ends at the first missing one...
                let rows = dev_chain::coins_until_missing(c, &outpoints)?;
                // ...and only the first spent one before it matters: whether its spender is
                // still in the mempool tells a conflict from a coin spent for good.
                let first_spender = rows
                    .iter()
                    .map_while(Option::as_ref)
                    .find_map(|r| r.spent_by.as_deref())
                    .and_then(Txid::from_hex);
                let in_mempool = match first_spender {
                    Some(id) => matches!(dev_chain::tx(c, id)?, Some((None, _))),
                    None => false,
                };
                Ok((None, rows, in_mempool))
            })
            .await
            .map_err(unavailable)?;
        if let Some((height, first_seen_ms)) = known {
            return Ok(Checked::Known {
                confirmed: height.is_some(),
                first_seen_ms,
            });
        }

        let mut spent = Vec::with_capacity(rows.len());
        for row in rows {
            let Some(row) = row else {
                return Ok(reject(RejectKind::MissingInputs, "missing-inputs"));
            };
            if row.spent_by.is_some() {
                return Ok(if spender_in_mempool {
                    reject(RejectKind::Conflict, "txn-mempool-conflict")
                } else {
                    reject(RejectKind::MissingInputs, "bad-txns-inputs-missingorspent")
                });
            }
            match stored_output(row.value, &row.script) {
                Some(o) => spent.push(o),
                None => return Ok(reject(RejectKind::Invalid, "bad-txns-token-prefix")),
            }
        }
        if spent.len() != tx.inputs.len() {
            // The lookup answers every input unless one is missing, which returned above.
            return Err(unavailable(StoreError::Corrupt(
                "the coin lookup answered fewer inputs than asked".into(),
            )));
        }

        let fee = match fee(&tx, &spent) {
            Ok(fee) => fee,
            Err(reason) => return Ok(reject(RejectKind::Invalid, reason)),
        };
        if u128::from(fee) * 1000 < u128::from(RELAY_FEE_PER_KB) * raw.len() as u128 {
            return Ok(reject(RejectKind::Invalid, "min relay fee not met"));
        }
        if fee > ABSURD_FEE {
            return Ok(reject(RejectKind::Invalid, "absurdly-high-fee"));
        }
        if let Err(reason) = tokens_conserved(&tx, &spent) {
            return Ok(reject(RejectKind::Invalid, reason));
        }
        if !self.already_verified(txid) {
            for index in 0..tx.inputs.len() {
                if let Err(e) = verify_p2pkh(&self.secp, &tx, index, &spent) {
                    return Ok(reject(
                        RejectKind::Invalid,
                        format!("mandatory-script-verify-flag-failed ({e})"),
                    ));
                }
            }
            self.remember_verified(txid);
        }
        Ok(Checked::New(tx))
    }
}

/// BCHN records when a transaction entered its mempool in whole seconds (`getmempoolentry`'s
/// `time`); the dev chain answers the same, so the pay flow meets here what it meets there.
fn whole_second(ms: i64) -> i64 {
    ms - ms.rem_euclid(1000)
}

/// The fee and size of a transaction, as `getmempoolentry` gives them, from the coins it
/// spends; `None` if one of them cannot be read back.
fn fee_and_size(tx: &Tx, size: usize, coins: Vec<Option<CoinRow>>) -> Option<(u64, u64)> {
    let spent = coins
        .into_iter()
        .map(|row| row.and_then(|r| stored_output(r.value, &r.script)))
        .collect::<Option<Vec<_>>>()?;
    fee(tx, &spent).ok().map(|fee| (fee, size as u64))
}

/// A stored coin as an output, its token prefix split off.
fn stored_output(value: i64, script: &[u8]) -> Option<Output> {
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
