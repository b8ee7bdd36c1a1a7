//! The `wallets` and `ln_payments` tables: Lightning wallets and every payment in or out of
//! them.
//!
//! A wallet's balance is what its payment rows add up to (settled rows, and outgoing ones still
//! pending), and the rows stay the truth. So that a payment costs the same after a million rows
//! as after ten, the total is also kept on the wallet's row (`wallets.balance_msat`): every
//! function here that writes a payment row moves it in the same statement sequence, so no
//! caller can change a counted row and forget the total. `recompute_balance_msat` and
//! `check_balances` sum the rows to compare; `repair_balances` sets the totals from them.
//!
//! Lock order (PostgreSQL): a transaction that locks wallet rows takes them before any payment
//! row, in the order of their ids; so two wallets paying each other at once cannot deadlock.

use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::schema::{ln_payments, wallets};
use super::{Conn, StoreError};
use crate::lightning::{BalanceCheck, LnPayment, PayStatus, Wallet};

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

/// Every wallet with its balance (msat), oldest first.
pub fn list_wallets(conn: &mut Conn) -> Result<Vec<(Wallet, i64)>, StoreError> {
    Ok(wallets::table
        .order(wallets::created_ms)
        .select((WalletRow::as_select(), wallets::balance_msat))
        .load::<(WalletRow, i64)>(conn)?
        .into_iter()
        .map(|(w, balance)| (w.into(), balance))
        .collect())
}

/// Takes the wallet's row lock for the rest of the transaction (PostgreSQL; SQLite has one
/// writer) and reads its balance, which then cannot change until this transaction writes it:
/// every change to the total is an UPDATE of this row. `None` if there is no such wallet.
pub fn lock_wallet(conn: &mut Conn, id: &str) -> Result<Option<i64>, StoreError> {
    Ok(diesel::update(wallets::table.find(id))
        .set(wallets::balance_msat.eq(wallets::balance_msat))
        .returning(wallets::balance_msat)
        .get_result(conn)
        .optional()?)
}

/// The wallet's balance in msat, as kept on its row; `None` if there is no such wallet.
pub fn balance_msat(conn: &mut Conn, wallet_id: &str) -> Result<Option<i64>, StoreError> {
    Ok(wallets::table
        .find(wallet_id)
        .select(wallets::balance_msat)
        .first(conn)
        .optional()?)
}

/// The rows a balance counts: settled ones, and outgoing ones still pending (their sats are
/// spoken for). [`counted`] says the same of one row; the two must agree.
const COUNTED_SQL: &str = "(p.status = 'success' OR (p.status = 'pending' AND p.amount_msat < 0))";

/// What one payment row adds to its wallet's balance, in msat.
fn counted(status: PayStatus, amount_msat: i64, fee_msat: i64) -> Result<i64, StoreError> {
    let counts = match status {
        PayStatus::Success => true,
        PayStatus::Pending => amount_msat < 0,
        PayStatus::Failed => false,
    };
    if !counts {
        return Ok(0);
    }
    amount_msat.checked_add(fee_msat).ok_or_else(|| {
        StoreError::OutOfRange(format!(
            "A payment of {amount_msat} msat with a fee of {fee_msat} msat is out of range."
        ))
    })
}

/// Moves the wallet's balance by `delta_msat`. A balance never goes below zero nor past
/// `i64::MAX`: such a move writes nothing and is an error, which rolls the caller's whole write
/// back (the payment row with it). The callers check the balance first, under the wallet's lock;
/// this condition is what holds should one of them ever be wrong.
fn move_balance(conn: &mut Conn, wallet_id: &str, delta_msat: i64) -> Result<(), StoreError> {
    if delta_msat == 0 {
        // Nothing to move: no write, and no lock taken.
        return Ok(());
    }
    let target = wallets::table.find(wallet_id);
    let n = if delta_msat > 0 {
        diesel::update(target.filter(wallets::balance_msat.le(i64::MAX - delta_msat)))
            .set(wallets::balance_msat.eq(wallets::balance_msat + delta_msat))
            .execute(conn)?
    } else {
        // delta_msat is negative: -delta_msat overflows only for i64::MIN, which no balance
        // covers.
        let Some(needed) = delta_msat.checked_neg() else {
            return Err(out_of_range(delta_msat));
        };
        diesel::update(target.filter(wallets::balance_msat.ge(needed)))
            .set(wallets::balance_msat.eq(wallets::balance_msat + delta_msat))
            .execute(conn)?
    };
    if n == 1 {
        Ok(())
    } else {
        Err(out_of_range(delta_msat))
    }
}

/// The refusal's words reach whoever asked for the payment, so they never name the wallet (an
/// internal payment's payer must not learn the payee's wallet id: it opens sockets).
fn out_of_range(delta_msat: i64) -> StoreError {
    StoreError::OutOfRange(format!(
        "A wallet's balance cannot move by {delta_msat} msat: it would go below zero or past {} msat.",
        i64::MAX
    ))
}

/// The wallet's balance summed from its payment rows: the truth its kept balance must equal.
pub fn recompute_balance_msat(conn: &mut Conn, wallet_id: &str) -> Result<i64, StoreError> {
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

#[derive(QueryableByName)]
struct CheckRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    running: i64,
    #[diesel(sql_type = BigInt)]
    summed: i64,
}

/// Every wallet's (or one wallet's) kept balance beside the sum of its payment rows, by id.
/// One statement, so both figures come from one snapshot even while payments go on.
pub fn check_balances(
    conn: &mut Conn,
    only: Option<&str>,
) -> Result<Vec<BalanceCheck>, StoreError> {
    let (sqlite, postgres) = match only {
        Some(_) => ("WHERE w.id = ?", "WHERE w.id = $1"),
        None => ("", ""),
    };
    let query = |filter: &str| {
        format!(
            "SELECT w.id, w.name, w.balance_msat AS running, \
             (SELECT CAST(COALESCE(SUM(p.amount_msat + p.fee_msat), 0) AS BIGINT) \
              FROM ln_payments AS p WHERE p.wallet_id = w.id AND {COUNTED_SQL}) AS summed \
             FROM wallets AS w {filter} ORDER BY w.id"
        )
    };
    let rows: Vec<CheckRow> = match (conn, only) {
        (Conn::Sqlite(c), Some(id)) => diesel::sql_query(query(sqlite))
            .bind::<Text, _>(id)
            .load(c)?,
        (Conn::Postgres(c), Some(id)) => diesel::sql_query(query(postgres))
            .bind::<Text, _>(id)
            .load(c)?,
        (Conn::Sqlite(c), None) => diesel::sql_query(query("")).load(c)?,
        (Conn::Postgres(c), None) => diesel::sql_query(query("")).load(c)?,
    };
    Ok(rows
        .into_iter()
        .map(|r| BalanceCheck {
            wallet_id: r.id,
            name: r.name,
            running_msat: r.running,
            summed_msat: r.summed,
        })
        .collect())
}

/// Sets every wallet's (or one wallet's) kept balance to the sum of its payment rows, inside
/// the caller's write transaction; answers what each was before. Each wallet's lock is taken
/// before its rows are summed: every write that changes a counted row moves the wallet's row in
/// the same transaction, so a change not yet committed is either in the sum (it committed
/// before the lock was granted) or adds itself to the repaired total afterwards (it waits for
/// the lock). Locks are taken in the order of the ids, as everywhere.
pub fn repair_balances(
    conn: &mut Conn,
    only: Option<&str>,
) -> Result<Vec<BalanceCheck>, StoreError> {
    let all = wallets::table
        .select((wallets::id, wallets::name))
        .order(wallets::id);
    let found: Vec<(String, String)> = match only {
        Some(id) => all.filter(wallets::id.eq(id)).load(conn)?,
        None => all.load(conn)?,
    };
    let mut checked = Vec::with_capacity(found.len());
    for (id, name) in found {
        let Some(running) = lock_wallet(conn, &id)? else {
            continue;
        };
        let summed = recompute_balance_msat(conn, &id)?;
        if summed != running {
            diesel::update(wallets::table.find(&id))
                .set(wallets::balance_msat.eq(summed))
                .execute(conn)?;
        }
        checked.push(BalanceCheck {
            wallet_id: id,
            name,
            running_msat: running,
            summed_msat: summed,
        });
    }
    Ok(checked)
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

/// Records a payment and moves its wallet's balance by what the row counts for (a settled
/// payment, an outgoing one still pending). A debit the balance does not cover is refused
/// ([`StoreError::OutOfRange`]) and the row with it: the caller checked first, under the lock.
pub fn insert_payment(conn: &mut Conn, p: &LnPayment) -> Result<(), StoreError> {
    let delta = counted(p.status, p.amount_msat, p.fee_msat)?;
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
    move_balance(conn, &p.wallet_id, delta)
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

/// The wallet a payment belongs to, for the caller to lock before it changes the payment (the
/// lock order: wallets, then payments).
pub fn wallet_of_payment(conn: &mut Conn, checking_id: &str) -> Result<Option<String>, StoreError> {
    Ok(ln_payments::table
        .find(checking_id)
        .select(ln_payments::wallet_id)
        .first(conn)
        .optional()?)
}

/// Moves a pending payment to `to` if it is still pending, and its wallet's balance by the
/// difference that makes; false (nothing written) if it was not pending. The condition makes
/// the move happen once under any concurrency, and the balance with it.
fn leave_pending(
    conn: &mut Conn,
    checking_id: &str,
    to: PayStatus,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let moved: Option<(String, i64, i64)> = diesel::update(
        ln_payments::table
            .filter(ln_payments::checking_id.eq(checking_id))
            .filter(ln_payments::status.eq(PayStatus::Pending.as_str())),
    )
    .set((
        ln_payments::status.eq(to.as_str()),
        ln_payments::updated_ms.eq(now_ms),
    ))
    .returning((
        ln_payments::wallet_id,
        ln_payments::amount_msat,
        ln_payments::fee_msat,
    ))
    .get_result(conn)
    .optional()?;
    let Some((wallet_id, amount, fee)) = moved else {
        return Ok(false);
    };
    let delta = counted(to, amount, fee)? - counted(PayStatus::Pending, amount, fee)?;
    move_balance(conn, &wallet_id, delta)?;
    Ok(true)
}

/// Moves a pending payment to `success` (with its preimage); false if it was not pending. An
/// incoming payment's amount joins its wallet's balance; an outgoing one was counted already.
pub fn settle(
    conn: &mut Conn,
    checking_id: &str,
    preimage: Option<&str>,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let moved = leave_pending(conn, checking_id, PayStatus::Success, now_ms)?;
    if moved {
        if let Some(preimage) = preimage {
            diesel::update(ln_payments::table.find(checking_id))
                .set(ln_payments::preimage.eq(preimage))
                .execute(conn)?;
        }
    }
    Ok(moved)
}

/// Moves a pending payment to `failed`; false if it was not pending. An outgoing payment's
/// debit goes back to its wallet's balance; an incoming one was never counted.
pub fn fail(conn: &mut Conn, checking_id: &str, now_ms: i64) -> Result<bool, StoreError> {
    leave_pending(conn, checking_id, PayStatus::Failed, now_ms)
}

/// Deletes a failed payment, so that the same invoice can be tried again under its id. A
/// failed row counts for nothing, so no balance moves.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_balance_counts_settled_rows_and_outgoing_ones_still_pending() {
        let c = |status, amount, fee| counted(status, amount, fee).unwrap();
        assert_eq!(c(PayStatus::Success, 5_000, 0), 5_000);
        assert_eq!(c(PayStatus::Success, -5_000, -1), -5_001);
        assert_eq!(c(PayStatus::Pending, -5_000, 0), -5_000);
        assert_eq!(
            c(PayStatus::Pending, 5_000, 0),
            0,
            "an open invoice is not money yet"
        );
        assert_eq!(c(PayStatus::Failed, -5_000, 0), 0);
        assert_eq!(c(PayStatus::Failed, 5_000, 0), 0);
        assert!(matches!(
            counted(PayStatus::Success, i64::MAX, 1),
            Err(StoreError::OutOfRange(_))
        ));
        // The SQL the sums use names the same states.
        for status in [PayStatus::Success, PayStatus::Pending] {
            assert!(COUNTED_SQL.contains(&format!("'{}'", status.as_str())));
        }
    }
}
