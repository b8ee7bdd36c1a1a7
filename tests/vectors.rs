//! BCHN's own test vectors (tests/vectors/bchn, MIT) against the address codec.

use cashier::chain::{Address, Network};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!("{}/tests/vectors/bchn/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect("vector file"))
        .expect("vector JSON")
}

fn network_of(prefix: &str) -> Option<Network> {
    Network::ALL
        .into_iter()
        .find(|n| n.cashaddr_prefix() == prefix)
}

#[test]
fn cashaddr_token_types() {
    let vectors = load("cashaddr_token_types.json");
    let (mut accepted, mut refused) = (0, 0);
    for v in vectors.as_array().unwrap() {
        let addr = v["cashaddr"].as_str().unwrap();
        let kind = v["type"].as_u64().unwrap();
        let size = v["payloadSize"].as_u64().unwrap();
        let payload = v["payload"].as_str().unwrap().to_lowercase();
        let prefix = addr.split(':').next().unwrap();
        let payable = matches!((kind, size), (0 | 2, 20) | (1 | 3, 20 | 32));
        match network_of(prefix).filter(|_| payable) {
            Some(network) => {
                let parsed =
                    Address::parse(addr, network).unwrap_or_else(|e| panic!("{addr}: {e}"));
                assert_eq!(parsed.to_cashaddr(kind >= 2), addr, "round trip");
                assert!(
                    hex::encode(parsed.locking_bytecode()).contains(&payload),
                    "{addr}"
                );
                // The same payload without its prefix parses too; other networks refuse it.
                let bare = addr.split_once(':').unwrap().1;
                assert_eq!(Address::parse(bare, network).unwrap(), parsed);
                for other in Network::ALL.into_iter().filter(|n| *n != network) {
                    assert!(Address::parse(addr, other).is_err(), "{addr} on {other}");
                }
                accepted += 1;
            }
            None => {
                for network in Network::ALL {
                    assert!(
                        Address::parse(addr, network).is_err(),
                        "{addr} must be refused"
                    );
                }
                refused += 1;
            }
        }
    }
    assert_eq!(accepted + refused, 67);
    assert!(accepted >= 30, "{accepted} accepted");
}

#[test]
fn key_io_valid_addresses_pay_the_right_script() {
    let vectors = load("key_io_valid.json");
    let mut checked = 0;
    for v in vectors.as_array().unwrap() {
        let meta = &v[2];
        if meta["isPrivkey"].as_bool() == Some(true) {
            continue;
        }
        let addr = v[0].as_str().unwrap();
        let script = v[1].as_str().unwrap();
        let network = match meta["chain"].as_str().unwrap() {
            "main" => Network::Main,
            "test" => Network::Test,
            "regtest" => Network::Regtest,
            other => panic!("chain {other}"),
        };
        match Address::parse(addr, network) {
            Ok(a) => {
                assert_eq!(hex::encode(a.locking_bytecode()), script, "{addr}");
                checked += 1;
            }
            // Only scripts an invoice cannot ask for (segwit-style programs) may be refused.
            Err(e) => assert!(
                !script.starts_with("76a914") && !script.starts_with("a914"),
                "{addr}: {e}"
            ),
        }
    }
    assert!(checked >= 10, "{checked} checked");
}

#[test]
fn key_io_invalid_strings_are_refused() {
    let vectors = load("key_io_invalid.json");
    for v in vectors.as_array().unwrap() {
        let s = v[0].as_str().unwrap();
        for network in Network::ALL {
            assert!(Address::parse(s, network).is_err(), "{s:?} on {network}");
        }
    }
}

#[test]
fn token_prefixes_valid_parse_and_reencode() {
    use cashier::chain::TokenData;
    let vectors = load("token_tests_prefix_valid.json");
    let vectors = vectors.as_array().unwrap();
    assert_eq!(vectors.len(), 62);
    for v in vectors {
        let prefix = hex::decode(v["prefix"].as_str().unwrap()).unwrap();
        let mut field = prefix.clone();
        field.extend_from_slice(&[0x51, 0x87]); // some locking bytecode after it
        let (token, rest) =
            TokenData::split_prefix(&field).unwrap_or_else(|e| panic!("{}: {e}", v["prefix"]));
        let token = token.expect("a token");
        assert_eq!(rest, &[0x51, 0x87]);
        let data = &v["data"];
        assert_eq!(
            hex::encode(token.category),
            data["category"].as_str().unwrap()
        );
        assert_eq!(token.amount.to_string(), data["amount"].as_str().unwrap());
        match data.get("nft") {
            Some(nft) => {
                let n = token.nft.as_ref().expect("an NFT");
                assert_eq!(n.capability.as_str(), nft["capability"].as_str().unwrap());
                assert_eq!(
                    hex::encode(&n.commitment),
                    nft["commitment"].as_str().unwrap()
                );
            }
            None => assert!(token.nft.is_none()),
        }
        assert_eq!(token.prefix_bytes(), prefix, "re-encoding {}", v["prefix"]);
        assert_eq!(token.prefix_len(), prefix.len());
    }
}

#[test]
fn token_prefixes_invalid_are_refused() {
    use cashier::chain::TokenData;
    let vectors = load("token_tests_prefix_invalid.json");
    let vectors = vectors.as_array().unwrap();
    assert_eq!(vectors.len(), 55);
    for v in vectors {
        let prefix = hex::decode(v["prefix"].as_str().unwrap()).unwrap();
        assert!(
            TokenData::split_prefix(&prefix).is_err(),
            "{} ({})",
            v["prefix"],
            v["error"]
        );
    }
}

#[test]
fn sighash_forkid_vectors() {
    use cashier::chain::sighash::{signature_hash_before_upgrade9, SIGHASH_FORKID, SIGHASH_UTXOS};
    use cashier::chain::Output;
    let vectors = load("sighash.json");
    let (mut checked, mut legacy, mut utxos, mut undecodable) = (0, 0, 0, 0);
    for v in vectors.as_array().unwrap().iter().skip(1) {
        let raw = hex::decode(v[0].as_str().unwrap()).unwrap();
        let script = hex::decode(v[1].as_str().unwrap()).unwrap();
        let index = v[2].as_u64().unwrap() as usize;
        let hash_type = v[3].as_i64().unwrap() as i32 as u32;
        let expected = v[4].as_str().unwrap();
        if hash_type & SIGHASH_FORKID == 0 {
            // The pre-fork digest: BCH consensus refuses signatures without FORKID.
            legacy += 1;
            continue;
        }
        // The vectors' transactions are arbitrary bytes (some below the 65-byte minimum, some
        // with nonsense token prefixes), so they go through the wire decoder only.
        let Ok(tx) = cashier::chain::Tx::decode(&raw) else {
            undecodable += 1;
            continue;
        };
        // BCHN's test signs as if each coin held 0 sats and no tokens.
        let spent = vec![
            Output {
                value: 0,
                token: None,
                locking_bytecode: script.clone()
            };
            tx.inputs.len()
        ];
        if hash_type & SIGHASH_UTXOS != 0 {
            utxos += 1;
        }
        let mut digest =
            signature_hash_before_upgrade9(&tx, index, &script, &spent, hash_type).unwrap();
        digest.reverse();
        assert_eq!(
            hex::encode(digest),
            expected,
            "vector {checked}: type 0x{hash_type:08x}"
        );
        checked += 1;
    }
    eprintln!(
        "sighash: {checked} FORKID vectors checked ({utxos} with SIGHASH_UTXOS), {legacy} pre-fork vectors skipped, {undecodable} undecodable"
    );
    assert_eq!(
        undecodable, 0,
        "every sighash vector is a decodable transaction"
    );
    assert_eq!(checked, 494);
}

#[test]
fn tx_valid_vectors_decode_and_pass_the_context_free_checks() {
    use cashier::chain::{txid_of, Tx};
    let vectors = load("tx_valid.json");
    let mut checked = 0;
    for v in vectors
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v[0].is_array())
    {
        let raw = hex::decode(v[1].as_str().unwrap()).unwrap();
        let tx = Tx::decode(&raw).unwrap_or_else(|e| panic!("{}: {e}", v[1]));
        tx.check().unwrap_or_else(|e| panic!("{}: {e}", v[1]));
        assert_eq!(tx.serialize(), raw);
        assert_eq!(tx.txid(), txid_of(&raw));
        checked += 1;
        // Script evaluation is skipped: these prevouts are P2SH, multisig and timelock scripts
        // under pre-fork signature rules. Cashier checks P2PKH with FORKID only (the dev
        // chain); a real node checks everything else before any payment is accepted.
    }
    assert_eq!(checked, 88);
}

#[test]
fn tx_invalid_vectors_are_refused_or_are_script_cases() {
    use cashier::chain::Tx;
    let vectors = load("tx_invalid.json");
    let (mut refused, mut script_level, mut context_free) = (0, 0, 0);
    // The file marks its CheckTransaction() cases with comment lines; each must be refused
    // without running a script.
    let mut in_check_transaction = false;
    for v in vectors.as_array().unwrap() {
        if let Some(comment) = v[0].as_str() {
            if comment.starts_with("Tests for CheckTransaction()") {
                in_check_transaction = true;
            } else if comment.starts_with("Same as the transactions in valid") {
                in_check_transaction = false;
            }
            continue;
        }
        let raw = hex::decode(v[1].as_str().unwrap()).unwrap();
        let verdict = Tx::decode(&raw).and_then(|tx| tx.check());
        if in_check_transaction {
            assert!(verdict.is_err(), "CheckTransaction case accepted: {}", v[1]);
            context_free += 1;
        }
        match verdict {
            Err(_) => refused += 1,
            // Invalid only when scripts run (signatures, P2SH, timelocks): see the valid test.
            Ok(()) => script_level += 1,
        }
    }
    eprintln!("tx_invalid: {refused} refused by decoding and context-free checks, {script_level} script-level (skipped)");
    assert_eq!(refused + script_level, 63);
    assert_eq!(context_free, 9, "the CheckTransaction section");
}
