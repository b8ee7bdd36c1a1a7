//! Paying an invoice: the one algorithm behind every dialect (`spec/jpp.md` §4).
//!
//! Cheap checks first, with no I/O; then the idempotency and replay checks against what is
//! recorded; then the invoice's state, the outputs, the coins and fee, and the node's own
//! acceptance check; then the claim (open → paying, payment recorded) before anything is
//! broadcast, so a second payer loses before its coins move; then broadcast and the paid
//! commit with its event. An ambiguous broadcast keeps the claim: the reconciler settles it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde_json::json;

use super::{Invoice, InvoiceId, InvoiceOutput, InvoiceStatus, InvoiceView};
use crate::chain::node::{
    Acceptance, Broadcast, Node, NodeClient, NodeError, RejectKind, Rejection, TxStatus,
};
use crate::chain::{txid_of, Address, Network, OutPoint, Tx, TxError, Txid};
use crate::notify::Dispatcher;
use crate::store::payments::{self, Claim, BROADCAST};
use crate::store::{self, NewEvent, Store, StoreError};
use crate::units::bch;

/// Most hex characters a payment can be: twice [`crate::chain::MAX_TX_SIZE`].
pub const MAX_TX_HEX: usize = 2 * crate::chain::MAX_TX_SIZE;
/// Bytes the smallest P2PKH unlocking bytecode adds to an unsigned input (for `verify`): a
/// push of a 65-byte Schnorr signature (64 bytes and the hash type) and a push of a 33-byte
/// compressed key. Its length prefix is one byte, as the empty script's was. An ECDSA
/// signature makes it up to 107 bytes; the pay step checks whichever it really is.
const SMALLEST_P2PKH_UNLOCK_BYTES: usize = 100;
/// Most refund outputs a wallet may name.
const MAX_REFUNDS: usize = 10;

/// Why a payment was not accepted. The texts are BitPay's where BitPay has one, because
/// wallets match on them.
#[derive(Debug, thiserror::Error)]
pub enum PayError {
    #[error("This invoice was not found or has been archived")]
    NotFound,
    #[error("Your transaction was an in an invalid format, it must be a hexadecimal string")]
    NotHex,
    #[error("We were unable to parse the transaction you sent. Please try again or contact your wallet provider ({0})")]
    BadTx(TxError),
    #[error("Invoice no longer accepting payments")]
    NotAccepting(InvoiceStatus),
    #[error("Transaction already used for another invoice")]
    UsedElsewhere,
    #[error("The transaction was already on the network before this invoice was created; it cannot pay it")]
    Replay,
    #[error("The transaction you sent does not have any output to the bitcoin address on the invoice (output {index}: {address})")]
    MissingOutput { index: usize, address: String },
    #[error("The amount on the transaction ({paid} BCH) does not match the amount requested ({asked} BCH). This payment will not be accepted.")]
    WrongAmount { paid: String, asked: String },
    #[error("The transaction does not carry the tokens invoice output {index} asks for: {detail}")]
    WrongTokens { index: usize, detail: String },
    #[error("Transaction fee ({paid_per_kb} sat/kb) is below the current minimum threshold ({required_per_kb} sat/kb)")]
    FeeTooLow {
        paid_per_kb: u64,
        required_per_kb: u64,
    },
    #[error("One or more input transactions for your transaction were not found on the blockchain. Make sure you're not trying to use unconfirmed change")]
    InputsMissing,
    /// A coin the transaction spends is already spent by another transaction the node has
    /// (BCHN's `txn-mempool-conflict`): the customer's wallet is paying with coins it already
    /// used.
    #[error("The transaction is a double spend: one or more of its inputs are already spent by another transaction on the network, so it cannot pay this invoice")]
    DoubleSpend,
    #[error("The transaction was broadcast before it was sent here, so its fee cannot be checked against this invoice's rate ({0} sat/kb); send the transaction to the invoice before broadcasting it")]
    FeeUnverifiable(u64),
    #[error("Transaction rejected by network: {0}")]
    Rejected(String),
    #[error("We were unable to parse your payment. Please try again or contact your wallet provider ({0})")]
    Unparsable(String),
    #[error("Request must include exactly one (1) transaction")]
    NotOneTransaction,
    #[error("Unsupported Content-Type for payment: send application/payment-request, application/payment-verification, application/verify-payment, application/payment or application/bitcoincash-payment")]
    UnsupportedType,
    #[error("This invoice is priced in BCH, not {0}. Please try with a BCH wallet instead")]
    WrongChain(String),
    /// A field beside the transaction (memo, refund_to) is wrong.
    #[error("{0}")]
    Invalid(String),
    /// The node could not be asked; nothing was recorded and the same transaction may be sent
    /// again.
    #[error("The BCH node is unavailable; nothing was recorded, send the same transaction again shortly")]
    NodeUnavailable(NodeError),
    /// The broadcast's outcome is not known yet; Cashier owns it and will settle it.
    #[error("The payment was accepted and is being broadcast; send the same transaction again to learn the result")]
    Pending,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl PayError {
    /// Errors the wallet can do nothing about but wait (503 with Retry-After).
    pub fn is_retryable(&self) -> bool {
        matches!(self, PayError::NodeUnavailable(_) | PayError::Pending)
    }
}

/// What a wallet submits, in any dialect.
#[derive(Debug, Clone)]
pub struct Submission {
    pub raw_tx: Vec<u8>,
    pub memo: Option<String>,
    pub refund_to: Option<serde_json::Value>,
}

impl Submission {
    /// From the hex a wallet sent.
    pub fn from_hex(hex_tx: &str) -> Result<Vec<u8>, PayError> {
        let hex_tx = hex_tx.trim();
        if hex_tx.len() > MAX_TX_HEX {
            return Err(PayError::BadTx(TxError::TooLarge(hex_tx.len() / 2)));
        }
        decode_hex(hex_tx).ok_or(PayError::NotHex)
    }
}

/// Hex digits to bytes through a lookup table. A 100 kB transaction arrives as 200 kB of hex,
/// and a flood of them is refused at the cost of reading them: the `hex` crate's
/// per-character `match` made decoding half of that cost.
fn decode_hex(text: &str) -> Option<Vec<u8>> {
    const BAD: u8 = 0xff;
    const TABLE: [u8; 256] = {
        let mut table = [BAD; 256];
        let mut i = 0;
        while i < 10 {
            table[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            table[b'a' as usize + i] = 10 + i as u8;
            table[b'A' as usize + i] = 10 + i as u8;
            i += 1;
        }
        table
    };
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let mut bytes = Vec::with_capacity(digits.len() / 2);
    for pair in digits.chunks_exact(2) {
        let (high, low) = (TABLE[usize::from(pair[0])], TABLE[usize::from(pair[1])]);
        // Every digit is below 16; BAD is not.
        if (high | low) > 0x0f {
            return None;
        }
        bytes.push(high << 4 | low);
    }
    Some(bytes)
}

/// The pay flow over one store and one node.
#[derive(Clone)]
pub struct Payments {
    store: Store,
    dispatcher: Dispatcher,
    node: NodeClient,
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
    pub fn new(
        store: Store,
        dispatcher: Dispatcher,
        node: NodeClient,
        network: Network,
        public_url: String,
    ) -> Payments {
        Payments {
            dispatcher,
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
        let arrival = crate::units::now_ms();
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
        let arrival = crate::units::now_ms();
        if submission
            .memo
            .as_ref()
            .is_some_and(|m| m.len() > super::create::MAX_MEMO_BYTES)
        {
            return Err(PayError::Invalid("memo must be at most 4096 bytes".into()));
        }
        let refund_to = self.check_refunds(submission.refund_to)?;
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
                .write(move |c| payments::claim(c, &claim, crate::units::now_ms()))
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
            .read(move |c| store::invoices::get(c, id))
            .await?
            .ok_or(PayError::NotFound)?;
        Ok(Some(Ok(invoice)))
    }

    /// The invoice, if it accepts payments at `arrival`.
    async fn open_invoice(&self, id: InvoiceId, arrival: i64) -> Result<Invoice, PayError> {
        let invoice = self
            .store
            .read(move |c| store::invoices::get(c, id))
            .await?
            .ok_or(PayError::NotFound)?;
        match invoice.status_at(arrival) {
            InvoiceStatus::Open => Ok(invoice),
            other => Err(PayError::NotAccepting(other)),
        }
    }

    /// Steps 5 of the flow: the coins, the fee, and the node's own check (`ask_node`, for signed
    /// transactions). When a coin is gone, the node tells why: the transaction is in its
    /// mempool already (the wallet broadcast it itself; judged by when the node first saw it
    /// and by the fee the node says it pays), or another transaction spent the coin (a double
    /// spend), or the coin does not exist.
    async fn inputs_fee_and_node(
        &self,
        tx: &Tx,
        txid: Txid,
        raw: &[u8],
        size: usize,
        invoice: &Invoice,
        ask_node: bool,
    ) -> Result<(), PayError> {
        match self.check_coins_and_fee(tx, invoice, size).await {
            Ok(()) if ask_node => self.node_accepts(raw, invoice).await,
            Ok(()) => Ok(()),
            Err(PayError::InputsMissing) => {
                let status = self.node.tx_status(txid).await.map_err(node_down)?;
                self.already_with_the_node(status, raw, invoice).await
            }
            Err(e) => Err(e),
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
                size: node_size,
            } => {
                if !first_seen_ms.is_some_and(|seen| seen_since(seen, invoice.created_ms)) {
                    return Err(PayError::Replay);
                }
                match (fee_sats, node_size) {
                    (Some(fee), Some(size)) => fee_meets_rate(fee, size, invoice.fee_per_kb),
                    // The node took it into its mempool, so BCHN's relay floor was met; a
                    // higher rate asked by the invoice cannot be checked without the fee.
                    _ if invoice.fee_per_kb <= crate::chain::dev::RELAY_FEE_PER_KB => Ok(()),
                    _ => Err(PayError::FeeUnverifiable(invoice.fee_per_kb)),
                }
            }
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

    /// Every input's coin must exist unspent; the fee must meet the invoice's rate.
    async fn check_coins_and_fee(
        &self,
        tx: &Tx,
        invoice: &Invoice,
        size: usize,
    ) -> Result<(), PayError> {
        let outpoints: Vec<_> = tx.inputs.iter().map(|i| i.prevout).collect();
        let mut total_in = 0u64;
        // In steps, stopping at the first missing coin: a transaction of made-up inputs costs
        // the node one lookup, not one per input.
        for step in coin_lookups(&outpoints) {
            for coin in self.node.coins(step).await.map_err(node_down)? {
                let coin = coin.ok_or(PayError::InputsMissing)?;
                total_in = total_in.saturating_add(coin.output.value);
            }
        }
        let total_out: u64 = tx.outputs.iter().map(|o| o.value).sum();
        let fee = total_in.checked_sub(total_out).ok_or_else(|| {
            PayError::Rejected(
                "bad-txns-in-belowout (the outputs spend more than the inputs hold)".into(),
            )
        })?;
        fee_meets_rate(fee, size as u64, invoice.fee_per_kb)
    }

    /// The node's own acceptance check. A transaction the node already has is a replay, unless
    /// it reached the network after the invoice was created (the wallet broadcast it itself).
    async fn node_accepts(&self, raw: &[u8], invoice: &Invoice) -> Result<(), PayError> {
        match self.node.test_accept(raw).await.map_err(node_down)? {
            Acceptance::Allowed => Ok(()),
            Acceptance::AlreadyKnown {
                first_seen_ms: Some(seen),
            } if seen_since(seen, invoice.created_ms) => Ok(()),
            Acceptance::AlreadyKnown { .. } => Err(PayError::Replay),
            Acceptance::Rejected(r) => Err(rejected(r)),
        }
    }

    async fn settle(&self, id: InvoiceId, txid: Txid) -> Result<Invoice, PayError> {
        let (network, public_url) = (self.network, self.public_url.clone());
        let now = crate::units::now_ms();
        let event = move |inv: &Invoice| payment_received(inv, network, &public_url, now);
        let invoice = self
            .store
            .write(move |c| payments::settle(c, id, txid, now, &event))
            .await?
            .ok_or(PayError::NotFound)?;
        self.dispatcher.wake();
        Ok(invoice)
    }

    async fn release(&self, id: InvoiceId, txid: Txid) -> Result<(), PayError> {
        let now = crate::units::now_ms();
        Ok(self
            .store
            .write(move |c| payments::release(c, id, txid, now))
            .await?)
    }

    /// Settles every payment whose broadcast was left unsettled (a crash, a timeout): if the
    /// node has the transaction it is paid; if not it is broadcast again; a definitive refusal
    /// reopens the invoice. Returns how many payments were settled either way.
    pub async fn reconcile(&self) -> Result<usize, PayError> {
        let pending = self.store.read(payments::in_flight).await?;
        let mut settled = 0;
        for p in pending {
            let (Some(txid), Ok(id)) = (Txid::from_hex(&p.txid), p.invoice_id.parse::<InvoiceId>())
            else {
                tracing::error!(txid = %p.txid, "unreadable payment row left alone");
                continue;
            };
            let known = match self.node.tx_status(txid).await {
                Ok(TxStatus::Unknown) => false,
                Ok(_) => true,
                Err(e) => {
                    tracing::warn!(%txid, error = %e, "reconcile: node unavailable, will retry");
                    continue;
                }
            };
            let outcome = if known {
                Ok(Broadcast::Accepted)
            } else {
                self.node.broadcast(&p.raw_tx).await
            };
            match outcome {
                Ok(Broadcast::Accepted | Broadcast::AlreadyConfirmed) => {
                    self.settle(id, txid).await?;
                    tracing::info!(%txid, invoice = %id, "reconciled: paid");
                    settled += 1;
                }
                Ok(Broadcast::Rejected(r)) => {
                    self.release(id, txid).await?;
                    tracing::warn!(%txid, invoice = %id, reason = %r.reason, "reconciled: refused by the network, invoice reopened");
                    settled += 1;
                }
                Err(e) => {
                    tracing::warn!(%txid, error = %e, "reconcile: broadcast outcome unknown, will retry")
                }
            }
        }
        Ok(settled)
    }

    fn check_refunds(
        &self,
        refund_to: Option<serde_json::Value>,
    ) -> Result<Option<serde_json::Value>, PayError> {
        let Some(value) = refund_to.filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let list = value.as_array().ok_or_else(|| {
            PayError::Invalid("refund_to must be a list of {amount, address}".into())
        })?;
        if list.len() > MAX_REFUNDS {
            return Err(PayError::Invalid(format!(
                "refund_to may have at most {MAX_REFUNDS} entries"
            )));
        }
        let mut normalised = Vec::with_capacity(list.len());
        for (i, entry) in list.iter().enumerate() {
            let amount = entry["amount"].as_u64().ok_or_else(|| {
                PayError::Invalid(format!(
                    "refund_to[{i}].amount must be a whole number of sats"
                ))
            })?;
            let address = entry["address"]
                .as_str()
                .ok_or_else(|| PayError::Invalid(format!("refund_to[{i}].address is required")))?;
            let address = Address::parse(address, self.network)
                .map_err(|e| PayError::Invalid(format!("refund_to[{i}].address {e}")))?;
            normalised.push(json!({"amount": amount, "address": address.to_cashaddr(false)}));
        }
        Ok(Some(serde_json::Value::Array(normalised)))
    }

    fn gate(&self, txid: Txid) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(txid).or_default().clone()
    }

    fn release_gate(&self, txid: Txid, gate: Arc<tokio::sync::Mutex<()>>) {
        let mut map = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        drop(gate);
        // Only the map holds it now: nobody else is waiting on this txid.
        if map.get(&txid).is_some_and(|g| Arc::strong_count(g) == 1) {
            map.remove(&txid);
        }
    }
}

/// Above this many inputs the first coin is asked for alone before the others. An honest
/// payment has a few inputs and keeps a single lookup; a large transaction pays one small
/// extra lookup, and one of made-up inputs is refused after it.
const PROBE_ABOVE: usize = 16;
/// Coins asked for in one step after that: the BCHN client's batch size, so the steps add no
/// round trips to the node, and a missing coin ends the lookup within one batch.
const LOOKUP_STEP: usize = 500;

/// The steps `check_coins_and_fee` looks `outpoints` up in.
fn coin_lookups(outpoints: &[OutPoint]) -> impl Iterator<Item = &[OutPoint]> {
    let probe = if outpoints.len() > PROBE_ABOVE { 1 } else { 0 };
    let (first, rest) = outpoints.split_at(probe);
    std::iter::once(first)
        .filter(|f| !f.is_empty())
        .chain(rest.chunks(LOOKUP_STEP))
}

fn node_down(e: NodeError) -> PayError {
    PayError::NodeUnavailable(e)
}

fn rejected(r: Rejection) -> PayError {
    match r.kind {
        RejectKind::MissingInputs => PayError::InputsMissing,
        RejectKind::Conflict => PayError::DoubleSpend,
        RejectKind::Invalid => PayError::Rejected(r.reason),
    }
}

/// Whether a transaction the node first saw at `seen_ms` reached it after the invoice was
/// created at `created_ms`, at the node's granularity: BCHN records a mempool arrival in
/// whole seconds, so a wallet that broadcasts within the invoice's first second reads as
/// earlier than the invoice in milliseconds.
fn seen_since(seen_ms: i64, created_ms: i64) -> bool {
    seen_ms >= created_ms - created_ms.rem_euclid(1000)
}

/// `fee` sats for `size` bytes is at least `fee_per_kb` sats per 1000 bytes, in integers.
fn fee_meets_rate(fee: u64, size: u64, fee_per_kb: u64) -> Result<(), PayError> {
    if u128::from(fee) * 1000 < u128::from(fee_per_kb) * u128::from(size) {
        return Err(PayError::FeeTooLow {
            paid_per_kb: (u128::from(fee) * 1000 / u128::from(size.max(1))) as u64,
            required_per_kb: fee_per_kb,
        });
    }
    Ok(())
}

/// Each invoice output must be paid by a distinct transaction output: same locking bytecode,
/// exactly the sats asked, exactly the tokens asked. Other outputs (change) are allowed.
pub fn match_outputs(tx: &Tx, wanted: &[InvoiceOutput]) -> Result<(), PayError> {
    let mut used = vec![false; tx.outputs.len()];
    for (index, want) in wanted.iter().enumerate() {
        let script = want.address.locking_bytecode();
        let candidates: Vec<usize> = (0..tx.outputs.len())
            .filter(|&i| !used[i] && tx.outputs[i].locking_bytecode == script)
            .collect();
        let exact = candidates
            .iter()
            .copied()
            .find(|&i| tx.outputs[i].value == want.amount && tx.outputs[i].token == want.token);
        match exact {
            Some(i) => used[i] = true,
            None => {
                let Some(&first) = candidates.first() else {
                    return Err(PayError::MissingOutput {
                        index,
                        address: want.address_string(),
                    });
                };
                let near = candidates
                    .iter()
                    .copied()
                    .find(|&i| tx.outputs[i].value == want.amount)
                    .unwrap_or(first);
                let got = &tx.outputs[near];
                if got.value != want.amount {
                    return Err(PayError::WrongAmount {
                        paid: bch(got.value),
                        asked: bch(want.amount),
                    });
                }
                return Err(PayError::WrongTokens {
                    index,
                    detail: token_difference(want.token.as_ref(), got.token.as_ref()),
                });
            }
        }
    }
    Ok(())
}

fn token_difference(
    want: Option<&crate::chain::TokenData>,
    got: Option<&crate::chain::TokenData>,
) -> String {
    match (want, got) {
        (None, Some(_)) => "the output carries tokens the invoice does not ask for".into(),
        (Some(_), None) => "the output carries no tokens".into(),
        (Some(w), Some(g)) if w.category != g.category => format!(
            "category {} instead of {}",
            hex::encode(g.category),
            hex::encode(w.category)
        ),
        (Some(w), Some(g)) if w.amount != g.amount => {
            format!("fungible amount {} instead of {}", g.amount, w.amount)
        }
        (Some(w), Some(g)) => match (&w.nft, &g.nft) {
            (Some(wn), Some(gn)) if wn.capability != gn.capability => {
                format!(
                    "NFT capability {} instead of {}",
                    gn.capability.as_str(),
                    wn.capability.as_str()
                )
            }
            (Some(wn), Some(gn)) if wn.commitment != gn.commitment => {
                format!(
                    "NFT commitment {} instead of {}",
                    hex::encode(&gn.commitment),
                    hex::encode(&wn.commitment)
                )
            }
            (Some(_), None) => "the NFT is missing".into(),
            (None, Some(_)) => "an NFT the invoice does not ask for".into(),
            _ => "token data differs".into(),
        },
        (None, None) => "token data differs".into(),
    }
}

/// The `payment_received` message (`spec/notify.md`): the public invoice, txid, time, memo.
pub fn payment_received(
    invoice: &Invoice,
    network: Network,
    public_url: &str,
    now_ms: i64,
) -> NewEvent {
    let view = InvoiceView::new(invoice, network, public_url, now_ms).public();
    let payment = invoice.payment.as_ref();
    NewEvent {
        topic: format!("invoice:{}", invoice.id),
        kind: "payment_received",
        payload: json!({
            "type": "payment_received",
            "invoice": view,
            "txid": payment.map(|p| p.txid.to_hex()),
            "paid_at": payment.and_then(|p| p.paid_ms).map(crate::units::iso_millis),
            "memo": payment.and_then(|p| p.memo.clone()).or_else(|| invoice.memo.clone()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_decodes_as_the_hex_crate_does() {
        let bytes: Vec<u8> = (0..=255).collect();
        for text in [
            hex::encode(&bytes),
            hex::encode_upper(&bytes),
            String::new(),
        ] {
            assert_eq!(decode_hex(&text), Some(hex::decode(&text).unwrap()));
        }
        for bad in ["0", "0g", "g0", "0 ", "-1", "é0", "0\u{0}"] {
            assert_eq!(decode_hex(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn first_sightings_count_from_the_invoices_second() {
        let created = 1_700_000_000_750;
        // BCHN's whole second of the same moment, and anything later.
        assert!(seen_since(1_700_000_000_000, created));
        assert!(seen_since(1_700_000_001_000, created));
        assert!(seen_since(created, created));
        // The second before is before.
        assert!(!seen_since(1_699_999_999_000, created));
        assert!(!seen_since(1_699_999_999_999, created));
        // Times before 1970 floor the same way.
        assert!(seen_since(-2_000, -1_500));
        assert!(!seen_since(-2_001, -1_500));
    }

    #[test]
    fn the_fee_rate_is_judged_in_integers() {
        assert!(fee_meets_rate(219, 219, 1000).is_ok());
        assert!(fee_meets_rate(438, 219, 2000).is_ok());
        match fee_meets_rate(437, 219, 2000) {
            Err(PayError::FeeTooLow {
                paid_per_kb,
                required_per_kb,
            }) => assert_eq!((paid_per_kb, required_per_kb), (1995, 2000)),
            other => panic!("{other:?}"),
        }
        assert!(fee_meets_rate(0, 0, 1000).is_ok());
    }
}
