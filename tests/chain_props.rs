//! Property tests of the transaction layer: round trips, parsers that never panic, our
//! signature hash against the `bitcoincash` crate as an independent oracle, and signatures
//! that verify exactly when nothing was changed.

// Test code: a panic is a failed check, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bitcoin::secp256k1::{Secp256k1, SecretKey};
use proptest::prelude::*;

use cashier::chain::sighash::{self, sign_p2pkh, signature_hash, verify_p2pkh};
use cashier::chain::{
    Address, Input, Network, Nft, NftCapability, OutPoint, Output, TokenData, Tx, Txid,
};

fn token() -> impl Strategy<Value = Option<TokenData>> {
    let nft = prop_oneof![
        Just(None),
        (0..3u8, proptest::collection::vec(any::<u8>(), 0..=40)).prop_map(
            |(cap, commitment)| Some(Nft {
                capability: [
                    NftCapability::None,
                    NftCapability::Mutable,
                    NftCapability::Minting
                ][cap as usize],
                commitment,
            })
        ),
    ];
    prop_oneof![
        2 => Just(None),
        1 => (any::<[u8; 32]>(), prop_oneof![Just(0u64), 1..=i64::MAX as u64], nft)
            .prop_filter_map("a token needs an NFT or an amount", |(category, amount, nft)| {
                TokenData::new(category, amount, nft).ok().map(Some)
            }),
    ]
}

fn output() -> impl Strategy<Value = Output> {
    (
        0..=2_100_000_000_000_000u64,
        token(),
        proptest::collection::vec(any::<u8>(), 0..40),
    )
        .prop_map(|(value, token, locking_bytecode)| Output {
            value,
            token,
            locking_bytecode,
        })
        // A bare script starting with 0xef would read back as a token prefix.
        .prop_filter("plain scripts do not start with the token marker", |o| {
            o.token.is_some() || o.locking_bytecode.first() != Some(&0xef)
        })
}

fn input() -> impl Strategy<Value = Input> {
    (
        any::<[u8; 32]>(),
        any::<u32>(),
        proptest::collection::vec(any::<u8>(), 0..120),
        any::<u32>(),
    )
        .prop_map(|(txid, vout, script_sig, sequence)| Input {
            prevout: OutPoint {
                txid: Txid(txid),
                vout,
            },
            script_sig,
            sequence,
        })
}

fn tx() -> impl Strategy<Value = Tx> {
    (
        any::<i32>(),
        proptest::collection::vec(input(), 1..5),
        proptest::collection::vec(output(), 1..5),
        any::<u32>(),
    )
        .prop_map(|(version, inputs, outputs, lock_time)| Tx {
            version,
            inputs,
            outputs,
            lock_time,
        })
}

fn hash_type() -> impl Strategy<Value = u32> {
    (1..=3u32, any::<bool>(), any::<bool>()).prop_filter_map(
        "UTXOS excludes ANYONECANPAY",
        |(base, acp, utxos)| {
            if acp && utxos {
                return None;
            }
            let mut t = base | sighash::SIGHASH_FORKID;
            if acp {
                t |= sighash::SIGHASH_ANYONECANPAY;
            }
            if utxos {
                t |= sighash::SIGHASH_UTXOS;
            }
            Some(t)
        },
    )
}

/// The same output in the oracle crate's types, through the wire format.
fn oracle_out(o: &Output) -> bitcoincash::TxOut {
    bitcoincash::consensus::deserialize(&o.serialize()).expect("oracle reads our output")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn transactions_round_trip(tx in tx()) {
        let raw = tx.serialize();
        let parsed = Tx::decode(&raw).unwrap();
        prop_assert_eq!(&parsed, &tx);
        prop_assert_eq!(cashier::chain::txid_of(&raw), tx.txid());
    }

    #[test]
    fn token_prefixes_round_trip(token in token().prop_filter_map("a token", |t| t)) {
        let mut field = token.prefix_bytes();
        field.extend_from_slice(&[0x76, 0xa9]);
        let (parsed, rest) = TokenData::split_prefix(&field).unwrap();
        prop_assert_eq!(parsed, Some(token));
        prop_assert_eq!(rest, &[0x76, 0xa9][..]);
    }

    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400), text in ".{0,80}") {
        let _ = Tx::parse(&bytes);
        let _ = Tx::decode(&bytes).map(|tx| tx.check());
        let _ = TokenData::split_prefix(&bytes);
        for network in Network::ALL {
            let _ = Address::parse(&text, network);
        }
    }

    #[test]
    fn sighash_matches_the_bitcoincash_crate(
        tx in tx(),
        spent in proptest::collection::vec(output(), 5),
        index in 0..5usize,
        hash_type in hash_type(),
        script_code in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        let index = index % tx.inputs.len();
        let ours = signature_hash(&tx, index, &script_code, &spent, hash_type).unwrap();
        let oracle_tx: bitcoincash::Transaction = bitcoincash::consensus::deserialize(&tx.serialize()).unwrap();
        let oracle_spent: Vec<bitcoincash::TxOut> = spent[..tx.inputs.len()].iter().map(oracle_out).collect();
        let coin = &oracle_spent[index];
        let mut cache = bitcoincash::sighash::SighashCache::new(&oracle_tx);
        let theirs = cache
            .bch_signature_hash(
                index,
                bitcoincash::Script::from_bytes(&script_code),
                coin.value,
                coin.token.as_ref(),
                hash_type,
                Some(&oracle_spent),
            )
            .unwrap();
        prop_assert_eq!(ours.to_vec(), bitcoincash::hashes::Hash::to_byte_array(theirs).to_vec());
    }

    #[test]
    fn signatures_verify_until_anything_changes(
        mut tx in tx(),
        key in any::<[u8; 32]>().prop_filter_map("a valid key", |k| SecretKey::from_slice(&k).ok()),
        values in proptest::collection::vec(546..1_000_000u64, 5),
        flip in any::<usize>(),
    ) {
        let secp = Secp256k1::new();
        let locking = sighash::p2pkh_locking_bytecode(&key.public_key(&secp));
        let spent: Vec<Output> = values[..tx.inputs.len()]
            .iter()
            .map(|&value| Output { value, token: None, locking_bytecode: locking.clone() })
            .collect();
        sign_p2pkh(&secp, &mut tx, &spent, &key).unwrap();
        for i in 0..tx.inputs.len() {
            prop_assert!(verify_p2pkh(&secp, &tx, i, &spent).is_ok());
        }
        // Paying one sat more out of any coin than it holds breaks that coin's signature.
        let mut changed = spent.clone();
        let i = flip % changed.len();
        changed[i].value += 1;
        prop_assert!(verify_p2pkh(&secp, &tx, i, &changed).is_err());
        // So does any change to an output.
        let mut altered = tx.clone();
        altered.outputs[0].value ^= 1;
        prop_assert!(verify_p2pkh(&secp, &altered, 0, &spent).is_err());
    }
}
