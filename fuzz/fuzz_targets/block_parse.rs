//! Any bytes: the block parser answers or refuses, never panics; what it accepts is exactly
//! its header, its count and its transactions back to back, each txid the hash of its own
//! bytes. The one-transaction prefix decoder it builds on is held to the same.
#![no_main]

use cashier::chain::watch::Block;
use cashier::chain::{compact_size_len, Tx};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok((tx, len)) = Tx::decode_prefix(data) {
        assert!(len <= data.len());
        assert_eq!(tx.serialize(), &data[..len]);
    }
    if let Ok(block) = Block::decode(data, 0) {
        let mut len = 80 + compact_size_len(block.txs.len() as u64);
        for chain_tx in &block.txs {
            let raw = chain_tx.tx.serialize();
            assert_eq!(chain_tx.txid, cashier::chain::txid_of(&raw));
            len += raw.len();
        }
        assert_eq!(len, data.len());
    }
});
