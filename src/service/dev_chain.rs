//! The dev chain's stateful half: its UTXO set, mempool and blocks in the database, judged by
//! the rules in `chain::dev` and answered in BCHN's terms (`chain::node`), so the pay flow
//! meets here what it meets on a real node.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::chain::dev::{
    check_alone, check_with_coins, faucet_tx, fee_and_size, spent_outputs, stored_output,
    whole_second, Checked, FaucetCoin, StoredCoin, Verifier,
};
use crate::chain::node::{Acceptance, Broadcast, Coin, NodeError, RejectKind, Rejection, TxStatus};
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

#[derive(Clone)]
pub struct DevChain {
    store: Store,
    verifier: Arc<Verifier>,
    /// `sendrawtransaction` calls answered, for tests and metrics.
    broadcasts: Arc<AtomicU64>,
}

impl std::fmt::Debug for DevChain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DevChain")
    }
}

fn unavailable(e: StoreError) -> NodeError {
    NodeError::Unavailable(format!("dev chain storage: {e}"))
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
        let (txid, raw, now) = (txid_of(raw), raw.to_vec(), now_ms());
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
        self.store
            .write(move |c| dev_chain::mine(c, blocks, now))
            .await
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
        Ok(FaucetCoin {
            outpoint: OutPoint { txid, vout: 0 },
            output,
            height,
        })
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
