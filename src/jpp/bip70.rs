//! BIP70 for Bitcoin Cash, as Electron Cash and the Bitcoin.com wallet speak it: the protobuf
//! messages, the PaymentRequest an invoice becomes, and the PaymentACK that answers a Payment.
//! Field numbers and labels follow the `payments` proto2 package (research §4.2).

use prost::Message;

use super::Invoice;
use crate::chain::{Address, Network};

#[derive(Clone, PartialEq, prost::Message)]
pub struct Output {
    #[prost(uint64, optional, tag = "1")]
    pub amount: Option<u64>,
    #[prost(bytes = "vec", required, tag = "2")]
    pub script: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PaymentDetails {
    #[prost(string, optional, tag = "1")]
    pub network: Option<String>,
    #[prost(message, repeated, tag = "2")]
    pub outputs: Vec<Output>,
    #[prost(uint64, required, tag = "3")]
    pub time: u64,
    #[prost(uint64, optional, tag = "4")]
    pub expires: Option<u64>,
    #[prost(string, optional, tag = "5")]
    pub memo: Option<String>,
    #[prost(string, optional, tag = "6")]
    pub payment_url: Option<String>,
    #[prost(bytes = "vec", optional, tag = "7")]
    pub merchant_data: Option<Vec<u8>>,
    /// BitPay's extension, sat/byte; wallets that do not know it skip it.
    #[prost(float, optional, tag = "8")]
    pub required_fee_rate: Option<f32>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PaymentRequest {
    #[prost(uint32, optional, tag = "1")]
    pub payment_details_version: Option<u32>,
    #[prost(string, optional, tag = "2")]
    pub pki_type: Option<String>,
    #[prost(bytes = "vec", optional, tag = "3")]
    pub pki_data: Option<Vec<u8>>,
    #[prost(bytes = "vec", required, tag = "4")]
    pub serialized_payment_details: Vec<u8>,
    #[prost(bytes = "vec", optional, tag = "5")]
    pub signature: Option<Vec<u8>>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Payment {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub merchant_data: Option<Vec<u8>>,
    #[prost(bytes = "vec", repeated, tag = "2")]
    pub transactions: Vec<Vec<u8>>,
    #[prost(message, repeated, tag = "3")]
    pub refund_to: Vec<Output>,
    #[prost(string, optional, tag = "4")]
    pub memo: Option<String>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct PaymentAck {
    #[prost(message, required, tag = "1")]
    pub payment: Payment,
    #[prost(string, optional, tag = "2")]
    pub memo: Option<String>,
}

/// Largest Payment a wallet may send (BIP70).
pub const MAX_PAYMENT: usize = 50_000;

/// Why an invoice cannot be offered over BIP70.
pub const TOKENS_UNSUPPORTED: &str =
    "This invoice requires CashTokens; use a JSON payment protocol wallet";

/// The unsigned PaymentRequest for `invoice`, or `None` when it asks for tokens (a BIP70
/// output is a bare script: no wallet would understand a token prefix in it).
pub fn payment_request(invoice: &Invoice, network: Network, payment_url: &str) -> Option<Vec<u8>> {
    if invoice.outputs.iter().any(|o| o.token.is_some()) {
        return None;
    }
    let details = PaymentDetails {
        network: Some(network.as_str().to_owned()),
        outputs: invoice
            .outputs
            .iter()
            .map(|o| Output {
                amount: Some(o.amount),
                script: o.locking_bytecode(),
            })
            .collect(),
        time: seconds(invoice.created_ms),
        expires: Some(seconds(invoice.expires_ms)),
        memo: invoice.memo.clone(),
        payment_url: Some(payment_url.to_owned()),
        // Opaque to the wallet, echoed in its Payment: the invoice id.
        merchant_data: Some(invoice.id.to_string().into_bytes()),
        required_fee_rate: Some(invoice.fee_per_kb as f32 / 1000.0),
    };
    let request = PaymentRequest {
        // Written out although 1 is the default: some parsers expect the field.
        payment_details_version: Some(1),
        pki_type: Some("none".into()),
        pki_data: None,
        serialized_payment_details: details.encode_to_vec(),
        signature: None,
    };
    Some(request.encode_to_vec())
}

/// The Payment a wallet posted.
pub fn read_payment(body: &[u8]) -> Result<Payment, prost::DecodeError> {
    Payment::decode(body)
}

/// The PaymentACK for an accepted `payment`: the Payment itself, and a memo the wallet shows.
pub fn ack(payment: Payment) -> Vec<u8> {
    PaymentAck {
        payment,
        memo: Some("Payment accepted".into()),
    }
    .encode_to_vec()
}

/// Refund outputs in the shape every dialect records, `[{amount, address}]`; a script that
/// is not a standard address cannot be refunded to and is refused.
pub fn refunds(payment: &Payment, network: Network) -> Result<Option<serde_json::Value>, String> {
    if payment.refund_to.is_empty() {
        return Ok(None);
    }
    payment
        .refund_to
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let address = Address::from_locking_bytecode(&o.script, network).ok_or_else(|| {
                format!("refund_to[{i}] is not a P2PKH or P2SH script, so nothing could be refunded to it")
            })?;
            Ok(serde_json::json!({"amount": o.amount.unwrap_or(0), "address": address.to_cashaddr(false)}))
        })
        .collect::<Result<Vec<_>, String>>()
        .map(|list| Some(serde_json::Value::Array(list)))
}

fn seconds(ms: i64) -> u64 {
    u64::try_from(ms / 1000).unwrap_or(0)
}
