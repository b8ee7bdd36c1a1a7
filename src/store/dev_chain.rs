//! The dev chain's tables: transactions, coins (the UTXO set with spends) and blocks.

use diesel::prelude::*;

use super::schema::{dev_blocks, dev_coins, dev_txs};
use super::{Conn, StoreError};
use crate::chain::{OutPoint, Tx, Txid};

/// A coin as stored: `script` is the whole locking bytecode field, token prefix included.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = dev_coins)]
pub struct CoinRow {
    pub value: i64,
    pub script: Vec<u8>,
    pub height: Option<i64>,
    pub spent_by: Option<String>,
}

/// Each outpoint's coin, spent or not; `None` for coins that never existed.
pub fn coins(conn: &mut Conn, outpoints: &[OutPoint]) -> Result<Vec<Option<CoinRow>>, StoreError> {
    outpoints
        .iter()
        .map(|o| {
            Ok(dev_coins::table
                .filter(dev_coins::txid.eq(o.txid.to_hex()))
                .filter(dev_coins::vout.eq(o.vout as i32))
                .select(CoinRow::as_select())
                .first(conn)
                .optional()?)
        })
        .collect()
}

/// `(height, first_seen_ms)` of a transaction the chain knows; height `None` in the mempool.
pub fn tx(conn: &mut Conn, txid: Txid) -> Result<Option<(Option<i64>, i64)>, StoreError> {
    Ok(dev_txs::table
        .filter(dev_txs::txid.eq(txid.to_hex()))
        .select((dev_txs::height, dev_txs::first_seen_ms))
        .first(conn)
        .optional()?)
}

/// Height of the newest block (0 before any).
pub fn tip(conn: &mut Conn) -> Result<i64, StoreError> {
    let tip: Option<i64> = dev_blocks::table
        .select(diesel::dsl::max(dev_blocks::height))
        .first(conn)?;
    Ok(tip.unwrap_or(0))
}

/// Records `tx` in the mempool: marks its inputs spent (each only if still unspent) and adds
/// its outputs. A coin spent meanwhile is a conflict, and nothing is written.
pub fn accept(
    conn: &mut Conn,
    txid: Txid,
    raw: &[u8],
    tx: &Tx,
    now_ms: i64,
) -> Result<(), StoreError> {
    let id = txid.to_hex();
    for input in &tx.inputs {
        let spent = diesel::update(
            dev_coins::table
                .filter(dev_coins::txid.eq(input.prevout.txid.to_hex()))
                .filter(dev_coins::vout.eq(input.prevout.vout as i32))
                .filter(dev_coins::spent_by.is_null()),
        )
        .set(dev_coins::spent_by.eq(&id))
        .execute(conn)?;
        if spent != 1 {
            return Err(StoreError::Conflict(format!(
                "coin {}:{} is missing or already spent",
                input.prevout.txid, input.prevout.vout
            )));
        }
    }
    diesel::insert_into(dev_txs::table)
        .values((
            dev_txs::txid.eq(&id),
            dev_txs::raw.eq(raw),
            dev_txs::height.eq(None::<i64>),
            dev_txs::first_seen_ms.eq(now_ms),
        ))
        .execute(conn)?;
    add_coins(conn, &id, tx, None)
}

fn add_coins(conn: &mut Conn, txid: &str, tx: &Tx, height: Option<i64>) -> Result<(), StoreError> {
    for (vout, output) in tx.outputs.iter().enumerate() {
        diesel::insert_into(dev_coins::table)
            .values((
                dev_coins::txid.eq(txid),
                dev_coins::vout.eq(vout as i32),
                dev_coins::value
                    .eq(i64::try_from(output.value)
                        .map_err(|_| StoreError::Corrupt("value".into()))?),
                dev_coins::script.eq(output.script_field()),
                dev_coins::height.eq(height),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Mines `blocks` blocks; the first takes every mempool transaction. Returns the new tip.
pub fn mine(conn: &mut Conn, blocks: u32, now_ms: i64) -> Result<i64, StoreError> {
    let mut height = tip(conn)?;
    for n in 0..blocks {
        height += 1;
        if n == 0 {
            diesel::update(dev_txs::table.filter(dev_txs::height.is_null()))
                .set(dev_txs::height.eq(height))
                .execute(conn)?;
            diesel::update(dev_coins::table.filter(dev_coins::height.is_null()))
                .set(dev_coins::height.eq(height))
                .execute(conn)?;
        }
        insert_block(conn, height, now_ms)?;
    }
    Ok(height)
}

/// Mines a block holding only `tx`, a coin-creating transaction from the faucet. Returns its
/// height.
pub fn mine_faucet_tx(
    conn: &mut Conn,
    txid: Txid,
    raw: &[u8],
    tx: &Tx,
    now_ms: i64,
) -> Result<i64, StoreError> {
    let height = tip(conn)? + 1;
    let id = txid.to_hex();
    diesel::insert_into(dev_txs::table)
        .values((
            dev_txs::txid.eq(&id),
            dev_txs::raw.eq(raw),
            dev_txs::height.eq(Some(height)),
            dev_txs::first_seen_ms.eq(now_ms),
        ))
        .execute(conn)?;
    add_coins(conn, &id, tx, Some(height))?;
    insert_block(conn, height, now_ms)?;
    Ok(height)
}

fn insert_block(conn: &mut Conn, height: i64, now_ms: i64) -> Result<(), StoreError> {
    // Blocks carry no proof of work here; the hash only has to be unique.
    let hash = crate::chain::txid_of(&[height.to_le_bytes(), now_ms.to_le_bytes()].concat());
    diesel::insert_into(dev_blocks::table)
        .values((
            dev_blocks::height.eq(height),
            dev_blocks::hash.eq(hash.to_hex()),
            dev_blocks::time_ms.eq(now_ms),
        ))
        .execute(conn)?;
    Ok(())
}
