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
}
