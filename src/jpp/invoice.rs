//! The invoice and its state machine.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use super::FieldError;
use crate::chain::watch::BlockHash;
use crate::chain::{Address, TokenData, Txid};

/// An invoice id: a random (v4) UUID, 122 random bits, written as 32 lowercase hex digits.
/// The id is the capability to read and pay an invoice, so it must not be guessable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct InvoiceId(Uuid);

impl InvoiceId {
    pub fn random() -> InvoiceId {
        InvoiceId(Uuid::new_v4())
    }
}

impl fmt::Display for InvoiceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0.simple(), f)
    }
}

impl FromStr for InvoiceId {
    type Err = ();

    /// Accepts the 32-hex form and the dashed form, in either case (not the braced or URN
    /// forms the uuid crate also reads: those are no invoice URL anyone hands out).
    fn from_str(s: &str) -> Result<InvoiceId, ()> {
        if !matches!(s.len(), 32 | 36) {
            return Err(());
        }
        Uuid::try_parse(s).map(InvoiceId).map_err(|_| ())
    }
}

/// Where an invoice is in its life. Only `Open` accepts verify or pay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvoiceStatus {
    Open,
    /// Internal and short: a payment is claimed and its broadcast is in flight.
    Paying,
    Paid,
    Confirmed,
    Expired,
    Cancelled,
    /// The paid transaction was double-spent or dropped.
    Invalid,
    /// Paid in part, on the chain (to the address, not through the payment protocol).
    PaidPartial,
    /// Money arrived after the invoice expired (or was cancelled): recorded, never lost.
    PaidLate,
}

/// What a double-spend proof for a paid invoice's transaction does (`--double-spend-policy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DoubleSpendPolicy {
    /// The invoice becomes `invalid` (and `confirmed` should the transaction be mined after
    /// all).
    Invalidate,
    /// The invoice stays `paid`; the event and the view carry the proof.
    Flag,
}

impl DoubleSpendPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            DoubleSpendPolicy::Invalidate => "invalidate",
            DoubleSpendPolicy::Flag => "flag",
        }
    }
}

/// Why a paid invoice became `invalid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InvalidReason {
    /// The node holds a double-spend proof for the payment (and the policy is to invalidate).
    DoubleSpendProof,
    /// A transaction spending the same coin was mined instead.
    DoubleSpendMined,
    /// The transaction left the node's mempool without being mined.
    Dropped,
}

impl InvalidReason {
    pub fn as_str(self) -> &'static str {
        match self {
            InvalidReason::DoubleSpendProof => "double_spend_proof",
            InvalidReason::DoubleSpendMined => "double_spend_mined",
            InvalidReason::Dropped => "dropped",
        }
    }

    pub fn parse(s: &str) -> Option<InvalidReason> {
        [
            InvalidReason::DoubleSpendProof,
            InvalidReason::DoubleSpendMined,
            InvalidReason::Dropped,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

impl InvoiceStatus {
    pub const ALL: [InvoiceStatus; 9] = [
        InvoiceStatus::Open,
        InvoiceStatus::Paying,
        InvoiceStatus::Paid,
        InvoiceStatus::Confirmed,
        InvoiceStatus::Expired,
        InvoiceStatus::Cancelled,
        InvoiceStatus::Invalid,
        InvoiceStatus::PaidPartial,
        InvoiceStatus::PaidLate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InvoiceStatus::Open => "open",
            InvoiceStatus::Paying => "paying",
            InvoiceStatus::Paid => "paid",
            InvoiceStatus::Confirmed => "confirmed",
            InvoiceStatus::Expired => "expired",
            InvoiceStatus::Cancelled => "cancelled",
            InvoiceStatus::Invalid => "invalid",
            InvoiceStatus::PaidPartial => "paid_partial",
            InvoiceStatus::PaidLate => "paid_late",
        }
    }

    pub fn parse(s: &str) -> Option<InvoiceStatus> {
        InvoiceStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

impl fmt::Display for InvoiceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceOutput {
    pub address: Address,
    /// Satoshis, exact.
    pub amount: u64,
    pub description: Option<String>,
    pub token: Option<TokenData>,
}

impl InvoiceOutput {
    /// The address as written back to clients: the token-aware form when tokens are asked for.
    pub fn address_string(&self) -> String {
        self.address.to_cashaddr(self.token.is_some())
    }

    /// The full locking bytecode a paying output must carry: token prefix, then the script.
    pub fn locking_bytecode(&self) -> Vec<u8> {
        let mut script = self
            .token
            .as_ref()
            .map(TokenData::prefix_bytes)
            .unwrap_or_default();
        script.extend(self.address.locking_bytecode());
        script
    }
}

/// A validated create request, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NewInvoice {
    pub outputs: Vec<InvoiceOutput>,
    pub memo: Option<String>,
    pub merchant_data: Option<serde_json::Value>,
    pub expires_in_secs: u32,
    /// Required fee rate in sats per 1000 bytes (1000 = 1 sat/byte), kept integral.
    pub fee_per_kb: u64,
    /// Confirmations that make it `confirmed`, when the request says (else the store's or the
    /// server's).
    pub confirmations: Option<u32>,
    /// Sats to a fresh address of the store's xpub, asked instead of `outputs` (which is then
    /// empty until the address is given).
    pub to_next_address: Option<u64>,
}

/// The transaction that paid an invoice.
#[derive(Debug, Clone, PartialEq)]
pub struct Payment {
    pub txid: Txid,
    /// The wallet's memo, if it sent one.
    pub memo: Option<String>,
    /// Where the wallet asks refunds to go, as it sent them (`[{amount, address}]`).
    pub refund_to: Option<serde_json::Value>,
    /// When the broadcast succeeded; `None` while it is still in flight.
    pub paid_ms: Option<i64>,
    /// What the chain says of it; `None` until the chain watcher has looked (and for payments
    /// recorded before chain watching existed).
    pub chain: Option<ChainStanding>,
    /// How it arrived.
    pub via: Via,
}

/// How a payment arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// Posted by a wallet through the payment protocol.
    Jpp,
    /// Seen on the chain: a wallet paid the address.
    Chain,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Jpp => "jpp",
            Via::Chain => "chain",
        }
    }
}

/// A payment's transaction as the chain watcher last saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainStanding {
    /// 0 while unmined; counted from the block it is in, by hash, so a reorg lowers it.
    pub confirmations: u32,
    /// The block it is in, with that block's height.
    pub block: Option<(BlockHash, i64)>,
    /// The id of a double-spend proof the node made for it.
    pub double_spend_proof: Option<String>,
}

/// A stored invoice. Times are milliseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq)]
pub struct Invoice {
    pub id: InvoiceId,
    pub status: InvoiceStatus,
    pub outputs: Vec<InvoiceOutput>,
    pub memo: Option<String>,
    pub merchant_data: Option<serde_json::Value>,
    pub created_ms: i64,
    pub expires_ms: i64,
    pub fee_per_kb: u64,
    /// The store (merchant) that owns it.
    pub store_id: i64,
    /// Confirmations that make it `confirmed`; 0: `paid` is final.
    pub confirmations_required: u32,
    /// Why it is `invalid`, when it is.
    pub invalid_reason: Option<InvalidReason>,
    /// Sats received on the chain (payments to the address); `None` when none came that way.
    pub amount_paid: Option<u64>,
    /// The receiving index of its address, when its store's xpub gave the address.
    pub address_index: Option<u32>,
    /// The latest payment.
    pub payment: Option<Payment>,
}

impl Invoice {
    /// An open invoice of the default store for `outputs` at 1 sat/byte, made at `created_ms`
    /// and open until `expires_ms`, with nothing received: what tests and seeding write
    /// directly. Set any other field on the result.
    pub fn open(outputs: Vec<InvoiceOutput>, created_ms: i64, expires_ms: i64) -> Invoice {
        Invoice {
            id: InvoiceId::random(),
            status: InvoiceStatus::Open,
            outputs,
            memo: None,
            merchant_data: None,
            created_ms,
            expires_ms,
            fee_per_kb: 1000,
            store_id: 1,
            confirmations_required: 0,
            invalid_reason: None,
            amount_paid: None,
            address_index: None,
            payment: None,
        }
    }

    /// `confirmations_required` applies when the request names none.
    pub fn new(
        id: InvoiceId,
        new: NewInvoice,
        store_id: i64,
        confirmations_required: u32,
        now_ms: i64,
    ) -> Invoice {
        Invoice {
            confirmations_required: new.confirmations.unwrap_or(confirmations_required),
            invalid_reason: None,
            amount_paid: None,
            address_index: None,
            id,
            status: InvoiceStatus::Open,
            outputs: new.outputs,
            memo: new.memo,
            merchant_data: new.merchant_data,
            created_ms: now_ms,
            expires_ms: now_ms + i64::from(new.expires_in_secs) * 1000,
            fee_per_kb: new.fee_per_kb,
            store_id,
            payment: None,
        }
    }

    /// Sats the outputs ask for in all.
    pub fn total(&self) -> u64 {
        self.outputs.iter().map(|o| o.amount).sum()
    }

    /// Sats received so far: what arrived on the chain, or (paid through the payment
    /// protocol) the whole amount.
    pub fn received(&self) -> u64 {
        match (self.amount_paid, &self.payment) {
            (Some(paid), _) => paid,
            (None, Some(p)) if p.paid_ms.is_some() => self.total(),
            _ => 0,
        }
    }

    /// The status as of `now_ms`: an open invoice past its expiry is expired, whether or not
    /// that has been recorded yet.
    pub fn status_at(&self, now_ms: i64) -> InvoiceStatus {
        if self.status == InvoiceStatus::Open && now_ms >= self.expires_ms {
            InvoiceStatus::Expired
        } else {
            self.status
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_in_both_forms_and_print_compact() {
        let id = InvoiceId::random();
        let compact = id.to_string();
        assert_eq!(compact.len(), 32);
        let dashed = format!(
            "{}-{}-{}-{}-{}",
            &compact[0..8],
            &compact[8..12],
            &compact[12..16],
            &compact[16..20],
            &compact[20..]
        );
        assert_eq!(dashed.parse::<InvoiceId>(), Ok(id));
        assert_eq!(compact.to_uppercase().parse::<InvoiceId>(), Ok(id));
        for bad in [
            "",
            "xyz",
            &compact[1..],
            &format!("{compact}0"),
            "g".repeat(32).as_str(),
        ] {
            assert!(bad.parse::<InvoiceId>().is_err(), "{bad}");
        }
        let misplaced = format!("-{}", &dashed[..35]);
        assert!(misplaced.parse::<InvoiceId>().is_err());
    }

    #[test]
    fn open_invoices_expire_at_read_time() {
        let inv = Invoice::open(vec![], 0, 1000);
        assert_eq!(inv.status_at(999), InvoiceStatus::Open);
        assert_eq!(inv.status_at(1000), InvoiceStatus::Expired);
        let paid = Invoice {
            status: InvoiceStatus::Paid,
            ..inv
        };
        assert_eq!(paid.status_at(5000), InvoiceStatus::Paid);
    }
}

/// Why an invoice operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum InvoiceError {
    #[error("the invoice request has {} problem(s)", .0.len())]
    Invalid(Vec<FieldError>),
    #[error("no invoice with this id")]
    NotFound,
    #[error("the invoice is {0}; only open invoices can be cancelled")]
    NotOpen(InvoiceStatus),
    #[error("this store has no xpub, so an invoice needs its outputs: set one with `cashier store xpub <store> <xpub>`, or send outputs")]
    NoXpub,
    #[error("a new address would come after {gap_limit} unused ones in a row, where a wallet restored from the xpub stops looking (its gap limit): wait for a payment, or until an expired invoice's address may be used again")]
    GapLimit { gap_limit: u32 },
    /// The database failed.
    #[error("storage failed: {0}")]
    Storage(Box<dyn std::error::Error + Send + Sync>),
}
