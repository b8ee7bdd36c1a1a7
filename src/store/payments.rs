//! The `payments` table and the transitions of paying: claim (open → paying, payment recorded
//! before broadcast), settle (paying → paid) and release (paying → open, when
//! the network definitively refused the transaction).

use diesel::prelude::*;

use super::schema::{invoices, payments};
use super::{invoices as invoice_rows, Conn, StoreError};
use crate::chain::watch::BlockHash;
use crate::chain::Txid;
use crate::jpp::{ChainStanding, Invoice, InvoiceId, InvoiceStatus, Payment, Via};

pub const BROADCASTING: &str = "broadcasting";
pub const BROADCAST: &str = "broadcast";

/// Where the chain watcher last saw a payment's transaction (the `chain` column).
pub const MEMPOOL: &str = "mempool";
pub const IN_BLOCK: &str = "block";
pub const GONE: &str = "gone";
pub const FINAL: &str = "final";

/// A payment seen on the chain (the `via` column; the others came through the protocol).
pub const VIA_CHAIN: &str = "chain";

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = payments)]
pub struct PaymentRow {
    pub invoice_id: String,
    pub txid: String,
    pub raw_tx: Vec<u8>,
    pub state: String,
    pub memo: Option<String>,
    pub refund_to: Option<String>,
    pub paid_ms: Option<i64>,
    pub chain: Option<String>,
    pub block_hash: Option<String>,
    pub block_height: Option<i64>,
    pub confirmations: Option<i32>,
    pub double_spend_proof: Option<String>,
    pub via: String,
}

impl PaymentRow {
    pub fn to_payment(&self) -> Result<Payment, StoreError> {
        Ok(Payment {
            txid: Txid::from_hex(&self.txid)
                .ok_or_else(|| StoreError::Corrupt(format!("payment txid {:?}", self.txid)))?,
            memo: self.memo.clone(),
            refund_to: self
                .refund_to
                .as_deref()
                .map(serde_json::from_str)
                .transpose()
                .map_err(|_| StoreError::Corrupt("refund_to is not JSON".into()))?,
            paid_ms: self.paid_ms,
            chain: self.standing()?,
            via: if self.via == VIA_CHAIN {
                Via::Chain
            } else {
                Via::Jpp
            },
        })
    }

    fn standing(&self) -> Result<Option<ChainStanding>, StoreError> {
        let (Some(_), Some(confirmations)) = (&self.chain, self.confirmations) else {
            return Ok(None);
        };
        let block = match (&self.block_hash, self.block_height) {
            (Some(hash), Some(height)) => Some((
                BlockHash::from_hex(hash)
                    .ok_or_else(|| StoreError::Corrupt(format!("block hash {hash:?}")))?,
                height,
            )),
            _ => None,
        };
        Ok(Some(ChainStanding {
            confirmations: u32::try_from(confirmations).unwrap_or(0),
            block,
            double_spend_proof: self.double_spend_proof.clone(),
        }))
    }
}

pub fn by_txid(conn: &mut Conn, txid: Txid) -> Result<Option<PaymentRow>, StoreError> {
    Ok(payments::table
        .filter(payments::txid.eq(txid.to_hex()))
        .select(PaymentRow::as_select())
        .first(conn)
        .optional()?)
}

/// The invoice's latest payment.
pub fn for_invoice(conn: &mut Conn, id: &str) -> Result<Option<PaymentRow>, StoreError> {
    Ok(payments::table
        .filter(payments::invoice_id.eq(id))
        .order(payments::id.desc())
        .select(PaymentRow::as_select())
        .first(conn)
        .optional()?)
}

/// Payments whose broadcast has not been settled either way, claimed before `before_ms`.
pub fn in_flight(conn: &mut Conn, before_ms: i64) -> Result<Vec<PaymentRow>, StoreError> {
    Ok(payments::table
        .filter(payments::state.eq(BROADCASTING))
        .filter(payments::created_ms.lt(before_ms))
        .select(PaymentRow::as_select())
        .load(conn)?)
}

/// What a wallet sent along with its transaction.
#[derive(Debug, Clone)]
pub struct Claim {
    pub invoice: InvoiceId,
    pub txid: Txid,
    pub raw_tx: Vec<u8>,
    pub memo: Option<String>,
    pub refund_to: Option<serde_json::Value>,
    /// When the request arrived: the invoice must still have been open then.
    pub arrival_ms: i64,
}

/// Moves the invoice from open to paying and records the payment, in one transaction. Returns
/// false (and writes nothing) when the invoice was no longer open: another payment won.
pub fn claim(conn: &mut Conn, claim: &Claim, now_ms: i64) -> Result<bool, StoreError> {
    let id = claim.invoice.to_string();
    let moved = diesel::update(
        invoices::table
            .filter(invoices::id.eq(&id))
            .filter(invoices::status.eq(InvoiceStatus::Open.as_str()))
            .filter(invoices::expires_ms.gt(claim.arrival_ms)),
    )
    .set((
        invoices::status.eq(InvoiceStatus::Paying.as_str()),
        invoices::updated_ms.eq(now_ms),
    ))
    .execute(conn)?;
    if moved != 1 {
        return Ok(false);
    }
    diesel::insert_into(payments::table)
        .values((
            payments::invoice_id.eq(&id),
            payments::txid.eq(claim.txid.to_hex()),
            payments::raw_tx.eq(&claim.raw_tx),
            payments::state.eq(BROADCASTING),
            payments::memo.eq(&claim.memo),
            payments::refund_to.eq(claim.refund_to.as_ref().map(|v| v.to_string())),
            payments::created_ms.eq(now_ms),
        ))
        .execute(conn)?;
    Ok(true)
}

/// The broadcast succeeded: paying → paid. Returns the invoice as it is now and whether this
/// call moved it (settling twice finds nothing to move the second time). Both updates return
/// their rows, so the common case is two statements and no read.
pub fn settle(
    conn: &mut Conn,
    id: InvoiceId,
    txid: Txid,
    now_ms: i64,
) -> Result<(Option<Invoice>, bool), StoreError> {
    let key = id.to_string();
    let paid = diesel::update(
        payments::table
            .filter(payments::txid.eq(txid.to_hex()))
            .filter(payments::invoice_id.eq(&key))
            .filter(payments::state.eq(BROADCASTING)),
    )
    .set((
        payments::state.eq(BROADCAST),
        payments::paid_ms.eq(now_ms),
        // From here the chain watcher follows it.
        payments::chain.eq(MEMPOOL),
        payments::confirmations.eq(0),
    ))
    // The columns by name (as `invoices::paid_with` says why).
    .returning((
        payments::invoice_id,
        payments::txid,
        payments::raw_tx,
        payments::state,
        payments::memo,
        payments::refund_to,
        payments::paid_ms,
        payments::chain,
        payments::block_hash,
        payments::block_height,
        payments::confirmations,
        payments::double_spend_proof,
        payments::via,
    ))
    .get_result::<PaymentRow>(conn)
    .optional()?;
    let Some(payment) = paid else {
        return Ok((invoice_rows::get(conn, id)?, false));
    };
    match invoice_rows::paid_with(conn, &key, &payment, now_ms)? {
        Some(invoice) => Ok((Some(invoice), true)),
        // The invoice had left paying some other way: show it as it is.
        None => Ok((invoice_rows::get(conn, id)?, true)),
    }
}

/// The network refused the transaction: forget the payment and reopen the invoice.
pub fn release(conn: &mut Conn, id: InvoiceId, txid: Txid, now_ms: i64) -> Result<(), StoreError> {
    let key = id.to_string();
    let removed = diesel::delete(
        payments::table
            .filter(payments::txid.eq(txid.to_hex()))
            .filter(payments::invoice_id.eq(&key))
            .filter(payments::state.eq(BROADCASTING)),
    )
    .execute(conn)?;
    if removed == 1 {
        diesel::update(
            invoices::table
                .filter(invoices::id.eq(&key))
                .filter(invoices::status.eq(InvoiceStatus::Paying.as_str())),
        )
        .set((
            invoices::status.eq(InvoiceStatus::Open.as_str()),
            invoices::updated_ms.eq(now_ms),
        ))
        .execute(conn)?;
    }
    Ok(())
}
