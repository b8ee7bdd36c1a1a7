//! The `wallets` and `ln_payments` tables: Lightning wallets and every payment in or out of
//! them. Balances are sums over payments, read inside the transaction that changes them.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::BigInt;

use super::schema::{ln_payments, wallets};
use super::{Conn, StoreError};
use crate::lightning::{LnPayment, PayStatus, Wallet};

#[derive(Queryable, Selectable)]
#[diesel(table_name = wallets)]
struct WalletRow {
    id: String,
    name: String,
    created_ms: i64,
}

impl From<WalletRow> for Wallet {
    fn from(r: WalletRow) -> Wallet {
        Wallet {
            id: r.id,
            name: r.name,
            created_ms: r.created_ms,
        }
    }
}

pub fn insert_wallet(
    conn: &mut Conn,
    wallet: &Wallet,
    inkey_hash: &[u8],
    adminkey_hash: &[u8],
) -> Result<(), StoreError> {
    diesel::insert_into(wallets::table)
        .values((
            wallets::id.eq(&wallet.id),
            wallets::name.eq(&wallet.name),
            wallets::inkey_hash.eq(inkey_hash),
            wallets::adminkey_hash.eq(adminkey_hash),
            wallets::created_ms.eq(wallet.created_ms),
        ))
        .execute(conn)?;
    Ok(())
}

/// The wallet a key opens, and whether it is the admin key.
pub fn wallet_by_key(
    conn: &mut Conn,
    key_hash: &[u8],
) -> Result<Option<(Wallet, bool)>, StoreError> {
    let found: Option<(WalletRow, Vec<u8>)> = wallets::table
        .filter(
            wallets::inkey_hash
                .eq(key_hash)
                .or(wallets::adminkey_hash.eq(key_hash)),
        )
        .select((WalletRow::as_select(), wallets::adminkey_hash))
        .first(conn)
        .optional()?;
    Ok(found.map(|(row, admin)| (row.into(), admin == key_hash)))
}

pub fn wallet_by_id(conn: &mut Conn, id: &str) -> Result<Option<Wallet>, StoreError> {
    Ok(wallets::table
        .find(id)
        .select(WalletRow::as_select())
        .first(conn)
        .optional()?
        .map(Wallet::from))
}

pub fn list_wallets(conn: &mut Conn) -> Result<Vec<Wallet>, StoreError> {
    Ok(wallets::table
        .order(wallets::created_ms)
        .select(WalletRow::as_select())
        .load(conn)?
        .into_iter()
        .map(Wallet::from)
        .collect())
}

/// Takes the wallet's row lock for the rest of the transaction (PostgreSQL; SQLite has one
/// writer), so that the balance read next cannot change before the debit is written.
pub fn lock_wallet(conn: &mut Conn, id: &str) -> Result<bool, StoreError> {
    let n = diesel::update(wallets::table.find(id))
        .set(wallets::name.eq(wallets::name))
        .execute(conn)?;
    Ok(n == 1)
}

/// Settled payments plus outgoing ones still pending (their sats are spoken for), in msat.
pub fn balance_msat(conn: &mut Conn, wallet_id: &str) -> Result<i64, StoreError> {
    Ok(ln_payments::table
        .filter(ln_payments::wallet_id.eq(wallet_id))
        .filter(
            ln_payments::status
                .eq(PayStatus::Success.as_str())
                .or(ln_payments::status
                    .eq(PayStatus::Pending.as_str())
                    .and(ln_payments::amount_msat.lt(0))),
        )
        .select(sql::<BigInt>(
            "CAST(COALESCE(SUM(amount_msat + fee_msat), 0) AS BIGINT)",
        ))
        .first(conn)?)
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = ln_payments)]
struct PaymentRow {
    checking_id: String,
    payment_hash: String,
    wallet_id: String,
    amount_msat: i64,
    fee_msat: i64,
    bolt11: String,
    memo: Option<String>,
    status: String,
    preimage: Option<String>,
    expiry_ms: Option<i64>,
    extra: String,
    webhook: Option<String>,
    created_ms: i64,
    updated_ms: i64,
    webhook_status: Option<String>,
}

impl TryFrom<PaymentRow> for LnPayment {
    type Error = StoreError;
    fn try_from(r: PaymentRow) -> Result<LnPayment, StoreError> {
        Ok(LnPayment {
            status: PayStatus::parse(&r.status)
                .ok_or_else(|| StoreError::Corrupt(format!("payment status {:?}", r.status)))?,
            extra: serde_json::from_str(&r.extra)
                .map_err(|e| StoreError::Corrupt(format!("payment extra: {e}")))?,
            checking_id: r.checking_id,
            payment_hash: r.payment_hash,
            wallet_id: r.wallet_id,
            amount_msat: r.amount_msat,
            fee_msat: r.fee_msat,
            bolt11: r.bolt11,
            memo: r.memo,
            preimage: r.preimage,
            expiry_ms: r.expiry_ms,
            webhook: r.webhook,
            webhook_status: r.webhook_status,
            created_ms: r.created_ms,
            updated_ms: r.updated_ms,
        })
    }
}

pub fn insert_payment(conn: &mut Conn, p: &LnPayment) -> Result<(), StoreError> {
    diesel::insert_into(ln_payments::table)
        .values((
            ln_payments::checking_id.eq(&p.checking_id),
            ln_payments::payment_hash.eq(&p.payment_hash),
            ln_payments::wallet_id.eq(&p.wallet_id),
            ln_payments::amount_msat.eq(p.amount_msat),
            ln_payments::fee_msat.eq(p.fee_msat),
            ln_payments::bolt11.eq(&p.bolt11),
            ln_payments::memo.eq(&p.memo),
            ln_payments::status.eq(p.status.as_str()),
            ln_payments::preimage.eq(&p.preimage),
            ln_payments::expiry_ms.eq(p.expiry_ms),
            ln_payments::extra.eq(p.extra.to_string()),
            ln_payments::webhook.eq(&p.webhook),
            ln_payments::created_ms.eq(p.created_ms),
            ln_payments::updated_ms.eq(p.updated_ms),
        ))
        .execute(conn)?;
    Ok(())
}

/// A payment of `wallet_id` named by its checking id or its payment hash (the oldest, when
/// both name one of its payments: an invoice the wallet paid itself).
///
/// Looked up by the id alone, and then kept if it is the wallet's: with the wallet in the
/// query, SQLite reads the wallet's whole history through its index instead of the two id
/// indexes (500 ms for the newest payment of a wallet with 500k). An id names a handful of
/// rows at most: the incoming payment and the wallets' attempts to pay it.
pub fn payment_of_wallet(
    conn: &mut Conn,
    wallet_id: &str,
    id: &str,
) -> Result<Option<LnPayment>, StoreError> {
    let mut named: Vec<PaymentRow> = ln_payments::table
        .filter(
            ln_payments::checking_id
                .eq(id)
                .or(ln_payments::payment_hash.eq(id)),
        )
        .select(PaymentRow::as_select())
        .load(conn)?;
    named.retain(|p| p.wallet_id == wallet_id);
    named
        .into_iter()
        .min_by(|a, b| (a.created_ms, &a.checking_id).cmp(&(b.created_ms, &b.checking_id)))
        .map(LnPayment::try_from)
        .transpose()
}

/// Any payment named by its checking id or hash, the incoming side first.
pub fn payment_any(conn: &mut Conn, id: &str) -> Result<Option<LnPayment>, StoreError> {
    ln_payments::table
        .filter(
            ln_payments::checking_id
                .eq(id)
                .or(ln_payments::payment_hash.eq(id)),
        )
        .order(ln_payments::amount_msat.desc())
        .select(PaymentRow::as_select())
        .first(conn)
        .optional()?
        .map(LnPayment::try_from)
        .transpose()
}

/// The incoming payment a wallet here issued with this hash (an internal invoice), if any.
pub fn incoming_by_hash(conn: &mut Conn, hash: &str) -> Result<Option<LnPayment>, StoreError> {
    ln_payments::table
        .filter(ln_payments::payment_hash.eq(hash))
        .filter(ln_payments::amount_msat.gt(0))
        .select(PaymentRow::as_select())
        .first(conn)
        .optional()?
        .map(LnPayment::try_from)
        .transpose()
}

/// A wallet's payments, newest first.
pub fn list_payments(
    conn: &mut Conn,
    wallet_id: &str,
    limit: i64,
    offset: i64,
) -> Result<Vec<LnPayment>, StoreError> {
    ln_payments::table
        .filter(ln_payments::wallet_id.eq(wallet_id))
        .order((
            ln_payments::created_ms.desc(),
            ln_payments::checking_id.desc(),
        ))
        .limit(limit)
        .offset(offset)
        .select(PaymentRow::as_select())
        .load(conn)?
        .into_iter()
        .map(LnPayment::try_from)
        .collect()
}

/// Moves a pending payment to `success` (with its preimage); false if it was not pending.
pub fn settle(
    conn: &mut Conn,
    checking_id: &str,
    preimage: Option<&str>,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let n = diesel::update(
        ln_payments::table
            .filter(ln_payments::checking_id.eq(checking_id))
            .filter(ln_payments::status.eq(PayStatus::Pending.as_str())),
    )
    .set((
        ln_payments::status.eq(PayStatus::Success.as_str()),
        ln_payments::updated_ms.eq(now_ms),
    ))
    .execute(conn)?;
    if n == 1 {
        if let Some(preimage) = preimage {
            diesel::update(ln_payments::table.find(checking_id))
                .set(ln_payments::preimage.eq(preimage))
                .execute(conn)?;
        }
    }
    Ok(n == 1)
}

/// Moves a pending payment to `failed` (its debit is released); false if it was not pending.
pub fn fail(conn: &mut Conn, checking_id: &str, now_ms: i64) -> Result<bool, StoreError> {
    let n = diesel::update(
        ln_payments::table
            .filter(ln_payments::checking_id.eq(checking_id))
            .filter(ln_payments::status.eq(PayStatus::Pending.as_str())),
    )
    .set((
        ln_payments::status.eq(PayStatus::Failed.as_str()),
        ln_payments::updated_ms.eq(now_ms),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Deletes a failed payment, so that the same invoice can be tried again under its id.
pub fn delete_failed(conn: &mut Conn, checking_id: &str) -> Result<(), StoreError> {
    diesel::delete(
        ln_payments::table
            .filter(ln_payments::checking_id.eq(checking_id))
            .filter(ln_payments::status.eq(PayStatus::Failed.as_str())),
    )
    .execute(conn)?;
    Ok(())
}

/// Records what a payment's `webhook` answered (LNbits' `webhook_status`).
pub fn set_webhook_status(
    conn: &mut Conn,
    payment_hash: &str,
    status: &str,
) -> Result<(), StoreError> {
    diesel::update(ln_payments::table.filter(ln_payments::payment_hash.eq(payment_hash)))
        .set(ln_payments::webhook_status.eq(status))
        .execute(conn)?;
    Ok(())
}
