//! The Lightning wallet path, compatible with LNbits' clients: wallets with an invoice key and
//! an admin key, payments in msat, funding sources behind one trait, and a socket frame per
//! settled payment on the same notification core as the BCH invoices.
//!
//! Pure domain code: it imports no layer above the domain and no framework; the list is
//! enforced by `scripts/check-layers`. The wallets themselves are `service::Lightning`.

mod bolt11;
pub mod funding;
mod lnbits;

use serde_json::{json, Value};

pub use bolt11::{decode, decoded, is_issued, Bolt11};
pub use funding::{Funding, FundingKind, FundingSettings};

use crate::units::iso_millis;

/// A wallet. Its keys are not here: only their hashes are stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Wallet {
    pub id: String,
    pub name: String,
    pub created_ms: i64,
}

/// A wallet's running balance beside what its payment rows add up to (`cashier wallet check`).
/// The rows are the truth; the running total is kept so that a payment reads one row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalanceCheck {
    pub wallet_id: String,
    pub name: String,
    /// The total kept on the wallet's row.
    pub running_msat: i64,
    /// Settled rows plus outgoing ones still pending, summed.
    pub summed_msat: i64,
}

impl BalanceCheck {
    pub fn agrees(&self) -> bool {
        self.running_msat == self.summed_msat
    }
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
    /// What the webhook answered: its HTTP status as text, or "-1" (LNbits' field).
    pub webhook_status: Option<String>,
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
            "webhook_status": self.webhook_status,
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

/// Largest invoice, in sats (LNbits' default limit).
const MAX_INVOICE_SATS: u64 = 10_000_000;
/// Longest memo (LNbits' limit).
const MAX_MEMO: usize = 640;
const DEFAULT_EXPIRY_SECS: u64 = 3600;
const MAX_EXPIRY_SECS: u64 = 30 * 24 * 3600;

/// Why a wallet operation was refused. The texts are LNbits' where clients match on them.
#[derive(Debug, thiserror::Error)]
pub enum LnError {
    #[error("Wallet not found.")]
    WalletNotFound,
    #[error("Payment does not exist.")]
    PaymentNotFound,
    #[error("{0}")]
    Invalid(String),
    #[error("Invoice (or Admin) key required.")]
    AdminKeyRequired,
    /// Definite failures of a payment: LNbits answers these with 520 and `status: failed`.
    #[error("Insufficient balance.")]
    InsufficientBalance,
    #[error("Internal invoice already paid.")]
    AlreadyPaid,
    #[error("This invoice was already paid, or is being paid, from this server.")]
    PaidBefore,
    /// The invoice names the payment hash of an invoice a wallet here issued, but is not that
    /// invoice (another amount, payee or description): paying it would settle ours.
    #[error("Invoice does not match the one issued for this payment hash.")]
    NotIssued,
    #[error("Invoice expired.")]
    Expired,
    #[error("Payment failed: {0}")]
    PaymentFailed(String),
    #[error("{0}")]
    Funding(String),
    /// The database failed.
    #[error("storage failed: {0}")]
    Storage(Box<dyn std::error::Error + Send + Sync>),
}

/// An invoice a wallet asks for.
#[derive(Debug, Clone, Default)]
pub struct NewInvoice {
    pub amount_sats: u64,
    pub memo: Option<String>,
    pub expiry_secs: Option<u64>,
    pub description_hash: Option<[u8; 32]>,
    pub extra: Option<Value>,
    pub webhook: Option<String>,
}

impl NewInvoice {
    /// The invoice's expiry in seconds, once its amount, memo and expiry are within LNbits'
    /// limits.
    pub fn checked_expiry(&self) -> Result<u64, LnError> {
        if self.amount_sats == 0 {
            return Err(LnError::Invalid(
                "Amountless invoices not supported.".into(),
            ));
        }
        if self.amount_sats > MAX_INVOICE_SATS {
            return Err(LnError::Invalid(format!(
                "Invoice amount {} sats is above the limit of {MAX_INVOICE_SATS}.",
                self.amount_sats
            )));
        }
        if self.memo.as_ref().is_some_and(|m| m.len() > MAX_MEMO) {
            return Err(LnError::Invalid(format!(
                "memo is longer than {MAX_MEMO} characters."
            )));
        }
        let expiry = self.expiry_secs.unwrap_or(DEFAULT_EXPIRY_SECS);
        if expiry == 0 || expiry > MAX_EXPIRY_SECS {
            return Err(LnError::Invalid(format!(
                "expiry must be 1 to {MAX_EXPIRY_SECS} seconds."
            )));
        }
        Ok(expiry)
    }
}

pub fn sats_to_msat(sats: u64) -> Result<i64, LnError> {
    sats.checked_mul(1000)
        .and_then(|m| i64::try_from(m).ok())
        .ok_or_else(|| LnError::Invalid("amount too large".into()))
}
