//! Bitcoin Cash itself: networks, addresses, CashToken data, transactions and signatures.
//!
//! Nothing here knows about HTTP or the database; the invoice code builds on these types.

mod address;
pub mod bchn;
pub mod block;
pub mod dev;
pub mod hd;
pub mod node;
pub mod sighash;
mod token;
mod tx;
pub mod wallet;
pub mod watch;

pub use address::{Address, AddressError, LockKind, Network};
pub use token::{Nft, NftCapability, TokenData, TokenError, MAX_COMMITMENT_LEN, MAX_FT_AMOUNT};
pub use tx::{
    txid_of, Input, OutPoint, Output, Tx, TxError, Txid, MAX_INPUTS, MAX_TX_SIZE, MIN_TX_SIZE,
};

/// Largest amount of satoshis that can exist (21 million BCH).
pub const MAX_MONEY_SATS: u64 = 2_100_000_000_000_000;

/// BCHN's dust threshold for an output: three times the cost of creating and spending it at
/// the 1 sat/byte relay fee (`GetDustThreshold`, policy.cpp). 546 sats for plain P2PKH.
pub fn dust_threshold(locking_bytecode_len: usize) -> u64 {
    // value (8) + CompactSize length + script, plus the 148 bytes of a typical input spending it.
    let output_size = 8 + compact_size_len(locking_bytecode_len as u64) + locking_bytecode_len;
    3 * (output_size as u64 + 148)
}

/// Bytes a CompactSize integer takes on the wire.
pub fn compact_size_len(n: u64) -> usize {
    match n {
        0..=0xfc => 1,
        0xfd..=0xffff => 3,
        0x1_0000..=0xffff_ffff => 5,
        _ => 9,
    }
}

/// Appends `n` as a CompactSize integer.
pub fn write_compact_size(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xfc => out.push(n as u8),
        0xfd..=0xffff => {
            out.push(0xfd);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(0xfe);
            out.extend_from_slice(&(n as u32).to_le_bytes());
        }
        _ => {
            out.push(0xff);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// Reads a minimally encoded CompactSize integer from the front of `input`; `None` when it
/// is cut short or not minimal.
pub fn read_compact_size(input: &mut &[u8]) -> Option<u64> {
    let (&first, rest) = input.split_first()?;
    let (width, min) = match first {
        0xfd => (2, 0xfd),
        0xfe => (4, 0x1_0000),
        0xff => (8, 0x1_0000_0000),
        small => {
            *input = rest;
            return Some(u64::from(small));
        }
    };
    if rest.len() < width {
        return None;
    }
    let mut bytes = [0u8; 8];
    bytes[..width].copy_from_slice(&rest[..width]);
    let value = u64::from_le_bytes(bytes);
    if value < min {
        return None; // not minimal
    }
    *input = &rest[width..];
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dust_matches_bchn_for_standard_scripts() {
        assert_eq!(dust_threshold(25), 546); // P2PKH
        assert_eq!(dust_threshold(23), 540); // P2SH20
        assert_eq!(dust_threshold(35), 576); // P2SH32
    }

    #[test]
    fn compact_size_boundaries() {
        for n in [
            0u64,
            0xfc,
            0xfd,
            0xffff,
            0x1_0000,
            0xffff_ffff,
            0x1_0000_0000,
        ] {
            let mut v = Vec::new();
            write_compact_size(&mut v, n);
            assert_eq!(v.len(), compact_size_len(n), "{n}");
        }
    }
}
