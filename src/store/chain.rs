//! What the chain watcher keeps: the main chain's recent blocks as it processed them
//! (`chain_blocks`), where each payment's transaction stands (`payments.chain`, its block and
//! confirmations), and the invoice transitions that follow from it. Each transition is one
//! conditional UPDATE; the caller writes its event in the same transaction.

use diesel::prelude::*;

use super::payments::{FINAL, GONE, IN_BLOCK, MEMPOOL};
use super::schema::{chain_blocks, invoices, payments};
use super::{Conn, StoreError};
use crate::chain::Txid;
use crate::jpp::{InvalidReason, InvoiceId, InvoiceStatus};

/// Blocks kept in `chain_blocks`: a reorg deeper than this is walked back only as far.
pub const KEEP_BLOCKS: i64 = 200;

/// A payment deeper than this many blocks is final: no longer watched. Deeper than the most
/// confirmations an invoice may ask for ([`crate::jpp::MAX_CONFIRMATIONS`]).
pub const FINAL_DEPTH: i64 = 150;

/// The newest block processed: `(height, hash)`.
pub fn last_block(conn: &mut Conn) -> Result<Option<(i64, String)>, StoreError> {
    Ok(chain_blocks::table
        .order(chain_blocks::height.desc())
        .select((chain_blocks::height, chain_blocks::hash))
        .first(conn)
        .optional()?)
}

/// The hash processed at `height`, if any.
pub fn block_at(conn: &mut Conn, height: i64) -> Result<Option<String>, StoreError> {
    Ok(chain_blocks::table
        .filter(chain_blocks::height.eq(height))
        .select(chain_blocks::hash)
        .first(conn)
        .optional()?)
}

/// A reorg: forgets the blocks above `height`, and puts the payments mined in them back to
/// the mempool with no confirmations. Returns how many payments moved.
pub fn disconnect_above(conn: &mut Conn, height: i64) -> Result<usize, StoreError> {
    let moved = diesel::update(
        payments::table
            .filter(payments::chain.eq_any([IN_BLOCK, FINAL]))
            .filter(payments::block_height.gt(height)),
    )
    .set((
        payments::chain.eq(MEMPOOL),
        payments::block_hash.eq(None::<String>),
        payments::block_height.eq(None::<i64>),
        payments::confirmations.eq(0),
    ))
    .execute(conn)?;
    diesel::delete(chain_blocks::table.filter(chain_blocks::height.gt(height))).execute(conn)?;
    Ok(moved)
}

/// Records a block of the main chain and the payments whose transactions it holds (those
/// unmined or given up as gone). Returns how many payments it holds.
pub fn connect(
    conn: &mut Conn,
    height: i64,
    hash: &str,
    txids: &[Txid],
    now_ms: i64,
) -> Result<usize, StoreError> {
    diesel::insert_into(chain_blocks::table)
        .values((
            chain_blocks::height.eq(height),
            chain_blocks::hash.eq(hash),
            chain_blocks::processed_ms.eq(now_ms),
        ))
        .execute(conn)?;
    let mut mined = 0;
    for chunk in txids.chunks(super::MAX_BIND_LIST) {
        let ids: Vec<String> = chunk.iter().map(Txid::to_hex).collect();
        mined += diesel::update(
            payments::table
                .filter(payments::txid.eq_any(ids))
                .filter(payments::chain.eq_any([MEMPOOL, GONE])),
        )
        .set((
            payments::chain.eq(IN_BLOCK),
            payments::block_hash.eq(hash),
            payments::block_height.eq(height),
        ))
        .execute(conn)?;
    }
    Ok(mined)
}

/// After the walk: confirmations of mined payments counted from the tip; payments buried past
/// [`FINAL_DEPTH`] stop being watched; blocks older than [`KEEP_BLOCKS`] are forgotten.
pub fn settle_tip(conn: &mut Conn, tip: i64) -> Result<(), StoreError> {
    diesel::update(payments::table.filter(payments::chain.eq(IN_BLOCK)))
        .set(payments::confirmations.eq(diesel::dsl::sql::<
            diesel::sql_types::Nullable<diesel::sql_types::Integer>,
        >(&format!(
            "CAST({tip} - block_height + 1 AS INTEGER)"
        ))))
        .execute(conn)?;
    diesel::update(
        payments::table
            .filter(payments::chain.eq(IN_BLOCK))
            .filter(payments::block_height.le(tip - FINAL_DEPTH)),
    )
    .set(payments::chain.eq(FINAL))
    .execute(conn)?;
    diesel::delete(chain_blocks::table.filter(chain_blocks::height.le(tip - KEEP_BLOCKS)))
        .execute(conn)?;
    Ok(())
}

/// A payment the watcher judges, with its invoice's state.
#[derive(Debug, Clone, Queryable)]
pub struct Watched {
    pub invoice_id: String,
    pub txid: String,
    pub raw_tx: Vec<u8>,
    pub confirmations: Option<i32>,
    pub double_spend_proof: Option<String>,
    pub status: String,
    pub confirmations_required: i32,
}

impl Watched {
    pub fn invoice(&self) -> Result<InvoiceId, StoreError> {
        self.invoice_id
            .parse()
            .map_err(|_| StoreError::Corrupt(format!("invoice id {:?}", self.invoice_id)))
    }

    pub fn txid(&self) -> Result<Txid, StoreError> {
        Txid::from_hex(&self.txid)
            .ok_or_else(|| StoreError::Corrupt(format!("payment txid {:?}", self.txid)))
    }

    pub fn confirmations(&self) -> u32 {
        self.confirmations
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0)
    }

    pub fn required(&self) -> u32 {
        u32::try_from(self.confirmations_required).unwrap_or(0)
    }
}

fn watched_columns() -> (
    payments::invoice_id,
    payments::txid,
    payments::raw_tx,
    payments::confirmations,
    payments::double_spend_proof,
    invoices::status,
    invoices::confirmations_required,
) {
    (
        payments::invoice_id,
        payments::txid,
        payments::raw_tx,
        payments::confirmations,
        payments::double_spend_proof,
        invoices::status,
        invoices::confirmations_required,
    )
}

/// Payments whose transaction is not in a block, of invoices that are paid (or were, and
/// became invalid or confirmed before a reorg): what double-spend proofs, conflicts and drops
/// are judged on.
pub fn unmined(conn: &mut Conn) -> Result<Vec<Watched>, StoreError> {
    Ok(payments::table
        .inner_join(invoices::table.on(invoices::id.eq(payments::invoice_id)))
        .filter(payments::chain.eq(MEMPOOL))
        .select(watched_columns())
        .load(conn)?)
}

/// Mined payments of invoices that may move: paid ones waiting for confirmations, confirmed
/// ones a reorg left short, invalid ones mined after all.
pub fn mined_in_question(conn: &mut Conn) -> Result<Vec<Watched>, StoreError> {
    use InvoiceStatus::{Confirmed, Invalid, Paid};
    Ok(payments::table
        .inner_join(invoices::table.on(invoices::id.eq(payments::invoice_id)))
        .filter(payments::chain.eq(IN_BLOCK))
        .filter(
            invoices::status
                .eq(Invalid.as_str())
                .or(invoices::status
                    .eq(Paid.as_str())
                    .and(invoices::confirmations_required.gt(0)))
                .or(invoices::status.eq(Confirmed.as_str())),
        )
        .select(watched_columns())
        .load(conn)?)
}

/// Confirmed invoices whose payment a reorg put back in the mempool.
pub fn confirmed_unmined(conn: &mut Conn) -> Result<Vec<Watched>, StoreError> {
    Ok(payments::table
        .inner_join(invoices::table.on(invoices::id.eq(payments::invoice_id)))
        .filter(payments::chain.eq_any([MEMPOOL, GONE]))
        .filter(invoices::status.eq(InvoiceStatus::Confirmed.as_str()))
        .select(watched_columns())
        .load(conn)?)
}

/// Moves an invoice `from` one status `to` another with one conditional UPDATE (clearing the
/// invalid reason, or setting it when `to` is invalid). Returns whether it moved.
pub fn move_invoice(
    conn: &mut Conn,
    id: InvoiceId,
    from: &[InvoiceStatus],
    to: InvoiceStatus,
    reason: Option<InvalidReason>,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let from: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let moved = diesel::update(
        invoices::table
            .filter(invoices::id.eq(id.to_string()))
            .filter(invoices::status.eq_any(from)),
    )
    .set((
        invoices::status.eq(to.as_str()),
        invoices::invalid_reason.eq(reason.map(|r| r.as_str())),
        invoices::updated_ms.eq(now_ms),
    ))
    .execute(conn)?;
    Ok(moved == 1)
}

/// Marks an unmined payment's transaction gone from the node (dropped, or its coin spent by
/// another transaction). Returns whether it moved.
pub fn mark_gone(conn: &mut Conn, txid: Txid) -> Result<bool, StoreError> {
    let moved = diesel::update(
        payments::table
            .filter(payments::txid.eq(txid.to_hex()))
            .filter(payments::chain.eq(MEMPOOL)),
    )
    .set(payments::chain.eq(GONE))
    .execute(conn)?;
    Ok(moved == 1)
}

/// Records a double-spend proof for a payment that has none yet. Returns whether it did.
pub fn record_proof(conn: &mut Conn, txid: Txid, proof_id: &str) -> Result<bool, StoreError> {
    let moved = diesel::update(
        payments::table
            .filter(payments::txid.eq(txid.to_hex()))
            .filter(payments::double_spend_proof.is_null()),
    )
    .set(payments::double_spend_proof.eq(proof_id))
    .execute(conn)?;
    Ok(moved == 1)
}

/// Records a payment found mined at `height` (a block processed before the payment existed:
/// a transaction already confirmed when it was posted).
pub fn found_in_block(
    conn: &mut Conn,
    txid: Txid,
    height: i64,
    hash: &str,
    tip: i64,
) -> Result<bool, StoreError> {
    let moved = diesel::update(
        payments::table
            .filter(payments::txid.eq(txid.to_hex()))
            .filter(payments::chain.eq_any([MEMPOOL, GONE])),
    )
    .set((
        payments::chain.eq(IN_BLOCK),
        payments::block_hash.eq(hash),
        payments::block_height.eq(height),
        payments::confirmations.eq(i32::try_from(tip - height + 1).unwrap_or(0)),
    ))
    .execute(conn)?;
    Ok(moved == 1)
}

/// A payment seen on the chain (a wallet paid the address), as the watcher records it.
#[derive(Debug, Clone)]
pub struct ChainPayment {
    pub invoice: InvoiceId,
    pub txid: Txid,
    pub raw_tx: Vec<u8>,
    /// Sats it pays toward the invoice.
    pub amount: u64,
    /// The block it was first seen in, if not the mempool: `(hash, height)`.
    pub block: Option<(String, i64)>,
}

/// Records `payment` and moves its invoice from (`from`, `paid_before`) to (`to`, `received`)
/// with one conditional UPDATE, in the caller's transaction. Returns false, having written
/// nothing, when the invoice is no longer as read. A txid recorded already is
/// [`StoreError::Duplicate`].
pub fn record_chain_payment(
    conn: &mut Conn,
    payment: &ChainPayment,
    from: (InvoiceStatus, Option<u64>),
    to: (InvoiceStatus, u64),
    now_ms: i64,
) -> Result<bool, StoreError> {
    let as_i64 = |v: u64| {
        i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{v} sats does not fit")))
    };
    let id = payment.invoice.to_string();
    let target = invoices::table
        .filter(invoices::id.eq(&id))
        .filter(invoices::status.eq(from.0.as_str()));
    let set = (
        invoices::status.eq(to.0.as_str()),
        invoices::amount_paid.eq(as_i64(to.1)?),
        invoices::updated_ms.eq(now_ms),
    );
    let moved = match from.1 {
        None => diesel::update(target.filter(invoices::amount_paid.is_null()))
            .set(set)
            .execute(conn)?,
        Some(before) => diesel::update(target.filter(invoices::amount_paid.eq(as_i64(before)?)))
            .set(set)
            .execute(conn)?,
    };
    if moved != 1 {
        return Ok(false);
    }
    let (chain, hash, height) = match &payment.block {
        Some((hash, height)) => (IN_BLOCK, Some(hash.as_str()), Some(*height)),
        None => (MEMPOOL, None, None),
    };
    diesel::insert_into(payments::table)
        .values((
            payments::invoice_id.eq(&id),
            payments::txid.eq(payment.txid.to_hex()),
            payments::raw_tx.eq(&payment.raw_tx),
            payments::state.eq(super::payments::BROADCAST),
            payments::created_ms.eq(now_ms),
            payments::paid_ms.eq(now_ms),
            payments::chain.eq(chain),
            payments::block_hash.eq(hash),
            payments::block_height.eq(height),
            payments::confirmations.eq(0),
            payments::via.eq(super::payments::VIA_CHAIN),
            payments::amount.eq(as_i64(payment.amount)?),
        ))
        .execute(conn)?;
    Ok(true)
}
