//! Paying an invoice: the one algorithm behind every dialect (`spec/jpp.md` §4).
//!
//! Cheap checks first, with no I/O; then the idempotency and replay checks against what is
//! recorded; then the invoice's state, the outputs, the coins and fee, and the node's own
//! acceptance check (the coins and the check asked in one round trip); then the claim (open → paying, payment recorded) before anything is
//! broadcast, so a second payer loses before its coins move; then broadcast and the paid
//! commit with its event. An ambiguous broadcast keeps the claim: the reconciler settles it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::chain::node::{
    Acceptance, Broadcast, Coin, CoinsAndAcceptance, Node, NodeError, RejectKind, Rejection,
    TxStatus,
};
use crate::chain::{txid_of, Network, Tx, Txid};
use crate::jpp::pay::{
    check_memo, check_refunds, fee_meets_rate, judge_already_in_mempool, match_outputs, node_down,
    rejected, seen_since, PayError, Submission, SMALLEST_P2PKH_UNLOCK_BYTES,
};
use crate::jpp::{Invoice, InvoiceId, InvoiceStatus, InvoiceView};
use crate::notify::{self, Event};
use crate::store::payments::{self, Claim, BROADCAST};
use crate::store::{invoices, Store, StoreError};
use crate::units::now_ms;

use super::NodeClient;

/// The pay flow over one store and one node.
#[derive(Clone)]
pub struct Payments {
    pub(super) store: Store,
    pub(super) node: NodeClient,
    network: Network,
    public_url: String,
    /// One request at a time per txid in this process: a wallet retrying the same
    /// transaction waits for the first attempt and then gets its answer, never a second
    /// broadcast.
    in_flight: Arc<Mutex<HashMap<Txid, Arc<tokio::sync::Mutex<()>>>>>,
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payments")
            .field("node", &self.node)
            .finish()
    }
}

impl Payments {
    pub fn new(store: Store, node: NodeClient, network: Network, public_url: String) -> Payments {
        Payments {
            network,
            store,
            node,
            public_url,
            in_flight: Default::default(),
        }
    }

    pub fn node(&self) -> &NodeClient {
        &self.node
    }

    /// `verify`: every check short of the claim, for a signed or unsigned transaction;
    /// writes nothing.
    ///
    /// The fee of an unsigned transaction is judged at the smallest size it can have once
    /// signed (every unsigned input a Schnorr P2PKH one), so a wallet that will pay exactly the
    /// invoice's rate passes; the pay step judges the real size. A wallet's own `weightedSize`
    /// is not used: BitPay defines it as the signed size, which only the signed transaction
    /// can show (Paytaca sends the unsigned size, BWC its ECDSA-signed size). Letting it raise
    /// the size would refuse here a payment the pay step accepts; an underpaid one is still
    /// refused there, before anything is recorded or broadcast.
    pub async fn verify(&self, id: InvoiceId, raw: &[u8]) -> Result<(), PayError> {
        let arrival = now_ms();
        let tx = Tx::parse(raw).map_err(PayError::BadTx)?;
        let txid = txid_of(raw);
        if let Some(p) = self.store.read(move |c| payments::by_txid(c, txid)).await? {
            return if p.invoice_id == id.to_string() {
                Ok(())
            } else {
                Err(PayError::UsedElsewhere)
            };
        }
        let invoice = self.open_invoice(id, arrival).await?;
        match_outputs(&tx, &invoice.outputs)?;
        let unsigned = tx.inputs.iter().filter(|i| i.script_sig.is_empty()).count();
        let size = raw.len() + unsigned * SMALLEST_P2PKH_UNLOCK_BYTES;
        self.inputs_fee_and_node(&tx, txid, raw, size, &invoice, unsigned == 0)
            .await
    }

    /// `pay`: accepts the transaction for the invoice exactly once, broadcasts it, records it.
    pub async fn pay(&self, id: InvoiceId, submission: Submission) -> Result<Invoice, PayError> {
        let arrival = now_ms();
        check_memo(submission.memo.as_deref())?;
        let refund_to = check_refunds(submission.refund_to, self.network)?;
        let tx = Tx::parse(&submission.raw_tx).map_err(PayError::BadTx)?;
        let txid = txid_of(&submission.raw_tx);

        let gate = self.gate(txid);
        let result = {
            let _turn = gate.lock().await;
            self.pay_once(
                id,
                tx,
                txid,
                submission.raw_tx,
                submission.memo,
                refund_to,
                arrival,
            )
            .await
        };
        self.release_gate(txid, gate);
        result
    }

    #[allow(clippy::too_many_arguments)]
    async fn pay_once(
        &self,
        id: InvoiceId,
        tx: Tx,
        txid: Txid,
        raw: Vec<u8>,
        memo: Option<String>,
        refund_to: Option<serde_json::Value>,
        arrival: i64,
    ) -> Result<Invoice, PayError> {
        // Idempotency and replay: a txid is recorded for at most one invoice.
        if let Some(answer) = self.already_recorded(id, txid).await? {
            return answer;
        }
        let invoice = self.open_invoice(id, arrival).await?;
        match_outputs(&tx, &invoice.outputs)?;
        self.inputs_fee_and_node(&tx, txid, &raw, raw.len(), &invoice, true)
            .await?;

        let claim = Claim {
            invoice: id,
            txid,
            raw_tx: raw.clone(),
            memo,
            refund_to,
            arrival_ms: arrival,
        };
        let claimed = {
            let claim = claim.clone();
            self.store
                .write(move |c| payments::claim(c, &claim, now_ms()))
                .await
        };
        match claimed {
            Ok(true) => {}
            Ok(false) => return Err(PayError::NotAccepting(InvoiceStatus::Paying)),
            // Another process recorded this txid a moment ago: answer as for a retry.
            Err(StoreError::Duplicate(_)) => {
                return match self.already_recorded(id, txid).await? {
                    Some(answer) => answer,
                    None => Err(PayError::Pending),
                }
            }
            Err(e) => return Err(e.into()),
        }

        match self.node.broadcast(&raw).await {
            Ok(Broadcast::Accepted | Broadcast::AlreadyConfirmed) => self.settle(id, txid).await,
            Ok(Broadcast::Rejected(rejection)) => {
                self.release(id, txid).await?;
                Err(rejected(rejection))
            }
            // Refused before anything was sent: nothing happened, so give the invoice back.
            Err(e @ NodeError::Unavailable(_)) => {
                self.release(id, txid).await?;
                Err(PayError::NodeUnavailable(e))
            }
            // The transaction may be on the network: keep the claim; the reconciler finishes it.
            Err(e) => {
                tracing::warn!(%txid, error = %e, "broadcast outcome unknown; the reconciler will settle it");
                Err(PayError::Pending)
            }
        }
    }

    /// The answer for a txid already recorded: the same success for this invoice, a refusal
    /// for any other. `None` when it is not recorded.
    async fn already_recorded(
        &self,
        id: InvoiceId,
        txid: Txid,
    ) -> Result<Option<Result<Invoice, PayError>>, PayError> {
        let Some(p) = self.store.read(move |c| payments::by_txid(c, txid)).await? else {
            return Ok(None);
        };
        if p.invoice_id != id.to_string() {
            return Ok(Some(Err(PayError::UsedElsewhere)));
        }
        if p.state != BROADCAST {
            return Ok(Some(Err(PayError::Pending)));
        }
        let invoice = self
            .store
            .read(move |c| invoices::get(c, id))
            .await?
            .ok_or(PayError::NotFound)?;
        Ok(Some(Ok(invoice)))
    }

    /// The invoice, if it accepts payments at `arrival`.
    async fn open_invoice(&self, id: InvoiceId, arrival: i64) -> Result<Invoice, PayError> {
        let invoice = self
            .store
            .read(move |c| invoices::get(c, id))
            .await?
            .ok_or(PayError::NotFound)?;
        match invoice.status_at(arrival) {
            InvoiceStatus::Open => Ok(invoice),
            other => Err(PayError::NotAccepting(other)),
        }
    }

    /// Steps 5 of the flow: the coins, the fee, and the node's own check (`ask_node`, for signed
    /// transactions). The coins and the node's check are one question to the node (for BCHN one
    /// batch request, `[gettxout…, testmempoolaccept]`), judged in this order: a missing coin
    /// first, then the invoice's fee rate, then the node's verdict (scripts and signatures,
    /// fee floor, dust, conflicts). So the signatures are checked before the claim, at the cost
    /// of one round trip for both. When a coin is gone, the node tells why: the transaction is
    /// in its mempool already (the wallet broadcast it itself; judged by when the node first saw
    /// it and by the fee the node says it pays), or another transaction spent the coin (a
    /// double spend), or the coin does not exist.
    async fn inputs_fee_and_node(
        &self,
        tx: &Tx,
        txid: Txid,
        raw: &[u8],
        size: usize,
        invoice: &Invoice,
        ask_node: bool,
    ) -> Result<(), PayError> {
        let outpoints: Vec<_> = tx.inputs.iter().map(|i| i.prevout).collect();
        // Every coin in one request (BCHN's batch holds the largest payment's inputs). Asking
        // the first coin alone first would spare the node a transaction of made-up coins only
        // while the first is made up too; with one real coin first, the rest are looked up
        // anyway. So it cost honest payments of many inputs a round trip and bounded nothing.
        let found = if ask_node {
            self.node.coins_and_acceptance(&outpoints, raw).await
        } else {
            // An unsigned draft: the node would refuse its scripts, so only its coins are asked.
            self.node.coins(&outpoints).await.map(|coins| {
                match coins.into_iter().collect::<Option<Vec<_>>>() {
                    Some(coins) => CoinsAndAcceptance::Found {
                        coins,
                        acceptance: Acceptance::Allowed,
                    },
                    None => CoinsAndAcceptance::Missing,
                }
            })
        };
        match found.map_err(node_down)? {
            CoinsAndAcceptance::Found { coins, acceptance } => {
                fee_meets_invoice(tx, &coins, invoice, size)?;
                node_accepts(acceptance, invoice)
            }
            CoinsAndAcceptance::Missing => {
                let status = self.node.tx_status(txid).await.map_err(node_down)?;
                self.already_with_the_node(status, raw, invoice).await
            }
        }
    }

    /// Judges a transaction whose coins are gone by what the node knows of it.
    async fn already_with_the_node(
        &self,
        status: TxStatus,
        raw: &[u8],
        invoice: &Invoice,
    ) -> Result<(), PayError> {
        match status {
            TxStatus::Mempool {
                first_seen_ms,
                fee_sats,
                size,
            } => judge_already_in_mempool(first_seen_ms, fee_sats, size, invoice),
            // Mined already: when it first appeared is not known here.
            TxStatus::Confirmed { .. } => Err(PayError::Replay),
            TxStatus::Unknown => Err(self.why_coins_are_missing(raw).await?),
        }
    }

    /// A coin is missing and the node does not have the transaction: its acceptance check
    /// tells a coin spent by another mempool transaction (BCHN checks conflicts before it
    /// looks coins up, signatures after, so an unsigned transaction is judged as well) from one
    /// that does not exist.
    async fn why_coins_are_missing(&self, raw: &[u8]) -> Result<PayError, PayError> {
        Ok(match self.node.test_accept(raw).await.map_err(node_down)? {
            Acceptance::Rejected(Rejection {
                kind: RejectKind::Conflict,
                ..
            }) => PayError::DoubleSpend,
            _ => PayError::InputsMissing,
        })
    }

    /// Marks the payment broadcast and the invoice paid, with `payment_received`, in one
    /// transaction. Settling twice is harmless: the second finds nothing to move and appends
    /// no event.
    pub(super) async fn settle(&self, id: InvoiceId, txid: Txid) -> Result<Invoice, PayError> {
        let (network, public_url) = (self.network, self.public_url.clone());
        let now = now_ms();
        let invoice = self
            .store
            .write(move |c| {
                let (invoice, moved) = payments::settle(c, id, txid, now)?;
                if let (true, Some(invoice)) = (moved, &invoice) {
                    let view = InvoiceView::new(invoice, network, &public_url, now);
                    notify::append(c, &Event::payment_received(invoice, view), now)?;
                }
                Ok(invoice)
            })
            .await?
            .ok_or(PayError::NotFound)?;
        Ok(invoice)
    }

    pub(super) async fn release(&self, id: InvoiceId, txid: Txid) -> Result<(), PayError> {
        let now = now_ms();
        Ok(self
            .store
            .write(move |c| payments::release(c, id, txid, now))
            .await?)
    }

    pub(super) fn gate(&self, txid: Txid) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(txid).or_default().clone()
    }

    pub(super) fn release_gate(&self, txid: Txid, gate: Arc<tokio::sync::Mutex<()>>) {
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        drop(gate);
        // Only the map holds it now: nobody else is waiting on this txid.
        if map.get(&txid).is_some_and(|g| Arc::strong_count(g) == 1) {
            map.remove(&txid);
        }
    }
}

/// The fee the coins leave must meet the invoice's rate at `size` bytes.
fn fee_meets_invoice(
    tx: &Tx,
    coins: &[Coin],
    invoice: &Invoice,
    size: usize,
) -> Result<(), PayError> {
    let total_in = coins
        .iter()
        .fold(0u64, |sum, c| sum.saturating_add(c.output.value));
    let total_out: u64 = tx.outputs.iter().map(|o| o.value).sum();
    let fee = total_in.checked_sub(total_out).ok_or_else(|| {
        PayError::Rejected(
            "bad-txns-in-belowout (the outputs spend more than the inputs hold)".into(),
        )
    })?;
    fee_meets_rate(fee, size as u64, invoice.fee_per_kb)
}

/// The node's own acceptance check. A transaction the node already has is a replay, unless it
/// reached the network after the invoice was created (the wallet broadcast it itself).
fn node_accepts(acceptance: Acceptance, invoice: &Invoice) -> Result<(), PayError> {
    match acceptance {
        Acceptance::Allowed => Ok(()),
        Acceptance::AlreadyKnown {
            first_seen_ms: Some(seen),
        } if seen_since(seen, invoice.created_ms) => Ok(()),
        Acceptance::AlreadyKnown { .. } => Err(PayError::Replay),
        Acceptance::Rejected(r) => Err(rejected(r)),
    }
}
