//! The Lightning wallet path, compatible with LNbits' clients: wallets with an invoice key and
//! an admin key, payments in msat, funding sources behind one trait, and a socket frame per
//! settled payment on the same notification core as the BCH invoices.
//!
//! Plain Rust: neither actix nor diesel is imported here.

pub mod funding;
mod lnbits;
mod service;

use serde_json::{json, Value};

pub use funding::{Funding, FundingKind, FundingSettings};
pub use service::{decoded, Lightning, LnError, NewInvoice};

use crate::store::events::NewEvent;
use crate::units::iso_millis;

/// A wallet. Its keys are not here: only their hashes are stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Wallet {
    pub id: String,
    pub name: String,
    pub created_ms: i64,
}

/// The three states of LNbits' payments; anything ambiguous stays pending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayStatus {
    Pending,
    Success,
    Failed,
}

impl PayStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PayStatus::Pending => "pending",
            PayStatus::Success => "success",
            PayStatus::Failed => "failed",
        }
    }

    pub fn parse(s: &str) -> Option<PayStatus> {
        [PayStatus::Pending, PayStatus::Success, PayStatus::Failed]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// One side of a payment: money into a wallet (positive) or out of it (negative), in msat.
#[derive(Debug, Clone, PartialEq)]
pub struct LnPayment {
    /// The funding source's id for it; `internal_<hash>` for the paying side of an internal
    /// payment.
    pub checking_id: String,
    pub payment_hash: String,
    pub wallet_id: String,
    pub amount_msat: i64,
    /// Negative when paid by the wallet, as LNbits stores it.
    pub fee_msat: i64,
    pub bolt11: String,
    pub memo: Option<String>,
    pub status: PayStatus,
    pub preimage: Option<String>,
    pub expiry_ms: Option<i64>,
    pub extra: Value,
    pub webhook: Option<String>,
    pub created_ms: i64,
    pub updated_ms: i64,
}

impl LnPayment {
    /// The Payment object as LNbits 1.x writes it (research §2.1). The preimage is shown only
    /// once the payment succeeded, or to the wallet that created the invoice (`reveal`).
    pub fn to_json(&self, reveal_preimage: bool) -> Value {
        let preimage = if reveal_preimage || self.status == PayStatus::Success {
            self.preimage.as_deref()
        } else {
            None
        };
        json!({
            "checking_id": self.checking_id,
            "payment_hash": self.payment_hash,
            "wallet_id": self.wallet_id,
            "amount": self.amount_msat,
            "fee": self.fee_msat,
            "bolt11": self.bolt11,
            "payment_request": self.bolt11,
            "fiat_provider": null,
            "status": self.status.as_str(),
            "memo": self.memo,
            "expiry": self.expiry_ms.map(iso_millis),
            "webhook": self.webhook,
            "webhook_status": null,
            "preimage": preimage,
            "tag": null,
            "extension": null,
            "time": iso_millis(self.created_ms),
            "created_at": iso_millis(self.created_ms),
            "updated_at": iso_millis(self.updated_ms),
            "labels": [],
            "extra": self.extra,
            "external_id": null,
        })
    }
}

/// The socket frame for a settled payment on its wallet's topic: LNbits 1.x's
/// `{wallet_balance, payment}` plus the flat fields the seed clients read (`spec/notify.md`).
pub fn payment_event(payment: &LnPayment, balance_msat: i64) -> NewEvent {
    let kind = if payment.amount_msat < 0 {
        "payment_sent"
    } else {
        "payment_received"
    };
    NewEvent {
        topic: wallet_topic(&payment.wallet_id),
        kind,
        payload: json!({
            "type": "payment",
            "event": kind,
            "wallet_balance": balance_msat.div_euclid(1000),
            "payment": payment.to_json(false),
            "payment_hash": payment.payment_hash,
            "amount": payment.amount_msat / 1000,
            "status": payment.status.as_str(),
            "memo": payment.memo,
            "timestamp": payment.updated_ms / 1000,
        }),
    }
}

pub fn wallet_topic(wallet_id: &str) -> String {
    format!("wallet:{wallet_id}")
}
