//! Payments that arrive on the chain rather than through the payment protocol: a wallet that
//! pays the invoice's address. What a transaction pays toward an invoice, and what that makes
//! of the invoice.
//!
//! An invoice of one plain (token-free) output adds up every output to its address, so it can
//! be paid in parts and overpaid. An invoice of several outputs, or of tokens, is paid only by
//! a transaction that pays all of it, as the payment protocol asks (a plain address URI cannot
//! ask for more than one output or for tokens anyway).

use super::pay::match_outputs;
use super::{Invoice, InvoiceStatus};
use crate::chain::Tx;

/// Sats `tx` pays toward `invoice`, or `None` when it pays nothing toward it.
pub fn paid_toward(invoice: &Invoice, tx: &Tx) -> Option<u64> {
    match invoice.outputs.as_slice() {
        [only] if only.token.is_none() => {
            let script = only.address.locking_bytecode();
            let sum = tx
                .outputs
                .iter()
                .filter(|o| o.token.is_none() && o.locking_bytecode == script)
                .fold(0u64, |sum, o| sum.saturating_add(o.value));
            (sum > 0).then_some(sum)
        }
        wanted => match_outputs(tx, wanted).ok().map(|()| invoice.total()),
    }
}

/// What a payment of `amount` sats seen at `seen_ms` makes of the invoice: its new status and
/// the sats received in all. A paid (or paying, confirmed, invalid) invoice keeps its status:
/// the money is recorded as more of the same.
pub fn receive(invoice: &Invoice, amount: u64, seen_ms: i64) -> (InvoiceStatus, u64) {
    let received = invoice.amount_paid.unwrap_or(0).saturating_add(amount);
    let in_time = seen_ms < invoice.expires_ms;
    let status = match invoice.status {
        InvoiceStatus::Open | InvoiceStatus::PaidPartial if in_time => {
            if received >= invoice.total() {
                InvoiceStatus::Paid
            } else {
                InvoiceStatus::PaidPartial
            }
        }
        InvoiceStatus::Open
        | InvoiceStatus::PaidPartial
        | InvoiceStatus::Expired
        | InvoiceStatus::Cancelled
        | InvoiceStatus::PaidLate => InvoiceStatus::PaidLate,
        other => other,
    };
    (status, received)
}

/// Whether a transaction first seen at `first_seen_ms` can be a payment for `invoice`: only
/// if it reached the network after the invoice was made. A transaction seen before paid
/// something else (an address shared with older invoices), or is an old one replayed. The
/// comparison is to the millisecond (of when the watcher had it, no earlier than its true
/// arrival), unlike the payment protocol's whole second: a wallet paying an address has read
/// the invoice first, so it cannot pay in the invoice's own millisecond.
pub fn arrived_for(invoice: &Invoice, first_seen_ms: i64) -> bool {
    first_seen_ms > invoice.created_ms
}

/// Which of several invoices a transaction is for (txids are unique: one transaction is one
/// invoice's payment), lowest first: one waiting for money in time, then one it comes late
/// for, then one paid already; the oldest first within each.
pub fn claim_order(invoice: &Invoice, now_ms: i64) -> (u8, i64) {
    let waiting = matches!(
        invoice.status,
        InvoiceStatus::Open | InvoiceStatus::PaidPartial
    );
    let rank = match invoice.status {
        _ if waiting && now_ms < invoice.expires_ms => 0,
        InvoiceStatus::Open
        | InvoiceStatus::PaidPartial
        | InvoiceStatus::Expired
        | InvoiceStatus::Cancelled
        | InvoiceStatus::PaidLate => 1,
        _ => 2,
    };
    (rank, invoice.created_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{Address, Input, Network, OutPoint, Output, TokenData, Txid};
    use crate::jpp::InvoiceOutput;

    const ADDR: &str = "bchreg:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eyphnpcjvs";

    fn invoice(amounts: &[u64]) -> Invoice {
        let address = Address::parse(ADDR, Network::Regtest).unwrap();
        Invoice::open(
            amounts
                .iter()
                .map(|&amount| InvoiceOutput {
                    address: address.clone(),
                    amount,
                    description: None,
                    token: None,
                })
                .collect(),
            0,
            1000,
        )
    }

    fn tx(outputs: Vec<Output>) -> Tx {
        Tx {
            version: 2,
            inputs: vec![Input {
                prevout: OutPoint {
                    txid: Txid([1; 32]),
                    vout: 0,
                },
                script_sig: vec![],
                sequence: 0,
            }],
            outputs,
            lock_time: 0,
        }
    }

    fn to_addr(value: u64) -> Output {
        Output {
            value,
            token: None,
            locking_bytecode: Address::parse(ADDR, Network::Regtest)
                .unwrap()
                .locking_bytecode(),
        }
    }

    #[test]
    fn one_output_invoices_add_up_every_output_to_the_address() {
        let inv = invoice(&[5000]);
        let elsewhere = Output {
            locking_bytecode: vec![0x6a],
            ..to_addr(9999)
        };
        assert_eq!(paid_toward(&inv, &tx(vec![elsewhere.clone()])), None);
        assert_eq!(
            paid_toward(&inv, &tx(vec![to_addr(1000), elsewhere, to_addr(700)])),
            Some(1700)
        );
        // Tokens to the address are not sats toward a plain invoice.
        let mut token = to_addr(800);
        token.token = Some(TokenData::new([7; 32], 5, None).unwrap());
        assert_eq!(paid_toward(&inv, &tx(vec![token])), None);
    }

    #[test]
    fn several_outputs_are_paid_only_whole() {
        let inv = invoice(&[1000, 2000]);
        assert_eq!(paid_toward(&inv, &tx(vec![to_addr(1000)])), None);
        assert_eq!(
            paid_toward(&inv, &tx(vec![to_addr(2000), to_addr(1000)])),
            Some(3000)
        );
    }

    #[test]
    fn partial_full_over_and_late() {
        let mut inv = invoice(&[5000]);
        assert_eq!(receive(&inv, 2000, 10), (InvoiceStatus::PaidPartial, 2000));
        inv.status = InvoiceStatus::PaidPartial;
        inv.amount_paid = Some(2000);
        assert_eq!(receive(&inv, 3000, 20), (InvoiceStatus::Paid, 5000));
        assert_eq!(receive(&inv, 9000, 20), (InvoiceStatus::Paid, 11000));
        // At the expiry instant the invoice is no longer open.
        assert_eq!(receive(&inv, 3000, 1000), (InvoiceStatus::PaidLate, 5000));
        inv.status = InvoiceStatus::Cancelled;
        assert_eq!(receive(&inv, 1, 20).0, InvoiceStatus::PaidLate);
        inv.status = InvoiceStatus::Confirmed;
        assert_eq!(receive(&inv, 1, 20), (InvoiceStatus::Confirmed, 2001));
        inv.amount_paid = Some(u64::MAX);
        assert_eq!(receive(&inv, 5, 20).1, u64::MAX, "no overflow");
    }

    #[test]
    fn only_transactions_seen_after_the_invoice_count() {
        let mut inv = invoice(&[5000]);
        inv.created_ms = 10_500;
        assert!(!arrived_for(&inv, 10_000), "the same second, but earlier");
        assert!(
            !arrived_for(&inv, 10_500),
            "not in the invoice's own millisecond"
        );
        assert!(arrived_for(&inv, 10_501));
    }

    #[test]
    fn a_shared_address_pays_the_invoice_waiting_for_it() {
        let mut waiting = invoice(&[5000]);
        waiting.created_ms = 500;
        let mut older_paid = invoice(&[5000]);
        older_paid.status = InvoiceStatus::Paid;
        let mut expired = invoice(&[5000]);
        expired.status = InvoiceStatus::Expired;
        let mut list = [&older_paid, &expired, &waiting];
        list.sort_by_key(|i| claim_order(i, 10));
        assert_eq!(list.map(|i| i.id), [waiting.id, expired.id, older_paid.id]);
        // Past its expiry an open invoice ranks with the late ones.
        assert_eq!(claim_order(&waiting, 1000).0, 1);
    }
}
