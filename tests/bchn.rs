//! `BchnClient` against a stub of BCHN's RPC server: a small HTTP/1.1 responder on
//! 127.0.0.1 that answers the way BCHN does (`reference/anchors.md` §2.1 and BCHN's
//! `httprpc.cpp`): results with HTTP 200, JSON-RPC errors with HTTP 500 (404 for an unknown
//! method) and a JSON body, a full work queue as HTTP 500 with plain text, bad credentials
//! as HTTP 401 with an empty body. The stub records every request it receives, so the tests
//! also check what the client sent. Nothing waits on a clock: tests synchronise on the
//! requests the stub reports.
//!
//! At the end, the chain watcher end to end: the real server on a stub that holds a small
//! chain (blocks linked by hash, a mempool, double-spend proofs) and a PUB socket sending
//! BCHN's ZMQ hints. Those tests synchronise on the invoice's socket events, the stub's
//! calls, or a bounded read loop on the server's state.

// Test code: a panic is a failed check, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

use cashier::chain::bchn::{sats_from_bch_text, BchnClient, ZmqHints};
use cashier::chain::block::{header_hash, merkle_root_of};
use cashier::chain::node::{
    Acceptance, Broadcast, Coin, CoinsAndAcceptance, NodeError, RejectKind, Rejection, TxStatus,
};
use cashier::chain::watch::{BlockHash, ChainSource, ChainTx, DsProof, Header, Notice};
use cashier::chain::{
    txid_of, Input, Network, Nft, NftCapability, OutPoint, Output, TokenData, Tx, Txid, MAX_INPUTS,
    MAX_MONEY_SATS,
};
use cashier::outbound::Outbound;
use zeromq::{PubSocket, Socket, SocketSend, ZmqMessage};

#[path = "common/keys.rs"]
mod keys;
#[path = "common/tls.rs"]
mod tls;
use tls::{Crossed, TlsProxy};

const USER: &str = "alice";
const PASSWORD: &str = "s3cret-pw";
/// `Basic base64("alice:s3cret-pw")`.
const AUTH: &str = "Basic YWxpY2U6czNjcmV0LXB3";

// ---------------------------------------------------------------------------------------------
// The stub
// ---------------------------------------------------------------------------------------------

/// How the stub answers one call.
enum Reply {
    /// A result, as raw JSON text (so amounts go out exactly as BCHN prints them).
    Result(String),
    /// A JSON-RPC error object.
    Error(i64, String),
    /// A whole HTTP answer that is not a JSON-RPC reply: status, content type, body.
    Http(u16, &'static str, String),
    /// Read the request, then never answer.
    Hang,
    /// Read the request, then close the connection without answering.
    Close,
}

fn ok(v: Value) -> Reply {
    Reply::Result(v.to_string())
}

fn err(code: i64, message: &str) -> Reply {
    Reply::Error(code, message.to_string())
}

/// One HTTP request as the stub received it.
#[derive(Debug, Clone)]
struct Seen {
    request_line: String,
    headers: Vec<(String, String)>,
    body: Value,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The single call of a non-batch request: (method, params).
    fn call(&self) -> (&str, &Value) {
        let method = self.body["method"].as_str().expect("a method name");
        (method, &self.body["params"])
    }
}

type Handler = Arc<dyn Fn(&str, &Value) -> Reply + Send + Sync>;

/// Holds requests until the test lets them through, counting how many wait at once.
struct Gate {
    closed: bool,
    release: Semaphore,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

struct Stub {
    port: u16,
    seen: mpsc::UnboundedReceiver<Seen>,
    gate: Arc<Gate>,
}

impl Stub {
    async fn start(handler: impl Fn(&str, &Value) -> Reply + Send + Sync + 'static) -> Stub {
        Stub::spawn(Arc::new(handler), false).await
    }

    /// A stub whose requests wait until [`Stub::release`] lets them through.
    async fn gated(handler: impl Fn(&str, &Value) -> Reply + Send + Sync + 'static) -> Stub {
        Stub::spawn(Arc::new(handler), true).await
    }

    async fn spawn(handler: Handler, closed: bool) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let (tx, seen) = mpsc::unbounded_channel();
        let gate = Arc::new(Gate {
            closed,
            release: Semaphore::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
        });
        let g = gate.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, handler.clone(), tx.clone(), g.clone()));
            }
        });
        Stub { port, seen, gate }
    }

    fn url(&self) -> String {
        format!("http://{USER}:{PASSWORD}@127.0.0.1:{}", self.port)
    }

    fn client(&self) -> BchnClient {
        BchnClient::new(&self.url(), 4, Duration::from_secs(30), &outbound()).expect("client")
    }

    /// The next request the stub receives (waits for it).
    async fn next(&mut self) -> Seen {
        self.seen.recv().await.expect("the stub stopped")
    }

    /// Every request received so far. The stub records a request before answering it, so
    /// after a call has its answer, all its requests are here.
    fn drain(&mut self) -> Vec<Seen> {
        let mut out = Vec::new();
        while let Ok(s) = self.seen.try_recv() {
            out.push(s);
        }
        out
    }

    fn release(&self, n: usize) {
        self.gate.release.add_permits(n);
    }

    fn max_in_flight(&self) -> usize {
        self.gate.max_in_flight.load(Ordering::SeqCst)
    }
}

/// One connection: HTTP/1.1 with keep-alive, requests answered in turn.
async fn serve(
    mut stream: TcpStream,
    handler: Handler,
    seen: mpsc::UnboundedSender<Seen>,
    gate: Arc<Gate>,
) {
    let mut buf = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buf).await else {
            return;
        };
        if gate.closed {
            let now = gate.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            gate.max_in_flight.fetch_max(now, Ordering::SeqCst);
        }
        let _ = seen.send(request.clone());
        if gate.closed {
            if let Ok(permit) = gate.release.acquire().await {
                permit.forget();
            }
            // Counted out before the answer is written: once the client has read it, it may
            // send another request, which must not find this one still counted.
            gate.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        let answer = match &request.body {
            Value::Array(calls) => {
                let mut replies = Vec::new();
                let mut whole = None;
                for call in calls {
                    let reply = handler(call["method"].as_str().unwrap_or(""), &call["params"]);
                    match envelope(reply, &call["id"]) {
                        Ok((_, object)) => replies.push(object),
                        Err(other) => {
                            whole = Some(other);
                            break;
                        }
                    }
                }
                // JSON-RPC does not order batch replies: answer backwards so the client must
                // match them by id.
                replies.reverse();
                whole.unwrap_or_else(|| {
                    Reply::Http(200, "application/json", format!("[{}]", replies.join(",")))
                })
            }
            call => {
                let reply = handler(call["method"].as_str().unwrap_or(""), &call["params"]);
                match envelope(reply, &call["id"]) {
                    Ok((status, object)) => Reply::Http(status, "application/json", object),
                    Err(other) => other,
                }
            }
        };
        match answer {
            Reply::Http(status, content_type, body) => {
                let mut head = format!(
                    "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
                    reason_phrase(status),
                    body.len()
                );
                if status == 401 {
                    head.push_str("WWW-Authenticate: Basic realm=\"jsonrpc\"\r\n");
                }
                head.push_str("\r\n");
                if stream.write_all(head.as_bytes()).await.is_err()
                    || stream.write_all(body.as_bytes()).await.is_err()
                {
                    return;
                }
            }
            Reply::Hang => {
                // Keep the connection open and say nothing until the test ends.
                std::future::pending::<()>().await;
            }
            _ => return, // Close: drop the connection unanswered.
        }
    }
}

/// A JSON-RPC reply object (as text, so result numbers keep their exact text) and the
/// status BCHN sends it with, or the reply itself when it is not one.
fn envelope(reply: Reply, id: &Value) -> Result<(u16, String), Reply> {
    match reply {
        Reply::Result(text) => Ok((
            200,
            format!(r#"{{"result":{text},"error":null,"id":{id}}}"#),
        )),
        Reply::Error(code, message) => {
            let status = if code == -32601 { 404 } else { 500 };
            let error =
                json!({"result": null, "error": {"code": code, "message": message}, "id": id});
            Ok((status, error.to_string()))
        }
        other => Err(other),
    }
}

async fn read_request(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Seen> {
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        fill(stream, buf).await?;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        fill(stream, buf).await?;
    }
    let body = serde_json::from_slice(&buf[head_end..head_end + length]).unwrap_or(Value::Null);
    buf.drain(..head_end + length);
    Some(Seen {
        request_line,
        headers,
        body,
    })
}

async fn fill(stream: &mut TcpStream, buf: &mut Vec<u8>) -> Option<()> {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => None,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            Some(())
        }
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        _ => "Status",
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn txid(byte: u8) -> Txid {
    Txid([byte; 32])
}

/// Some transaction bytes; the stub never parses them, the client only hex-encodes them.
fn raw_tx(tag: u8) -> Vec<u8> {
    let mut raw = vec![0x02, 0x00, 0x00, 0x00, 0x01];
    raw.extend_from_slice(&[tag; 32]);
    raw.extend_from_slice(&[0; 4]);
    raw.extend_from_slice(&[0x00, 0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00]);
    raw
}

/// The TLS setup Cashier makes without --extra-ca-file (what plain http:// ignores).
fn outbound() -> Outbound {
    Outbound::new(None).expect("the TLS setup")
}

/// Every message must be free of the password, whatever went wrong.
fn message(e: &NodeError) -> String {
    let text = e.to_string();
    assert!(!text.contains(PASSWORD), "the password leaked: {text}");
    text
}

fn unavailable(r: Result<impl std::fmt::Debug, NodeError>) -> String {
    match r {
        Err(e @ NodeError::Unavailable(_)) => message(&e),
        other => panic!("expected Unavailable, got {other:?}"),
    }
}

fn timeout(r: Result<impl std::fmt::Debug, NodeError>) -> String {
    match r {
        Err(e @ NodeError::Timeout(_)) => message(&e),
        other => panic!("expected Timeout, got {other:?}"),
    }
}

fn protocol(r: Result<impl std::fmt::Debug, NodeError>) -> String {
    match r {
        Err(e @ NodeError::Protocol(_)) => message(&e),
        other => panic!("expected Protocol, got {other:?}"),
    }
}

fn p2pkh() -> Vec<u8> {
    let mut script = vec![0x76, 0xa9, 0x14];
    script.extend_from_slice(&[0x11; 20]);
    script.extend_from_slice(&[0x88, 0xac]);
    script
}

/// `gettxout`'s answer for a coin, with the value spliced in as raw number text.
fn txout(value: &str, confirmations: u32, token: Option<Value>) -> Reply {
    let mut body = format!(
        r#"{{"bestblock":"{}","confirmations":{confirmations},"value":{value},"scriptPubKey":{{"asm":"OP_DUP OP_HASH160 1111111111111111111111111111111111111111 OP_EQUALVERIFY OP_CHECKSIG","hex":"{}","reqSigs":1,"type":"pubkeyhash","addresses":["bchreg:qqg3zyg3zyg3zyg3zyg3zyg3zyg3zyg3zy3ma6dsup"]}}"#,
        "00".repeat(32),
        hex::encode(p2pkh())
    );
    if let Some(token) = token {
        body.push_str(&format!(r#","tokenData":{token}"#));
    }
    body.push_str(r#","coinbase":false}"#);
    Reply::Result(body)
}

// ---------------------------------------------------------------------------------------------
// Requests, network, credentials
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn network_sends_a_well_formed_request_and_reads_the_chain() {
    for (chain, network) in [
        ("main", Network::Main),
        ("test", Network::Test),
        ("test4", Network::Test),
        ("chip", Network::Test),
        ("scale", Network::Test),
        ("regtest", Network::Regtest),
    ] {
        let mut stub = Stub::start(move |method, _| match method {
            "getblockchaininfo" => ok(json!({"chain": chain, "blocks": 101, "headers": 101})),
            _ => err(-32601, "Method not found"),
        })
        .await;
        assert_eq!(stub.client().network().await, Ok(network), "{chain}");

        let seen = stub.drain();
        assert_eq!(seen.len(), 1);
        let request = &seen[0];
        assert_eq!(request.request_line, "POST / HTTP/1.1");
        assert_eq!(request.header("authorization"), Some(AUTH));
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_eq!(request.body["jsonrpc"], "1.0");
        assert!(request.body["id"].is_u64(), "{:?}", request.body);
        assert_eq!(request.call(), ("getblockchaininfo", &json!([])));
    }
}

#[tokio::test]
async fn a_chain_cashier_does_not_know_is_a_protocol_error() {
    let stub = Stub::start(|_, _| ok(json!({"chain": "bitcoin-sv"}))).await;
    let text = protocol(stub.client().network().await);
    assert!(text.contains("bitcoin-sv"), "{text}");
}

#[tokio::test]
async fn a_node_still_loading_is_unavailable() {
    let stub = Stub::start(|_, _| err(-28, "Loading block index...")).await;
    let text = unavailable(stub.client().network().await);
    assert!(text.contains("Loading block index"), "{text}");
}

#[tokio::test]
async fn percent_escaped_credentials_become_basic_auth() {
    let mut stub = Stub::start(|_, _| ok(json!({"chain": "regtest"}))).await;
    let url = format!("http://bob:p%40ss%3Aw%2Frd@127.0.0.1:{}", stub.port);
    let client = BchnClient::new(&url, 1, Duration::from_secs(30), &outbound()).expect("client");
    assert_eq!(client.network().await, Ok(Network::Regtest));
    // base64("bob:p@ss:w/rd")
    assert_eq!(
        stub.next().await.header("authorization"),
        Some("Basic Ym9iOnBAc3M6dy9yZA==")
    );
}

#[tokio::test]
async fn bad_credentials_are_unavailable_and_never_show_the_password() {
    let mut stub = Stub::start(|_, _| Reply::Http(401, "text/html", String::new())).await;
    let client = stub.client();
    let text = unavailable(client.network().await);
    assert!(text.contains("authentication failed"), "{text}");
    assert!(text.contains("--node-url"), "{text}");
    assert_eq!(stub.next().await.header("authorization"), Some(AUTH));

    // Nor anywhere else the client can be shown.
    assert!(!format!("{client:?}").contains(PASSWORD));
    assert!(!client.endpoint().contains(PASSWORD));
    assert!(!client.endpoint().contains(USER));
    let text = unavailable(client.broadcast(&raw_tx(1)).await);
    assert!(text.contains("authentication failed"), "{text}");
}

#[tokio::test]
async fn a_url_without_credentials_is_told_to_add_them() {
    let mut stub = Stub::start(|_, _| Reply::Http(401, "text/html", String::new())).await;
    let client = BchnClient::new(
        &format!("http://127.0.0.1:{}", stub.port),
        1,
        Duration::from_secs(30),
        &outbound(),
    )
    .expect("client");
    let text = unavailable(client.network().await);
    assert!(text.contains("USER:PASSWORD"), "{text}");
    assert_eq!(stub.next().await.header("authorization"), None);
}

#[test]
fn invalid_settings_are_refused_without_echoing_the_password() {
    for url in [
        format!("http://{USER}:{PASSWORD}@127.0.0.1:notaport"),
        format!("ftp://{USER}:{PASSWORD}@127.0.0.1:8332"),
        format!("{USER}:{PASSWORD}@127.0.0.1:8332"),
        format!("http://{USER}:{PASSWORD}%zz@127.0.0.1:8332"),
    ] {
        match BchnClient::new(&url, 4, Duration::from_secs(1), &outbound()) {
            Err(e @ NodeError::Protocol(_)) => {
                message(&e);
            }
            other => panic!("{url}: expected Protocol, got {other:?}"),
        }
    }
    let url = format!("http://{USER}:{PASSWORD}@127.0.0.1:8332");
    assert!(BchnClient::new(&url, 0, Duration::from_secs(1), &outbound()).is_err());
    assert!(BchnClient::new(&url, 4, Duration::ZERO, &outbound()).is_err());
    assert!(BchnClient::new(&url, 4, Duration::from_secs(1), &outbound()).is_ok());
}

// ---------------------------------------------------------------------------------------------
// Transport failures
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_full_work_queue_is_unavailable() {
    let stub = Stub::start(|_, _| {
        Reply::Http(
            500,
            "text/html; charset=ISO-8859-1",
            "Work queue depth exceeded".into(),
        )
    })
    .await;
    let text = unavailable(stub.client().broadcast(&raw_tx(1)).await);
    assert!(text.contains("work queue"), "{text}");
    let text = unavailable(stub.client().test_accept(&raw_tx(1)).await);
    assert!(text.contains("work queue"), "{text}");
}

#[tokio::test]
async fn other_non_json_5xx_is_unavailable() {
    let stub = Stub::start(|_, _| Reply::Http(502, "text/plain", "Bad Gateway".into())).await;
    let text = unavailable(stub.client().network().await);
    assert!(text.contains("502"), "{text}");
}

#[tokio::test]
async fn answers_that_are_not_json_rpc_are_protocol_errors() {
    let stub = Stub::start(|_, _| Reply::Http(200, "text/html", "<html>hello</html>".into())).await;
    protocol(stub.client().network().await);

    let stub = Stub::start(|_, _| Reply::Http(404, "text/html", "Not Found".into())).await;
    let text = protocol(stub.client().network().await);
    assert!(text.contains("404"), "{text}");

    // An answer to some other id is not ours.
    let stub = Stub::start(|_, _| {
        Reply::Http(
            200,
            "application/json",
            r#"{"result":{"chain":"main"},"error":null,"id":987654321}"#.into(),
        )
    })
    .await;
    protocol(stub.client().network().await);

    // A result of the wrong shape.
    let stub = Stub::start(|_, _| ok(json!({"blocks": 1}))).await;
    protocol(stub.client().network().await);
}

#[tokio::test]
async fn an_unknown_method_is_a_protocol_error() {
    let stub = Stub::start(|_, _| err(-32601, "Method not found")).await;
    let text = protocol(stub.client().tx_status(txid(1)).await);
    assert!(text.contains("getrawtransaction"), "{text}");
}

#[tokio::test]
async fn a_closed_port_is_unavailable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    }; // dropped: nothing listens there now
    let url = format!("http://{USER}:{PASSWORD}@127.0.0.1:{port}");
    let client = BchnClient::new(&url, 4, Duration::from_secs(30), &outbound()).expect("client");
    let text = unavailable(client.broadcast(&raw_tx(1)).await);
    assert!(text.contains("cannot connect"), "{text}");
}

#[tokio::test]
async fn a_node_that_never_answers_is_a_timeout() {
    let mut stub = Stub::start(|_, _| Reply::Hang).await;
    let client =
        BchnClient::new(&stub.url(), 4, Duration::from_millis(300), &outbound()).expect("client");
    timeout(client.broadcast(&raw_tx(1)).await);
    // The request did reach the node: hence "ambiguous", not "unavailable".
    assert_eq!(stub.next().await.call().0, "sendrawtransaction");
}

#[tokio::test]
async fn a_connection_reset_after_sending_is_a_timeout() {
    let mut stub = Stub::start(|_, _| Reply::Close).await;
    let text = timeout(stub.client().broadcast(&raw_tx(1)).await);
    assert!(text.contains("may still have taken effect"), "{text}");
    assert_eq!(stub.next().await.call().0, "sendrawtransaction");
}

// ---------------------------------------------------------------------------------------------
// Over TLS: https:// to a TLS-terminating proxy in front of the stub, with a CA of the test's
// own (tests/common/tls.rs)
// ---------------------------------------------------------------------------------------------

/// The stub behind a TLS proxy whose certificate, issued by `ca`, is for `names`.
async fn behind_tls(stub: &Stub, ca: &tls::Ca, names: &[&str]) -> TlsProxy {
    TlsProxy::start(&ca.leaf(names), ([127, 0, 0, 1], stub.port).into()).await
}

fn https_client(proxy: &TlsProxy, outbound: &Outbound) -> BchnClient {
    let url = proxy.url(Some(&format!("{USER}:{PASSWORD}")));
    BchnClient::new(&url, 4, Duration::from_secs(30), outbound).expect("client")
}

#[tokio::test]
async fn https_reaches_the_node_through_a_proxy_trusted_by_the_extra_ca_file() {
    let mut stub = Stub::start(|_, _| ok(json!({"chain": "regtest"}))).await;
    let ca = tls::Ca::new();
    let mut proxy = behind_tls(&stub, &ca, &["127.0.0.1", "localhost"]).await;
    let outbound = Outbound::new(Some(ca.pem_file())).expect("the CA's file");
    let client = https_client(&proxy, &outbound);
    assert_eq!(client.network().await, Ok(Network::Regtest));
    let seen = stub.next().await;
    assert_eq!(seen.call().0, "getblockchaininfo");
    assert_eq!(seen.header("authorization"), Some(AUTH));
    assert_eq!(
        proxy.next().await,
        Crossed::Request("POST / HTTP/1.1".into())
    );
    assert!(
        client.endpoint().starts_with("https://127.0.0.1:"),
        "{}",
        client.endpoint()
    );
    assert!(!client.endpoint().contains(PASSWORD));
    assert!(!format!("{client:?}").contains(PASSWORD));

    // The certificate's other name works the same.
    let url = format!("https://{USER}:{PASSWORD}@localhost:{}", proxy.port);
    let by_name = BchnClient::new(&url, 4, Duration::from_secs(30), &outbound).expect("client");
    assert_eq!(by_name.network().await, Ok(Network::Regtest));
    assert_eq!(stub.next().await.call().0, "getblockchaininfo");
}

#[tokio::test]
async fn https_to_a_certificate_of_an_unknown_ca_is_unavailable_and_sends_nothing() {
    let mut stub = Stub::start(|_, _| ok(json!({"chain": "regtest"}))).await;
    let ca = tls::Ca::new();
    let mut proxy = behind_tls(&stub, &ca, &["127.0.0.1"]).await;
    let another_ca = tls::Ca::new();
    // The compiled-in and system roots alone, then with another private CA's file.
    for outbound in [
        Outbound::new(None),
        Outbound::new(Some(another_ca.pem_file())),
    ] {
        let client = https_client(&proxy, &outbound.expect("the TLS setup"));
        let text = unavailable(client.broadcast(&raw_tx(1)).await);
        assert!(text.contains("not signed by a CA trusted here"), "{text}");
        assert!(text.contains("--extra-ca-file"), "{text}");
        assert!(text.contains(client.endpoint()), "{text}");
        // The proxy's side of the same handshake.
        let refused = proxy.next().await;
        assert!(matches!(refused, Crossed::Refused(_)), "{refused:?}");
    }
    // No request crossed the proxy, so the node saw nothing.
    let crossed = proxy.drain();
    assert!(
        crossed.iter().all(|c| matches!(c, Crossed::Refused(_))),
        "{crossed:?}"
    );
    assert!(stub.drain().is_empty());
}

#[tokio::test]
async fn https_to_a_certificate_for_another_name_is_unavailable_and_sends_nothing() {
    let mut stub = Stub::start(|_, _| ok(json!({"chain": "regtest"}))).await;
    let ca = tls::Ca::new();
    let mut proxy = behind_tls(&stub, &ca, &["node.example"]).await;
    let outbound = Outbound::new(Some(ca.pem_file())).expect("the CA's file");
    let client = https_client(&proxy, &outbound);
    let text = unavailable(client.network().await);
    assert!(text.contains("for another name"), "{text}");
    let refused = proxy.next().await;
    assert!(matches!(refused, Crossed::Refused(_)), "{refused:?}");
    let crossed = proxy.drain();
    assert!(
        crossed.iter().all(|c| matches!(c, Crossed::Refused(_))),
        "{crossed:?}"
    );
    assert!(stub.drain().is_empty());
}

#[tokio::test]
async fn https_to_a_plain_http_server_says_so() {
    // A plain HTTP server (a proxy's plain port, say) answers a TLS hello as a bad request.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut hello = [0u8; 512];
            let _ = stream.read(&mut hello).await;
            let _ = stream
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
        }
    });
    let url = format!("https://{USER}:{PASSWORD}@127.0.0.1:{port}");
    let client = BchnClient::new(&url, 4, Duration::from_secs(30), &outbound()).expect("client");
    let text = unavailable(client.network().await);
    assert!(text.contains("plain http"), "{text}");
}

/// `--extra-ca-file` reaches the node client: the server learns the network from the node
/// over https:// with it, and cannot without it.
#[tokio::test]
async fn the_server_reaches_its_node_over_https_with_the_extra_ca_file_only() {
    let mut stub = Stub::start(|_, _| ok(json!({"chain": "regtest"}))).await;
    let ca = tls::Ca::new();
    let proxy = behind_tls(&stub, &ca, &["127.0.0.1"]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let db = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("c.sqlite").display()
    );
    let node_url = proxy.url(Some(&format!("{USER}:{PASSWORD}")));
    let ca_file = ca.pem_file().display().to_string();
    let base = [
        "cashier serve",
        "--listen",
        "127.0.0.1:0",
        "--database-url",
        &db,
        "--node",
        "bchn",
        "--node-url",
        &node_url,
    ];
    use clap::Parser;
    let settings = |extra: &[&str]| {
        cashier::config::Settings::try_parse_from(base.iter().chain(extra)).expect("settings")
    };
    let Err(e) = cashier::app::Application::build(&settings(&[])).await else {
        panic!("started without trusting the node's certificate");
    };
    let e = e.to_string();
    assert!(e.contains("cannot learn the network"), "{e}");
    assert!(e.contains("--extra-ca-file"), "{e}");
    assert!(!e.contains(PASSWORD), "{e}");
    assert!(stub.drain().is_empty());

    let app = cashier::app::Application::build(&settings(&["--extra-ca-file", &ca_file]))
        .await
        .expect("the server starts");
    assert_eq!(stub.next().await.call().0, "getblockchaininfo");
    drop(app);
}

// ---------------------------------------------------------------------------------------------
// testmempoolaccept
// ---------------------------------------------------------------------------------------------

fn verdict(raw: &[u8], allowed: bool, reason: Option<&str>) -> Reply {
    let mut v = json!({"txid": txid_of(raw).to_hex(), "allowed": allowed});
    if let Some(reason) = reason {
        v["reject-reason"] = json!(reason);
    }
    ok(json!([v]))
}

/// How the stub answers a case's raw transaction.
type Answer = Box<dyn Fn(&[u8]) -> Reply + Send + Sync>;

fn rejected(kind: RejectKind, reason: &str) -> Rejection {
    Rejection {
        kind,
        reason: reason.to_string(),
    }
}

#[tokio::test]
async fn test_accept_maps_each_of_bchns_verdicts() {
    // (verdict or error, what the client must make of it)
    let cases: Vec<(Answer, Acceptance)> = vec![
        (Box::new(|r| verdict(r, true, None)), Acceptance::Allowed),
        (
            Box::new(|r| verdict(r, false, Some("18: txn-mempool-conflict"))),
            Acceptance::Rejected(rejected(RejectKind::Conflict, "txn-mempool-conflict")),
        ),
        (
            Box::new(|r| verdict(r, false, Some("66: min relay fee not met"))),
            Acceptance::Rejected(rejected(RejectKind::Invalid, "min relay fee not met")),
        ),
        (
            Box::new(|r| verdict(r, false, Some("64: dust"))),
            Acceptance::Rejected(rejected(RejectKind::Invalid, "dust")),
        ),
        (
            Box::new(|r| verdict(r, false, Some("missing-inputs"))),
            Acceptance::Rejected(rejected(RejectKind::MissingInputs, "missing-inputs")),
        ),
        (
            Box::new(|r| verdict(r, false, Some("16: bad-txns-inputs-missingorspent"))),
            Acceptance::Rejected(rejected(
                RejectKind::MissingInputs,
                "bad-txns-inputs-missingorspent",
            )),
        ),
        (
            Box::new(|r| verdict(r, false, Some("256: absurdly-high-fee"))),
            Acceptance::Rejected(rejected(RejectKind::Invalid, "absurdly-high-fee")),
        ),
        (
            Box::new(|_| err(-22, "TX decode failed")),
            Acceptance::Rejected(rejected(RejectKind::Invalid, "TX decode failed")),
        ),
    ];
    let cases = Arc::new(cases);
    let answers = cases.clone();
    // The case is told by the raw transaction's tag byte.
    let mut stub = Stub::start(move |method, params| {
        assert_eq!(method, "testmempoolaccept");
        let hex = params[0][0].as_str().expect("one raw transaction");
        let raw = hex::decode(hex).expect("hex");
        answers[raw[5] as usize].0(&raw)
    })
    .await;
    let client = stub.client();
    for (i, (_, expected)) in cases.iter().enumerate() {
        let raw = raw_tx(i as u8);
        assert_eq!(
            client.test_accept(&raw).await.as_ref(),
            Ok(expected),
            "case {i}"
        );
        let seen = stub.drain();
        assert_eq!(seen.len(), 1, "case {i}");
        assert_eq!(
            seen[0].call(),
            ("testmempoolaccept", &json!([[hex::encode(&raw)]]))
        );
    }
}

#[tokio::test]
async fn already_in_the_mempool_is_known_with_its_first_sighting() {
    let raw = raw_tx(7);
    let id = txid_of(&raw).to_hex();
    let mut stub = Stub::start(move |method, params| match method {
        "testmempoolaccept" => verdict(
            &hex::decode(params[0][0].as_str().unwrap()).unwrap(),
            false,
            Some("18: txn-already-in-mempool"),
        ),
        "getmempoolentry" if params[0] == json!(id) => {
            ok(json!({"size": 191, "fee": 0.00000191, "time": 1_700_000_123, "height": 101}))
        }
        _ => err(-5, "Transaction not in mempool"),
    })
    .await;
    assert_eq!(
        stub.client().test_accept(&raw).await,
        Ok(Acceptance::AlreadyKnown {
            first_seen_ms: Some(1_700_000_123_000)
        })
    );
    let seen = stub.drain();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[1].call(),
        ("getmempoolentry", &json!([txid_of(&raw).to_hex()]))
    );
}

#[tokio::test]
async fn already_in_the_mempool_without_an_entry_has_no_first_sighting() {
    let stub = Stub::start(|method, params| match method {
        "testmempoolaccept" => verdict(
            &hex::decode(params[0][0].as_str().unwrap()).unwrap(),
            false,
            Some("18: txn-already-in-mempool"),
        ),
        _ => err(-5, "Transaction not in mempool"),
    })
    .await;
    assert_eq!(
        stub.client().test_accept(&raw_tx(7)).await,
        Ok(Acceptance::AlreadyKnown {
            first_seen_ms: None
        })
    );
}

#[tokio::test]
async fn already_confirmed_is_known_without_asking_the_mempool() {
    let mut stub = Stub::start(|method, params| match method {
        "testmempoolaccept" => verdict(
            &hex::decode(params[0][0].as_str().unwrap()).unwrap(),
            false,
            Some("18: txn-already-known"),
        ),
        _ => ok(json!({"time": 1})),
    })
    .await;
    assert_eq!(
        stub.client().test_accept(&raw_tx(7)).await,
        Ok(Acceptance::AlreadyKnown {
            first_seen_ms: None
        })
    );
    let methods: Vec<String> = stub
        .drain()
        .iter()
        .map(|s| s.call().0.to_string())
        .collect();
    assert_eq!(methods, ["testmempoolaccept"]);
}

// ---------------------------------------------------------------------------------------------
// sendrawtransaction
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn broadcast_maps_each_of_bchns_answers() {
    let txid_reply = |raw: &[u8]| ok(json!(txid_of(raw).to_hex()));
    let cases: Vec<(Answer, Broadcast)> = vec![
        // Fresh, and already in the mempool: BCHN answers the txid both times.
        (Box::new(txid_reply), Broadcast::Accepted),
        (Box::new(txid_reply), Broadcast::Accepted),
        (
            Box::new(|_| err(-27, "transaction already in block chain")),
            Broadcast::AlreadyConfirmed,
        ),
        (
            Box::new(|_| err(-26, "txn-mempool-conflict (code 18)")),
            Broadcast::Rejected(rejected(RejectKind::Conflict, "txn-mempool-conflict")),
        ),
        (
            Box::new(|_| err(-22, "TX decode failed")),
            Broadcast::Rejected(rejected(RejectKind::Invalid, "TX decode failed")),
        ),
        (
            Box::new(|_| err(-26, "min relay fee not met (code 66)")),
            Broadcast::Rejected(rejected(RejectKind::Invalid, "min relay fee not met")),
        ),
        (
            Box::new(|_| err(-26, "dust (code 64)")),
            Broadcast::Rejected(rejected(RejectKind::Invalid, "dust")),
        ),
        (
            Box::new(|_| err(-25, "Missing inputs")),
            Broadcast::Rejected(rejected(RejectKind::MissingInputs, "Missing inputs")),
        ),
        (
            Box::new(|_| err(-26, "bad-txns-inputs-missingorspent (code 16)")),
            Broadcast::Rejected(rejected(
                RejectKind::MissingInputs,
                "bad-txns-inputs-missingorspent",
            )),
        ),
        (
            Box::new(|_| err(-26, "absurdly-high-fee, 20000000 > 10000000 (code 256)")),
            Broadcast::Rejected(rejected(
                RejectKind::Invalid,
                "absurdly-high-fee, 20000000 > 10000000",
            )),
        ),
    ];
    let cases = Arc::new(cases);
    let answers = cases.clone();
    let mut stub = Stub::start(move |method, params| {
        assert_eq!(method, "sendrawtransaction");
        let raw = hex::decode(params[0].as_str().expect("a raw transaction")).expect("hex");
        answers[raw[5] as usize].0(&raw)
    })
    .await;
    let client = stub.client();
    for (i, (_, expected)) in cases.iter().enumerate() {
        let raw = raw_tx(i as u8);
        assert_eq!(
            client.broadcast(&raw).await.as_ref(),
            Ok(expected),
            "case {i}"
        );
        let seen = stub.drain();
        assert_eq!(seen.len(), 1, "case {i}");
        assert_eq!(
            seen[0].call(),
            ("sendrawtransaction", &json!([hex::encode(&raw)]))
        );
    }
}

#[tokio::test]
async fn a_broadcast_answered_with_something_else_than_a_txid_is_a_protocol_error() {
    let stub = Stub::start(|_, _| ok(json!("accepted"))).await;
    protocol(stub.client().broadcast(&raw_tx(1)).await);
    let stub = Stub::start(|_, _| err(-1, "something odd")).await;
    let text = protocol(stub.client().broadcast(&raw_tx(1)).await);
    assert!(text.contains("something odd"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// gettxout
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn coins_asks_for_every_outpoint_in_one_batch_and_keeps_the_order() {
    let category = "ab".repeat(32);
    let token = json!({
        "category": category,
        "amount": "9223372036854775807",
        "nft": {"capability": "minting", "commitment": "cafe"}
    });
    let mut stub = Stub::start(move |method, params| {
        assert_eq!(method, "gettxout");
        match params[1].as_u64() {
            Some(0) => ok(Value::Null),
            Some(1) => txout("0.00012345", 0, None),
            Some(2) => txout("0.00001000", 3, Some(token.clone())),
            _ => err(-8, "unexpected"),
        }
    })
    .await;
    let outpoints = [
        OutPoint {
            txid: txid(1),
            vout: 0,
        },
        OutPoint {
            txid: txid(2),
            vout: 1,
        },
        // No transaction has 2^31 outputs: answered without asking the node.
        OutPoint {
            txid: txid(3),
            vout: u32::MAX,
        },
        OutPoint {
            txid: txid(4),
            vout: 2,
        },
    ];
    let coins = stub.client().coins(&outpoints).await.expect("coins");
    let mut category = [0u8; 32];
    category.fill(0xab);
    assert_eq!(
        coins,
        vec![
            None,
            Some(Coin {
                output: Output {
                    value: 12_345,
                    token: None,
                    locking_bytecode: p2pkh()
                },
                confirmations: 0
            }),
            None,
            Some(Coin {
                output: Output {
                    value: 1_000,
                    token: Some(TokenData {
                        category,
                        amount: 9_223_372_036_854_775_807,
                        nft: Some(Nft {
                            capability: NftCapability::Minting,
                            commitment: vec![0xca, 0xfe]
                        })
                    }),
                    locking_bytecode: p2pkh()
                },
                confirmations: 3
            }),
        ]
    );

    let seen = stub.drain();
    assert_eq!(seen.len(), 1, "one HTTP request for the whole batch");
    assert_eq!(seen[0].header("authorization"), Some(AUTH));
    let calls = seen[0].body.as_array().expect("a batch");
    let asked: Vec<(&str, &Value)> = calls
        .iter()
        .map(|c| (c["method"].as_str().unwrap(), &c["params"]))
        .collect();
    assert_eq!(
        asked,
        [
            ("gettxout", &json!([txid(1).to_hex(), 0, true])),
            ("gettxout", &json!([txid(2).to_hex(), 1, true])),
            ("gettxout", &json!([txid(4).to_hex(), 2, true])),
        ]
    );
    let mut ids: Vec<u64> = calls.iter().map(|c| c["id"].as_u64().unwrap()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 3, "distinct ids");
    assert!(calls.iter().all(|c| c["jsonrpc"] == "1.0"));
}

#[tokio::test]
async fn the_largest_payments_coins_are_one_request() {
    let mut stub = Stub::start(|method, _| {
        assert_eq!(method, "gettxout");
        ok(Value::Null)
    })
    .await;
    let client = stub.client();
    let outpoints: Vec<OutPoint> = (0..=MAX_INPUTS)
        .map(|n| OutPoint {
            txid: txid((n % 251) as u8),
            vout: n as u32,
        })
        .collect();
    // As many inputs as the largest payment can have: one request.
    let coins = client.coins(&outpoints[..MAX_INPUTS]).await.expect("coins");
    assert_eq!(coins.len(), MAX_INPUTS);
    let seen = stub.drain();
    assert_eq!(seen.len(), 1, "one request for every coin of a payment");
    assert_eq!(seen[0].body.as_array().map(Vec::len), Some(MAX_INPUTS));
    // One more than any payment has: the bound on a request still holds.
    let coins = client.coins(&outpoints).await.expect("coins");
    assert_eq!(coins.len(), MAX_INPUTS + 1);
    let sizes: Vec<usize> = stub
        .drain()
        .iter()
        .map(|s| s.body.as_array().map_or(0, Vec::len))
        .collect();
    assert_eq!(sizes, [MAX_INPUTS, 1]);
}

/// The methods of each request the stub received since last asked, in the order sent (a
/// single call is a request of one).
fn request_methods(stub: &mut Stub) -> Vec<Vec<String>> {
    stub.drain()
        .iter()
        .map(|s| match s.body.as_array() {
            Some(calls) => calls
                .iter()
                .map(|c| c["method"].as_str().unwrap_or("").to_owned())
                .collect(),
            None => vec![s.body["method"].as_str().unwrap_or("").to_owned()],
        })
        .collect()
}

/// `n` × `gettxout`, then `testmempoolaccept`: the one request paying asks before the claim.
fn coins_then_check(n: usize) -> Vec<String> {
    let mut methods = vec!["gettxout".to_owned(); n];
    methods.push("testmempoolaccept".to_owned());
    methods
}

#[tokio::test]
async fn coins_and_acceptance_are_one_batch_with_the_check_last() {
    let raw = raw_tx(3);
    let hex_raw = hex::encode(&raw);
    let mut stub = Stub::start(move |method, params| match method {
        "gettxout" => txout(&format!("0.0000{}000", params[1]), 2, None),
        "testmempoolaccept" => {
            let raw = hex::decode(params[0][0].as_str().unwrap()).unwrap();
            verdict(&raw, true, None)
        }
        _ => err(-32601, "Method not found"),
    })
    .await;
    let outpoints: Vec<OutPoint> = (1..=3)
        .map(|vout| OutPoint {
            txid: txid(9),
            vout,
        })
        .collect();
    let answer = stub
        .client()
        .coins_and_acceptance(&outpoints, &raw)
        .await
        .expect("answer");
    // The stub answers a batch backwards: the coins come back in the order asked all the same,
    // and the verdict is the check's.
    let CoinsAndAcceptance::Found { coins, acceptance } = answer else {
        panic!("{answer:?}");
    };
    assert_eq!(
        coins.iter().map(|c| c.output.value).collect::<Vec<_>>(),
        [1000, 2000, 3000]
    );
    assert_eq!(acceptance, Acceptance::Allowed);
    let seen = stub.drain();
    assert_eq!(seen.len(), 1, "one HTTP request");
    let calls = seen[0].body.as_array().expect("a batch");
    let asked: Vec<(&str, &Value)> = calls
        .iter()
        .map(|c| (c["method"].as_str().unwrap(), &c["params"]))
        .collect();
    assert_eq!(
        asked,
        [
            ("gettxout", &json!([txid(9).to_hex(), 1, true])),
            ("gettxout", &json!([txid(9).to_hex(), 2, true])),
            ("gettxout", &json!([txid(9).to_hex(), 3, true])),
            ("testmempoolaccept", &json!([[hex_raw]])),
        ]
    );
}

#[tokio::test]
async fn coins_and_acceptance_past_a_batch_carry_the_check_on_the_last_request() {
    let raw = raw_tx(4);
    let mut stub = Stub::start(|method, params| match method {
        "gettxout" => txout("0.00001000", 1, None),
        "testmempoolaccept" => {
            let raw = hex::decode(params[0][0].as_str().unwrap()).unwrap();
            verdict(&raw, true, None)
        }
        _ => err(-32601, "Method not found"),
    })
    .await;
    let outpoints: Vec<OutPoint> = (0..=MAX_INPUTS)
        .map(|n| OutPoint {
            txid: txid((n % 251) as u8),
            vout: n as u32,
        })
        .collect();
    let client = stub.client();
    // The largest payment: one request, whatever its input count.
    let answer = client
        .coins_and_acceptance(&outpoints[..MAX_INPUTS], &raw)
        .await
        .expect("answer");
    assert!(
        matches!(answer, CoinsAndAcceptance::Found { ref coins, .. } if coins.len() == MAX_INPUTS)
    );
    assert_eq!(request_methods(&mut stub), [coins_then_check(MAX_INPUTS)]);
    // One more than any payment has: split as the coins alone are, the check riding last.
    let answer = client
        .coins_and_acceptance(&outpoints, &raw)
        .await
        .expect("answer");
    assert!(
        matches!(answer, CoinsAndAcceptance::Found { ref coins, .. } if coins.len() == MAX_INPUTS + 1)
    );
    assert_eq!(
        request_methods(&mut stub),
        [vec!["gettxout".to_owned(); MAX_INPUTS], coins_then_check(1)]
    );
}

#[tokio::test]
async fn each_entry_of_the_batch_is_read_as_it_would_be_alone() {
    // (the coin's answer, the check's answer, what the client must make of the batch); the
    // case is told by the raw transaction's tag byte, and the stub answers batches backwards.
    type Case = (
        fn() -> Reply,
        fn(&[u8]) -> Reply,
        Result<Option<Acceptance>, &'static str>,
    );
    let cases: Vec<Case> = vec![
        (
            || txout("0.00010000", 1, None),
            |r| verdict(r, false, Some("16: mandatory-script-verify-flag-failed (Signature must be zero for failed CHECK(MULTI)SIG operation)")),
            Ok(Some(Acceptance::Rejected(rejected(
                RejectKind::Invalid,
                "mandatory-script-verify-flag-failed (Signature must be zero for failed CHECK(MULTI)SIG operation)",
            )))),
        ),
        (
            || txout("0.00010000", 1, None),
            |r| verdict(r, false, Some("18: txn-mempool-conflict")),
            Ok(Some(Acceptance::Rejected(rejected(RejectKind::Conflict, "txn-mempool-conflict")))),
        ),
        // An RPC error inside the batch that is a refusal is one.
        (
            || txout("0.00010000", 1, None),
            |_| err(-26, "min relay fee not met (code 66)"),
            Ok(Some(Acceptance::Rejected(rejected(RejectKind::Invalid, "min relay fee not met")))),
        ),
        (
            || txout("0.00010000", 1, None),
            |_| err(-22, "TX decode failed"),
            Ok(Some(Acceptance::Rejected(rejected(RejectKind::Invalid, "TX decode failed")))),
        ),
        // Any other is the node's failure, named by the check.
        (
            || txout("0.00010000", 1, None),
            |_| err(-28, "Loading block index..."),
            Err("unavailable"),
        ),
        (
            || txout("0.00010000", 1, None),
            |_| err(-1, "something else"),
            Err("protocol: testmempoolaccept failed with RPC error -1"),
        ),
        (
            || txout("0.00010000", 1, None),
            |_| ok(json!([])),
            Err("protocol: testmempoolaccept: 0 results"),
        ),
        // A missing coin: the check is not read, whatever it says.
        (|| ok(Value::Null), |_| err(-1, "something else"), Ok(None)),
        (|| ok(Value::Null), |r| verdict(r, true, None), Ok(None)),
        // A coin's error is the node's failure, whatever the check says.
        (
            || err(-1, "gettxout broke"),
            |r| verdict(r, true, None),
            Err("protocol: gettxout failed with RPC error -1"),
        ),
    ];
    let cases = Arc::new(cases);
    let answers = cases.clone();
    let case_of = |raw: &[u8]| raw[5] as usize;
    let mut stub = Stub::start(move |method, params| match method {
        "gettxout" => answers[params[1].as_u64().unwrap() as usize].0(),
        "testmempoolaccept" => {
            let raw = hex::decode(params[0][0].as_str().unwrap()).unwrap();
            answers[case_of(&raw)].1(&raw)
        }
        _ => err(-32601, "Method not found"),
    })
    .await;
    let client = stub.client();
    for (i, (_, _, expected)) in cases.iter().enumerate() {
        let raw = raw_tx(i as u8);
        // Two coins, both answered by the case; the node is asked once.
        let outpoints = [
            OutPoint {
                txid: txid(1),
                vout: i as u32,
            },
            OutPoint {
                txid: txid(2),
                vout: i as u32,
            },
        ];
        let got = client.coins_and_acceptance(&outpoints, &raw).await;
        match (expected, &got) {
            (Ok(Some(a)), Ok(CoinsAndAcceptance::Found { coins, acceptance })) => {
                assert_eq!(coins.len(), 2, "case {i}");
                assert_eq!(acceptance, a, "case {i}");
            }
            (Ok(None), Ok(CoinsAndAcceptance::Missing)) => {}
            (Err("unavailable"), Err(NodeError::Unavailable(_))) => {}
            (Err(e), Err(NodeError::Protocol(m))) if m.starts_with(&e["protocol: ".len()..]) => {}
            _ => panic!("case {i}: expected {expected:?}, got {got:?}"),
        }
        assert_eq!(
            request_methods(&mut stub),
            [coins_then_check(2)],
            "case {i}"
        );
    }
}

#[tokio::test]
async fn coins_and_acceptance_of_a_transaction_in_the_mempool_asks_when_it_arrived() {
    let raw = raw_tx(7);
    let id = txid_of(&raw).to_hex();
    let mut stub = Stub::start(move |method, params| match method {
        "gettxout" => txout("0.00010000", 1, None),
        "testmempoolaccept" => {
            let raw = hex::decode(params[0][0].as_str().unwrap()).unwrap();
            verdict(&raw, false, Some("18: txn-already-in-mempool"))
        }
        "getmempoolentry" if params[0] == json!(id) => Reply::Result(
            r#"{"size":200,"time":1700000000,"fees":{"base":0.00000400,"modified":0.00000400},"depends":[],"spentby":[]}"#.into(),
        ),
        _ => err(-32601, "Method not found"),
    })
    .await;
    let outpoint = OutPoint {
        txid: txid(1),
        vout: 0,
    };
    let answer = stub
        .client()
        .coins_and_acceptance(&[outpoint], &raw)
        .await
        .expect("answer");
    assert!(
        matches!(
            answer,
            CoinsAndAcceptance::Found {
                acceptance: Acceptance::AlreadyKnown {
                    first_seen_ms: Some(1_700_000_000_000)
                },
                ..
            }
        ),
        "{answer:?}"
    );
    assert_eq!(
        request_methods(&mut stub),
        [coins_then_check(1), vec!["getmempoolentry".to_owned()]]
    );
}

#[tokio::test]
async fn coins_of_nothing_asks_nothing() {
    let mut stub = Stub::start(|_, _| err(-1, "must not be called")).await;
    assert_eq!(stub.client().coins(&[]).await, Ok(vec![]));
    assert!(stub.drain().is_empty());
}

/// `gettxout` for a coin worth `value` (raw number text), through the client.
async fn coin_value(value: &'static str) -> Result<u64, NodeError> {
    let stub = Stub::start(move |_, _| txout(value, 1, None)).await;
    let coins = stub
        .client()
        .coins(&[OutPoint {
            txid: txid(9),
            vout: 0,
        }])
        .await?;
    Ok(coins[0].as_ref().expect("a coin").output.value)
}

#[tokio::test]
async fn amounts_are_converted_exactly_from_their_text() {
    for (text, sats) in [
        ("0.00000546", 546),
        ("0.00000001", 1),
        ("0.00000000", 0),
        ("0.1", 10_000_000),
        ("1.00000000", 100_000_000),
        // 0.29 BCH is 28999999.999999996 sats as an f64: the text must be read, not a float.
        ("0.29000000", 29_000_000),
        ("20999999.99999999", 2_099_999_999_999_999),
        ("21000000.00000000", MAX_MONEY_SATS),
        // BCHN prints no exponents, but a JSON number may have one.
        ("1e-8", 1),
        ("5.46E-6", 546),
        ("0.00000546000", 546),
    ] {
        assert_eq!(coin_value(text).await, Ok(sats), "{text}");
    }
}

#[tokio::test]
async fn amounts_that_are_not_whole_satoshis_are_protocol_errors() {
    for text in [
        "0.000000001",
        "-0.00000001",
        "21000000.00000001",
        "1e300",
        r#""0.00000546""#,
    ] {
        let e = protocol(coin_value(text).await);
        assert!(e.contains("gettxout"), "{text}: {e}");
    }
}

#[tokio::test]
async fn token_data_is_read_and_checked() {
    let category = "01".repeat(32);
    let nft_only = json!({"category": category, "amount": "0",
                          "nft": {"capability": "none", "commitment": ""}});
    let stub = Stub::start(move |_, _| txout("0.00000800", 1, Some(nft_only.clone()))).await;
    let coins = stub
        .client()
        .coins(&[OutPoint {
            txid: txid(9),
            vout: 0,
        }])
        .await
        .expect("coins");
    assert_eq!(
        coins[0].as_ref().map(|c| c.output.token.clone()),
        Some(Some(TokenData {
            category: [1; 32],
            amount: 0,
            nft: Some(Nft {
                capability: NftCapability::None,
                commitment: vec![]
            })
        }))
    );

    for token in [
        json!({"category": category, "amount": "9223372036854775808"}),
        json!({"category": category, "amount": "-1"}),
        json!({"category": category, "amount": 5}),
        json!({"category": "abcd", "amount": "5"}),
        json!({"category": category, "amount": "0"}),
        json!({"category": category, "amount": "0", "nft": {"capability": "burn", "commitment": ""}}),
    ] {
        let stub = Stub::start(move |_, _| txout("0.00000800", 1, Some(token.clone()))).await;
        protocol(
            stub.client()
                .coins(&[OutPoint {
                    txid: txid(9),
                    vout: 0,
                }])
                .await,
        );
    }
}

// ---------------------------------------------------------------------------------------------
// getrawtransaction
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn tx_status_reads_unknown_mempool_and_confirmed() {
    let mut stub = Stub::start(|method, params| {
        let id = params[0].as_str().unwrap_or("").to_string();
        let of = |b: u8| txid(b).to_hex();
        match method {
            "getrawtransaction" if id == of(1) => err(
                -5,
                "No such mempool or blockchain transaction. Use gettransaction for wallet transactions.",
            ),
            "getrawtransaction" if id == of(2) => ok(json!({
                "txid": id, "confirmations": 6, "time": 1_700_000_000, "blocktime": 1_700_000_000
            })),
            "getrawtransaction" => ok(json!({"txid": id, "size": 219})),
            // BCHN v28: the fee in `fees.base`, in BCH, printed as %d.%08d.
            "getmempoolentry" if id == of(3) => Reply::Result(
                r#"{"size":219,"time":1700000555,"fees":{"base":0.00000438,"modified":0.00000438},"depends":[],"spentby":[]}"#.into(),
            ),
            // Nodes before the `fees` object wrote `fee`.
            "getmempoolentry" if id == of(5) => {
                Reply::Result(r#"{"size":191,"fee":0.00000191,"time":1700000556}"#.into())
            }
            // An entry without a fee says when, not what.
            "getmempoolentry" if id == of(6) => ok(json!({"time": 1_700_000_557})),
            // A fee that is not a satoshi amount is not BCHN's: the whole entry is unknown.
            "getmempoolentry" if id == of(7) => Reply::Result(
                r#"{"size":219,"time":1700000558,"fees":{"base":0.000000001}}"#.into(),
            ),
            _ => err(-5, "Transaction not in mempool"),
        }
    })
    .await;
    let client = stub.client();
    assert_eq!(client.tx_status(txid(1)).await, Ok(TxStatus::Unknown));
    assert_eq!(
        client.tx_status(txid(2)).await,
        Ok(TxStatus::Confirmed { confirmations: 6 })
    );
    assert_eq!(
        client.tx_status(txid(3)).await,
        Ok(TxStatus::Mempool {
            first_seen_ms: Some(1_700_000_555_000),
            fee_sats: Some(438),
            size: Some(219),
        })
    );
    // In the mempool by getrawtransaction, gone by getmempoolentry: still no error.
    let unknown_entry = TxStatus::Mempool {
        first_seen_ms: None,
        fee_sats: None,
        size: None,
    };
    assert_eq!(client.tx_status(txid(4)).await, Ok(unknown_entry));
    assert_eq!(
        client.tx_status(txid(5)).await,
        Ok(TxStatus::Mempool {
            first_seen_ms: Some(1_700_000_556_000),
            fee_sats: Some(191),
            size: Some(191),
        })
    );
    assert_eq!(
        client.tx_status(txid(6)).await,
        Ok(TxStatus::Mempool {
            first_seen_ms: Some(1_700_000_557_000),
            fee_sats: None,
            size: None,
        })
    );
    assert_eq!(client.tx_status(txid(7)).await, Ok(unknown_entry));

    let calls: Vec<(String, Value)> = stub
        .drain()
        .iter()
        .map(|s| (s.call().0.to_string(), s.call().1.clone()))
        .collect();
    let mut expected = vec![
        (
            "getrawtransaction".to_string(),
            json!([txid(1).to_hex(), true]),
        ),
        (
            "getrawtransaction".to_string(),
            json!([txid(2).to_hex(), true]),
        ),
    ];
    for n in 3..=7 {
        expected.push(("getrawtransaction".into(), json!([txid(n).to_hex(), true])));
        expected.push(("getmempoolentry".into(), json!([txid(n).to_hex()])));
    }
    assert_eq!(calls, expected);
}

// ---------------------------------------------------------------------------------------------
// The pay flow against the stub: a wallet that broadcast before posting, double spends
// ---------------------------------------------------------------------------------------------

mod pay_flow {
    use super::*;

    use clap::Parser;

    use cashier::chain::sighash::SignWith;
    use cashier::chain::{Address, Tx};
    use cashier::jpp::pay::{PayError, Submission};
    use cashier::jpp::{Invoice, InvoiceOutput, InvoiceStatus};
    use cashier::service::Payments;
    use cashier::store::Store;

    /// The invoice's address (regtest).
    const ADDR: &str = "bchreg:qr6m7j9njldwwzlg9v7v53unlr4jkmx6eyphnpcjvs";
    /// What the invoices here ask for, per 1000 bytes: twice BCHN's relay floor, so the node
    /// having taken a transaction says nothing of whether it pays enough.
    const RATE_PER_KB: u64 = 2000;

    /// How the stub node stands towards the payment's transaction.
    #[derive(Clone)]
    enum NodeHas {
        /// In its mempool (the wallet broadcast it), with this `getmempoolentry` answer.
        InMempool(String),
        /// Not at all; its coin is spent by another transaction in the mempool.
        Conflicting,
        /// Not at all; its coin never existed.
        Nothing,
    }

    /// BCHN's answers for a node that holds `raw` as `has` says. The payment's coin is gone
    /// in every case, so `gettxout` answers null.
    fn node(raw: &[u8], has: NodeHas) -> impl Fn(&str, &Value) -> Reply + Send + Sync {
        let raw = raw.to_vec();
        let id = txid_of(&raw).to_hex();
        move |method, params| {
            match (method, &has) {
            ("getblockchaininfo", _) => ok(json!({"chain": "regtest"})),
            ("gettxout", _) => ok(Value::Null),
            ("getrawtransaction", NodeHas::InMempool(_)) if params[0] == json!(id) => {
                // An unconfirmed transaction: no `confirmations`, `blockhash` or `time`.
                ok(json!({"txid": id, "hash": id, "size": raw.len(), "hex": hex::encode(&raw)}))
            }
            ("getmempoolentry", NodeHas::InMempool(entry)) if params[0] == json!(id) => {
                Reply::Result(entry.clone())
            }
            ("getrawtransaction", _) => err(
                -5,
                "No such mempool or blockchain transaction. Use gettransaction for wallet transactions.",
            ),
            ("getmempoolentry", _) => err(-5, "Transaction not in mempool"),
            ("testmempoolaccept", NodeHas::InMempool(_)) => {
                verdict(&raw, false, Some("18: txn-already-in-mempool"))
            }
            ("testmempoolaccept", NodeHas::Conflicting) => {
                verdict(&raw, false, Some("18: txn-mempool-conflict"))
            }
            ("testmempoolaccept", NodeHas::Nothing) => verdict(&raw, false, Some("missing-inputs")),
            // Already in the mempool: BCHN answers the txid again.
            ("sendrawtransaction", NodeHas::InMempool(_)) => ok(json!(id)),
            ("sendrawtransaction", NodeHas::Conflicting) => {
                err(-26, "txn-mempool-conflict (code 18)")
            }
            ("sendrawtransaction", NodeHas::Nothing) => err(-25, "Missing inputs"),
            _ => err(-32601, "Method not found"),
        }
        }
    }

    /// `getmempoolentry` as BCHN v28 writes it, for a transaction of `size` bytes paying
    /// `fee` sats that entered the mempool at `time` (unix seconds).
    fn entry(size: usize, fee: u64, time: i64) -> String {
        let bch = format!("{}.{:08}", fee / 100_000_000, fee % 100_000_000);
        format!(
            r#"{{"size":{size},"time":{time},"fees":{{"base":{bch},"modified":{bch}}},"depends":[],"spentby":[]}}"#
        )
    }

    /// A server on a fresh SQLite database, talking to the stub. Its HTTP side is not run:
    /// the tests call its pay flow.
    async fn server(stub: &Stub) -> (cashier::app::Application, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("c.sqlite").display()
        );
        let url = stub.url();
        let settings = cashier::config::Settings::try_parse_from([
            "cashier serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            &db,
            "--node",
            "bchn",
            "--node-url",
            &url,
            "--network",
            "regtest",
        ])
        .expect("settings");
        let app = cashier::app::Application::build(&settings)
            .await
            .expect("server");
        (app, dir)
    }

    /// An open invoice for 4000 sats at `RATE_PER_KB`, created at `created_ms`; not stored yet
    /// (its payment is built first, for the stub to know).
    fn new_invoice(created_ms: i64) -> Invoice {
        Invoice {
            fee_per_kb: RATE_PER_KB,
            ..Invoice::open(
                vec![InvoiceOutput {
                    address: Address::parse(ADDR, Network::Regtest).expect("address"),
                    amount: 4000,
                    description: None,
                    token: None,
                }],
                created_ms,
                created_ms + 1_800_000,
            )
        }
    }

    /// A server on `stub` with `invoice` stored, ready to be paid.
    async fn serving(
        stub: &Stub,
        invoice: &Invoice,
    ) -> (cashier::app::Application, tempfile::TempDir) {
        let (app, dir) = server(stub).await;
        store_invoice(app.store(), invoice).await;
        (app, dir)
    }

    async fn store_invoice(store: &Store, invoice: &Invoice) {
        let row = invoice.clone();
        store
            .write(move |c| cashier::store::invoices::insert(c, &row, None))
            .await
            .expect("insert");
    }

    /// A Schnorr-signed payment of `invoice` (SIGHASH_ALL|UTXOS|FORKID, as Paytaca signs)
    /// paying `fee_per_kb`, from a coin of 50,000 sats (`txid(0x42)`, output 1) that the stub
    /// shows or not as the test needs.
    fn payment(invoice: &Invoice, fee_per_kb: u64) -> Vec<u8> {
        payment_from(invoice, fee_per_kb, 1)
    }

    /// [`payment`] from `inputs` coins of `txid(0x42)` (outputs 1 to `inputs`), 50,000 sats in
    /// all.
    fn payment_from(invoice: &Invoice, fee_per_kb: u64, inputs: u32) -> Vec<u8> {
        let secp = bitcoin::secp256k1::Secp256k1::new();
        let key = cashier::chain::wallet::random_key();
        let coins: Vec<(OutPoint, Output)> = (1..=inputs)
            .map(|vout| {
                (
                    OutPoint {
                        txid: txid(0x42),
                        vout,
                    },
                    Output {
                        value: 50_000 / u64::from(inputs),
                        token: None,
                        locking_bytecode: cashier::chain::sighash::p2pkh_locking_bytecode(
                            &key.public_key(&secp),
                        ),
                    },
                )
            })
            .collect();
        let outputs = invoice
            .outputs
            .iter()
            .map(|o| Output {
                value: o.amount,
                token: None,
                locking_bytecode: o.address.locking_bytecode(),
            })
            .collect();
        cashier::chain::wallet::build_payment_with(
            &secp,
            &key,
            &coins,
            outputs,
            fee_per_kb,
            SignWith::Schnorr { hash_type: 0x61 },
        )
        .expect("payment")
        .serialize()
    }

    fn fee_of(raw: &[u8]) -> u64 {
        let tx = Tx::decode(raw).expect("tx");
        50_000 - tx.outputs.iter().map(|o| o.value).sum::<u64>()
    }

    /// The same transaction with its unlocking scripts emptied: what wallets verify.
    fn unsigned(raw: &[u8]) -> Vec<u8> {
        let mut tx = Tx::decode(raw).expect("tx");
        for input in &mut tx.inputs {
            input.script_sig.clear();
        }
        tx.serialize()
    }

    /// The RPC methods the stub received since last asked.
    fn methods(stub: &mut Stub) -> Vec<String> {
        stub.drain()
            .iter()
            .filter_map(|s| s.body["method"].as_str().map(str::to_owned))
            .collect()
    }

    /// The invoice is open with no payment, no event, and nothing was broadcast.
    async fn nothing_changed(stub: &mut Stub, store: &Store, invoice: &Invoice, raw: &[u8]) {
        let id = invoice.id;
        let now = store
            .read(move |c| cashier::store::invoices::get(c, id))
            .await
            .expect("read")
            .expect("the invoice");
        assert_eq!(now.status, InvoiceStatus::Open);
        assert!(now.payment.is_none());
        let txid = txid_of(raw);
        assert!(store
            .read(move |c| cashier::store::payments::by_txid(c, txid))
            .await
            .expect("read")
            .is_none());
        let topic = format!("invoice:{id}");
        assert!(store
            .read(move |c| cashier::store::events::for_topic(c, &topic))
            .await
            .expect("read")
            .is_empty());
        let sent = methods(stub);
        assert!(
            !sent.iter().any(|m| m == "sendrawtransaction"),
            "a refused payment was broadcast: {sent:?}"
        );
    }

    fn submission(raw: &[u8]) -> Submission {
        Submission {
            raw_tx: raw.to_vec(),
            memo: None,
            refund_to: None,
        }
    }

    /// The current second, and its last millisecond: an invoice made then, and a wallet's
    /// broadcast right after, which BCHN records as that whole second, earlier in ms.
    fn late_in_this_second() -> (i64, i64) {
        let second = cashier::units::now_ms().div_euclid(1000);
        (second, second * 1000 + 999)
    }

    #[tokio::test]
    async fn a_wallet_that_broadcast_in_the_invoices_second_pays_above_the_floor() {
        let (second, created_ms) = late_in_this_second();
        let invoice = new_invoice(created_ms);
        let raw = payment(&invoice, RATE_PER_KB);
        assert_eq!(
            fee_of(&raw),
            2 * raw.len() as u64,
            "exactly the invoice's rate"
        );
        let mut stub = Stub::start(node(
            &raw,
            NodeHas::InMempool(entry(raw.len(), fee_of(&raw), second)),
        ))
        .await;
        let (app, _dir) = serving(&stub, &invoice).await;
        let payments: &Payments = app.payments();

        payments.verify(invoice.id, &raw).await.expect("verify");
        let paid = payments
            .pay(invoice.id, submission(&raw))
            .await
            .expect("paid");
        assert_eq!(paid.status, InvoiceStatus::Paid);
        assert_eq!(paid.payment.map(|p| p.txid), Some(txid_of(&raw)));
        let called = methods(&mut stub);
        assert_eq!(
            called.iter().filter(|m| *m == "sendrawtransaction").count(),
            1,
            "{called:?}"
        );
        assert!(called.iter().any(|m| m == "getmempoolentry"), "{called:?}");
        // Posted again: the same success, and no second broadcast or event.
        let again = payments
            .pay(invoice.id, submission(&raw))
            .await
            .expect("idempotent");
        assert_eq!(again.status, InvoiceStatus::Paid);
        assert!(methods(&mut stub).is_empty());
        let topic = format!("invoice:{}", invoice.id);
        let events = app
            .store()
            .read(move |c| cashier::store::events::for_topic(c, &topic))
            .await
            .expect("events");
        assert_eq!(events.len(), 1);
    }

    #[tokio::test]
    async fn a_broadcast_transaction_below_the_invoices_rate_is_refused() {
        let (second, created_ms) = late_in_this_second();
        let invoice = new_invoice(created_ms);
        // BCHN's floor, half what the invoice asks: the node took it, its entry shows the fee.
        let raw = payment(&invoice, 1000);
        let mut stub = Stub::start(node(
            &raw,
            NodeHas::InMempool(entry(raw.len(), fee_of(&raw), second)),
        ))
        .await;
        let (app, _dir) = serving(&stub, &invoice).await;
        for verify in [true, false] {
            let outcome = if verify {
                app.payments().verify(invoice.id, &raw).await
            } else {
                app.payments()
                    .pay(invoice.id, submission(&raw))
                    .await
                    .map(|_| ())
            };
            match outcome {
                Err(PayError::FeeTooLow {
                    paid_per_kb,
                    required_per_kb,
                }) => assert_eq!((paid_per_kb, required_per_kb), (1000, RATE_PER_KB)),
                other => panic!("verify {verify}: {other:?}"),
            }
        }
        nothing_changed(&mut stub, app.store(), &invoice, &raw).await;
    }

    #[tokio::test]
    async fn a_transaction_the_node_saw_the_second_before_the_invoice_is_a_replay() {
        let (second, created_ms) = late_in_this_second();
        let invoice = new_invoice(created_ms);
        let raw = payment(&invoice, RATE_PER_KB);
        let mut stub = Stub::start(node(
            &raw,
            NodeHas::InMempool(entry(raw.len(), fee_of(&raw), second - 1)),
        ))
        .await;
        let (app, _dir) = serving(&stub, &invoice).await;
        assert!(matches!(
            app.payments().verify(invoice.id, &raw).await,
            Err(PayError::Replay)
        ));
        assert!(matches!(
            app.payments().pay(invoice.id, submission(&raw)).await,
            Err(PayError::Replay)
        ));
        nothing_changed(&mut stub, app.store(), &invoice, &raw).await;
    }

    #[tokio::test]
    async fn a_coin_spent_by_another_mempool_transaction_is_a_double_spend() {
        let invoice = new_invoice(cashier::units::now_ms());
        let raw = payment(&invoice, RATE_PER_KB);
        let mut stub = Stub::start(node(&raw, NodeHas::Conflicting)).await;
        let (app, _dir) = serving(&stub, &invoice).await;
        // Signed or not (BCHN finds the conflict before it checks a signature).
        for tx in [unsigned(&raw), raw.clone()] {
            assert!(matches!(
                app.payments().verify(invoice.id, &tx).await,
                Err(PayError::DoubleSpend)
            ));
        }
        let outcome = app.payments().pay(invoice.id, submission(&raw)).await;
        match outcome {
            Err(e @ PayError::DoubleSpend) => {
                assert!(e.to_string().contains("double spend"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        // The payment's own question to the node (the last; verification asked before it).
        let seen = stub.drain();
        let accept = seen
            .iter()
            .rfind(|s| s.body["method"] == "testmempoolaccept")
            .expect("the node was asked why the coin is gone");
        assert_eq!(accept.call().1, &json!([[hex::encode(&raw)]]));
        nothing_changed(&mut stub, app.store(), &invoice, &raw).await;
    }

    #[tokio::test]
    async fn a_coin_that_never_existed_is_still_a_missing_input() {
        let invoice = new_invoice(cashier::units::now_ms());
        let raw = payment(&invoice, RATE_PER_KB);
        let mut stub = Stub::start(node(&raw, NodeHas::Nothing)).await;
        let (app, _dir) = serving(&stub, &invoice).await;
        assert!(matches!(
            app.payments().verify(invoice.id, &unsigned(&raw)).await,
            Err(PayError::InputsMissing)
        ));
        assert!(matches!(
            app.payments().pay(invoice.id, submission(&raw)).await,
            Err(PayError::InputsMissing)
        ));
        nothing_changed(&mut stub, app.store(), &invoice, &raw).await;
    }

    #[tokio::test]
    async fn a_conflict_met_at_broadcast_is_a_double_spend_and_reopens_the_invoice() {
        let invoice = new_invoice(cashier::units::now_ms());
        let raw = payment(&invoice, RATE_PER_KB);
        // The coin is there and the node would take the transaction; by the broadcast another
        // transaction has spent the coin.
        let mut stub = Stub::start(move |method, params| match method {
            "getblockchaininfo" => ok(json!({"chain": "regtest"})),
            "gettxout" if params[0] == json!(txid(0x42).to_hex()) => txout("0.00050000", 3, None),
            "testmempoolaccept" => verdict(
                &hex::decode(params[0][0].as_str().unwrap_or("")).unwrap_or_default(),
                true,
                None,
            ),
            "sendrawtransaction" => err(-26, "txn-mempool-conflict (code 18)"),
            _ => err(-32601, "Method not found"),
        })
        .await;
        let (app, _dir) = serving(&stub, &invoice).await;
        assert!(matches!(
            app.payments().pay(invoice.id, submission(&raw)).await,
            Err(PayError::DoubleSpend)
        ));
        let called = methods(&mut stub);
        assert_eq!(
            called.iter().filter(|m| *m == "sendrawtransaction").count(),
            1,
            "{called:?}"
        );
        // Released: open again, no payment row, no event; nothing more was sent.
        nothing_changed(&mut stub, app.store(), &invoice, &raw).await;
    }

    /// The raw transaction of a `testmempoolaccept` or `sendrawtransaction` call.
    fn raw_of(param: &Value) -> Vec<u8> {
        hex::decode(param.as_str().unwrap_or("")).unwrap_or_default()
    }

    /// The events of the invoice.
    async fn events_of(store: &Store, invoice: &Invoice) -> usize {
        let topic = format!("invoice:{}", invoice.id);
        store
            .read(move |c| cashier::store::events::for_topic(c, &topic))
            .await
            .expect("events")
            .len()
    }

    /// A payment asks the node two HTTP requests whatever its input count: one batch of every
    /// coin and the acceptance check, then the broadcast.
    #[tokio::test]
    async fn a_payment_is_one_batch_of_coins_and_check_then_the_broadcast() {
        for inputs in [1u32, 40] {
            let invoice = new_invoice(cashier::units::now_ms());
            let raw = payment_from(&invoice, RATE_PER_KB, inputs);
            let value = format!("0.{:08}", 50_000 / inputs);
            let mut stub = Stub::start(move |method, params| match method {
                "getblockchaininfo" => ok(json!({"chain": "regtest"})),
                "gettxout" if params[0] == json!(txid(0x42).to_hex()) => txout(&value, 3, None),
                "testmempoolaccept" => verdict(&raw_of(&params[0][0]), true, None),
                "sendrawtransaction" => ok(json!(txid_of(&raw_of(&params[0])).to_hex())),
                _ => err(-32601, "Method not found"),
            })
            .await;
            let (app, _dir) = serving(&stub, &invoice).await;
            request_methods(&mut stub);
            let paid = app
                .payments()
                .pay(invoice.id, submission(&raw))
                .await
                .expect("paid");
            assert_eq!(paid.status, InvoiceStatus::Paid);
            assert_eq!(
                request_methods(&mut stub),
                [
                    coins_then_check(inputs as usize),
                    vec!["sendrawtransaction".to_owned()]
                ],
                "{inputs} inputs"
            );
            assert_eq!(events_of(app.store(), &invoice).await, 1);
        }
    }

    /// Every refusal of the acceptance check (anchors.md §2.1, and a bad or missing signature),
    /// given in the batch with the coins: refused before the claim, with the refusal it always
    /// had (verify says the same), nothing recorded or broadcast; the same payment refused
    /// again; then an honest payment pays the invoice.
    #[tokio::test]
    async fn each_refusal_of_the_check_in_the_batch_comes_before_the_claim() {
        // (what, the check's answer in the batch, the refusal the wallet gets)
        type Case = (&'static str, fn(&[u8]) -> Reply, fn(&PayError) -> bool);
        const CASES: [Case; 11] = [
            (
                "a bad signature",
                |r| {
                    verdict(r, false, Some("16: mandatory-script-verify-flag-failed (Signature must be zero for failed CHECK(MULTI)SIG operation)"))
                },
                |e| matches!(e, PayError::Rejected(m) if m.starts_with("mandatory-script-verify-flag-failed")),
            ),
            (
                "an unsigned input",
                |r| {
                    verdict(r, false, Some("16: mandatory-script-verify-flag-failed (Operation not valid with the current stack size)"))
                },
                |e| matches!(e, PayError::Rejected(m) if m.starts_with("mandatory-script-verify-flag-failed")),
            ),
            (
                "dust change",
                |r| verdict(r, false, Some("64: dust")),
                |e| matches!(e, PayError::Rejected(m) if m == "dust"),
            ),
            (
                "a fee below the node's floor",
                |r| verdict(r, false, Some("66: min relay fee not met")),
                |e| matches!(e, PayError::Rejected(m) if m == "min relay fee not met"),
            ),
            (
                "an absurd fee",
                |r| verdict(r, false, Some("256: absurdly-high-fee")),
                |e| matches!(e, PayError::Rejected(m) if m == "absurdly-high-fee"),
            ),
            (
                "a conflict the coins did not show",
                |r| verdict(r, false, Some("18: txn-mempool-conflict")),
                |e| matches!(e, PayError::DoubleSpend),
            ),
            (
                "a coin gone between the coins and the check",
                |r| verdict(r, false, Some("missing-inputs")),
                |e| matches!(e, PayError::InputsMissing),
            ),
            (
                "a refusal as an RPC error inside the batch",
                |_| {
                    err(
                        -26,
                        "mandatory-script-verify-flag-failed (Invalid signature) (code 16)",
                    )
                },
                |e| matches!(e, PayError::Rejected(m) if m.starts_with("mandatory-script-verify-flag-failed")),
            ),
            (
                "bytes the node cannot decode",
                |_| err(-22, "TX decode failed"),
                |e| matches!(e, PayError::Rejected(m) if m == "TX decode failed"),
            ),
            (
                "a node still starting",
                |_| err(-28, "Loading block index..."),
                |e| matches!(e, PayError::NodeUnavailable(NodeError::Unavailable(_))),
            ),
            (
                "an error the check never gives",
                |_| err(-1, "something else"),
                |e| matches!(e, PayError::NodeUnavailable(NodeError::Protocol(_))),
            ),
        ];
        // Which case the stub answers; past the last, it takes the transaction.
        let case = Arc::new(AtomicUsize::new(0));
        let answering = case.clone();
        let mut stub = Stub::start(move |method, params| {
            let refusal = CASES.get(answering.load(Ordering::SeqCst));
            match (method, refusal) {
                ("getblockchaininfo", _) => ok(json!({"chain": "regtest"})),
                ("gettxout", _) if params[0] == json!(txid(0x42).to_hex()) => {
                    txout("0.00050000", 3, None)
                }
                ("testmempoolaccept", Some((_, answer, _))) => answer(&raw_of(&params[0][0])),
                ("testmempoolaccept", None) => verdict(&raw_of(&params[0][0]), true, None),
                ("sendrawtransaction", _) => ok(json!(txid_of(&raw_of(&params[0])).to_hex())),
                _ => err(-32601, "Method not found"),
            }
        })
        .await;
        let (app, _dir) = server(&stub).await;
        let invoice = new_invoice(cashier::units::now_ms());
        store_invoice(app.store(), &invoice).await;
        for (n, (what, _, expected)) in CASES.iter().enumerate() {
            case.store(n, Ordering::SeqCst);
            let raw = payment(&invoice, RATE_PER_KB);
            let checked = app
                .payments()
                .verify(invoice.id, &raw)
                .await
                .expect_err("verify refuses");
            assert!(expected(&checked), "{what}: verify says {checked:?}");
            request_methods(&mut stub);
            for attempt in 0..2 {
                let paid = app
                    .payments()
                    .pay(invoice.id, submission(&raw))
                    .await
                    .expect_err("pay refuses");
                assert!(expected(&paid), "{what}, attempt {attempt}: {paid:?}");
                // One request: the coins and the check. No broadcast, so no claim was taken
                // (the claim is always followed by the broadcast).
                assert_eq!(
                    request_methods(&mut stub),
                    [coins_then_check(1)],
                    "{what}, attempt {attempt}"
                );
                nothing_changed(&mut stub, app.store(), &invoice, &raw).await;
            }
        }
        // The invoice all those were posted to is paid by one the node takes.
        case.store(CASES.len(), Ordering::SeqCst);
        let good = payment(&invoice, RATE_PER_KB);
        let paid = app
            .payments()
            .pay(invoice.id, submission(&good))
            .await
            .expect("paid");
        assert_eq!(paid.status, InvoiceStatus::Paid);
        assert_eq!(paid.payment.map(|p| p.txid), Some(txid_of(&good)));
        assert_eq!(
            request_methods(&mut stub),
            [coins_then_check(1), vec!["sendrawtransaction".to_owned()]]
        );
        assert_eq!(events_of(app.store(), &invoice).await, 1);
    }

    /// A junk-signed payment and an honest one for the same invoice, both at the node at once:
    /// the junk one is refused by the check before it can claim, so the honest one is never
    /// refused because of it, in whichever order the node answers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_honest_payment_racing_a_junk_signed_one_is_never_refused_for_it() {
        let invoice = new_invoice(cashier::units::now_ms());
        let junk = payment(&invoice, RATE_PER_KB);
        let honest = payment(&invoice, RATE_PER_KB);
        let junk_hex = hex::encode(&junk);
        let mut stub = Stub::gated(move |method, params| match method {
            "getblockchaininfo" => ok(json!({"chain": "regtest"})),
            "gettxout" if params[0] == json!(txid(0x42).to_hex()) => txout("0.00050000", 3, None),
            "testmempoolaccept" if params[0][0] == json!(junk_hex) => verdict(
                &raw_of(&params[0][0]),
                false,
                Some("16: mandatory-script-verify-flag-failed (Signature must be zero for failed CHECK(MULTI)SIG operation)"),
            ),
            "testmempoolaccept" => verdict(&raw_of(&params[0][0]), true, None),
            "sendrawtransaction" => ok(json!(txid_of(&raw_of(&params[0])).to_hex())),
            _ => err(-32601, "Method not found"),
        })
        .await;
        // The server's start asks the chain; let it through.
        stub.release(1);
        let (app, _dir) = serving(&stub, &invoice).await;
        stub.drain();
        let payments = app.payments().clone();
        let pay = |raw: &Vec<u8>| {
            let (payments, raw, id) = (payments.clone(), raw.clone(), invoice.id);
            tokio::spawn(async move { payments.pay(id, submission(&raw)).await })
        };
        let junk_pay = pay(&junk);
        let honest_pay = pay(&honest);
        // Both batches wait at the node; then it answers them, in whichever order.
        let mut batches = Vec::new();
        for _ in 0..2 {
            let seen = stub.next().await;
            let calls = seen.body.as_array().expect("a batch").clone();
            assert_eq!(calls.last().unwrap()["method"], "testmempoolaccept");
            batches.push(calls.last().unwrap()["params"][0][0].clone());
        }
        assert!(batches.contains(&json!(hex::encode(&junk))));
        assert!(batches.contains(&json!(hex::encode(&honest))));
        stub.release(2);
        // The junk one is refused for its signature, never because the invoice was taken.
        match junk_pay.await.unwrap() {
            Err(PayError::Rejected(m)) => {
                assert!(m.starts_with("mandatory-script-verify-flag-failed"), "{m}")
            }
            other => panic!("the junk payment: {other:?}"),
        }
        // The honest one has claimed and now broadcasts; only its own transaction is sent.
        let seen = stub.next().await;
        assert_eq!(
            seen.call(),
            ("sendrawtransaction", &json!([hex::encode(&honest)]))
        );
        stub.release(1);
        let paid = honest_pay.await.unwrap().expect("the honest payment pays");
        assert_eq!(paid.status, InvoiceStatus::Paid);
        assert_eq!(paid.payment.map(|p| p.txid), Some(txid_of(&honest)));
        assert!(stub.drain().is_empty(), "nothing else reached the node");
        assert_eq!(events_of(app.store(), &invoice).await, 1);
    }
}

// ---------------------------------------------------------------------------------------------
// Concurrency
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_more_than_max_concurrent_requests_reach_the_node_at_once() {
    const BOUND: usize = 3;
    const CALLS: usize = 10;
    let mut stub = Stub::gated(|_, _| ok(json!({"chain": "regtest"}))).await;
    let client =
        BchnClient::new(&stub.url(), BOUND, Duration::from_secs(60), &outbound()).expect("client");
    // Spawned, so the calls are also shown to be Send and usable from any task.
    let calls: Vec<_> = (0..CALLS)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.network().await })
        })
        .collect();

    // The first BOUND requests arrive and are held; then each one let through makes room
    // for exactly one more.
    for _ in 0..BOUND {
        stub.next().await;
    }
    for _ in BOUND..CALLS {
        stub.release(1);
        stub.next().await;
    }
    stub.release(BOUND);
    for call in calls {
        assert_eq!(call.await.expect("task"), Ok(Network::Regtest));
    }
    assert_eq!(stub.max_in_flight(), BOUND);
    assert!(
        stub.drain().is_empty(),
        "no request beyond the {CALLS} calls"
    );
}

// ---------------------------------------------------------------------------------------------
// The amount parser itself
// ---------------------------------------------------------------------------------------------

#[test]
fn amount_text_edge_cases() {
    assert_eq!(sats_from_bch_text("0"), Some(0));
    assert_eq!(sats_from_bch_text("12"), Some(1_200_000_000));
    assert_eq!(sats_from_bch_text("0.5e1"), Some(500_000_000));
    assert_eq!(sats_from_bch_text("2.1e7"), Some(MAX_MONEY_SATS));
    assert_eq!(sats_from_bch_text("100e-10"), Some(1));
    for bad in [
        "",
        ".",
        "1.",
        ".5",
        "1e",
        "e-8",
        "1.2.3",
        "+1",
        "0x10",
        "NaN",
        "1e-9",
        "2.2e7",
        "99999999999999999999",
        "1e2147483648",
    ] {
        assert_eq!(sats_from_bch_text(bad), None, "{bad:?}");
    }
}

proptest! {
    /// Every amount, printed as BCHN prints it (`%d.%08d`) or with an exponent, reads back
    /// to the same satoshis.
    #[test]
    fn amounts_round_trip(sats in 0..=MAX_MONEY_SATS) {
        let fixed = format!("{}.{:08}", sats / 100_000_000, sats % 100_000_000);
        prop_assert_eq!(sats_from_bch_text(&fixed), Some(sats));
        prop_assert_eq!(sats_from_bch_text(&format!("{sats}e-8")), Some(sats));
    }
}

// ---------------------------------------------------------------------------------------------
// Watching the chain: tip, headers, blocks, mempool, double-spend proofs
// ---------------------------------------------------------------------------------------------

fn block_hash(byte: u8) -> BlockHash {
    BlockHash([byte; 32])
}

/// `getblockheader <hash> true` as BCHN writes it (`blockheaderToJSON`): `confirmations` is -1
/// off the main chain, `previousblockhash` is absent for the genesis block alone.
fn header_json(hash: BlockHash, height: i64, confirmations: i64, prev: Option<BlockHash>) -> Value {
    let mut header = json!({
        "hash": hash.to_hex(),
        "confirmations": confirmations,
        "height": height,
        "version": 536870912,
        "versionHex": "20000000",
        "merkleroot": "00".repeat(32),
        "time": 1_700_000_000,
        "mediantime": 1_699_999_000,
        "nonce": 42,
        "bits": "207fffff",
        "difficulty": 4.656542373906925e-10,
        "chainwork": format!("{:064x}", 2 * height + 2),
        "nTx": 3,
    });
    if let Some(prev) = prev {
        header["previousblockhash"] = json!(prev.to_hex());
    }
    header
}

/// A coinbase, unique by `tag`.
fn coinbase(tag: u8) -> Tx {
    Tx {
        version: 1,
        inputs: vec![Input {
            prevout: OutPoint {
                txid: Txid([0; 32]),
                vout: u32::MAX,
            },
            script_sig: vec![0x02, tag, 0x01],
            sequence: u32::MAX,
        }],
        outputs: vec![Output {
            value: 312_500_000,
            token: None,
            locking_bytecode: p2pkh(),
        }],
        lock_time: 0,
    }
}

/// A payment signed the way wallets sign, from a fresh key.
fn payment() -> Tx {
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let key = cashier::chain::wallet::random_key();
    let coin = Output {
        value: 50_000,
        token: None,
        locking_bytecode: cashier::chain::sighash::p2pkh_locking_bytecode(&key.public_key(&secp)),
    };
    let prevout = OutPoint {
        txid: txid(0x33),
        vout: 0,
    };
    let pay = Output {
        value: 10_000,
        token: None,
        locking_bytecode: p2pkh(),
    };
    cashier::chain::wallet::build_payment(&secp, &key, &[(prevout, coin)], vec![pay], 1000)
        .expect("a payment")
}

/// A raw block after `prev` holding `txs`, with a header that commits to them, and its hash.
fn raw_block(prev: BlockHash, txs: &[Tx]) -> (BlockHash, Vec<u8>) {
    let mut root = merkle_root_of(txs.iter().map(Tx::txid)).0;
    root.reverse();
    let mut prev_wire = prev.0;
    prev_wire.reverse();
    let mut raw = Vec::new();
    raw.extend_from_slice(&0x2000_0000u32.to_le_bytes());
    raw.extend_from_slice(&prev_wire);
    raw.extend_from_slice(&root);
    raw.extend_from_slice(&1_700_000_000u32.to_le_bytes());
    raw.extend_from_slice(&0x207f_ffffu32.to_le_bytes());
    raw.extend_from_slice(&7u32.to_le_bytes());
    let header: [u8; 80] = raw[..].try_into().unwrap();
    cashier::chain::write_compact_size(&mut raw, txs.len() as u64);
    for tx in txs {
        raw.extend_from_slice(&tx.serialize());
    }
    (header_hash(&header), raw)
}

/// Each call of a batch request: (method, params).
fn batch_calls(seen: &Seen) -> Vec<(String, Value)> {
    seen.body
        .as_array()
        .expect("a batch")
        .iter()
        .map(|c| {
            (
                c["method"].as_str().unwrap().to_string(),
                c["params"].clone(),
            )
        })
        .collect()
}

#[tokio::test]
async fn tip_reads_the_best_hash_then_its_header() {
    let tip = block_hash(0xb2);
    let mut stub = Stub::start(move |method, params| match method {
        "getbestblockhash" => ok(json!(tip.to_hex())),
        "getblockheader" if params[0] == json!(tip.to_hex()) => {
            ok(header_json(tip, 812, 1, Some(block_hash(0xb1))))
        }
        _ => err(-32601, "Method not found"),
    })
    .await;
    assert_eq!(
        stub.client().tip().await,
        Ok(Header {
            hash: tip,
            height: 812,
            prev: Some(block_hash(0xb1)),
        })
    );
    let seen = stub.drain();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].call(), ("getbestblockhash", &json!([])));
    assert_eq!(
        seen[1].call(),
        ("getblockheader", &json!([tip.to_hex(), true]))
    );
}

#[tokio::test]
async fn tip_asks_again_when_a_reorg_replaced_it_between_the_two_calls() {
    let asked = Arc::new(AtomicUsize::new(0));
    let count = asked.clone();
    let (old, new) = (block_hash(0xc1), block_hash(0xc2));
    let stub = Stub::start(move |method, params| match method {
        "getbestblockhash" => {
            let first = count.fetch_add(1, Ordering::SeqCst) == 0;
            ok(json!(if first { old } else { new }.to_hex()))
        }
        // By the time its header is read, the first tip is off the main chain.
        "getblockheader" if params[0] == json!(old.to_hex()) => {
            ok(header_json(old, 900, -1, Some(block_hash(0xc0))))
        }
        "getblockheader" => ok(header_json(new, 900, 1, Some(block_hash(0xc0)))),
        _ => err(-32601, "Method not found"),
    })
    .await;
    assert_eq!(stub.client().tip().await.map(|h| h.hash), Ok(new));
    assert_eq!(asked.load(Ordering::SeqCst), 2);

    // A tip that never holds still is not retried for ever.
    let stub = Stub::start(move |method, _| match method {
        "getbestblockhash" => ok(json!(old.to_hex())),
        _ => ok(header_json(old, 900, -1, Some(block_hash(0xc0)))),
    })
    .await;
    let text = unavailable(stub.client().tip().await);
    assert!(text.contains("retry"), "{text}");
}

#[tokio::test]
async fn headers_on_the_main_chain_off_it_and_unknown() {
    let main = block_hash(0xd1);
    let stale = block_hash(0xd2);
    let genesis = block_hash(0xd0);
    let mut stub = Stub::start(move |_, params| {
        let asked = params[0].as_str().unwrap_or("");
        if asked == main.to_hex() {
            ok(header_json(main, 1, 5, Some(genesis)))
        } else if asked == stale.to_hex() {
            // A block the node knows that lost a reorg.
            ok(header_json(stale, 1, -1, Some(genesis)))
        } else if asked == genesis.to_hex() {
            ok(header_json(genesis, 0, 6, None))
        } else {
            err(-5, "Block not found")
        }
    })
    .await;
    let client = stub.client();
    assert_eq!(
        client.header(main).await,
        Ok(Some(Header {
            hash: main,
            height: 1,
            prev: Some(genesis),
        }))
    );
    assert_eq!(client.header(stale).await, Ok(None));
    assert_eq!(
        client.header(genesis).await,
        Ok(Some(Header {
            hash: genesis,
            height: 0,
            prev: None,
        }))
    );
    assert_eq!(client.header(block_hash(0xee)).await, Ok(None));
    assert_eq!(
        stub.next().await.call(),
        ("getblockheader", &json!([main.to_hex(), true]))
    );
}

#[tokio::test]
async fn headers_bchn_does_not_write_are_protocol_errors() {
    let asked = block_hash(0xe1);
    for (answer, words) in [
        // The answer is for another block.
        (
            header_json(block_hash(0xe2), 5, 1, Some(block_hash(0xe0))),
            "answered for",
        ),
        // Only the genesis block has no parent.
        (header_json(asked, 5, 1, None), "genesis"),
        (header_json(asked, 0, 1, Some(block_hash(0xe0))), "genesis"),
        (
            header_json(asked, 5, 0, Some(block_hash(0xe0))),
            "confirmations",
        ),
        (
            json!({"hash": asked.to_hex(), "height": 5}),
            "getblockheader",
        ),
        (
            json!({"hash": "zz", "confirmations": 1, "height": 5}),
            "not a block hash",
        ),
        (json!("00"), "getblockheader"),
    ] {
        let stub = Stub::start(move |_, _| ok(answer.clone())).await;
        let text = protocol(stub.client().header(asked).await);
        assert!(text.contains(words), "{words}: {text}");
    }
    let stub = Stub::start(|_, _| ok(json!(42))).await;
    let text = protocol(stub.client().tip().await);
    assert!(text.contains("getbestblockhash"), "{text}");
}

#[tokio::test]
async fn block_reads_its_header_and_bytes_in_one_batch() {
    let prev = block_hash(0xa0);
    let txs = vec![coinbase(1), payment(), payment()];
    let (hash, raw) = raw_block(prev, &txs);
    let hex_block = hex::encode(&raw);
    let mut stub = Stub::start(move |method, params| {
        if params[0] != json!(hash.to_hex()) {
            return err(-5, "Block not found");
        }
        match method {
            "getblockheader" => ok(header_json(hash, 700_001, 3, Some(prev))),
            "getblock" => ok(json!(hex_block)),
            _ => err(-32601, "Method not found"),
        }
    })
    .await;
    let block = stub.client().block(hash).await.unwrap().expect("the block");
    assert_eq!(
        block.header,
        Header {
            hash,
            height: 700_001,
            prev: Some(prev),
        }
    );
    let txids: Vec<Txid> = block.txs.iter().map(|t| t.txid).collect();
    assert_eq!(txids, txs.iter().map(Tx::txid).collect::<Vec<_>>());
    assert_eq!(block.txs[1].tx, txs[1]);

    let seen = stub.drain();
    assert_eq!(seen.len(), 1, "one request for both calls");
    assert_eq!(
        batch_calls(&seen[0]),
        vec![
            ("getblockheader".to_string(), json!([hash.to_hex(), true])),
            ("getblock".to_string(), json!([hash.to_hex(), 0])),
        ]
    );
}

#[tokio::test]
async fn a_block_unknown_or_off_the_main_chain_is_none() {
    let (hash, raw) = raw_block(block_hash(0xa0), &[coinbase(2)]);
    let stub = Stub::start(|_, _| err(-5, "Block not found")).await;
    assert_eq!(stub.client().block(hash).await, Ok(None));

    let hex_block = hex::encode(&raw);
    let stub = Stub::start(move |method, _| match method {
        "getblockheader" => ok(header_json(hash, 10, -1, Some(block_hash(0xa0)))),
        _ => ok(json!(hex_block)),
    })
    .await;
    assert_eq!(stub.client().block(hash).await, Ok(None));
}

#[tokio::test]
async fn block_bytes_that_are_not_the_block_asked_for_are_protocol_errors() {
    let prev = block_hash(0xa0);
    let (hash, raw) = raw_block(prev, &[coinbase(3), payment()]);
    let (other, other_raw) = raw_block(prev, &[coinbase(4)]);
    let mut cut = raw.clone();
    cut.truncate(raw.len() - 1);
    for (bytes, words) in [
        (json!(hex::encode(&other_raw)), "not of the block asked for"),
        (json!(hex::encode(&cut)), "getblock"),
        (json!("not hex"), "hex"),
        (json!({"hash": hash.to_hex()}), "expected a hex string"),
    ] {
        let stub = Stub::start(move |method, _| match method {
            "getblockheader" => ok(header_json(hash, 10, 1, Some(prev))),
            _ => ok(bytes.clone()),
        })
        .await;
        let text = protocol(stub.client().block(hash).await);
        assert!(text.contains(words), "{words}: {text}");
    }
    // The header says another parent than the bytes.
    let hex_block = hex::encode(&raw);
    let stub = Stub::start(move |method, _| match method {
        "getblockheader" => ok(header_json(hash, 10, 1, Some(other))),
        _ => ok(json!(hex_block)),
    })
    .await;
    protocol(stub.client().block(hash).await);
}

#[tokio::test]
async fn a_pruned_block_is_a_protocol_error_and_one_not_downloaded_yet_is_unavailable() {
    let hash = block_hash(0xa7);
    for (message, pruned) in [
        ("Block not available (pruned data)", true),
        ("Block not found on disk", false),
    ] {
        let stub = Stub::start(move |method, _| match method {
            "getblockheader" => ok(header_json(hash, 10, 1, Some(block_hash(0xa6)))),
            _ => err(-1, message),
        })
        .await;
        let result = stub.client().block(hash).await;
        let text = if pruned {
            protocol(result)
        } else {
            unavailable(result)
        };
        assert!(text.contains(message), "{text}");
    }
}

#[tokio::test]
async fn mempool_lists_its_txids() {
    let mut stub = Stub::start(|_, _| ok(json!([txid(1).to_hex(), txid(2).to_hex()]))).await;
    assert_eq!(stub.client().mempool().await, Ok(vec![txid(1), txid(2)]));
    assert_eq!(stub.next().await.call(), ("getrawmempool", &json!([false])));

    let stub = Stub::start(|_, _| ok(json!([]))).await;
    assert_eq!(stub.client().mempool().await, Ok(vec![]));

    for answer in [json!([txid(1).to_hex(), "abc"]), json!({}), json!(null)] {
        let stub = Stub::start(move |_, _| ok(answer.clone())).await;
        let text = protocol(stub.client().mempool().await);
        assert!(text.contains("getrawmempool"), "{text}");
    }
}

/// `getmempoolentry`'s answer, the fields BCHN v28 writes.
fn mempool_entry() -> Reply {
    ok(json!({
        "size": 219, "time": 1_700_000_123, "height": 101,
        "fees": {"base": 0.00000219, "modified": 0.00000219},
        "depends": [], "spentby": []
    }))
}

#[tokio::test]
async fn mempool_tx_asks_the_mempool_and_reads_the_bytes_in_one_batch() {
    let tx = payment();
    let raw = tx.serialize();
    let id = tx.txid();
    let hex_tx = hex::encode(&raw);
    let mut stub = Stub::start(move |method, _| match method {
        "getmempoolentry" => mempool_entry(),
        "getrawtransaction" => ok(json!(hex_tx)),
        _ => err(-32601, "Method not found"),
    })
    .await;
    assert_eq!(
        stub.client().mempool_tx(id).await,
        Ok(Some(ChainTx {
            txid: id,
            tx: tx.clone(),
        }))
    );
    let seen = stub.drain();
    assert_eq!(seen.len(), 1, "one request for both calls");
    assert_eq!(
        batch_calls(&seen[0]),
        vec![
            ("getmempoolentry".to_string(), json!([id.to_hex()])),
            ("getrawtransaction".to_string(), json!([id.to_hex(), false])),
        ]
    );
}

#[tokio::test]
async fn mempool_tx_is_none_outside_the_mempool_even_when_the_node_has_the_tx() {
    let tx = payment();
    let id = tx.txid();
    // Confirmed, with -txindex: getrawtransaction finds it, the mempool does not.
    let hex_tx = hex::encode(tx.serialize());
    let stub = Stub::start(move |method, _| match method {
        "getmempoolentry" => err(-5, "Transaction not in mempool"),
        _ => ok(json!(hex_tx)),
    })
    .await;
    assert_eq!(stub.client().mempool_tx(id).await, Ok(None));

    // Gone between the two calls.
    let stub = Stub::start(move |method, _| match method {
        "getmempoolentry" => mempool_entry(),
        _ => err(
            -5,
            "No such mempool transaction. Use -txindex to enable blockchain transaction \
             queries. Use gettransaction for wallet transactions.",
        ),
    })
    .await;
    assert_eq!(stub.client().mempool_tx(id).await, Ok(None));
}

#[tokio::test]
async fn mempool_tx_bytes_of_another_tx_or_not_a_tx_are_protocol_errors() {
    let id = payment().txid();
    for (bytes, words) in [
        (
            hex::encode(payment().serialize()),
            "not of the transaction asked for",
        ),
        ("zz".to_string(), "hex"),
    ] {
        let stub = Stub::start(move |method, _| match method {
            "getmempoolentry" => mempool_entry(),
            _ => ok(json!(bytes)),
        })
        .await;
        let text = protocol(stub.client().mempool_tx(id).await);
        assert!(text.contains(words), "{words}: {text}");
    }
    // Bytes that hash to the txid but are no transaction.
    let junk = vec![0xab; 80];
    let junk_id = txid_of(&junk);
    let hex_junk = hex::encode(&junk);
    let stub = Stub::start(move |method, _| match method {
        "getmempoolentry" => mempool_entry(),
        _ => ok(json!(hex_junk)),
    })
    .await;
    protocol(stub.client().mempool_tx(junk_id).await);
}

#[tokio::test]
async fn double_spend_proofs_none_found_and_disabled() {
    let id = txid(0x51);
    let parent = txid(0x50);
    let dspid = "7c1b5b2a1f0e0d0c0b0a09080706050403020100f0e0d0c0b0a0908070605040";
    // `getdsproof <txid> 2 true` as BCHN answers it when a parent of the tx was double-spent.
    let proof = json!({
        "dspid": dspid,
        "txid": parent.to_hex(),
        "outpoint": {"txid": txid(0x4f).to_hex(), "vout": 0},
        "descendants": [parent.to_hex(), id.to_hex()],
        "path": [id.to_hex(), parent.to_hex()],
    });
    // Two payments asked in one batch: the first has a proof (through its parent), the second
    // none (BCHN answers null, not an error).
    let other = txid(0x52);
    let mut stub = Stub::start(move |_, params| {
        if params[0] == json!(id.to_hex()) {
            ok(proof.clone())
        } else {
            ok(Value::Null)
        }
    })
    .await;
    assert_eq!(
        stub.client().double_spend_proofs(&[id, other]).await,
        Ok(vec![
            Some(DsProof {
                id: dspid.to_string(),
                txid: parent,
            }),
            None
        ])
    );
    assert_eq!(
        batch_calls(&stub.next().await),
        vec![
            ("getdsproof".to_string(), json!([id.to_hex(), 2, true])),
            ("getdsproof".to_string(), json!([other.to_hex(), 2, true])),
        ],
        "one request for both"
    );
    assert_eq!(stub.client().double_spend_proofs(&[]).await, Ok(vec![]));

    let stub = Stub::start(|_, _| {
        err(
            -90,
            "Double-spend proofs subsystem is disabled. Restart with -doublespendproof=1 to \
             enable.",
        )
    })
    .await;
    let text = protocol(stub.client().double_spend_proofs(&[id]).await);
    assert!(text.contains("-doublespendproof"), "{text}");

    for answer in [
        json!({"dspid": dspid, "txid": null}),
        json!({"dspid": "xyz", "txid": id.to_hex()}),
        json!({"txid": id.to_hex()}),
        json!([]),
    ] {
        let stub = Stub::start(move |_, _| ok(answer.clone())).await;
        let text = protocol(stub.client().double_spend_proofs(&[id]).await);
        assert!(text.contains("getdsproof"), "{text}");
    }
}

#[tokio::test]
async fn watching_a_node_that_is_down_is_unavailable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let url = format!("http://{USER}:{PASSWORD}@127.0.0.1:{port}");
    let client = BchnClient::new(&url, 4, Duration::from_secs(30), &outbound()).expect("client");
    unavailable(client.tip().await);
    unavailable(client.header(block_hash(1)).await);
    unavailable(client.block(block_hash(1)).await);
    unavailable(client.mempool().await);
    unavailable(client.mempool_tx(txid(1)).await);
    unavailable(client.double_spend_proofs(&[txid(1)]).await);
}

#[tokio::test]
async fn the_client_is_a_chain_source() {
    async fn tip_of(source: &impl ChainSource) -> Result<Header, NodeError> {
        source.tip().await
    }
    let tip = block_hash(0xf1);
    let stub = Stub::start(move |method, _| match method {
        "getbestblockhash" => ok(json!(tip.to_hex())),
        _ => ok(header_json(tip, 3, 1, Some(block_hash(0xf0)))),
    })
    .await;
    assert_eq!(tip_of(&stub.client()).await.map(|h| h.height), Ok(3));
}

// ---------------------------------------------------------------------------------------------
// ZMQ hints, against a real PUB socket sending what BCHN sends
// ---------------------------------------------------------------------------------------------

/// How long any one wait may take before the test fails; tests move on events, never on it.
const GUARD: Duration = Duration::from_secs(20);

/// The block hash of the probes that find out when the subscription has reached the
/// publisher, and of the marker sent after them.
const PROBE: BlockHash = BlockHash([0xee; 32]);
const MARK: BlockHash = BlockHash([0xef; 32]);

/// A PUB socket sending as BCHN does: `[topic, body, sequence as 4 bytes little-endian]`, each
/// topic counting from 0 on its own.
struct Publisher {
    socket: PubSocket,
    port: u16,
    next: std::collections::HashMap<&'static str, u32>,
}

impl Publisher {
    /// Binds `port` on 127.0.0.1 (0 for any).
    async fn bind(port: u16) -> Publisher {
        let mut socket = PubSocket::new();
        let endpoint = socket
            .bind(&format!("tcp://127.0.0.1:{port}"))
            .await
            .expect("bind a PUB socket");
        let port = match endpoint {
            zeromq::Endpoint::Tcp(_, port) => port,
            other => panic!("bound {other}"),
        };
        Publisher {
            socket,
            port,
            next: Default::default(),
        }
    }

    fn endpoint(&self) -> String {
        format!("tcp://127.0.0.1:{}", self.port)
    }

    /// Stops listening (awaited, so the port is free again) and drops every connection.
    async fn stop(self) {
        let errors = self.socket.close().await;
        assert!(errors.is_empty(), "{errors:?}");
    }

    /// Sends with the topic's next sequence number.
    async fn send(&mut self, topic: &'static str, body: &[u8]) {
        let seq = self.next.get(topic).copied().unwrap_or(0);
        self.send_numbered(topic, body, seq).await;
    }

    /// Sends with sequence number `seq`; the topic's count goes on from it.
    async fn send_numbered(&mut self, topic: &'static str, body: &[u8], seq: u32) {
        self.send_frames(vec![
            topic.as_bytes().to_vec(),
            body.to_vec(),
            seq.to_le_bytes().to_vec(),
        ])
        .await;
        self.next.insert(topic, seq.wrapping_add(1));
    }

    /// A message of `topic` that never reaches the subscriber (the PUB socket dropped it): its
    /// sequence number is used up, so the topic's next message shows the gap.
    fn lose(&mut self, topic: &'static str) {
        let seq = self.next.get(topic).copied().unwrap_or(0);
        self.next.insert(topic, seq.wrapping_add(1));
    }

    async fn send_frames(&mut self, frames: Vec<Vec<u8>>) {
        let mut message = ZmqMessage::from(frames[0].clone());
        for frame in &frames[1..] {
            message.push_back(frame.clone().into());
        }
        self.socket.send(message).await.expect("send");
    }
}

/// The next notice, within [`GUARD`].
async fn notice(hints: &mut ZmqHints) -> Notice {
    tokio::time::timeout(GUARD, hints.next())
        .await
        .expect("a notice within the guard")
}

/// Waits for the subscriber's connection (its first notice, `Lost`), then for its
/// subscription to reach the publisher.
async fn join(publisher: &mut Publisher, hints: &mut ZmqHints) {
    assert_eq!(
        notice(hints).await,
        Notice::Lost,
        "a connection starts with Lost"
    );
    subscribed(publisher, hints).await;
}

/// Waits for the subscription of a connected subscriber to reach the publisher, which drops
/// everything sent before that (ZeroMQ's "slow joiner"): probes are sent until one gets
/// through, then a marker, and every notice up to the marker must be a probe. Afterwards the
/// stream holds nothing old.
async fn subscribed(publisher: &mut Publisher, hints: &mut ZmqHints) {
    let deadline = tokio::time::Instant::now() + GUARD;
    loop {
        publisher.send("hashblock", &PROBE.0).await;
        // Only the re-send interval: what moves the test on is a probe arriving.
        match tokio::time::timeout(Duration::from_millis(25), hints.next()).await {
            Ok(Notice::Block(PROBE)) => break,
            Ok(other) => panic!("expected a probe, got {other:?}"),
            Err(_) => assert!(
                tokio::time::Instant::now() < deadline,
                "no probe got through"
            ),
        }
    }
    publisher.send("hashblock", &MARK.0).await;
    loop {
        match notice(hints).await {
            Notice::Block(MARK) => break,
            Notice::Block(PROBE) => {}
            other => panic!("expected a probe or the marker, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn zmq_blocks_transactions_and_double_spends_arrive_as_notices() {
    let mut publisher = Publisher::bind(0).await;
    let mut hints = ZmqHints::connect(&publisher.endpoint()).expect("a tcp endpoint");
    assert_eq!(hints.endpoint(), publisher.endpoint());
    join(&mut publisher, &mut hints).await;

    let tip = block_hash(0x71);
    publisher.send("hashblock", &tip.0).await;
    assert_eq!(notice(&mut hints).await, Notice::Block(tip));

    let tx = payment();
    publisher.send("rawtx", &tx.serialize()).await;
    match notice(&mut hints).await {
        Notice::Tx { tx: got, seen_ms } => {
            assert_eq!(
                got,
                ChainTx {
                    txid: tx.txid(),
                    tx: tx.clone(),
                }
            );
            assert!(seen_ms > 0);
        }
        other => panic!("{other:?}"),
    }

    // `hashds`: the first-seen transaction's txid, in display order.
    publisher.send("hashds", &tx.txid().0).await;
    assert_eq!(notice(&mut hints).await, Notice::DoubleSpend(tx.txid()));

    // A topic the subscriber did not ask for never reaches it.
    publisher.send("hashtx", &tx.txid().0).await;
    publisher.send("hashblock", &block_hash(0x72).0).await;
    assert_eq!(notice(&mut hints).await, Notice::Block(block_hash(0x72)));
}

#[tokio::test]
async fn zmq_a_skipped_sequence_number_is_lost() {
    let mut publisher = Publisher::bind(0).await;
    let mut hints = ZmqHints::connect(&publisher.endpoint()).expect("a tcp endpoint");
    join(&mut publisher, &mut hints).await;

    let tx = payment();
    publisher.send_numbered("rawtx", &tx.serialize(), 7).await; // the first rawtx: sets the count
    assert!(matches!(notice(&mut hints).await, Notice::Tx { .. }));

    // hashblock #n+1 never comes.
    let due = publisher.next["hashblock"];
    let tip = block_hash(0x73);
    publisher.send_numbered("hashblock", &tip.0, due + 1).await;
    assert_eq!(notice(&mut hints).await, Notice::Lost);
    assert_eq!(notice(&mut hints).await, Notice::Block(tip));

    // Counts go on from there, per topic: no more losses.
    publisher.send("hashblock", &block_hash(0x74).0).await;
    publisher.send("rawtx", &tx.serialize()).await;
    assert_eq!(notice(&mut hints).await, Notice::Block(block_hash(0x74)));
    assert!(matches!(notice(&mut hints).await, Notice::Tx { .. }));
}

#[tokio::test]
async fn zmq_a_publisher_that_goes_away_and_comes_back_is_lost_after_reconnect() {
    let mut publisher = Publisher::bind(0).await;
    let port = publisher.port;
    let mut hints = ZmqHints::connect(&publisher.endpoint()).expect("a tcp endpoint");
    join(&mut publisher, &mut hints).await;
    publisher.send("hashblock", &block_hash(0x75).0).await;
    assert_eq!(notice(&mut hints).await, Notice::Block(block_hash(0x75)));

    // The node restarts: same address, sequence numbers from 0 again.
    publisher.stop().await;
    let mut publisher = Publisher::bind(port).await;
    join(&mut publisher, &mut hints).await;
    publisher.send("hashblock", &block_hash(0x76).0).await;
    assert_eq!(notice(&mut hints).await, Notice::Block(block_hash(0x76)));
}

#[tokio::test]
async fn zmq_a_publisher_not_there_yet_is_waited_for() {
    // A free port, with nothing listening.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let hints = ZmqHints::connect(&format!("tcp://127.0.0.1:{port}")).expect("endpoint");
    let waiting = tokio::spawn(async move {
        let mut hints = hints;
        let first = hints.next().await;
        (first, hints)
    });
    let mut publisher = Publisher::bind(port).await;
    let (first, mut hints) = tokio::time::timeout(GUARD, waiting)
        .await
        .expect("connected within the guard")
        .expect("the task");
    assert_eq!(first, Notice::Lost);
    subscribed(&mut publisher, &mut hints).await;
    publisher.send("hashblock", &block_hash(0x7b).0).await;
    assert_eq!(notice(&mut hints).await, Notice::Block(block_hash(0x7b)));
}

#[tokio::test]
async fn zmq_a_malformed_message_is_skipped_and_the_stream_goes_on() {
    let mut publisher = Publisher::bind(0).await;
    let mut hints = ZmqHints::connect(&publisher.endpoint()).expect("a tcp endpoint");
    join(&mut publisher, &mut hints).await;

    // A hash one byte short: its hint is gone, so the watcher must reconcile.
    publisher.send("hashblock", &[0x77; 31]).await;
    assert_eq!(notice(&mut hints).await, Notice::Lost);
    // A body that is not a transaction.
    publisher.send("rawtx", b"not a transaction").await;
    assert_eq!(notice(&mut hints).await, Notice::Lost);
    // Two frames where BCHN sends three; and a sequence number of the wrong size.
    publisher
        .send_frames(vec![b"hashds".to_vec(), vec![0x78; 32]])
        .await;
    assert_eq!(notice(&mut hints).await, Notice::Lost);
    publisher
        .send_frames(vec![b"hashds".to_vec(), vec![0x78; 32], vec![0, 0]])
        .await;
    assert_eq!(notice(&mut hints).await, Notice::Lost);

    // The stream goes on, and the malformed hashblock still counted: no gap.
    publisher.send("hashblock", &block_hash(0x79).0).await;
    assert_eq!(notice(&mut hints).await, Notice::Block(block_hash(0x79)));
    publisher.send("hashds", &txid(0x7a).0).await;
    assert_eq!(notice(&mut hints).await, Notice::DoubleSpend(txid(0x7a)));
}

// ---------------------------------------------------------------------------------------------
// The chain watcher end to end: the real server on a stub node that holds a small chain, with
// a PUB socket sending BCHN's hints
// ---------------------------------------------------------------------------------------------

mod watching {
    use super::*;

    use std::collections::{HashMap, HashSet};
    use std::sync::{Mutex, MutexGuard};

    use clap::Parser;
    use futures_util::StreamExt;
    use tokio::sync::watch;
    use tokio::time::Instant;
    use tokio_tungstenite::tungstenite::Message;

    use cashier::app::{Application, Shutdown};
    use cashier::chain::Address;
    use cashier::store::Store;

    /// The coin every transaction here spends, in sats (each from a key of its own).
    const COIN: u64 = 50_000;
    /// What the invoices ask for.
    const PRICE: u64 = 4000;
    /// A poll interval no test lasts: whatever the watcher does, a hint made it do it.
    const HINTS_ONLY: &str = "600";
    /// The shortest poll interval: what the hints never said is found within a second.
    const POLL_FAST: &str = "1";
    /// A double-spend proof's id as BCHN prints it.
    const DSPID: &str = "5e0f3c1a9b8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f";

    /// A block the stub node holds, on its main chain or no longer.
    struct StubBlock {
        height: i64,
        prev: Option<BlockHash>,
        raw: Vec<u8>,
        /// Its transactions' bytes, coinbase first.
        txs: Vec<Vec<u8>>,
    }

    /// A mempool transaction and when it entered (unix seconds, BCHN's `time`).
    struct Entry {
        txid: Txid,
        raw: Vec<u8>,
        time: i64,
    }

    /// What the stub node knows.
    #[derive(Default)]
    struct Chain {
        blocks: HashMap<BlockHash, StubBlock>,
        /// The main chain, by height.
        main: Vec<BlockHash>,
        mempool: Vec<Entry>,
        /// The main-chain block of each mined transaction (the node runs with `-txindex`).
        mined: HashMap<Txid, BlockHash>,
        proofs: HashMap<Txid, String>,
        /// Every call answered, in order: (method, params).
        calls: Vec<(String, Value)>,
        /// Coinbases made, so that each one (and each block) is unique.
        coinbases: u8,
    }

    /// A BCHN node for the stub to answer for: blocks linked by hash, a mempool, proofs.
    #[derive(Clone)]
    struct Node {
        chain: Arc<Mutex<Chain>>,
        /// Bumped after each call is recorded, for the tests that wait for one.
        answered: Arc<watch::Sender<usize>>,
    }

    impl Node {
        /// The genesis block and `height` blocks after it; an empty mempool.
        fn new(height: i64) -> Node {
            let node = Node {
                chain: Arc::default(),
                answered: Arc::new(watch::channel(0).0),
            };
            for _ in 0..=height {
                node.mine(&[]);
            }
            node
        }

        fn chain(&self) -> MutexGuard<'_, Chain> {
            self.chain.lock().expect("the stub's chain")
        }

        /// A stub RPC server answering for this node.
        async fn serve(&self) -> Stub {
            let node = self.clone();
            Stub::start(move |method, params| node.answer(method, params)).await
        }

        fn answer(&self, method: &str, params: &Value) -> Reply {
            let reply = {
                let mut chain = self.chain();
                chain.calls.push((method.to_string(), params.clone()));
                chain.reply(method, params)
            };
            self.answered.send_modify(|n| *n += 1);
            reply
        }

        /// `raw` enters the mempool now; its txid.
        fn accept(&self, raw: &[u8]) -> Txid {
            let txid = txid_of(raw);
            let time = cashier::units::now_ms().div_euclid(1000);
            self.chain().mempool.push(Entry {
                txid,
                raw: raw.to_vec(),
                time,
            });
            txid
        }

        /// Mines a block on the tip holding a new coinbase and `txids`, taken from the
        /// mempool; its hash.
        fn mine(&self, txids: &[Txid]) -> BlockHash {
            let mut chain = self.chain();
            chain.coinbases += 1;
            let mut txs = vec![coinbase(chain.coinbases)];
            for txid in txids {
                let at = chain
                    .mempool
                    .iter()
                    .position(|e| e.txid == *txid)
                    .expect("mined from the mempool");
                let entry = chain.mempool.remove(at);
                txs.push(Tx::decode(&entry.raw).expect("a transaction"));
            }
            let prev = chain.main.last().copied();
            let (hash, raw) = raw_block(prev.unwrap_or(BlockHash([0; 32])), &txs);
            for tx in &txs {
                chain.mined.insert(tx.txid(), hash);
            }
            let height = chain.main.len() as i64;
            chain.blocks.insert(
                hash,
                StubBlock {
                    height,
                    prev,
                    raw,
                    txs: txs.iter().map(Tx::serialize).collect(),
                },
            );
            chain.main.push(hash);
            hash
        }

        /// Takes the top `depth` blocks off the main chain, newest first, as BCHN does in a
        /// reorg: their transactions go back to the mempool, their coinbases vanish. The
        /// blocks stay known, off the main chain. Returns their hashes, newest first.
        fn disconnect(&self, depth: usize) -> Vec<BlockHash> {
            let mut chain = self.chain();
            let time = cashier::units::now_ms().div_euclid(1000);
            let mut gone = Vec::new();
            for _ in 0..depth {
                let hash = chain.main.pop().expect("a block to take off");
                let txs = chain.blocks[&hash].txs.clone();
                for (index, raw) in txs.into_iter().enumerate() {
                    let txid = txid_of(&raw);
                    chain.mined.remove(&txid);
                    if index > 0 {
                        chain.mempool.push(Entry { txid, raw, time });
                    }
                }
                gone.push(hash);
            }
            gone
        }

        /// From now on the node holds a double-spend proof for `txid`.
        fn prove(&self, txid: Txid) {
            self.chain().proofs.insert(txid, DSPID.to_string());
        }

        /// The tip: (height, hash).
        fn tip(&self) -> (i64, BlockHash) {
            let chain = self.chain();
            let hash = *chain.main.last().expect("a tip");
            (chain.blocks[&hash].height, hash)
        }

        /// The bytes of each transaction in block `hash`, coinbase first.
        fn txs_of(&self, hash: BlockHash) -> Vec<Vec<u8>> {
            self.chain().blocks[&hash].txs.clone()
        }

        /// The params of every call of `method` answered since [`Node::forget_calls`].
        fn calls_of(&self, method: &str) -> Vec<Value> {
            self.chain()
                .calls
                .iter()
                .filter(|(m, _)| m == method)
                .map(|(_, p)| p.clone())
                .collect()
        }

        fn forget_calls(&self) {
            self.chain().calls.clear();
        }

        /// Whether the node answers a call `wanted` picks (now or before) within `within`.
        async fn asked(&self, within: Duration, wanted: impl Fn(&str, &Value) -> bool) -> bool {
            let mut bumped = self.answered.subscribe();
            tokio::time::timeout(within, async {
                loop {
                    let seen = self.chain().calls.iter().any(|(m, p)| wanted(m, p));
                    if seen {
                        return;
                    }
                    bumped.changed().await.expect("the node lives");
                }
            })
            .await
            .is_ok()
        }
    }

    impl Chain {
        fn tip_height(&self) -> i64 {
            self.main.len() as i64 - 1
        }

        fn on_main(&self, hash: BlockHash, height: i64) -> bool {
            self.main.get(height as usize) == Some(&hash)
        }

        fn entry(&self, txid: Txid) -> Option<&Entry> {
            self.mempool.iter().find(|e| e.txid == txid)
        }

        /// BCHN's answer to one call, in the shapes its RPC server writes.
        fn reply(&self, method: &str, params: &Value) -> Reply {
            let hash = params[0].as_str().and_then(BlockHash::from_hex);
            let txid = params[0].as_str().and_then(Txid::from_hex);
            let tip = self.tip_height();
            match method {
                "getblockchaininfo" => {
                    ok(json!({"chain": "regtest", "blocks": tip, "headers": tip}))
                }
                "getbestblockhash" => ok(json!(self.main[tip as usize].to_hex())),
                "getblockheader" => match hash.and_then(|h| Some((h, self.blocks.get(&h)?))) {
                    Some((hash, block)) => {
                        let on_main = self.on_main(hash, block.height);
                        let confirmations = if on_main { tip - block.height + 1 } else { -1 };
                        let mut header = header_json(hash, block.height, confirmations, block.prev);
                        let mut root = block.raw[36..68].to_vec();
                        root.reverse();
                        header["merkleroot"] = json!(hex::encode(root));
                        header["nTx"] = json!(block.txs.len());
                        if let Some(next) = self.main.get(block.height as usize + 1) {
                            if on_main {
                                header["nextblockhash"] = json!(next.to_hex());
                            }
                        }
                        ok(header)
                    }
                    None => err(-5, "Block not found"),
                },
                "getblock" => match hash.and_then(|h| self.blocks.get(&h)) {
                    Some(block) if params[1] == json!(0) => ok(json!(hex::encode(&block.raw))),
                    Some(_) => err(-8, "the stub answers verbosity 0 only"),
                    None => err(-5, "Block not found"),
                },
                "getrawmempool" => {
                    let txids: Vec<String> = self.mempool.iter().map(|e| e.txid.to_hex()).collect();
                    ok(json!(txids))
                }
                "getmempoolentry" => match txid.and_then(|t| self.entry(t)) {
                    Some(entry) => {
                        let tx = Tx::decode(&entry.raw).expect("a transaction");
                        let fee = COIN - tx.outputs.iter().map(|o| o.value).sum::<u64>();
                        let bch = format!("{}.{:08}", fee / 100_000_000, fee % 100_000_000);
                        Reply::Result(format!(
                            r#"{{"size":{},"time":{},"fees":{{"base":{bch},"modified":{bch}}},"depends":[],"spentby":[]}}"#,
                            entry.raw.len(),
                            entry.time
                        ))
                    }
                    None => err(-5, "Transaction not in mempool"),
                },
                "getrawtransaction" => {
                    let Some(txid) = txid else {
                        return err(-8, "parameter 1 must be hexadecimal string");
                    };
                    let found = match (self.entry(txid), self.mined.get(&txid)) {
                        (Some(entry), _) => Some((entry.raw.clone(), None)),
                        (None, Some(hash)) => {
                            let block = &self.blocks[hash];
                            let raw = block.txs.iter().find(|r| txid_of(r) == txid).cloned();
                            raw.map(|raw| (raw, Some((*hash, block.height))))
                        }
                        (None, None) => None,
                    };
                    let Some((raw, block)) = found else {
                        return err(
                            -5,
                            "No such mempool or blockchain transaction. Use gettransaction for \
                             wallet transactions.",
                        );
                    };
                    if !(params[1] == json!(true) || params[1] == json!(1)) {
                        return ok(json!(hex::encode(&raw)));
                    }
                    let mut info = json!({
                        "txid": txid.to_hex(),
                        "hash": txid.to_hex(),
                        "size": raw.len(),
                        "hex": hex::encode(&raw),
                    });
                    if let Some((hash, height)) = block {
                        info["blockhash"] = json!(hash.to_hex());
                        info["confirmations"] = json!(tip - height + 1);
                        info["time"] = json!(1_700_000_000);
                        info["blocktime"] = json!(1_700_000_000);
                    }
                    ok(info)
                }
                "getdsproof" => match txid.and_then(|t| Some((t, self.proofs.get(&t)?))) {
                    Some((txid, dspid)) => {
                        let spent = self
                            .entry(txid)
                            .and_then(|e| Tx::decode(&e.raw).ok())
                            .map(|tx| tx.inputs[0].prevout)
                            .expect("a proof is for a mempool transaction");
                        ok(json!({
                            "dspid": dspid,
                            "txid": txid.to_hex(),
                            "outpoint": {"txid": spent.txid.to_hex(), "vout": spent.vout},
                            "descendants": [txid.to_hex()],
                            "path": [txid.to_hex()],
                        }))
                    }
                    None => ok(Value::Null),
                },
                _ => err(-32601, "Method not found"),
            }
        }
    }

    /// A regtest P2PKH address, distinct by `byte`.
    fn address(byte: u8) -> Address {
        Address::p2pkh(Network::Regtest, [byte; 20])
    }

    /// A signed transaction paying `amount` to `to` (and change back) from a coin of its own,
    /// so no two of them spend the same coin.
    fn pays(to: &Address, amount: u64) -> Vec<u8> {
        let secp = bitcoin::secp256k1::Secp256k1::new();
        let key = cashier::chain::wallet::random_key();
        let coin = Output {
            value: COIN,
            token: None,
            locking_bytecode: cashier::chain::sighash::p2pkh_locking_bytecode(
                &key.public_key(&secp),
            ),
        };
        let prevout = OutPoint {
            txid: Txid(rand::random()),
            vout: 0,
        };
        let pay = Output {
            value: amount,
            token: None,
            locking_bytecode: to.locking_bytecode(),
        };
        cashier::chain::wallet::build_payment(&secp, &key, &[(prevout, coin)], vec![pay], 1000)
            .expect("a payment")
            .serialize()
    }

    fn database(dir: &tempfile::TempDir) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("c.sqlite").display()
        )
    }

    /// The real server, running, on the stub node and its ZMQ publisher.
    struct Server {
        base: String,
        store: Store,
        key: String,
        http: reqwest::Client,
        handle: Shutdown,
        running: tokio::task::JoinHandle<std::io::Result<()>>,
    }

    impl Server {
        async fn start(database_url: &str, stub: &Stub, zmq: &str, poll_every: &str) -> Server {
            let node_url = stub.url();
            let settings = cashier::config::Settings::try_parse_from([
                "cashier serve",
                "--listen",
                "127.0.0.1:0",
                "--database-url",
                database_url,
                "--workers",
                "2",
                "--db-connections",
                "4",
                "--node",
                "bchn",
                "--node-url",
                &node_url,
                "--network",
                "regtest",
                "--node-zmq",
                zmq,
                "--chain-poll-every",
                poll_every,
            ])
            .expect("settings");
            let app = Application::build(&settings).await.expect("server");
            let base = format!("http://127.0.0.1:{}", app.port());
            let store = app.store().clone();
            let handle = app.handle();
            let running = tokio::spawn(app.run_until_stopped());
            let key = crate::keys::merchant_key(&store).await;
            Server {
                base,
                store,
                key,
                http: outbound().http().build().expect("an HTTP client"),
                handle,
                running,
            }
        }

        /// Shuts down as SIGTERM does and waits until the duties have stopped and the
        /// database is flushed.
        async fn stop(self) {
            self.handle.stop(true).await;
            self.running
                .await
                .expect("the server's task")
                .expect("the server stopped cleanly");
        }

        /// A new invoice for `PRICE` sats to `to`, waiting for `confirmations`: its id.
        async fn create(&self, to: &Address, confirmations: u32) -> String {
            let r = self
                .http
                .post(format!("{}/jpp/invoices/", self.base))
                .header("X-Api-Key", &self.key)
                .json(&json!({
                    "outputs": [{"address": to.to_cashaddr(false), "amount": PRICE}],
                    "confirmations": confirmations,
                }))
                .send()
                .await
                .expect("create");
            assert_eq!(r.status(), 201);
            let invoice: Value = r.json().await.expect("JSON");
            invoice["payment_id"].as_str().expect("an id").to_owned()
        }

        async fn invoice(&self, id: &str) -> Value {
            let r = self
                .http
                .get(format!("{}/api/jpp/invoices/{id}", self.base))
                .send()
                .await
                .expect("get");
            assert_eq!(r.status(), 200);
            r.json().await.expect("JSON")
        }

        /// Reads the invoice until `done` holds for it, within [`GUARD`].
        async fn invoice_when(&self, id: &str, done: impl Fn(&Value) -> bool) -> Value {
            let deadline = Instant::now() + GUARD;
            loop {
                let invoice = self.invoice(id).await;
                if done(&invoice) {
                    return invoice;
                }
                assert!(Instant::now() < deadline, "the invoice stayed {invoice}");
                // A pause between reads; the loop ends on the state, not on the clock.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }

        /// Waits until the watcher's newest processed block is `tip`.
        async fn processed(&self, tip: (i64, BlockHash)) {
            let want = Some((tip.0, tip.1.to_hex()));
            let deadline = Instant::now() + GUARD;
            loop {
                let last = self
                    .store
                    .read(cashier::store::chain::last_block)
                    .await
                    .expect("read");
                if last == want {
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "processed {last:?}, not {want:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }

        /// The kinds of the invoice's stored events, oldest first.
        async fn kinds(&self, id: &str) -> Vec<String> {
            let topic = format!("invoice:{id}");
            self.store
                .read(move |c| cashier::store::events::for_topic(c, &topic))
                .await
                .expect("events")
                .into_iter()
                .map(|(_, kind, _)| kind)
                .collect()
        }

        /// The invoice's socket, from its first event on (`since=0`).
        async fn events(&self, id: &str) -> Events {
            let url = format!(
                "{}/ws/jpp/invoice/{id}/?since=0",
                self.base.replacen("http://", "ws://", 1)
            );
            let (socket, _) = tokio_tungstenite::connect_async(url).await.expect("socket");
            Events(socket)
        }
    }

    struct Events(
        tokio_tungstenite::WebSocketStream<
            tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
        >,
    );

    impl Events {
        /// The next event, within [`GUARD`].
        async fn next(&mut self) -> Value {
            let next = async {
                loop {
                    match self.0.next().await.expect("a message").expect("a frame") {
                        Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
                        Message::Close(frame) => panic!("closed: {frame:?}"),
                        _ => continue,
                    }
                }
            };
            tokio::time::timeout(GUARD, next)
                .await
                .expect("an event within the guard")
        }
    }

    /// What BCHN publishes when it connects `hash` as its tip: `rawtx` for each of the block's
    /// transactions, then `hashblock`.
    async fn announce(publisher: &mut Publisher, node: &Node, hash: BlockHash) {
        for raw in node.txs_of(hash) {
            publisher.send("rawtx", &raw).await;
        }
        publisher.send("hashblock", &hash.0).await;
    }

    /// The same messages, all lost on the way.
    fn lose_announcement(publisher: &mut Publisher, node: &Node, hash: BlockHash) {
        for _ in node.txs_of(hash) {
            publisher.lose("rawtx");
        }
        publisher.lose("hashblock");
    }

    /// What BCHN publishes for a reorg: `rawtx` for each transaction of the blocks it
    /// disconnected and of those it connected, then `hashblock` for the new tip alone.
    async fn announce_reorg(
        publisher: &mut Publisher,
        node: &Node,
        disconnected: &[BlockHash],
        connected: &[BlockHash],
    ) {
        for hash in disconnected.iter().chain(connected) {
            for raw in node.txs_of(*hash) {
                publisher.send("rawtx", &raw).await;
            }
        }
        let tip = connected.last().expect("a new tip");
        publisher.send("hashblock", &tip.0).await;
    }

    /// Waits until the server's subscription has reached the publisher, which drops what it
    /// sends before that (ZeroMQ's "slow joiner"). The probe is a `rawtx` paying an invoice
    /// made for it, which the node never lists in its mempool: the watcher then asks the node
    /// about that transaction (`getrawtransaction <txid> true`), which only the hint makes it
    /// do. Probes go out until one gets through. The watcher reads hints between passes, so
    /// the passes it started with are over too. The probe's invoice is paid by it and, at the
    /// next pass, invalid (the node never had the transaction): all on a topic of its own.
    async fn hints_flowing(server: &Server, node: &Node, publisher: &mut Publisher) {
        let to = address(0xb2);
        server.create(&to, 0).await;
        let probe = pays(&to, PRICE);
        let id = json!(txid_of(&probe).to_hex());
        let deadline = Instant::now() + GUARD;
        loop {
            publisher.send("rawtx", &probe).await;
            // Only the re-send interval: what moves the test on is the node being asked.
            let asked = node
                .asked(Duration::from_millis(25), |method, params| {
                    method == "getrawtransaction" && params[0] == id && params[1] == json!(true)
                })
                .await;
            if asked {
                return;
            }
            assert!(Instant::now() < deadline, "no probe got through");
        }
    }

    /// A server on a fresh database, on `node`'s stub and the publisher, polling every
    /// `poll_every` s, once its watcher has processed the node's tip.
    async fn watching(
        node: &Node,
        stub: &Stub,
        publisher: &Publisher,
        poll_every: &str,
    ) -> (Server, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Server::start(&database(&dir), stub, &publisher.endpoint(), poll_every).await;
        server.processed(node.tip()).await;
        (server, dir)
    }

    /// Checks a `payment_received` for a payment of the invoice's address.
    fn received_from_the_chain(event: &Value, txid: Txid) {
        assert_eq!(event["type"], "payment_received", "{event}");
        assert_eq!(event["via"], "chain");
        assert_eq!(event["txid"], txid.to_hex());
        assert_eq!(event["amount"], PRICE);
        assert_eq!(event["invoice"]["status"], "paid");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watcher_hints_alone_pay_and_confirm_an_invoice() {
        let node = Node::new(2);
        let stub = node.serve().await;
        let mut publisher = Publisher::bind(0).await;
        let (server, _dir) = watching(&node, &stub, &publisher, HINTS_ONLY).await;
        hints_flowing(&server, &node, &mut publisher).await;

        let to = address(0xa1);
        let id = server.create(&to, 1).await;
        let mut events = server.events(&id).await;
        // A wallet pays the address; the node takes the transaction and says so on `rawtx`.
        let raw = pays(&to, PRICE);
        let txid = node.accept(&raw);
        publisher.send("rawtx", &raw).await;
        received_from_the_chain(&events.next().await, txid);

        let block = node.mine(&[txid]);
        announce(&mut publisher, &node, block).await;
        let confirmed = events.next().await;
        assert_eq!(confirmed["type"], "payment_confirmed", "{confirmed}");
        assert_eq!(confirmed["txid"], txid.to_hex());
        assert_eq!(confirmed["confirmations"], 1);
        assert_eq!(confirmed["block_hash"], block.to_hex());
        assert_eq!(confirmed["block_height"], 3);
        assert_eq!(confirmed["invoice"]["status"], "confirmed");

        let now = server.invoice(&id).await;
        assert_eq!(now["status"], "confirmed");
        assert_eq!(now["confirmations"], 1);
        assert_eq!(now["payment"]["via"], "chain");
        assert_eq!(now["payment"]["block_hash"], block.to_hex());
        assert_eq!(
            server.kinds(&id).await,
            ["payment_received", "payment_confirmed"]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watcher_the_timer_finds_what_was_lost_while_other_hints_keep_coming() {
        let node = Node::new(2);
        let stub = node.serve().await;
        let mut publisher = Publisher::bind(0).await;
        let (server, _dir) = watching(&node, &stub, &publisher, POLL_FAST).await;
        hints_flowing(&server, &node, &mut publisher).await;

        let to = address(0xa1);
        let id = server.create(&to, 1).await;
        let mut events = server.events(&id).await;
        // The payment enters the mempool and no `rawtx` says so; later its block is mined and
        // nothing says that either. Nothing is numbered past a gap, so no hint tells the
        // watcher something was missed. Meanwhile other transactions keep arriving and are
        // announced (a busy mempool), several a poll interval: only the timer's
        // reconciliation, which they must not hold off, finds the payment and the block.
        let raw = pays(&to, PRICE);
        let txid = node.accept(&raw);
        let mut block = None;
        let mut others = tokio::time::interval(Duration::from_millis(100));
        let mut seen = Vec::new();
        let deadline = Instant::now() + GUARD;
        while seen.len() < 2 {
            tokio::select! {
                event = events.next() => {
                    if seen.is_empty() {
                        received_from_the_chain(&event, txid);
                        block = Some(node.mine(&[txid]));
                    }
                    seen.push(event);
                }
                _ = others.tick() => {
                    assert!(Instant::now() < deadline, "events so far: {seen:?}");
                    let other = pays(&address(0xc3), 1000);
                    node.accept(&other);
                    publisher.send("rawtx", &other).await;
                }
            }
        }
        let block = block.expect("mined");
        let confirmed = &seen[1];
        assert_eq!(confirmed["type"], "payment_confirmed", "{confirmed}");
        assert_eq!(confirmed["txid"], txid.to_hex());
        assert_eq!(confirmed["block_hash"], block.to_hex());
        assert_eq!(confirmed["block_height"], 3);
        assert_eq!(
            server.kinds(&id).await,
            ["payment_received", "payment_confirmed"]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watcher_a_gap_in_sequence_numbers_reconciles_and_unannounced_blocks_are_walked() {
        let node = Node::new(2);
        let stub = node.serve().await;
        let mut publisher = Publisher::bind(0).await;
        let (server, _dir) = watching(&node, &stub, &publisher, HINTS_ONLY).await;
        hints_flowing(&server, &node, &mut publisher).await;

        let to = address(0xa1);
        let id = server.create(&to, 1).await;
        let mut events = server.events(&id).await;
        // The payment's `rawtx` is lost. The next `rawtx`, of a transaction paying no invoice,
        // comes numbered past it: the gap is what makes the watcher look at the mempool.
        let raw = pays(&to, PRICE);
        let txid = node.accept(&raw);
        publisher.lose("rawtx");
        let other = pays(&address(0xc3), 1000);
        node.accept(&other);
        publisher.send("rawtx", &other).await;
        received_from_the_chain(&events.next().await, txid);

        // The block holding the payment is never announced; the one after it is. The walk
        // back by hash from that tip finds the first.
        let first = node.mine(&[txid]);
        lose_announcement(&mut publisher, &node, first);
        let second = node.mine(&[]);
        announce(&mut publisher, &node, second).await;
        let confirmed = events.next().await;
        assert_eq!(confirmed["type"], "payment_confirmed", "{confirmed}");
        assert_eq!(confirmed["block_hash"], first.to_hex());
        assert_eq!(confirmed["block_height"], 3);
        assert_eq!(confirmed["confirmations"], 2);
        server.processed(node.tip()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watcher_a_double_spend_proof_announced_on_hashds_invalidates_the_invoice() {
        let node = Node::new(2);
        let stub = node.serve().await;
        let mut publisher = Publisher::bind(0).await;
        let (server, _dir) = watching(&node, &stub, &publisher, HINTS_ONLY).await;
        hints_flowing(&server, &node, &mut publisher).await;

        let to = address(0xa1);
        let id = server.create(&to, 1).await;
        let mut events = server.events(&id).await;
        let raw = pays(&to, PRICE);
        let txid = node.accept(&raw);
        publisher.send("rawtx", &raw).await;
        received_from_the_chain(&events.next().await, txid);

        // Another transaction spending the same coin reached the node: it made a proof for
        // the first-seen one, ours, and says so on `hashds`.
        node.prove(txid);
        publisher.send("hashds", &txid.0).await;
        let detected = events.next().await;
        assert_eq!(detected["type"], "double_spend_detected", "{detected}");
        assert_eq!(detected["txid"], txid.to_hex());
        assert_eq!(detected["proof_id"], DSPID);
        assert_eq!(detected["policy"], "invalidate");
        let invalidated = events.next().await;
        assert_eq!(invalidated["type"], "payment_invalidated", "{invalidated}");
        assert_eq!(invalidated["reason"], "double_spend_proof");
        assert_eq!(invalidated["invoice"]["status"], "invalid");

        let now = server.invoice(&id).await;
        assert_eq!(now["status"], "invalid");
        assert_eq!(now["invalid_reason"], "double_spend_proof");
        assert_eq!(now["payment"]["double_spend_proof"], DSPID);
        assert!(
            node.calls_of("getdsproof")
                .contains(&json!([txid.to_hex(), 2, true])),
            "the recursive lookup by txid"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watcher_a_restart_resumes_from_the_last_block_processed() {
        let node = Node::new(3);
        let stub = node.serve().await;
        let mut publisher = Publisher::bind(0).await;
        let (server, dir) = watching(&node, &stub, &publisher, POLL_FAST).await;

        let to = address(0xa1);
        let id = server.create(&to, 1).await;
        let raw = pays(&to, PRICE);
        let txid = node.accept(&raw);
        publisher.send("rawtx", &raw).await;
        server.invoice_when(&id, |i| i["status"] == "paid").await;
        // A block while it runs: the last one processed is not the tip it started at.
        let fourth = node.mine(&[]);
        announce(&mut publisher, &node, fourth).await;
        server.processed((4, fourth)).await;
        server.stop().await;

        // While it is down, two blocks, the second holding the payment; their hints reach
        // no one.
        let fifth = node.mine(&[]);
        announce(&mut publisher, &node, fifth).await;
        let sixth = node.mine(&[txid]);
        announce(&mut publisher, &node, sixth).await;
        node.forget_calls();

        let server = Server::start(&database(&dir), &stub, &publisher.endpoint(), POLL_FAST).await;
        let confirmed = server
            .invoice_when(&id, |i| i["status"] == "confirmed")
            .await;
        assert_eq!(confirmed["payment"]["block_hash"], sixth.to_hex());
        assert_eq!(confirmed["confirmations"], 1);
        server.processed((6, sixth)).await;
        assert_eq!(
            server.kinds(&id).await,
            ["payment_received", "payment_confirmed"]
        );
        // Walked back by hash from the tip to block 4, where it stopped, then read the two
        // blocks after it, oldest first, once each: nothing below 4 was asked for.
        let read: Vec<Value> = node
            .calls_of("getblock")
            .iter()
            .map(|p| p[0].clone())
            .collect();
        assert_eq!(read, [json!(fifth.to_hex()), json!(sixth.to_hex())]);
        let headers: HashSet<String> = node
            .calls_of("getblockheader")
            .iter()
            .map(|p| p[0].as_str().expect("a hash").to_owned())
            .collect();
        let walked: HashSet<String> = [fourth, fifth, sixth]
            .iter()
            .map(BlockHash::to_hex)
            .collect();
        assert_eq!(headers, walked);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watcher_a_reorg_that_takes_the_block_away_walks_the_confirmation_back() {
        let node = Node::new(2);
        let stub = node.serve().await;
        let mut publisher = Publisher::bind(0).await;
        let (server, _dir) = watching(&node, &stub, &publisher, HINTS_ONLY).await;
        hints_flowing(&server, &node, &mut publisher).await;

        let to = address(0xa1);
        let id = server.create(&to, 1).await;
        let mut events = server.events(&id).await;
        let raw = pays(&to, PRICE);
        let txid = node.accept(&raw);
        publisher.send("rawtx", &raw).await;
        received_from_the_chain(&events.next().await, txid);
        let mined = node.mine(&[txid]);
        announce(&mut publisher, &node, mined).await;
        let confirmed = events.next().await;
        assert_eq!(confirmed["type"], "payment_confirmed", "{confirmed}");
        assert_eq!(confirmed["block_hash"], mined.to_hex());

        // Block 3 is replaced by another block 3 and a block 4, neither holding the payment,
        // which goes back to the mempool.
        let gone = node.disconnect(1);
        assert_eq!(gone, [mined]);
        let branch = [node.mine(&[]), node.mine(&[])];
        announce_reorg(&mut publisher, &node, &gone, &branch).await;
        let back = events.next().await;
        assert_eq!(back["type"], "payment_unconfirmed", "{back}");
        assert_eq!(back["reason"], "reorg");
        assert_eq!(back["txid"], txid.to_hex());
        assert_eq!(back["confirmations"], 0);
        assert!(back["block_hash"].is_null());
        assert_eq!(back["invoice"]["status"], "paid");
        server.processed((4, branch[1])).await;

        // Mined again on the new branch: confirmed again, in the new block.
        let again = node.mine(&[txid]);
        announce(&mut publisher, &node, again).await;
        let reconfirmed = events.next().await;
        assert_eq!(reconfirmed["type"], "payment_confirmed", "{reconfirmed}");
        assert_eq!(reconfirmed["block_hash"], again.to_hex());
        assert_eq!(reconfirmed["block_height"], 5);
        assert_eq!(
            server.kinds(&id).await,
            [
                "payment_received",
                "payment_confirmed",
                "payment_unconfirmed",
                "payment_confirmed"
            ]
        );
    }
}
