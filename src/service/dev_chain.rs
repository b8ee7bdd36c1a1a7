//! The dev chain's stateful half: its UTXO set, mempool and blocks in the database, judged by
//! the rules in `chain::dev` and answered in BCHN's terms (`chain::node`), so the pay flow
//! meets here what it meets on a real node.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::broadcast;

use crate::chain::dev::{
    check_alone, check_with_coins, conflict_tx, faucet_tx, fee_and_size, spent_outputs,
    stored_output, whole_second, Checked, FaucetCoin, StoredCoin, Verifier, GENESIS,
};
use crate::chain::node::{
    Acceptance, Broadcast, Coin, CoinsAndAcceptance, NodeError, RejectKind, Rejection, TxStatus,
};
use crate::chain::watch::{Block, BlockHash, ChainTx, DsProof, Header, Notice};
use crate::chain::{txid_of, Address, OutPoint, TokenData, Tx, Txid};
use crate::store::dev_chain::{self, CoinRow};
use crate::store::{Store, StoreError};
use crate::units::now_ms;

#[derive(Debug, thiserror::Error)]
pub enum FaucetError {
    #[error(
        "amount must be between {min} and {} sats for this output",
        crate::chain::dev::FAUCET_MAX
    )]
    Amount { min: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a rehearsal of a bad day could not be staged.
#[derive(Debug, thiserror::Error)]
pub enum RehearsalError {
    #[error("transaction {0} is not in the dev chain's mempool (only an unmined transaction can be double-spent; a mined one needs a reorg with replace)")]
    NotInMempool(Txid),
    #[error("transaction {0} is not among the blocks the reorg replaces, nor in the mempool")]
    NotReorged(Txid),
    #[error("depth must be from 1 to {max} blocks (the chain has {tip})")]
    Depth { max: u32, tip: i64 },
    #[error("transaction {0} spends too little to pay a conflicting transaction's fee")]
    TooSmall(Txid),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Deepest reorg the dev chain rehearses.
pub const MAX_REORG_DEPTH: u32 = 100;

#[derive(Clone)]
pub struct DevChain {
    store: Store,
    verifier: Arc<Verifier>,
    /// `sendrawtransaction` calls answered, for tests and metrics.
    broadcasts: Arc<AtomicU64>,
    /// What this process's dev chain did, for the chain watcher here (as BCHN's ZMQ is for
    /// a real node); a watcher in another process finds it at its next poll.
    notices: broadcast::Sender<Notice>,
}

impl std::fmt::Debug for DevChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevChain")
    }
}

/// Hints kept for a watcher that falls behind before it hears `Lost`.
const NOTICES_KEPT: usize = 1024;

/// A header from stored hashes: height 0 is the genesis block, which has no row.
fn header(height: i64, hash: Option<&str>, prev: Option<&str>) -> Header {
    let hash_or_genesis = |h: Option<&str>| {
        h.and_then(BlockHash::from_hex)
            .unwrap_or(BlockHash(GENESIS))
    };
    Header {
        hash: hash_or_genesis(hash),
        height,
        prev: (height > 0).then(|| hash_or_genesis(prev)),
    }
}

fn unavailable(e: StoreError) -> NodeError {
    NodeError::Unavailable(format!("dev chain storage: {e}"))
}

/// A stored coin as `gettxout` answers it at `tip`: `None` when it is missing or spent.
fn unspent(row: Option<CoinRow>, tip: i64) -> Option<Coin> {
    let row = row.filter(|r| r.spent_by.is_none())?;
    let output = stored_output(row.value, &row.script)?;
    let confirmations = row.height.map_or(0, |h| (tip - h + 1).max(0) as u32);
    Some(Coin {
        output,
        confirmations,
    })
}

fn stored(row: CoinRow) -> StoredCoin {
    StoredCoin {
        value: row.value,
        script: row.script,
        height: row.height,
        spent: row.spent_by.is_some(),
    }
}

impl DevChain {
    pub fn new(store: Store) -> DevChain {
        DevChain {
            store,
            verifier: Arc::default(),
            broadcasts: Arc::default(),
            notices: broadcast::channel(NOTICES_KEPT).0,
        }
    }

    /// What the chain does from now on, as hints (a lagging receiver hears `Lost` from the
    /// watcher's side: `broadcast` tells it it lagged).
    pub fn notices(&self) -> broadcast::Receiver<Notice> {
        self.notices.subscribe()
    }

    fn notify(&self, notice: Notice) {
        // Nobody listening (no watcher yet) is fine: the watcher reconciles when it starts.
        let _ = self.notices.send(notice);
    }

    async fn notify_tip(&self) {
        if let Ok(tip) = self.tip().await {
            self.notify(Notice::Block(tip.hash));
        }
    }

    pub async fn coins(&self, outpoints: &[OutPoint]) -> Result<Vec<Option<Coin>>, NodeError> {
        let wanted = outpoints.to_vec();
        let (rows, tip) = self
            .store
            .read(move |c| Ok((dev_chain::coins(c, &wanted)?, dev_chain::tip(c)?)))
            .await
            .map_err(unavailable)?;
        Ok(rows.into_iter().map(|row| unspent(row, tip)).collect())
    }

    /// [`DevChain::coins`] and [`DevChain::test_accept`] with one read of the store: the coins
    /// the acceptance check needs are the ones asked for, so they are looked up once. When a
    /// coin is missing the check is not made (the caller asks why on its own).
    pub async fn coins_and_acceptance(
        &self,
        outpoints: &[OutPoint],
        raw: &[u8],
    ) -> Result<CoinsAndAcceptance, NodeError> {
        let alone = check_alone(raw);
        let own_inputs = alone.as_ref().is_ok_and(|tx| {
            tx.inputs.len() == outpoints.len()
                && tx
                    .inputs
                    .iter()
                    .zip(outpoints)
                    .all(|(i, o)| i.prevout == *o)
        });
        // Every input of a transaction the chain holds (mempool or block) is marked spent by
        // it, so with every coin unspent the chain does not hold this one: no `Known` here,
        // and no conflict to tell from a missing input. (A coin whose stored bytes are not an
        // output reads as missing, as in `coins`.)
        let Some(coins) = self
            .coins(outpoints)
            .await?
            .into_iter()
            .collect::<Option<Vec<_>>>()
        else {
            return Ok(CoinsAndAcceptance::Missing);
        };
        if alone.is_ok() && !own_inputs {
            // Not this transaction's inputs: its check needs its own coins.
            return Ok(CoinsAndAcceptance::Found {
                coins,
                acceptance: self.test_accept(raw).await?,
            });
        }
        let acceptance = match alone {
            Err(r) => Acceptance::Rejected(r),
            Ok(tx) => {
                let spent: Vec<_> = coins.iter().map(|c| c.output.clone()).collect();
                let judged = check_with_coins(&tx, raw.len(), &spent)
                    .and_then(|()| self.verifier.verify(txid_of(raw), &tx, &spent));
                match judged {
                    Ok(()) => Acceptance::Allowed,
                    Err(r) => Acceptance::Rejected(r),
                }
            }
        };
        Ok(CoinsAndAcceptance::Found { coins, acceptance })
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
        let (txid, raw, now) = (txid_of(raw), raw.to_vec(), now_ms());
        // Cloned only for a listening watcher: the pay path stays as it was without one.
        let seen = (self.notices.receiver_count() > 0).then(|| tx.clone());
        match self
            .store
            .write(move |c| dev_chain::accept(c, txid, &raw, &tx, now))
            .await
        {
            Ok(()) => {
                if let Some(tx) = seen {
                    self.notify(Notice::Tx {
                        tx: ChainTx { txid, tx },
                        seen_ms: now,
                    });
                }
                Ok(Broadcast::Accepted)
            }
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
        let paid = mempool.and_then(|(tx, size, coins)| {
            fee_and_size(
                &tx,
                size,
                coins.into_iter().map(|r| r.map(stored)).collect(),
            )
        });
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
        let now = now_ms();
        let height = self
            .store
            .write(move |c| dev_chain::mine(c, blocks, now))
            .await?;
        self.notify_tip().await;
        Ok(height)
    }

    /// Creates a coin of `amount` sats (and `token`, if given) for `address`, in a block of its
    /// own.
    pub async fn faucet(
        &self,
        address: &Address,
        amount: u64,
        token: Option<TokenData>,
    ) -> Result<FaucetCoin, FaucetError> {
        let (tx, output) =
            faucet_tx(address, amount, token).map_err(|min| FaucetError::Amount { min })?;
        let raw = tx.serialize();
        let txid = txid_of(&raw);
        let now = now_ms();
        let height = self
            .store
            .write(move |c| dev_chain::mine_faucet_tx(c, txid, &raw, &tx, now))
            .await?;
        self.notify_tip().await;
        Ok(FaucetCoin {
            outpoint: OutPoint { txid, vout: 0 },
            output,
            height,
        })
    }

    /// Rehearses a double spend of a mempool transaction, as BCHN meets one: a conflicting
    /// transaction arrives, is refused (the first seen stays), and the node makes a
    /// double-spend proof for the first. Returns the proof (the same one when asked again).
    pub async fn double_spend(&self, txid: Txid) -> Result<DsProof, RehearsalError> {
        if let Some((id, _)) = self
            .store
            .read(move |c| dev_chain::proof_for(c, txid))
            .await?
        {
            return Ok(DsProof { id, txid });
        }
        let unmined = matches!(
            self.store.read(move |c| dev_chain::tx(c, txid)).await?,
            Some((None, _))
        );
        if !unmined {
            return Err(RehearsalError::NotInMempool(txid));
        }
        let conflict = self.conflict_of(txid).await?;
        let raw = conflict.serialize();
        // The proof's id: any hash unique to the pair will do on this chain.
        let id = txid_of(&[txid.0, txid_of(&raw).0].concat()).to_hex();
        let (stored_id, now) = (id.clone(), now_ms());
        self.store
            .write(move |c| dev_chain::insert_proof(c, txid, &stored_id, &raw, now))
            .await?;
        self.notify(Notice::DoubleSpend(txid));
        Ok(DsProof { id, txid })
    }

    /// Rehearses a reorg: the newest `depth` blocks are replaced by `depth + 1` new ones, the
    /// transactions they held going back into the last new block, except `drop` (gone from
    /// the chain, as if evicted) and `replace` (its conflicting transaction mined instead: a
    /// double spend that won). Returns the new tip's height.
    pub async fn reorg(
        &self,
        depth: u32,
        drop: Option<Txid>,
        replace: Option<Txid>,
    ) -> Result<i64, RehearsalError> {
        let tip = self.store.read(dev_chain::tip).await?;
        if depth == 0 || depth > MAX_REORG_DEPTH || i64::from(depth) > tip {
            return Err(RehearsalError::Depth {
                max: MAX_REORG_DEPTH.min(u32::try_from(tip).unwrap_or(0)),
                tip,
            });
        }
        let fork = tip - i64::from(depth);
        for txid in drop.iter().chain(replace.iter()).copied() {
            let at = self.store.read(move |c| dev_chain::tx(c, txid)).await?;
            match at {
                Some((None, _)) => {}
                Some((Some(height), _)) if height > fork => {}
                _ => return Err(RehearsalError::NotReorged(txid)),
            }
        }
        let conflict = match replace {
            // The conflict is made from the transaction's coins, so it is read while the
            // transaction is still in the mempool or a block: as a block's, its coins read the
            // same.
            Some(txid) => Some(self.conflict_of(txid).await?),
            None => None,
        };
        let dropped: Vec<Txid> = drop.into_iter().chain(replace).collect();
        let now = now_ms();
        let height = self
            .store
            .write(move |c| {
                let add = conflict
                    .as_ref()
                    .map(|tx| (txid_of(&tx.serialize()), tx.serialize(), tx));
                dev_chain::reorg(
                    c,
                    depth,
                    &dropped,
                    add.as_ref().map(|(id, raw, tx)| (*id, raw.as_slice(), *tx)),
                    now,
                )
            })
            .await?;
        self.notify_tip().await;
        Ok(height)
    }

    /// The transaction that conflicts with `txid` (mined or not): the one its proof holds, or
    /// a new one made from its coins.
    async fn conflict_of(&self, txid: Txid) -> Result<Tx, RehearsalError> {
        let found = self
            .store
            .read(move |c| {
                let Some(raw) = dev_chain::raw_tx(c, txid)? else {
                    return Ok(None);
                };
                let conflict = dev_chain::proof_for(c, txid)?.map(|(_, raw)| raw);
                let tx = Tx::decode(&raw).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let outpoints: Vec<OutPoint> = tx.inputs.iter().map(|i| i.prevout).collect();
                Ok(Some((tx, dev_chain::coins(c, &outpoints)?, conflict)))
            })
            .await?;
        let Some((tx, coins, conflict)) = found else {
            return Err(RehearsalError::NotReorged(txid));
        };
        if let Some(raw) = conflict {
            return Tx::decode(&raw)
                .map_err(|e| RehearsalError::Store(StoreError::Corrupt(e.to_string())));
        }
        let spent = coins
            .into_iter()
            .map(|c| c.and_then(|c| stored_output(c.value, &c.script)))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| StoreError::Corrupt(format!("the coins {txid} spends are gone")))?;
        conflict_tx(&tx, &spent).ok_or(RehearsalError::TooSmall(txid))
    }

    // What the chain watcher asks (`chain::watch::ChainSource`).

    pub async fn tip(&self) -> Result<Header, NodeError> {
        let (height, hash, prev) = self
            .store
            .read(|c| {
                let height = dev_chain::tip(c)?;
                Ok((
                    height,
                    dev_chain::block_hash_at(c, height)?,
                    dev_chain::block_hash_at(c, height - 1)?,
                ))
            })
            .await
            .map_err(unavailable)?;
        Ok(header(height, hash.as_deref(), prev.as_deref()))
    }

    pub async fn header(&self, hash: BlockHash) -> Result<Option<Header>, NodeError> {
        if hash.0 == GENESIS {
            return Ok(Some(header(0, None, None)));
        }
        let found = self
            .store
            .read(move |c| {
                let Some(height) = dev_chain::block_height_of(c, &hash.to_hex())? else {
                    return Ok(None);
                };
                Ok(Some((height, dev_chain::block_hash_at(c, height - 1)?)))
            })
            .await
            .map_err(unavailable)?;
        Ok(found.map(|(height, prev)| header(height, Some(&hash.to_hex()), prev.as_deref())))
    }

    pub async fn block(&self, hash: BlockHash) -> Result<Option<Block>, NodeError> {
        let Some(header) = self.header(hash).await? else {
            return Ok(None);
        };
        let height = header.height;
        let raws = self
            .store
            .read(move |c| dev_chain::block_txs(c, height))
            .await
            .map_err(unavailable)?;
        let txs = raws
            .iter()
            .map(|raw| {
                Tx::decode(raw)
                    .map(|tx| ChainTx {
                        txid: txid_of(raw),
                        tx,
                    })
                    .map_err(|e| NodeError::Protocol(format!("dev chain block: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Some(Block { header, txs }))
    }

    pub async fn mempool(&self) -> Result<Vec<Txid>, NodeError> {
        let ids = self
            .store
            .read(dev_chain::mempool)
            .await
            .map_err(unavailable)?;
        Ok(ids.iter().filter_map(|id| Txid::from_hex(id)).collect())
    }

    pub async fn mempool_tx(&self, txid: Txid) -> Result<Option<ChainTx>, NodeError> {
        let raw = self
            .store
            .read(move |c| match dev_chain::tx(c, txid)? {
                Some((None, _)) => dev_chain::raw_tx(c, txid),
                _ => Ok(None),
            })
            .await
            .map_err(unavailable)?;
        raw.map(|raw| {
            Tx::decode(&raw)
                .map(|tx| ChainTx { txid, tx })
                .map_err(|e| NodeError::Protocol(format!("dev chain mempool: {e}")))
        })
        .transpose()
    }

    pub async fn double_spend_proofs(
        &self,
        txids: &[Txid],
    ) -> Result<Vec<Option<DsProof>>, NodeError> {
        let asked = txids.to_vec();
        let mut ids = self
            .store
            .read(move |c| dev_chain::proof_ids(c, &asked))
            .await
            .map_err(unavailable)?;
        Ok(txids
            .iter()
            .map(|&txid| ids.remove(&txid).map(|id| DsProof { id, txid }))
            .collect())
    }

    /// Everything BCHN's `testmempoolaccept` would check for a payment.
    async fn check(&self, raw: &[u8]) -> Result<Checked, NodeError> {
        let tx = match check_alone(raw) {
            Ok(tx) => tx,
            Err(r) => return Ok(Checked::Rejected(r)),
        };
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
                // Spent by this very transaction, accepted between the two reads (a second
                // broadcast of it racing the first): known, as BCHN would answer.
                if first_spender == Some(txid) {
                    if let Some(known) = dev_chain::tx(c, txid)? {
                        return Ok((Some(known), Vec::new(), false));
                    }
                }
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
        let coins = rows.into_iter().map(|r| r.map(stored)).collect();
        let spent = match spent_outputs(coins, spender_in_mempool) {
            Ok(spent) => spent,
            Err(r) => return Ok(Checked::Rejected(r)),
        };
        if spent.len() != tx.inputs.len() {
            // The lookup answers every input unless one is missing, which returned above.
            return Err(unavailable(StoreError::Corrupt(
                "the coin lookup answered fewer inputs than asked".into(),
            )));
        }
        let judged = check_with_coins(&tx, raw.len(), &spent)
            .and_then(|()| self.verifier.verify(txid, &tx, &spent));
        Ok(match judged {
            Ok(()) => Checked::New(tx),
            Err(r) => Checked::Rejected(r),
        })
    }
}
