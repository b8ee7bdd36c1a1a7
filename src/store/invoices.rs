//! The `invoices` and `invoice_outputs` tables.

use diesel::prelude::*;

use super::schema::{invoice_outputs, invoices};
use super::{events, Conn, StoreError};
use crate::chain::{Address, Network, Nft, NftCapability, TokenData};
use crate::jpp::{Invoice, InvoiceId, InvoiceOutput, InvoiceStatus};

#[derive(Insertable)]
#[diesel(table_name = invoices)]
struct NewInvoiceRow<'a> {
    id: &'a str,
    status: &'a str,
    memo: Option<&'a str>,
    merchant_data: Option<String>,
    created_ms: i64,
    expires_ms: i64,
    fee_per_kb: i64,
    api_key_id: Option<i64>,
    updated_ms: i64,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = invoices)]
struct InvoiceRow {
    seq: i64,
    id: String,
    status: String,
    memo: Option<String>,
    merchant_data: Option<String>,
    created_ms: i64,
    expires_ms: i64,
    fee_per_kb: i64,
}

#[derive(Insertable, Queryable, Selectable)]
#[diesel(table_name = invoice_outputs)]
struct OutputRow {
    invoice_id: String,
    idx: i32,
    address: String,
    locking_bytecode: Vec<u8>,
    amount: i64,
    description: Option<String>,
    token_category: Option<Vec<u8>>,
    token_amount: Option<i64>,
    nft_capability: Option<String>,
    nft_commitment: Option<Vec<u8>>,
}

/// Which invoices a merchant lists; `after` is the cursor of the previous page.
#[derive(Debug, Clone, Copy)]
pub struct ListFilter {
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
    let id = invoice.id.to_string();
    diesel::insert_into(invoices::table)
        .values(NewInvoiceRow {
            id: &id,
            status: invoice.status.as_str(),
            memo: invoice.memo.as_deref(),
            merchant_data: invoice.merchant_data.as_ref().map(|v| v.to_string()),
            created_ms: invoice.created_ms,
            expires_ms: invoice.expires_ms,
            fee_per_kb: to_i64(invoice.fee_per_kb)?,
            api_key_id,
            updated_ms: invoice.created_ms,
        })
        .execute(conn)?;
    let rows = invoice
        .outputs
        .iter()
        .enumerate()
        .map(|(idx, o)| output_row(&id, idx, o))
        .collect::<Result<Vec<_>, _>>()?;
    for row in &rows {
        diesel::insert_into(invoice_outputs::table)
            .values(row)
            .execute(conn)?;
    }
    Ok(())
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
    let outputs = invoice_outputs::table
        .filter(invoice_outputs::invoice_id.eq(&row.id))
        .order(invoice_outputs::idx)
        .select(OutputRow::as_select())
        .load(conn)?;
    to_invoice(row, outputs).map(Some)
}

pub fn list(conn: &mut Conn, filter: &ListFilter, now_ms: i64) -> Result<InvoicePage, StoreError> {
    let mut query = invoices::table.select(InvoiceRow::as_select()).into_boxed();
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
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let mut outputs: Vec<OutputRow> = invoice_outputs::table
        .filter(invoice_outputs::invoice_id.eq_any(&ids))
        .select(OutputRow::as_select())
        .load(conn)?;
    outputs.sort_by(|a, b| (&a.invoice_id, a.idx).cmp(&(&b.invoice_id, b.idx)));
    let invoices = rows
        .into_iter()
        .map(|row| {
            let mine = outputs
                .iter()
                .position(|o| o.invoice_id == row.id)
                .map(|start| {
                    let end = outputs[start..]
                        .iter()
                        .position(|o| o.invoice_id != row.id)
                        .map_or(outputs.len(), |n| start + n);
                    outputs.drain(start..end).collect()
                })
                .unwrap_or_default();
            to_invoice(row, mine)
        })
        .collect::<Result<_, _>>()?;
    Ok(InvoicePage {
        invoices,
        next_cursor,
    })
}

/// Moves an invoice from `from` to `to` with one conditional UPDATE (an open invoice must also
/// still be inside its time, unless it is being expired) and writes the event in the same
/// transaction. Returns the invoice as it is afterwards, or `None` when it does not exist.
pub fn transition(
    conn: &mut Conn,
    id: InvoiceId,
    to: InvoiceStatus,
    now_ms: i64,
    event: &dyn Fn(&Invoice) -> events::NewEvent,
) -> Result<Option<(Invoice, bool)>, StoreError> {
    let target = invoices::table
        .filter(invoices::id.eq(id.to_string()))
        .filter(invoices::status.eq(InvoiceStatus::Open.as_str()));
    let changed = if to == InvoiceStatus::Expired {
        diesel::update(target.filter(invoices::expires_ms.le(now_ms)))
            .set((
                invoices::status.eq(to.as_str()),
                invoices::updated_ms.eq(now_ms),
            ))
            .execute(conn)?
    } else {
        diesel::update(target.filter(invoices::expires_ms.gt(now_ms)))
            .set((
                invoices::status.eq(to.as_str()),
                invoices::updated_ms.eq(now_ms),
            ))
            .execute(conn)?
    };
    let Some(invoice) = get(conn, id)? else {
        return Ok(None);
    };
    if changed == 1 {
        events::insert(conn, &event(&invoice), now_ms)?;
    }
    Ok(Some((invoice, changed == 1)))
}

fn output_row(invoice_id: &str, idx: usize, o: &InvoiceOutput) -> Result<OutputRow, StoreError> {
    Ok(OutputRow {
        invoice_id: invoice_id.to_owned(),
        idx: idx as i32,
        address: o.address_string(),
        locking_bytecode: o.locking_bytecode(),
        amount: to_i64(o.amount)?,
        description: o.description.clone(),
        token_category: o.token.as_ref().map(|t| t.category.to_vec()),
        token_amount: o.token.as_ref().map(|t| to_i64(t.amount)).transpose()?,
        nft_capability: o
            .token
            .as_ref()
            .and_then(|t| t.nft.as_ref())
            .map(|n| n.capability.as_str().to_owned()),
        nft_commitment: o
            .token
            .as_ref()
            .and_then(|t| t.nft.as_ref())
            .map(|n| n.commitment.clone()),
    })
}

fn to_invoice(row: InvoiceRow, outputs: Vec<OutputRow>) -> Result<Invoice, StoreError> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("invoice {}: {what}", row.id));
    let outputs = outputs
        .into_iter()
        .map(|o| {
            let network = Network::ALL
                .into_iter()
                .find(|n| o.address.starts_with(n.cashaddr_prefix()))
                .ok_or_else(|| corrupt("output address has no known prefix"))?;
            let address =
                Address::parse(&o.address, network).map_err(|e| corrupt(&e.to_string()))?;
            let token = match o.token_category {
                None => None,
                Some(category) => {
                    let category: [u8; 32] = category
                        .try_into()
                        .map_err(|_| corrupt("token category is not 32 bytes"))?;
                    let nft = match (o.nft_capability, o.nft_commitment) {
                        (Some(cap), commitment) => Some(Nft {
                            capability: NftCapability::parse(&cap)
                                .ok_or_else(|| corrupt("unknown NFT capability"))?,
                            commitment: commitment.unwrap_or_default(),
                        }),
                        (None, _) => None,
                    };
                    let amount = u64::try_from(o.token_amount.unwrap_or(0))
                        .map_err(|_| corrupt("negative token amount"))?;
                    Some(
                        TokenData::new(category, amount, nft)
                            .map_err(|e| corrupt(&e.to_string()))?,
                    )
                }
            };
            Ok(InvoiceOutput {
                address,
                amount: u64::try_from(o.amount).map_err(|_| corrupt("negative amount"))?,
                description: o.description,
                token,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
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
    })
}

fn to_i64(v: u64) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::Corrupt(format!("{v} does not fit a BIGINT")))
}
