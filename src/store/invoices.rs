//! The `invoices` table. An invoice's outputs never change once created and are always read
//! with it, so they live in the row as the JSON clients read.

use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::schema::{invoice_scripts, invoices, stores};
use super::{payments, Conn, StoreError};
use crate::chain::{Address, Network, Nft, NftCapability, TokenData};
use crate::jpp::{InvalidReason, Invoice, InvoiceId, InvoiceOutput, InvoiceStatus};

#[derive(Insertable)]
#[diesel(table_name = invoices)]
struct NewInvoiceRow<'a> {
    id: &'a str,
    status: &'a str,
    memo: Option<&'a str>,
    outputs: String,
    merchant_data: Option<String>,
    created_ms: i64,
    expires_ms: i64,
    fee_per_kb: i64,
    api_key_id: Option<i64>,
    updated_ms: i64,
    store_id: i64,
    confirmations_required: i32,
    address_index: Option<i64>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = invoices)]
struct InvoiceRow {
    seq: i64,
    id: String,
    status: String,
    memo: Option<String>,
    outputs: String,
    merchant_data: Option<String>,
    created_ms: i64,
    expires_ms: i64,
    fee_per_kb: i64,
    store_id: i64,
    confirmations_required: i32,
    invalid_reason: Option<String>,
    amount_paid: Option<i64>,
    address_index: Option<i64>,
}

/// An output as stored, in the JSON the invoice's `outputs` show (rows written before this
/// type existed were written by that view).
#[derive(Serialize, Deserialize)]
struct StoredOutput {
    amount: u64,
    address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<StoredToken>,
}

#[derive(Serialize, Deserialize)]
struct StoredToken {
    category: String,
    amount: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    nft: Option<StoredNft>,
}

#[derive(Serialize, Deserialize)]
struct StoredNft {
    capability: String,
    commitment: String,
}

impl StoredOutput {
    fn new(o: &InvoiceOutput) -> StoredOutput {
        StoredOutput {
            amount: o.amount,
            address: o.address_string(),
            description: o.description.clone(),
            token: o.token.as_ref().map(|t| StoredToken {
                category: hex::encode(t.category),
                amount: t.amount,
                nft: t.nft.as_ref().map(|n| StoredNft {
                    capability: n.capability.as_str().to_owned(),
                    commitment: hex::encode(&n.commitment),
                }),
            }),
        }
    }
}

/// Which invoices a merchant lists (always one store's); `after` is the cursor of the previous
/// page.
#[derive(Debug, Clone, Copy)]
pub struct ListFilter {
    pub store_id: i64,
    pub status: Option<InvoiceStatus>,
    pub limit: i64,
    pub after: Option<i64>,
}

pub struct InvoicePage {
    pub invoices: Vec<Invoice>,
    /// Pass back as `after` for the next page; `None` on the last page.
    pub next_cursor: Option<i64>,
}

pub fn insert(
    conn: &mut Conn,
    invoice: &Invoice,
    api_key_id: Option<i64>,
) -> Result<(), StoreError> {
    let outputs: Vec<StoredOutput> = invoice.outputs.iter().map(StoredOutput::new).collect();
    diesel::insert_into(invoices::table)
        .values(NewInvoiceRow {
            id: &invoice.id.to_string(),
            status: invoice.status.as_str(),
            memo: invoice.memo.as_deref(),
            outputs: serde_json::to_string(&outputs)
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
            merchant_data: invoice.merchant_data.as_ref().map(|v| v.to_string()),
            created_ms: invoice.created_ms,
            expires_ms: invoice.expires_ms,
            fee_per_kb: to_i64(invoice.fee_per_kb)?,
            api_key_id,
            updated_ms: invoice.created_ms,
            store_id: invoice.store_id,
            confirmations_required: i32::try_from(invoice.confirmations_required)
                .map_err(|_| StoreError::Corrupt("confirmations_required".into()))?,
            address_index: invoice.address_index.map(i64::from),
        })
        .execute(conn)?;
    // Where its money may arrive on the chain, for the watcher to look up.
    let mut scripts: Vec<String> = invoice
        .outputs
        .iter()
        .map(|o| hex::encode(o.address.locking_bytecode()))
        .collect();
    scripts.sort_unstable();
    scripts.dedup();
    let id = invoice.id.to_string();
    // One row at a time: the connection type both backends share has no batch insert, and
    // most invoices have one output.
    for script in &scripts {
        diesel::insert_into(invoice_scripts::table)
            .values((
                invoice_scripts::script.eq(script),
                invoice_scripts::invoice_id.eq(&id),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The invoices whose outputs ask for any of these locking scripts (hex).
pub fn paying_to(conn: &mut Conn, scripts: &[String]) -> Result<Vec<InvoiceId>, StoreError> {
    let ids: Vec<String> = invoice_scripts::table
        .filter(invoice_scripts::script.eq_any(scripts))
        .select(invoice_scripts::invoice_id)
        .distinct()
        .load(conn)?;
    parse_ids(&ids)
}

/// The confirmation count a store set for its invoices, if it set one.
pub fn store_confirmations(conn: &mut Conn, store_id: i64) -> Result<Option<u32>, StoreError> {
    let set: Option<Option<i32>> = stores::table
        .filter(stores::id.eq(store_id))
        .select(stores::confirmations)
        .first(conn)
        .optional()?;
    Ok(set.flatten().and_then(|n| u32::try_from(n).ok()))
}

pub fn get(conn: &mut Conn, id: InvoiceId) -> Result<Option<Invoice>, StoreError> {
    let Some(row) = invoices::table
        .filter(invoices::id.eq(id.to_string()))
        .select(InvoiceRow::as_select())
        .first(conn)
        .optional()?
    else {
        return Ok(None);
    };
    with_payment(conn, to_invoice(row)?).map(Some)
}

/// Moves the invoice from paying to paid and returns it, with `payment` (its payment, just
/// settled) attached: one statement where a read after the update would be two more. `None`
/// when the invoice was not paying.
pub(super) fn paid_with(
    conn: &mut Conn,
    id: &str,
    payment: &payments::PaymentRow,
    now_ms: i64,
) -> Result<Option<Invoice>, StoreError> {
    let Some(row) = diesel::update(
        invoices::table
            .filter(invoices::id.eq(id))
            .filter(invoices::status.eq(InvoiceStatus::Paying.as_str())),
    )
    .set((
        invoices::status.eq(InvoiceStatus::Paid.as_str()),
        invoices::updated_ms.eq(now_ms),
    ))
    // The columns by name: a `Selectable`'s returning clause does not build for both backends
    // of a `MultiConnection`.
    .returning((
        invoices::seq,
        invoices::id,
        invoices::status,
        invoices::memo,
        invoices::outputs,
        invoices::merchant_data,
        invoices::created_ms,
        invoices::expires_ms,
        invoices::fee_per_kb,
        invoices::store_id,
        invoices::confirmations_required,
        invoices::invalid_reason,
        invoices::amount_paid,
        invoices::address_index,
    ))
    .get_result::<InvoiceRow>(conn)
    .optional()?
    else {
        return Ok(None);
    };
    let mut invoice = to_invoice(row)?;
    invoice.payment = Some(payment.to_payment()?);
    Ok(Some(invoice))
}

/// Adds the payment to an invoice that has one (it is looked up only then).
fn with_payment(conn: &mut Conn, mut invoice: Invoice) -> Result<Invoice, StoreError> {
    if !matches!(
        invoice.status,
        InvoiceStatus::Open | InvoiceStatus::Expired | InvoiceStatus::Cancelled
    ) {
        invoice.payment = payments::for_invoice(conn, &invoice.id.to_string())?
            .map(|p| p.to_payment())
            .transpose()?;
    }
    Ok(invoice)
}

pub fn list(conn: &mut Conn, filter: &ListFilter, now_ms: i64) -> Result<InvoicePage, StoreError> {
    let mut query = invoices::table
        .filter(invoices::store_id.eq(filter.store_id))
        .select(InvoiceRow::as_select())
        .into_boxed();
    query = match filter.status {
        // Expiry is computed at read time: an open invoice past its time is listed as expired.
        Some(InvoiceStatus::Open) => query
            .filter(invoices::status.eq("open"))
            .filter(invoices::expires_ms.gt(now_ms)),
        Some(InvoiceStatus::Expired) => query.filter(
            invoices::status.eq("expired").or(invoices::status
                .eq("open")
                .and(invoices::expires_ms.le(now_ms))),
        ),
        Some(other) => query.filter(invoices::status.eq(other.as_str())),
        None => query,
    };
    if let Some(after) = filter.after {
        query = query.filter(invoices::seq.lt(after));
    }
    let mut rows: Vec<InvoiceRow> = query
        .order(invoices::seq.desc())
        .limit(filter.limit + 1)
        .load(conn)?;
    let next_cursor = if rows.len() as i64 > filter.limit {
        rows.truncate(filter.limit as usize);
        rows.last().map(|r| r.seq)
    } else {
        None
    };
    let invoices = rows
        .into_iter()
        .map(|row| with_payment(conn, to_invoice(row)?))
        .collect::<Result<_, _>>()?;
    Ok(InvoicePage {
        invoices,
        next_cursor,
    })
}

/// Moves an open invoice to `to` with one conditional UPDATE (to `Expired` only once its time
/// is up, to anything else only while it is not). Returns the invoice as it is afterwards and whether it moved, or `None` when
/// it does not exist (or, with `store_id`, belongs to another store: the same answer, so a
/// merchant cannot tell another store's invoice from a missing one).
pub fn transition(
    conn: &mut Conn,
    id: InvoiceId,
    store_id: Option<i64>,
    to: InvoiceStatus,
    now_ms: i64,
) -> Result<Option<(Invoice, bool)>, StoreError> {
    if let Some(store) = store_id {
        let owned = invoices::table
            .filter(invoices::id.eq(id.to_string()))
            .filter(invoices::store_id.eq(store))
            .select(invoices::seq)
            .first::<i64>(conn)
            .optional()?;
        if owned.is_none() {
            return Ok(None);
        }
    }
    let target = invoices::table
        .filter(invoices::id.eq(id.to_string()))
        .filter(invoices::status.eq(InvoiceStatus::Open.as_str()));
    let set = (
        invoices::status.eq(to.as_str()),
        invoices::updated_ms.eq(now_ms),
    );
    let changed = if to == InvoiceStatus::Expired {
        diesel::update(target.filter(invoices::expires_ms.le(now_ms)))
            .set(set)
            .execute(conn)?
    } else {
        diesel::update(target.filter(invoices::expires_ms.gt(now_ms)))
            .set(set)
            .execute(conn)?
    };
    Ok(get(conn, id)?.map(|invoice| (invoice, changed == 1)))
}

fn to_invoice(row: InvoiceRow) -> Result<Invoice, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("invoice {}: {what}", row.id));
    let stored: Vec<StoredOutput> =
        serde_json::from_str(&row.outputs).map_err(|e| corrupt(&format!("outputs: {e}")))?;
    let outputs = stored
        .into_iter()
        .map(|o| to_output(o).map_err(|e| corrupt(&e)))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Invoice {
        id: row.id.parse().map_err(|_| corrupt("malformed id"))?,
        status: InvoiceStatus::parse(&row.status).ok_or_else(|| corrupt("unknown status"))?,
        outputs,
        memo: row.memo,
        merchant_data: row
            .merchant_data
            .map(|s| serde_json::from_str(&s))
            .transpose()
            .map_err(|_| corrupt("merchant_data is not JSON"))?,
        created_ms: row.created_ms,
        expires_ms: row.expires_ms,
        fee_per_kb: u64::try_from(row.fee_per_kb).map_err(|_| corrupt("negative fee rate"))?,
        store_id: row.store_id,
        confirmations_required: u32::try_from(row.confirmations_required)
            .map_err(|_| corrupt("negative confirmations"))?,
        invalid_reason: match row.invalid_reason {
            None => None,
            Some(r) => Some(InvalidReason::parse(&r).ok_or_else(|| corrupt("unknown reason"))?),
        },
        amount_paid: row
            .amount_paid
            .map(u64::try_from)
            .transpose()
            .map_err(|_| corrupt("negative amount paid"))?,
        address_index: row
            .address_index
            .map(u32::try_from)
            .transpose()
            .map_err(|_| corrupt("address index out of range"))?,
        payment: None,
    })
}

fn to_output(o: StoredOutput) -> Result<InvoiceOutput, String> {
    let network = Network::ALL
        .into_iter()
        .find(|n| o.address.starts_with(n.cashaddr_prefix()))
        .ok_or("output address has no known prefix")?;
    let address = Address::parse(&o.address, network).map_err(|e| e.to_string())?;
    let token = match o.token {
        None => None,
        Some(t) => {
            let mut category = [0u8; 32];
            hex::decode_to_slice(&t.category, &mut category).map_err(|e| e.to_string())?;
            let nft = match t.nft {
                None => None,
                Some(n) => Some(Nft {
                    capability: NftCapability::parse(&n.capability)
                        .ok_or("unknown NFT capability")?,
                    commitment: hex::decode(&n.commitment).map_err(|e| e.to_string())?,
                }),
            };
            Some(TokenData::new(category, t.amount, nft).map_err(|e| e.to_string())?)
        }
    };
    Ok(InvoiceOutput {
        address,
        amount: o.amount,
        description: o.description,
        token,
    })
}

fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{v} does not fit a BIGINT")))
}

/// Open invoices whose time is up, oldest first: what the expiry sweeper records.
pub fn overdue(conn: &mut Conn, now_ms: i64, limit: i64) -> Result<Vec<InvoiceId>, StoreError> {
    let ids: Vec<String> = invoices::table
        .filter(invoices::status.eq(InvoiceStatus::Open.as_str()))
        .filter(invoices::expires_ms.le(now_ms))
        .order(invoices::expires_ms)
        .limit(limit)
        .select(invoices::id)
        .load(conn)?;
    parse_ids(&ids)
}

/// A store's xpub and the lowest receiving index it never handed out.
pub fn store_xpub(conn: &mut Conn, store_id: i64) -> Result<Option<(String, i64)>, StoreError> {
    let row: Option<(Option<String>, i64)> = stores::table
        .filter(stores::id.eq(store_id))
        .select((stores::xpub, stores::next_index))
        .first(conn)
        .optional()?;
    Ok(row.and_then(|(xpub, next)| Some((xpub?, next))))
}

/// Moves a store's next receiving index from `from` to `from + 1`; false when another
/// process took `from` first.
pub fn take_index(conn: &mut Conn, store_id: i64, from: i64) -> Result<bool, StoreError> {
    let moved = diesel::update(
        stores::table
            .filter(stores::id.eq(store_id))
            .filter(stores::next_index.eq(from)),
    )
    .set(stores::next_index.eq(from + 1))
    .execute(conn)?;
    Ok(moved == 1)
}

/// The highest receiving index of the store that money reached (on the chain or through the
/// protocol): the end of the used run a restoring wallet finds.
pub fn last_used_index(conn: &mut Conn, store_id: i64) -> Result<Option<u32>, StoreError> {
    use InvoiceStatus::{Confirmed, Invalid, Paid, PaidLate, PaidPartial, Paying};
    let used: Vec<&str> = [Paying, Paid, Confirmed, Invalid, PaidPartial, PaidLate]
        .iter()
        .map(|s| s.as_str())
        .collect();
    let top: Option<i64> = invoices::table
        .filter(invoices::store_id.eq(store_id))
        .filter(invoices::status.eq_any(used))
        .select(diesel::dsl::max(invoices::address_index))
        .first(conn)?;
    Ok(top.and_then(|i| u32::try_from(i).ok()))
}

/// An invoice holding a receiving index: `(address_index, status, expires_ms, amount_paid)`.
pub type IndexHolder = (i64, String, i64, Option<i64>);

/// Every invoice holding one of the store's indexes above `after`: what deciding whether an
/// address may be handed out again reads.
pub fn indexes_above(
    conn: &mut Conn,
    store_id: i64,
    after: Option<u32>,
) -> Result<Vec<IndexHolder>, StoreError> {
    let floor = after.map_or(-1, i64::from);
    Ok(invoices::table
        .filter(invoices::store_id.eq(store_id))
        .filter(invoices::address_index.gt(floor))
        .select((
            invoices::address_index.assume_not_null(),
            invoices::status,
            invoices::expires_ms,
            invoices::amount_paid,
        ))
        .load(conn)?)
}

/// Stored invoice ids as ids; one that does not read is corrupt data.
fn parse_ids(ids: &[String]) -> Result<Vec<InvoiceId>, StoreError> {
    ids.iter()
        .map(|id| {
            id.parse()
                .map_err(|_| StoreError::Corrupt(format!("invoice id {id:?}")))
        })
        .collect()
}
