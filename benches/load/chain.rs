//! B9: the chain watcher keeps up with a mempool of `rate` transactions a second while `M`
//! open invoices (each its own address) are watched. Half the transactions pay a watched
//! invoice's address, half pay elsewhere; each is a real signed transaction handed to the dev
//! chain (`POST /dev/broadcast`), which hints the watcher as BCHN's ZMQ would. Reported: the
//! transactions matched per second and the time from a transaction's broadcast to its
//! invoice's `payment_received` in the outbox (server clock, both on this machine).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cashier::chain::{wallet, Address, Network, OutPoint, Output, Txid};
use cashier::jpp::{Invoice, InvoiceOutput};
use cashier::store::{DatabaseTarget, Store, StoreOptions};
use serde_json::{json, Value};

use super::{post, Conn, Server};

pub struct B9 {
    pub watched: usize,
    pub sent: usize,
    pub matched: usize,
    pub matched_per_s: f64,
    pub latency_ms: Vec<f64>,
}

pub fn store_of(server: &Server) -> Store {
    let target = DatabaseTarget::parse(&server.database_url).expect("target");
    Store::open(
        &target,
        &StoreOptions {
            read_connections: 2,
            postgres_writers: 1,
        },
    )
    .expect("store")
}

pub fn random_address() -> Address {
    Address::p2pkh(Network::Regtest, rand::random())
}

/// `m` open invoices of 1000 sats, each to an address of its own, written straight to the
/// database in batches (the create API would take minutes for a million). Returns the ids
/// and addresses of `keep` of them.
async fn seed(store: &Store, m: usize, keep: usize) -> Vec<(String, Address)> {
    let now = cashier::units::now_ms();
    let mut kept = Vec::new();
    let mut left = m;
    while left > 0 {
        let n = left.min(5000);
        left -= n;
        let batch: Vec<Invoice> = (0..n)
            .map(|_| {
                Invoice::open(
                    vec![InvoiceOutput {
                        address: random_address(),
                        amount: 1000,
                        description: None,
                        token: None,
                    }],
                    now,
                    now + 3_600_000,
                )
            })
            .collect();
        let wanted = keep.saturating_sub(kept.len());
        kept.extend(
            batch
                .iter()
                .take(wanted)
                .map(|inv| (inv.id.to_string(), inv.outputs[0].address.clone())),
        );
        store
            .write(move |c| {
                for inv in &batch {
                    cashier::store::invoices::insert(c, inv, None)?;
                }
                Ok(())
            })
            .await
            .expect("seed");
    }
    kept
}

/// Coins for signed transactions: a key and `n` confirmed outputs of `each` sats it can
/// spend, from faucet coins fanned out 400 to a transaction (a body the dev endpoints take)
/// and one block mined.
pub struct Funded {
    pub secp: bitcoin::secp256k1::Secp256k1<bitcoin::secp256k1::All>,
    pub key: bitcoin::secp256k1::SecretKey,
    pub coins: Vec<(OutPoint, Output)>,
}

pub async fn fund(conn: &mut Conn, server: &Server, key: &str, n: usize, each: u64) -> Funded {
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let wallet_key = wallet::random_key();
    let script = cashier::chain::sighash::p2pkh_locking_bytecode(&wallet_key.public_key(&secp));
    let mut hash = [0u8; 20];
    hash.copy_from_slice(&script[3..23]);
    let own = Address::p2pkh(Network::Regtest, hash);
    let mut coins: Vec<(OutPoint, Output)> = Vec::with_capacity(n);
    for chunk in (0..n).collect::<Vec<_>>().chunks(400) {
        let total = each * chunk.len() as u64 + 100_000;
        let faucet = json!({"address": own.to_cashaddr(false), "amount": total});
        assert_eq!(
            conn.call(&post("/dev/faucet", &server.addr, key, &faucet))
                .await
                .expect("faucet"),
            201
        );
        let coin: Value = serde_json::from_slice(conn.body()).expect("faucet JSON");
        let funding = (
            OutPoint {
                txid: Txid::from_hex(coin["txid"].as_str().expect("txid")).expect("hex"),
                vout: 0,
            },
            Output {
                value: total,
                token: None,
                locking_bytecode: script.clone(),
            },
        );
        let mine = Output {
            value: each,
            token: None,
            locking_bytecode: script.clone(),
        };
        let fan = vec![mine.clone(); chunk.len()];
        let fan_tx =
            wallet::build_payment(&secp, &wallet_key, &[funding], fan, 1000).expect("fan-out");
        let fan_raw = fan_tx.serialize();
        let fan_id = cashier::chain::txid_of(&fan_raw);
        let body = json!({"raw_tx_hex": hex::encode(&fan_raw)});
        assert_eq!(
            conn.call(&post("/dev/broadcast", &server.addr, key, &body))
                .await
                .expect("fan-out"),
            200
        );
        coins.extend((0..chunk.len()).map(|vout| {
            (
                OutPoint {
                    txid: fan_id,
                    vout: vout as u32,
                },
                mine.clone(),
            )
        }));
    }
    assert_eq!(
        conn.call(&post("/dev/mine", &server.addr, key, &json!({"blocks": 1})))
            .await
            .expect("mine"),
        200
    );
    Funded {
        secp,
        key: wallet_key,
        coins,
    }
}

pub async fn b9(server: &Server, key: &str, m: usize, rate: u64, txs: usize) -> B9 {
    let store = store_of(server);
    let targets = seed(&store, m, txs / 2).await;
    let mut conn = Conn::open(&server.addr).await;
    let Funded {
        secp,
        key: wallet_key,
        coins,
    } = fund(&mut conn, server, key, txs, 3000).await;
    // Every transaction signed before the clock starts.
    let mut requests = Vec::with_capacity(txs);
    let mut paying: HashMap<Txid, String> = HashMap::new();
    for (i, coin) in coins.into_iter().enumerate() {
        let (to, invoice) = match targets.get(i / 2).filter(|_| i % 2 == 0) {
            Some((id, address)) => (address.locking_bytecode(), Some(id.clone())),
            None => (random_address().locking_bytecode(), None),
        };
        let out = Output {
            value: 1000,
            token: None,
            locking_bytecode: to,
        };
        let tx = wallet::build_payment(&secp, &wallet_key, &[coin], vec![out], 1000).expect("tx");
        let raw = tx.serialize();
        if let Some(id) = invoice {
            paying.insert(cashier::chain::txid_of(&raw), id);
        }
        requests.push(post(
            "/dev/broadcast",
            &server.addr,
            key,
            &json!({"raw_tx_hex": hex::encode(&raw)}),
        ));
    }
    // Paced: one every 1/rate s, on one keep-alive connection (the node, not the client, is
    // what is measured).
    let mut sent_ms: HashMap<Txid, i64> = HashMap::new();
    let gap = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now();
    let started_ms = cashier::units::now_ms();
    for (i, request) in requests.iter().enumerate() {
        let due = start + gap * i as u32;
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
        let at = cashier::units::now_ms();
        assert_eq!(conn.call(request).await.expect("broadcast"), 200);
        let answer: Value = serde_json::from_slice(conn.body()).expect("JSON");
        if let Some(txid) = answer["txid"].as_str().and_then(Txid::from_hex) {
            sent_ms.insert(txid, at);
        }
    }
    // Wait (bounded) for every target's event, reading the outbox.
    let want = paying.len();
    let deadline = Instant::now() + Duration::from_secs(120);
    let events = loop {
        let events: Vec<(String, i64)> = store
            .read(|c| {
                use cashier::store::schema::events;
                use diesel::prelude::*;
                Ok(events::table
                    .filter(events::kind.eq("payment_received"))
                    .select((events::payload, events::created_ms))
                    .load(c)?)
            })
            .await
            .expect("events");
        if events.len() >= want || Instant::now() > deadline {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut latency_ms = Vec::new();
    let mut last = started_ms;
    for (payload, at) in &events {
        let v: Value = serde_json::from_str(payload).expect("payload");
        let Some(txid) = v["txid"].as_str().and_then(Txid::from_hex) else {
            continue;
        };
        if let (Some(sent), Some(_)) = (sent_ms.get(&txid), paying.get(&txid)) {
            latency_ms.push((at - sent) as f64);
            last = last.max(*at);
        }
    }
    latency_ms.sort_by(f64::total_cmp);
    let matched = latency_ms.len();
    let secs = ((last - started_ms) as f64 / 1000.0).max(0.001);
    B9 {
        watched: m,
        sent: txs,
        matched,
        matched_per_s: matched as f64 / secs,
        latency_ms,
    }
}
