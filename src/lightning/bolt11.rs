//! BOLT11 invoices: decoding (signature checked), and whether a submitted invoice is the one
//! a wallet here issued.

use std::str::FromStr;

use bitcoin::hashes::Hash;
use lightning_invoice::SignedRawBolt11Invoice;
use serde_json::{json, Value};

use super::{LnError, LnPayment};

/// The parts of a BOLT11 invoice this server uses. Read from the signed raw form, so that an
/// invoice without a features field (LNbits' FakeWallet writes those) is read too; its
/// signature is still checked.
#[derive(Debug, Clone)]
pub struct Bolt11 {
    pub payment_hash: String,
    pub amount_msat: Option<u64>,
    pub description: Option<String>,
    pub description_hash: Option<String>,
    pub payee: String,
    /// Unix seconds.
    pub timestamp: u64,
    pub expiry_secs: u64,
    pub secret: Option<String>,
    pub min_final_cltv_expiry: u64,
}

impl Bolt11 {
    pub fn is_expired(&self, now_ms: i64) -> bool {
        let ends = self.timestamp.saturating_add(self.expiry_secs);
        u64::try_from(now_ms / 1000).is_ok_and(|now| now >= ends)
    }
}

/// Whether `submitted` (decoded: `invoice`) is the invoice `issued` stands for. The hash alone
/// proves nothing: anyone can sign an invoice with a hash they have seen. So it must be the
/// very string we issued, or one the same payee signed for the same hash, amount and
/// description (a re-encoding of it); the stored expiry and amount apply either way.
pub fn is_issued(issued: &LnPayment, submitted: &str, invoice: &Bolt11) -> bool {
    if bare(&issued.bolt11).eq_ignore_ascii_case(bare(submitted)) {
        return true;
    }
    // A top-up has no invoice: nothing can match it.
    let Ok(ours) = decode(&issued.bolt11) else {
        return false;
    };
    ours.payee == invoice.payee
        && ours.payment_hash == invoice.payment_hash
        && ours.amount_msat == invoice.amount_msat
        && u64::try_from(issued.amount_msat).ok() == invoice.amount_msat
        && ours.description_hash == invoice.description_hash
        && ours.description == invoice.description
}

/// The invoice text without blanks around it or its `lightning:` prefix (in any case).
fn bare(bolt11: &str) -> &str {
    let text = bolt11.trim();
    match text.get(..10) {
        Some(prefix) if prefix.eq_ignore_ascii_case("lightning:") => &text[10..],
        _ => text,
    }
}

/// Parses a BOLT11 invoice, with or without its `lightning:` prefix.
pub fn decode(bolt11: &str) -> Result<Bolt11, LnError> {
    let text = bare(bolt11);
    let invalid = |why: String| LnError::Invalid(format!("Invalid BOLT11 invoice: {why}"));
    let signed = SignedRawBolt11Invoice::from_str(text).map_err(|e| invalid(e.to_string()))?;
    if !signed.check_signature() {
        return Err(invalid("its signature does not verify".into()));
    }
    let payee = signed
        .recover_payee_pub_key()
        .map_err(|e| invalid(e.to_string()))?
        .0
        .to_string();
    let raw = signed.raw_invoice();
    let payment_hash = raw
        .payment_hash()
        .map(|h| hex::encode(h.0.as_byte_array()))
        .ok_or_else(|| invalid("it has no payment hash".into()))?;
    Ok(Bolt11 {
        payment_hash,
        // The amount is written in pico-BTC: ten per msat.
        amount_msat: raw.amount_pico_btc().map(|p| p / 10),
        description: raw.description().map(|d| d.to_string()),
        description_hash: raw
            .description_hash()
            .map(|h| hex::encode(h.0.as_byte_array())),
        payee,
        timestamp: raw.data.timestamp.as_unix_timestamp(),
        // BOLT11's defaults when the fields are absent.
        expiry_secs: raw.expiry_time().map_or(3600, |e| e.as_seconds()),
        secret: raw.payment_secret().map(|s| hex::encode(s.0)),
        min_final_cltv_expiry: raw.min_final_cltv_expiry_delta().map_or(18, |m| m.0),
    })
}

/// `POST /api/v1/payments/decode`: the invoice's fields, as LNbits names them.
pub fn decoded(bolt11: &str) -> Result<Value, LnError> {
    let invoice = decode(bolt11)?;
    Ok(json!({
        "payment_hash": invoice.payment_hash,
        "amount_msat": invoice.amount_msat,
        "description": invoice.description,
        "description_hash": invoice.description_hash,
        "payee": invoice.payee,
        "date": invoice.timestamp,
        "expiry": invoice.expiry_secs,
        "secret": invoice.secret,
        "min_final_cltv_expiry": invoice.min_final_cltv_expiry,
    }))
}
