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
