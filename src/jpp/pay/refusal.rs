//! Why a payment was not accepted, in the words wallets read. The texts are BitPay's where
//! BitPay has one, because wallets match on them.

use crate::chain::node::NodeError;
use crate::chain::TxError;
use crate::jpp::InvoiceStatus;

/// Why a payment was not accepted.
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
    /// The database failed; the wallet may send the same transaction again.
    #[error("storage failed: {0}")]
    Storage(Box<dyn std::error::Error + Send + Sync>),
}

impl PayError {
    /// Errors the wallet can do nothing about but wait (503 with Retry-After).
    pub fn is_retryable(&self) -> bool {
        matches!(self, PayError::NodeUnavailable(_) | PayError::Pending)
    }
}
