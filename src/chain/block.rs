//! Raw BCH blocks as `getblock <hash> 0` answers them: the 80-byte header, a CompactSize
//! count, then the transactions back to back. Decoding checks what the bytes can prove about
//! themselves: the header's hash, every transaction's exact encoding, and the merkle root over
//! the txids, so a block that decodes is the block its hash names, with nothing added or left
//! out. The height is not in the bytes; the caller brings it (from `getblockheader`).
//!
//! Every count is checked against the bytes left before anything is allocated for it, so
//! hostile input costs at most its own length.

use bitcoin::hashes::{sha256d, Hash};

use super::watch::{Block, BlockHash, ChainTx, Header};
use super::{read_compact_size, txid_of, Tx, TxError, Txid};

/// Bytes in a block header: version, previous block hash, merkle root, time, bits, nonce.
pub const HEADER_LEN: usize = 80;

/// The largest block decoded. BCH's limit starts at 32 MB and the adaptive algorithm (ABLA)
/// raises it slowly with demand; four times the starting point leaves years of headroom while
/// still refusing an answer that could only exhaust memory. Raise it when the chain nears it.
pub const MAX_BLOCK_SIZE: usize = 128_000_000;

/// BCH's consensus limit on one transaction (`MAX_TX_SIZE`, consensus.h). Relay policy is
/// stricter (100 kB), but miners may include anything up to this.
pub const MAX_CONSENSUS_TX_SIZE: usize = 1_000_000;

/// The fewest bytes one transaction can take on the wire: version (4), one input with its
/// count (42), one output with its count (10) and the lock time (4). A block of `n` bytes
/// after its header cannot hold more than `n / MIN_ENCODED_TX` transactions, whatever its
/// count says.
const MIN_ENCODED_TX: usize = 60;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("block is {0} bytes; a header alone is {HEADER_LEN}")]
    TooShort(usize),
    #[error("block is {0} bytes; the most Cashier reads is {MAX_BLOCK_SIZE}")]
    TooLarge(usize),
    #[error("the transaction count is cut short or not minimally encoded")]
    BadCount,
    #[error("the block says it holds {count} transactions; {remaining} bytes cannot")]
    CountTooLarge { count: u64, remaining: usize },
    #[error("the block holds no transactions; every block starts with its coinbase")]
    NoTransactions,
    #[error("transaction {index}: {source}")]
    Tx { index: usize, source: TxError },
    #[error("transaction {index} is {size} bytes; consensus allows {MAX_CONSENSUS_TX_SIZE}")]
    TxTooLarge { index: usize, size: usize },
    #[error("the first transaction is not a coinbase")]
    NoCoinbase,
    #[error("transaction {0} is a coinbase; only the first may be")]
    ExtraCoinbase(usize),
    #[error("{0} bytes follow the last transaction")]
    TrailingBytes(usize),
    #[error("the merkle root in the header does not match the transactions")]
    MerkleMismatch,
}

/// The hash of an 80-byte header: double SHA-256, in display order.
pub fn header_hash(header: &[u8; HEADER_LEN]) -> BlockHash {
    BlockHash(display_order(sha256d::Hash::hash(header).to_byte_array()))
}

impl Block {
    /// Decodes a raw block at `height`. The header's `prev` is `None` only when the previous
    /// hash is all zeros, which only the genesis block has.
    pub fn decode(raw: &[u8], height: i64) -> Result<Block, BlockError> {
        if raw.len() > MAX_BLOCK_SIZE {
            return Err(BlockError::TooLarge(raw.len()));
        }
        let (header, mut rest) = raw
            .split_first_chunk::<HEADER_LEN>()
            .ok_or(BlockError::TooShort(raw.len()))?;
        let hash = header_hash(header);
        let prev = wire_hash(&header[4..36]);
        let merkle_root = wire_hash(&header[36..68]);

        let count = read_compact_size(&mut rest).ok_or(BlockError::BadCount)?;
        // Checked before the vector is sized by it: the count is the sender's word.
        let fits = rest.len() / MIN_ENCODED_TX;
        let count = usize::try_from(count).ok().filter(|&n| n <= fits).ok_or(
            BlockError::CountTooLarge {
                count,
                remaining: rest.len(),
            },
        )?;
        if count == 0 {
            return Err(BlockError::NoTransactions);
        }

        let mut txs = Vec::with_capacity(count);
        for index in 0..count {
            let (tx, len) =
                Tx::decode_prefix(rest).map_err(|source| BlockError::Tx { index, source })?;
            if len > MAX_CONSENSUS_TX_SIZE {
                return Err(BlockError::TxTooLarge { index, size: len });
            }
            match (index, tx.is_coinbase()) {
                (0, false) => return Err(BlockError::NoCoinbase),
                (1.., true) => return Err(BlockError::ExtraCoinbase(index)),
                _ => {}
            }
            // `decode_prefix` read exactly `len` bytes, all of them within `rest`.
            let (bytes, after) = rest.split_at(len);
            txs.push(ChainTx {
                txid: txid_of(bytes),
                tx,
            });
            rest = after;
        }
        if !rest.is_empty() {
            return Err(BlockError::TrailingBytes(rest.len()));
        }
        if merkle_root_of(txs.iter().map(|t| t.txid)) != merkle_root {
            return Err(BlockError::MerkleMismatch);
        }
        Ok(Block {
            header: Header {
                hash,
                height,
                prev: (prev.0 != [0; 32]).then_some(prev),
            },
            txs,
        })
    }
}

/// The merkle root over txids, as a header carries it (display order here): pairs hashed
/// level by level, an odd one out paired with itself. No txids give all zeros, which no real
/// header holds.
pub fn merkle_root_of(txids: impl IntoIterator<Item = Txid>) -> BlockHash {
    let mut level: Vec<[u8; 32]> = txids.into_iter().map(|t| t.wire_bytes()).collect();
    if level.is_empty() {
        return BlockHash([0; 32]);
    }
    while level.len() > 1 {
        level = level
            .chunks(2)
            .map(|pair| {
                let left = pair[0];
                let right = pair.get(1).copied().unwrap_or(left);
                let mut both = [0u8; 64];
                both[..32].copy_from_slice(&left);
                both[32..].copy_from_slice(&right);
                sha256d::Hash::hash(&both).to_byte_array()
            })
            .collect();
    }
    BlockHash(display_order(level[0]))
}

/// A hash as it sits in a header (wire order) turned into display order.
fn wire_hash(bytes: &[u8]) -> BlockHash {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(bytes);
    BlockHash(display_order(hash))
}

fn display_order(mut bytes: [u8; 32]) -> [u8; 32] {
    bytes.reverse();
    bytes
}

#[cfg(test)]
mod tests {
    use bitcoin::secp256k1::Secp256k1;

    use super::*;
    use crate::chain::sighash::p2pkh_locking_bytecode;
    use crate::chain::wallet::{build_payment, random_key};
    use crate::chain::{write_compact_size, Input, OutPoint, Output};

    /// Bitcoin's genesis block, which BCH shares: real bytes with a hash everyone knows.
    fn genesis() -> Vec<u8> {
        bitcoin::consensus::serialize(&bitcoin::blockdata::constants::genesis_block(
            bitcoin::Network::Bitcoin,
        ))
    }

    fn coinbase(tag: u8) -> Tx {
        Tx {
            version: 1,
            inputs: vec![Input {
                prevout: OutPoint {
                    txid: Txid([0; 32]),
                    vout: u32::MAX,
                },
                script_sig: vec![0x02, tag, 0x00],
                sequence: u32::MAX,
            }],
            outputs: vec![Output {
                value: 312_500_000,
                token: None,
                locking_bytecode: vec![0x51],
            }],
            lock_time: 0,
        }
    }

    /// Two signed payments, the second spending the first's change, as a wallet makes them.
    fn payments() -> Vec<Tx> {
        let secp = Secp256k1::new();
        let key = random_key();
        let coin = Output {
            value: 100_000,
            token: None,
            locking_bytecode: p2pkh_locking_bytecode(&key.public_key(&secp)),
        };
        let merchant = p2pkh_locking_bytecode(&random_key().public_key(&secp));
        let pay = |value| Output {
            value,
            token: None,
            locking_bytecode: merchant.clone(),
        };
        let first = build_payment(
            &secp,
            &key,
            &[(
                OutPoint {
                    txid: Txid([9; 32]),
                    vout: 1,
                },
                coin,
            )],
            vec![pay(20_000)],
            1000,
        )
        .unwrap();
        let change = first.outputs.last().unwrap().clone();
        let second = build_payment(
            &secp,
            &key,
            &[(
                OutPoint {
                    txid: first.txid(),
                    vout: 1,
                },
                change,
            )],
            vec![pay(30_000)],
            1000,
        )
        .unwrap();
        vec![first, second]
    }

    /// A block over `txs` with a header that commits to them.
    fn block_of(prev: [u8; 32], txs: &[Tx]) -> Vec<u8> {
        let root = merkle_root_of(txs.iter().map(Tx::txid));
        let mut raw = Vec::new();
        raw.extend_from_slice(&0x2000_0000u32.to_le_bytes());
        raw.extend_from_slice(&prev);
        raw.extend_from_slice(&display_order(root.0));
        raw.extend_from_slice(&1_700_000_000u32.to_le_bytes());
        raw.extend_from_slice(&0x207f_ffffu32.to_le_bytes());
        raw.extend_from_slice(&42u32.to_le_bytes());
        write_compact_size(&mut raw, txs.len() as u64);
        for tx in txs {
            raw.extend_from_slice(&tx.serialize());
        }
        raw
    }

    #[test]
    fn the_genesis_block_has_its_known_hash() {
        let block = Block::decode(&genesis(), 0).unwrap();
        assert_eq!(
            block.header.hash.to_hex(),
            "000000000019d6689c085ae165831e934ff763ae46a2a6c172b3f1b60a8ce26f"
        );
        assert_eq!(block.header.height, 0);
        assert_eq!(block.header.prev, None);
        assert_eq!(block.txs.len(), 1);
        assert_eq!(
            block.txs[0].txid.to_hex(),
            "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
        );
        assert!(block.txs[0].tx.is_coinbase());
    }

    #[test]
    fn a_block_of_wallet_payments_decodes_with_each_txid() {
        let mut txs = vec![coinbase(1)];
        txs.extend(payments());
        let raw = block_of([5; 32], &txs);
        let block = Block::decode(&raw, 812_345).unwrap();

        let header: [u8; HEADER_LEN] = raw[..HEADER_LEN].try_into().unwrap();
        assert_eq!(block.header.hash, header_hash(&header));
        assert_eq!(block.header.prev, Some(BlockHash([5; 32])));
        assert_eq!(block.header.height, 812_345);
        assert_eq!(block.txs.len(), 3);
        for (got, want) in block.txs.iter().zip(&txs) {
            assert_eq!(&got.tx, want);
            assert_eq!(got.txid, want.txid());
        }
        // The second payment spends the first, by the txid the block gave it.
        assert_eq!(block.txs[2].tx.inputs[0].prevout.txid, block.txs[1].txid);
    }

    #[test]
    fn merkle_roots_pair_an_odd_one_with_itself() {
        let a = Txid([1; 32]);
        let b = Txid([2; 32]);
        let c = Txid([3; 32]);
        assert_eq!(merkle_root_of([a]), BlockHash(a.0));
        let three = merkle_root_of([a, b, c]);
        let four = merkle_root_of([a, b, c, c]);
        assert_eq!(three, four);
        assert_ne!(three, merkle_root_of([a, b]));
    }

    #[test]
    fn every_cut_of_a_block_is_refused_without_panicking() {
        let mut txs = vec![coinbase(2)];
        txs.extend(payments());
        let raw = block_of([6; 32], &txs);
        for len in 0..raw.len() {
            assert!(Block::decode(&raw[..len], 1).is_err(), "cut at {len}");
        }
        assert!(matches!(
            Block::decode(&raw[..79], 1),
            Err(BlockError::TooShort(79))
        ));
    }

    #[test]
    fn hostile_counts_and_bytes_are_named() {
        let raw = block_of([0; 32], &[coinbase(3)]);

        // A count far beyond what the bytes can hold, before anything is allocated for it.
        let mut huge = raw[..HEADER_LEN].to_vec();
        huge.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        huge.extend_from_slice(&[0; 100]);
        assert!(matches!(
            Block::decode(&huge, 0),
            Err(BlockError::CountTooLarge { .. })
        ));

        // A count that is not minimal.
        let mut padded = raw[..HEADER_LEN].to_vec();
        padded.extend_from_slice(&[0xfd, 0x01, 0x00]);
        padded.extend_from_slice(&raw[HEADER_LEN + 1..]);
        assert_eq!(Block::decode(&padded, 0), Err(BlockError::BadCount));

        // No transactions at all.
        let mut empty = raw[..HEADER_LEN].to_vec();
        empty.push(0);
        assert_eq!(Block::decode(&empty, 0), Err(BlockError::NoTransactions));

        // A byte too many.
        let mut trailing = raw.clone();
        trailing.push(0);
        assert_eq!(
            Block::decode(&trailing, 0),
            Err(BlockError::TrailingBytes(1))
        );

        // A header that commits to other transactions.
        let mut forged = raw.clone();
        forged[40] ^= 1;
        assert_eq!(Block::decode(&forged, 0), Err(BlockError::MerkleMismatch));

        // Garbage where the transactions should be.
        let mut garbage = raw[..HEADER_LEN].to_vec();
        garbage.push(1);
        garbage.extend_from_slice(&[0xab; 200]);
        assert!(matches!(
            Block::decode(&garbage, 0),
            Err(BlockError::Tx { index: 0, .. })
        ));

        assert_eq!(
            Block::decode(&vec![0; MAX_BLOCK_SIZE + 1], 0),
            Err(BlockError::TooLarge(MAX_BLOCK_SIZE + 1))
        );
    }

    #[test]
    fn the_coinbase_comes_first_and_only_first() {
        let pays = payments();
        let raw = block_of([0; 32], &pays);
        assert_eq!(Block::decode(&raw, 0), Err(BlockError::NoCoinbase));

        let raw = block_of([0; 32], &[coinbase(4), coinbase(5)]);
        assert_eq!(Block::decode(&raw, 0), Err(BlockError::ExtraCoinbase(1)));
    }
}
