//! The watchtower JSON view of an invoice: the create response, every GET, and the invoice
//! inside socket events.

use crate::units::iso_millis;
use serde::Serialize;

use crate::chain::Network;

use super::{Invoice, InvoiceOutput};

/// An invoice as merchants and wallets read it.
#[derive(Debug, Serialize)]
pub struct InvoiceView<'a> {
    pub payment_id: String,
    pub payment_url: String,
    /// `bitcoincash:?r=<payment_url>`: what a QR code or a payment link should carry.
    pub payment_uri: String,
    pub network: &'static str,
    pub currency: &'static str,
    /// The chain, as BitPay's dialects name it. Paytaca, having fetched this JSON from a
    /// `localhost` URL, switches to JPP v2 when `payment_url` names `127.0.0.1`, and posts
    /// the `chain` it read here back with its transaction.
    pub chain: &'static str,
    pub memo: Option<&'a str>,
    pub time: String,
    pub expires: String,
    pub outputs: Vec<OutputView<'a>>,
    /// The payment once its broadcast succeeded; null before.
    pub payment: Option<PaymentView<'a>>,
    /// Private to the merchant: the outer `None` leaves the field out (socket messages); an
    /// inner `None` writes `null`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub merchant_data: Option<Option<&'a serde_json::Value>>,
    pub status: &'static str,
    pub required_fee_per_byte: f64,
    /// The payment's confirmations (0 while unmined), counted by block hash; null before a
    /// payment, or before the chain watcher has looked at it.
    pub confirmations: Option<u32>,
    /// Confirmations that make the invoice `confirmed`; 0: `paid` is final.
    pub confirmations_required: u32,
    /// Why the invoice is `invalid`; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub invalid_reason: Option<&'static str>,
    /// Sats asked, received (through either road: more than asked is an overpayment) and
    /// still due.
    pub amount: u64,
    pub amount_paid: u64,
    pub amount_due: u64,
    /// `bitcoincash:<address>?amount=<BCH>`, for wallets that do not speak the payment
    /// protocol: only for one plain (token-free) output, which such a URI can ask for.
    pub address_uri: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct PaymentView<'a> {
    pub txid: String,
    pub memo: Option<&'a str>,
    pub paid_at: String,
    #[serde(serialize_with = "refunds")]
    pub refund_to: Option<&'a serde_json::Value>,
    /// The block the transaction is in, while it is in one.
    pub block_hash: Option<String>,
    pub block_height: Option<i64>,
    /// The id of a double-spend proof the node made for the transaction.
    pub double_spend_proof: Option<&'a str>,
    /// `jpp` (posted by a wallet) or `chain` (a wallet paid the address).
    pub via: &'static str,
}

/// `refund_to` is always a list, empty when the wallet sent none (as watchtower writes it).
fn refunds<S: serde::Serializer>(v: &Option<&serde_json::Value>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(list) => list.serialize(s),
        None => s.collect_seq(std::iter::empty::<()>()),
    }
}

#[derive(Debug, Serialize)]
pub struct OutputView<'a> {
    pub amount: u64,
    pub address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token: Option<TokenView>,
}

#[derive(Debug, Serialize)]
pub struct TokenView {
    pub category: String,
    pub amount: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nft: Option<NftView>,
}

#[derive(Debug, Serialize)]
pub struct NftView {
    pub capability: &'static str,
    pub commitment: String,
}

impl<'a> InvoiceView<'a> {
    /// `base_url` is the configured public URL (never the request's Host header).
    pub fn new(invoice: &'a Invoice, network: Network, base_url: &str, now_ms: i64) -> Self {
        let payment_url = payment_url(base_url, &invoice.id.to_string());
        InvoiceView {
            payment_id: invoice.id.to_string(),
            payment_uri: payment_uri(network, &payment_url),
            payment_url,
            network: network.as_str(),
            currency: super::bitpay::CHAIN,
            chain: super::bitpay::CHAIN,
            memo: invoice.memo.as_deref(),
            time: iso_millis(invoice.created_ms),
            expires: iso_millis(invoice.expires_ms),
            outputs: invoice.outputs.iter().map(OutputView::new).collect(),
            payment: invoice.payment.as_ref().and_then(|p| {
                let block = p.chain.as_ref().and_then(|c| c.block);
                Some(PaymentView {
                    txid: p.txid.to_hex(),
                    memo: p.memo.as_deref(),
                    paid_at: iso_millis(p.paid_ms?),
                    refund_to: p.refund_to.as_ref(),
                    block_hash: block.map(|(hash, _)| hash.to_hex()),
                    block_height: block.map(|(_, height)| height),
                    double_spend_proof: p
                        .chain
                        .as_ref()
                        .and_then(|c| c.double_spend_proof.as_deref()),
                    via: p.via.as_str(),
                })
            }),
            merchant_data: Some(invoice.merchant_data.as_ref()),
            status: invoice.status_at(now_ms).as_str(),
            required_fee_per_byte: invoice.fee_per_kb as f64 / 1000.0,
            confirmations: invoice
                .payment
                .as_ref()
                .and_then(|p| p.chain.as_ref())
                .map(|c| c.confirmations),
            confirmations_required: invoice.confirmations_required,
            invalid_reason: invoice.invalid_reason.map(|r| r.as_str()),
            amount: invoice.total(),
            amount_paid: invoice.received(),
            amount_due: invoice.total().saturating_sub(invoice.received()),
            address_uri: address_uri(invoice),
        }
    }

    /// The view for public channels (sockets): without `merchant_data`.
    pub fn public(self) -> Self {
        InvoiceView {
            merchant_data: None,
            ..self
        }
    }
}

impl<'a> OutputView<'a> {
    pub fn new(output: &'a InvoiceOutput) -> Self {
        OutputView {
            amount: output.amount,
            address: output.address_string(),
            description: output.description.as_deref(),
            token: output.token.as_ref().map(|t| TokenView {
                category: hex::encode(t.category),
                amount: t.amount,
                nft: t.nft.as_ref().map(|n| NftView {
                    capability: n.capability.as_str(),
                    commitment: hex::encode(&n.commitment),
                }),
            }),
        }
    }
}

/// BIP21's `bitcoincash:<address>?amount=<BCH>` for an invoice of one plain output, asking
/// for what is still due once part of it arrived.
fn address_uri(invoice: &Invoice) -> Option<String> {
    match invoice.outputs.as_slice() {
        [only] if only.token.is_none() => {
            let due = only.amount.saturating_sub(invoice.amount_paid.unwrap_or(0));
            let amount = crate::units::bch(u128::from(if due > 0 { due } else { only.amount }));
            // BIP21 amounts are plain decimals: no trailing zeros needed.
            let amount = amount.trim_end_matches('0').trim_end_matches('.');
            Some(format!(
                "{}?amount={amount}",
                only.address.to_cashaddr(false)
            ))
        }
        _ => None,
    }
}

/// The canonical payment URL: every dialect is served there, and Paytaca appends `verify/`
/// and `pay/` to it.
pub fn payment_url(base_url: &str, id: &str) -> String {
    format!("{}/api/jpp/invoices/{id}/", base_url.trim_end_matches('/'))
}

/// `bitcoincash:?r=<percent-encoded url>` (BIP72's address-less form, which Paytaca needs).
pub fn payment_uri(network: Network, payment_url: &str) -> String {
    let mut uri = format!("{}:?r=", network.cashaddr_prefix());
    for b in payment_url.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_percent_encodes_the_url() {
        assert_eq!(
            payment_uri(Network::Main, "https://pay.example/api/jpp/invoices/ab/"),
            "bitcoincash:?r=https%3A%2F%2Fpay.example%2Fapi%2Fjpp%2Finvoices%2Fab%2F"
        );
        assert!(payment_uri(Network::Regtest, "x").starts_with("bchreg:?r="));
    }

    #[test]
    fn address_uris_ask_for_what_is_due_in_bch() {
        let address = crate::chain::Address::parse(
            "bchreg:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eyphnpcjvs",
            Network::Regtest,
        )
        .unwrap();
        let output = |amount| super::super::InvoiceOutput {
            address: address.clone(),
            amount,
            description: None,
            token: None,
        };
        let mut invoice = Invoice::open(vec![output(150_000_000)], 0, 1);
        let uri = |i: &Invoice| address_uri(i).unwrap();
        assert_eq!(
            uri(&invoice),
            "bchreg:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eyphnpcjvs?amount=1.5"
        );
        invoice.amount_paid = Some(149_999_000);
        assert!(uri(&invoice).ends_with("?amount=0.00001"));
        invoice.outputs = vec![output(1), output(2)];
        assert_eq!(address_uri(&invoice), None, "two outputs: no plain URI");
    }
}
