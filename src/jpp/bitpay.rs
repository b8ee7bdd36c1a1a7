//! BitPay's JSON Payment Protocol, v1 and v2 (research §2, §3): the shapes an invoice is
//! offered in. Paying goes through the one pay flow; only the words differ.

use serde_json::{json, Value};

use super::InvoiceView;

/// The memo of a successful verification (Electron Cash looks for "valid").
pub const VERIFIED: &str = "Payment appears valid";
/// The memo of an accepted payment, which wallets show.
pub const RECEIVED: &str = "Transaction received";
/// The only chain and currency an invoice is priced in.
pub const CHAIN: &str = "BCH";

fn total(view: &InvoiceView<'_>) -> u64 {
    view.outputs.iter().map(|o| o.amount).sum()
}

fn outputs(view: &InvoiceView<'_>) -> Value {
    serde_json::to_value(&view.outputs).unwrap_or(Value::Null)
}

/// Fields every dialect's request carries.
fn common(view: &InvoiceView<'_>) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    m.insert("time".into(), json!(view.time));
    m.insert("expires".into(), json!(view.expires));
    m.insert("memo".into(), json!(view.memo.unwrap_or_default()));
    m.insert("paymentUrl".into(), json!(view.payment_url));
    m.insert("paymentId".into(), json!(view.payment_id));
    m
}

/// v2 step 1, `application/payment-options`.
pub fn options(view: &InvoiceView<'_>) -> Value {
    let mut m = common(view);
    m.insert(
        "paymentOptions".into(),
        json!([{
            "chain": CHAIN,
            "currency": CHAIN,
            "network": view.network,
            "estimatedAmount": total(view),
            "requiredFeeRate": view.required_fee_per_byte,
            "minerFee": 0,
            "decimals": 8,
            "selected": false,
        }]),
    );
    Value::Object(m)
}

/// v2 step 2, the answer to `application/payment-request`.
pub fn payment_request_v2(view: &InvoiceView<'_>) -> Value {
    let mut m = common(view);
    m.insert("chain".into(), json!(CHAIN));
    m.insert("currency".into(), json!(CHAIN));
    m.insert("network".into(), json!(view.network));
    m.insert(
        "instructions".into(),
        json!([{
            "type": "transaction",
            "requiredFeeRate": view.required_fee_per_byte,
            "outputs": outputs(view),
        }]),
    );
    Value::Object(m)
}

/// v1, `application/payment-request`. Both fee field names: readers differ (§3.1). Only an
/// open invoice is offered (a paid one is refused before this), so there is no payment to
/// carry.
pub fn payment_request_v1(view: &InvoiceView<'_>) -> Value {
    let mut m = common(view);
    m.insert("network".into(), json!(view.network));
    m.insert("currency".into(), json!(CHAIN));
    m.insert("requiredFeeRate".into(), json!(view.required_fee_per_byte));
    m.insert(
        "requiredFeePerByte".into(),
        json!(view.required_fee_per_byte),
    );
    m.insert("outputs".into(), outputs(view));
    Value::Object(m)
}
