//! The dev chain's tables: transactions, coins (the UTXO set with spends) and blocks.

use diesel::prelude::*;

use super::schema::{dev_blocks, dev_coins, dev_dsproofs, dev_txs};
use super::{Conn, StoreError};
use crate::chain::{OutPoint, Tx, Txid};

/// A coin as stored: `script` is the whole locking bytecode field, token prefix included.
#[derive(Debug, Clone, Queryable, Selectable, QueryableByName)]
#[diesel(table_name = dev_coins)]
pub struct CoinRow {
    pub value: i64,
    pub script: Vec<u8>,
    pub height: Option<i64>,
    pub spent_by: Option<String>,
}

/// Above this many outpoints, [`coins_until_missing`] looks the first one up on its own before
/// the rest. Below it the whole lookup is one small query anyway, and an honest payment (a few
/// inputs) keeps one round trip to the database.
const PROBE_ABOVE: usize = 16;

/// Each outpoint's coin, spent or not, in the order asked; `None` for coins that never existed.
/// One query however many outpoints: a 100 kB transaction can have about 2,400 inputs, and a
/// query for each (20 to 30 µs apiece here, about 50 ms in all on SQLite) was work anyone
/// could make the server do.
pub fn coins(conn: &mut Conn, outpoints: &[OutPoint]) -> Result<Vec<Option<CoinRow>>, StoreError> {
    match outpoints {
        [] => Ok(Vec::new()),
        // Most payments spend one coin: the plain query, no list to build.
        [one] => Ok(vec![coin(conn, one)?]),
        _ => batch(conn, outpoints),
    }
}

/// As [`coins`], but the list ends at the first outpoint whose coin does not exist (that
/// `None` included): a transaction is refused at its first missing input, so looking up the
/// rest would be work done for nobody. The first coin is looked up alone first (for more than
/// a handful of inputs), so a transaction of made-up inputs costs one indexed lookup.
pub fn coins_until_missing(
    conn: &mut Conn,
    outpoints: &[OutPoint],
) -> Result<Vec<Option<CoinRow>>, StoreError> {
    let mut rows = match outpoints.split_first() {
        Some((first, rest)) if outpoints.len() > PROBE_ABOVE => {
            let Some(row) = coin(conn, first)? else {
                return Ok(vec![None]);
            };
            let mut rows = Vec::with_capacity(outpoints.len());
            rows.push(Some(row));
            rows.extend(batch(conn, rest)?);
            rows
        }
        _ => coins(conn, outpoints)?,
    };
    if let Some(missing) = rows.iter().position(Option::is_none) {
        rows.truncate(missing + 1);
    }
    Ok(rows)
}

/// `vout` as stored. Stored coins have small non-negative output indexes, so one that does not
/// fit becomes -1, which matches none.
fn stored_vout(vout: u32) -> i32 {
    i32::try_from(vout).unwrap_or(-1)
}

fn coin(conn: &mut Conn, outpoint: &OutPoint) -> Result<Option<CoinRow>, StoreError> {
    Ok(dev_coins::table
        .filter(dev_coins::txid.eq(outpoint.txid.to_hex()))
        .filter(dev_coins::vout.eq(stored_vout(outpoint.vout)))
        .select(CoinRow::as_select())
        .first(conn)
        .optional()?)
}

/// A coin found by [`batch`], with its position in the list asked.
#[derive(QueryableByName)]
struct Found {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
    #[diesel(embed)]
    coin: CoinRow,
}

/// Every outpoint in one query: the list travels as a single bound value (for SQLite a JSON
/// array of `<txid><vout>` strings, for PostgreSQL two arrays) joined against the primary key,
/// so each outpoint is one index lookup and there is no bound-variable limit to split around.
/// Matching `txid IN (…) AND vout IN (…)` instead would have both databases probe every txid
/// with every vout, and `txid IN (…)` alone reads every output of those transactions. (Plain
/// strings cut with `substr` cost SQLite about half what `[txid, vout]` pairs read with `->>`
/// do.)
fn batch(conn: &mut Conn, outpoints: &[OutPoint]) -> Result<Vec<Option<CoinRow>>, StoreError> {
    use diesel::sql_types::{Array, Integer, Text};
    use std::fmt::Write;
    let found: Vec<Found> = match conn {
        Conn::Sqlite(c) => {
            let mut list = String::with_capacity(outpoints.len() * 78 + 2);
            list.push('[');
            for (i, o) in outpoints.iter().enumerate() {
                if i > 0 {
                    list.push(',');
                }
                // 64 hex digits, then the vout: nothing here needs JSON escaping. Writing to a
                // String cannot fail.
                let _ = write!(list, "\"{}{}\"", o.txid, stored_vout(o.vout));
            }
            list.push(']');
            diesel::sql_query(
                "SELECT w.key AS n, c.value, c.script, c.height, c.spent_by \
                 FROM json_each(?) AS w \
                 JOIN dev_coins AS c \
                 ON c.txid = substr(w.value, 1, 64) AND c.vout = CAST(substr(w.value, 65) AS INTEGER)",
            )
            .bind::<Text, _>(list)
            .load(c)?
        }
        Conn::Postgres(c) => {
            let txids: Vec<String> = outpoints.iter().map(|o| o.txid.to_hex()).collect();
            let vouts: Vec<i32> = outpoints.iter().map(|o| stored_vout(o.vout)).collect();
            diesel::sql_query(
                "SELECT w.n - 1 AS n, c.value, c.script, c.height, c.spent_by \
                 FROM unnest($1::text[], $2::int4[]) WITH ORDINALITY AS w (txid, vout, n) \
                 JOIN dev_coins AS c ON c.txid = w.txid AND c.vout = w.vout",
            )
            .bind::<Array<Text>, _>(txids)
            .bind::<Array<Integer>, _>(vouts)
            .load(c)?
        }
    };
    let mut rows = vec![None; outpoints.len()];
    for f in found {
        let slot = usize::try_from(f.n)
            .ok()
            .and_then(|n| rows.get_mut(n))
            .ok_or_else(|| StoreError::Corrupt(format!("coin lookup answered position {}", f.n)))?;
        *slot = Some(f.coin);
    }
    Ok(rows)
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
                .filter(dev_coins::vout.eq(stored_vout(input.prevout.vout)))
                .filter(dev_coins::spent_by.is_null()),
        )
        .set(dev_coins::spent_by.eq(&id))
        .execute(conn)?;
        if spent != 1 && spender(conn, &input.prevout)?.as_deref() == Some(id.as_str()) {
            // This very transaction was accepted by a broadcast racing this one.
            return Err(StoreError::Duplicate(format!("transaction {txid}")));
        }
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

/// The transaction that spent a coin, if any.
fn spender(conn: &mut Conn, outpoint: &OutPoint) -> Result<Option<String>, StoreError> {
    Ok(dev_coins::table
        .filter(dev_coins::txid.eq(outpoint.txid.to_hex()))
        .filter(dev_coins::vout.eq(stored_vout(outpoint.vout)))
        .select(dev_coins::spent_by)
        .first::<Option<String>>(conn)
        .optional()?
        .flatten())
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
    mine_with_mempool_in(conn, blocks, 0, now_ms)
}

/// Mines `blocks` blocks, the mempool going into the one at `mempool_at` (0 the first).
fn mine_with_mempool_in(
    conn: &mut Conn,
    blocks: u32,
    mempool_at: u32,
    now_ms: i64,
) -> Result<i64, StoreError> {
    let mut height = tip(conn)?;
    for n in 0..blocks {
        height += 1;
        if n == mempool_at {
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

/// A reorg rehearsal: the newest `depth` blocks are replaced by `depth + 1` new ones (a longer
/// chain wins), their transactions going back to the mempool and into the last new block. Each
/// of `drop` leaves the chain with its descendants (as if evicted); `add` (a transaction that
/// spends what a dropped one spent) enters in its place. Returns the new tip.
pub fn reorg(
    conn: &mut Conn,
    depth: u32,
    drop: &[Txid],
    add: Option<(Txid, &[u8], &Tx)>,
    now_ms: i64,
) -> Result<i64, StoreError> {
    let top = tip(conn)?;
    let fork = (top - i64::from(depth)).max(0);
    diesel::update(dev_txs::table.filter(dev_txs::height.gt(fork)))
        .set(dev_txs::height.eq(None::<i64>))
        .execute(conn)?;
    diesel::update(dev_coins::table.filter(dev_coins::height.gt(fork)))
        .set(dev_coins::height.eq(None::<i64>))
        .execute(conn)?;
    diesel::delete(dev_blocks::table.filter(dev_blocks::height.gt(fork))).execute(conn)?;
    for txid in drop {
        remove_tx(conn, &txid.to_hex())?;
    }
    if let Some((txid, raw, tx)) = add {
        accept(conn, txid, raw, tx, now_ms)?;
    }
    let new_blocks = depth + 1;
    mine_with_mempool_in(conn, new_blocks, new_blocks - 1, now_ms)
}

/// Takes a transaction out of the chain with every transaction that spends its outputs, and
/// frees the coins it spent.
fn remove_tx(conn: &mut Conn, txid: &str) -> Result<(), StoreError> {
    let spenders: Vec<Option<String>> = dev_coins::table
        .filter(dev_coins::txid.eq(txid))
        .filter(dev_coins::spent_by.is_not_null())
        .select(dev_coins::spent_by)
        .load(conn)?;
    for spender in spenders.into_iter().flatten() {
        remove_tx(conn, &spender)?;
    }
    diesel::delete(dev_coins::table.filter(dev_coins::txid.eq(txid))).execute(conn)?;
    diesel::update(dev_coins::table.filter(dev_coins::spent_by.eq(txid)))
        .set(dev_coins::spent_by.eq(None::<String>))
        .execute(conn)?;
    diesel::delete(dev_txs::table.filter(dev_txs::txid.eq(txid))).execute(conn)?;
    diesel::delete(dev_dsproofs::table.filter(dev_dsproofs::txid.eq(txid))).execute(conn)?;
    Ok(())
}

/// The hash of the block at `height` (`None` above the tip; height 0 is the genesis block,
/// which has no row).
pub fn block_hash_at(conn: &mut Conn, height: i64) -> Result<Option<String>, StoreError> {
    Ok(dev_blocks::table
        .filter(dev_blocks::height.eq(height))
        .select(dev_blocks::hash)
        .first(conn)
        .optional()?)
}

/// The height of the block with this hash, if it is on the chain.
pub fn block_height_of(conn: &mut Conn, hash: &str) -> Result<Option<i64>, StoreError> {
    Ok(dev_blocks::table
        .filter(dev_blocks::hash.eq(hash))
        .select(dev_blocks::height)
        .first(conn)
        .optional()?)
}

/// The transactions mined at `height`, in the order they entered the chain.
pub fn block_txs(conn: &mut Conn, height: i64) -> Result<Vec<Vec<u8>>, StoreError> {
    Ok(dev_txs::table
        .filter(dev_txs::height.eq(height))
        .order(dev_txs::first_seen_ms)
        .select(dev_txs::raw)
        .load(conn)?)
}

/// The txids in the mempool.
pub fn mempool(conn: &mut Conn) -> Result<Vec<String>, StoreError> {
    Ok(dev_txs::table
        .filter(dev_txs::height.is_null())
        .select(dev_txs::txid)
        .load(conn)?)
}

/// Records the double-spend proof the rehearsal made for `txid`: its id and the conflicting
/// transaction the chain refused.
pub fn insert_proof(
    conn: &mut Conn,
    txid: Txid,
    id: &str,
    conflict: &[u8],
    now_ms: i64,
) -> Result<(), StoreError> {
    diesel::insert_into(dev_dsproofs::table)
        .values((
            dev_dsproofs::txid.eq(txid.to_hex()),
            dev_dsproofs::id.eq(id),
            dev_dsproofs::conflict.eq(conflict),
            dev_dsproofs::created_ms.eq(now_ms),
        ))
        .execute(conn)?;
    Ok(())
}

/// The proof held for `txid`: `(id, conflicting transaction)`.
pub fn proof_for(conn: &mut Conn, txid: Txid) -> Result<Option<(String, Vec<u8>)>, StoreError> {
    Ok(dev_dsproofs::table
        .filter(dev_dsproofs::txid.eq(txid.to_hex()))
        .select((dev_dsproofs::id, dev_dsproofs::conflict))
        .first(conn)
        .optional()?)
}

/// The proof ids held for any of `txids`, by txid: one query for a whole pass of the watcher.
pub fn proof_ids(
    conn: &mut Conn,
    txids: &[Txid],
) -> Result<std::collections::HashMap<Txid, String>, StoreError> {
    let mut found = std::collections::HashMap::new();
    for chunk in txids.chunks(super::MAX_BIND_LIST) {
        let hex: Vec<String> = chunk.iter().map(Txid::to_hex).collect();
        let rows: Vec<(String, String)> = dev_dsproofs::table
            .filter(dev_dsproofs::txid.eq_any(hex))
            .select((dev_dsproofs::txid, dev_dsproofs::id))
            .load(conn)?;
        for (txid, id) in rows {
            let txid = Txid::from_hex(&txid)
                .ok_or_else(|| StoreError::Corrupt(format!("dev proof txid {txid:?}")))?;
            found.insert(txid, id);
        }
    }
    Ok(found)
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
    // Blocks carry no proof of work here; the hash only has to be unique, also against the
    // block a reorg replaced at the same height in the same millisecond.
    let salt: [u8; 16] = rand::random();
    let hash =
        crate::chain::txid_of(&[&height.to_le_bytes()[..], &now_ms.to_le_bytes(), &salt].concat());
    diesel::insert_into(dev_blocks::table)
        .values((
            dev_blocks::height.eq(height),
            dev_blocks::hash.eq(hash.to_hex()),
            dev_blocks::time_ms.eq(now_ms),
        ))
        .execute(conn)?;
    Ok(())
}

/// A transaction's bytes, if the chain has it.
pub fn raw_tx(conn: &mut Conn, txid: Txid) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(dev_txs::table
        .filter(dev_txs::txid.eq(txid.to_hex()))
        .select(dev_txs::raw)
        .first(conn)
        .optional()?)
}
