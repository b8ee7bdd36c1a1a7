//! The rules a payment is judged by that need no I/O: fee rates in integers, when a
//! transaction the node already has counts as sent for this invoice, and what the node's
//! refusals mean for the wallet.

use super::PayError;
use crate::chain::node::{NodeError, RejectKind, Rejection, RELAY_FEE_PER_KB};
use crate::jpp::Invoice;

/// Bytes the smallest P2PKH unlocking bytecode adds to an unsigned input (for `verify`): a
/// push of a 65-byte Schnorr signature (64 bytes and the hash type) and a push of a 33-byte
/// compressed key. Its length prefix is one byte, as the empty script's was. An ECDSA
/// signature makes it up to 107 bytes; the pay step checks whichever it really is.
pub const SMALLEST_P2PKH_UNLOCK_BYTES: usize = 100;

/// A transaction the node holds in its mempool (the wallet broadcast it itself) pays the
/// invoice only if the node first saw it after the invoice was created, and at the invoice's
/// fee rate (`first_seen_ms`, `fee_sats` and `size` as the node reports them).
pub fn judge_already_in_mempool(
    first_seen_ms: Option<i64>,
    fee_sats: Option<u64>,
    size: Option<u64>,
    invoice: &Invoice,
) -> Result<(), PayError> {
    if !first_seen_ms.is_some_and(|seen| seen_since(seen, invoice.created_ms)) {
        return Err(PayError::Replay);
    }
    match (fee_sats, size) {
        (Some(fee), Some(size)) => fee_meets_rate(fee, size, invoice.fee_per_kb),
        // The node took it into its mempool, so BCHN's relay floor was met; a higher rate
        // asked by the invoice cannot be checked without the fee.
        _ if invoice.fee_per_kb <= RELAY_FEE_PER_KB => Ok(()),
        _ => Err(PayError::FeeUnverifiable(invoice.fee_per_kb)),
    }
}

pub fn node_down(e: NodeError) -> PayError {
    PayError::NodeUnavailable(e)
}

pub fn rejected(r: Rejection) -> PayError {
    match r.kind {
        RejectKind::MissingInputs => PayError::InputsMissing,
        RejectKind::Conflict => PayError::DoubleSpend,
        RejectKind::Invalid => PayError::Rejected(r.reason),
    }
}

/// Whether a transaction the node first saw at `seen_ms` reached it after the invoice was
/// created at `created_ms`, at the node's granularity: BCHN records a mempool arrival in
/// whole seconds, so a wallet that broadcasts within the invoice's first second reads as
/// earlier than the invoice in milliseconds.
pub fn seen_since(seen_ms: i64, created_ms: i64) -> bool {
    seen_ms >= created_ms - created_ms.rem_euclid(1000)
}

/// `fee` sats for `size` bytes is at least `fee_per_kb` sats per 1000 bytes, in integers.
pub fn fee_meets_rate(fee: u64, size: u64, fee_per_kb: u64) -> Result<(), PayError> {
    if u128::from(fee) * 1000 < u128::from(fee_per_kb) * u128::from(size) {
        return Err(PayError::FeeTooLow {
            paid_per_kb: (u128::from(fee) * 1000 / u128::from(size.max(1))) as u64,
            required_per_kb: fee_per_kb,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_sightings_count_from_the_invoices_second() {
        let created = 1_700_000_000_750;
        // BCHN's whole second of the same moment, and anything later.
        assert!(seen_since(1_700_000_000_000, created));
        assert!(seen_since(1_700_000_001_000, created));
        assert!(seen_since(created, created));
        // The second before is before.
        assert!(!seen_since(1_699_999_999_000, created));
        assert!(!seen_since(1_699_999_999_999, created));
        // Times before 1970 floor the same way.
        assert!(seen_since(-2_000, -1_500));
        assert!(!seen_since(-2_001, -1_500));
    }

    #[test]
    fn the_fee_rate_is_judged_in_integers() {
        assert!(fee_meets_rate(219, 219, 1000).is_ok());
        assert!(fee_meets_rate(438, 219, 2000).is_ok());
        match fee_meets_rate(437, 219, 2000) {
            Err(PayError::FeeTooLow {
                paid_per_kb,
                required_per_kb,
            }) => assert_eq!((paid_per_kb, required_per_kb), (1995, 2000)),
            other => panic!("{other:?}"),
        }
        assert!(fee_meets_rate(0, 0, 1000).is_ok());
    }
}
