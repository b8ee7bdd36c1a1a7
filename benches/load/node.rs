//! B3n: pay end to end against a node that answers as BCHN does, with the node's latency
//! injected, beside that node's own `sendrawtransaction` called the same way.
//!
//! The node is a stub in this process (`Stub`): HTTP/1.1 keep-alive JSON-RPC, one OS thread per
//! connection, answering `gettxout` (batches too), `testmempoolaccept`, `sendrawtransaction`,
//! `getrawtransaction`, `getmempoolentry` and what the server asks at start and in its chain
//! watcher (`getblockchaininfo`, `getbestblockhash`, `getblockheader`, `getrawmempool`,
//! `getdsproof`), in BCHN's shapes (`reference/anchors.md` §2.1). It keeps a UTXO set and a
//! mempool, so a coin spent is gone and a transaction sent twice is answered as BCHN answers
//! it, but checks no signature: the injected latency stands for the node's own work. Each
//! HTTP request is answered no sooner than its method's latency after it was read; a batch is
//! one request, answered after the longest latency of the methods it holds (one round trip: the
//! latency stands mostly for the trip, and the node's work on a few more read-only calls is
//! small beside it). `std::thread::sleep` is used because tokio's timer rounds up to whole
//! milliseconds.
//!
//! The stub counts HTTP requests by their shape (a single call by its method; a batch by the
//! methods it holds, in order and without repeats, e.g. `gettxout+testmempoolaccept`) and the
//! calls inside them, so the node requests a payment costs are read from the node's side and
//! the server's pay path carries no counter.
//!
//! The server runs with `--chain-poll-every 600` and `--reconcile-every 3600`: the watcher
//! makes its first pass at start and none during the measurement, which the counts show (any
//! method other than the payment's own is printed).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cashier::chain::{txid_of, wallet, Address, Network, OutPoint, Output, Tx, Txid};
use serde_json::{json, Value};

use super::{each_once, post, start_server_with, Conn, Figures, Options, Sample, ADDR};

/// How long the stub takes to answer a request, by its method.
#[derive(Clone, Copy, Debug)]
pub struct Latency {
    pub gettxout: Duration,
    pub send: Duration,
    pub other: Duration,
}

impl Latency {
    fn of(&self, method: &str) -> Duration {
        match method {
            "gettxout" => self.gettxout,
            "sendrawtransaction" => self.send,
            _ => self.other,
        }
    }
}

/// The tip the stub reports: a genesis block of its own.
const TIP: [u8; 32] = [0x11; 32];

struct Coin {
    /// `gettxout`'s whole answer, made when the coin is added, so answering costs a lookup.
    reply: String,
    value: u64,
    spent_by: Option<Txid>,
}

struct MempoolTx {
    raw: Vec<u8>,
    fee: u64,
    time: i64,
}

#[derive(Default)]
struct Chain {
    coins: HashMap<OutPoint, Coin>,
    mempool: HashMap<Txid, MempoolTx>,
}

/// Requests (a batch counts once) and calls (each call of a batch), by the request's shape.
#[derive(Clone, Copy, Default, Debug)]
pub struct Count {
    pub requests: u64,
    pub calls: u64,
}

pub struct Stub {
    pub port: u16,
    state: Arc<State>,
}

struct State {
    latency: Latency,
    chain: Mutex<Chain>,
    counts: Mutex<BTreeMap<String, Count>>,
}

impl Stub {
    pub fn start(latency: Latency) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the node stub");
        let port = listener.local_addr().expect("stub address").port();
        let state = Arc::new(State {
            latency,
            chain: Mutex::default(),
            counts: Mutex::default(),
        });
        let s = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let s = s.clone();
                std::thread::spawn(move || serve(stream, &s));
            }
        });
        Stub { port, state }
    }

    pub fn url(&self) -> String {
        format!("http://bench:bench@127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Adds an unspent, confirmed coin.
    pub fn add_coin(&self, outpoint: OutPoint, output: &Output) {
        let script = hex::encode(&output.locking_bytecode);
        // The bench's coins are P2PKH: the key hash sits at bytes 3 to 23.
        let mut h = [0u8; 20];
        if let Some(bytes) = output.locking_bytecode.get(3..23) {
            h.copy_from_slice(bytes);
        }
        let hash = hex::encode(h);
        let address = Address::p2pkh(Network::Regtest, h).to_cashaddr(false);
        let reply = format!(
            r#"{{"bestblock":"{}","confirmations":1,"value":{},"scriptPubKey":{{"asm":"OP_DUP OP_HASH160 {hash} OP_EQUALVERIFY OP_CHECKSIG","hex":"{script}","reqSigs":1,"type":"pubkeyhash","addresses":["{address}"]}},"coinbase":false}}"#,
            hex::encode(TIP),
            bch(output.value)
        );
        self.state.chain.lock().expect("stub chain").coins.insert(
            outpoint,
            Coin {
                reply,
                value: output.value,
                spent_by: None,
            },
        );
    }

    pub fn counts(&self) -> BTreeMap<String, Count> {
        self.state.counts.lock().expect("stub counts").clone()
    }
}

/// Sats as BCHN prints BCH: `%d.%08d`.
fn bch(sats: u64) -> String {
    format!("{}.{:08}", sats / 100_000_000, sats % 100_000_000)
}

/// One connection: requests answered in turn, each no sooner than its method's latency.
fn serve(stream: TcpStream, state: &State) {
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    loop {
        let mut length = 0usize;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
            if line == "\r\n" {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let read_at = Instant::now();
        let (status, answer, latency) = state.answer(&body);
        // The stub's own work counts inside the latency, as a node's would.
        if let Some(rest) = latency.checked_sub(read_at.elapsed()) {
            std::thread::sleep(rest);
        }
        let reason = match status {
            200 => "OK",
            404 => "Not Found",
            _ => "Internal Server Error",
        };
        let head = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            answer.len()
        );
        if writer.write_all(head.as_bytes()).is_err()
            || writer.write_all(answer.as_bytes()).is_err()
        {
            return;
        }
    }
}

/// A JSON-RPC call's outcome: a result as JSON text, or an error code and message.
type Outcome = Result<String, (i64, String)>;

const METHOD_NOT_FOUND: i64 = -32601;

impl State {
    /// The HTTP status, the body and the latency of the answer to `body`.
    fn answer(&self, body: &[u8]) -> (u16, String, Duration) {
        let request: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        match &request {
            Value::Array(calls) => {
                let mut methods: Vec<&str> = Vec::new();
                for c in calls {
                    let m = c["method"].as_str().unwrap_or("");
                    if !methods.contains(&m) {
                        methods.push(m);
                    }
                }
                self.count(&methods.join("+"), calls.len() as u64);
                let latency = methods
                    .iter()
                    .map(|m| self.latency.of(m))
                    .max()
                    .unwrap_or(self.latency.other);
                let replies: Vec<String> = calls
                    .iter()
                    .map(|c| envelope(self.call(c), &c["id"]).1)
                    .collect();
                // BCHN answers a batch with 200 and each call's error inside it.
                (200, format!("[{}]", replies.join(",")), latency)
            }
            call => {
                let method = call["method"].as_str().unwrap_or("");
                self.count(method, 1);
                let (status, text) = envelope(self.call(call), &call["id"]);
                (status, text, self.latency.of(method))
            }
        }
    }

    fn count(&self, method: &str, calls: u64) {
        let mut counts = self.counts.lock().expect("stub counts");
        let c = counts.entry(method.to_owned()).or_default();
        c.requests += 1;
        c.calls += calls;
    }

    fn call(&self, call: &Value) -> Outcome {
        let params = &call["params"];
        match call["method"].as_str().unwrap_or("") {
            "getblockchaininfo" => Ok(json!({"chain": "regtest", "blocks": 0, "headers": 0,
                "bestblockhash": hex::encode(TIP), "initialblockdownload": false})
            .to_string()),
            "getbestblockhash" => Ok(json!(hex::encode(TIP)).to_string()),
            "getblockheader" if params[0] == json!(hex::encode(TIP)) => Ok(json!({
                "hash": hex::encode(TIP), "confirmations": 1, "height": 0,
                "version": 1, "versionHex": "00000001", "merkleroot": "00".repeat(32),
                "time": 1_700_000_000, "mediantime": 1_700_000_000, "nonce": 0,
                "bits": "207fffff", "difficulty": 4.656542373906925e-10,
                "chainwork": format!("{:064x}", 2), "nTx": 1})
            .to_string()),
            "getblockheader" => Err((-5, "Block not found".into())),
            "getrawmempool" => {
                let chain = self.chain.lock().expect("stub chain");
                let ids: Vec<String> = chain.mempool.keys().map(Txid::to_hex).collect();
                Ok(json!(ids).to_string())
            }
            "getdsproof" => Ok("null".into()),
            "gettxout" => self.gettxout(params),
            "testmempoolaccept" => self.test_accept(params),
            "sendrawtransaction" => self.send(params),
            "getrawtransaction" => self.raw_transaction(params),
            "getmempoolentry" => self.mempool_entry(params),
            _ => Err((METHOD_NOT_FOUND, "Method not found".into())),
        }
    }

    fn gettxout(&self, params: &Value) -> Outcome {
        let (Some(txid), Some(vout)) = (
            params[0].as_str().and_then(Txid::from_hex),
            params[1].as_u64().and_then(|v| u32::try_from(v).ok()),
        ) else {
            return Err((-8, "txid must be of length 64".into()));
        };
        let chain = self.chain.lock().expect("stub chain");
        // With the mempool included (the third parameter), a coin a mempool transaction
        // spends is not there.
        Ok(match chain.coins.get(&OutPoint { txid, vout }) {
            Some(coin) if coin.spent_by.is_none() => coin.reply.clone(),
            _ => "null".into(),
        })
    }

    /// `Ok(fee)` when the node would take `tx`, else BCHN's reason (without its code).
    fn judge(chain: &Chain, tx: &Tx, txid: Txid) -> Result<u64, &'static str> {
        if chain.mempool.contains_key(&txid) {
            return Err("txn-already-in-mempool");
        }
        let mut total_in = 0u64;
        for input in &tx.inputs {
            match chain.coins.get(&input.prevout) {
                None => return Err("missing-inputs"),
                Some(c) if c.spent_by.is_some() => return Err("txn-mempool-conflict"),
                Some(c) => total_in += c.value,
            }
        }
        let total_out: u64 = tx.outputs.iter().map(|o| o.value).sum();
        total_in
            .checked_sub(total_out)
            .ok_or("bad-txns-in-belowout")
    }

    fn decode(params: &Value) -> Result<(Vec<u8>, Tx), (i64, String)> {
        let raw = params
            .as_str()
            .and_then(|h| hex::decode(h).ok())
            .ok_or((-22, "TX decode failed".to_owned()))?;
        let tx = Tx::decode(&raw).map_err(|_| (-22, "TX decode failed".to_owned()))?;
        Ok((raw, tx))
    }

    fn test_accept(&self, params: &Value) -> Outcome {
        let (raw, tx) = Self::decode(&params[0][0])?;
        let txid = txid_of(&raw);
        let chain = self.chain.lock().expect("stub chain");
        let verdict = match Self::judge(&chain, &tx, txid) {
            Ok(_) => json!({"txid": txid.to_hex(), "allowed": true}),
            Err(reason) => {
                let code = if reason == "missing-inputs" {
                    ""
                } else {
                    "18: "
                };
                json!({"txid": txid.to_hex(), "allowed": false, "reject-reason": format!("{code}{reason}")})
            }
        };
        Ok(json!([verdict]).to_string())
    }

    fn send(&self, params: &Value) -> Outcome {
        let (raw, tx) = Self::decode(&params[0])?;
        let txid = txid_of(&raw);
        let mut chain = self.chain.lock().expect("stub chain");
        match Self::judge(&chain, &tx, txid) {
            Ok(fee) => {
                for input in &tx.inputs {
                    if let Some(c) = chain.coins.get_mut(&input.prevout) {
                        c.spent_by = Some(txid);
                    }
                }
                let time = cashier::units::now_ms() / 1000;
                chain.mempool.insert(txid, MempoolTx { raw, fee, time });
                Ok(json!(txid.to_hex()).to_string())
            }
            // BCHN answers the txid again for a transaction already in its mempool.
            Err("txn-already-in-mempool") => Ok(json!(txid.to_hex()).to_string()),
            Err("missing-inputs") => Err((-25, "Missing inputs".into())),
            Err(reason) => Err((-26, format!("{reason} (code 18)"))),
        }
    }

    fn raw_transaction(&self, params: &Value) -> Outcome {
        let chain = self.chain.lock().expect("stub chain");
        let found = params[0]
            .as_str()
            .and_then(Txid::from_hex)
            .and_then(|t| chain.mempool.get(&t).map(|m| (t, m)));
        let Some((txid, m)) = found else {
            return Err((
                -5,
                "No such mempool or blockchain transaction. Use gettransaction for wallet transactions.".into(),
            ));
        };
        let hex = hex::encode(&m.raw);
        Ok(if params[1].as_bool().unwrap_or(false) {
            json!({"txid": txid.to_hex(), "hash": txid.to_hex(), "size": m.raw.len(), "hex": hex})
                .to_string()
        } else {
            json!(hex).to_string()
        })
    }

    fn mempool_entry(&self, params: &Value) -> Outcome {
        let chain = self.chain.lock().expect("stub chain");
        let Some(m) = params[0]
            .as_str()
            .and_then(Txid::from_hex)
            .and_then(|t| chain.mempool.get(&t))
        else {
            return Err((-5, "Transaction not in mempool".into()));
        };
        let fee = bch(m.fee);
        Ok(format!(
            r#"{{"size":{},"time":{},"fees":{{"base":{fee},"modified":{fee}}},"depends":[],"spentby":[]}}"#,
            m.raw.len(),
            m.time
        ))
    }
}

/// A JSON-RPC reply object and the HTTP status BCHN sends it with when it is alone: 200 for a
/// result, 404 for an unknown method, 500 for any other error.
fn envelope(outcome: Outcome, id: &Value) -> (u16, String) {
    match outcome {
        Ok(result) => (
            200,
            format!(r#"{{"result":{result},"error":null,"id":{id}}}"#),
        ),
        Err((code, message)) => {
            let status = if code == METHOD_NOT_FOUND { 404 } else { 500 };
            let error =
                json!({"result": null, "error": {"code": code, "message": message}, "id": id});
            (status, error.to_string())
        }
    }
}

/// `k` signed payments of 10,000 sats to ADDR, each spending `inputs` fresh coins that the
/// stub now holds.
fn payments(stub: &Stub, k: usize, inputs: usize) -> Vec<Vec<u8>> {
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let key = wallet::random_key();
    let script = cashier::chain::sighash::p2pkh_locking_bytecode(&key.public_key(&secp));
    let pay_to = Address::parse(ADDR, Network::Regtest)
        .expect("address")
        .locking_bytecode();
    // 20,000 sats in all, whatever the number of coins: the fee and change stay alike.
    let each = 20_000 / inputs as u64;
    (0..k)
        .map(|_| {
            let coins: Vec<(OutPoint, Output)> = (0..inputs)
                .map(|_| {
                    let coin = (
                        OutPoint {
                            txid: Txid(rand::random()),
                            vout: 0,
                        },
                        Output {
                            value: each,
                            token: None,
                            locking_bytecode: script.clone(),
                        },
                    );
                    stub.add_coin(coin.0, &coin.1);
                    coin
                })
                .collect();
            let pay = Output {
                value: 10_000,
                token: None,
                locking_bytecode: pay_to.clone(),
            };
            wallet::build_payment(&secp, &key, &coins, vec![pay], 1000)
                .expect("payment")
                .serialize()
        })
        .collect()
}

/// `k` invoices of 10,000 sats to ADDR, and the pay request for each of `txs`.
async fn pay_requests(addr: &str, key: &str, txs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut conn = Conn::open(addr).await;
    let mut requests = Vec::with_capacity(txs.len());
    for tx in txs {
        let body = json!({"outputs": [{"address": ADDR, "amount": 10_000}], "memo": "bench"});
        assert_eq!(
            conn.call(&post("/api/jpp/invoices/", addr, key, &body))
                .await
                .expect("create"),
            201
        );
        let invoice: Value = serde_json::from_slice(conn.body()).expect("invoice JSON");
        let id = invoice["payment_id"].as_str().expect("id");
        let body = json!({"raw_tx_hex": hex::encode(tx)});
        requests.push(post(
            &format!("/api/jpp/invoices/{id}/pay/"),
            addr,
            key,
            &body,
        ));
    }
    requests
}

/// `sendrawtransaction` of each of `txs`, as JSON-RPC requests to the stub.
fn send_requests(stub: &Stub, txs: &[Vec<u8>]) -> Vec<Vec<u8>> {
    txs.iter()
        .enumerate()
        .map(|(n, tx)| {
            let body = json!({"jsonrpc": "1.0", "id": n, "method": "sendrawtransaction",
                "params": [hex::encode(tx)]})
            .to_string();
            let mut r = format!(
                "POST / HTTP/1.1\r\nHost: {}\r\nAuthorization: Basic YmVuY2g6YmVuY2g=\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                stub.addr(),
                body.len()
            )
            .into_bytes();
            r.extend_from_slice(body.as_bytes());
            r
        })
        .collect()
}

/// The counts in `after` less those in `before`.
fn since(
    before: &BTreeMap<String, Count>,
    after: &BTreeMap<String, Count>,
) -> BTreeMap<String, Count> {
    after
        .iter()
        .map(|(m, a)| {
            let b = before.get(m).copied().unwrap_or_default();
            (
                m.clone(),
                Count {
                    requests: a.requests - b.requests,
                    calls: a.calls - b.calls,
                },
            )
        })
        .filter(|(_, c)| c.requests > 0)
        .collect()
}

/// B3n on `db`: for each input count and each concurrency, `o.runs` runs of `o.payments`
/// payments through the server, then as many `sendrawtransaction`s straight to the stub.
pub fn b3n(o: &Options, runtime: &tokio::runtime::Runtime, db: &str, figures: &mut Vec<Value>) {
    let stub = Stub::start(o.node_latency);
    let url = stub.url();
    let (server, key) = start_server_with(
        db,
        &[
            "--node",
            "bchn",
            "--node-url",
            url.as_str(),
            "--network",
            "regtest",
            "--chain-poll-every",
            "600",
            "--reconcile-every",
            "3600",
        ],
    );
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let l = o.node_latency;
    println!(
        "B3n node stub latency: gettxout {:.2} ms, sendrawtransaction {:.2} ms, other calls {:.2} ms",
        ms(l.gettxout),
        ms(l.send),
        ms(l.other)
    );
    runtime.block_on(async {
        for &inputs in &o.b3n_inputs {
            for &concurrency in &o.b3n_concurrency {
                let mut pay = Figures::new();
                let mut send = Figures::new();
                let mut per_payment: BTreeMap<String, Count> = BTreeMap::new();
                let mut paid = 0u64;
                for _ in 0..o.runs {
                    let txs = payments(&stub, o.payments, inputs);
                    let requests = Arc::new(pay_requests(&server.addr, &key, &txs).await);
                    let before = stub.counts();
                    let sample: Sample = each_once(&server.addr, requests, concurrency).await;
                    paid += sample.ok;
                    for (m, c) in since(&before, &stub.counts()) {
                        let e = per_payment.entry(m).or_default();
                        e.requests += c.requests;
                        e.calls += c.calls;
                    }
                    pay.add(sample);
                    let txs = payments(&stub, o.payments, inputs);
                    let direct = Arc::new(send_requests(&stub, &txs));
                    send.add(each_once(&stub.addr(), direct, concurrency).await);
                }
                let what = format!("{inputs} in, c{concurrency}");
                let p = pay.report("B3n", &format!("pay, {what}"), db);
                let s = send.report("B3n", &format!("stub sendraw, {what}"), db);
                let ratio = p["p50_ms"].as_f64().unwrap_or(f64::NAN)
                    / s["p50_ms"].as_f64().unwrap_or(f64::NAN);
                let per = |n: u64| n as f64 / paid.max(1) as f64;
                let shapes: Vec<String> = per_payment
                    .iter()
                    .map(|(m, c)| {
                        if c.calls == c.requests {
                            format!("{m} {:.2}", per(c.requests))
                        } else {
                            format!("{m} {:.2} ({:.2} calls)", per(c.requests), per(c.calls))
                        }
                    })
                    .collect();
                let requests: u64 = per_payment.values().map(|c| c.requests).sum();
                println!(
                    "B3n {what:<10} {db:<8} pay p50 / sendrawtransaction p50 = {ratio:.2}   node requests per payment: {:.2} ({})",
                    per(requests),
                    shapes.join(", ")
                );
                let counts: Value = per_payment
                    .iter()
                    .map(|(m, c)| {
                        (
                            m.clone(),
                            json!({"requests": c.requests as f64 / paid.max(1) as f64,
                                   "calls": c.calls as f64 / paid.max(1) as f64}),
                        )
                    })
                    .collect::<serde_json::Map<_, _>>()
                    .into();
                figures.push(p);
                figures.push(s);
                figures.push(json!({"id": "B3n", "what": "ratio", "db": db, "inputs": inputs,
                    "concurrency": concurrency, "pay_p50_over_sendraw_p50": ratio,
                    "node_requests_per_payment": per(requests),
                    "node_per_payment": counts,
                    "latency_ms": {"gettxout": ms(l.gettxout), "sendrawtransaction": ms(l.send), "other": ms(l.other)}}));
            }
        }
    });
}
