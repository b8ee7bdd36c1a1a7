//! The events of the notification core: every kind, its topic and its JSON, built here and
//! nowhere else (`spec/notify.md`).
//!
//! An [`Event`] is serialised once, when it is made. [`append`] writes it to the outbox inside
//! the transaction that makes the change it reports; the outbox numbers it, and the
//! [`Message`] subscribers receive is that text with its `event_id` spliced in, never parsed
//! again on its way to a socket.

use bytestring::ByteString;
use serde_json::json;

use super::Topic;
use crate::jpp::{Invoice, InvoiceStatus, InvoiceView};
use crate::lightning::LnPayment;
use crate::store::{events, Conn, StoreError};
use crate::units::iso_millis;

/// What happened, as the outbox's `kind` column and the message's `type`/`event` field say it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A BCH invoice was paid, or a Lightning wallet received a payment.
    PaymentReceived,
    /// A Lightning wallet paid.
    PaymentSent,
    InvoiceExpired,
    InvoiceCancelled,
    /// A paid invoice's transaction reached the confirmations it waits for.
    PaymentConfirmed,
    /// A reorg took a confirmed invoice's transaction out of its block (or below the count).
    PaymentUnconfirmed,
    /// A paid invoice's transaction was double-spent or dropped.
    PaymentInvalidated,
    /// The node made a double-spend proof for a paid invoice's transaction.
    DoubleSpendDetected,
    /// Part of an invoice's amount arrived on the chain.
    InvoicePaidPartial,
    /// Money for an invoice arrived after it expired or was cancelled.
    InvoicePaidLate,
}

impl Kind {
    /// Every kind, for the names webhook endpoints subscribe to.
    pub const ALL: [Kind; 10] = [
        Kind::PaymentReceived,
        Kind::PaymentSent,
        Kind::InvoiceExpired,
        Kind::InvoiceCancelled,
        Kind::PaymentConfirmed,
        Kind::PaymentUnconfirmed,
        Kind::PaymentInvalidated,
        Kind::DoubleSpendDetected,
        Kind::InvoicePaidPartial,
        Kind::InvoicePaidLate,
    ];

    /// The kind a name stands for.
    pub fn parse(name: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::PaymentReceived => "payment_received",
            Kind::PaymentSent => "payment_sent",
            Kind::InvoiceExpired => "invoice_expired",
            Kind::InvoiceCancelled => "invoice_cancelled",
            Kind::PaymentConfirmed => "payment_confirmed",
            Kind::PaymentUnconfirmed => "payment_unconfirmed",
            Kind::PaymentInvalidated => "payment_invalidated",
            Kind::DoubleSpendDetected => "double_spend_detected",
            Kind::InvoicePaidPartial => "invoice_paid_partial",
            Kind::InvoicePaidLate => "invoice_paid_late",
        }
    }
}

/// An event on its way into the outbox: its topic, its kind, and its message without the
/// `event_id` (known only once stored).
#[derive(Debug, Clone)]
pub struct Event {
    pub topic: Topic,
    pub kind: Kind,
    body: String,
}

impl Event {
    fn new(topic: Topic, kind: Kind, body: serde_json::Value) -> Event {
        Event {
            topic,
            kind,
            body: body.to_string(),
        }
    }

    /// The message as subscribers will read it, without its `event_id`.
    pub fn body(&self) -> &str {
        &self.body
    }

    /// `payment_received` on an invoice's topic: the public invoice, txid, time, memo.
    pub fn payment_received(invoice: &Invoice, view: InvoiceView<'_>) -> Event {
        let payment = invoice.payment.as_ref();
        Event::new(
            Topic::Invoice(invoice.id),
            Kind::PaymentReceived,
            json!({
                "type": Kind::PaymentReceived.as_str(),
                "invoice": view.public(),
                "txid": payment.map(|p| p.txid.to_hex()),
                "paid_at": payment.and_then(|p| p.paid_ms).map(iso_millis),
                "memo": payment.and_then(|p| p.memo.clone()).or_else(|| invoice.memo.clone()),
            }),
        )
    }

    /// `invoice_expired` or `invoice_cancelled`, as the invoice's status says, with the public
    /// invoice.
    pub fn invoice_closed(invoice: &Invoice, view: InvoiceView<'_>) -> Event {
        let kind = match invoice.status {
            InvoiceStatus::Expired => Kind::InvoiceExpired,
            _ => Kind::InvoiceCancelled,
        };
        Event::new(
            Topic::Invoice(invoice.id),
            kind,
            json!({"type": kind.as_str(), "invoice": view.public()}),
        )
    }

    /// What the chain watcher saw happen to a paid invoice's transaction, on the invoice's
    /// topic: the public invoice, the txid, its confirmations and block, and by kind the
    /// invalid `reason` or the double-spend proof's id and the policy applied.
    pub fn chain_change(
        kind: Kind,
        invoice: &Invoice,
        view: InvoiceView<'_>,
        policy: Option<crate::jpp::DoubleSpendPolicy>,
    ) -> Event {
        let payment = invoice.payment.as_ref();
        let standing = payment.and_then(|p| p.chain.as_ref());
        let block = standing.and_then(|s| s.block);
        let mut body = json!({
            "type": kind.as_str(),
            "invoice": view.public(),
            "txid": payment.map(|p| p.txid.to_hex()),
            "confirmations": standing.map(|s| s.confirmations),
            "block_hash": block.map(|(hash, _)| hash.to_hex()),
            "block_height": block.map(|(_, height)| height),
        });
        match kind {
            Kind::PaymentInvalidated => {
                body["reason"] = json!(invoice.invalid_reason.map(|r| r.as_str()));
            }
            Kind::PaymentUnconfirmed => body["reason"] = json!("reorg"),
            Kind::DoubleSpendDetected => {
                body["proof_id"] = json!(standing.and_then(|s| s.double_spend_proof.clone()));
                body["policy"] = json!(policy.map(|p| p.as_str()));
            }
            _ => {}
        }
        Event::new(Topic::Invoice(invoice.id), kind, body)
    }

    /// A payment seen on the chain (a wallet paid the address), on the invoice's topic, by the
    /// status it left the invoice in: `payment_received` (paid, or more for a paid invoice),
    /// `invoice_paid_partial` or `invoice_paid_late`; with the public invoice, the txid, what
    /// this payment paid and what has been paid and is due in all.
    pub fn chain_payment(
        invoice: &Invoice,
        view: InvoiceView<'_>,
        txid: &str,
        amount: u64,
    ) -> Event {
        let kind = match invoice.status {
            InvoiceStatus::PaidPartial => Kind::InvoicePaidPartial,
            InvoiceStatus::PaidLate => Kind::InvoicePaidLate,
            _ => Kind::PaymentReceived,
        };
        let payment = invoice.payment.as_ref();
        let received = invoice.received();
        Event::new(
            Topic::Invoice(invoice.id),
            kind,
            json!({
                "type": kind.as_str(),
                "invoice": view.public(),
                "txid": txid,
                "via": "chain",
                "amount": amount,
                "amount_paid": received,
                "amount_due": invoice.total().saturating_sub(received),
                "paid_at": payment.and_then(|p| p.paid_ms).map(iso_millis),
                "memo": invoice.memo,
            }),
        )
    }

    /// A settled Lightning payment on its wallet's topic: LNbits 1.x's `{wallet_balance,
    /// payment}` plus the flat fields the seed clients read.
    pub fn wallet_payment(payment: &LnPayment, balance_msat: i64) -> Event {
        let kind = if payment.amount_msat < 0 {
            Kind::PaymentSent
        } else {
            Kind::PaymentReceived
        };
        Event::new(
            Topic::Wallet(payment.wallet_id.clone()),
            kind,
            json!({
                "type": "payment",
                "event": kind.as_str(),
                "wallet_balance": balance_msat.div_euclid(1000),
                "payment": payment.to_json(false),
                "payment_hash": payment.payment_hash,
                "amount": payment.amount_msat / 1000,
                "status": payment.status.as_str(),
                "memo": payment.memo,
                "timestamp": payment.updated_ms / 1000,
            }),
        )
    }
}

/// Writes `event` to the outbox. Call it inside the store transaction that makes the change:
/// the event exists if and only if the change committed, and the store wakes the dispatcher
/// after that commit.
pub fn append(conn: &mut Conn, event: &Event, now_ms: i64) -> Result<(), StoreError> {
    events::insert(
        conn,
        &event.topic.to_string(),
        event.kind.as_str(),
        &event.body,
        now_ms,
    )
}

/// What a subscriber receives: the text of one frame, and the outbox id it carries (none for
/// snapshots and pushes, which are not stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub event_id: Option<i64>,
    pub text: ByteString,
}

/// `body` (a JSON object's text) with `fields` (`"name":value` pairs, already JSON) put first,
/// without parsing it again.
pub fn lead_with(fields: &str, body: &str) -> String {
    let rest = body.trim_start().strip_prefix('{').unwrap_or(body);
    let separator = if rest.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    format!("{{{fields}{separator}{rest}")
}

impl Message {
    /// A stored event's message: its body with `"event_id"` as the first field.
    pub fn numbered(event_id: i64, body: &str) -> Message {
        Message {
            event_id: Some(event_id),
            text: ByteString::from(lead_with(&format!("\"event_id\":{event_id}"), body)),
        }
    }

    /// Text handed on as it is (a push from the LNbits-style endpoints).
    pub fn unnumbered(text: impl Into<ByteString>) -> Message {
        Message {
            event_id: None,
            text: text.into(),
        }
    }

    /// The snapshot a checkout page may ask for first (`?snapshot=1`): the public invoice.
    pub fn invoice_state(view: InvoiceView<'_>) -> Message {
        Message::unnumbered(json!({"type": "invoice_state", "invoice": view.public()}).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_event_id_is_spliced_into_the_body() {
        let m = Message::numbered(7, r#"{"type":"x","n":1}"#);
        assert_eq!(m.event_id, Some(7));
        let v: serde_json::Value = serde_json::from_str(&m.text).unwrap();
        assert_eq!(v, json!({"event_id": 7, "type": "x", "n": 1}));
        let empty = Message::numbered(8, "{}");
        assert_eq!(&*empty.text, r#"{"event_id":8}"#);
    }
}
