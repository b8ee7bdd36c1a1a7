//! Which receiving address of a store's xpub a new invoice gets: the next one, while a wallet
//! restored from the xpub would still find it (the gap limit); past that, the address of an
//! invoice that expired unpaid long enough ago; else none, and the merchant is told why.

use super::InvoiceStatus;
use crate::chain::hd::may_allocate;

/// An invoice holding a receiving index, as the choice reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    pub index: u32,
    pub status: InvoiceStatus,
    pub expires_ms: i64,
    /// Sats received on the chain, if any.
    pub amount_paid: Option<u64>,
}

/// The index a new invoice gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// Never handed out before.
    Next(u32),
    /// Handed out before to invoices that all expired (or were cancelled) unpaid at least
    /// `reuse_after_ms` ago. Money sent there late then reaches the new invoice's road and is
    /// recorded, never lost.
    Reuse(u32),
}

/// The index for a new invoice, or `None` when none may be handed out: the next would leave
/// `gap_limit` unused addresses in a row and no earlier one is free again. `holders` are the
/// invoices holding indexes above `last_used` (the highest index money reached).
pub fn pick_index(
    last_used: Option<u32>,
    next: u32,
    gap_limit: u32,
    holders: &[Holder],
    now_ms: i64,
    reuse_after_ms: i64,
) -> Option<Pick> {
    if may_allocate(last_used, next, gap_limit) {
        return Some(Pick::Next(next));
    }
    let free = |h: &Holder| {
        let ended = match h.status {
            InvoiceStatus::Expired | InvoiceStatus::Cancelled => true,
            InvoiceStatus::Open => now_ms >= h.expires_ms,
            _ => false,
        };
        ended && h.amount_paid.is_none() && now_ms >= h.expires_ms.saturating_add(reuse_after_ms)
    };
    let mut candidates: Vec<u32> = holders.iter().map(|h| h.index).collect();
    candidates.sort_unstable();
    candidates.dedup();
    candidates
        .into_iter()
        .find(|&i| holders.iter().filter(|h| h.index == i).all(free))
        .map(Pick::Reuse)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn holder(index: u32, status: InvoiceStatus, expires_ms: i64) -> Holder {
        Holder {
            index,
            status,
            expires_ms,
            amount_paid: None,
        }
    }

    #[test]
    fn next_while_the_gap_allows_then_an_old_free_address() {
        assert_eq!(pick_index(None, 0, 20, &[], 0, 0), Some(Pick::Next(0)));
        assert_eq!(pick_index(None, 19, 20, &[], 0, 0), Some(Pick::Next(19)));
        assert_eq!(pick_index(Some(4), 24, 20, &[], 0, 0), Some(Pick::Next(24)));
        // Twenty unused after nothing used: full, and nothing to reuse yet.
        let open: Vec<Holder> = (0..20)
            .map(|i| holder(i, InvoiceStatus::Open, 1000))
            .collect();
        assert_eq!(pick_index(None, 20, 20, &open, 500, 0), None);
        // Expired (by the clock) but within the wait: still not.
        assert_eq!(pick_index(None, 20, 20, &open, 1500, 3_600_000), None);
        // Past the wait: the lowest such index.
        assert_eq!(
            pick_index(None, 20, 20, &open, 1000 + 3_600_000, 3_600_000),
            Some(Pick::Reuse(0))
        );
    }

    #[test]
    fn an_index_with_any_live_or_paid_holder_is_not_free() {
        let mut paid = holder(0, InvoiceStatus::Expired, 0);
        paid.amount_paid = Some(1);
        let holders = [
            paid,
            holder(1, InvoiceStatus::Cancelled, 0),
            holder(1, InvoiceStatus::Open, 10_000),
            holder(2, InvoiceStatus::Cancelled, 0),
        ];
        assert_eq!(
            pick_index(None, 3, 3, &holders, 100, 0),
            Some(Pick::Reuse(2))
        );
        let all_taken = [holders[0], holders[1], holders[2]];
        assert_eq!(pick_index(None, 3, 3, &all_taken, 100, 0), None);
    }
}
