//! The reconciler: finishes payments whose broadcast was left unsettled (a crash between the
//! claim and the commit, a timeout, a node that went away). It runs at start, before the
//! server takes payments, and then on a timer (`--reconcile-every`).

use crate::chain::node::{Broadcast, Node, TxStatus};
use crate::chain::Txid;
use crate::jpp::pay::PayError;
use crate::jpp::InvoiceId;
use crate::store::payments;

use super::Payments;

impl Payments {
    /// Settles every payment whose broadcast was left unsettled (a crash, a timeout): if the
    /// node has the transaction it is paid; if not it is broadcast again; a definitive refusal
    /// reopens the invoice. Only payments claimed before `claimed_before_ms` are looked at
    /// (`None`: all, as at start); a younger one may be a live request's, whose broadcast is
    /// still on its way. Returns how many payments were settled either way.
    pub async fn reconcile(&self, claimed_before_ms: Option<i64>) -> Result<usize, PayError> {
        let before = claimed_before_ms.unwrap_or(i64::MAX);
        let pending = self
            .store
            .read(move |c| payments::in_flight(c, before))
            .await?;
        let mut settled = 0;
        for p in pending {
            let (Some(txid), Ok(id)) = (Txid::from_hex(&p.txid), p.invoice_id.parse::<InvoiceId>())
            else {
                tracing::error!(txid = %p.txid, "unreadable payment row left alone");
                continue;
            };
            // A request of this process is paying with it right now: its own answer settles it.
            let gate = self.gate(txid);
            let outcome = match gate.try_lock() {
                Ok(_turn) => self.reconcile_one(id, txid, p.raw_tx).await,
                Err(_) => Ok(false),
            };
            self.release_gate(txid, gate);
            settled += usize::from(outcome?);
        }
        Ok(settled)
    }

    /// Finishes one payment left broadcasting; says whether it was settled either way.
    async fn reconcile_one(
        &self,
        id: InvoiceId,
        txid: Txid,
        raw: Vec<u8>,
    ) -> Result<bool, PayError> {
        // Read again under the gate: a request may have settled it since the list was read.
        let still = self.store.read(move |c| payments::by_txid(c, txid)).await?;
        if still.is_none_or(|p| p.state != payments::BROADCASTING) {
            return Ok(false);
        }
        let known = match self.node.tx_status(txid).await {
            Ok(TxStatus::Unknown) => false,
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(%txid, error = %e, "reconcile: node unavailable, will retry");
                return Ok(false);
            }
        };
        let outcome = if known {
            Ok(Broadcast::Accepted)
        } else {
            self.node.broadcast(&raw).await
        };
        match outcome {
            Ok(Broadcast::Accepted | Broadcast::AlreadyConfirmed) => {
                self.settle(id, txid).await?;
                tracing::info!(%txid, invoice = %id, "reconciled: paid");
                Ok(true)
            }
            Ok(Broadcast::Rejected(r)) => {
                self.release(id, txid).await?;
                tracing::warn!(%txid, invoice = %id, reason = %r.reason, "reconciled: refused by the network, invoice reopened");
                Ok(true)
            }
            Err(e) => {
                tracing::warn!(%txid, error = %e, "reconcile: broadcast outcome unknown, will retry");
                Ok(false)
            }
        }
    }
}
