//! The chain watcher: after a payment's broadcast it follows the transaction on the chain.
//! Confirmations are counted by block hash, so a reorg walks them back; a double-spend proof
//! flags or invalidates the invoice (`--double-spend-policy`); a conflicting transaction
//! mined, or ours gone from the mempool, invalidates it; ours mined after all confirms it.
//!
//! One pass: walk from the last block processed to the node's tip by hash (disconnecting
//! what a reorg replaced, connecting each new block), then look at the payments not yet
//! mined (still in the mempool? a proof?), then move the invoices whose standing changed.
//! Each move is one conditional UPDATE with its event, in one transaction. A pass runs on
//! every hint the node pushes and on a timer, since hints get lost; a pass over an unchanged
//! chain writes nothing. With several processes on one PostgreSQL, one holds an advisory
//! lock and watches; the others wait for it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::broadcast;

use crate::chain::bchn::ZmqHints;
use crate::chain::node::{Node, NodeError, TxStatus};
use crate::chain::watch::{BlockHash, ChainSource, ChainTx, DsProof, Header, Notice};
use crate::chain::{OutPoint, Tx, Txid};
use crate::jpp::direct::{arrived_for, claim_order, paid_toward, receive};
use crate::jpp::{DoubleSpendPolicy, InvalidReason, InvoiceId, InvoiceStatus, InvoiceView};
use crate::notify::{self, Event, Kind};
use crate::store::chain::{self as watch_rows, ChainPayment, Watched, KEEP_BLOCKS};
use crate::store::{invoices, payments, Conn, Store, StoreError};
use crate::supervisor::Stopping;
use crate::units::now_ms;

use super::{Invoices, NodeClient};

/// The advisory lock the watching process holds.
const WATCHER_LOCK_KEY: i64 = 0x6361_7368_6965_7202;

#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    #[error(transparent)]
    Node(#[from] NodeError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The node's chain changed under the walk; the next pass starts again.
    #[error("the chain moved during the pass: {0}")]
    Moved(String),
}

#[derive(Clone)]
pub struct Watcher {
    store: Store,
    node: NodeClient,
    invoices: Invoices,
    policy: DoubleSpendPolicy,
    poll_every: Duration,
    /// BCHN's ZMQ publisher (`--node-zmq`), checked when the server was built.
    zmq: Option<String>,
    /// Mempool transactions already looked at for payments to an address (the mempool as of
    /// the last pass, plus those pushed since), with when each was first seen: a transaction
    /// mined later is judged by that time, which the node no longer gives once it is mined.
    seen: Arc<Mutex<HashMap<Txid, i64>>>,
}

impl std::fmt::Debug for Watcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watcher")
            .field("policy", &self.policy)
            .finish()
    }
}

/// The node's pushed hints, whichever node it is.
pub enum Hints {
    /// The dev chain of this process.
    Dev(broadcast::Receiver<Notice>),
    /// BCHN's ZMQ publisher.
    Zmq(Box<ZmqHints>),
    /// Nothing pushed: the timer alone.
    None,
}

impl Hints {
    async fn next(&mut self) -> Notice {
        match self {
            Hints::Dev(rx) => match rx.recv().await {
                Ok(notice) => notice,
                Err(broadcast::error::RecvError::Lagged(_)) => Notice::Lost,
                Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
            },
            Hints::Zmq(zmq) => zmq.next().await,
            Hints::None => std::future::pending().await,
        }
    }
}

/// What one invoice move is: from which states to which, with which reason and events.
struct Move {
    from: &'static [InvoiceStatus],
    to: InvoiceStatus,
    reason: Option<InvalidReason>,
    kind: Kind,
}

const CONFIRM: Move = Move {
    from: &[InvoiceStatus::Paid, InvoiceStatus::Invalid],
    to: InvoiceStatus::Confirmed,
    reason: None,
    kind: Kind::PaymentConfirmed,
};

const UNCONFIRM: Move = Move {
    from: &[InvoiceStatus::Confirmed],
    to: InvoiceStatus::Paid,
    reason: None,
    kind: Kind::PaymentUnconfirmed,
};

fn invalidate(reason: InvalidReason) -> Move {
    Move {
        from: &[InvoiceStatus::Paid, InvoiceStatus::Confirmed],
        to: InvoiceStatus::Invalid,
        reason: Some(reason),
        kind: Kind::PaymentInvalidated,
    }
}

impl Watcher {
    pub fn new(
        store: Store,
        node: NodeClient,
        invoices: Invoices,
        policy: DoubleSpendPolicy,
        poll_every: Duration,
        zmq: Option<String>,
    ) -> Watcher {
        Watcher {
            zmq,
            store,
            node,
            invoices,
            policy,
            poll_every,
            seen: Arc::default(),
        }
    }

    /// The duty: takes the lead (one watching process), then passes on every hint and on the
    /// timer until `stopping`. Losing the lock's connection ends it with an error, and the
    /// supervisor starts it again (to wait for the lead anew).
    pub async fn run(self, mut stopping: Stopping) -> Result<(), String> {
        let mut hints = self.hints();
        let mut lead = loop {
            match self.store.take_lead(WATCHER_LOCK_KEY, "chain-lock").await? {
                Some(lead) => break lead,
                None => {
                    tokio::select! {
                        _ = stopping.stopped() => return Ok(()),
                        _ = tokio::time::sleep(self.poll_every) => {}
                    }
                }
            }
        };
        tracing::info!("chain watcher: watching");
        let mut due = true;
        let mut next_pass = tokio::time::Instant::now();
        loop {
            if due {
                if let Err(e) = self.pass().await {
                    tracing::warn!(error = %e, "chain watcher: pass failed, will retry");
                }
                // The timer counts from the last pass, not from the last hint: `rawtx` hints
                // run no pass, and a busy mempool sends them faster than the timer's period,
                // which would otherwise never come round to find what the hints missed.
                next_pass = tokio::time::Instant::now() + self.poll_every;
            }
            tokio::select! {
                _ = stopping.stopped() => return Ok(()),
                _ = &mut lead.lost => return Err("lost the chain watcher's lock".into()),
                notice = hints.next() => {
                    due = match notice {
                        Notice::Tx { tx, seen_ms } => {
                            self.remember(tx.txid, seen_ms);
                            if let Err(e) = self.on_tx(&tx, None).await {
                                tracing::warn!(error = %e, txid = %tx.txid, "chain watcher: a transaction was not judged; the next pass will");
                                self.forget(tx.txid);
                            }
                            false
                        }
                        Notice::Block(_) | Notice::DoubleSpend(_) | Notice::Lost => true,
                    };
                }
                _ = tokio::time::sleep_until(next_pass) => due = true,
            }
        }
    }

    fn hints(&self) -> Hints {
        match (&self.node, &self.zmq) {
            (NodeClient::Dev(dev), _) => Hints::Dev(dev.notices()),
            (NodeClient::Bchn(_), Some(endpoint)) => match ZmqHints::connect(endpoint) {
                Ok(zmq) => Hints::Zmq(Box::new(zmq)),
                Err(e) => {
                    tracing::error!(error = %e, "chain watcher: no ZMQ hints; polling alone");
                    Hints::None
                }
            },
            (NodeClient::Bchn(_), None) => Hints::None,
        }
    }

    /// One reconciliation: the walk to the tip, the mempool's new transactions, the unmined
    /// payments, the invoice moves.
    pub async fn pass(&self) -> Result<(), WatchError> {
        let tip = self.node.tip().await?;
        self.walk_to(tip).await?;
        let mempool: HashSet<Txid> = self.node.mempool().await?.into_iter().collect();
        self.scan_mempool(&mempool).await?;
        self.look_at_unmined(tip, &mempool).await?;
        self.judge().await
    }

    /// Notes when `txid` was first seen (the first time told wins); returns that time.
    fn remember(&self, txid: Txid, at_ms: i64) -> i64 {
        match self.seen.lock() {
            Ok(mut seen) => *seen.entry(txid).or_insert(at_ms),
            Err(_) => at_ms,
        }
    }

    fn first_seen(&self, txid: Txid) -> Option<i64> {
        self.seen.lock().ok()?.get(&txid).copied()
    }

    fn forget(&self, txid: Txid) {
        if let Ok(mut seen) = self.seen.lock() {
            seen.remove(&txid);
        }
    }

    /// Looks at every mempool transaction not looked at before (a hint may have been lost),
    /// and forgets those that left the mempool.
    async fn scan_mempool(&self, mempool: &HashSet<Txid>) -> Result<(), WatchError> {
        let new: Vec<Txid> = match self.seen.lock() {
            Ok(mut seen) => {
                // Run after the walk: what a block took out of the mempool was judged there,
                // by the time noted here.
                seen.retain(|t, _| mempool.contains(t));
                mempool
                    .iter()
                    .filter(|t| !seen.contains_key(t))
                    .copied()
                    .collect()
            }
            Err(_) => mempool.iter().copied().collect(),
        };
        for txid in new {
            match self.node.mempool_tx(txid).await? {
                Some(tx) => self.on_tx(&tx, None).await?,
                None => {
                    self.remember(txid, now_ms());
                }
            }
        }
        Ok(())
    }

    /// A transaction seen in the mempool or (first) in `block`: if it pays an invoice's
    /// address, it is that invoice's payment (`via: chain`), recorded with its event in one
    /// transaction. A transaction already recorded (a payment posted through the protocol)
    /// is left alone.
    async fn on_tx(
        &self,
        chain_tx: &ChainTx,
        block: Option<(BlockHash, i64)>,
    ) -> Result<(), WatchError> {
        let mut scripts: Vec<String> = chain_tx
            .tx
            .outputs
            .iter()
            .map(|o| hex::encode(&o.locking_bytecode))
            .collect();
        scripts.sort_unstable();
        scripts.dedup();
        let txid = chain_tx.txid;
        let now = now_ms();
        // When the network first had it, to the millisecond: when the node's hint was made,
        // or when a pass first found it in the mempool (no later than the node's own whole
        // second says); mined, what was noted while it was in the mempool, or now.
        let noted = match block {
            Some(_) => self.first_seen(txid).unwrap_or(now),
            None => self.remember(txid, now),
        };
        let candidates = self
            .store
            .read(move |c| {
                if payments::by_txid(c, txid)?.is_some() {
                    return Ok(Vec::new());
                }
                let mut found = Vec::new();
                for id in invoices::paying_to(c, &scripts)? {
                    if let Some(invoice) = invoices::get(c, id)? {
                        found.push(invoice);
                    }
                }
                Ok(found)
            })
            .await?;
        let candidates: Vec<_> = candidates
            .into_iter()
            .filter(|i| paid_toward(i, &chain_tx.tx).is_some())
            .collect();
        if candidates.is_empty() {
            return Ok(());
        }
        let first_seen = match block {
            Some(_) => noted,
            None => match self.node.tx_status(txid).await? {
                TxStatus::Mempool {
                    first_seen_ms: Some(second),
                    ..
                } => noted.min(second + 999),
                _ => noted,
            },
        };
        if let Ok(mut seen) = self.seen.lock() {
            seen.insert(txid, first_seen);
        }
        // One transaction is one payment (txids are unique): when it pays several invoices
        // (an address shared between them), the one waiting for it in time, oldest first;
        // never one made after the transaction was seen.
        let Some(id) = candidates
            .into_iter()
            .filter(|i| arrived_for(i, first_seen))
            .min_by_key(|i| claim_order(i, first_seen))
            .map(|i| i.id)
        else {
            return Ok(());
        };
        let (tx, invoices) = (chain_tx.tx.clone(), self.invoices.clone());
        let (raw_tx, block) = (
            chain_tx.tx.serialize(),
            block.map(|(hash, height)| (hash.to_hex(), height)),
        );
        // Judged again inside the write, on the invoice as it is there: the conditional
        // UPDATE then holds it to that.
        let recorded = self
            .store
            .write(move |c| {
                let Some(invoice) = invoices::get(c, id)? else {
                    return Ok(None);
                };
                let Some(amount) = paid_toward(&invoice, &tx) else {
                    return Ok(None);
                };
                if !arrived_for(&invoice, first_seen) {
                    return Ok(None);
                }
                let (to, received) = receive(&invoice, amount, first_seen);
                let payment = ChainPayment {
                    invoice: id,
                    txid,
                    raw_tx: raw_tx.clone(),
                    amount,
                    block: block.clone(),
                };
                let from = (invoice.status, invoice.amount_paid);
                if !watch_rows::record_chain_payment(c, &payment, from, (to, received), now)? {
                    return Ok(None);
                }
                let Some(invoice) = invoices::get(c, payment.invoice)? else {
                    return Err(StoreError::Corrupt("the invoice vanished".into()));
                };
                let view = invoices.view(&invoice, now);
                let event = Event::chain_payment(&invoice, view, &txid.to_hex(), amount);
                notify::append(c, &event, now)?;
                Ok(Some((to, amount)))
            })
            .await;
        match recorded {
            Ok(Some((to, amount))) => {
                tracing::info!(invoice = %id, %txid, amount, status = to.as_str(), "chain watcher: a payment to the address");
                Ok(())
            }
            Ok(None) => Ok(()),
            // Recorded meanwhile (posted through the protocol at the same moment).
            Err(StoreError::Duplicate(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Brings the processed chain to `tip`: walks back by hash to the last block both share,
    /// disconnects what the node no longer has, connects the rest oldest first.
    async fn walk_to(&self, tip: Header) -> Result<(), WatchError> {
        let last = self.store.read(watch_rows::last_block).await?;
        let Some((last_height, last_hash)) = last else {
            // The first pass ever starts at the tip: what came before was never ours to watch.
            let (hash, height, now) = (tip.hash.to_hex(), tip.height, now_ms());
            self.store
                .write(move |c| watch_rows::connect(c, height, &hash, &[], now))
                .await?;
            return Ok(());
        };
        if last_hash == tip.hash.to_hex() {
            return Ok(());
        }
        let mut path = Vec::new();
        let mut at = tip;
        loop {
            if at.height <= last_height {
                let height = at.height;
                let ours = self
                    .store
                    .read(move |c| watch_rows::block_at(c, height))
                    .await?;
                match ours {
                    Some(hash) if hash == at.hash.to_hex() => break,
                    // Below what is kept: take it as the fork point.
                    None if at.height <= last_height - KEEP_BLOCKS => break,
                    _ => {}
                }
            }
            path.push(at);
            let Some(prev) = at.prev else { break };
            at =
                self.node.header(prev).await?.ok_or_else(|| {
                    WatchError::Moved(format!("block {prev} left the main chain"))
                })?;
        }
        let fork = path.last().map_or(tip.height, |oldest| oldest.height - 1);
        if fork < last_height {
            let moved = self
                .store
                .write(move |c| watch_rows::disconnect_above(c, fork))
                .await?;
            tracing::warn!(
                depth = last_height - fork,
                payments = moved,
                "chain watcher: reorg, blocks above {fork} replaced"
            );
        }
        let mut spends = self.unmined_spends().await?;
        for header in path.into_iter().rev() {
            let block = self.node.block(header.hash).await?.ok_or_else(|| {
                WatchError::Moved(format!("block {} left the main chain", header.hash))
            })?;
            let txids: Vec<Txid> = block.txs.iter().map(|t| t.txid).collect();
            let (height, hash, now) = (header.height, header.hash.to_hex(), now_ms());
            self.store
                .write(move |c| watch_rows::connect(c, height, &hash, &txids, now))
                .await?;
            self.conflicts_in(&block.txs, &mut spends).await?;
            for tx in &block.txs {
                self.on_tx(tx, Some((header.hash, header.height))).await?;
            }
        }
        let tip_height = tip.height;
        self.store
            .write(move |c| watch_rows::settle_tip(c, tip_height))
            .await?;
        Ok(())
    }

    /// The coins the unmined payments spend, to find a block's transaction that spends one of
    /// them first (a double spend that was mined).
    async fn unmined_spends(&self) -> Result<HashMap<OutPoint, Watched>, WatchError> {
        let unmined = self.store.read(watch_rows::unmined).await?;
        let mut spends = HashMap::new();
        for w in unmined {
            let Ok(tx) = Tx::decode(&w.raw_tx) else {
                continue;
            };
            for input in &tx.inputs {
                spends.insert(input.prevout, w.clone());
            }
        }
        Ok(spends)
    }

    async fn conflicts_in(
        &self,
        txs: &[ChainTx],
        spends: &mut HashMap<OutPoint, Watched>,
    ) -> Result<(), WatchError> {
        if spends.is_empty() {
            return Ok(());
        }
        for chain_tx in txs {
            for input in &chain_tx.tx.inputs {
                let Some(w) = spends.get(&input.prevout) else {
                    continue;
                };
                if w.txid()? == chain_tx.txid {
                    continue;
                }
                let w = w.clone();
                tracing::warn!(txid = %w.txid, conflict = %chain_tx.txid, "chain watcher: a double spend of a payment was mined");
                self.gone(&w, InvalidReason::DoubleSpendMined).await?;
                spends.retain(|_, other| other.txid != w.txid);
            }
        }
        Ok(())
    }

    /// The payments not in a block: a proof for one is recorded (and acted on); one the node
    /// no longer has is gone, unless it was mined in a block processed before it was paid.
    async fn look_at_unmined(
        &self,
        tip: Header,
        mempool: &HashSet<Txid>,
    ) -> Result<(), WatchError> {
        let unmined = self.store.read(watch_rows::unmined).await?;
        if unmined.is_empty() {
            return Ok(());
        }
        // A block between the walk and the mempool read takes transactions out of the mempool
        // that the walk has not seen mined: judge absence only on an unchanged tip.
        let settled = self.node.tip().await?.hash == tip.hash;
        let unmined = unmined
            .iter()
            .map(|w| {
                let txid = w.txid()?;
                Ok((w, txid, mempool.contains(&txid)))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        // Proofs for every payment in the mempool without one, asked in one request.
        let asked: Vec<_> = unmined
            .iter()
            .filter(|(w, _, pooled)| *pooled && w.double_spend_proof.is_none())
            .collect();
        let txids: Vec<Txid> = asked.iter().map(|(_, txid, _)| *txid).collect();
        let proofs = self.node.double_spend_proofs(&txids).await?;
        for ((w, _, _), proof) in asked.into_iter().zip(proofs) {
            if let Some(proof) = proof {
                self.on_proof(w, proof).await?;
            }
        }
        for &(w, txid, pooled) in &unmined {
            if pooled || !settled {
                continue;
            }
            match self.node.tx_status(txid).await? {
                TxStatus::Mempool { .. } => {}
                TxStatus::Confirmed { confirmations } => {
                    let height = tip.height - i64::from(confirmations) + 1;
                    let hash = self
                        .store
                        .read(move |c| watch_rows::block_at(c, height))
                        .await?;
                    if let Some(hash) = hash {
                        let tip_height = tip.height;
                        self.store
                            .write(move |c| {
                                watch_rows::found_in_block(c, txid, height, &hash, tip_height)
                            })
                            .await?;
                    }
                }
                TxStatus::Unknown => {
                    tracing::warn!(%txid, "chain watcher: a payment left the mempool unmined");
                    self.gone(w, InvalidReason::Dropped).await?;
                }
            }
        }
        Ok(())
    }

    /// Moves the invoices whose payment's confirmations crossed what they wait for, either way.
    async fn judge(&self) -> Result<(), WatchError> {
        let (mined, unmined) = self
            .store
            .read(|c| {
                Ok((
                    watch_rows::mined_in_question(c)?,
                    watch_rows::confirmed_unmined(c)?,
                ))
            })
            .await?;
        for w in mined {
            let (n, required) = (w.confirmations(), w.required());
            let step = match InvoiceStatus::parse(&w.status) {
                Some(InvoiceStatus::Paid) if required > 0 && n >= required => Some(CONFIRM),
                Some(InvoiceStatus::Invalid) if n >= required.max(1) => Some(CONFIRM),
                Some(InvoiceStatus::Confirmed) if n < required => Some(UNCONFIRM),
                _ => None,
            };
            if let Some(step) = step {
                self.apply(&w, step, |_| Ok(true)).await?;
            }
        }
        for w in unmined {
            self.apply(&w, UNCONFIRM, |_| Ok(true)).await?;
        }
        Ok(())
    }

    /// A payment's transaction is gone (dropped, or double-spent by a mined one).
    async fn gone(&self, w: &Watched, reason: InvalidReason) -> Result<(), WatchError> {
        let txid = w.txid()?;
        self.apply(w, invalidate(reason), move |c| {
            watch_rows::mark_gone(c, txid)
        })
        .await
    }

    /// A double-spend proof for a payment's transaction: recorded with its event, and under
    /// the invalidate policy the invoice becomes invalid in the same transaction.
    async fn on_proof(&self, w: &Watched, proof: DsProof) -> Result<(), WatchError> {
        tracing::warn!(txid = %proof.txid, proof = %proof.id, policy = self.policy.as_str(), "chain watcher: double-spend proof for a payment");
        let id = w.invoice()?;
        let (invoices, policy, now) = (self.invoices.clone(), self.policy, now_ms());
        self.store
            .write(move |c| {
                if !watch_rows::record_proof(c, proof.txid, &proof.id)? {
                    return Ok(());
                }
                append_for(
                    c,
                    &invoices,
                    id,
                    Kind::DoubleSpendDetected,
                    Some(policy),
                    now,
                )?;
                if policy == DoubleSpendPolicy::Invalidate {
                    let step = invalidate(InvalidReason::DoubleSpendProof);
                    if watch_rows::move_invoice(c, id, step.from, step.to, step.reason, now)? {
                        append_for(c, &invoices, id, step.kind, None, now)?;
                    }
                }
                Ok(())
            })
            .await?;
        Ok(())
    }

    /// Runs `first` then moves the invoice as `step` says and appends its event, all in one
    /// transaction; nothing moves when `first` says no.
    async fn apply(
        &self,
        w: &Watched,
        step: Move,
        first: impl Fn(&mut Conn) -> Result<bool, StoreError> + Send + 'static,
    ) -> Result<(), WatchError> {
        let id = w.invoice()?;
        let (invoices, now) = (self.invoices.clone(), now_ms());
        let moved = self
            .store
            .write(move |c| {
                if !first(c)? {
                    return Ok(false);
                }
                if !watch_rows::move_invoice(c, id, step.from, step.to, step.reason, now)? {
                    return Ok(false);
                }
                append_for(c, &invoices, id, step.kind, None, now)?;
                Ok(true)
            })
            .await?;
        if moved {
            tracing::info!(invoice = %id, to = step.to.as_str(), "chain watcher: invoice moved");
        }
        Ok(())
    }
}

/// Appends `kind` for the invoice as it now is.
fn append_for(
    c: &mut Conn,
    invoices: &Invoices,
    id: InvoiceId,
    kind: Kind,
    policy: Option<DoubleSpendPolicy>,
    now: i64,
) -> Result<(), StoreError> {
    let Some(invoice) = invoices::get(c, id)? else {
        return Err(StoreError::Corrupt(format!("invoice {id} vanished")));
    };
    let view: InvoiceView<'_> = invoices.view(&invoice, now);
    notify::append(c, &Event::chain_change(kind, &invoice, view, policy), now)
}
